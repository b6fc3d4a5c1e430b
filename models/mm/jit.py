"""How the compiled core is compiled and cached: `@compiled(signature)` and a source-keyed cache.

**One compile per function.** `@compiled("pages, zone, int, int")` makes a numba function with
one declared signature (type names from `TYPES`, one per parameter). It compiles that signature
lazily, on its first call from Python or the first time another compiled function is typed
against it, and never another: a caller passing an int32 or a literal gets the int64 version.
So each function is typed, lowered and optimised once per process, whichever caller needs it
first, and only the functions a command uses are compiled. `inline=True` marks the function
`alwaysinline` for LLVM (numba's `forceinline`): callers still share its one numba compilation,
and LLVM pastes its optimised body into theirs, so the hot loops have no calls. Functions that
allocate no arrays are compiled without reference counting (numba's `_nrt=False`): the core's
record arrays are borrowed, and each call would otherwise cost atomic increments and decrements
of every array argument. Functions that allocate pass `nrt=True`.

**One cache for every checkout.** numba's own locators put a function's cache in a directory
named after the source file's absolute path, and check a stamp of that one file; a function that
inlines code from other files would then run stale machine code after an edit elsewhere. Here
every compiled function of the `fragsim` package is cached under
`<root>/<key>/<package>/`, where `root` is `$NUMBA_CACHE_DIR` or `$XDG_CACHE_HOME/fragsim/numba`
(default `~/.cache/fragsim/numba`) and `key` a hash of the content and relative path of every
`.py` file under `models/` (plus, for a function outside `models/`, of its own top-level folder,
such as `sim/`). The key is also the index's source stamp. Nothing depends on where the checkout
lives or on file times, so every clone, worktree or installed copy of the same sources, and
every worker process of a sweep, shares one cache; editing any of those files compiles afresh.

Internal hook: `SourceTreeLocator` subclasses numba's `numba.core.caching._CacheLocator` and is
put first in `CacheImpl._locator_classes` (`_CacheImpl` in older numba). If either is missing
or `$NUMBA_CACHE_LOCATOR_CLASSES` overrides the list, `install_cache_locator()` returns False
and the package falls back to `numba.config.CACHE_DIR = <root>/<key>`: still keyed by content,
only no longer shared between checkouts. With NUMBA_DISABLE_JIT=1, `compiled` returns the
plain Python function.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeVar

import numba
import numpy as np

from fragsim.models.mm.state import NODE_DTYPE, new_node, new_pages, new_zones

__all__ = [
    "DISABLE_JIT",
    "TYPES",
    "SourceTreeLocator",
    "cache_dir",
    "cache_key",
    "cache_root",
    "compiled",
    "entry_point",
    "install_cache_locator",
    "source_hash",
]

F = TypeVar("F", bound=Callable[..., Any])

#: NUMBA_DISABLE_JIT=1: everything runs as plain Python.
DISABLE_JIT: Final[bool] = bool(numba.config.DISABLE_JIT)  # type: ignore[attr-defined]

#: The package whose compiled functions share the source-keyed cache.
_PACKAGE: Final = "fragsim"
#: The folder every compiled function may depend on (the allocator core and its agents).
_BASE_FOLDER: Final = "models"


# --- the source-keyed cache -----------------------------------------------------------------
def _package_dir() -> Path:
    """The directory of the `fragsim` package (not resolved: its folders may be links)."""
    return Path(sys.modules[_PACKAGE].__file__ or "").parent


@cache
def source_hash(folder: str) -> str:
    """sha256 over the relative path and bytes of every `.py` file under a package folder."""
    top = _package_dir() / folder
    digest = hashlib.sha256()
    for path in sorted(top.rglob("*.py"), key=lambda p: p.relative_to(top).as_posix()):
        digest.update(path.relative_to(top).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


@cache
def cache_key(module: str) -> str:
    """The cache key of the compiled functions of `module` (a `fragsim.*` module name): the
    sources of `models/`, and of the module's own top-level folder when that is another."""
    parts = module.split(".")
    folder = parts[1] if len(parts) > 2 and parts[0] == _PACKAGE else _BASE_FOLDER
    digest = hashlib.sha256(source_hash(_BASE_FOLDER).encode())
    if folder != _BASE_FOLDER:
        digest.update(folder.encode())
        digest.update(source_hash(folder).encode())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """`$NUMBA_CACHE_DIR`, else `$XDG_CACHE_HOME/fragsim/numba` (`~/.cache/fragsim/numba`)."""
    explicit = os.environ.get("NUMBA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / _PACKAGE / "numba"


def cache_dir(module: str) -> Path:
    """Where the compiled functions of `module` are cached."""
    return cache_root() / cache_key(module) / module.rpartition(".")[0]


def _caching() -> Any:
    from numba.core import caching

    return caching


def _locator_base() -> type:
    base: type | None = getattr(_caching(), "_CacheLocator", None)
    return base if base is not None else object


class SourceTreeLocator(_locator_base()):  # type: ignore[misc]
    """A numba cache locator for the functions of the `fragsim` package: the directory and the
    source stamp come from `cache_key`, not from the file's path or time (see the module doc)."""

    def __init__(self, py_func: Any, py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._module = str(py_func.__module__)
        self._cache_path = str(cache_dir(self._module))

    def ensure_cache_path(self) -> None:
        path = self.get_cache_path()
        os.makedirs(path, exist_ok=True)
        probe = Path(path) / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self) -> str:
        return cache_key(self._module)

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> SourceTreeLocator | None:
        module = str(getattr(py_func, "__module__", "") or "")
        if not module.startswith(_PACKAGE + ".") or _PACKAGE not in sys.modules:
            return None
        try:
            self = cls(py_func, py_file)
            self.ensure_cache_path()
        except OSError:
            return None  # unwritable: numba's own locators (or no cache) take over
        return self


def _impl_class() -> Any:
    caching = _caching()
    return getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)


def install_cache_locator() -> bool:
    """Put `SourceTreeLocator` first among numba's cache locators; False if numba has no such
    hook (or the user chose locators with $NUMBA_CACHE_LOCATOR_CLASSES): then the caller falls
    back to a content-keyed `numba.config.CACHE_DIR`."""
    impl = _impl_class()
    classes = getattr(impl, "_locator_classes", None)
    base = getattr(_caching(), "_CacheLocator", None)
    if (not isinstance(classes, list) or base is None
            or getattr(numba.config, "CACHE_LOCATOR_CLASSES", None)):
        return False
    if SourceTreeLocator not in classes:
        classes.insert(0, SourceTreeLocator)
    return True


# --- declared signatures --------------------------------------------------------------------
def _types() -> dict[str, Any]:
    from numba import types

    def typeof(value: object) -> Any:
        return numba.typeof(value)  # type: ignore[no-untyped-call]

    pages, zones, node = typeof(new_pages(1)), typeof(new_zones(1)), typeof(new_node())
    node_record = numba.from_dtype(NODE_DTYPE)
    return {
        "pages": pages,
        "zones": zones,
        "zone": zones.dtype,
        "node": node,
        "nd": node_record,
        "pageblock_type": typeof(np.zeros(1, np.int8)),
        "int": types.int64,
        "bool": types.boolean,
        "float": types.float64,
        "int[]": types.Array(types.int64, 1, "A"),
        "const int[]": types.Array(types.int64, 1, "A", readonly=True),
        "int[][]": types.Array(types.int64, 2, "A"),
        "int8[]": types.Array(types.int8, 1, "A"),
        "int32[]": types.Array(types.int32, 1, "A"),
        "uint8[]": types.Array(types.uint8, 1, "A"),
    }


#: Type names a signature may use: the state arrays (`pages`, `zones`, `node`, `pageblock_type`),
#: a zone record (`zone`, `zones[z]`) and the node record (`nd`, `node[0]`); `int` (int64),
#: `bool`, `float`; arrays of any layout `int[]`, `int[][]`, `int8[]`, `int32[]`, `uint8[]`, and
#: `const int[]` for an input the function only reads (read-only arrays may be passed).
TYPES: Final[dict[str, Any]] = {} if DISABLE_JIT else _types()


if not DISABLE_JIT:
    from numba.core.registry import CPUDispatcher

    class _Compiled(CPUDispatcher):
        """A numba dispatcher that compiles its declared signature on first use and no other."""

        _declared: tuple[Any, ...] = ()
        _can_compile: bool

        def _compile_declared(self) -> None:
            if self._can_compile:
                self.compile(self._declared)
                self._can_compile = False

        def get_call_template(self, args: Any, kws: Any) -> Any:
            self._compile_declared()
            return super().get_call_template(args, kws)

        def _compile_for_args(self, *args: Any, **kws: Any) -> Any:
            # numba calls this when no compiled version matches and compiling is allowed; it
            # then calls what we return with the same arguments. Once the declared version
            # exists, calling the dispatcher again converts the arguments or raises TypeError.
            self._compile_declared()
            return self


def compiled(signature: str, *, inline: bool = False, nrt: bool = False,
             nogil: bool = False) -> Callable[[F], F]:
    """Compile a function once, for the declared `signature` (comma-separated `TYPES` names,
    one per parameter), on first use; `inline`: LLVM inlines it into its callers; `nrt`: it
    allocates arrays (reference counting on); `nogil`: it runs without the GIL."""
    names = [s.strip() for s in signature.split(",") if s.strip()]

    def decorate(fn: F) -> F:
        if fn.__code__.co_argcount != len(names):
            raise TypeError(f"{fn.__qualname__}: {fn.__code__.co_argcount} parameters, "
                            f"signature {signature!r} has {len(names)} types")
        if DISABLE_JIT:
            return fn
        unknown = [n for n in names if n not in TYPES]
        if unknown:
            raise TypeError(f"{fn.__qualname__}: unknown types {unknown} in {signature!r}")
        options: dict[str, Any] = {"cache": True, "forceinline": inline, "_nrt": nrt,
                                   "nogil": nogil}
        disp = numba.njit(**options)(fn)
        disp.__class__ = _Compiled
        disp._declared = tuple(TYPES[n] for n in names)
        return disp  # type: ignore[no-any-return]

    return decorate


def entry_point(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The machine-code entry point of a `compiled` function's one signature (compiled now if
    need be). Calling it skips numba's dispatch, which types every argument on every call and
    costs more than a one-page allocation; the caller must pass exactly the declared types
    (the machine's own arrays and Python ints). Without the JIT: the function itself."""
    if DISABLE_JIT or not isinstance(fn, _Compiled):
        return fn
    fn._compile_declared()
    (cres,) = fn.overloads.values()
    entry: Callable[..., Any] = getattr(cres, "entry_point")  # noqa: B009 (untyped in stubs)
    return entry
