"""RNN / LSTM / GRU and their cells against torch.nn (weights copied via state_dict), values and gradients."""

import numpy as np
import pytest
import torch

import ann.functional as F
from neuro.backend import asnumpy, gpu_available
from ann.gradcheck import gradcheck
from ann.nn.layers import Linear
from ann.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, recurrent_scan
from ann.optim import Adam
from ann.tensor import Tensor, no_grad

TOL = {np.float64: 1e-8, np.float32: 1e-4}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}

# (our class, torch class, constructor keywords)
LAYERS = {
    "rnn_tanh": (RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, torch.nn.LSTM, {}),
    "gru": (GRU, torch.nn.GRU, {}),
}
CELLS = {
    "rnn_tanh": (RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (GRUCell, torch.nn.GRUCell, {}),
}


def _copy_weights(ours, theirs):
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert sorted(state) == sorted(ours.state_dict()), "parameter names differ from PyTorch's"
    for k, v in ours.state_dict().items():
        assert v.shape == state[k].shape, k
    ours.load_state_dict(state)


def _close(ours, theirs, tol, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    scale = max(1.0, float(np.abs(theirs).max()))
    err = float(np.abs(np.asarray(ours, dtype=np.float64) - theirs).max()) if ours.size else 0.0
    assert err <= tol * scale, f"{what}: max abs error {err:.3g} > {tol * scale:.3g}"


def _loss_weights(rng, shapes, dtype):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_matches_torch(kind, num_layers, dtype):
    cls, tcls, kw = LAYERS[kind]
    B, T, I, H = 3, 7, 5, 6
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    theirs = tcls(I, H, num_layers=num_layers, batch_first=True, **kw).to(TORCH_DTYPE[dtype])
    ours = cls(I, H, num_layers=num_layers, dtype=dtype, batch_first=True, seed=0, **kw)
    _copy_weights(ours, theirs)

    x = rng.standard_normal((B, T, I)).astype(dtype)
    h0 = 0.5 * rng.standard_normal((num_layers, B, H)).astype(dtype)
    c0 = 0.5 * rng.standard_normal((num_layers, B, H)).astype(dtype)
    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    xa, h0a, c0a = (Tensor(a, requires_grad=True) for a in (x, h0, c0))
    lstm = kind == "lstm"
    yt, st = theirs(xt, (h0t, c0t) if lstm else h0t)
    ya, sa = ours(xa, (h0a, c0a) if lstm else h0a)
    tol = TOL[dtype]
    _close(ya.numpy(), yt, tol, "output")
    finals_t = list(st) if lstm else [st]
    finals_a = list(sa) if lstm else [sa]
    for a, t in zip(finals_a, finals_t):
        _close(a.numpy(), t, tol, "final state")

    # a loss touching the output and every final state, so all gradient paths are exercised
    weights = _loss_weights(rng, [yt.shape] + [f.shape for f in finals_t], dtype)
    loss_t = sum((o * torch.tensor(w)).sum() for o, w in zip([yt] + finals_t, weights))
    loss_a = sum((o * Tensor(w)).sum() for o, w in zip([ya] + finals_a, weights))
    loss_t.backward()
    loss_a.backward()
    _close(xa.grad, xt.grad, tol, "d loss / d input")
    _close(h0a.grad, h0t.grad, tol, "d loss / d h0")
    if lstm:
        _close(c0a.grad, c0t.grad, tol, "d loss / d c0")
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, named[name].grad, tol, f"d loss / d {name}")


@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_options_match_torch(kind):
    """Time-major input, no biases, unbatched input and the default zero initial state."""
    cls, tcls, kw = LAYERS[kind]
    rng = np.random.default_rng(2)
    torch.manual_seed(1)
    theirs = tcls(4, 3, num_layers=2, bias=False, batch_first=False, **kw).double()
    ours = cls(4, 3, num_layers=2, bias=False, batch_first=False, dtype="float64", seed=0, **kw)
    _copy_weights(ours, theirs)
    cases = [((6, 2, 4), None), ((6, 4), None), ((6, 4), (2, 3))]  # (T, B, F), unbatched (T, F), with a state
    for shape, state_shape in cases:
        x = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        xa = Tensor(x, requires_grad=True)
        if state_shape is None:
            yt, st = theirs(xt)
            ya, sa = ours(xa)
        else:
            hs = [rng.standard_normal(state_shape) for _ in range(2)]
            hx_t = tuple(torch.tensor(h) for h in hs) if kind == "lstm" else torch.tensor(hs[0])
            hx_a = tuple(hs) if kind == "lstm" else hs[0]
            yt, st = theirs(xt, hx_t)
            ya, sa = ours(xa, hx_a)
        _close(ya.numpy(), yt, 1e-10, f"output {shape}")
        finals_t = list(st) if kind == "lstm" else [st]
        finals_a = list(sa) if kind == "lstm" else [sa]
        for a, t in zip(finals_a, finals_t):
            _close(a.numpy(), t, 1e-10, f"final state {shape}")
        (yt**2).sum().backward()
        (ya * ya).sum().backward()
        _close(xa.grad, xt.grad, 1e-10, f"input gradient {shape}")
        for name, p in ours.named_parameters():
            _close(p.grad, dict(theirs.named_parameters())[name].grad, 1e-10, name)
        ours.zero_grad()
        theirs.zero_grad()


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_bidirectional_matches_torch(kind, batch_first):
    cls, tcls, kw = LAYERS[kind]
    rng = np.random.default_rng(11)
    torch.manual_seed(4)
    theirs = tcls(4, 3, num_layers=2, bidirectional=True, batch_first=batch_first, **kw).double()
    ours = cls(4, 3, num_layers=2, bidirectional=True, batch_first=batch_first, dtype="float64", seed=0, **kw)
    _copy_weights(ours, theirs)
    x = rng.standard_normal((2, 5, 4) if batch_first else (5, 2, 4))  # B=2, T=5
    hs = [rng.standard_normal((4, 2, 3)) for _ in range(2)]  # (2 directions * 2 layers, B, H)
    xt, xa = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    hts = [torch.tensor(h, requires_grad=True) for h in hs]
    has = [Tensor(h, requires_grad=True) for h in hs]
    lstm = kind == "lstm"
    yt, st = theirs(xt, tuple(hts) if lstm else hts[0])
    ya, sa = ours(xa, tuple(has) if lstm else has[0])
    assert ya.shape[-1] == 6
    _close(ya.numpy(), yt, 1e-10, "output")
    finals_t = list(st) if lstm else [st]
    finals_a = list(sa) if lstm else [sa]
    for a, t in zip(finals_a, finals_t):
        _close(a.numpy(), t, 1e-10, "final state")
    weights = _loss_weights(rng, [yt.shape] + [f.shape for f in finals_t], np.float64)
    sum((o * torch.tensor(w)).sum() for o, w in zip([yt] + finals_t, weights)).backward()
    sum((o * Tensor(w)).sum() for o, w in zip([ya] + finals_a, weights)).backward()
    _close(xa.grad, xt.grad, 1e-10, "input gradient")
    for a, t in zip(has[: 2 if lstm else 1], hts):
        _close(a.grad, t.grad, 1e-10, "initial state gradient")
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, named[name].grad, 1e-10, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_matches_torch(kind, dtype):
    cls, tcls, kw = CELLS[kind]
    B, I, H = 4, 5, 3
    rng = np.random.default_rng(3)
    torch.manual_seed(2)
    theirs = tcls(I, H, **kw).to(TORCH_DTYPE[dtype])
    ours = cls(I, H, dtype=dtype, seed=0, **kw)
    _copy_weights(ours, theirs)
    tol = TOL[dtype]
    lstm = kind == "lstm"
    # two steps: the second consumes the first's state, so state gradients are checked too
    xs = [rng.standard_normal((B, I)).astype(dtype) for _ in range(2)]
    h0 = rng.standard_normal((B, H)).astype(dtype)
    c0 = rng.standard_normal((B, H)).astype(dtype)
    xts = [torch.tensor(x, requires_grad=True) for x in xs]
    xas = [Tensor(x, requires_grad=True) for x in xs]
    h0t, c0t = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    h0a, c0a = Tensor(h0, requires_grad=True), Tensor(c0, requires_grad=True)
    st, sa = ((h0t, c0t), (h0a, c0a)) if lstm else (h0t, h0a)
    st = theirs(xts[0], st)
    sa = ours(xas[0], sa)
    st2 = theirs(xts[1], st)
    sa2 = ours(xas[1], sa)
    outs_t = list(st2) if lstm else [st2]
    outs_a = list(sa2) if lstm else [sa2]
    for a, t in zip(outs_a, outs_t):
        _close(a.numpy(), t, tol, "next state")
    weights = _loss_weights(rng, [o.shape for o in outs_t], dtype)
    sum((o * torch.tensor(w)).sum() for o, w in zip(outs_t, weights)).backward()
    sum((o * Tensor(w)).sum() for o, w in zip(outs_a, weights)).backward()
    for xa, xt in zip(xas, xts):
        _close(xa.grad, xt.grad, tol, "d / d input")
    _close(h0a.grad, h0t.grad, tol, "d / d h0")
    if lstm:
        _close(c0a.grad, c0t.grad, tol, "d / d c0")
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, named[name].grad, tol, f"d / d {name}")


@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_default_state_and_unbatched(kind):
    cls, tcls, kw = CELLS[kind]
    torch.manual_seed(3)
    theirs = tcls(3, 2, **kw).double()
    ours = cls(3, 2, dtype="float64", seed=0, **kw)
    _copy_weights(ours, theirs)
    x = np.random.default_rng(4).standard_normal((3,))
    out_t = theirs(torch.tensor(x))
    out_a = ours(x)
    outs_t = list(out_t) if kind == "lstm" else [out_t]
    outs_a = list(out_a) if kind == "lstm" else [out_a]
    for a, t in zip(outs_a, outs_t):
        _close(a.numpy(), t, 1e-12, "unbatched step from zero state")


def _scan_inputs(kind, rng, dtype=np.float64, T=4, B=2, H=3):
    G = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[kind]
    arrays = [
        rng.standard_normal((T, B, G * H)),
        0.6 * rng.standard_normal((G * H, H)),
        0.3 * rng.standard_normal(G * H),
        rng.standard_normal((B, H)),
    ]
    if kind == "lstm":
        arrays.append(rng.standard_normal((B, H)))
    return [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_numba_loops_equal_numpy_reference(kind, dtype):
    """The compiled CPU fast path and the NumPy reference loops: same states, same gradients."""
    results = []
    for impl in ("reference", "cpu"):
        inputs = _scan_inputs(kind, np.random.default_rng(9), dtype, T=9, B=3, H=5)
        out = recurrent_scan(kind, *inputs[:4], *inputs[4:], impl=impl)
        out.backward(np.random.default_rng(10).standard_normal(out.shape).astype(dtype))
        results.append([out.data] + [t.grad for t in inputs])
    for ref, fast in zip(*results):
        _close(fast, ref, TOL[dtype], "cpu vs reference")


@pytest.mark.parametrize("impl", ["reference", "cpu"])
@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_recurrent_scan_finite_differences(kind, impl):
    """The hand-written BPTT of the fused op against central differences (independent of PyTorch)."""
    inputs = _scan_inputs(kind, np.random.default_rng(5))
    if kind == "lstm":
        fn = lambda x, w, b, h, c: recurrent_scan(kind, x, w, b, h, c, impl=impl)  # noqa: E731
    else:
        fn = lambda x, w, b, h: recurrent_scan(kind, x, w, b, h, impl=impl)  # noqa: E731
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_default_init_is_pytorch_uniform_and_seeded():
    H = 50
    a = LSTM(7, H, num_layers=2, seed=3)
    b = LSTM(7, H, num_layers=2, seed=3)
    c = LSTM(7, H, num_layers=2, seed=4)
    bound = 1 / np.sqrt(H)
    for (name, p), (_, q), (_, r) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p.data, q.data)
        assert not np.array_equal(p.data, r.data)
        assert np.abs(p.data).max() <= bound
        # U(-k, k): the sample fills the interval and has variance k^2 / 3
        assert np.abs(p.data).max() > 0.9 * bound, name
        assert abs(p.data.var() - bound**2 / 3) < 0.25 * bound**2 / 3, name


def test_dropout_between_layers():
    x = np.random.default_rng(6).standard_normal((2, 5, 3)).astype(np.float32)
    plain = GRU(3, 4, num_layers=2, batch_first=True, seed=0)
    drop = GRU(3, 4, num_layers=2, dropout=0.5, batch_first=True, seed=0)
    np.testing.assert_array_equal(plain.weight_hh_l1.data, drop.weight_hh_l1.data)
    y_plain, _ = plain(x)
    y_drop, _ = drop(x)
    assert not np.allclose(y_plain.numpy(), y_drop.numpy())
    drop.eval()
    y_eval, _ = drop(x)
    np.testing.assert_array_equal(y_eval.numpy(), y_plain.numpy())


def test_bad_inputs():
    lstm = LSTM(3, 4, num_layers=2, batch_first=True)
    x = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match="input_size=3"):
        lstm(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(ValueError, match="input must have 3 dimensions"):
        lstm(np.zeros((1, 2, 5, 3), np.float32))
    with pytest.raises(TypeError, match="tuple"):
        lstm(x, np.zeros((2, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"h0 \(hx\[0\]\) must have shape \(2, 2, 4\)"):
        lstm(x, (np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(ValueError, match=r"c0 \(hx\[1\]\) must have shape"):
        lstm(x, (np.zeros((2, 2, 4)), np.zeros((2, 3, 4))))
    with pytest.raises(TypeError, match="dtype"):
        lstm(Tensor(np.zeros((2, 5, 3))))  # float64 tensor into a float32 layer
    gru = GRU(3, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"hx must have shape \(1, 2, 4\)"):
        gru(x, np.zeros((1, 2, 5)))
    with pytest.raises(TypeError, match="one tensor"):
        gru(x, (np.zeros((1, 2, 4)), np.zeros((1, 2, 4))))
    cell = GRUCell(3, 4)
    with pytest.raises(ValueError, match="input_size=3"):
        cell(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"hx must have shape \(2, 4\)"):
        cell(np.zeros((2, 3), np.float32), np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="tuple"):
        LSTMCell(3, 4)(np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        LSTM(3, 0)
    with pytest.raises(ValueError, match="num_layers"):
        GRU(3, 4, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        GRU(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="kind"):
        recurrent_scan("elman", Tensor(np.zeros((2, 1, 3))), Tensor(np.zeros((3, 3))))
    with pytest.raises(ValueError, match="impl"):
        recurrent_scan("gru", Tensor(np.zeros((2, 1, 9))), Tensor(np.zeros((9, 3))), impl="cuda")
    with pytest.raises(ValueError, match="at least one time step"):
        lstm(np.zeros((2, 0, 3), np.float32))
    with pytest.raises(ValueError, match="w_hh"):
        recurrent_scan("lstm", Tensor(np.zeros((2, 1, 8))), Tensor(np.zeros((8, 3))))


def test_lstm_learns_delayed_copy():
    """Output the symbol seen ``delay`` steps ago: needs memory; chance is 1 / n_symbols."""
    rng = np.random.default_rng(0)
    n_sym, delay, T, H = 4, 3, 12, 24
    lstm = LSTM(n_sym, H, batch_first=True, seed=0)
    head = Linear(H, n_sym, seed=1)
    opt = Adam(lstm.parameters() + head.parameters(), lr=2e-2)
    eye = np.eye(n_sym, dtype=np.float32)

    def batch(n):
        s = rng.integers(0, n_sym, (n, T))
        return eye[s], s[:, :-delay]

    for _ in range(150):
        x, target = batch(32)
        y, _ = lstm(x)
        logits = head(y[:, delay:])
        loss = F.cross_entropy(logits.reshape(-1, n_sym), target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, target = batch(256)
    y, _ = lstm(x)
    pred = head(y[:, delay:]).numpy().argmax(-1)
    accuracy = (pred == target).mean()
    assert accuracy > 0.9, f"delayed-copy accuracy {accuracy:.3f} (chance {1 / n_sym:.2f})"


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_on_cupy_matches_numpy(kind):
    import cupy

    cls, _, kw = LAYERS[kind]
    cpu = cls(5, 6, num_layers=2, batch_first=True, seed=0, **kw)
    gpu = cls(5, 6, num_layers=2, batch_first=True, seed=0, **kw).to(backend="cupy")
    x = np.random.default_rng(7).standard_normal((3, 8, 5)).astype(np.float32)
    xc, xg = Tensor(x, requires_grad=True), Tensor(cupy.asarray(x), requires_grad=True)
    yc, _ = cpu(xc)
    yg, _ = gpu(xg)
    assert isinstance(yg.data, cupy.ndarray)
    np.testing.assert_allclose(asnumpy(yg.data), yc.numpy(), atol=1e-5)
    with no_grad():  # the LSTM's fused inference kernel takes its reference on CuPy arrays
        y_inf, _ = gpu(xg)
    assert isinstance(y_inf.data, cupy.ndarray)
    np.testing.assert_allclose(asnumpy(y_inf.data), yc.numpy(), atol=1e-5)
    (yc * yc).sum().backward()
    (yg * yg).sum().backward()
    np.testing.assert_allclose(asnumpy(xg.grad), xc.grad, atol=1e-4)
    for (name, pc), (_, pg) in zip(cpu.named_parameters(), gpu.named_parameters()):
        np.testing.assert_allclose(asnumpy(pg.grad), pc.grad, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("keep", [True, False])
def test_lstm_forward_kernel_equals_its_reference(keep):
    """The registered ``lstm_forward`` kernel: compiled float32 loop vs the NumPy loop, with and without caches."""
    from neuro.kernels import call

    rng = np.random.default_rng(3)
    T, B, H = 20, 5, 37
    a = (3 * rng.standard_normal((B, T, 4 * H))).astype(np.float32).transpose(1, 0, 2)  # strided, as in nn.LSTM
    w = (0.5 * rng.standard_normal((4 * H, H))).astype(np.float32)
    b, h0, c0 = (rng.standard_normal(s).astype(np.float32) for s in ((4 * H,), (B, H), (B, H)))
    fast_out, fast_cache = call("lstm_forward", a, w, b, h0, c0, keep, impl="cpu")
    ref_out, ref_cache = call("lstm_forward", a, w, b, h0, c0, keep, impl="reference")
    assert fast_out.dtype == np.float32
    np.testing.assert_allclose(fast_out, ref_out, atol=3e-6)
    assert (fast_cache is None) == (ref_cache is None) == (not keep)
    if keep:
        for fast, ref in zip(fast_cache, ref_cache):
            np.testing.assert_allclose(fast, ref, atol=3e-6)


@pytest.mark.parametrize("batch", [3, 8])
def test_lstm_inference_equals_training_forward(batch):
    """Without gradients each layer is one fused kernel (batches from 5 up: one product per step, summed
    in another order), so the two forwards agree to float32 rounding."""
    lstm = LSTM(6, 8, num_layers=2, batch_first=True, seed=0)
    x = np.random.default_rng(0).standard_normal((batch, 7, 6)).astype(np.float32)
    y_train, (h_train, c_train) = lstm(x)
    with no_grad():
        y_eval, (h_eval, c_eval) = lstm(x)
    assert y_eval.data.flags.c_contiguous  # batch-first output in its own layout, as PyTorch's
    for a, b in ((y_train, y_eval), (h_train, h_eval), (c_train, c_eval)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=2e-6)


@pytest.mark.parametrize("batch", [1, 4, 5, 8, 13, 33])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_inference_kernel_equals_its_reference(batch, bias):
    """The registered ``lstm_inference`` kernel (fused product from B = 5, padded to 8 columns; below that
    projection + step loop) against the NumPy loop: strided and reversed inputs, a strided output,
    4H = 148 not a multiple of the 8-row tiles."""
    from neuro.kernels import call

    rng = np.random.default_rng(batch)
    T, I, H = 9, 11, 37
    x = rng.standard_normal((batch, T, I)).astype(np.float32).transpose(1, 0, 2)[::-1]
    w_ih = (0.4 * rng.standard_normal((4 * H, I))).astype(np.float32)
    w_hh = (0.4 * rng.standard_normal((4 * H, H))).astype(np.float32)
    b = rng.standard_normal(4 * H).astype(np.float32) if bias else None
    h0, c0 = (rng.standard_normal((batch, H)).astype(np.float32) for _ in range(2))
    outs, finals = [], []
    for impl in ("cpu", "reference"):
        out = np.full((batch, T, 2 * H), np.nan, np.float32)
        finals.append(call("lstm_inference", x, w_ih, w_hh, b, h0, c0, out.transpose(1, 0, 2)[:, :, H:], impl=impl))
        outs.append(out)
    assert np.isnan(outs[0][:, :, :H]).all()  # nothing written outside its view
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=3e-6)
    for fast, ref in zip(*finals):
        assert fast.shape == (batch, H) and fast.dtype == np.float32
        np.testing.assert_allclose(fast, ref, rtol=0, atol=3e-6)
    np.testing.assert_array_equal(finals[0][0], outs[0][:, -1, H:])


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_inference_matches_torch_no_grad(batch_first, bidirectional):
    """The fused inference path against ``torch.nn.LSTM`` under ``no_grad``: two layers, given states."""
    B, T, I, H, L = 6, 9, 5, 7, 2
    D = 2 if bidirectional else 1
    torch.manual_seed(3)
    theirs = torch.nn.LSTM(I, H, num_layers=L, batch_first=batch_first, bidirectional=bidirectional)
    ours = LSTM(I, H, num_layers=L, batch_first=batch_first, bidirectional=bidirectional, seed=0)
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(np.float32)
    h0, c0 = (rng.standard_normal((D * L, B, H)).astype(np.float32) for _ in range(2))
    with torch.no_grad():
        y_t, (h_t, c_t) = theirs(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    with no_grad():
        y, (h, c) = ours(x, (h0, c0))
    for a, t, what in ((y, y_t, "output"), (h, h_t, "h_n"), (c, c_t, "c_n")):
        _close(a.numpy(), t, 1e-5, what)


def test_lstm_inference_dropout_draws_as_training():
    """Dropout between layers in training mode without gradients: the same masks as with them."""
    x = np.random.default_rng(6).standard_normal((6, 5, 3)).astype(np.float32)
    a, b = (LSTM(3, 4, num_layers=2, dropout=0.5, batch_first=True, seed=0) for _ in range(2))
    y_grad, _ = a(x)
    with no_grad():
        y_none, _ = b(x)
    np.testing.assert_allclose(y_grad.numpy(), y_none.numpy(), rtol=0, atol=2e-6)


@pytest.mark.parametrize("grad", [True, False])
def test_lstm_leaves_the_initial_state_alone_at_batch_one(grad):
    """At B = 1 (every unbatched call) the compiled float32 forward wrote its running state into the
    caller's h0 (``ascontiguousarray(h0.T)`` is h0 itself then), and so broke dL/dW_hh."""
    torch.manual_seed(2)
    theirs = torch.nn.LSTM(3, 4, num_layers=2)
    ours = LSTM(3, 4, num_layers=2, seed=0)
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    h0, c0 = (rng.standard_normal((2, 4)).astype(np.float32) for _ in range(2))
    h0_t = Tensor(h0.copy(), requires_grad=grad)
    with torch.set_grad_enabled(grad):
        y_t, _ = theirs(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    if grad:
        y, _ = ours(x, (h0_t, c0))
        (y * y).sum().backward()
        (y_t * y_t).sum().backward()
        _close(ours.weight_hh_l0.grad, theirs.weight_hh_l0.grad, TOL[np.float32], "dL/dW_hh")
    else:
        with no_grad():
            y, _ = ours(x, (h0_t, c0))
    np.testing.assert_array_equal(h0_t.data, h0)
    _close(y.numpy(), y_t, TOL[np.float32], "output")
