"""LLVM operations numba does not spell, as numba intrinsics for the CPU kernels of every package.

Each one is a single LLVM instruction or intrinsic call, so a loop that uses it
still vectorizes:

* :func:`float64_bits`, :func:`float64_from_bits`, :func:`float32_from_bits` -
  bit casts between floats and integers (``2^k`` from its exponent bits in the
  vectorizable ``exp`` of :mod:`neuro.exp64` and :mod:`ann.ssm_kernel`);
* :func:`maxnum` - ``llvm.maxnum``, the larger of two floats ignoring a NaN
  operand: a max reduction LLVM vectorizes (a compare-and-select one it does not);
* :func:`prefetch` - ``llvm.prefetch``, a hint to fetch ``arr[i]``'s cache line
  (no effect on results, never faults).

They are callable only from numba-compiled code.

Two helpers for the LLVM IR of vector intrinsics written elsewhere
(``reservoirs._simd``, ``ann.gemm_kernel``): :func:`fmuladd_vector` declares
``llvm.fmuladd`` for a vector type, :func:`splat` broadcasts a scalar into one.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["float64_bits", "float64_from_bits", "float32_from_bits", "maxnum", "prefetch", "fmuladd_vector", "splat"]


@intrinsic
def float64_bits(typingctx, x):
    """The bits of a float64 as an int64."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def float64_from_bits(typingctx, bits):
    """The float64 whose bits are the int64 ``bits``."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def float32_from_bits(typingctx, bits):
    """The float32 whose bits are the low 32 bits of the integer ``bits``.

    Any integer type: numba widens int32 arithmetic to int64.
    """
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        word = args[0] if bits.bitwidth == 32 else builder.trunc(args[0], ir.IntType(32))
        return builder.bitcast(word, ir.FloatType())

    return types.float32(bits), codegen


@intrinsic
def maxnum(typingctx, a, b):
    """``llvm.maxnum`` of two floats of one type (float32 or float64): the larger; a NaN operand is ignored."""
    if a != b or a not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(a)
        name = "llvm.maxnum.f32" if a == types.float32 else "llvm.maxnum.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty, ty]), name)
        return builder.call(fn, args)

    return a(a, b), codegen


@intrinsic
def prefetch(typingctx, arr, i):
    """Ask the CPU to fetch the cache line of ``arr[i]`` (1-D array) for reading, kept in all cache levels."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p] + [ir.IntType(32)] * 3)
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        i32 = lambda v: ir.Constant(ir.IntType(32), v)  # noqa: E731
        builder.call(fn, [builder.bitcast(builder.gep(data, [args[1]]), i8p), i32(0), i32(3), i32(1)])  # read, keep
        return context.get_dummy_value()

    return types.void(arr, types.intp), codegen


def fmuladd_vector(builder: ir.IRBuilder, vec: ir.VectorType):
    """The function ``llvm.fmuladd`` for vector type ``vec`` of float or double (fused where the target has FMA,
    as ``fastmath={"contract"}``); call it with three ``vec`` values ``(a, b, c)`` for ``a * b + c``."""
    name = f"llvm.fmuladd.v{vec.count}{'f64' if isinstance(vec.element, ir.DoubleType) else 'f32'}"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec, vec, vec]), name)


def splat(builder: ir.IRBuilder, value, vec: ir.VectorType):
    """``value`` (a scalar of ``vec``'s element type) in every lane of a ``vec`` (one broadcast instruction)."""
    undef = ir.Constant(vec, ir.Undefined)
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count)
    return builder.shuffle_vector(builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0)), undef, zeros)
