"""The `fragsim` command: subcommands, and the one place user mistakes become one-line errors.

Each subcommand lives in its own module, which exposes `add_parser(subparsers)` and
`run(args) -> int`. A `UsageError` (or ValueError from config checks, or a missing file) raised
while running becomes `fragsim: error: <message>` on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fragsim import __version__
from fragsim.sim import inspect_cmd, replay
from fragsim.sim.errors import UsageError

__all__ = ["UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fragsim",
        description="Simulate the Linux page allocator and measure external fragmentation.",
    )
    parser.add_argument("--version", action="version", version=f"fragsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    replay.add_parser(sub)
    inspect_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except (UsageError, ValueError) as exc:
        print(f"fragsim: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"fragsim: error: no such file: {exc.filename}", file=sys.stderr)
        return 2
    except IsADirectoryError as exc:
        print(f"fragsim: error: is a directory, not a file: {exc.filename}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
