"""scans.linear_recurrence and scans.matrix_recurrence against plain Python loops."""

from __future__ import annotations

import numpy as np
import pytest

import neuro.kernels
import scans
from scans import ops, scan


def loop_recurrence(a, b, h0=0.0, reverse=False):
    """The plain loop, on Python floats/complexes: h[t] = a[t] * h[t-1] + b[t] along axis 0 (1-D)."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    al, bl = a.tolist(), b.tolist()
    out = [0.0] * len(bl)
    h = h0
    order = range(len(bl) - 1, -1, -1) if reverse else range(len(bl))
    for t in order:
        h = al[t] * h + bl[t]
        out[t] = h
    return np.array(out)


def loop_nd(a, b, h0, axis, reverse=False):
    """The loop above on every 1-D line of the broadcast arrays along ``axis``."""
    a, b = np.broadcast_arrays(a, b)
    a, b = np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)
    h0 = np.broadcast_to(h0, b.shape[:-1])
    out = np.empty(b.shape, dtype=np.result_type(a, b, h0))
    for idx in np.ndindex(b.shape[:-1]):
        out[idx] = loop_recurrence(a[idx], b[idx], h0[idx].item(), reverse)
    return np.moveaxis(out, -1, axis)


def test_long_sequence_within_1e12_of_plain_loop():
    """T = 10^6, a in (0.9, 1), float64: both the fast path and the Blelloch reference."""
    rng = np.random.default_rng(0)
    T = 10**6
    a, b = rng.uniform(0.9, 1.0, T), rng.standard_normal(T)
    want = loop_recurrence(a, b, 0.5)
    fast = scans.linear_recurrence(a, b, h0=0.5)
    np.testing.assert_allclose(fast, want, rtol=1e-12, atol=0)
    ref = scans.linear_recurrence(a, b, h0=0.5, impl="reference")  # the Blelloch scan: another association order
    assert np.max(np.abs(ref - want)) <= 1e-12 * np.max(np.abs(want))
    assert np.max(np.abs(scan(ops.affine, (a, b))[1] - loop_recurrence(a, b))) <= 1e-12 * np.max(np.abs(want))


@pytest.mark.parametrize("impl", ["cpu", "reference"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    "a_shape,b_shape,axis,h0_shape",
    [
        ((4, 5, 33), (4, 5, 33), -1, (4, 5)),  # (B, D, L), time last: the SSM layout
        ((5, 1), (4, 5, 33), -1, ()),  # a decay per channel, broadcast; scalar h0
        ((33, 3), (33, 3), 0, (3,)),  # (T, F), time first
        ((2, 33, 3), (2, 33, 3), 1, (2, 1)),  # time in the middle, h0 broadcast
        ((), (40,), 0, None),  # constant decay
        ((1,), (0, 3), 0, (3,)),  # empty
    ],
)
def test_matches_loop(impl, reverse, a_shape, b_shape, axis, h0_shape):
    rng = np.random.default_rng(len(b_shape) + 7 * len(a_shape))
    a = rng.uniform(-1.0, 1.0, a_shape)
    b = rng.standard_normal(b_shape)
    h0 = None if h0_shape is None else rng.standard_normal(h0_shape)
    got = scans.linear_recurrence(a, b, h0=h0, axis=axis, reverse=reverse, impl=impl)
    want = loop_nd(a, b, 0.0 if h0 is None else h0, axis, reverse)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", ["cpu", "reference"])
def test_dtypes(impl):
    rng = np.random.default_rng(1)
    a32, b32 = rng.uniform(0.5, 1, (3, 200)).astype(np.float32), rng.standard_normal((3, 200)).astype(np.float32)
    h = scans.linear_recurrence(a32, b32, axis=1, impl=impl)
    assert h.dtype == np.float32
    np.testing.assert_allclose(h, loop_nd(a32.astype(float), b32.astype(float), 0.0, 1), rtol=1e-4, atol=1e-4)
    assert scans.linear_recurrence(0.9, b32, axis=1, impl=impl).dtype == np.float32  # a Python float stays weak
    assert scans.linear_recurrence(np.ones(5, int), np.arange(5), impl=impl).dtype == np.float64
    np.testing.assert_array_equal(scans.linear_recurrence(np.ones(5, int), np.arange(5), impl=impl), [0, 1, 3, 6, 10])
    # complex decay, as in S4D / LRU: |a| < 1 with a rotation
    a = 0.95 * np.exp(1j * rng.uniform(0, np.pi, 300))
    b = rng.standard_normal(300) + 1j * rng.standard_normal(300)
    hc = scans.linear_recurrence(a, b, h0=1 + 1j, impl=impl)
    assert hc.dtype == np.complex128
    np.testing.assert_allclose(hc, loop_recurrence(a, b, 1 + 1j), rtol=1e-12, atol=1e-12)


def test_cpu_equals_reference_and_scan():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.9, 1, (3, 4, 5000)), rng.standard_normal((3, 4, 5000))
    h0 = rng.standard_normal((3, 4))
    for reverse in (False, True):
        cpu = scans.linear_recurrence(a, b, h0=h0, axis=-1, reverse=reverse, impl="cpu")
        ref = scans.linear_recurrence(a, b, h0=h0, axis=-1, reverse=reverse, impl="reference")
        np.testing.assert_allclose(cpu, ref, rtol=1e-10, atol=1e-10)
    A, B = scan(ops.affine, (a, b), axis=-1)  # auto: cumprod + the fast path
    A2, B2 = scan(ops.affine, (a, b), axis=-1, algorithm="blelloch")
    np.testing.assert_allclose(B, B2, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(A, A2, rtol=1e-10, atol=1e-300)


def test_adjoint_matches_finite_differences():
    """The backward pass stated in linear_recurrence's docstring, against central differences."""
    rng = np.random.default_rng(8)
    T, F = 9, 2
    a, b, h0 = rng.uniform(0.5, 1.0, (T, F)), rng.standard_normal((T, F)), rng.standard_normal(F)
    w = rng.standard_normal((T, F))

    def loss(a, b, h0):
        return float(np.sum(w * scans.linear_recurrence(a, b, h0=h0)))

    h = scans.linear_recurrence(a, b, h0=h0)
    a_next = np.concatenate([a[1:], np.zeros((1, F))])
    gb = scans.linear_recurrence(a_next, w, reverse=True)
    ga = gb * np.concatenate([h0[None], h[:-1]])
    gh0 = a[0] * gb[0]
    eps = 1e-6
    for grad, which in ((ga, 0), (gb, 1), (gh0, 2)):
        args = [a, b, h0]
        fd = np.empty_like(args[which])
        for idx in np.ndindex(fd.shape):
            up, down = [x.copy() for x in args], [x.copy() for x in args]
            up[which][idx] += eps
            down[which][idx] -= eps
            fd[idx] = (loss(*up) - loss(*down)) / (2 * eps)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_inputs_not_modified():
    a, b, h0 = np.full(10, 0.5), np.ones(10), np.ones(())
    for impl in ("cpu", "reference"):
        scans.linear_recurrence(a, b, h0=h0, impl=impl)
    assert (a == 0.5).all() and (b == 1).all() and h0 == 1


def test_registered_in_kernel_registry():
    info = neuro.kernels.available()
    assert info["scans.linear_recurrence"]["cpu"] and info["scans.linear_recurrence"]["cuda"]
    assert info["scans.scan_add"]["cuda"]
    assert info["scans.matrix_recurrence"]["cpu"]


def test_recurrence_errors():
    with pytest.raises(ValueError, match="does not broadcast"):
        scans.linear_recurrence(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        scans.linear_recurrence(1.0, np.ones((3, 4)), axis=2)
    with pytest.raises(ValueError, match="h0 of shape"):
        scans.linear_recurrence(1.0, np.ones((3, 4)), h0=np.ones(3), axis=0)
    with pytest.raises(ValueError, match="at least one axis"):
        scans.linear_recurrence(1.0, 2.0)
    with pytest.raises(TypeError, match="b must be an array"):
        scans.linear_recurrence(1.0, "b")
    with pytest.raises(TypeError, match="axis must be an int"):
        scans.linear_recurrence(1.0, np.ones(3), axis=None)
    with pytest.raises(TypeError, match="real or complex"):
        scans.linear_recurrence(np.ones(3), np.array(["x", "y", "z"]))


# ----------------------------------------------------------------- matrix


def loop_matrix(A, b, h0, reverse=False):
    """h[t] = A[t] @ h[t-1] + b[t] for A (T, N, N), b (T, N), one step at a time."""
    T = b.shape[0]
    h, out = np.array(h0, dtype=float), np.empty(b.shape)
    for t in range(T - 1, -1, -1) if reverse else range(T):
        h = A[t] @ h + b[t]
        out[t] = h
    return out


@pytest.mark.parametrize("impl", ["cpu", "reference"])
@pytest.mark.parametrize("reverse", [False, True])
def test_matrix_recurrence_matches_loop(impl, reverse):
    rng = np.random.default_rng(3)
    B, T, N = 3, 257, 4
    A = 0.4 * rng.standard_normal((B, T, N, N))
    b = rng.standard_normal((B, T, N))
    h0 = rng.standard_normal((B, N))
    got = scans.matrix_recurrence(A, b, h0=h0, axis=1, reverse=reverse, impl=impl)
    want = np.stack([loop_matrix(A[i], b[i], h0[i], reverse) for i in range(B)])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    # time first, one shared matrix, batch after time
    M = 0.4 * rng.standard_normal((N, N))
    bt = rng.standard_normal((T, B, N))
    got = scans.matrix_recurrence(M, bt, axis=0, reverse=reverse, impl=impl)
    want = np.stack([loop_matrix(np.broadcast_to(M, (T, N, N)), bt[:, i], np.zeros(N), reverse) for i in range(B)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_matrix_1x1_equals_elementwise():
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0.5, 1, 100), rng.standard_normal(100)
    np.testing.assert_allclose(
        scans.matrix_recurrence(a[:, None, None], b[:, None], h0=[0.3])[:, 0],
        scans.linear_recurrence(a, b, h0=0.3),
        rtol=1e-13,
    )


def test_matrix_errors():
    with pytest.raises(ValueError, match=r"A must have shape \(\.\.\., 3, 3\)"):
        scans.matrix_recurrence(np.ones((5, 2, 2)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="state axis"):
        scans.matrix_recurrence(np.ones((5, 3, 3)), np.ones((5, 3)), axis=-1)
    with pytest.raises(ValueError, match="time axis and a state axis"):
        scans.matrix_recurrence(np.ones((3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="h0 of shape"):
        scans.matrix_recurrence(np.ones((5, 3, 3)), np.ones((5, 3)), h0=np.ones(2))
    assert scans.matrix_recurrence(np.ones((3, 3)), np.ones((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("reverse", [False, True])
def test_overflow_then_decay_agrees_across_paths(reverse):
    """After an overflow to inf, decays below 1 keep inf in the loop; the parallel paths gave NaN (0 * inf)."""
    a = np.array([1e200] * 3 + [1e-200] * 40 + [0.5] * 21)
    if reverse:
        a = a[::-1].copy()
    A = np.stack([a, np.full(64, 0.5), a[::-1]], axis=1)  # a finite row between two that overflow
    B = np.ones((64, 3))
    h0 = np.array([1.0, 2.0, 3.0])
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        want = scans.linear_recurrence(A, B, h0=h0, reverse=reverse, impl="cpu")
        assert np.isinf(want[:, 0]).any() and not np.isnan(want).any()
        np.testing.assert_array_equal(scans.linear_recurrence(A, B, h0=h0, reverse=reverse, impl="reference"), want)
        want0 = scans.linear_recurrence(A, B, reverse=reverse, impl="cpu")
        for algorithm in ("auto", "sequential", "hillis_steele", "blelloch"):
            decay, h = scan(ops.affine, (A, B), reverse=reverse, algorithm=algorithm)
            np.testing.assert_array_equal(h, want0)
            np.testing.assert_array_equal(decay, np.flip(np.cumprod(np.flip(A, 0), axis=0), 0) if reverse
                                          else np.cumprod(A, axis=0))
