"""The example scripts of experiments/ run end to end on short sweeps (slow: minutes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize(("script", "figure"), [
    ("kernel_memory.py", "memory-map.png"),
    ("min_free_hugepages.py", "min-free.png"),
])
def test_example_script(tmp_path: Path, script: str, figure: str) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / script), "--out", str(out), "--days",
         "0.05", "--seeds", "2", "--workers", "2"],
        capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "95% bootstrap CI" in proc.stdout
    assert (out / figure).stat().st_size > 0 and (out / "manifest.json").exists()
