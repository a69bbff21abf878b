"""scans.scan: every algorithm equals the sequential oracle (itself checked against NumPy).

Tolerances: the algorithms associate the operator differently, so results
differ by rounding only: float64 within ``1e-10`` and float32 within
``2e-4``, relative to the largest magnitude in the result (max/min are exact).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scans
from scans import ops, scan

LENGTHS = [0, 1, 2, 3, 7, 8, 1000, 4097]
PARALLEL = ["hillis_steele", "blelloch", "auto"]
TOL = {np.float32: 2e-4, np.float64: 1e-10}


def _orthogonal(rng, shape, n, dtype):
    q, r = np.linalg.qr(rng.standard_normal(shape + (n, n)))
    return (q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]).astype(dtype)


def make_elems(name, rng, n, dtype, batch=(2, 3)):
    """Elements of op ``name`` with the scan axis at position 1: shape (batch[0], n, batch[1], ...)."""
    shape = (batch[0], n, batch[1])
    if name == "mul":
        return rng.uniform(0.99, 1.01, shape).astype(dtype)
    if name in ("add", "maximum", "minimum", "logaddexp"):
        return rng.standard_normal(shape).astype(dtype)
    if name == "affine":
        return rng.uniform(0.5, 1.0, shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    if name == "matmul":
        return _orthogonal(rng, shape, 3, dtype)
    if name == "matrix_affine":
        return 0.9 * _orthogonal(rng, shape, 2, dtype), rng.standard_normal(shape + (2,)).astype(dtype)
    raise AssertionError(name)


def leaves(x):
    return x if isinstance(x, tuple) else (x,)


def assert_close(got, want, dtype):
    got, want = leaves(got), leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert g.dtype == w.dtype
        finite = np.abs(w[np.isfinite(w)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        np.testing.assert_allclose(g, w, rtol=0, atol=TOL[dtype] * scale)


# ------------------------------------------------------------ the oracle


@pytest.mark.parametrize("n", [1, 2, 5, 64])
def test_sequential_oracle_matches_numpy(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 4))
    np.testing.assert_array_equal(scan(ops.add, x, algorithm="sequential"), np.add.accumulate(x, axis=0))
    np.testing.assert_array_equal(scan(ops.maximum, x, algorithm="sequential"), np.maximum.accumulate(x, axis=0))
    a, b = rng.uniform(0.5, 1, (n, 4)), rng.standard_normal((n, 4))
    A, B = scan(ops.affine, (a, b), algorithm="sequential")
    h, hs = np.zeros(4), []
    for t in range(n):
        h = a[t] * h + b[t]
        hs.append(h)
    np.testing.assert_allclose(B, np.array(hs), rtol=1e-14)
    np.testing.assert_allclose(A, np.cumprod(a, axis=0), rtol=1e-14)
    m = rng.standard_normal((n, 3, 3))
    prod, want = np.eye(3), []
    for t in range(n):
        prod = m[t] @ prod
        want.append(prod)
    np.testing.assert_allclose(scan(ops.matmul, m, algorithm="sequential"), np.array(want), rtol=1e-12)


# ------------------------------------------------ algorithms vs the oracle


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("name", sorted(ops.BUILTINS))
def test_algorithms_equal_sequential(name, n, dtype):
    op = ops.BUILTINS[name]
    rng = np.random.default_rng(1000 * n + len(name))
    elems = make_elems(name, rng, n, dtype)
    for reverse in (False, True):
        for inclusive in (True, False):
            kw = dict(axis=1, reverse=reverse, inclusive=inclusive)
            want = scan(op, elems, algorithm="sequential", **kw)
            for leaf, w in zip(leaves(elems), leaves(want)):
                assert w.shape == leaf.shape  # built-ins keep the shapes
            for algorithm in PARALLEL:
                assert_close(scan(op, elems, algorithm=algorithm, **kw), want, dtype)


def test_exclusive_is_shifted_inclusive_with_identity():
    x = np.arange(1.0, 6.0)
    np.testing.assert_array_equal(scan(ops.add, x, inclusive=False), [0, 1, 3, 6, 10])
    np.testing.assert_array_equal(scan(ops.mul, x, inclusive=False), [1, 1, 2, 6, 24])
    np.testing.assert_array_equal(scan(ops.maximum, x[::-1], inclusive=False), [-np.inf, 5, 5, 5, 5])
    np.testing.assert_array_equal(scan(ops.add, x, inclusive=False, reverse=True), [14, 12, 9, 5, 0])
    np.testing.assert_array_equal(scan(ops.maximum, np.array([3, 1, 2]), inclusive=False), [np.iinfo(np.int64).min, 3, 3])


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("algorithm", ["sequential", "hillis_steele", "blelloch", "auto"])
def test_axis_and_batch_match_numpy(axis, algorithm):
    x = np.random.default_rng(3).standard_normal((5, 6, 7))
    np.testing.assert_allclose(scan(ops.add, x, axis=axis, algorithm=algorithm), np.cumsum(x, axis=axis), rtol=1e-12, atol=1e-12)
    rev = np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)
    np.testing.assert_allclose(scan(ops.add, x, axis=axis, reverse=True, algorithm=algorithm), rev, rtol=1e-12, atol=1e-12)


def test_affine_reverse_solves_backward_recurrence():
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0.5, 1, 50), rng.standard_normal(50)
    h, want = 0.0, np.empty(50)
    for t in range(49, -1, -1):
        h = a[t] * h + b[t]
        want[t] = h
    for algorithm in ("sequential", "hillis_steele", "blelloch", "auto"):
        np.testing.assert_allclose(scan(ops.affine, (a, b), reverse=True, algorithm=algorithm)[1], want, rtol=1e-12)


def test_affine_broadcast_decay():
    """A decay shared by every feature, shape (T, 1), against inputs (T, F)."""
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0.5, 1, (300, 1)), rng.standard_normal((300, 4))
    want = scan(ops.affine, (a, b), algorithm="sequential")
    assert want[0].shape == (300, 1) and want[1].shape == (300, 4)
    for algorithm in PARALLEL:
        assert_close(scan(ops.affine, (a, b), algorithm=algorithm), want, np.float64)


# ----------------------------------------------------- user-defined ops


def test_user_matrix_product_noncommutative():
    """Plain product order x0 @ x1 @ ... @ xt (the reverse of ops.matmul's composition)."""
    rng = np.random.default_rng(6)
    m = rng.standard_normal((37, 2, 2)) / np.sqrt(2)
    want, acc = [], np.eye(2)
    for t in range(37):
        acc = acc @ m[t]
        want.append(acc)
    for algorithm in ("sequential", "hillis_steele", "blelloch", "auto"):
        np.testing.assert_allclose(scan(lambda x, y: x @ y, m, algorithm=algorithm), np.array(want), rtol=1e-10, atol=1e-12)


def _max_argmax(x, y):
    (v1, i1), (v2, i2) = x, y
    take2 = v2 > v1
    return np.where(take2, v2, v1), np.where(take2, i2, i1)


@pytest.mark.parametrize("algorithm", ["sequential", "hillis_steele", "blelloch", "auto"])
def test_user_max_argmax_pairs(algorithm):
    rng = np.random.default_rng(7)
    v = rng.integers(0, 20, size=(101, 3)).astype(float)  # ties: the first maximum wins
    idx = np.broadcast_to(np.arange(101)[:, None], v.shape)
    best, where = scan(_max_argmax, (v, idx), algorithm=algorithm)
    np.testing.assert_array_equal(best, np.maximum.accumulate(v, axis=0))
    want = np.array([[np.argmax(v[: t + 1, j]) for j in range(3)] for t in range(101)])
    np.testing.assert_array_equal(where, want)


def test_user_op_with_identity_gives_exclusive():
    op = scans.Op(lambda x, y: x + 2 * y - y, identity=0.0, name="add_in_disguise")
    x = np.arange(6.0)
    np.testing.assert_array_equal(scan(op, x, inclusive=False), [0, 0, 1, 3, 6, 10])
    np.testing.assert_array_equal(scan(lambda x, y: x + y, x, inclusive=False, identity=0.0), [0, 0, 1, 3, 6, 10])


# ----------------------------------------------------------- work count


@pytest.mark.parametrize("n", [1000, 1024, 4097])
def test_work_counts(n):
    x = np.ones((n, 2))
    k = int(np.ceil(np.log2(n)))
    seq = scans.count_ops(ops.add, x, algorithm="sequential")
    hs = scans.count_ops(ops.add, x, algorithm="hillis_steele")
    bl = scans.count_ops(ops.add, x, algorithm="blelloch")
    assert (seq.applications, seq.rounds) == (n - 1, n - 1)
    assert hs.applications == n * k - (2**k - 1) and hs.rounds == k  # about n log2 n
    assert n - 1 <= bl.applications < 2 * n  # O(n): the work-efficient scan
    assert bl.rounds <= 2 * k
    if n == 1024:
        assert bl.applications == 2 * n - 2 - k  # up-sweep n - 1, down-sweep n - 1 - log2 n
    assert hs.applications / bl.applications > k / 2.5


def test_count_ops_rejects_auto():
    with pytest.raises(ValueError, match="algorithm"):
        scans.count_ops(ops.add, np.ones(4), algorithm="auto")


# ---------------------------------------------------------- bad input


def test_errors():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match="same length along axis"):
        scan(ops.affine, (np.ones(4), np.ones(5)))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        scan(ops.add, x, axis=2)
    with pytest.raises(ValueError, match="out of range"):
        scan(ops.add, x, axis=-3)
    with pytest.raises(TypeError, match="axis must be an int"):
        scan(ops.add, x, axis=1.0)
    with pytest.raises(TypeError, match="op must be callable"):
        scan("add", x)
    with pytest.raises(ValueError, match="identity"):
        scan(lambda a, b: a + b, x, inclusive=False)
    with pytest.raises(ValueError, match="algorithm"):
        scan(ops.add, x, algorithm="kogge_stone")
    with pytest.raises(TypeError, match="tuples of 2 arrays"):
        scan(ops.affine, x)
    with pytest.raises(ValueError, match="at least one axis"):
        scan(ops.add, np.float64(1.0))
    with pytest.raises(TypeError, match="must be an array"):
        scan(ops.add, (x, "y"))
    with pytest.raises(TypeError, match="op must return a tuple"):
        scan(lambda p, q: p[0] + q[0], (x, x), algorithm="blelloch")
    with pytest.raises(ValueError, match="leading"):
        scan(lambda p, q: (p + q).sum(axis=0), x, algorithm="blelloch")


@pytest.mark.parametrize("algorithm", ["sequential", "hillis_steele", "blelloch", "auto"])
def test_empty_input_gives_empty_output(algorithm):
    for inclusive in (True, False):
        out = scan(ops.add, np.ones((0, 3)), algorithm=algorithm, inclusive=inclusive)
        assert out.shape == (0, 3)
        a, b = scan(ops.affine, (np.ones((2, 0)), np.ones((2, 0))), axis=1, algorithm=algorithm, inclusive=inclusive)
        assert a.shape == b.shape == (2, 0)


def test_list_input_and_result_layout():
    np.testing.assert_array_equal(scan(ops.add, [1, 2, 3]), [1, 3, 6])
    x = np.ones((3, 4))
    assert scan(ops.add, x, axis=1, algorithm="blelloch").shape == (3, 4)


# -------------------------------------------------------- property tests

ELEMENTWISE = ["add", "maximum", "minimum", "logaddexp", "affine", "mul"]


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(ELEMENTWISE),
    shape=st.lists(st.integers(0, 9), min_size=1, max_size=3),
    n=st.integers(0, 300),
    data=st.data(),
    algorithm=st.sampled_from(PARALLEL),
    reverse=st.booleans(),
    inclusive=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_random_shapes(name, shape, n, data, algorithm, reverse, inclusive, seed):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    full = list(shape)
    full.insert(axis % (len(shape) + 1), n)
    rng = np.random.default_rng(seed)
    if name == "affine":
        elems = (rng.uniform(0.5, 1.0, full), rng.standard_normal(full))
    elif name == "mul":
        elems = rng.uniform(0.9, 1.1, full)
    else:
        elems = rng.standard_normal(full)
    op = ops.BUILTINS[name]
    kw = dict(axis=axis, reverse=reverse, inclusive=inclusive)
    assert_close(scan(op, elems, algorithm=algorithm, **kw), scan(op, elems, algorithm="sequential", **kw), np.float64)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.integers(-1000, 1000), min_size=0, max_size=200), algorithm=st.sampled_from(PARALLEL))
def test_property_integer_sums_exact(values, algorithm):
    x = np.array(values, dtype=np.int64)
    np.testing.assert_array_equal(scan(ops.add, x, algorithm=algorithm), np.cumsum(x))
    np.testing.assert_array_equal(scan(ops.maximum, x, algorithm=algorithm), np.maximum.accumulate(x) if x.size else x)


# ------------------------------------------- numpy's dtype rules, every algorithm

NUMPY_DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                np.float16, np.float32, np.float64]
NUMPY_REFERENCE = {"add": np.cumsum, "mul": np.cumprod, "maximum": np.maximum.accumulate}
ALL_ALGORITHMS = ["auto", "sequential", "hillis_steele", "blelloch"]


def _numpy_scan(name, x, axis, reverse):
    if reverse:
        return np.flip(NUMPY_REFERENCE[name](np.flip(x, axis), axis=axis), axis)
    return NUMPY_REFERENCE[name](x, axis=axis)


@st.composite
def _scan_case(draw):
    dtype = np.dtype(draw(st.sampled_from(NUMPY_DTYPES)))
    name = draw(st.sampled_from(sorted(NUMPY_REFERENCE)))
    shape = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    shape[axis] = draw(st.integers(0, 40))
    size = int(np.prod(shape))
    if dtype.kind == "b":
        values = st.booleans()
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)  # full range: int64/uint64 sums and products wrap, identically on every path
        values = st.integers(int(info.min), int(info.max))
    elif name == "mul":  # products of at most 40 factors stay far from float16's overflow and underflow
        values = st.floats(0.5, 1.25, width=dtype.itemsize * 8) | st.floats(-1.25, -0.5, width=dtype.itemsize * 8)
    else:
        values = st.floats(-100, 100, width=dtype.itemsize * 8)
    x = np.array(draw(st.lists(values, min_size=size, max_size=size)), dtype=dtype).reshape(shape)
    return name, x, axis, draw(st.booleans()), draw(st.sampled_from(ALL_ALGORITHMS))


@settings(max_examples=400, deadline=None)
@given(case=_scan_case())
def test_property_every_algorithm_follows_numpy_accumulate(case):
    """``add``/``mul``/``maximum`` equal ``cumsum``/``cumprod``/``maximum.accumulate``: dtype always, values
    exactly for bools and ints, to rounding for floats (the parallel algorithms associate differently)."""
    name, x, axis, reverse, algorithm = case
    want = _numpy_scan(name, x, axis, reverse)
    with np.errstate(over="ignore"):
        got = scan(ops.BUILTINS[name], x, axis=axis, reverse=reverse, algorithm=algorithm)
    assert got.dtype == want.dtype and got.shape == want.shape
    if x.dtype.kind == "f" and name != "maximum":
        rtol = {2: 2e-2, 4: 1e-5, 8: 1e-12}[x.dtype.itemsize]
        scale = max(1.0, float(np.abs(want.astype(np.float64)).max(initial=0.0)))
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=0, atol=rtol * scale * 40)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_bool_and_small_int_sums_widen_as_numpy_on_every_algorithm(algorithm):
    # the cases of the issue: bools summed as OR, int32 promoted by one path and wrapped by another
    got = scan(ops.add, np.array([True, True, False, True]), algorithm=algorithm)
    assert got.dtype == np.int64 and got.tolist() == [1, 2, 2, 3]
    got = scan(ops.add, np.array([2**31 - 1, 1], np.int32), algorithm=algorithm)
    assert got.dtype == np.int64 and got.tolist() == [2**31 - 1, 2**31]
    assert scan(ops.mul, np.array([200, 2], np.uint8), algorithm=algorithm).tolist() == [200, 400]
    assert scan(ops.maximum, np.array([1, 3, 2], np.int8), algorithm=algorithm).dtype == np.int8
    assert scan(ops.add, [True], algorithm=algorithm).dtype == np.int64  # length 1 too
    assert scan(ops.add, np.array([True, False]), inclusive=False, algorithm=algorithm).tolist() == [0, 1]


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_float_overflow_gives_numpy_accumulate_answer(algorithm):
    """A reassociated partial result can be inf - inf or 0 * inf (NaN) where the loop carries inf."""
    x = np.array([6e4, 6e4, -6e4, -6e4], np.float16)
    p = np.array([1e-300, 1e-300, 1e300, 1e300])
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        np.testing.assert_array_equal(scan(ops.add, x, algorithm=algorithm), np.cumsum(x))
        np.testing.assert_array_equal(scan(ops.mul, p, algorithm=algorithm), np.cumprod(p))
        batch = np.stack([p, np.full(4, 0.5), p[::-1]], axis=1)  # only the non-finite columns are redone
        np.testing.assert_array_equal(scan(ops.mul, batch, algorithm=algorithm), np.cumprod(batch, axis=0))


def test_plain_1d_fast_path_equals_the_general_path():
    rng = np.random.default_rng(0)
    for dtype in NUMPY_DTYPES:
        x = (rng.standard_normal(50) * 10).astype(dtype)
        for name in ("add", "mul", "maximum", "minimum"):
            for reverse in (False, True):
                with np.errstate(over="ignore"):  # products of 50 values overflow the small dtypes
                    fast = scan(ops.BUILTINS[name], x, reverse=reverse)
                    general = scan(ops.BUILTINS[name], x[:, None], reverse=reverse)[:, 0]  # 2-D: the general path
                assert fast.dtype == general.dtype
                np.testing.assert_array_equal(fast, general)
    with pytest.raises(TypeError, match="axis must be an int"):
        scan(ops.add, np.ones(3), axis=False)
