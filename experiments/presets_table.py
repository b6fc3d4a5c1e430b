"""Every kernel preset on one desktop workload and seed: the table of issue 10.

Runs `experiments/sweeps/presets-desktop.toml` (1 GiB desktop, 2 simulated days, seed 0; the
same workload on every preset, plus a THP `always` run on the presets that have transparent
huge pages) and prints one row per run: huge pages allocatable at the end (Mel Gorman's
`hugepages_get` probe), the pageblock census at the end (pageblocks of each migrate type, by
the preset's own type names, and pageblocks holding pages of another mobility), fallbacks, and
THP fault success (`thp_fault_alloc / (thp_fault_alloc + thp_fault_fallback)`). Writes
`table.csv` and `table.md` into `--out`.

    python experiments/presets_table.py [--out DIR] [--workers N | --scheduler ADDR]
                                        [--days D] [--seeds N]
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import fragsim
from fragsim.experiments._script import sweep_args
from fragsim.models.mm.policy import get_policy
from fragsim.models.mm.profiles import kernel_profile

SPEC = Path(__file__).parent / "sweeps" / "presets-desktop.toml"


def _type_names(kernel: str) -> dict[int, str]:
    """Internal migrate type -> the preset's /proc/pagetypeinfo name."""
    return dict(get_policy(kernel_profile(kernel)["policy"]).migratetype_names)


def table(runs: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """One row per run (module docstring); pageblock counts are summed over zones."""
    rows = []
    s = samples[samples["t_s"] == samples.groupby("run_id", observed=True)["t_s"]
                .transform("max")]
    order = runs.assign(
        _v=[tuple(int(x) for x in str(k).split(".")) for k in runs["kernel"]],
        _thp=runs["kernel.thp_enabled"].astype(str) != "never",
        _defrag=runs["kernel.defrag_mode"].astype(int) if "kernel.defrag_mode" in runs else 0)
    for r in order.sort_values(["_v", "_defrag", "_thp"]).to_dict("records"):
        mine = s[s["run_id"] == r["run_id"]]
        blocks = mine[mine["metric"] == "pageblocks"].groupby("migratetype")["value"].sum()

        def metric(name: str, mine: pd.DataFrame = mine) -> int:
            return int(mine.loc[mine["metric"] == name, "value"].sum())

        names = _type_names(str(r["kernel"]))
        policy = get_policy(kernel_profile(str(r["kernel"]))["policy"])
        census = (", ".join(f"{names[int(mt)]} {int(n)}" for mt, n in blocks.items()
                            if int(n) and int(mt) in names)
                  if policy.grouping else f"{int(blocks.sum())} untyped (no grouping)")
        alloc = r.get("thp_fault_alloc")
        fallback = r.get("thp_fault_fallback")
        thp = str(r["kernel.thp_enabled"])
        has_thp = thp != "never" and pd.notna(alloc) and pd.notna(fallback)
        tries = int(alloc) + int(fallback) if has_thp else 0
        rows.append({
            "kernel": str(r["kernel"]),
            "thp": thp,
            "defrag_mode": int(r.get("kernel.defrag_mode", 0)),
            "hugepages_pct": round(float(r["hugepages_pct"]), 1),
            "pageblocks": census,
            "mixed_pageblocks": metric("pageblocks_mixed"),
            "with_unmovable": metric("pageblocks_with_unmovable"),
            "extfrag_fallback": int(r["extfrag_fallback"]),
            "thp_fault_alloc": int(alloc) if has_thp else None,
            "thp_fault_fallback": int(fallback) if has_thp else None,
            "thp_success_pct": round(100.0 * int(alloc) / tries, 1) if tries else None,
            "wall_s": round(float(r["wall_s"]), 1),
        })
    return pd.DataFrame(rows)


def markdown(t: pd.DataFrame) -> str:
    """The table as README Markdown (`—` where a run has no THP). `mixed`: pageblocks holding
    allocations of two or more mobility types (`models.mm.census`), comparable across kernels
    with and without grouping."""
    head = ("| kernel | THP | defrag_mode | huge pages % | pageblocks by type | mixed | "
            "with unmovable | fallbacks | THP faults: huge / fallback | THP success % |")
    lines = [head, "|" + "---|" * 10]
    for r in t.itertuples(index=False):
        thp = (f"{int(r.thp_fault_alloc):,} / {int(r.thp_fault_fallback):,}"
               if pd.notna(r.thp_fault_alloc) else "—")
        ok = f"{r.thp_success_pct}" if pd.notna(r.thp_success_pct) else "—"
        lines.append(f"| {r.kernel} | {r.thp} | {r.defrag_mode} | {r.hugepages_pct} | "
                     f"{r.pageblocks} | {r.mixed_pageblocks} | {r.with_unmovable} | "
                     f"{r.extfrag_fallback:,} | {thp} | {ok} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args, spec = sweep_args(__doc__ or "", SPEC, "results-presets")
    runs, samples, _ = fragsim.sweep(spec, args.out, workers=args.workers,
                                     scheduler=args.scheduler, progress=True)
    t = table(runs, samples)
    t.to_csv(args.out / "table.csv", index=False)
    (args.out / "table.md").write_text(markdown(t))
    print(markdown(t))
    print(f"table: {args.out}/table.md")


if __name__ == "__main__":
    main()
