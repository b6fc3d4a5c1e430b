"""`fragsim.analysis.stats` on synthetic runs tables: bootstrap intervals of the mean by group,
their fallbacks, determinism, and paired kernel contrasts on common seeds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fragsim.analysis.stats import bootstrap_mean, paired, summarize


def _runs(kernels: dict[str, np.ndarray], seeds: dict[str, list[int]] | None = None,
          metric: str = "hugepages_pct") -> pd.DataFrame:
    rows = []
    for kernel, values in kernels.items():
        for i, v in enumerate(values):
            seed = seeds[kernel][i] if seeds else i
            rows.append({"run_id": f"{kernel}-{seed}", "kernel": kernel, "seed": seed,
                         "status": "ok", metric: float(v)})
    frame = pd.DataFrame(rows)
    frame["kernel"] = frame["kernel"].astype("category")
    frame["status"] = frame["status"].astype("category")
    return frame


def test_summarize_means_and_intervals() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 12), rng.normal(60, 5, 8)
    s = summarize(_runs({"2.6.20": a, "2.6.24": b}), n_resamples=2000)
    assert list(s.columns) == ["kernel", "n", "mean", "ci_low", "ci_high", "std", "ci_method"]
    assert list(s["kernel"]) == ["2.6.20", "2.6.24"] and list(s["n"]) == [12, 8]
    assert s["mean"].tolist() == pytest.approx([a.mean(), b.mean()])
    assert s["std"].tolist() == pytest.approx([a.std(ddof=1), b.std(ddof=1)])
    assert (s["ci_low"] < s["mean"]).all() and (s["mean"] < s["ci_high"]).all()
    assert (s["ci_method"] == "BCa").all()
    # The interval is about the t interval's width (n = 12: within a quarter of it).
    t_half = 2.2 * a.std(ddof=1) / math.sqrt(12)
    assert (s["ci_high"] - s["ci_low"])[0] == pytest.approx(2 * t_half, rel=0.25)


def test_summarize_is_deterministic_and_groups_are_independent() -> None:
    rng = np.random.default_rng(4)
    runs = _runs({"2.6.20": rng.normal(10, 2, 6), "2.6.24": rng.normal(50, 9, 6)})
    one = summarize(runs, n_resamples=999)
    pd.testing.assert_frame_equal(one, summarize(runs, n_resamples=999))
    other = summarize(runs, n_resamples=999, seed=1)
    assert not np.allclose(one["ci_low"], other["ci_low"])
    alone = summarize(runs[runs["kernel"] == "2.6.24"], n_resamples=999)
    assert alone["ci_low"].iloc[0] == one["ci_low"].iloc[1]


def test_summarize_counts_only_ok_runs_with_a_value() -> None:
    runs = _runs({"2.6.20": np.array([1.0, 2.0, 3.0, 4.0]), "2.6.24": np.array([5.0])})
    runs["status"] = runs["status"].cat.add_categories(["failed"])
    runs.loc[0, "status"] = "failed"
    runs.loc[1, "hugepages_pct"] = math.nan
    s = summarize(runs, n_resamples=999).set_index("kernel")
    assert s.loc["2.6.20", "n"] == 2 and s.loc["2.6.20", "mean"] == 3.5
    assert s.loc["2.6.20", "ci_method"] == "percentile"  # n < 3
    assert 3.0 <= s.loc["2.6.20", "ci_low"] <= 3.5 <= s.loc["2.6.20", "ci_high"] <= 4.0
    # One run: its mean, no interval.
    assert s.loc["2.6.24", "n"] == 1 and s.loc["2.6.24", "mean"] == 5.0
    assert math.isnan(s.loc["2.6.24", "ci_low"]) and math.isnan(s.loc["2.6.24", "std"])
    # A group of failed runs only is kept, with n 0.
    runs.loc[runs["kernel"] == "2.6.24", "status"] = "failed"
    s = summarize(runs, n_resamples=999).set_index("kernel")
    assert s.loc["2.6.24", "n"] == 0 and math.isnan(s.loc["2.6.24", "mean"])


def test_equal_values_fall_back_to_the_percentile_interval() -> None:
    lo, hi, method = bootstrap_mean(np.full(6, 42.0), n_resamples=999)
    assert (lo, hi, method) == (42.0, 42.0, "percentile")
    assert bootstrap_mean(np.array([1.0]))[2] == ""


def test_summarize_by_several_columns_and_levels() -> None:
    rng = np.random.default_rng(5)
    runs = pd.concat([_runs({"2.6.20": rng.normal(10, 2, 5), "2.6.24": rng.normal(50, 4, 5)})
                      .assign(**{"kernel.min_free_kbytes": kb}) for kb in (1024, 4096)],
                     ignore_index=True)
    s = summarize(runs, by=("kernel", "kernel.min_free_kbytes"), n_resamples=999)
    assert s.shape[0] == 4 and list(s.columns[:2]) == ["kernel", "kernel.min_free_kbytes"]
    wide = summarize(runs, level=0.99, n_resamples=999)
    narrow = summarize(runs, level=0.8, n_resamples=999)
    assert ((wide["ci_high"] - wide["ci_low"]) > (narrow["ci_high"] - narrow["ci_low"])).all()
    with pytest.raises(KeyError, match="pass1_pct"):
        summarize(runs, metric="pass1_pct")


def test_paired_detects_a_known_shift_despite_seed_variation() -> None:
    rng = np.random.default_rng(6)
    base = rng.normal(30, 15, 10)  # large variation between seeds
    runs = _runs({"2.6.20": base, "2.6.24": base + 5.0 + rng.normal(0, 0.5, 10)})
    p = paired(runs, "hugepages_pct", "2.6.20", "2.6.24")
    row = p.iloc[0]
    assert (row["baseline"], row["against"], row["n"], row["unpaired"]) == (
        "2.6.20", "2.6.24", 10, 0)
    assert row["mean_diff"] == pytest.approx(row["mean_against"] - row["mean_baseline"])
    assert row["ci_low"] < 5.0 < row["ci_high"] and row["ci_low"] > 0
    assert row["ci_high"] - row["ci_low"] < 1.5  # pairing removes the seeds' variation
    assert row["p_value"] < 0.01
    # No shift: the interval covers 0 and the test does not reject.
    same = _runs({"2.6.20": base, "2.6.24": base + rng.normal(0, 0.5, 10)})
    row = paired(same, "hugepages_pct", "2.6.20", "2.6.24").iloc[0]
    assert row["ci_low"] < 0 < row["ci_high"] and row["p_value"] > 0.05


def test_paired_drops_unpaired_seeds_and_failed_runs() -> None:
    runs = _runs({"2.6.20": np.arange(10.0), "2.6.24": np.arange(10.0) + 2},
                 seeds={"2.6.20": list(range(10)), "2.6.24": list(range(3, 13))})
    runs["status"] = runs["status"].cat.add_categories(["failed"])
    runs.loc[(runs["kernel"] == "2.6.24") & (runs["seed"] == 5), "status"] = "failed"
    row = paired(runs, "hugepages_pct", "2.6.20", "2.6.24").iloc[0]
    assert row["n"] == 6  # seeds 3, 4, 6, 7, 8, 9
    assert row["unpaired"] == 7 and row["unpaired_keys"] == [0, 1, 2, 5, 10, 11, 12]
    # against seed s holds s - 3 + 2, baseline seed s holds s
    assert row["mean_diff"] == pytest.approx(-1.0)


def test_paired_by_group_and_degenerate_cases() -> None:
    rng = np.random.default_rng(7)
    frames = []
    for kb, shift in ((1024, 1.0), (4096, 20.0)):
        base = rng.normal(20, 5, 6)
        frames.append(_runs({"a": base, "b": base + shift})
                      .assign(**{"kernel.min_free_kbytes": kb}))
    runs = pd.concat(frames, ignore_index=True)
    p = paired(runs, "hugepages_pct", "a", "b", by=("kernel.min_free_kbytes",))
    assert p["kernel.min_free_kbytes"].tolist() == [1024, 4096]
    assert p["mean_diff"].tolist() == pytest.approx([1.0, 20.0])
    # All differences zero: no test, a zero-width interval.
    zero = paired(_runs({"a": np.arange(5.0), "b": np.arange(5.0)}), "hugepages_pct",
                  "a", "b").iloc[0]
    assert math.isnan(zero["p_value"]) and (zero["ci_low"], zero["ci_high"]) == (0.0, 0.0)
    # One pair: a difference, neither interval nor test.
    one = paired(_runs({"a": np.array([1.0]), "b": np.array([3.0])}), "hugepages_pct",
                 "a", "b").iloc[0]
    assert one["n"] == 1 and one["mean_diff"] == 2.0
    assert math.isnan(one["p_value"]) and math.isnan(one["ci_low"])
    # A kernel that is absent: no pairs, everything unpaired.
    none = paired(frames[0], "hugepages_pct", "a", "c").iloc[0]
    assert none["n"] == 0 and none["unpaired"] == 6 and math.isnan(none["mean_diff"])


def test_paired_refuses_duplicate_pairing_keys() -> None:
    runs = pd.concat([_runs({"a": np.arange(3.0), "b": np.arange(3.0)})] * 2,
                     ignore_index=True)
    with pytest.raises(ValueError, match="several runs share"):
        paired(runs, "hugepages_pct", "a", "b")


def test_paired_on_several_columns() -> None:
    runs = _runs({"a": np.arange(4.0), "b": np.arange(4.0) + 1}).assign(
        replicate=[0, 0, 1, 1] * 2)
    row = paired(runs.iloc[:-1], "hugepages_pct", "a", "b",
                 pair_on=("seed", "replicate")).iloc[0]
    assert row["n"] == 3 and row["unpaired_keys"] == [(3, 1)]
