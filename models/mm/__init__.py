"""The pure allocator core: zones, buddy free lists, pageblocks, migrate types (mm/page_alloc.c).

Nothing here imports simpy, pandas or anything from `sim`; calls are synchronous.

Compiled functions inline each other across modules, and numba's on-disk cache only notices
changes to a function's own file. So the cache lives in a directory named after a hash of every
source file here: editing any of them compiles afresh instead of running stale machine code.
Set NUMBA_CACHE_DIR to override.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba


def _source_keyed_cache_dir() -> str:
    digest = hashlib.sha1()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return str(base / "fragsim" / "numba" / digest.hexdigest()[:16])


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = _source_keyed_cache_dir()  # type: ignore[attr-defined]
