"""The `fragsim` command: subcommands, and the one place user mistakes become one-line errors.

Each subcommand lives in its own module, which exposes `add_parser(subparsers)` and
`run(args) -> int`. Every user mistake, argparse's own included (a missing value, an unknown
option), and a `UsageError`, a ValueError from config checks or a missing file raised while
running, becomes `fragsim: error: <message>` on stderr and exit code 2, with no traceback.
Ctrl-C stops with `fragsim: interrupted` and exit code 130 (a run keeps what it wrote).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from fragsim import __version__
from fragsim.sim import inspect_cmd, replay, report_cmd, reproduce_cmd, run_cmd, sweep_cmd
from fragsim.sim.errors import UsageError

__all__ = ["UsageError", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is a `UsageError` (one line, exit 2) instead of usage text."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fragsim",
        description="Simulate the Linux page allocator and measure external fragmentation.",
    )
    parser.add_argument("--version", action="version", version=f"fragsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    run_cmd.add_parser(sub)
    reproduce_cmd.add_parser(sub)
    sweep_cmd.add_parser(sub)
    replay.add_parser(sub)
    inspect_cmd.add_parser(sub)
    report_cmd.add_parser(sub)
    return parser


def _fail(message: str) -> int:
    print(f"fragsim: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args)
    except (UsageError, ValueError) as exc:
        return _fail(str(exc))
    except FileNotFoundError as exc:
        return _fail(f"no such file: {exc.filename}")
    except IsADirectoryError as exc:
        return _fail(f"is a directory, not a file: {exc.filename}")
    except KeyboardInterrupt:
        print("fragsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
