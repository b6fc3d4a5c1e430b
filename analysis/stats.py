"""Statistics over runs: bootstrap confidence intervals of a metric's mean, paired kernel contrasts.

A run is one observation: `summarize` bootstraps the mean of a `runs` column over the runs of each
group; `paired` compares two kernels on the seeds they share, which removes the workload's
run-to-run variation from the contrast (two policies on one seed see the same workload,
`fragsim.sim.streams`). Only runs with `status == "ok"` and a non-null metric count.

Intervals are scipy's bootstrap of the mean, BCa (bias-corrected and accelerated). BCa
degenerates when all values are equal (its acceleration is 0/0) and is no better than the
percentile interval for n < 3, so those groups get the percentile interval (`ci_method`
says which); a group of one run has a NaN interval. Each group's resampling starts from
`numpy.random.default_rng(seed)`, so results are deterministic given `seed` and one group's
interval does not depend on which other groups exist.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["bootstrap_mean", "paired", "summarize"]


def bootstrap_mean(values: np.ndarray, level: float = 0.95, n_resamples: int = 9999,
                   seed: int = 0) -> tuple[float, float, str]:
    """(ci_low, ci_high, method) of the mean of `values` (module docstring: BCa, percentile
    when BCa degenerates, NaN bounds and method "" for fewer than two values)."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape[0] < 2:
        return math.nan, math.nan, ""
    if v.shape[0] >= 3 and np.ptp(v) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            ci = _bootstrap(v, level, n_resamples, seed, "BCa")
        if np.isfinite(ci).all():
            return float(ci[0]), float(ci[1]), "BCa"
    ci = _bootstrap(v, level, n_resamples, seed, "percentile")
    return float(ci[0]), float(ci[1]), "percentile"


def _bootstrap(v: np.ndarray, level: float, n_resamples: int, seed: int,
               method: str) -> np.ndarray:
    res = stats.bootstrap((v,), np.mean, n_resamples=n_resamples, vectorized=True,
                          confidence_level=level, method=method,
                          rng=np.random.default_rng(seed))
    return np.array([res.confidence_interval.low, res.confidence_interval.high])


def _ok(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Runs with status ok (all runs when there is no status column) and a non-null metric."""
    if metric not in runs.columns:
        raise KeyError(f"runs has no column {metric!r}")
    keep = runs[metric].notna().to_numpy(dtype=bool)
    if "status" in runs.columns:
        keep = keep & (runs["status"].astype(str).to_numpy() == "ok")
    return runs[keep]


def _values(frame: pd.DataFrame, metric: str) -> np.ndarray:
    return np.asarray(frame[metric].to_numpy(dtype=np.float64, na_value=np.nan))


def _groups(frame: pd.DataFrame, by: Sequence[str]) -> list[tuple[tuple[object, ...],
                                                                  pd.DataFrame]]:
    """(key tuple, rows) per group of `by` (one group of everything when `by` is empty)."""
    if not by:
        return [((), frame)]
    grouped = frame.groupby(list(by), observed=True, sort=True, dropna=False)
    return [(k if isinstance(k, tuple) else (k,), g) for k, g in grouped]


def summarize(runs: pd.DataFrame, metric: str = "hugepages_pct",
              by: Sequence[str] = ("kernel",), level: float = 0.95, n_resamples: int = 9999,
              seed: int = 0) -> pd.DataFrame:
    """One row per group of `by`: `n` ok runs, `mean`, bootstrap `ci_low`..`ci_high` of the
    mean at `level`, `std` (ddof 1) and `ci_method` (module docstring). A group whose runs all
    failed is kept with n 0 and NaN statistics."""
    by = list(by)
    _ok(runs.iloc[:0], metric)  # the KeyError of a missing metric, also for empty runs
    rows = []
    for key, group in _groups(runs, by):
        v = _values(_ok(group, metric), metric)
        lo, hi, method = bootstrap_mean(v, level, n_resamples, seed)
        rows.append({**dict(zip(by, key, strict=True)), "n": int(v.shape[0]),
                     "mean": float(v.mean()) if v.shape[0] else math.nan,
                     "ci_low": lo, "ci_high": hi,
                     "std": float(v.std(ddof=1)) if v.shape[0] > 1 else math.nan,
                     "ci_method": method})
    return pd.DataFrame(rows, columns=[*by, "n", "mean", "ci_low", "ci_high", "std",
                                       "ci_method"])


def _by_pair(frame: pd.DataFrame, metric: str, pair_on: list[str], kernel: str) -> pd.Series:
    """The metric indexed by the pairing key; duplicate keys are an error (not averaged)."""
    index = pd.MultiIndex.from_frame(frame[pair_on].astype(object))
    s = pd.Series(_values(frame, metric), index=index)
    if s.index.has_duplicates:
        dup = [k[0] if len(pair_on) == 1 else k
               for k in sorted(set(s.index[s.index.duplicated()]))[:5]]
        raise ValueError(f"kernel {kernel}: several runs share {pair_on} = {dup}: add the "
                         "columns that tell them apart to pair_on or by")
    return s


def paired(runs: pd.DataFrame, metric: str, baseline: str, against: str,
           pair_on: Sequence[str] = ("seed",), by: Sequence[str] = (),
           kernel_col: str = "kernel", level: float = 0.95, seed: int = 0,
           n_resamples: int = 9999) -> pd.DataFrame:
    """Paired contrast of kernel `against` with kernel `baseline` on common `pair_on` keys,
    one row per group of `by`.

    Columns: by..., `baseline`, `against`, `n` (pairs), `mean_baseline`, `mean_against` (over
    the pairs), `mean_diff` (against - baseline), bootstrap `ci_low`..`ci_high` of the mean
    difference (module docstring), `ci_method`, `p_value` (two-sided Wilcoxon signed-rank
    test; NaN for fewer than two pairs or when every difference is zero), `unpaired` (keys
    run ok by only one of the two kernels) and `unpaired_keys` (those keys, sorted).
    """
    by, pair_on = list(by), list(pair_on)
    ok = _ok(runs, metric)
    kernels = ok[kernel_col].astype(str)
    ok = ok[(kernels == baseline) | (kernels == against)]
    rows = []
    for key, group in _groups(ok, by):
        kg = group[kernel_col].astype(str)
        base = _by_pair(group[kg == baseline], metric, pair_on, baseline)
        other = _by_pair(group[kg == against], metric, pair_on, against)
        common = base.index.intersection(other.index)
        lonely = base.index.symmetric_difference(other.index)
        b = base.loc[common].to_numpy()
        a = other.loc[common].to_numpy()
        diff = a - b
        lo, hi, method = bootstrap_mean(diff, level, n_resamples, seed)
        p = math.nan
        if diff.shape[0] >= 2 and np.any(diff != 0):
            p = float(stats.wilcoxon(diff).pvalue)
        n = int(diff.shape[0])
        rows.append({**dict(zip(by, key, strict=True)), "baseline": baseline,
                     "against": against, "n": n,
                     "mean_baseline": float(b.mean()) if n else math.nan,
                     "mean_against": float(a.mean()) if n else math.nan,
                     "mean_diff": float(diff.mean()) if n else math.nan,
                     "ci_low": lo, "ci_high": hi, "ci_method": method, "p_value": p,
                     "unpaired": len(lonely),
                     "unpaired_keys": sorted(k[0] if len(pair_on) == 1 else k for k in lonely)})
    return pd.DataFrame(rows, columns=[*by, "baseline", "against", "n", "mean_baseline",
                                       "mean_against", "mean_diff", "ci_low", "ci_high",
                                       "ci_method", "p_value", "unpaired", "unpaired_keys"])
