"""The reproduction of Mel Gorman's figures: tables in, a comparison table and a figure out.

Gorman's numbers (the v28 posting of "Group pages of related mobility together to reduce
external fragmentation", March 2007, quoted by the seed article): on a desktop after a few days
of uptime, 60-70% of physical memory could be allocated as huge pages with grouping and < 1% on
a standard kernel; at the end of stress tests, 80% against 8-12%. `summarize` puts a mean and a
95% confidence interval (Student's t over seeds) on each simulated figure, `table` sets them
beside the published ones, `uptime_figure` draws huge page availability against uptime.

Only DataFrames come in (the `runs` and `samples` tables); nothing here touches a simulation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["FIGURES", "PUBLISHED", "summarize", "table", "uptime_figure"]

#: (workload, column in `runs`, label) of each figure of the reproduction, in table order.
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("desktop", "hugepages_pct", "desktop: memory allocatable as huge pages"),
    ("stress-highalloc", "pass1_pct", "stress-highalloc pass 1 (under load)"),
    ("stress-highalloc", "pass2_pct", "stress-highalloc pass 2 (under load)"),
    ("stress-highalloc", "pass3_pct", "stress-highalloc pass 3 (at rest)"),
)
#: Published figures by (column, kernel): the standard kernel and grouping by mobility.
PUBLISHED: dict[tuple[str, str], str] = {
    ("hugepages_pct", "2.6.20"): "< 1%",
    ("hugepages_pct", "2.6.24"): "60-70%",
    ("pass3_pct", "2.6.20"): "8-12%",
    ("pass3_pct", "2.6.24"): "80%",
}


def _ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the Student-t confidence interval of the mean (NaN bounds for n < 2)."""
    v = values[~np.isnan(values)]
    if v.shape[0] == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if v.shape[0] < 2:
        return mean, math.nan, math.nan
    sem = float(v.std(ddof=1)) / math.sqrt(v.shape[0])
    half = float(stats.t.ppf(0.5 + level / 2, v.shape[0] - 1)) * sem
    return mean, mean - half, mean + half


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per figure, kernel and min_free_kbytes setting: n, mean, ci_low, ci_high.

    Only runs with status ok count; `failed` says how many did not.
    """
    rows = []
    for workload, column, label in FIGURES:
        sel = runs[runs["workload"].astype(str) == workload]
        if column not in sel or sel.empty:
            continue
        for (kernel, mfk), group in sel.groupby([sel["kernel"].astype(str),
                                                 "min_free_setting"], sort=True):
            ok = group[group["status"].astype(str) == "ok"]
            mean, lo, hi = _ci(ok[column].to_numpy(dtype=np.float64))
            rows.append({"workload": workload, "figure": column, "label": label,
                         "kernel": kernel, "min_free_setting": mfk,
                         "min_free_kbytes": int(group["min_free_kbytes"].iloc[0]),
                         "n": int(ok.shape[0]), "failed": int(group.shape[0] - ok.shape[0]),
                         "mean": mean, "ci_low": lo, "ci_high": hi,
                         "published": PUBLISHED.get((column, kernel), "")})
    return pd.DataFrame(rows)


def _cell(row: pd.Series) -> str:
    if row["n"] == 0:
        return "failed"
    if math.isnan(row["ci_low"]):
        return f"{row['mean']:.1f}%"
    return f"{row['mean']:.1f}% [{row['ci_low']:.1f}, {row['ci_high']:.1f}]"


def table(summary: pd.DataFrame, kernels: list[str]) -> str:
    """Markdown: one line per figure and min_free_kbytes setting, published beside simulated."""
    head = ["figure", "min_free_kbytes", "published (2.6.20 / 2.6.24)",
            *[f"{k} sim. mean [95% CI]" for k in kernels]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if summary.empty:
        return "\n".join(lines) + "\n"
    for (column, setting), group in summary.groupby(["figure", "min_free_setting"],
                                                    sort=False):
        by_kernel = {str(r["kernel"]): r for _, r in group.iterrows()}
        first = group.iloc[0]
        published = " / ".join(PUBLISHED.get((column, k), "-") for k in ("2.6.20", "2.6.24"))
        kb = sorted({int(r["min_free_kbytes"]) for r in by_kernel.values()})
        cells = [first["label"], f"{setting} ({', '.join(str(x) for x in kb)} kB)", published]
        cells += [_cell(by_kernel[k]) if k in by_kernel else "-" for k in kernels]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def uptime_figure(samples: pd.DataFrame, runs: pd.DataFrame, path: Path,
                  kernels: list[str]) -> Path:
    """Huge page availability (`hugepages_pct` probes) against uptime, one line per kernel and
    min_free_kbytes setting, mean over seeds with a 95% band. Written as PNG to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probes = samples[samples["metric"].astype(str) == "hugepages_pct"]
    settings = runs.set_index("run_id")["min_free_setting"].astype(str)
    probes = probes.assign(setting=probes["run_id"].astype(str).map(settings))
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    present = sorted(set(probes["setting"].dropna()), key=lambda x: (x != "default", x))
    linestyles = ("-", "--", ":", "-.")
    styles = {setting: linestyles[i % len(linestyles)] for i, setting in enumerate(present)}
    for kernel in kernels:
        for setting, style in styles.items():
            sel = probes[(probes["kernel"].astype(str) == kernel) & (probes["setting"] == setting)]
            if sel.empty:
                continue
            grouped = sel.groupby(sel["uptime_days"].round(4))["value"]
            days = np.array(sorted(grouped.groups))
            cis = [_ci(grouped.get_group(d).to_numpy(np.float64)) for d in days]
            mean = np.array([c[0] for c in cis])
            line, = ax.plot(days, mean, style, label=f"{kernel}, min_free {setting}")
            lo = np.array([c[1] for c in cis])
            hi = np.array([c[2] for c in cis])
            if np.isfinite(lo).any():
                ax.fill_between(days, lo, hi, color=line.get_color(), alpha=0.15)
    ax.axhspan(60, 70, color="tab:green", alpha=0.08, label="Gorman: grouping 60-70%")
    ax.axhspan(0, 1, color="tab:red", alpha=0.15, label="Gorman: standard < 1%")
    ax.set_xlabel("uptime (days)")
    ax.set_ylabel("memory allocatable as huge pages (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Desktop: huge page availability over uptime (hugepages_get probes)")
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
