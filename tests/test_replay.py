"""Tests for `fragsim replay`: tiny traces worked by hand against 2.6.24 / 2.6.20, and the CLI.

The hand-worked machine is 16 MiB with MAX_ORDER 11 and pageblock_order 9: 4096 pages, four
order-10 blocks, eight pageblocks. That is above the grouping threshold (512 * 5 = 2560 pages),
so 2.6.24 groups by mobility. Its default min_free_kbytes is int_sqrt(16384 * 16) = 512 kB
(128 pages), so one pageblock, the first, is MIGRATE_RESERVE, and `move_freepages_block()` moves
the whole order-10 block at pfn 0 onto the Reserve list. Boot frees pfns upward, so the Movable
order-10 list is 3072, 2048, 1024 from its head.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fragsim.sim.replay as replay
from fragsim.models.mm.constants import ALLOC_NO_WATERMARKS
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.sim.cli import main
from fragsim.sim.trace import NUMBERINGS

SAMPLE = Path(__file__).resolve().parents[1] / "experiments" / "traces" / "sample-kmem.trace"
TINY = ["--memory", "16MiB", "--max-order", "11", "--pageblock-order", "9"]
PREFIX = "            bash-1234    [002] .....  4711.000101: "


def alloc(pfn: int, order: int = 0, mt: int = 1) -> str:
    return (f"{PREFIX}mm_page_alloc: page=0xffffea{pfn:010x} pfn=0x{pfn:x} order={order} "
            f"migratetype={mt} gfp_flags=GFP_KERNEL\n")


def free(pfn: int, order: int = 0, batched: bool = False) -> str:
    name = "mm_page_free_batched" if batched else "mm_page_free"
    return f"{PREFIX}{name}: page=0xffffea{pfn:010x} pfn=0x{pfn:x} order={order}\n"


def row(counts: list[int]) -> str:
    return "".join(f"{c:6d} " for c in counts)


Run = tuple[int, str, str]
RunReplay = Callable[..., Run]


@pytest.fixture
def run_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> RunReplay:
    """Write `text` to a trace file, run `fragsim replay FILE *args`: (exit code, out, err)."""

    def run(text: str, *args: str) -> Run:
        path = tmp_path / "t.trace"
        path.write_text(text)
        code = main(["replay", str(path), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def summary_of(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines())


def test_public_names_exist() -> None:
    for name in replay.__all__:
        assert hasattr(replay, name), name


# --- hand-worked traces -----------------------------------------------------------------------
def test_mobility_movable_then_unmovable(run_replay: RunReplay) -> None:
    # Movable order 0: the head order-10 block 3072 is split (expand keeps 3072, puts 3073 at
    # order 0 ... 3584 at order 9 on the Movable lists). Unmovable order 0: no Unmovable block,
    # so __rmqueue_fallback takes the largest Movable block, 2048 at order 10 >= pageblock_order/2:
    # move_freepages_block moves it (1024 pages >= 256) and pageblock 4 becomes Unmovable.
    text = alloc(0x100001, mt=1) + alloc(0x100002, mt=0)
    code, out, _ = run_replay(text, *TINY, "--show", "buddyinfo")
    assert code == 0
    assert out == "Node 0, zone   Normal " + row([2] * 11) + "\n"
    _, out, _ = run_replay(text, *TINY, "--show", "pagetypeinfo")
    assert out == (
        "Page block order: 9\n"
        "Pages per block:  512\n"
        "\n"
        "Free pages count per migrate type at order  " + row(list(range(11))) + "\n"
        "Node    0, zone   Normal, type    Unmovable " + row([1] * 10 + [0]) + "\n"
        "Node    0, zone   Normal, type  Reclaimable " + row([0] * 11) + "\n"
        "Node    0, zone   Normal, type      Movable " + row([1] * 11) + "\n"
        "Node    0, zone   Normal, type      Reserve " + row([0] * 10 + [1]) + "\n"
        "Node    0, zone   Normal, type      Isolate " + row([0] * 11) + "\n"
        "\n"
        "Number of blocks type     Unmovable  Reclaimable      Movable      Reserve      Isolate \n"
        "Node 0, zone   Normal            1            0            6            1            0 \n"
    )
    _, out, _ = run_replay(text, *TINY)
    s = summary_of(out)
    assert (s["extfrag_fallback"], s["extfrag_fragmenting"], s["pageblock_claimed"]) == (
        "1", "0", "1")
    assert s["free_pages"] == "4094"
    assert s["free_share_ge_pageblock_order"] == f"{3072 / 4094:.4f}"


def test_free_coalesces_back(run_replay: RunReplay) -> None:
    # Freeing the Movable page merges 3072 back to order 10 on the Movable list; the Unmovable
    # page keeps one block of each order 0..9 split off 2048.
    text = alloc(0x100001, mt=1) + alloc(0x100002, mt=0) + free(0x100001)
    code, out, _ = run_replay(text, *TINY, "--show", "buddyinfo")
    assert code == 0
    assert out == "Node 0, zone   Normal " + row([1] * 10 + [3]) + "\n"


def test_vanilla_takes_the_next_piece_of_the_same_block(run_replay: RunReplay) -> None:
    # 2.6.20: one list per order; the Unmovable page is 3073, the order-0 half split off 3072.
    text = alloc(0x100001, mt=1) + alloc(0x100002, mt=0)
    _, out, _ = run_replay(text, *TINY, "--policy", "vanilla", "--show", "buddyinfo")
    assert out == "Node 0, zone   Normal " + row([0] + [1] * 9 + [3]) + "\n"
    _, out, _ = run_replay(text, *TINY, "--policy", "vanilla")
    assert summary_of(out)["extfrag_fallback"] == "0"


def test_min_free_kbytes_zero_means_no_reserve(run_replay: RunReplay) -> None:
    # One allocation and its free leave the pageblocks as boot made them.
    _, out, _ = run_replay(alloc(0x10, mt=1) + free(0x10), *TINY, "--min-free-kbytes", "0",
                           "--show", "pagetypeinfo")
    assert out.endswith("Node 0, zone   Normal            0            0            8"
                        "            0            0 \n")


def test_migratetype_numbering(run_replay: RunReplay) -> None:
    # migratetype=2 is Reclaimable in modern traces (a fallback), Movable in old ones (none).
    text = alloc(0x100001, mt=2)
    _, out, _ = run_replay(text, *TINY)
    assert summary_of(out)["extfrag_fallback"] == "1"
    _, out, _ = run_replay(text, *TINY, "--migratetype-numbering", "2.6.24")
    assert summary_of(out)["extfrag_fallback"] == "0"


def test_mapping_bookkeeping(run_replay: RunReplay) -> None:
    text = (
        alloc(0x10) + alloc(0x10)  # remapped: the trace lost a free; the first block leaks
        + free(0x10) + free(0x10, batched=True)  # 5.x order: the batched event is an echo
        + alloc(0x20) + free(0x20, batched=True) + free(0x20)  # 3.3-4.x order: same
        + free(0x30)  # never allocated
        + free(0x20)  # freed already
        + alloc(0x40, order=1) + free(0x40, order=0)  # the model frees its order-1 block
        + "mm_page_alloc: page=(null) pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE\n"
    )
    code, out, err = run_replay(text, *TINY)
    assert code == 0 and err == ""
    s = summary_of(out)
    assert s["events_read"] == "12"
    assert s["allocs_replayed"] == "4"
    assert s["allocs_remapped"] == "1"
    assert s["frees_replayed"] == "3"
    assert s["batched_free_echoes"] == "2"
    assert s["frees_unmatched"] == "2"
    assert s["free_order_mismatches"] == "1"
    assert s["traced_allocs_failed"] == "1"
    assert s["allocs_failed"] == "0"
    assert s["free_pages"] == "4095"  # only the leaked page is still allocated


def test_model_failures_are_counted_per_order(run_replay: RunReplay) -> None:
    # 4 MiB vanilla is one order-10 block: the second order-10 request fails.
    text = alloc(0x400, order=10) + alloc(0x800, order=10) + free(0x800, order=10) + free(
        0x400, order=10)
    code, out, _ = run_replay(text, "--memory", "4MiB", "--policy", "vanilla")
    assert code == 0
    s = summary_of(out)
    assert s["allocs_failed"] == "1"
    assert s["allocs_failed_by_order"] == "0 0 0 0 0 0 0 0 0 0 1"
    assert s["frees_of_failed_allocs"] == "1"
    assert s["frees_replayed"] == "1"
    assert s["frees_unmatched"] == "0"
    assert s["free_pages"] == "1024"


def test_orders_beyond_max_order_fail(run_replay: RunReplay) -> None:
    code, out, _ = run_replay(alloc(0x10, order=5) + free(0x10, order=5), "--memory", "4MiB",
                              "--max-order", "4")
    s = summary_of(out)
    assert (s["max_order"], s["pageblock_order"]) == ("4", "3")
    assert (s["allocs_failed"], s["allocs_order_too_large"]) == ("1", "1")
    assert s["allocs_failed_by_order"] == "0 0 0 0"
    assert s["frees_of_failed_allocs"] == "1"


@pytest.mark.parametrize("view", ["extfrag", "unusable"])
def test_index_views(run_replay: RunReplay, view: str) -> None:
    code, out, _ = run_replay(alloc(0x10), *TINY, "--show", view)
    assert code == 0 and out.startswith("Node 0, zone   Normal ") and out.count("\n") == 1
    assert len(out.split()) == 4 + 11


def test_vmstat_view(run_replay: RunReplay) -> None:
    _, out, _ = run_replay(alloc(0x10) + alloc(0x20, mt=0), *TINY, "--show", "vmstat")
    stats = dict(line.split(" ") for line in out.splitlines())
    assert stats["extfrag_fallback"] == "1" and stats["nr_free_pages"] == "4094"


def on_cpu(cpu: int, line: str) -> str:
    return line.replace("[002]", f"[{cpu:03d}]", 1)


@pytest.mark.parametrize(("nr_cpus", "pcp_pages", "buddyinfo"), [
    (1, 2, [1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 15]),
    (2, 5, [0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 15]),
])
def test_per_cpu_lists(run_replay: RunReplay, nr_cpus: int, pcp_pages: int,
                       buddyinfo: list[int]) -> None:
    # 64 MiB: zone_batchsize(16384 pages) = 3, so a refill takes 3 pages (3072, 3073, 3074, in
    # that order at the list head) and high is 18. cpu 0 allocates 3072 and frees it back to
    # its list. With one cpu, trace cpu 1 is cpu 0 again and takes 3072 from the list; with two,
    # cpu 1 refills its own list with 3075, 3076, 3077 (splitting 3076's order-2 block).
    text = (on_cpu(0, alloc(0x10)) + on_cpu(0, free(0x10)) + on_cpu(1, alloc(0x11)))
    args = ["--memory", "64MiB", "--pcp", "--nr-cpus", str(nr_cpus)]
    _, out, _ = run_replay(text, *args)
    s = summary_of(out)
    assert (s["pcp_cpus"], s["pcp_pages"]) == (str(nr_cpus), str(pcp_pages))
    assert s["free_pages"] == str(16384 - 1 - pcp_pages)
    _, out, _ = run_replay(text, *args, "--show", "buddyinfo")
    assert out == "Node 0, zone   Normal " + row(buddyinfo) + "\n"


@pytest.mark.parametrize(("kernel", "pcp_pages"), [("2.6.35", 0), ("6.1", 8), ("6.15", 8)])
def test_order_2_goes_through_the_per_order_lists_on_6_1(run_replay: RunReplay, kernel: str,
                                                          pcp_pages: int) -> None:
    # 6.1 rmqueue_pcplist: an order-2 refill takes max(3 >> 2, 2) = 2 blocks, one served; the
    # free puts the other back on lists[pindex(MOVABLE, 2)]: 8 pages queued. 2.6.35's lists
    # are order-0 only, so both go through the buddy.
    text = alloc(0x10, order=2, mt=2) + free(0x10, order=2)
    _, out, _ = run_replay(text, "--memory", "64MiB", "--pcp", "--kernel", kernel)
    s = summary_of(out)
    assert s["pcp_pages"] == str(pcp_pages) and s["free_pages"] == str(16384 - pcp_pages)


EVENT = st.tuples(st.sampled_from(["alloc", "free", "batched", "null"]), st.integers(0, 7),
                  st.integers(0, 4), st.integers(0, 2))


@settings(max_examples=40, deadline=None)
@given(st.lists(EVENT, max_size=60))
def test_agrees_with_a_plain_reference(events: list[tuple[str, int, int, int]]) -> None:
    """The compiled replay loop against the rules written out in Python on Machine.alloc/free.

    64 KiB with MAX_ORDER 4 (16 pages, orders 0..3, so order 4 is too large) fails often.
    """
    config = MachineConfig(memory=64 << 10, max_order=4, pcp=False)
    ref = Machine(config)
    state: dict[int, tuple[str, int, int]] = {}
    want = dict.fromkeys(["allocs_replayed", "allocs_failed", "allocs_remapped",
                          "traced_allocs_failed", "frees_replayed", "frees_unmatched",
                          "free_order_mismatches", "batched_free_echoes",
                          "frees_of_failed_allocs"], 0)
    text = []
    for kind, pfn, order, mt in events:
        if kind == "alloc":
            text.append(alloc(pfn, order, mt))
            want["allocs_replayed"] += 1
            want["allocs_remapped"] += state.get(pfn, ("",))[0] == "mapped"
            got = -1
            if order < 4:
                got = ref.alloc(order, migratetype=NUMBERINGS["modern"][mt],
                                alloc_flags=ALLOC_NO_WATERMARKS)
            want["allocs_failed"] += got < 0
            state[pfn] = ("mapped", got, order) if got >= 0 else ("failed", -1, order)
        elif kind == "null":
            text.append(f"mm_page_alloc: page=(null) pfn=0x0 order={order} migratetype={mt} "
                        "gfp_flags=GFP_KERNEL\n")
            want["traced_allocs_failed"] += 1
        else:
            text.append(free(pfn, order, batched=kind == "batched"))
            what, model_pfn, model_order = state.get(pfn, ("", -1, 0))
            if what == "mapped":
                ref.free(model_pfn)
                want["frees_replayed"] += 1
                want["free_order_mismatches"] += model_order != order
                state[pfn] = (kind, -1, 0)
            elif what in ("free", "batched") and what != kind:
                want["batched_free_echoes"] += 1
                del state[pfn]
            elif what == "failed":
                want["frees_of_failed_allocs"] += 1
                state[pfn] = (kind, -1, 0)
            else:
                want["frees_unmatched"] += 1
    replayer = replay.Replayer(Machine(config))
    replay.replay_stream(io.StringIO("".join(text)), replayer)
    s = summary_of(replay.summary(replayer))
    assert {key: int(s[key]) for key in want} == want
    assert np.array_equal(replayer.machine.zones["nr_free_mt"], ref.zones["nr_free_mt"])
    assert np.array_equal(replayer.machine.pageblock_type, ref.pageblock_type)


# --- malformed lines and input ----------------------------------------------------------------
BAD = "mm_page_alloc: page=ffffea0004268080 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE\n"


def test_malformed_line_warns_and_is_skipped(run_replay: RunReplay) -> None:
    code, out, err = run_replay(alloc(0x10) + BAD + free(0x10), *TINY)
    assert code == 0
    assert err.splitlines() == [
        f"fragsim: warning: {Path(summary_of(out)['trace'])}:2: malformed trace line "
        "(mm_page_alloc without pfn= (the traced kernel did not print it; replay needs it)): "
        f"{BAD.rstrip()!r}; skipped"]
    s = summary_of(out)
    assert (s["malformed_lines_skipped"], s["frees_replayed"], s["lines_read"]) == ("1", "1", "3")


def test_many_malformed_lines_warn_a_few_times(run_replay: RunReplay) -> None:
    code, out, err = run_replay(BAD * 12 + alloc(0x10), *TINY)
    assert code == 0
    lines = err.splitlines()
    assert len(lines) == replay.MAX_WARNINGS + 1
    assert lines[-1] == f"fragsim: warning: {12 - replay.MAX_WARNINGS} more malformed lines skipped"
    assert summary_of(out)["malformed_lines_skipped"] == "12"


def test_strict_makes_a_malformed_line_an_error(run_replay: RunReplay) -> None:
    code, out, err = run_replay(alloc(0x10) + BAD, *TINY, "--strict")
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("fragsim: error: ") and "t.trace:2: malformed trace line (" in line
    assert "page=ffffea0004268080 order=0" in line


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text = alloc(0x100001, mt=1) + alloc(0x100002, mt=0)
    raw = (text + "\xff\xfe not text\n").encode("utf-8", "surrogateescape") + b"\xff\xfe\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    assert main(["replay", "-", *TINY, "--show", "buddyinfo"]) == 0
    assert capsys.readouterr().out == "Node 0, zone   Normal " + row([2] * 11) + "\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(["replay", "-", *TINY]) == 0
    s = summary_of(capsys.readouterr().out)
    assert (s["trace"], s["allocs_replayed"]) == ("<stdin>", "2")


# --- command-line mistakes: one line, exit 2 ---------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--policy", "buddy"], "unknown policy 'buddy': allowed are mobility, mobility-2.6.35, "
                            "mobility-6.1, mobility-6.15, vanilla"),
    (["--memory=-64MiB"], "size '-64MiB' must be positive"),
    (["--memory", "-4096"], "size '-4096' must be positive"),
    (["--memory", "lots"], "size 'lots' is not a size"),
    (["--memory", "6MiB"], "not a positive multiple of the max-order block (4096 KiB"),
    (["--max-order", "1"], "max-order 1 is out of range: allowed 2..16"),
    (["--max-order", "17"], "max-order 17 is out of range: allowed 2..16"),
    (["--max-order", "eleven"], "max-order 'eleven' is not an integer"),
    (["--pageblock-order", "11"], "pageblock-order 11 is out of range: allowed 1..10"),
    (["--pageblock-order", "0"], "pageblock-order 0 is out of range"),
    (["--min-free-kbytes", "-1"], "min_free_kbytes -1 must be >= 0"),
    (["--pcp", "--nr-cpus", "9"], "nr_cpus 9 is out of range: allowed 1..8"),
    (["--nr-cpus", "two"], "nr-cpus 'two' is not an integer"),
    (["--show", "zoneinfo"], "unknown --show view 'zoneinfo': allowed are buddyinfo, "
                             "pagetypeinfo, extfrag, unusable, vmstat, summary"),
    (["--migratetype-numbering", "2.6.22"], "unknown migratetype numbering '2.6.22': allowed "
                                            "are modern, 2.6.24"),
])
def test_usage_errors(run_replay: RunReplay, args: list[str], message: str) -> None:
    code, out, err = run_replay(alloc(0x10), *args)
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("fragsim: error: ") and message in line


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.trace"
    assert main(["replay", str(missing)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"fragsim: error: no such file: {missing}"


# --- the sample trace ---------------------------------------------------------------------------
def test_sample_trace_shows_fallbacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(SAMPLE), "--memory", "64MiB"]) == 0
    captured = capsys.readouterr()
    s = summary_of(captured.out)
    assert s["malformed_lines_skipped"] == "2" and len(captured.err.splitlines()) == 2
    assert int(s["extfrag_fallback"]) > 0 and int(s["extfrag_fragmenting"]) > 0
    assert s["frees_unmatched"] == "0" and s["traced_allocs_failed"] == "1"
    assert SAMPLE.stat().st_size < 500_000


def test_sample_trace_is_what_the_generator_writes(tmp_path: Path) -> None:
    from fragsim.experiments.traces import make_sample_trace

    out = tmp_path / "again.trace"
    assert make_sample_trace.main(["-o", str(out)]) == 0
    assert out.read_bytes() == SAMPLE.read_bytes()


def test_kernel_presets_choose_the_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(SAMPLE), "--memory", "64MiB", "--kernel", "2.6.20",
                 "--show", "summary"]) == 0
    vanilla = capsys.readouterr().out
    assert main(["replay", str(SAMPLE), "--memory", "64MiB", "--policy", "vanilla",
                 "--show", "summary"]) == 0
    assert capsys.readouterr().out == vanilla
    assert main(["replay", str(SAMPLE), "--memory", "64MiB", "--kernel", "2.6.24"]) == 0
    assert "mobility" in capsys.readouterr().out
    assert main(["replay", str(SAMPLE), "--kernel", "2.6.9"]) == 2
    assert "unknown kernel profile '2.6.9'" in capsys.readouterr().err


def test_a_trace_without_events_is_an_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.trace"
    empty.write_text("# tracer: nop\nnot an event\n")
    assert main(["replay", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fragsim: error: ") and "holds no kmem event" in err
