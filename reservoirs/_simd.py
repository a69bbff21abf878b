"""Two vector loops of the reservoir kernels, written as numba intrinsics (LLVM IR) so that they vectorize.

LLVM does not vectorize the one-sequence loop from plain numba code: a load
through an index vector is a gather, which its cost model rejects on this
hardware (and AVX-512 gathers are indeed slower here than scalar loads: 0.44-0.56
ns per weight against 0.30-0.37 in a C test). The intrinsics spell the vectors
out; LLVM then emits scalar loads for the gathered values (as gcc does for the
same C) and vector loads and fused multiply-adds for the rest. The lane loop
is written the same way, so that its eight accumulators are vector registers
by construction.

* :func:`slice_dot` - eight rows of a sliced ELLPACK matrix times a vector
  (one sequence);
* :func:`slice_lanes_dot` - the same eight rows times eight lanes of states
  (eight sequences side by side), each row summed as :func:`slice_dot` sums it.

Both work for float32 and float64 values and uint16 or uint32 indices
(the types of their array arguments).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from neuro.intrinsics import fmuladd_vector, splat

#: Vector width of both loops: rows of a slice, sequences of a lane block.
LANES = 8


_I64 = ir.IntType(64)
_I32 = ir.IntType(32)


def _const(value):
    return ir.Constant(_I64, value)


def _arrays(context, builder, signature, args):
    return [context.make_array(t)(context, builder, a) if isinstance(t, types.Array) else a
            for t, a in zip(signature.args, args)]


def _check_types(values, index, x, out):
    if values.dtype not in (types.float32, types.float64) or x.dtype != values.dtype or out.dtype != values.dtype:
        raise TypeError("the values, states and result must be arrays of one float dtype")
    if index.dtype not in (types.uint16, types.uint32):
        raise TypeError(f"indices must be uint16 or uint32, got {index.dtype}")


def _columns(builder, index_data, base, bits):
    """The eight column indices of the step at flat entry ``base`` (``i64`` values): read as 64-bit words
    (four uint16 or two uint32 each) and split with shifts."""
    per_word = 64 // bits
    mask = _const((1 << bits) - 1)
    columns = []
    for r in range(LANES):
        if r % per_word == 0:
            at = builder.gep(index_data, [builder.add(base, _const(r))], inbounds=True)
            word = builder.load(builder.bitcast(at, _I64.as_pointer()), align=1)
        shifted = builder.lshr(word, _const(bits * (r % per_word))) if r % per_word else word
        columns.append(builder.and_(shifted, mask))
    return columns


@intrinsic
def slice_dot(typingctx, values, index, x, out):
    """``out[r] = sum_k values[k, r] * x[index[k, r]]`` for ``r < 8``: a slice of eight rows, ``m`` entries each.

    ``values`` and ``index`` are C-contiguous ``(m, 8)`` arrays (column ``r``
    holds row ``r``'s weights and column indices, padding included); ``x``
    1-D, ``out`` ``(8,)``. Each row is summed in order ``k = 0, 1, ...`` from
    0 with fused multiply-adds. The eight indices of a step are read as 64-bit
    words (:func:`_columns`): fewer loads, which bound this loop.
    """
    _check_types(values, index, x, out)
    sig = types.void(values, index, x, out)
    bits = index.dtype.bitwidth

    def codegen(context, builder, signature, args):
        va, ia, xa, oa = _arrays(context, builder, signature, args)
        vec = ir.VectorType(context.get_value_type(signature.args[0].dtype), LANES)
        acc = cgutils.alloca_once_value(builder, ir.Constant(vec, [0.0] * LANES))
        fma = fmuladd_vector(builder, vec)
        with cgutils.for_range(builder, builder.extract_value(va.shape, 0)) as loop:
            base = builder.mul(loop.index, _const(LANES))
            v = builder.load(builder.bitcast(builder.gep(va.data, [base], inbounds=True), vec.as_pointer()), align=1)
            gathered = ir.Constant(vec, ir.Undefined)
            for r, j in enumerate(_columns(builder, ia.data, base, bits)):
                xj = builder.load(builder.gep(xa.data, [j], inbounds=True))
                gathered = builder.insert_element(gathered, xj, ir.Constant(_I32, r))
            builder.store(builder.call(fma, [v, gathered, builder.load(acc)]), acc)
        builder.store(builder.load(acc), builder.bitcast(oa.data, vec.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def slice_lanes_dot(typingctx, values, index, x, out):
    """``out[r, l] = sum_k values[k, r] * x[index[k, r], l]`` for ``r, l < 8``: a slice of eight rows times eight lanes.

    ``values`` and ``index`` as for :func:`slice_dot`; ``x`` C-contiguous
    ``(rows, 8)`` (a row: one unit's state in eight sequences), ``out``
    C-contiguous ``(8, 8)``. Each stored weight multiplies a row of ``x`` (one
    vector); each row ``r`` is summed in order ``k = 0, 1, ...`` from 0 with
    fused multiply-adds, exactly as :func:`slice_dot` sums it for one
    sequence, in its own accumulator (eight independent chains).
    """
    _check_types(values, index, x, out)
    sig = types.void(values, index, x, out)
    bits = index.dtype.bitwidth

    def codegen(context, builder, signature, args):
        va, ia, xa, oa = _arrays(context, builder, signature, args)
        vec = ir.VectorType(context.get_value_type(signature.args[0].dtype), LANES)
        vptr = vec.as_pointer()
        fma = fmuladd_vector(builder, vec)
        accs = [cgutils.alloca_once_value(builder, ir.Constant(vec, [0.0] * LANES)) for _ in range(LANES)]
        with cgutils.for_range(builder, builder.extract_value(va.shape, 0)) as loop:
            base = builder.mul(loop.index, _const(LANES))
            for r, (acc, j) in enumerate(zip(accs, _columns(builder, ia.data, base, bits))):
                w = builder.load(builder.gep(va.data, [builder.add(base, _const(r))], inbounds=True))
                w = splat(builder, w, vec)
                row = builder.load(builder.bitcast(builder.gep(xa.data, [builder.mul(j, _const(LANES))], inbounds=True),
                                                   vptr), align=1)
                builder.store(builder.call(fma, [w, row, builder.load(acc)]), acc)
        for r, acc in enumerate(accs):
            builder.store(builder.load(acc), builder.bitcast(builder.gep(oa.data, [_const(r * LANES)]), vptr), align=1)
        return context.get_dummy_value()

    return sig, codegen
