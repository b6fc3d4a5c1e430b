"""fragsim.analysis: tables in, tables and figures out; it never touches a simulation.

- `load(DIR)` -> `runs, samples, events` of a run, reproduction or sweep directory (`load`);
- `summarize`, `paired`: bootstrap intervals and paired kernel contrasts over runs (`stats`);
- `figures`: huge pages over uptime, buddyinfo, the memory map, extfrag events;
- `reproduce`: Mel Gorman's published figures beside the simulated ones.

`load` lives in `results` and is imported on first use like the rest, so `import
fragsim.analysis` loads neither pandas, scipy nor matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["figures", "load", "paired", "reproduce", "stats", "summarize"]

#: Attribute -> (module, name in it; "" for the module itself).
_LAZY = {
    "load": ("results", "load"),
    "summarize": ("stats", "summarize"),
    "paired": ("stats", "paired"),
    "figures": ("figures", ""),
    "results": ("results", ""),
    "reproduce": ("reproduce", ""),
    "stats": ("stats", ""),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'fragsim.analysis' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, attr) if attr else module


def __dir__() -> list[str]:
    return sorted(__all__)
