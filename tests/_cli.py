"""Running the `rnnvanish` command in-process, as a test sees it: (exit code, stdout, stderr)."""
from rnnvanish.cli import main


def cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err
