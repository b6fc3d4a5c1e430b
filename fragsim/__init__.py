"""fragsim: the Linux physical page allocator over days of uptime.

The installed distribution is one package, `fragsim`; its subpackages are the repository's
top-level folders: `fragsim.models.mm` (the allocator core, `models/mm/`), `fragsim.models`
(agents and daemons), `fragsim.sim` (engine and command line), `fragsim.experiments`
(workloads and traces), `fragsim.analysis` (tables in, tables and figures out).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

__all__ = ["__version__", "sweep"]

try:
    __version__: str = metadata.version("fragsim")
except metadata.PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    """`fragsim.sweep` (`fragsim.sim.sweep.sweep`), imported on first use: `import fragsim`
    stays light."""
    if name == "sweep":
        from fragsim.sim.sweep import sweep

        return sweep
    raise AttributeError(f"module 'fragsim' has no attribute {name!r}")
