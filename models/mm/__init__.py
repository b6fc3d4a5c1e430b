"""The pure allocator core: zones, buddy free lists, pageblocks, migrate types (mm/page_alloc.c).

Nothing here imports simpy, pandas or anything from `sim`; calls are synchronous.

Compiled functions are declared with `models.mm.jit.compiled` and share one on-disk cache per
content of the sources, whatever the checkout's path (see `models.mm.jit`): editing any file
under `models/` compiles afresh, and a fresh clone of the same sources compiles nothing. Set
NUMBA_CACHE_DIR to put the cache elsewhere.
"""

from __future__ import annotations

import numba

from fragsim.models.mm.jit import DISABLE_JIT, cache_key, cache_root, install_cache_locator

if not DISABLE_JIT and not install_cache_locator():
    # numba without the locator hook: a cache directory keyed by the sources (per checkout).
    key = cache_key(f"{__name__}.alloc")  # the key of every module of the core
    numba.config.CACHE_DIR = str(cache_root() / key)  # type: ignore[attr-defined]
