"""The ``meshwatch`` command line: one subcommand per module in :mod:`meshwatch.commands`.

Every subcommand module exposes ``add_parser(subparsers)``, which registers an
argparse parser whose ``func`` default takes the parsed arguments and returns
an exit code. :func:`main` takes an argument list and returns the exit code, so
tests call it directly instead of spawning processes.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from meshwatch import __version__
from meshwatch.commands.shared import CommandError, os_error
from meshwatch.settings import SettingsError, settings_path

# The order here is the order `meshwatch --help` lists them in.
COMMAND_MODULES = (
    "meshwatch.commands.generate",
    "meshwatch.commands.check",
    "meshwatch.commands.audit",
    "meshwatch.commands.up",
    "meshwatch.commands.down",
    "meshwatch.commands.status",
    "meshwatch.commands.demo",
    "meshwatch.commands.snapshot",
    "meshwatch.commands.alert_sink",
)


_ROLE = re.compile(r":(?:[a-z]+:)+`~?(?:[^`<]*<)?\.?([^`>]+)>?`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str) -> str:
    """Docstring markup as plain text: roles (:mod:, :class:) and double backquotes dropped."""
    text = _ROLE.sub(
        lambda m: m.group(1).rsplit(".", 1)[-1] if "~" in m.group(0) else m.group(1), text
    )
    text = _LITERAL.sub(r"\1", text)
    return re.sub(r"(?m)(\S)::$", r"\1:", re.sub(r"(?m)^(\s*)::$", "", text))


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (what is wrong, where to read more), exit 2,
    and help that reads as plain text (descriptions are the commands' docstrings)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def format_help(self) -> str:
        return plain_text(super().format_help())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="meshwatch",
        description="Observability-as-code for multi-agent AI systems.",
    )
    parser.add_argument("--version", action="version", version=f"meshwatch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: sys.argv[1:]) and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        source = settings_path(getattr(args, "config", None))
        if exc.source is None and source is not None:
            exc = exc.in_file(str(source))  # a cross-field check made after loading
        print(f"meshwatch: invalid settings: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"meshwatch {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path the user gave that cannot be used: one line, no traceback
        print(f"meshwatch {args.command}: {os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
