"""The numba fast path of ``esn_recurrence`` against its NumPy reference and a plain loop."""

import numpy as np
import pytest
import scipy.sparse

from neuro.kernels import call
from reservoirs import ESN
from reservoirs.recurrence import esn_recurrence_cpu, esn_recurrence_reference


def _problem(B, T=60, N=90, density=0.2, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    W = scipy.sparse.random(N, N, density=density, format="csr", random_state=seed, dtype=np.float64) * 0.3
    W.data -= 0.15
    drive = rng.uniform(-1, 1, (B, T, N)).astype(dtype)
    x0 = rng.uniform(-0.5, 0.5, (B, N)).astype(dtype)
    return W.astype(dtype), drive, x0


def _plain_loop(W, drive, x0, leak, f):
    Wd = W.toarray()
    out = np.empty_like(drive)
    for b in range(drive.shape[0]):
        x = x0[b].copy()
        for t in range(drive.shape[1]):
            x = (1 - leak) * x + leak * f(Wd @ x + drive[b, t])
            out[b, t] = x
    return out


def _no_inputs(n):
    """The (W_in, bias, fused) arguments of the numba loops for a precomputed drive."""
    return np.zeros((n, 0)), np.zeros(n), False


FUNCS = {"tanh": np.tanh, "identity": lambda z: z, "sigmoid": lambda z: 1 / (1 + np.exp(-z))}


@pytest.mark.parametrize("B", [1, 4, 33])
@pytest.mark.parametrize("activation", sorted(FUNCS))
@pytest.mark.parametrize("leak", [1.0, 0.25])
@pytest.mark.parametrize("threads", [1, 2])
def test_cpu_equals_reference_and_plain_loop(B, activation, leak, threads):
    W, drive, x0 = _problem(B)
    args = (W.indptr, W.indices, W.data, drive, x0)
    ref = call("esn_recurrence", *args, impl="reference", leak=leak, activation=activation)
    cpu = call("esn_recurrence", *args, impl="cpu", leak=leak, activation=activation, threads=threads)
    loop = _plain_loop(W, drive, x0, leak, FUNCS[activation])
    np.testing.assert_allclose(ref, loop, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cpu, loop, rtol=0, atol=1e-12)


@pytest.mark.parametrize("B", [1, 9])
@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_inputs_and_bias_given_to_the_kernel(B, impl):
    """With W_in, drive holds the inputs and the drive W_in u + bias is computed by the kernel."""
    W, _, x0 = _problem(B, T=30)
    rng = np.random.default_rng(5)
    u = rng.uniform(-1, 1, (B, 30, 3))
    W_in, bias = rng.uniform(-1, 1, (90, 3)), rng.uniform(-0.2, 0.2, 90)
    args = (W.indptr, W.indices, W.data)
    expected = call("esn_recurrence", *args, u @ W_in.T + bias, x0, impl="reference", leak=0.4)
    fused = call("esn_recurrence", *args, u, x0, impl=impl, leak=0.4, W_in=W_in, bias=bias, threads=2)
    np.testing.assert_allclose(fused, expected, rtol=0, atol=1e-13)
    biased = call("esn_recurrence", *args, u @ W_in.T, x0, impl=impl, leak=0.4, bias=bias)
    np.testing.assert_allclose(biased, expected, rtol=0, atol=1e-13)
    none = call("esn_recurrence", *args, u[..., :0], x0, impl=impl, leak=0.4, W_in=W_in[:, :0], bias=bias)
    np.testing.assert_allclose(none, call("esn_recurrence", *args, np.broadcast_to(bias, (B, 30, 90)).copy(), x0,
                                          impl="reference", leak=0.4), rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="W_in"):
        call("esn_recurrence", *args, u, x0, impl=impl, W_in=W_in[:, :2])
    with pytest.raises(ValueError, match="bias"):
        call("esn_recurrence", *args, u, x0, impl=impl, W_in=W_in, bias=bias[:5])
    with pytest.raises(ValueError, match="drive"):
        call("esn_recurrence", *args, u, x0, impl=impl)


def test_float32_cpu_path_and_out_argument():
    W, drive, x0 = _problem(3, dtype=np.float32)
    out = np.empty(drive.shape, np.float32)
    res = esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0, leak=0.5, out=out)
    assert res is out and res.dtype == np.float32
    ref = esn_recurrence_reference(W.indptr, W.indices, W.data, drive.astype(np.float64), x0.astype(np.float64), leak=0.5)
    np.testing.assert_allclose(res, ref, rtol=0, atol=1e-5)


def test_out_may_be_a_slice_of_a_larger_array():
    W, drive, x0 = _problem(3, T=20)
    big = np.full((3, 50, drive.shape[2]), -7.0)
    res = esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0, out=big[:, 10:30], threads=1)
    np.testing.assert_array_equal(big[:, 10:30], esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0, threads=1))
    assert res.base is big and np.all(big[:, :10] == -7.0) and np.all(big[:, 30:] == -7.0)
    with pytest.raises(ValueError, match="out must be"):
        esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0, out=np.empty(drive.shape[::-1]).T)


def test_callable_activation_uses_reference_path():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((30, 30)) * 0.1
    W_in = rng.standard_normal((30, 2))
    u = rng.standard_normal((50, 2))
    f = lambda z: np.maximum(z, 0.0)  # noqa: E731
    esn = ESN.from_weights(W, W_in, activation=f, leak_rate=0.7)
    expected = _plain_loop(scipy.sparse.csr_matrix(W), (u @ W_in.T)[None], np.zeros((1, 30)), 0.7, f)[0]
    np.testing.assert_allclose(esn.run(u), expected, rtol=0, atol=1e-12)


def test_kernel_rejects_bad_shapes():
    W, drive, x0 = _problem(2)
    with pytest.raises(ValueError, match="x0"):
        esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0[:1])
    with pytest.raises(ValueError, match="drive"):
        esn_recurrence_reference(W.indptr, W.indices, W.data, drive[0], x0)
    with pytest.raises(ValueError, match="activation"):
        esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0, activation="relu")


def test_index_dtypes_give_the_same_states():
    from reservoirs.recurrence import _lane_block, _run_single, index_dtype, sliced_ell

    assert index_dtype(1000) == np.uint16 and index_dtype(70_000) == np.uint32
    assert index_dtype(65_535) == np.uint16  # the sliced format's padding column, N itself, must fit
    W, drive, x0 = _problem(1)
    n = drive.shape[-1]
    outs = []
    for dt in (np.uint16, np.uint32):
        out = np.empty_like(drive)
        _run_single(*sliced_ell(W.indptr.astype(np.int64), W.indices.astype(dt), W.data, n), drive[0], *_no_inputs(n),
                    x0[0], 1.0, 1, out[0])
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    W, drive, x0 = _problem(11)
    outs = []
    for dt in (np.uint16, np.uint32):
        out = np.empty_like(drive)
        layout = sliced_ell(W.indptr.astype(np.int64), W.indices.astype(dt), W.data, n)
        for b0 in (0, 8):
            _lane_block(*layout, drive, *_no_inputs(n), x0, 1.0, 1, out, b0, min(11, b0 + 8))
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_sliced_ell_holds_the_matrix():
    """The sliced ELLPACK copy of W gives back W (padding: weight 0, column N), longest rows first."""
    from reservoirs.recurrence import LANES, sliced_ell

    W, _, _ = _problem(1, N=37, density=0.3)
    n = W.shape[0]
    start, values, index, rows = sliced_ell(W.indptr.astype(np.int64), W.indices.astype(np.uint16), W.data, n)
    assert values.shape == index.shape and values.shape[1] == LANES and rows.size == 40
    assert sorted(rows[rows >= 0]) == list(range(n)) and np.all(rows[n:] == -1)
    dense = np.zeros((n, n + 1))
    for s in range(start.size - 1):
        block = slice(start[s], start[s + 1])
        for c in range(LANES):
            if rows[s * LANES + c] < 0:
                assert np.all(values[block, c] == 0)
                continue
            np.add.at(dense[rows[s * LANES + c]], index[block, c].astype(np.int64), values[block, c])
    np.testing.assert_array_equal(dense[:, :n], W.toarray())
    assert np.all(dense[:, n] == 0)
    assert np.all(np.diff(np.diff(W.indptr)[rows[rows >= 0]]) <= 0)  # longest rows first: little padding


@pytest.mark.parametrize("activation", sorted(FUNCS))
def test_a_sequence_gets_the_same_states_alone_and_in_a_batch(activation):
    """The lane blocks sum each unit as the one-sequence kernel does, lane by lane."""
    W, drive, x0 = _problem(11, T=30)
    args = (W.indptr, W.indices, W.data)
    batch = esn_recurrence_cpu(*args, drive, x0, leak=0.6, activation=activation, threads=1)
    for b in (0, 7, 8, 10):
        alone = esn_recurrence_cpu(*args, drive[b:b + 1], x0[b:b + 1], leak=0.6, activation=activation)
        np.testing.assert_array_equal(alone[0], batch[b])


def test_tanh_scalar_matches_numpy():
    import numba

    from reservoirs.recurrence import tanh_scalar

    @numba.njit
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = tanh_scalar(x[i])
        return out

    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-25, 25, 200_001), rng.standard_normal(100_000) * 3,
                        [0.0, -0.0, 1e-300, -1e-20, 19.999, 20.0, -20.0, 700.0, -np.inf, np.inf]])
    np.testing.assert_allclose(apply(x), np.tanh(x), rtol=0, atol=4e-15)



@pytest.mark.parametrize("B", [1, 6])
def test_threaded_kernels_give_identical_states(B):
    W, drive, x0 = _problem(B, T=40, N=120)
    one = esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0, leak=0.6, threads=1)
    two = esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0, leak=0.6, threads=2)
    np.testing.assert_array_equal(one, two)
    esn = ESN.from_weights(W, np.eye(120)[:, :3], threads=2, leak_rate=0.6)
    u = np.random.default_rng(3).uniform(-1, 1, (B, 30, 3))
    np.testing.assert_array_equal(esn.run(u), ESN.from_weights(W, np.eye(120)[:, :3], leak_rate=0.6, threads=1).run(u))
    with pytest.raises(ValueError, match="threads"):
        esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0, threads=0)
    with pytest.raises(TypeError, match="threads"):
        esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0, threads=1.5)


def test_automatic_threads_follow_the_work_per_step():
    import numba

    from reservoirs.recurrence import MIN_GROUP, PARALLEL_MIN_WORK, resolve_threads

    cores = numba.get_num_threads()
    # a single sequence stays on one thread unless asked (a barrier per step collapses on busy cores)
    assert resolve_threads(None, 10**9, 1) == 1
    assert resolve_threads(2, 10**9, 1) == min(2, cores)
    # a batch gets one thread per MIN_GROUP sequences (up to all of them) once a step has enough work
    big = 2 * MIN_GROUP
    assert resolve_threads(None, PARALLEL_MIN_WORK // big - 1, big) == 1
    assert resolve_threads(None, PARALLEL_MIN_WORK // big, big) == min(cores, 2)
    assert resolve_threads(None, 10**9, MIN_GROUP - 1) == 1
    assert resolve_threads(None, 10**9, 100 * MIN_GROUP) == cores
    assert resolve_threads(10_000, 1, 1) == cores  # capped at numba's thread count
    assert resolve_threads(1, 10**9, 64) == 1
    # a batch above the threshold runs threaded by default, with the same states as one thread
    W, drive, x0 = _problem(big, T=10, N=200)
    assert W.nnz * big >= PARALLEL_MIN_WORK
    auto = esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0)
    np.testing.assert_array_equal(auto, esn_recurrence_cpu(W.indptr, W.indices, W.data, drive, x0, threads=1))


@pytest.mark.parametrize("B", [5, 13, 33])
def test_any_thread_count_gives_the_same_states(B):
    """A sequence's states depend neither on the thread that runs its lane block nor on the other sequences."""
    W, drive, x0 = _problem(B, T=25)
    args = (W.indptr, W.indices, W.data, drive, x0)
    whole = esn_recurrence_cpu(*args, leak=0.7, threads=1)
    for threads in (2, 3):
        np.testing.assert_array_equal(esn_recurrence_cpu(*args, leak=0.7, threads=threads), whole)
    alone = esn_recurrence_cpu(W.indptr, W.indices, W.data, drive[-2:], x0[-2:], leak=0.7)
    np.testing.assert_array_equal(alone, whole[-2:])
    np.testing.assert_allclose(whole, _plain_loop(W, drive, x0, 0.7, np.tanh), rtol=0, atol=1e-12)


@pytest.mark.parametrize("B", [1, 4])
@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_out_may_be_the_drive_itself(B, impl):
    """The ESN writes the input drive into out and lets the kernel replace it with the states."""
    W, drive, x0 = _problem(B, T=30)
    args = (W.indptr, W.indices, W.data)
    expected = call("esn_recurrence", *args, drive, x0, impl=impl, leak=0.8, threads=2)
    inplace = drive.copy()
    assert call("esn_recurrence", *args, inplace, x0, impl=impl, leak=0.8, out=inplace, threads=2) is inplace
    np.testing.assert_array_equal(inplace, expected)
    with pytest.raises(ValueError, match="must not overlap"):
        call("esn_recurrence", *args, drive[:, 1:], x0, impl=impl, out=drive[:, :-1])


def test_out_is_validated_before_anything_is_written():
    W, drive, x0 = _problem(2, T=5)
    args = (W.indptr, W.indices, W.data, drive, x0)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        esn_recurrence_cpu(*args, out=drive.tolist())
    for bad in (np.empty((2, 5, 89)), np.empty(drive.shape, np.float32), np.empty((2, 5, 180))[:, :, ::2]):
        with pytest.raises(ValueError, match="out must be a float64 array of shape"):
            esn_recurrence_cpu(*args, out=bad)


def test_esn_run_writes_into_out_and_returns_it():
    W, _, _ = _problem(1, N=80)
    rng = np.random.default_rng(4)
    esn = ESN.from_weights(W, rng.uniform(-1, 1, (80, 2)), leak_rate=0.5)
    u, ub = rng.uniform(-1, 1, (300, 2)), rng.uniform(-1, 1, (3, 300, 2))
    for inputs, threads in ((u, None), (ub, None), (ub, 2)):
        esn.threads = threads
        expected = esn.run(inputs)
        out = np.full(expected.shape, np.nan)
        for _ in range(2):  # a second run reuses the buffer
            assert esn.run(inputs, out=out) is out
            np.testing.assert_array_equal(out, expected)
    # feedback: teacher-forced (through the kernel) and closed loop (a fitted ESN), both into out
    fb = ESN.from_weights(W, rng.uniform(-1, 1, (80, 2)), W_fb=rng.uniform(-1, 1, (80, 1)))
    y = np.sin(np.linspace(0, 20, 300))
    out = np.empty((300, 80))
    np.testing.assert_array_equal(fb.run(u, y_feedback=y, out=out), fb.run(u, y_feedback=y))
    fb.fit(u, y)
    np.testing.assert_array_equal(fb.run(u, out=out), fb.run(u))


def test_esn_run_continues_from_a_state_held_in_out():
    """h0 may be a view of out (continuing a run in the same buffer): it is read before out is overwritten."""
    W, _, _ = _problem(1, N=80)
    rng = np.random.default_rng(6)
    esn = ESN.from_weights(W, rng.uniform(-1, 1, (80, 2)), leak_rate=0.5)
    u = rng.uniform(-1, 1, (2, 200, 2))
    whole = esn.run(u)
    for part in (u[0], u):  # one sequence, then a batch
        out = esn.run(part[..., :100, :])
        esn.run(part[..., 100:, :], h0=out[..., -1, :], out=out)
        np.testing.assert_allclose(out, whole[..., 100:, :] if part.ndim == 3 else whole[0, 100:], rtol=0, atol=1e-12)


def test_esn_run_rejects_a_bad_out_and_leaves_it_alone():
    W, _, _ = _problem(1, N=80)
    esn = ESN.from_weights(W, np.ones((80, 2)))
    u = np.zeros((50, 2))
    cases = [
        (np.zeros((50, 81)), ValueError, r"out must have shape \(50, 80\)"),
        (np.zeros((1, 50, 80)), ValueError, "out must have shape"),
        (np.zeros((50, 80), np.float32), TypeError, "dtype float64"),
        (np.zeros((80, 50)).T, ValueError, "C-contiguous"),
        (np.zeros((50, 160))[:, ::2], ValueError, "C-contiguous"),
        (np.zeros((50, 80)).tolist(), TypeError, "numpy.ndarray"),
    ]
    for out, error, match in cases:
        with pytest.raises(error, match=match):
            esn.run(u, out=out)
        if isinstance(out, np.ndarray):
            assert np.all(out == 0)
    square = ESN.from_weights(np.zeros((2, 2)), np.eye(2))  # N == F: u itself has the shape of the states
    with pytest.raises(ValueError, match="must not overlap u"):
        square.run(u, out=u)
    with pytest.raises(ValueError, match="not for a list"):
        esn.run([u, u], out=np.zeros((2, 50, 80)))


@pytest.mark.gpu
def test_esn_run_out_on_cupy():
    import cupy

    from neuro.backend import gpu_available

    if not gpu_available():  # pragma: no cover
        pytest.skip("no CUDA GPU")
    esn = ESN(60, leak_rate=0.5, seed=2)
    u = np.random.default_rng(5).uniform(-1, 1, (3, 40, 2))
    out = cupy.empty((3, 40, 60))
    assert esn.run(cupy.asarray(u), out=out) is out
    np.testing.assert_allclose(cupy.asnumpy(out), esn.run(u), rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="cupy.ndarray"):
        esn.run(cupy.asarray(u), out=np.empty((3, 40, 60)))
