"""The recorder: periodic samples and discrete events of one run, buffered, then tidy tables.

Rows are appended to Python lists of numpy chunks during the run and turned into DataFrames once,
with categorical keys, at the end (`frames`). Names follow the kernel's where it has one: vmstat
counters, buddyinfo (`nr_free` per zone and order), pagetypeinfo's pageblock counts, and the
`mm_page_alloc_extfrag` tracepoint's fields.

- `samples` (long form): `t_s`, `metric`, `zone`, `order`, `migratetype`, `value`. A column
  that does not apply to a metric is -1 (zone/order/migratetype are indices: zone into
  `ZONE_NAMES`, migratetype the internal slot 0..4, which the run's policy names:
  `Policy.migratetype_labels`, slot 3 `Reserve` up to 4.3 and `HighAtomic` on 6.1;
  `fragsim.analysis.results.migratetype_names` turns a column into those names).
- `events`: `t_s`, `event`, `source` (the agent), and the union of the events' fields
  (`pfn`, `order`, `fallback_order`, `migratetype`, `fallback_migratetype`, `fragmenting`,
  `change_ownership`, `nr_pages`, `value`, `detail`); -1 / NaN / "" where a field does not
  apply. `pageblock` events are the memory map: one row per pageblock at a snapshot, with
  `pfn` its first pfn, `order` pageblock_order, `migratetype` its pageblock type,
  `fallback_migratetype` the requested type most of its foreign pages asked for (-1: none),
  `nr_pages` its allocated pages and `value` the allocated pages of another mobility than
  the block's type (the census's `foreign_pages`).

The run's keys (`run_id`, `seed`, ...) are added by the run life cycle (`fragsim.sim.run`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["EVENT_INT_FIELDS", "Recorder"]

#: Integer event fields, in column order (-1 where a field does not apply).
EVENT_INT_FIELDS = ("pfn", "order", "fallback_order", "migratetype", "fallback_migratetype",
                    "fragmenting", "change_ownership", "nr_pages")


class _Names:
    """A growing list of names with stable codes (the categories of one column)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.codes: dict[str, int] = {}

    def code(self, name: str) -> int:
        c = self.codes.get(name)
        if c is None:
            c = len(self.names)
            self.codes[name] = c
            self.names.append(name)
        return c

    def categorical(self, codes: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(codes.astype(np.int64), categories=list(self.names))


class Recorder:
    """Buffers of one run's samples and events (module docstring)."""

    def __init__(self) -> None:
        self._metrics = _Names()
        self._events = _Names()
        self._sources = _Names()
        self._s_t: list[np.ndarray] = []
        self._s_metric: list[np.ndarray] = []
        self._s_key: list[np.ndarray] = []  # (n, 3): zone, order, migratetype
        self._s_value: list[np.ndarray] = []
        self._e_t: list[float] = []
        self._e_event: list[int] = []
        self._e_source: list[int] = []
        self._e_ints: list[tuple[int, ...]] = []
        self._e_value: list[float] = []
        self._e_detail: list[str] = []
        # Bulk rows: (t, event code, source code, int rows (n, len(EVENT_INT_FIELDS)), values)
        self._x_chunks: list[tuple[float, int, int, np.ndarray, np.ndarray]] = []

    # --- samples ------------------------------------------------------------------------------
    def sample(self, t: float, metric: str, value: float, zone: int = -1, order: int = -1,
               migratetype: int = -1) -> None:
        """One sample row."""
        self.samples(t, metric, np.array([value], np.float64), zone=zone, order=order,
                     migratetype=migratetype)

    def samples(self, t: float, metric: str, values: np.ndarray | Sequence[float], *,
                zone: np.ndarray | int = -1, order: np.ndarray | int = -1,
                migratetype: np.ndarray | int = -1) -> None:
        """Many rows of one metric at time `t` (keys broadcast against `values`)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        n = v.shape[0]
        key = np.empty((n, 3), np.int16)
        key[:, 0] = np.broadcast_to(np.asarray(zone), (n,))
        key[:, 1] = np.broadcast_to(np.asarray(order), (n,))
        key[:, 2] = np.broadcast_to(np.asarray(migratetype), (n,))
        self._s_t.append(np.full(n, t, np.float64))
        self._s_metric.append(np.full(n, self._metrics.code(metric), np.int32))
        self._s_key.append(key)
        self._s_value.append(v)

    # --- events -------------------------------------------------------------------------------
    def event(self, t: float, name: str, source: str = "", *, value: float = float("nan"),
              detail: str = "", **fields: int) -> None:
        """One event row; integer `fields` are among EVENT_INT_FIELDS."""
        unknown = set(fields) - set(EVENT_INT_FIELDS)
        if unknown:
            raise ValueError(f"unknown event field(s) {sorted(unknown)}: allowed are "
                             f"{', '.join(EVENT_INT_FIELDS)}")
        self._e_t.append(float(t))
        self._e_event.append(self._events.code(name))
        self._e_source.append(self._sources.code(source))
        self._e_ints.append(tuple(int(fields.get(f, -1)) for f in EVENT_INT_FIELDS))
        self._e_value.append(float(value))
        self._e_detail.append(detail)

    def extfrag(self, t: float, rows: np.ndarray, source: str = "") -> None:
        """`mm_page_alloc_extfrag` rows as the node's ring holds them (pfn, alloc_order,
        fallback_order, alloc_migratetype, fallback_migratetype, fragmenting,
        change_ownership)."""
        n = rows.shape[0]
        if n:
            ints = np.full((n, len(EVENT_INT_FIELDS)), -1, np.int64)
            k = min(rows.shape[1], len(EVENT_INT_FIELDS) - 1)
            ints[:, :k] = rows[:, :k]
            self._x_chunks.append((float(t), self._events.code("mm_page_alloc_extfrag"),
                                   self._sources.code(source), ints, np.full(n, np.nan)))

    def events_bulk(self, t: float, name: str, source: str, values: np.ndarray,
                    **fields: np.ndarray) -> None:
        """Many rows of one event at time `t`: `values` and integer `fields` (arrays of one
        length, among EVENT_INT_FIELDS; the others are -1)."""
        unknown = set(fields) - set(EVENT_INT_FIELDS)
        if unknown:
            raise ValueError(f"unknown event field(s) {sorted(unknown)}: allowed are "
                             f"{', '.join(EVENT_INT_FIELDS)}")
        v = np.asarray(values, np.float64).ravel()
        ints = np.full((v.shape[0], len(EVENT_INT_FIELDS)), -1, np.int64)
        for i, f in enumerate(EVENT_INT_FIELDS):
            if f in fields:
                ints[:, i] = fields[f]
        if v.shape[0]:
            self._x_chunks.append((float(t), self._events.code(name),
                                   self._sources.code(source), ints, v))

    @property
    def nr_events(self) -> int:
        return len(self._e_t) + sum(int(c[3].shape[0]) for c in self._x_chunks)

    # --- tables -------------------------------------------------------------------------------
    def samples_frame(self) -> pd.DataFrame:
        if self._s_t:
            t = np.concatenate(self._s_t)
            metric = np.concatenate(self._s_metric)
            key = np.concatenate(self._s_key)
            value = np.concatenate(self._s_value)
        else:
            t, metric, value = np.empty(0), np.empty(0, np.int32), np.empty(0)
            key = np.empty((0, 3), np.int16)
        return pd.DataFrame({
            "t_s": t,
            "metric": self._metrics.categorical(metric),
            "zone": key[:, 0].astype(np.int8),
            "order": key[:, 1].astype(np.int8),
            "migratetype": key[:, 2].astype(np.int8),
            "value": value,
        })

    def events_frame(self) -> pd.DataFrame:
        t = [np.asarray(self._e_t, np.float64)]
        ev = [np.asarray(self._e_event, np.int32)]
        src = [np.asarray(self._e_source, np.int32)]
        ints = [np.asarray(self._e_ints, np.int64).reshape(-1, len(EVENT_INT_FIELDS))]
        val = [np.asarray(self._e_value, np.float64)]
        det: list[Any] = list(self._e_detail)
        for when, code, source, rows, values in self._x_chunks:
            n = rows.shape[0]
            t.append(np.full(n, when))
            ev.append(np.full(n, code, np.int32))
            src.append(np.full(n, source, np.int32))
            ints.append(rows)
            val.append(values)
            det.extend([""] * n)
        all_t = np.concatenate(t)
        order = np.argsort(all_t, kind="stable")
        int_cols = np.concatenate(ints)[order]
        frame = pd.DataFrame({
            "t_s": all_t[order],
            "event": self._events.categorical(np.concatenate(ev)[order]),
            "source": self._sources.categorical(np.concatenate(src)[order]),
        })
        for i, name in enumerate(EVENT_INT_FIELDS):
            frame[name] = int_cols[:, i]
        frame["value"] = np.concatenate(val)[order]
        frame["detail"] = pd.array(np.asarray(det, dtype=object)[order], dtype="string")
        return frame
