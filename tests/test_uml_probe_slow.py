"""experiments/uml/probe_tracefs.py boots the UML kernel once and reports its kmem events."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("linux.uml") is None,
                    reason="needs linux.uml (apt-get install user-mode-linux)")
def test_probe_reports_the_six_events() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "uml" / "probe_tracefs.py")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("kernel: 6.1")
    events = [line for line in lines if line.startswith("kmem/")]
    assert len(events) == 6
    # Exit 0 exactly when every event is present.
    assert (proc.returncode == 0) == all(line.endswith("present") for line in events)
