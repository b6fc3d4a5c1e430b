"""fragsim: the Linux physical page allocator over days of uptime.

The installed distribution is one package, `fragsim`; its subpackages are the repository's
top-level folders: `fragsim.models.mm` (the allocator core, `models/mm/`), `fragsim.models`
(agents and daemons), `fragsim.sim` (engine and command line), `fragsim.experiments`
(workloads and traces), `fragsim.analysis` (tables in, tables and figures out).
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["__version__"]

try:
    __version__: str = metadata.version("fragsim")
except metadata.PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
