"""The report of a results directory: one self-contained HTML page and its Markdown twin.

`write_report(DIR)` reads what `fragsim run --out`, `fragsim reproduce --out` or a sweep wrote
(`fragsim.analysis.load`, plus the directory's `manifest.json` or `workload.json`) and writes
`DIR/report.html` (inline CSS, figures as base64 PNG, nothing fetched from anywhere) and
`DIR/report.md` (figures as PNG files in `DIR/report-figures/`). Both hold the title, the code
version, the generation time and the seeds; per workload, the summary table
(`stats.summarize` of `hugepages_pct` for the desktop, `pass1_pct`..`pass3_pct` for
stress-highalloc, by kernel and every factor that varies), paired comparisons of each kernel
with the oldest on shared seeds (`stats.paired`) and the figures (`figures.uptime`,
`memory_map`, `buddyinfo_heatmap`, `extfrag`); then failed runs, the configuration and every
run. A table or figure that cannot be made becomes a line saying why; the rest is still written.

Only tables and files come in: nothing here touches a simulation.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fragsim import __version__
from fragsim.analysis import figures, stats
from fragsim.analysis.document import (
    Block,
    Code,
    Facts,
    Figure,
    Heading,
    Table,
    Text,
    render_html,
    render_markdown,
)
from fragsim.analysis.results import load as load_tables

__all__ = ["METRICS", "layout", "write_report"]

#: Outcome columns of `runs` a report summarizes, with their labels (all are percentages).
METRICS: dict[str, str] = {
    "hugepages_pct": "memory allocatable as huge pages",
    "pass1_pct": "stress-highalloc pass 1 (under load)",
    "pass2_pct": "stress-highalloc pass 2 (under load)",
    "pass3_pct": "stress-highalloc pass 3 (at rest)",
}
#: Config columns that may vary between the runs of a directory without a manifest (a
#: reproduction varies min_free_setting); a sweep's factors come from its manifest.
_CONFIG_FACTORS = ("min_free_setting", "memory_bytes", "profile", "days")
#: Manifest keys that are the `kernel` and `seed` columns, not factors of their own.
_KEY_VALUES = frozenset({"kernel.version", "run.seed", "workload.name"})
_MAX_MAP_PANELS = 4
_MAX_RUN_ROWS = 500
_EXTFRAG = "mm_page_alloc_extfrag"




@dataclass
class _Source:
    """What the directory says beside its tables."""

    layout: str
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    config: list[Block] = field(default_factory=list)
    factors: pd.DataFrame | None = None  # run_id and a column per varying manifest key


def layout(directory: Path) -> str | None:
    """`sweep`, `reproduce` or `run` for a results directory, None when it holds none."""
    if (directory / "manifest.json").is_file():
        return "sweep"
    if (directory / "runs.parquet").is_file():
        return "reproduce" if (directory / "reproduction.md").is_file() else "run"
    return None


def write_report(directory: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write the HTML report (`out`, default `directory/report.html`) and the Markdown beside
    it (same name, `.md`; figures in `<stem>-figures/`). Returns both paths."""
    directory = Path(directory)
    html_path = Path(out) if out is not None else directory / "report.html"
    md_path = html_path.with_suffix(".md")
    if md_path == html_path:
        raise ValueError(f"{html_path}: the HTML report cannot be named .md (the Markdown "
                         "goes beside it)")
    kind = layout(directory)
    if kind is None:
        raise ValueError(f"{directory}: no results (expected runs.parquet or manifest.json)")
    runs, samples, events = load_tables(directory)
    if runs.empty:
        raise ValueError(f"{directory}: no runs")
    source = _read_source(directory, kind, runs)
    if source.factors is not None:  # a sweep's factors, when its runs rows lack them
        by_run = source.factors.set_index("run_id")
        for col in by_run.columns:
            if col not in runs:
                runs[col] = runs["run_id"].astype(str).map(by_run[col])
    figdir = html_path.parent / f"{html_path.stem}-figures"
    blocks = _document(source, runs, samples, events, figdir)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(source.title, blocks), encoding="utf-8")
    md_path.write_text(render_markdown(blocks, md_path.parent), encoding="utf-8")
    return html_path, md_path


# --- reading the directory --------------------------------------------------------------------

def _read_source(directory: Path, kind: str, runs: pd.DataFrame) -> _Source:
    workloads = ", ".join(_values(runs, "workload"))
    kernels = ", ".join(_values(runs, "kernel"))
    if kind == "sweep":
        m = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        src = _Source(kind, f"sweep {m.get('name', directory.name)}")
        if m.get("description"):
            src.facts.append(("description", str(m["description"])))
        versions = m.get("code_versions") or [m.get("code_version", "unknown")]
        src.facts.append(("results written by", ", ".join(f"fragsim {v}" for v in versions)))
        src.facts.append(("seeds", f"root seed {m.get('root_seed')}; "
                                   + ", ".join(str(s) for s in m.get("seeds", []))))
        src.facts.append(("spec hash", str(m.get("spec_hash", ""))))
        src.config.append(Code(str(m.get("spec_text", "")), "toml"))
        if m.get("workload_text"):  # the workload file the spec names, as it was read
            src.config.append(Code(str(m["workload_text"]), "toml",
                                   collapsed=f"workload {m.get('workload', '')}"))
        src.factors = _manifest_factors(m.get("runs", []))
        return src
    title = f"{'reproduction' if kind == 'reproduce' else 'run'}: {workloads} on {kernels}"
    src = _Source(kind, title)
    src.facts.append(("seeds", ", ".join(str(s) for s in sorted(set(runs["seed"].tolist())))))
    workload_json = directory / "workload.json"
    if workload_json.is_file():
        flat = json.loads(workload_json.read_text(encoding="utf-8"))
        lines = [f"{k} = {json.dumps(v)}" for k, v in flat.items()]
        src.config.append(Text("workload.json (the run's whole workload, flat dotted keys):"))
        src.config.append(Code("\n".join(lines), "toml", collapsed=f"{len(lines)} keys"))
    reproduction = directory / "reproduction.md"
    if reproduction.is_file():
        src.config.append(Text("reproduction.md, as `fragsim reproduce` wrote it:"))
        src.config.append(Code(reproduction.read_text(encoding="utf-8"), "markdown"))
    return src


def _manifest_factors(planned: list[dict[str, Any]]) -> pd.DataFrame | None:
    """run_id and one column per manifest key whose value differs between runs."""
    rows = [{"run_id": str(r["run_id"]), **{k: v if isinstance(v, int | float | str | bool)
                                              else json.dumps(v)
                                              for k, v in r.get("values", {}).items()}}
            for r in planned if "run_id" in r]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    keep = ["run_id"] + [c for c in frame.columns if c != "run_id" and c not in _KEY_VALUES
                         and frame[c].nunique(dropna=False) > 1]
    return frame[keep]


# --- the content ------------------------------------------------------------------------------

def _document(src: _Source, runs: pd.DataFrame, samples: pd.DataFrame, events: pd.DataFrame,
              figdir: Path) -> list[Block]:
    status = runs["status"].astype(str)
    n_ok = int((status == "ok").sum())
    n_bad = runs.shape[0] - n_ok
    facts = [("generated", datetime.now().astimezone().isoformat(timespec="seconds")),
             ("code version", f"fragsim {__version__} (this report)"),
             ("layout", src.layout),
             ("runs", f"{runs.shape[0]}: {n_ok} ok" + (f", {n_bad} failed or interrupted"
                                                     if n_bad else "")),
             ("workloads", ", ".join(_values(runs, "workload"))),
             ("kernels", ", ".join(_values(runs, "kernel"))), *src.facts]
    blocks: list[Block] = [Heading(src.title, 1), Facts(facts)]
    workloads = _values(runs, "workload")
    sections: dict[str, list[Block]] = {"Summary": [], "Paired comparisons": [], "Figures": []}
    for w in workloads:
        sel = runs[runs["workload"].astype(str) == w]
        factors = _factors(sel, src)
        parts = (_summary(sel, factors), _paired(sel, factors),
                 _figures(w, sel, samples, events, factors, figdir))
        for section, part in zip(sections.values(), parts, strict=True):
            if len(workloads) > 1:
                section.append(Heading(w, 3))
            section.extend(part)
    for name, section in sections.items():
        blocks += [Heading(name), *section]
    blocks += [Heading("Failed runs"), *_failed(runs, src)]
    blocks += [Heading("Configuration"), *src.config, *_configs(runs)]
    blocks += [Heading("Runs"), _runs_table(runs, src)]
    return blocks


def _factors(runs: pd.DataFrame, src: _Source) -> list[str]:
    """The columns besides kernel and seed whose values vary among these runs."""
    if src.factors is not None:
        names = [c for c in src.factors.columns if c != "run_id"]
    else:
        names = [c for c in _CONFIG_FACTORS if c in runs]
        if "min_free_setting" not in runs:
            names.append("min_free_kbytes")
    return [c for c in names if c in runs and runs[c].astype(str).nunique() > 1]


def _ok(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    sel = runs[(runs["status"].astype(str) == "ok")]
    return sel[sel[metric].notna()] if metric in sel else sel.iloc[0:0]


def _metrics(runs: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m in runs and not _ok(runs, m).empty]


def _summary(runs: pd.DataFrame, factors: list[str]) -> list[Block]:
    metrics = _metrics(runs)
    if not metrics:
        return [Text("No run finished with an outcome ("
                     + ", ".join(METRICS) + "): nothing to summarize.", note=True)]
    by = ("kernel", *factors)
    rows: list[list[str]] = []
    notes: list[Block] = []
    for metric in metrics:
        try:
            s = stats.summarize(runs, metric=metric, by=by, level=0.95)
        except Exception as exc:  # one bad metric does not lose the others
            notes.append(Text(f"{metric}: summary could not be computed: {_why(exc)}", True))
            continue
        failed = (runs["status"].astype(str) != "ok").groupby(
            [runs[c].astype(str) for c in by], observed=True).sum()
        s = s.sort_values("kernel", key=lambda k: k.astype(str).map(_natural), kind="stable")
        for _, r in s.iterrows():
            key = tuple(str(r[c]) for c in by)
            rows.append([metric, *(_fmt_key(c, r[c]) for c in by), _fmt(r["n"]),
                         _fmt(int(failed.get(key if len(by) > 1 else key[0], 0))),
                         _fmt(r["mean"], 1), _ci(r["ci_low"], r["ci_high"]),
                         _fmt(r["std"], 1)])
    header = ["metric (%)", *by, "n", "not ok", "mean", "95% CI", "std"]
    legend = Text("; ".join(f"{m}: {METRICS[m]}" for m in metrics)
                  + ". n: runs with status ok; mean over them and a bootstrap 95% confidence "
                    "interval of the mean (none for n < 2).")
    return [Table(header, rows), legend, *notes] if rows else notes


def _paired(runs: pd.DataFrame, factors: list[str]) -> list[Block]:
    blocks: list[Block] = []
    frames: list[pd.DataFrame] = []
    for metric in _metrics(runs):
        ok = _ok(runs, metric)
        kernels = _values(ok, "kernel")
        if len(kernels) < 2:
            continue
        base = kernels[0]
        seeds = set(ok.loc[ok["kernel"].astype(str) == base, "seed"].tolist())
        for k in kernels[1:]:
            shared = seeds & set(ok.loc[ok["kernel"].astype(str) == k, "seed"].tolist())
            if len(shared) < 2:
                blocks.append(Text(f"{metric}: {k} vs {base}: {len(shared)} shared seed(s), "
                                   "fewer than the 2 a paired comparison needs.", True))
                continue
            try:
                p = stats.paired(ok, metric, base, k, pair_on=("seed",), by=tuple(factors))
            except Exception as exc:
                blocks.append(Text(f"{metric}: {k} vs {base}: paired comparison could not be "
                                   f"computed: {_why(exc)}", True))
                continue
            frames.append(p.assign(metric=metric))
    if not frames and not blocks:
        return [Text("Fewer than two kernels with shared seeds: no paired comparison.")]
    if frames:
        table = pd.concat(frames, ignore_index=True)
        header = ["metric (%)", *factors, "baseline", "against", "pairs", "mean baseline",
                  "mean against", "difference", "95% CI", "p", "unpaired seeds"]
        rows = []
        for _, r in table.iterrows():
            g = r.get
            rows.append([*(_fmt_key(c, g(c)) for c in ("metric", *factors, "baseline",
                                                        "against")),
                         _fmt(g("n")), _fmt(g("mean_baseline"), 1), _fmt(g("mean_against"), 1),
                         _fmt(g("mean_diff"), 1),
                         _ci(g("ci_low"), g("ci_high")),
                         _fmt_p(g("p_value")), _fmt(g("unpaired"))])
        blocks[:0] = [Table(header, rows), Text(
            "Each kernel against the oldest on the seeds both ran ok (the same workload draws): "
            "difference = against - baseline in percentage points, with a 95% confidence "
            "interval of its mean; p: two-sided Wilcoxon signed-rank test.")]
    return blocks


def _figures(workload: str, runs: pd.DataFrame, samples: pd.DataFrame, events: pd.DataFrame,
             factors: list[str], figdir: Path) -> list[Block]:
    ok = runs[runs["status"].astype(str) == "ok"]
    use = ok if not ok.empty else runs
    ids = set(use["run_id"].astype(str))
    samples = samples[samples["run_id"].astype(str).isin(ids)] if not samples.empty else samples
    events = events[events["run_id"].astype(str).isin(ids)] if not events.empty else events
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", workload)
    out: list[Block] = []

    def draw(name: str, caption: str, make: Any) -> None:
        out.append(_draw(make, figdir / f"{name}-{slug}", f"{name} ({workload})", caption))

    has_metric = not samples.empty and "metric" in samples
    if has_metric and (samples["metric"].astype(str) == "hugepages_pct").any():
        # One curve per kernel and level of the factors (a band over seeds only).
        groups = use.assign(group=[", ".join([str(r["kernel"]),
                                              *(_fmt_key(f, r[f]) for f in factors)])
                                   for _, r in use.iterrows()])
        what = ", ".join(["kernel", *factors])
        draw("uptime", "Memory allocatable as huge pages (hugepages_get probes) against uptime, "
             f"by {what}.", lambda: figures.uptime(groups, samples, "hugepages_pct",
                                                   by="group"))
    mapped = set()
    if not events.empty and "event" in events:
        mapped = set(events.loc[events["event"].astype(str) == "pageblock", "run_id"].astype(str))
    firsts = _first_runs(use, factors, mapped)
    if firsts:
        names = ", ".join(f"{k} seed {s} ({r})" for r, k, s in firsts)
        draw("memory-map", f"Memory map at the last snapshot, one pageblock a cell: {names}.",
             lambda: figures.memory_map(use, events, [r for r, _, _ in firsts]))
    else:
        out.append(Text("Memory map: no pageblock snapshots recorded.", True))
    buddy = _first_runs(use, factors, set(samples.loc[samples["metric"].astype(str)
                                                      == "buddyinfo", "run_id"].astype(str))
                        if has_metric else set())
    if buddy:
        rid, k, s = buddy[0]
        draw("buddyinfo", f"/proc/buddyinfo over uptime: free blocks per order, run {rid} "
             f"({k}, seed {s}).", lambda: figures.buddyinfo_heatmap(samples, rid))
    else:
        out.append(Text("Buddyinfo heat map: no buddyinfo samples recorded.", True))
    if not events.empty and "event" in events and (events["event"].astype(str)
                                                  == _EXTFRAG).any():
        span_h = float(events["t_s"].max()) / 3600.0
        bin_h = 1.0 if span_h >= 24.0 else float(f"{max(span_h / 48.0, 1 / 3600):.2g}")
        draw("extfrag", f"{_EXTFRAG} events over uptime, by kernel ({bin_h:g} h bins).",
             lambda: figures.extfrag(events, use, by="kernel", bin_h=bin_h))
    else:
        out.append(Text(f"Extfrag: no {_EXTFRAG} events recorded (no allocation fell back to "
                        "another migratetype's free lists)."))
    return out


def _draw(make: Any, stem: Path, name: str, caption: str) -> Figure:
    """Draw and save one figure; a failure becomes the figure's error, never the report's."""
    fig = None
    try:
        fig = make()
        png = next((Path(p) for p in figures.save(fig, stem) if str(p).endswith(".png")), None)
        return Figure(name, caption, png, "" if png else "figures.save wrote no PNG")
    except Exception as exc:
        return Figure(name, caption, error=_why(exc))
    finally:
        if fig is not None:
            import matplotlib.pyplot as plt

            plt.close(fig)


def _first_runs(runs: pd.DataFrame, factors: list[str],
                having: set[str]) -> list[tuple[str, str, Any]]:
    """(run_id, kernel, seed) of the first seed's run of each kernel (oldest first) among the
    runs in `having`, at the first level of every factor; at most `_MAX_MAP_PANELS`. A sweep's
    first seed is its first replicate's."""
    sel = runs[runs["run_id"].astype(str).isin(having)]
    if sel.empty:
        return []
    for c in factors:
        key = sel[c].astype(str)
        sel = sel[key == min(key, key=_natural)]
    out = []
    for k in _values(sel, "kernel")[:_MAX_MAP_PANELS]:
        order = [c for c in ("replicate", "seed", "run_id") if c in sel]
        one = sel[sel["kernel"].astype(str) == k].sort_values(order).iloc[0]
        out.append((str(one["run_id"]), k, one["seed"]))
    return out


def _failed(runs: pd.DataFrame, src: _Source) -> list[Block]:
    bad = runs[runs["status"].astype(str) != "ok"]
    if bad.empty:
        return [Text(f"None: all {runs.shape[0]} runs finished ok.")]
    cols = ["run_id", "workload", "kernel", "seed", *_all_factors(runs, src), "status", "error"]
    rows = [[_fmt(r.get(c, "")) for c in cols] for _, r in bad.iterrows()]
    return [Table(cols, rows)]


def _configs(runs: pd.DataFrame) -> list[Block]:
    cols = [c for c in ("workload", "scenario", "kernel", "memory_bytes", "profile", "days",
                        "min_free_setting", "min_free_kbytes") if c in runs]
    table = runs[cols].astype(str).drop_duplicates()
    if "memory_bytes" in table:
        table["memory_bytes"] = [str(int(float(v)) >> 20) if v[:1].isdigit() else v
                                 for v in table["memory_bytes"]]
    rows = [list(r) for r in table.itertuples(index=False)]
    return [Text("The configurations in the runs table:"),
            Table([("memory (MiB)" if c == "memory_bytes" else c) for c in cols], rows)]


def _runs_table(runs: pd.DataFrame, src: _Source) -> Table:
    cols = ["run_id", "workload", "kernel", "seed", *_all_factors(runs, src), "status",
            *[m for m in METRICS if m in runs and runs[m].notna().any()],
            *[c for c in ("extfrag_fallback", "alloc_fail", "allocstall", "sim_s", "wall_s")
              if c in runs]]
    sel = runs.assign(_k=runs["kernel"].astype(str).map(_natural)).sort_values(
        ["workload", "_k", "seed"]).head(_MAX_RUN_ROWS)
    rows = [[_fmt_key(c, r[c]) if c in _BYTE_COLUMNS else _fmt(r[c], 1) for c in cols]
            for _, r in sel.iterrows()]
    more = f" (the first {_MAX_RUN_ROWS})" if runs.shape[0] > _MAX_RUN_ROWS else ""
    return Table(cols, rows, collapsed=f"{runs.shape[0]} runs{more}" if len(rows) > 20 else "")


def _all_factors(runs: pd.DataFrame, src: _Source) -> list[str]:
    seen: list[str] = []
    for w in _values(runs, "workload"):
        seen += [f for f in _factors(runs[runs["workload"].astype(str) == w], src)
                 if f not in seen]
    return seen


# --- small helpers ----------------------------------------------------------------------------

def _natural(text: str) -> tuple[Any, ...]:
    """Sort key: numbers by value ('2.6.9' before '2.6.20')."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                 for p in re.split(r"(\d+)", str(text)) if p)


def _values(frame: pd.DataFrame, col: str) -> list[str]:
    return sorted({str(v) for v in frame[col].dropna()}, key=_natural) if col in frame else []


def _fmt(v: Any, digits: int | None = None) -> str:
    """A cell: integers as such, other numbers to `digits` places (else 2), missing as '-'."""
    if isinstance(v, str):
        return v
    if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)):
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        x = float(v)
        if math.isinf(x):
            return str(x)
        if digits is None and x.is_integer():
            return str(int(x))
        return f"{x:.{2 if digits is None else digits}f}"
    return str(v)


#: Columns that hold sizes in bytes (the workload keys with unit "bytes", and `memory_bytes`).
_BYTE_COLUMNS = frozenset({"memory_bytes", "machine.memory", "machine.swap"})


def _fmt_key(col: str, v: Any) -> str:
    """A cell of column `col`: sizes in bytes as MiB or GiB, the rest as `_fmt`."""
    if col in _BYTE_COLUMNS and isinstance(v, numbers.Real) and not pd.isna(v) \
            and float(v) > 0:
        n = int(float(v))
        return f"{n >> 30} GiB" if n % (1 << 30) == 0 else f"{n / (1 << 20):g} MiB"
    return _fmt(v)


def _ci(low: Any, high: Any) -> str:
    """An interval to one decimal, '-' when it has no bounds (n < 2)."""
    lo, hi = _fmt(low, 1), _fmt(high, 1)
    return "-" if lo == hi == "-" else f"[{lo}, {hi}]"


def _fmt_p(v: Any) -> str:
    """A p-value: three significant digits."""
    return f"{float(v):.3g}" if isinstance(v, numbers.Real) and not pd.isna(v) else _fmt(v)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
