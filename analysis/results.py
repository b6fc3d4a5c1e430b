"""Loading results: the `runs`, `samples` and `events` tables of a run, a reproduction or a sweep.

Two layouts are read (`fragsim.sim.run.write_tables`, `fragsim.sim.store`):

- a run directory (`fragsim run --out DIR`, also `fragsim reproduce --out DIR`, which holds many
  runs concatenated): `DIR/runs.parquet`, `DIR/samples.parquet`, `DIR/events.parquet`;
- a sweep directory: `DIR/manifest.json` and one file per run and table,
  `DIR/<table>/kernel=<version>/<run_id>.parquet`, hive-partitioned: `kernel` is in the path and
  not in the files. Temporary files (names starting with `.`) are skipped.

Files of one table may have different schemas (a failed run has `traceback`, a stress run
`pass1_pct`.., a sweep adds its factors); they are unified, a column missing from a file being
null in its rows, and integer columns widened to float where another file has floats.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["TABLES", "frame", "load", "migratetype_names"]

#: The tables of a result directory, in the order `load` returns them.
TABLES = ("runs", "samples", "events")
#: The hive partition key of a sweep directory (`fragsim.sim.store.PARTITION`).
_PARTITION = "kernel"
#: Columns the partition key follows in a run directory's tables (`fragsim.sim.run._tables`).
_KEYS_BEFORE = ("run_id", "workload", "scenario")


def load(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """`runs, samples, events` of the run or sweep directory `path` (module docstring).

    Columns are pyarrow-backed (`pd.ArrowDtype`), except dictionary-encoded ones (`kernel`,
    `workload`, `status`, `metric`, `event`, ...), which become pandas categoricals: they group,
    sort and compare like the simulator's own in-memory frames, and `groupby(observed=True)`
    is fast on their codes. A sweep's `kernel`, restored from the path, is a categorical at
    the position a run directory has it (after `run_id`, `workload` and `scenario`).

    Raises FileNotFoundError when `path` does not exist, ValueError when it holds neither layout.
    """
    root = Path(path)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise FileNotFoundError(f"{root}: {what}; expected a fragsim run or sweep directory")
    if (root / "manifest.json").is_file() or any((root / t).is_dir() for t in TABLES):
        tables = [_sweep_table(root, t) for t in TABLES]
    elif any((root / f"{t}.parquet").is_file() for t in TABLES):
        tables = [_run_table(root, t) for t in TABLES]
    else:
        raise ValueError(f"{root}: neither a run directory (runs.parquet, samples.parquet, "
                         "events.parquet) nor a sweep directory (manifest.json, runs/kernel=*/)")
    runs, samples, events = (frame(t) for t in tables)
    return runs, samples, events


def _run_table(root: Path, table: str) -> pa.Table:
    path = root / f"{table}.parquet"
    if not path.is_file():
        raise ValueError(f"{root}: run directory without {path.name} (expected runs.parquet, "
                         "samples.parquet and events.parquet)")
    return pq.read_table(path)


def _sweep_table(root: Path, table: str) -> pa.Table:
    """All `<table>/kernel=*/*.parquet` files of a sweep, with `kernel` from each path."""
    files = sorted(p for p in (root / table).glob(f"{_PARTITION}=*/*.parquet")
                   if not p.name.startswith(".") and not p.parent.name.startswith("."))
    if table == "runs" and not files:
        raise ValueError(f"{root}: sweep directory without finished runs (expected "
                         f"{table}/{_PARTITION}=<version>/<run_id>.parquet files)")
    with ThreadPoolExecutor(max_workers=8) as pool:  # pyarrow releases the GIL while reading
        parts = list(pool.map(_partition_file, files))
    if not parts:
        return pa.table({_PARTITION: pa.array([], pa.dictionary(pa.int32(), pa.string()))})
    return _concat(parts)


def _concat(parts: list[pa.Table]) -> pa.Table:
    """One table of `parts` with the union of their columns (module docstring). A column that
    is dictionary-encoded in some files and plain strings in others (a row built by hand, not
    by the run life cycle) is decoded for the concatenation, then encoded again."""
    kinds: dict[str, set[str]] = {}
    for t in parts:
        for f in t.schema:
            kinds.setdefault(f.name, set()).add(_string_kind(f.type))
    mixed = [name for name, k in kinds.items() if k - {"null"} == {"dictionary", "string"}]
    if mixed:
        parts = [_decoded(t, mixed) for t in parts]
    table = pa.concat_tables(parts, promote_options="permissive")
    for name in mixed:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(name).combine_chunks().dictionary_encode())
    return table


def _string_kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return "dictionary" if _is_string(t.value_type) else "other"
    if pa.types.is_null(t):
        return "null"
    return "string" if _is_string(t) else "other"


def _is_string(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _decoded(t: pa.Table, names: list[str]) -> pa.Table:
    for name in names:
        if name in t.column_names:
            i = t.schema.get_field_index(name)
            t = t.set_column(i, name, t.column(name).cast(pa.large_string()))
    return t


def _partition_file(path: Path) -> pa.Table:
    t = pq.read_table(path)
    if _PARTITION in t.column_names:  # a writer that kept the key: the path wins
        t = t.drop_columns([_PARTITION])
    value = unquote(path.parent.name.partition("=")[2])
    kernel = pa.DictionaryArray.from_arrays(pa.array([0] * t.num_rows, pa.int32()),
                                            pa.array([value], pa.string()))
    at = max((t.column_names.index(k) + 1 for k in _KEYS_BEFORE if k in t.column_names),
             default=0)
    return t.add_column(at, _PARTITION, kernel)


def _arrow_dtype(t: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
    """Arrow-backed pandas columns, but categoricals for dictionary columns (`load`)."""
    return None if pa.types.is_dictionary(t) else pd.ArrowDtype(t)


def frame(table: pa.Table) -> pd.DataFrame:
    """A unified Arrow table as `load` returns its tables (column types: `load`)."""
    # Parquet files written from pandas carry pandas metadata (index, dtypes); the unified
    # table's own schema is the truth, and the index is a plain range.
    return table.replace_schema_metadata(None).to_pandas(types_mapper=_arrow_dtype)


def migratetype_names(table: pd.DataFrame, column: str = "migratetype") -> pd.Series:
    """The names of `table[column]` (internal migratetype slots, as the `samples` and `events`
    tables hold them) by each row's `kernel`: slot 3 is `HighAtomic` on 6.1 and `Reserve`
    before (`fragsim.models.mm.profiles.migratetype_labels`); -1 (no migratetype) is missing.
    A table without `kernel` is named with the 2.6.24 names. Returns a string Series."""
    from fragsim.models.mm.profiles import migratetype_labels

    codes = pd.to_numeric(table[column]).fillna(-1).astype("int64").to_numpy()
    kernels = (table["kernel"].astype("string").fillna("") if "kernel" in table.columns
               else pd.Series([""] * len(table), index=table.index, dtype="string"))
    out = pd.Series(pd.NA, index=table.index, dtype="string")
    for kernel in pd.unique(kernels):
        names = migratetype_labels(str(kernel))
        rows = (kernels == kernel).to_numpy()
        for slot, name in enumerate(names):
            out[rows & (codes == slot)] = name
    return out
