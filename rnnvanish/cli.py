"""The `rnnvanish` console script.

Each subcommand lives in its own module under `rnnvanish.commands` and provides
`add_arguments(parser)` and `run(args) -> int`. This module imports none of the
numerical code, so `rnnvanish --help` answers at once; a subcommand imports what it
needs inside `run`.
"""
import argparse
import importlib
import sys

from ._version import __version__
from .errors import RnnvanishError

# name -> (module under rnnvanish.commands, one-line help)
COMMANDS = {
    "train": ("train", "train a character- or word-level language model on text"),
    "sample": ("sample", "generate text from a trained checkpoint"),
    "trace": ("trace", "trace the gradient signal step by step and chart it"),
    "plot": ("plot", "draw every chart of a training run folder"),
    "task": ("task", "train on a long-range dependency task from the literature"),
    "sweep": ("sweep", "success rate against sequence length over cells and seeds"),
    "gradcheck": ("gradcheck", "check BPTT gradients against central finite differences"),
    "bench": ("bench", "measure training and generation speed (tokens/s)"),
}


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line: `rnnvanish train: error: ...`, exit 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser(only=None):
    parser = OneLineParser(
        prog="rnnvanish",
        description="Recurrent networks and backpropagation through time, made visible.",
    )
    parser.add_argument("--version", action="version", version=f"rnnvanish {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        if only is None or only == name:
            mod = importlib.import_module(f"rnnvanish.commands.{module}")
            mod.add_arguments(p)
            p.set_defaults(_module=mod)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    # Build only the requested subcommand's arguments: keeps --help fast.
    only = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=only if only in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args._module.run(args) or 0)
    except RnnvanishError as exc:
        sys.stderr.write(f"rnnvanish {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"rnnvanish {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
