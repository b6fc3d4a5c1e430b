"""`fragsim report DIR`: a self-contained HTML report of a results directory, and its Markdown.

DIR is what `fragsim run --out`, `fragsim reproduce --out` or `fragsim sweep` wrote. The report
(`fragsim.analysis.report`: summary tables, paired kernel comparisons, figures, failed runs,
config, seeds, code version) goes to `DIR/report.html` unless `--out FILE` names another file;
the Markdown goes beside it (`FILE` with the suffix `.md`) with its figures as PNG files in
`<stem>-figures/`. It prints the two paths written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fragsim.sim.errors import UsageError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="write an HTML and a Markdown report of a results directory",
        description="Summarize the runs of a results directory (fragsim run --out, reproduce "
                    "--out, or a sweep) in one self-contained HTML file and a Markdown file: "
                    "tables, paired kernel comparisons, figures, failed runs and the config.")
    p.add_argument("directory", metavar="DIR", help="a run, reproduce or sweep directory")
    p.add_argument("--out", metavar="FILE",
                   help="the HTML file (default DIR/report.html); the Markdown goes beside it")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.exists():
        raise UsageError(f"no such directory: {args.directory}")
    if not directory.is_dir():
        raise UsageError(f"not a directory: {args.directory}")
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise UsageError(f"--out {args.out!r} is a directory: give the HTML file's name")
    if out is not None and out.suffix.lower() == ".md":
        raise UsageError(f"--out {args.out!r}: name the HTML file; the .md goes beside it")
    import matplotlib

    matplotlib.use("Agg")  # figures are files: no display needed, none opened
    from fragsim.analysis import report

    if report.layout(directory) is None:
        raise UsageError(f"no results in {args.directory}: expected runs.parquet (fragsim run "
                         "or reproduce --out) or manifest.json (fragsim sweep)")
    html_path, md_path = report.write_report(directory, out)
    print(html_path)
    print(md_path)
    return 0
