"""The compiled trace reader (`iter_batches`) against the plain-Python one (`parse_lines`).

`parse_lines`, one line at a time, defines what every line means (tests/test_trace.py); the
compiled reader must give the same events, malformed lines (with their numbers and reasons)
and extfrag counts for any bytes, however they are cut into chunks and batches. The reference
splits a binary stream into lines as the replay command used to, with a text wrapper (UTF-8,
undecodable bytes replaced, universal newlines).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fragsim.sim.trace import (
    ALLOC,
    FREE,
    FREE_BATCHED,
    EventBatch,
    iter_batches,
    parse_lines,
)

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "         kswapd0-52      [001] .....  1234.567890: "
EXTFRAG = ("mm_page_alloc_extfrag: page=0xffffea0004a3b2c0 pfn=0x128ecb alloc_order=0 "
           "fallback_order=9 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 "
           "fragmenting={f} change_ownership={c}")

#: Line bodies of every shape the Python reader knows, good and bad.
BODIES = [
    "mm_page_alloc: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0 migratetype=1 "
    "gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO",
    "mm_page_alloc: page=ffffea0004a3b2c0 pfn=1219275 order=3 migratetype=0 gfp_flags=GFP_KERNEL",
    "mm_page_alloc: page=0x1 pfn=0x10 order=0 migratetype=1 gfp_flags=GFP_USER|__GFP_COLD",
    "mm_page_alloc: page=0x1 pfn=0X10 order=0 migratetype=1 gfp_flags=GFP_USER",
    "mm_page_alloc: page=0x1 pfn=0x10 order=2 gfp_flags=GFP_KERNEL migratetype=2",
    "mm_page_alloc: page=(null) pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE",
    "mm_page_alloc: page=0000000000000000 pfn=0 order=4 migratetype=0 gfp_flags=GFP_KERNEL",
    "mm_page_alloc: page=(null) pfn=18446719884453740544 order=4 migratetype=0 gfp_flags=x",
    "mm_page_alloc: page=ffffea0004268080 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE",
    "mm_page_alloc: page=0x1 pfn=0x10 order=0 migratetype=3 gfp_flags=x",
    "mm_page_alloc: page=0x1 pfn=0x10 order=0 migratetype=-0 gfp_flags=x",
    "mm_page_alloc: page=0x1 pfn=0x10 order=0 migratetype=-1 gfp_flags=x",
    "mm_page_alloc: page=0x1 pfn=0x10 order=0 migratetype=01",
    "mm_page_alloc: page=0x1 pfn=0x10 order=0 migratetype=1x gfp_flags=x",
    "mm_page_alloc: page=0x1 pfn=0x10 order=0 migratetype=one gfp_flags=x",
    "mm_page_alloc: page=0x1 pfn=0x10 order=0",
    "mm_page_free: page=0xffffea0004a3b2c0 pfn=0x128ecb order=2",
    "mm_page_free: page=0xffffea0004a3b2c0 pfn=0x128ECB order=2 migratetype=abc",
    "mm_page_free: page=00000000d8e9e4b8 pfn=0x1b1e02 order=0",
    "mm_page_free: page=(null) pfn=0x10 order=1",
    "mm_page_free: pfn=0x10 order=1 page=0x1",
    "mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a ord",
    "mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a order=",
    "mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a order=0x1",
    "mm_page_free: page=0xffffea0004169a80 pfn=0xZZ order=0",
    "mm_page_free: page=0xffffea0004169a80 pfn=0x order=0",
    "mm_page_free: page=0xffffea0004169a80 pfn=-5 order=0",
    "mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a order=64",
    "mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a order=0063",
    "mm_page_free: page=0xffffea0004169a80 pfn=0x8000000000000000 order=0",
    "mm_page_free: page=0xffffea0004169a80 pfn=0x0000000000000000001 order=0",
    "mm_page_free: page=0xffffea0004169a80 pfn=99999999999999999 order=0",
    "mm_page_free: page=0xffffea0004169a80 pfn=999999999999999999 order=0",
    "mm_page_free: page=0x1 pfn=\u0661\u0662 order=0",
    "mm_page_free: page=\u00e9t\u00e9 pfn=0x10 order=0",
    "mm_page_free:",
    "mm_page_free:page=0x1 pfn=0x10 order=0",
    "mm_page_free_batched: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0",
    "mm_page_free_batched: page=ffffea0004a3b2c0 pfn=1216203 order=0 cold=1",
    "mm_page_free_direct: page=ffffea0004a3b2c0 pfn=1219275 order=1",
    "mm_pagevec_free: page=ffffea0004a3b2c0 pfn=1219275 order=0 cold=1",
    "mm_page_free:\tpage=0x1\tpfn=0x10\torder=0",
    "mm_page_free: page=0x1  pfn=0x10   order=0\x0b",
    "xmm_page_alloc: page=0x1 pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
    "mm_page_alloc_zone_locked: page=0x1 pfn=0x128ecb order=0 migratetype=1 percpu_refill=1",
    "mm_page_pcpu_drain: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0 migratetype=1",
    "mm_page_pcpu_drain: page=0x1 pfn=0x1 order=0 migratetype=1 mm_page_free: page=0x2 "
    "pfn=0x20 order=0",
    "mm_page_free: page=0x1 pfn=0xg order=0 mm_page_free: page=0x2 pfn=0x20 order=1",
    EXTFRAG.format(f=0, c=1),
    EXTFRAG.format(f=1, c=0),
    EXTFRAG.format(f=1, c=1) + " mm_page_free: page=0x2 pfn=0x20 order=1",
    "mm_page_alloc_extfrag: page=0x1 pfn=0x1 alloc_order=0 fallback_order=9",
    "mm_page_alloc_extfrag: page=0x1 pfn=0x1 fragmenting=x change_ownership=1",
    "mm_page_alloc_extfrag: fragmenting=0 change_ownership=-1",
    "mm_page_alloc_extfrag: fragmenting=2 change_ownership=00",
    "mm_page_alloc_extfrag:fragmenting=1 xchange_ownership=1 change_ownership=1",
    "xmm_page_alloc_extfrag: fragmenting=1 change_ownership=1",
    "kmalloc: call_site=alloc_pipe_info+0x4f/0x120 ptr=00000000a3c2b1d4 bytes_req=640",
    "# mm_page_alloc: page=0x1 pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
    "CPU:3 [LOST 12 EVENTS]",
    "",
]
PREFIXES = [
    "",
    PREFIX,
    "     Web Content-3388    [005] d..1.  4711.000289: ",
    "  kswapd0    52 [003]  1234.567890: kmem:",
    "   cc1-77 [012] d..1 3.5: ",
    "   t\u00e2che-77 [02] d..1 3.5: ",
    "   [x] [99999999999] [7]: ",
    "#",
]
ENDINGS = ["\n", "\n", "\n", "\r\n", "\r"]


def reference(data: bytes, numbering: str = "modern", with_cpu: bool = False) -> EventBatch:
    """`parse_lines` over the lines a UTF-8 text wrapper gives (the replay command of old)."""
    lines = list(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace"))
    return parse_lines(lines, numbering, source="t", with_cpu=with_cpu)


def merged(batches: list[EventBatch]) -> EventBatch:
    def col(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for b in batches] or [np.zeros(0, np.int64)])

    out = EventBatch(col("kinds"), col("pfns"), col("orders"), col("migratetypes"),
                     col("cpus"), col("colds"), lines=sum(b.lines for b in batches),
                     chars=sum(b.chars for b in batches))
    out.malformed = [e for b in batches for e in b.malformed]
    out.extfrag = sum(b.extfrag for b in batches)
    out.extfrag_fragmenting = sum(b.extfrag_fragmenting for b in batches)
    out.extfrag_change_ownership = sum(b.extfrag_change_ownership for b in batches)
    return out


def assert_same(got: EventBatch, want: EventBatch) -> None:
    for name in ("kinds", "pfns", "orders", "migratetypes", "cpus", "colds"):
        assert getattr(got, name).tolist() == getattr(want, name).tolist(), name
    assert got.lines == want.lines
    assert [(e.lineno, e.reason, e.line) for e in got.malformed] == [
        (e.lineno, e.reason, e.line) for e in want.malformed]
    assert (got.extfrag, got.extfrag_fragmenting, got.extfrag_change_ownership) == (
        want.extfrag, want.extfrag_fragmenting, want.extfrag_change_ownership)


def read(data: bytes, chunk: int, batch_lines: int = 1 << 16, numbering: str = "modern",
         with_cpu: bool = False) -> EventBatch:
    batches = list(iter_batches(io.BytesIO(data), numbering, batch_lines, "t", with_cpu,
                                chunk_bytes=chunk))
    assert all(b.lines > 0 for b in batches)
    return merged(batches)


LINE = st.tuples(st.sampled_from(PREFIXES), st.sampled_from(BODIES), st.sampled_from(ENDINGS))


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(LINE, max_size=40), chunk=st.integers(64, 700),
       batch_lines=st.integers(1, 30), with_cpu=st.booleans(),
       numbering=st.sampled_from(["modern", "2.6.24"]), last_newline=st.booleans())
def test_compiled_reader_matches_python(lines: list[tuple[str, str, str]], chunk: int,
                                        batch_lines: int, with_cpu: bool, numbering: str,
                                        last_newline: bool) -> None:
    text = "".join(p + b + e for p, b, e in lines)
    if not last_newline:
        text = text.rstrip("\r\n")
    data = text.encode("utf-8")
    got = read(data, chunk, batch_lines, numbering, with_cpu)
    assert_same(got, reference(data, numbering, with_cpu))
    assert got.chars == len(data)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300), chunk=st.integers(64, 200))
def test_any_bytes_read_as_the_text_wrapper_reads_them(data: bytes, chunk: int) -> None:
    noisy = data.replace(b"Z", b"mm_page_free: page=0x1 pfn=0x10 order=0 ").replace(
        b"Y", b"\r").replace(b"X", b"\n")
    assert_same(read(noisy, chunk), reference(noisy))


def test_every_chunk_boundary_inside_a_line() -> None:
    lines = [PREFIX + b for b in BODIES if b] * 2
    data = ("\n".join(lines) + "\n").encode("utf-8")
    want = reference(data)
    assert len(want) > 40 and want.malformed
    for chunk in range(64, 300):
        assert_same(read(data, chunk), want)


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    line = PREFIX + "mm_page_free: page=0xffffea0004a3b2c0 pfn=0x128ecb order=2"
    data = (line + "\r\n") * 50
    for chunk in range(64, 2 * len(line) + 8):
        got = read(data.encode(), chunk)
        assert got.lines == 50 and len(got) == 50


def test_a_line_longer_than_the_buffer() -> None:
    long_task = "x" * 5000
    free = "mm_page_free: page=0xffffea0004a3b2c0 pfn=0x128ecb order=2"
    data = (f"{long_task} [004] .... 1.0: {BODIES[0]}\n{free}\n").encode()
    got = read(data, 64, with_cpu=True)
    assert_same(got, reference(data, with_cpu=True))
    assert got.kinds.tolist() == [ALLOC, FREE] and got.cpus.tolist() == [4, 0]


def test_text_streams_split_at_newlines_only() -> None:
    # A text stream has done its own newline translation: a \r left in it is a space.
    text = (PREFIX + BODIES[0] + "\r\n" + BODIES[1] + "\rmore\n" + BODIES[5] + "\n")
    batches = list(iter_batches(io.StringIO(text), batch_lines=1, chunk_bytes=64))
    assert_same(merged(batches), parse_lines(list(io.StringIO(text)), source="t"))
    assert sum(b.chars for b in batches) == len(text)


def test_extfrag_lines_are_counted() -> None:
    data = "".join(PREFIX + line + "\n" for line in [
        EXTFRAG.format(f=1, c=0), BODIES[0], EXTFRAG.format(f=1, c=1),
        EXTFRAG.format(f=0, c=0), "mm_page_alloc_extfrag: page=0x1 pfn=0x1 fragmenting=1",
    ]).encode()
    got = read(data, 1 << 16)
    assert (got.extfrag, got.extfrag_fragmenting, got.extfrag_change_ownership) == (3, 2, 1)
    assert len(got) == 1 and got.kinds.tolist() == [ALLOC]
    (bad,) = got.malformed
    assert bad.lineno == 5 and bad.reason == "mm_page_alloc_extfrag without change_ownership="
    assert_same(got, reference(data))


def test_malformed_line_numbers_across_many_batches() -> None:
    good = PREFIX + "mm_page_free: page=0xffffea0004a3b2c0 pfn=0x128ecb order=2\n"
    bad_line = PREFIX + "mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a ord\n"
    data = (good * 999 + bad_line + good * 500).encode()
    batches = list(iter_batches(io.BytesIO(data), batch_lines=7, source="big.trace",
                                chunk_bytes=256))
    (bad,) = [e for b in batches for e in b.malformed]
    assert bad.lineno == 1000
    assert str(bad).startswith("big.trace:1000: malformed trace line (mm_page_free without order=")
    assert sum(len(b) for b in batches) == 1499
    assert {int(k) for b in batches for k in b.kinds} == {FREE}


def test_batched_kinds_and_failed_allocations() -> None:
    bodies = ["mm_page_free_batched: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0",
              "mm_page_free_direct: page=ffffea0004a3b2c0 pfn=1219275 order=1",
              "mm_pagevec_free: page=ffffea0004a3b2c0 pfn=1219275 order=0 cold=1",
              "mm_page_alloc: page=(null) pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE"]
    data = "".join(PREFIX + body + "\n" for body in bodies).encode()
    got = read(data, 1 << 16)
    assert got.kinds.tolist() == [FREE_BATCHED, FREE, FREE_BATCHED, 3]
    assert got.pfns.tolist() == [0x128ECB, 1219275, 1219275, -1]


def test_strict_replay_reports_the_line_deep_in_a_large_trace(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    from fragsim.sim.cli import main

    good = PREFIX + "mm_page_alloc: page=0x1 pfn=0x{:x} order=0 migratetype=1 gfp_flags=x\n"
    path = tmp_path / "big.trace"
    path.write_text("".join(good.format(i) for i in range(200_000))
                    + PREFIX + "mm_page_free: page=0x1 pfn=0x105a6a ord\n" + good.format(1))
    assert main(["replay", str(path), "--memory", "64MiB", "--strict"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"{path}:200001: malformed trace line (mm_page_free without order=)" in line


def test_replay_summary_reports_traced_extfrag(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from fragsim.sim.cli import main

    path = tmp_path / "t.trace"
    path.write_text(PREFIX + BODIES[0] + "\n" + PREFIX + EXTFRAG.format(f=1, c=1) + "\n")
    assert main(["replay", str(path), "--memory", "16MiB"]) == 0
    out = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert (out["traced_extfrag_events"], out["traced_extfrag_fragmenting"],
            out["traced_extfrag_change_ownership"]) == ("1", "1", "1")
    assert out["events_read"] == "1"


def test_replay_without_the_jit_gives_the_same_summary() -> None:
    """The compiled reader and replay loop, and their plain-Python forms, agree on the sample."""
    code = ("import contextlib, io; from fragsim.sim.cli import main; out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):\n"
            "    main(['replay', 'experiments/traces/sample-kmem.trace', '--memory', '64MiB',"
            " '--pcp', '--nr-cpus', '2'])\n"
            "print(out.getvalue(), end='')")
    results = []
    for nojit in ("0", "1"):
        env = {**os.environ, "NUMBA_DISABLE_JIT": nojit}
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr
        results.append(proc.stdout)
    assert results[0] == results[1] and "events_read: 2570" in results[0]


def test_unknown_numbering_is_refused_before_reading() -> None:
    with pytest.raises(ValueError, match="unknown migratetype numbering"):
        next(iter_batches(io.BytesIO(b""), "3.0"))


def test_reading_ahead_gives_the_same_batches_and_stops_cleanly() -> None:
    import threading

    good = PREFIX + "mm_page_free: page=0xffffea0004a3b2c0 pfn=0x128ecb order=2\n"
    data = (good * 3000 + PREFIX + "mm_page_free: page=0x1 ord\n" + good * 3000).encode()
    plain = list(iter_batches(io.BytesIO(data), batch_lines=500, chunk_bytes=4096))
    ahead = list(iter_batches(io.BytesIO(data), batch_lines=500, chunk_bytes=4096, ahead=True))
    assert len(ahead) == len(plain) > 10
    assert_same(merged(ahead), merged(plain))
    before = threading.active_count()
    it = cast("Generator[EventBatch, None, None]",
              iter_batches(io.BytesIO(data), batch_lines=100, chunk_bytes=4096, ahead=True))
    next(it)
    it.close()  # the caller stops early (a --strict error): the reader thread ends too
    assert threading.active_count() == before


def test_a_read_error_in_the_reader_thread_reaches_the_caller() -> None:
    class Failing:
        """A binary stream whose third read fails."""

        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)
            self.calls = 0

        def readinto(self, b: memoryview) -> int:
            self.calls += 1
            if self.calls > 2:
                raise OSError("disk gone")
            return self.inner.readinto(b)

    data = (PREFIX + BODIES[0] + "\n") * 2000
    stream = cast(BinaryIO, Failing(data.encode()))
    with pytest.raises(OSError, match="disk gone"):
        list(iter_batches(stream, chunk_bytes=1024, ahead=True))
