"""Replaying a trace in 6.1's tracepoint formats under the 6.1 preset, and 6.1's gfp flags.

The trace is experiments/traces/kmem-6.1-synthetic.trace (synthetic: the only 6.1 kernel here,
Debian's user-mode-linux, has no ftrace; see experiments/traces/make_6_1_trace.py).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from fragsim.experiments.traces import make_6_1_trace
from fragsim.models.mm import procfs
from fragsim.models.mm.gfp import gfpflags_to_migratetype
from fragsim.models.mm.gfp_6_1 import gfp_migratetype, parse_gfp_flags, to_model_gfp
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.sim.cli import main
from fragsim.sim.replay import Replayer, replay_stream
from fragsim.sim.trace import ALLOC, NUMBERINGS, iter_batches
from fragsim.sim.trace_gfp import GfpCheck

TRACE = Path(__file__).resolve().parents[1] / "experiments" / "traces" / "kmem-6.1-synthetic.trace"
RAW_VMSTAT = (Path(__file__).resolve().parents[1] / "experiments" / "uml" / "results" / "raw"
              / "run-1" / "compact" / "vmstat")
#: The UML guest's geometry, a quarter of its size (the traced machine has 16 MiB).
ARGS = ["--kernel", "6.1", "--memory", "64MiB", "--pageblock-order", "10"]
EVENT_RE = re.compile(r": (mm_page_\w+): ")
ALLOC_RE = re.compile(r"mm_page_alloc: page=\S+ pfn=0x[0-9a-f]+ order=(\d+) migratetype=(\d+) "
                      r"gfp_flags=(\S+)$")


def _lines() -> list[str]:
    return TRACE.read_text().splitlines()


def _events() -> Counter[str]:
    return Counter(m.group(1) for line in _lines() if (m := EVENT_RE.search(line)))


def _replay(checked: bool) -> Replayer:
    config = MachineConfig(memory=64 << 20, policy="mobility-6.1", pageblock_order=10)
    replayer = Replayer(Machine(config))
    if checked:
        replayer.gfp = GfpCheck()
    with TRACE.open("rb") as fh:
        replay_stream(fh, replayer, strict=True, source=str(TRACE))
    return replayer


def test_trace_is_what_the_generator_writes(tmp_path: Path) -> None:
    out = tmp_path / "t.trace"
    assert make_6_1_trace.main(["-o", str(out)]) == 0
    assert out.read_bytes() == TRACE.read_bytes()
    assert TRACE.stat().st_size < 2 << 20


def test_trace_has_every_6_1_page_event() -> None:
    events = _events()
    for name in ("mm_page_alloc", "mm_page_free", "mm_page_free_batched",
                 "mm_page_alloc_zone_locked", "mm_page_pcpu_drain", "mm_page_alloc_extfrag"):
        assert events[name] > 0, name


def test_parsed_histogram_equals_the_trace() -> None:
    """The reader's (order, migratetype) of every allocation is the trace's; zone_locked and
    pcpu_drain lines are no allocator events; extfrag lines are counted."""
    expected: Counter[tuple[int, int]] = Counter()
    table = NUMBERINGS["modern"]
    for line in _lines():
        m = ALLOC_RE.search(line)
        if m:
            expected[int(m.group(1)), table[int(m.group(2))]] += 1
    got: Counter[tuple[int, int]] = Counter()
    events = extfrag = 0
    with TRACE.open("rb") as fh:
        for batch in iter_batches(fh):
            assert not batch.malformed
            events += len(batch)
            extfrag += batch.extfrag
            for kind, order, mt in zip(batch.kinds, batch.orders, batch.migratetypes,
                                       strict=True):
                if kind == ALLOC:
                    got[int(order), int(mt)] += 1
    counts = _events()
    assert got == expected and sum(got.values()) == counts["mm_page_alloc"]
    assert events == counts["mm_page_alloc"] + counts["mm_page_free"] + counts[
        "mm_page_free_batched"]
    assert extfrag == counts["mm_page_alloc_extfrag"]


def test_replay_under_6_1() -> None:
    counts = _events()
    r = _replay(checked=True)
    m = r.machine
    assert m.config.policy == "mobility-6.1" and m.pageblock_order == 10
    check_invariants(m)
    assert r.count(0) == counts["mm_page_alloc"]  # C_ALLOCS
    assert r.count(1) == 0  # the model served every allocation
    assert r.count(5) + r.count(8) == counts["mm_page_free"] + counts["mm_page_free_batched"]
    assert r.count(8) == counts["mm_page_free_batched"]  # every batched free is an echo
    assert r.count(6) == r.count(7) == 0  # no unmatched free, no order mismatch
    assert r.extfrag == counts["mm_page_alloc_extfrag"]
    # The model's allocations per order are the trace's.
    orders = Counter(int(m_.group(1)) for line in _lines() if (m_ := ALLOC_RE.search(line)))
    vm = m.vmstat()
    assert {o: vm[f"alloc_order_{o}"] for o in orders} == dict(orders)
    pages = sum(n << o for o, n in orders.items())
    # 6.1 /proc/vmstat of the replayed machine: 6.1's names, the real file's order.
    text = procfs.vmstat(m)
    assert f"\npgalloc_normal {pages}\n" in text
    real = [line.split()[0] for line in RAW_VMSTAT.read_text().splitlines()]
    ours = [line.split()[0] for line in text.splitlines()]
    assert [n for n in real if n in ours] == ours
    # The gfp check read every allocation, and its migratetypes agree with the flags.
    assert r.gfp is not None
    assert r.gfp.checked == counts["mm_page_alloc"] and r.gfp.mismatches == 0


def test_checked_reader_replays_the_same() -> None:
    """The gfp-checking (plain Python) reader and the compiled one give the same machine."""
    a, b = _replay(checked=True), _replay(checked=False)
    assert procfs.buddyinfo(a.machine) == procfs.buddyinfo(b.machine)
    assert procfs.pagetypeinfo(a.machine) == procfs.pagetypeinfo(b.machine)
    assert (a.counters == b.counters).all()


def test_cli_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(TRACE), *ARGS, "--gfp-flags", "6.1"]) == 0
    out = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert out["policy"] == "mobility-6.1"
    assert out["gfp_migratetype_mismatches"] == "0"
    assert int(out["gfp_distinct_masks"]) == len({m.group(3) for line in _lines()
                                                  if (m := ALLOC_RE.search(line))})


def test_trace_masks_resolve_to_their_migratetype() -> None:
    """For every mask of the trace, the model's migratetype of its model GFP is 6.1's
    `gfp_migratetype()` (in the model's numbering)."""
    table = NUMBERINGS["modern"]
    masks = {parse_gfp_flags(m.group(3)) for line in _lines() if (m := ALLOC_RE.search(line))}
    assert len(masks) >= 5
    for mask in masks:
        assert gfpflags_to_migratetype(to_model_gfp(mask)) == table[gfp_migratetype(mask)]


def test_unknown_gfp_flag_is_one_line_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines()[:40]
    at = next(i for i, line in enumerate(lines) if "mm_page_alloc:" in line)
    lines[at] = lines[at].replace("gfp_flags=", "gfp_flags=__GFP_BOGUS|")
    path = tmp_path / "bad.trace"
    path.write_text("\n".join(lines) + "\n")
    assert main(["replay", str(path), *ARGS, "--gfp-flags", "6.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown gfp flag '__GFP_BOGUS'" in err
    assert f":{at + 1}:" in err
    # Without the check the gfp text is not read, as before.
    assert main(["replay", str(path), *ARGS]) == 0


def test_gfp_check_needs_modern_numbering(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(TRACE), *ARGS, "--gfp-flags", "6.1",
                 "--migratetype-numbering", "2.6.24"]) == 2
    assert "--migratetype-numbering modern" in capsys.readouterr().err
    assert main(["replay", str(TRACE), "--gfp-flags", "5.10"]) == 2
    assert "allowed are ignore, 6.1" in capsys.readouterr().err


def test_6_1_lines_one_by_one() -> None:
    """6.1's formats through the reference reader: a failed allocation (NULL page, pfn 0x0),
    the two events that are no requests, and extfrag with 6.1's fields."""
    from fragsim.sim.trace import ALLOC_FAILED, parse_line, parse_lines

    pre = "              dd-260     [000] .....     3.000000: "
    failed = parse_line(f"{pre}mm_page_alloc: page=0000000000000000 pfn=0x0 order=3 "
                        "migratetype=0 gfp_flags=GFP_NOWAIT|__GFP_NOWARN|__GFP_COMP")
    assert failed is not None and failed.kind == ALLOC_FAILED and failed.order == 3
    assert parse_line(f"{pre}mm_page_alloc_zone_locked: page=00000000a1b2c3d4 pfn=0x7c00 "
                      "order=0 migratetype=1 percpu_refill=1") is None
    assert parse_line(f"{pre}mm_page_pcpu_drain: page=00000000a1b2c3d4 pfn=0x7c00 order=0 "
                      "migratetype=1") is None
    batch = parse_lines([f"{pre}mm_page_alloc_extfrag: page=00000000a1b2c3d4 pfn=0x7c00 "
                         "alloc_order=0 fallback_order=10 pageblock_order=10 "
                         "alloc_migratetype=2 fallback_migratetype=1 fragmenting=0 "
                         "change_ownership=1"])
    assert (batch.extfrag, batch.extfrag_fragmenting, batch.extfrag_change_ownership) == (1, 0, 1)
    assert len(batch) == 0
