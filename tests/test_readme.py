"""The README's promises: the quick start, the CI command, the library example."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands_and_ci_runs_the_second():
    commands = quick_start()
    assert len(commands) == 2
    assert commands[0].startswith("pip install") and "rnnvanish train" in commands[0]
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()


def test_library_example_runs(monkeypatch, capsys):
    monkeypatch.setenv("RNNVANISH_BACKEND", "numpy")
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## The library in a script\n\n```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    assert "dE/dh_t" in capsys.readouterr().out
