"""A software prefetch of one array element, for the batch loops of the compiled core.

A batch of frees touches page records at random across the whole `pages` array (the freed page,
its buddy and the buddy's list neighbours), and at a few GiB most of those touches miss the
cache. `prefetch(arr, i)` issues LLVM's `llvm.prefetch` for `&arr[i]` so that the loop can ask
for the records a few iterations ahead. It changes no state: with NUMBA_DISABLE_JIT=1 it is a
plain no-op function.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["prefetch"]

if numba.config.DISABLE_JIT:  # type: ignore[attr-defined]

    def prefetch(arr: np.ndarray, idx: int) -> None:
        """No-op without the JIT."""

else:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def prefetch(typingctx: Any, arr: Any, idx: Any) -> Any:
        """`__builtin_prefetch(&arr[idx], 1, 3)`: read for write, keep in all cache levels."""
        sig = types.void(arr, idx)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
                context, builder, aryty, ary, [args[1]], wraparound=False)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
                builder.module, fnty, "llvm.prefetch.p0i8")
            builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 1),
                              ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return sig, codegen
