"""The ``astrovlm`` command: thin subcommands over the library.

Each command group lives in its own module here and registers itself with
``add_commands(subparsers)``; a command's handler takes the parsed args and returns a
JSON-able result, which ``main`` prints as JSON with ``--json`` or as text otherwise.
Log lines (``-v`` more, ``-q`` fewer) go to stderr through ``astrovlm.logs``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from astrovlm import __version__
from astrovlm.errors import AstroVLMError
from astrovlm.logs import add_verbosity_arguments, setup_logging

# Command-group modules, in the order of the data's path; the web app last.
GROUPS = ["data", "encoders", "index", "assistant", "app"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astrovlm",
        description="astrovlm: search, classify and ask about celestial objects across images, "
                    "spectra and text, offline.")
    parser.add_argument("--version", action="version", version=f"astrovlm {__version__}")
    add_verbosity_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        try:
            module = importlib.import_module(f"astrovlm.cli.{group}")
        except ModuleNotFoundError as exc:
            if exc.name == f"astrovlm.cli.{group}":
                continue  # group not built yet
            raise
        module.add_commands(sub)
    for command in _subcommand_parsers(parser):
        add_verbosity_arguments(command, inherit=True)
    return parser


def _subcommand_parsers(parser: argparse.ArgumentParser):
    """Every parser below ``parser`` (``data``, ``data ingest`` ...), so -v/-q work after them too."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                yield child
                yield from _subcommand_parsers(child)


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON (for scripts)")


def emit(result, as_json: bool, text=None) -> None:
    """Print a command's result: JSON for scripts, or its text form for people."""
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    elif text is not None:
        print(text if isinstance(text, str) else text(result))
    elif result is not None:
        print(json.dumps(result, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except AstroVLMError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc)}))
        print(f"astrovlm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("astrovlm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `astrovlm ... | head` closed the pipe: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
