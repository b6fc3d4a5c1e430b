"""`fragsim run` and `fragsim reproduce` from the command line: tables written, one-line
errors, stdin workloads."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd
import pytest

from fragsim.sim.cli import main
from tests.conftest_tiny import TINY_DESKTOP, TINY_STRESS


def _sets(items: list[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        out += ["--set", item]
    return out


def test_run_writes_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["run", "desktop", "--kernel", "2.6.20", "--seed", "3", "--out", str(out),
                 "--no-progress", *_sets(TINY_DESKTOP)])
    assert code == 0
    text = capsys.readouterr().out
    assert "desktop on 2.6.20" in text and "huge pages" in text
    runs = pd.read_parquet(out / "runs.parquet")
    assert runs.shape[0] == 1 and runs["seed"].iloc[0] == 3 and runs["status"].iloc[0] == "ok"
    for name in ("samples", "events"):
        frame = pd.read_parquet(out / f"{name}.parquet")
        assert (frame["seed"] == 3).all() and (frame["run_id"] == runs["run_id"].iloc[0]).all()
    assert (out / "workload.json").exists()


def test_run_stress_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "stress-highalloc", "--no-progress", *_sets(TINY_STRESS)]) == 0
    text = capsys.readouterr().out
    assert "pass 1 (under load)" in text and "pass 3 (at rest)" in text


def test_run_workload_from_stdin(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = '[workload]\nname = "mine"\nscenario = "desktop"\n'
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(["run", "-", "--no-progress", *_sets(TINY_DESKTOP)]) == 0
    assert "run " in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "desktop", "--kernel", "2.6.19"], "kernel.version '2.6.19' is unknown"),
    (["run", "desktop", "--days", "soon"], "--days 'soon' is not a number"),
    (["run", "desktop", "--memory", "lots"], "is not a size"),
    (["run", "desktop", "--set", "files.nope=1"], "unknown key 'nope' of [files]"),
    (["run", "nosuch"], "unknown workload 'nosuch'"),
    (["run", "missing.toml"], "no such file"),
    (["run"], "the following arguments are required"),
    (["run", "desktop", "--seed"], "expected one argument"),
    (["reproduce", "--seeds", "0"], "--seeds 0 must be at least 1"),
    (["reproduce", "--min-free-settings", "lots"], "--min-free-settings 'lots'"),
])
def test_user_mistakes_are_one_line(argv: list[str], message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fragsim: error: ")
    assert message in err


def test_failed_run_keeps_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from fragsim.models.agents import user

    def broken(self: object) -> object:
        raise RuntimeError("boom")
        yield  # pragma: no cover

    monkeypatch.setattr(user.Apps, "run", broken)
    out = tmp_path / "o"
    assert main(["run", "desktop", "--out", str(out), "--no-progress",
                 *_sets(TINY_DESKTOP)]) == 1
    assert "fragsim: error: run failed: RuntimeError: boom" in capsys.readouterr().err
    assert pd.read_parquet(out / "runs.parquet")["status"].iloc[0] == "failed"
