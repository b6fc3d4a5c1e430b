"""experiments/uml/run_uml.py boots the real Linux 6.1 under user-mode-linux (slow: seconds to
minutes) with a short load; every stage's snapshots parse and reach the tables."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fragsim.models.mm.procparse import Buddyinfo, Pagetypeinfo, parse_proc
from tests.test_uml_tables import STAGES

ROOT = Path(__file__).resolve().parent.parent
MISSING = [tool for tool in ("linux.uml", "mkfs.ext2", "cc") if shutil.which(tool) is None]


@pytest.mark.slow
@pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} "
                    "(apt-get install user-mode-linux e2fsprogs gcc)")
def test_short_load_under_uml(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "uml" / "run_uml.py"), "--runs", "1",
         "--out", str(out), "--mem-mib", "128", "--cache-mib", "8", "--anon-mib", "8",
         "--forks", "4", "--write-mib", "16", "--timeout", "600"],
        capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    raw = out / "raw" / "run-1"
    assert (raw / "kernel").read_text().startswith("6.1")
    for stage in STAGES:
        buddy = parse_proc((raw / stage / "buddyinfo").read_text())
        pti = parse_proc((raw / stage / "pagetypeinfo").read_text())
        assert isinstance(buddy, Buddyinfo) and isinstance(pti, Pagetypeinfo)
        assert pti.pageblock_order == 10  # no hugetlb in UML: MAX_ORDER - 1
        assert pti.block_types[:3] == ("Unmovable", "Movable", "Reclaimable")
        assert "nr_free_pages" in (raw / stage / "vmstat").read_text()
    stages = pd.read_csv(out / "stages.csv")
    assert tuple(stages["stage"]) == STAGES
    assert stages["high_order_free_share"].between(0, 1).all()
    # 128 MiB is 32 pageblocks of 4 MiB, every one counted in some type.
    assert (stages.filter(like="pageblocks_").sum(axis=1) == 32).all()
    assert set(pd.read_csv(out / "summary.csv")["stage"]) == set(STAGES)
