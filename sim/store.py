"""The result store of a sweep: a hive-partitioned Parquet dataset that is never left half-written.

Layout of a sweep directory:

    DIR/manifest.json                               the spec, its hash, code version, seeds
    DIR/runs/kernel=<version>/<run_id>.parquet      one row per run
    DIR/samples/kernel=<version>/<run_id>.parquet   the run's samples (long form)
    DIR/events/kernel=<version>/<run_id>.parquet    the run's events

`kernel` is the partition key: it is in the path, not in the files (`pyarrow.dataset` with
`partitioning="hive"`, or `fragsim.analysis.load`, restores it). Each file is written to a
temporary `.name.tmp-PID` file in its folder, then renamed over its name, and a run's `runs` file
is written last: a run is finished when its `runs` file exists, and all three files have valid
Parquet footers with the run's id and every data page passes its CRC (files are written with
Parquet page checksums, `write_page_checksum`, and read back with
`page_checksum_verification` when a sweep resumes, so bytes damaged inside an intact file are
found too). A run that fails inside the simulation is finished too (its
row has the error); `retry_failed` runs it again. Anything else found for a planned run (a
missing table, a truncated file, a stray temporary file) is removed and the run is redone.

The manifest is written before the first run. A directory that holds another sweep (another name
or another set of runs, by `spec_hash`) is refused, so two sweeps never mix in one place.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fragsim.sim.errors import UsageError
from fragsim.sim.run import RunResult

__all__ = ["FORMAT", "TABLES", "ResultStore", "storable"]

FORMAT = "fragsim-sweep/1"
TABLES = ("samples", "events", "runs")  # the order of writing: runs last marks a run done
PARTITION = "kernel"


@dataclass(frozen=True)
class RunState:
    """What the store holds of one planned run."""

    done: bool
    status: str = ""
    damaged: bool = False


class ResultStore:
    """One sweep's directory (module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # --- manifest -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def read_manifest(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.manifest_path}: not a readable sweep manifest "
                             f"({exc})") from None
        return data

    def check(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """UsageError if the directory cannot take this sweep (not a directory, results
        without a manifest, another format or spec); the manifest already there, or None.
        Writes nothing, so a command can refuse before it starts."""
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"--out {str(self.root)!r} exists and is not a directory")
        old = self.read_manifest()
        if old is None:
            held = [self.root / t for t in TABLES] + [self.root / "runs.parquet"]
            if any(p.exists() for p in held):
                raise UsageError(f"--out {str(self.root)!r} holds results without a sweep "
                                 "manifest: use an empty or new directory")
            return None
        if old.get("format") != FORMAT:
            raise UsageError(f"{self.manifest_path}: format {old.get('format')!r} is not "
                             f"{FORMAT}")
        if old.get("spec_hash") != manifest["spec_hash"]:
            raise UsageError(
                f"--out {str(self.root)!r} holds sweep {old.get('name')!r} with other runs "
                f"(spec {old.get('spec_hash')}, this one {manifest['spec_hash']}): use another "
                "--out, or the spec it was started with")
        return old

    def open(self, manifest: dict[str, Any]) -> bool:
        """Create the directory and manifest, or check that it holds this same sweep.
        Returns True when the sweep was already started there."""
        old = self.check(manifest)
        if old is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._write_json(self.manifest_path, manifest)
            return False
        if old.get("code_version") != manifest.get("code_version"):
            old.setdefault("code_versions", [old.get("code_version")])
            if manifest.get("code_version") not in old["code_versions"]:
                old["code_versions"].append(manifest.get("code_version"))
            self._write_json(self.manifest_path, old)
        return True

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    # --- runs ---------------------------------------------------------------------------------
    def path(self, table: str, kernel: str, run_id: str) -> Path:
        return self.root / table / f"{PARTITION}={kernel}" / f"{run_id}.parquet"

    def state(self, kernel: str, run_id: str) -> RunState:
        """Whether the run is finished; a damaged run's files are removed (module docstring)."""
        paths = {t: self.path(t, kernel, run_id) for t in TABLES}
        exists = {t: p.exists() for t, p in paths.items()}
        if not any(exists.values()):
            return RunState(done=False)
        status = ""
        ok = all(exists.values())
        if ok:
            try:
                for t, p in paths.items():
                    meta = pq.read_metadata(p)
                    # Decoding every page verifies its CRC (the footer alone would not).
                    pq.read_table(p, page_checksum_verification=True)
                    if t == "runs":
                        if meta.num_rows != 1:
                            raise ValueError("runs file without exactly one row")
                        row = pq.read_table(p, columns=["run_id", "status"]).to_pylist()[0]
                        if row["run_id"] != run_id:
                            raise ValueError("runs file of another run")
                        status = str(row["status"])
            except (OSError, ValueError, pa.ArrowException):
                ok = False
        if ok:
            return RunState(done=True, status=status)
        self.remove(kernel, run_id)
        return RunState(done=False, damaged=True)

    def remove(self, kernel: str, run_id: str) -> None:
        for t in TABLES:
            self.path(t, kernel, run_id).unlink(missing_ok=True)

    def clean_temporary(self) -> int:
        """Remove temporary files left by an interrupted writer; returns how many."""
        n = 0
        for t in TABLES:
            folder = self.root / t
            if folder.is_dir():
                for p in folder.glob(f"{PARTITION}=*/.*.tmp-*"):
                    p.unlink(missing_ok=True)
                    n += 1
        return n

    def write(self, kernel: str, run_id: str, result: RunResult) -> None:
        """Write one run's three tables, `runs` last, each atomically."""
        for t in TABLES:
            frame: pd.DataFrame = getattr(result, t)
            if PARTITION in frame.columns:
                frame = frame.drop(columns=[PARTITION])
            path = self.path(t, kernel, run_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            table = pa.Table.from_pandas(storable(frame), preserve_index=False)
            pq.write_table(table, tmp, write_page_checksum=True)
            os.replace(tmp, path)

    def finish(self, summary: dict[str, Any]) -> None:
        """Record the outcome of the latest invocation in the manifest."""
        data = self.read_manifest() or {}
        data.setdefault("invocations", []).append(
            {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **summary})
        self._write_json(self.manifest_path, data)


def storable(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns of mixed or empty content as strings (Parquet needs one type a column)."""
    out = frame
    for col in frame.columns:
        if frame[col].dtype == object:
            if out is frame:
                out = frame.copy()
            out[col] = frame[col].astype("string")
    return out
