"""`fragsim report`: the HTML and Markdown reports of run, reproduce and sweep directories built
from tiny simulations, one-line command-line errors, and the HTML as headless Chromium renders
it (every figure decoded, no request leaving the page)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fragsim.analysis import figures, report
from fragsim.sim.cli import main
from fragsim.sim.run import RunResult, run_workload
from tests.conftest_tiny import TINY_DESKTOP, tiny

KERNELS = ("2.6.20", "2.6.24")
SEEDS = (0, 1)
MIN_FREE = (1024, 2048)  # a sweep factor: kernel.min_free_kbytes
Key = tuple[str, str, int, int]  # workload, kernel, seed, min_free_kbytes


@pytest.fixture(scope="module")
def results() -> dict[Key, RunResult]:
    """Tiny desktop runs (2 kernels x 2 seeds x 2 min_free_kbytes) and stress-highalloc runs
    (2 kernels, one seed): about two seconds."""
    out: dict[Key, RunResult] = {}
    for kernel in KERNELS:
        for seed in SEEDS:
            for kb in MIN_FREE:
                out["desktop", kernel, seed, kb] = run_workload(tiny("desktop", {
                    "kernel.version": kernel, "run.seed": seed, "kernel.min_free_kbytes": kb}))
        out["stress-highalloc", kernel, 0, 1024] = run_workload(tiny("stress-highalloc", {
            "kernel.version": kernel, "run.seed": 0, "kernel.min_free_kbytes": 1024}))
    assert all(r.ok for r in out.values())
    return out


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory,
               results: dict[Key, RunResult]) -> tuple[Path, Path]:
    """The report of a reproduce directory (layout c), written once for the module."""
    return report.write_report(_write_reproduce(tmp_path_factory.mktemp("rep") / "rep",
                                                results))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frame = pd.concat([f for f in frames if not f.empty], ignore_index=True)
    for col in ("run_id", "workload", "kernel", "status", "scenario", "profile"):
        if col in frame:
            frame[col] = frame[col].astype(str).astype("category")
    return frame


def _failed_row(like: pd.DataFrame) -> pd.DataFrame:
    """A runs row of a run that failed: an error with characters HTML must escape."""
    row = like.iloc[[0]].copy()
    for col in ("run_id", "workload", "kernel", "status", "scenario", "profile"):
        row[col] = row[col].astype(str)
    row["run_id"], row["seed"], row["status"] = "f00dfeedbeef", 7, "failed"
    row["error"] = "RuntimeError: <zone Normal> & friends | out of pages"
    row["hugepages_pct"] = float("nan")
    return row


def _write_reproduce(out: Path, results: dict[Key, RunResult]) -> Path:
    """Layout c: the flat tables of many runs, as `fragsim reproduce --out` writes them."""
    chosen = {k: r for k, r in results.items() if k[3] == 1024}
    out.mkdir(parents=True)
    runs = [r.runs.assign(min_free_setting="1024") for r in chosen.values()]
    runs.append(_failed_row(runs[0]))
    _concat(runs).to_parquet(out / "runs.parquet", index=False)
    for name in ("samples", "events"):
        _concat([getattr(r, name) for r in chosen.values()]).to_parquet(
            out / f"{name}.parquet", index=False)
    (out / "reproduction.md").write_text("| figure | 2.6.20 | 2.6.24 |\n|---|---|---|\n")
    return out


def _write_sweep(out: Path, results: dict[Key, RunResult], annotated: bool = True) -> Path:
    """Layout b: manifest.json and `<table>/kernel=<version>/<run_id>.parquet`; the runs rows
    carry the factor values (as `fragsim sweep` writes them) unless not `annotated`."""
    desktop = {k: r for k, r in results.items() if k[0] == "desktop"}
    planned = []
    for (_, kernel, seed, kb), r in desktop.items():
        run_id = str(r.runs["run_id"].iloc[0])
        values = {"kernel.version": kernel, "kernel.min_free_kbytes": kb}
        planned.append({"run_id": run_id, "kernel": kernel, "seed": seed,
                        "replicate": SEEDS.index(seed), "values": values})
        for name in ("runs", "samples", "events"):
            frame = getattr(r, name).drop(columns=["kernel"])
            if name == "runs":
                frame = frame.assign(sweep="tiny", replicate=SEEDS.index(seed),
                                     code_version="0.1.0")
                if annotated:
                    frame = frame.assign(**values)
            path = out / name / f"kernel={kernel}" / f"{run_id}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, index=False)
    spec = ('[sweep]\nname = "tiny <kernels>"\nworkload = "desktop"\n\n[factors]\n'
            '"kernel.version" = ["2.6.20", "2.6.24"]\n"kernel.min_free_kbytes" = [1024, 2048]\n')
    manifest = {"format": "fragsim-sweep/1", "name": "tiny <kernels>", "spec_text": spec,
                "spec_hash": "0123456789abcdef", "code_version": "0.1.0", "root_seed": 5,
                "seeds": list(SEEDS), "runs": planned}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


class _Tags(HTMLParser):
    """Every start tag with its attributes; checks that non-void elements nest and close."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def _parse(text: str) -> _Tags:
    tags = _Tags()
    tags.feed(text)
    tags.close()
    assert not tags.errors and not tags.stack, (tags.errors, tags.stack)
    return tags


def _check_self_contained(text: str) -> _Tags:
    tags = _parse(text)
    for tag, attrs in tags.starts:
        assert tag not in ("link", "script", "iframe", "object"), tag
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:", "#")), (tag, name, value[:40])
    assert not re.search(r"url\(|@import|https?://", text)
    return tags


def _pngs(tags: _Tags) -> list[bytes]:
    """The decoded data of every <img> (all must be base64 PNG data URIs)."""
    out = []
    for tag, attrs in tags.starts:
        if tag == "img":
            src = attrs["src"] or ""
            assert src.startswith("data:image/png;base64,")
            data = base64.b64decode(src.partition(",")[2], validate=True)
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
            out.append(data)
    return out


def _table_rows(text: str, first_cell: str) -> list[str]:
    """Markdown table lines whose first cell is `first_cell`."""
    return [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]


def _section(markdown: str, heading: str) -> str:
    """The Markdown from `## heading` to the next `## ` heading."""
    return markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_run_dir_report_from_the_command_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Layout a: `fragsim run --out`, then `fragsim report DIR` prints the two paths."""
    out = tmp_path / "run"
    sets = [a for item in TINY_DESKTOP for a in ("--set", item)]
    assert main(["run", "desktop", "--kernel", "2.6.24", "--seed", "3", "--out", str(out),
                 "--no-progress", *sets]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "report.html"), str(out / "report.md")]
    text = (out / "report.html").read_text()
    tags = _check_self_contained(text)
    assert len(_pngs(tags)) == 4  # uptime, memory map, buddyinfo, extfrag
    assert "<title>run: desktop on 2.6.24</title>" in text
    assert "workload.json" in text and "machine.memory = 134217728" in text
    md = (out / "report.md").read_text()
    assert len(_table_rows(_section(md, "Summary"), "hugepages_pct")) == 1
    assert "no paired comparison" in _section(md, "Paired comparisons")
    assert "- **seeds**: 3" in md and "- **code version**: fragsim " in md
    figs = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert len(figs) == 4 and all((out / f).is_file() for f in figs)
    assert all(f.startswith("report-figures/") and f.endswith(".png") for f in figs)


def test_reproduce_dir_report(reproduced: tuple[Path, Path]) -> None:
    """Layout c: desktop and stress runs, two kernels sharing seeds, a failed run."""
    html_path, md_path = reproduced
    assert (html_path.name, md_path.name, md_path.parent) == ("report.html", "report.md",
                                                              html_path.parent)
    text = html_path.read_text()
    tags = _check_self_contained(text)
    # desktop: uptime, memory map, buddyinfo, extfrag; stress: memory map, buddyinfo, extfrag
    assert len(_pngs(tags)) == 7
    assert text.count("<table>") >= 6  # summary, paired, failed, configs, runs, reproduction
    assert "RuntimeError: &lt;zone Normal&gt; &amp; friends | out of pages" in text
    md = md_path.read_text()
    summary = _section(md, "Summary")
    rows = _table_rows(summary, "hugepages_pct")
    assert [row.split(" | ")[1] for row in rows] == ["2.6.20", "2.6.24"]
    assert rows[0].startswith("| hugepages_pct | 2.6.20 | 2 | 1 |")  # 2 ok, 1 failed
    for metric in ("pass1_pct", "pass2_pct", "pass3_pct"):
        assert len(_table_rows(summary, metric)) == 2
    paired = _section(md, "Paired comparisons")
    assert _table_rows(paired, "hugepages_pct")[0].startswith(
        "| hugepages_pct | 2.6.20 | 2.6.24 | 2 |")  # baseline, against, pairs
    # The stress runs have one seed: no pairs, and the report says so.
    assert "pass1_pct: 2.6.24 vs 2.6.20: 1 shared seed(s)" in paired
    assert "RuntimeError: \\<zone Normal> & friends \\| out of pages" in _section(md, "Failed runs")
    assert "### desktop" in md and "### stress-highalloc" in md
    assert "reproduction.md, as `fragsim reproduce` wrote it" in md


def test_sweep_dir_report(tmp_path: Path, results: dict[Key, RunResult],
                          capsys: pytest.CaptureFixture[str]) -> None:
    """Layout b: the sweep's factor (kernel.min_free_kbytes) is a column of the summary and of
    the pairing; `--out` puts the report elsewhere."""
    directory = _write_sweep(tmp_path / "sweep", results)
    out = tmp_path / "elsewhere" / "tiny.html"
    assert main(["report", str(directory), "--out", str(out)]) == 0
    assert capsys.readouterr().out.split() == [str(out), str(out.with_suffix(".md"))]
    text = out.read_text()
    tags = _check_self_contained(text)
    assert len(_pngs(tags)) == 4
    assert "<h1>sweep tiny &lt;kernels&gt;</h1>" in text
    assert '"kernel.min_free_kbytes" = [1024, 2048]' in text.replace("&quot;", '"')
    md = out.with_suffix(".md").read_text()
    summary = _section(md, "Summary")
    assert "| metric (%) | kernel | kernel.min_free_kbytes | n |" in summary
    rows = _table_rows(summary, "hugepages_pct")
    assert [r.split(" | ")[1:3] for r in rows] == [[k, str(kb)] for k in KERNELS
                                                   for kb in MIN_FREE]
    assert all(r.split(" | ")[3:5] == ["2", "0"] for r in rows)  # 2 ok, 0 failed
    paired = _table_rows(_section(md, "Paired comparisons"), "hugepages_pct")
    assert [r.split(" | ")[1:5] for r in paired] == [[str(kb), "2.6.20", "2.6.24", "2"]
                                                     for kb in MIN_FREE]
    assert "- **seeds**: root seed 5; 0, 1" in md
    assert all((out.parent / f).is_file() for f in re.findall(r"\]\((tiny-figures/[^)]+)\)", md))


def test_sweep_factors_from_the_manifest_and_a_figure_that_fails(
        tmp_path: Path, results: dict[Key, RunResult], monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs rows without the factor columns get them from the manifest's `values`; a figure
    that fails to draw is a line in the report, which keeps the others."""
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("no pageblock <events>\nsecond line")

    monkeypatch.setattr(figures, "memory_map", broken)
    html_path, md_path = report.write_report(_write_sweep(tmp_path / "sweep", results,
                                                          annotated=False))
    text = html_path.read_text()
    assert "Figure memory-map (desktop) could not be drawn: ValueError: no pageblock " \
           "&lt;events&gt;." in text
    assert len(_pngs(_check_self_contained(text))) == 3
    md = md_path.read_text()
    assert "could not be drawn: ValueError: no pageblock \\<events>." in md
    assert "| metric (%) | kernel | kernel.min_free_kbytes | n |" in _section(md, "Summary")
    assert len(_table_rows(_section(md, "Paired comparisons"), "hugepages_pct")) == 2


@pytest.mark.parametrize(("setup", "argv", "message"), [
    (None, ["report", "{tmp}/missing"], "no such directory: {tmp}/missing"),
    ("file", ["report", "{tmp}/file"], "not a directory: {tmp}/file"),
    ("empty", ["report", "{tmp}/empty"], "no results in {tmp}/empty: expected runs.parquet"),
    ("empty", ["report", "{tmp}/empty", "--out", "{tmp}/empty"], "is a directory"),
    ("empty", ["report", "{tmp}/empty", "--out", "{tmp}/r.md"], "name the HTML file"),
    (None, ["report"], "the following arguments are required: DIR"),
])
def test_command_line_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          setup: str | None, argv: list[str],
                                          message: str) -> None:
    if setup == "file":
        (tmp_path / "file").write_text("x")
    elif setup == "empty":
        (tmp_path / "empty").mkdir()
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fragsim: error: ")
    assert message.format(tmp=tmp_path) in err


# --- rendering in headless Chromium -----------------------------------------------------------

CHROMIUM = shutil.which("chromium")
BASH = shutil.which("bash") or "/bin/bash"
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-dev-shm-usage", "--hide-scrollbars")


class _Browser:
    """Headless Chromium driven over `--remote-debugging-pipe` (DevTools protocol messages,
    NUL-terminated JSON, on file descriptors 3 and 4): load a page, evaluate, screenshot.
    Every wait has a deadline, and the browser is killed if it does not close."""

    def __init__(self, profile: Path, timeout: float = 30.0) -> None:
        assert CHROMIUM is not None
        to_browser, self._w = os.pipe()
        self._r, from_browser = os.pipe()
        self._deadline = time.monotonic() + timeout
        self._buf = b""
        self._id = 0
        self._session = ""
        self.requests: list[str] = []  # every URL the page asked for while loading
        # bash (not dash: the descriptors may have two digits) puts the pipes on the ones
        # Chromium reads and writes.
        self._proc = subprocess.Popen(
            [BASH, "-c", f'exec "$@" 3<&{to_browser} 4>&{from_browser}', "bash", CHROMIUM,
             *_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)

    def _wait(self, match: Any) -> dict[str, Any]:
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                message: dict[str, Any] = json.loads(raw)
                if match(message):
                    if "error" in message:
                        raise RuntimeError(f"chromium: {message['error']}")
                    return message
            left = self._deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its pipe")
            self._buf += chunk

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        ident = self._id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if self._session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self._session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        result: dict[str, Any] = self._wait(lambda m: m.get("id") == ident).get("result", {})
        return result

    def open(self, url: str) -> None:
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self._session = self.call("Target.attachToTarget", targetId=page["targetId"],
                                  flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=1200, height=900,
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.enable")
        self.call("Network.enable")
        self.call("Page.navigate", url=url)
        while True:  # note every request the page makes, until it has loaded
            m = self._wait(lambda m: m.get("method") in ("Page.loadEventFired",
                                                         "Network.requestWillBeSent"))
            if m["method"] == "Page.loadEventFired":
                return
            self.requests.append(m["params"]["request"]["url"])

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"]["value"]

    def screenshot(self) -> bytes:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(data["data"])

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, TimeoutError, RuntimeError):
            self.call("Browser.close")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        os.close(self._w)
        os.close(self._r)


@pytest.fixture
def browser() -> Iterator[_Browser]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs the Debian package): the "
                    "report's rendering is not checked")
    with tempfile.TemporaryDirectory(prefix="fragsim-chromium-") as profile:
        b = _Browser(Path(profile))
        try:
            yield b
        finally:
            b.close()


_PAGE = """Promise.all(Array.from(document.images).map(i => i.decode().then(() => true,
    () => false))).then(decoded => ({
  title: document.title,
  decoded: decoded,
  sizes: Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight,
                                               i.getBoundingClientRect().width]),
  tables: Array.from(document.querySelectorAll('table')).map(t => t.rows.length),
  headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
  text: document.body.innerText,
  width: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight}))"""


def test_chromium_renders_the_report(tmp_path: Path, reproduced: tuple[Path, Path],
                                     browser: _Browser) -> None:
    """The HTML loads with no request but its own file, every figure decodes and is laid out
    within the page, the tables are there, and the page paints (not blank)."""
    from matplotlib import image

    html_path, _ = reproduced
    browser.open(html_path.as_uri())
    page = browser.evaluate(_PAGE)
    # Network monitoring sees the figures' data: URLs, and nothing else leaves the page.
    assert len([u for u in browser.requests if u.startswith("data:image/png")]) == 7
    assert all(u.startswith("data:") or u == html_path.as_uri() for u in browser.requests)
    assert page["title"].startswith("reproduction: desktop, stress-highalloc")
    assert page["decoded"] == [True] * 7
    assert all(w > 300 and h > 200 and 0 < shown <= page["width"]
               for w, h, shown in page["sizes"])
    assert page["headings"] == ["Summary", "Paired comparisons", "Figures", "Failed runs",
                                "Configuration", "Runs"]
    assert len(page["tables"]) >= 6 and min(page["tables"]) >= 2
    assert "f00dfeedbeef" in page["text"] and "pass3_pct" in page["text"]
    assert page["width"] <= 1400 and page["height"] > 3000
    shot = tmp_path / "report.png"
    shot.write_bytes(browser.screenshot())
    pixels = image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 3000
    ink = (pixels.min(axis=2) < 0.5).mean()  # text, lines, memory map cells
    colour = (pixels.max(axis=2) - pixels.min(axis=2) > 0.3).mean()  # only figures have it
    assert ink > 0.02 and colour > 0.02, (ink, colour)
