"""Progress bars on standard error: simulated time for one run, runs done for many.

tqdm draws them (elapsed wall time, rate and ETA); they are shown only when standard error is a
terminal, or when asked for, so piped and CI output stays clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

__all__ = ["run_progress", "runs_progress", "want_progress"]


def want_progress(flag: bool | None) -> bool:
    """`--progress`/`--no-progress` if given, else whether standard error is a terminal."""
    if flag is not None:
        return flag
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def run_progress(label: str, total_s: float | None) -> tuple[Any, Callable[[float, float], None]]:
    """A bar in simulated hours (total unknown for a scenario that ends by itself) and the
    callback the run life cycle calls with (now_s, end_s)."""
    total = None if total_s is None or total_s == float("inf") else total_s / 3600.0
    bar = tqdm(total=total, desc=label, unit="sim h", file=sys.stderr, leave=False,
               dynamic_ncols=True, bar_format=None if total else
               "{desc}: {n:.2f} sim h [{elapsed}, {rate_fmt}]")
    state = {"last": 0.0}

    def update(now_s: float, _end_s: float) -> None:
        hours = now_s / 3600.0
        bar.update(hours - state["last"])
        state["last"] = hours
        bar.set_postfix_str(f"day {now_s / 86400.0:.2f}", refresh=False)

    return bar, update


def runs_progress(total: int, label: str = "runs") -> Any:
    """A bar of runs done (the caller updates it and sets failed= in the postfix)."""
    return tqdm(total=total, desc=label, unit="run", file=sys.stderr, leave=False,
                dynamic_ncols=True)
