"""Layers and initializers: PyTorch state-dict naming, forward/backward against torch.nn, init statistics."""

import numpy as np
import pytest
import torch

import ann
import ann.functional as F
from ann import init, nn


def _torch_sd(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def _check_module(ours, theirs, x_np, rtol=1e-10, atol=1e-12):
    """Load torch's weights into ours; compare outputs and all gradients."""
    ours.load_state_dict(_torch_sd(theirs))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = ann.Tensor(x_np, requires_grad=True)
    xt = torch.tensor(x_np, requires_grad=True)
    y, yt = ours(x), theirs(xt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


def test_sequential_state_dict_names_and_values_match_torch():
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 7), torch.nn.Tanh(),
                             torch.nn.Linear(7, 3)).double()
    d = np.float64
    ours = nn.Sequential(nn.Linear(5, 7, dtype=d), nn.ReLU(), nn.Linear(7, 7, dtype=d), nn.Tanh(), nn.Linear(7, 3, dtype=d))
    _check_module(ours, tm, np.random.default_rng(1).standard_normal((4, 5)))


def test_mlp_matches_torch_sequential():
    tm = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.GELU(), torch.nn.Linear(8, 2)).double()
    _check_module(nn.MLP([5, 8, 2], activation="gelu", dtype=np.float64, seed=0), tm,
                  np.random.default_rng(1).standard_normal((3, 5)))
    tm = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.LeakyReLU(0.2), torch.nn.Linear(8, 2)).double()
    ours = nn.MLP([5, 8, 2], activation="leaky_relu", activation_params={"negative_slope": 0.2}, dtype=np.float64)
    _check_module(ours, tm, np.random.default_rng(1).standard_normal((3, 5)))


def test_linear_on_3d_input_and_without_bias():
    tm = torch.nn.Linear(4, 6, bias=False).double()
    ours = nn.Linear(4, 6, bias=False, dtype=np.float64)
    assert list(ours.state_dict()) == ["weight"]
    _check_module(ours, tm, np.random.default_rng(2).standard_normal((2, 3, 4)))


def test_layer_norm_and_rms_norm_match_torch():
    x = np.random.default_rng(3).standard_normal((2, 3, 4)) * 3 + 1
    for ours, theirs in [
        (nn.LayerNorm(4, dtype=np.float64), torch.nn.LayerNorm(4).double()),
        (nn.LayerNorm((3, 4), eps=1e-3, dtype=np.float64), torch.nn.LayerNorm((3, 4), eps=1e-3).double()),
        (nn.RMSNorm(4, dtype=np.float64), torch.nn.RMSNorm(4).double()),
        (nn.RMSNorm((3, 4), eps=1e-4, dtype=np.float64), torch.nn.RMSNorm((3, 4), eps=1e-4).double()),
    ]:
        with torch.no_grad():
            for p in theirs.parameters():
                p.uniform_(0.5, 1.5)
        _check_module(ours, theirs, x, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch_with_repeated_indices(padding_idx):
    te = torch.nn.Embedding(6, 3, padding_idx=padding_idx).double()
    ours = nn.Embedding(6, 3, padding_idx=padding_idx, dtype=np.float64, seed=0)
    if padding_idx is not None:
        row = padding_idx % 6
        assert np.all(ours.weight.numpy()[row] == 0) and ours.padding_idx == row
    ours.load_state_dict(_torch_sd(te))
    idx = np.array([[0, 5, 0], [2, 2, 2], [5, 1, 2]])  # repeats, and both padding rows (2 and 5)
    y, yt = ours(idx), te(torch.tensor(idx))
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy())
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.weight.grad, te.weight.grad.numpy(), rtol=1e-12)
    if padding_idx is not None:
        assert np.all(ours.weight.grad[row] == 0)


def test_embedding_bad_input():
    ours = nn.Embedding(6, 3, dtype=np.float64, seed=0)
    with pytest.raises(ValueError, match="indices must be in"):
        ours(np.array([6]))
    with pytest.raises(TypeError, match="integers"):
        ours(np.array([1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(6, 3, padding_idx=6)
    with pytest.raises(TypeError, match="padding_idx"):
        nn.Embedding(6, 3, padding_idx=1.0)


def test_dropout_is_inverted_seeded_and_off_in_eval():
    d = nn.Dropout(0.25, seed=3)
    x = ann.Tensor(np.ones((200, 100)), requires_grad=True)
    y = d(x)
    kept = y.data != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.where(kept, 1 / 0.75, 0.0))
    np.testing.assert_array_equal(nn.Dropout(0.25, seed=3)(x).data, y.data)  # same seed, same mask
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="dropout probability"):
        nn.Dropout(1.5)


def test_module_api_parameters_train_eval_zero_grad_and_strict_loading():
    m = nn.MLP([3, 4, 2], dropout=0.1, seed=0)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.weight", "0.bias", "3.weight", "3.bias"]  # dropout sits at index 2, as in torch
    assert m.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2
    assert all(p.dtype == np.float32 for p in m.parameters())
    m.eval()
    assert not any(mod.training for mod in m.modules())
    m.train()
    F.cross_entropy(m(np.ones((2, 3), np.float32)), np.array([0, 1])).backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    sd = {k: v.copy() for k, v in m.state_dict().items()}
    with pytest.raises(RuntimeError, match="Missing key"):
        m.load_state_dict({"0.weight": sd["0.weight"]})
    with pytest.raises(RuntimeError, match="size mismatch"):
        m.load_state_dict({**sd, "0.bias": np.zeros(5)})
    missing, unexpected = m.load_state_dict({"0.weight": sd["0.weight"], "extra": np.zeros(1)}, strict=False)
    assert "0.bias" in missing and unexpected == ["extra"]
    m.to(dtype=np.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())


def test_seeded_layers_are_reproducible():
    a = nn.MLP([4, 8, 2], seed=7)
    b = nn.MLP([4, 8, 2], seed=7)
    c = nn.MLP([4, 8, 2], seed=8)
    for (ka, va), (_, vb), (_, vc) in zip(a.state_dict().items(), b.state_dict().items(), c.state_dict().items()):
        np.testing.assert_array_equal(va, vb)
        assert not np.array_equal(va, vc)


def test_linear_default_init_bounds_as_torch():
    lin = nn.Linear(100, 50, seed=0)
    bound = 1 / np.sqrt(100)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.bias.data).max() <= bound
    assert np.abs(lin.weight.data).max() > 0.95 * bound
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="linear shape mismatch"):
        lin(ann.Tensor(np.ones((2, 99), np.float32)))


@pytest.mark.parametrize("fn,kwargs,expected_std", [
    (init.xavier_uniform_, {}, np.sqrt(2.0 / (300 + 200))),
    (init.xavier_normal_, {"gain": 2.0}, 2.0 * np.sqrt(2.0 / (300 + 200))),
    (init.kaiming_uniform_, {"nonlinearity": "relu"}, np.sqrt(2.0 / 300)),
    (init.kaiming_normal_, {"nonlinearity": "relu", "mode": "fan_out"}, np.sqrt(2.0 / 200)),
    (init.he_normal_, {"a": 0.1}, np.sqrt(2.0 / (1 + 0.01)) / np.sqrt(300)),
])
def test_initializer_statistics_match_torch_formulas(fn, kwargs, expected_std):
    w = ann.Tensor(np.zeros((200, 300)))
    fn(w, seed=0, **kwargs)
    assert abs(w.data.std() / expected_std - 1) < 0.02
    assert abs(w.data.mean()) < 0.05 * expected_std * 10
    tw = torch.empty(200, 300)
    getattr(torch.nn.init, fn.__name__.replace("he_", "kaiming_").replace("glorot_", "xavier_"))(tw, **kwargs)
    assert abs(tw.std().item() / expected_std - 1) < 0.02  # the formula is torch's
    w2 = ann.Tensor(np.zeros((200, 300)))
    np.testing.assert_array_equal(fn(w2, seed=0, **kwargs).data, w.data)  # seeded


def test_orthogonal_zeros_ones():
    for shape in [(5, 5), (3, 7), (7, 3)]:
        w = init.orthogonal_(ann.Tensor(np.zeros(shape)), gain=1.5, seed=1).data
        small = w @ w.T if shape[0] <= shape[1] else w.T @ w
        np.testing.assert_allclose(small, 1.5**2 * np.eye(min(shape)), atol=1e-12)
    assert (init.ones_(ann.Tensor(np.zeros(3))).data == 1).all()
    assert (init.zeros_(ann.Tensor(np.ones(3))).data == 0).all()
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(ann.Tensor(np.zeros(3)))


def test_gradcheck_layer_functions():
    rng = np.random.default_rng(0)

    def t(*shape):
        return ann.Tensor(rng.standard_normal(shape), requires_grad=True)

    assert ann.gradcheck(lambda x, w, b: F.linear(x, w, b), [t(2, 3, 4), t(5, 4), t(5)])
    assert ann.gradcheck(lambda x, w, b: F.layer_norm(x, 4, w, b), [t(3, 4), t(4), t(4)])
    assert ann.gradcheck(lambda x, w: F.rms_norm(x, (2, 3), w, eps=1e-6), [t(2, 2, 3), t(2, 3)])
    assert ann.gradcheck(lambda w: F.embedding(np.array([[0, 2], [2, 2]]), w), [t(3, 2)])
    assert ann.gradcheck(lambda x: F.dropout(x, 0.5, seed=1), [t(4, 4)])


def test_sequence_layers_reachable_from_ann_nn():
    from ann.nn.recurrent import LSTM

    assert nn.LSTM is LSTM
    with pytest.raises(AttributeError, match="no attribute 'NotALayer'"):
        nn.NotALayer


@pytest.mark.parametrize("shape, n_axes, affine", [((3, 5, 37), 1, True), ((2, 3, 4, 6), 2, True), ((4, 9), 1, False)])
def test_layer_norm_kernels_equal_their_reference(shape, n_axes, affine):
    """The compiled float32 layer_norm / layer_norm_backward kernels against the NumPy reference."""
    import ann.norm_kernel  # noqa: F401  (registers the kernels)
    from neuro.kernels import call

    rng = np.random.default_rng(2)
    x = (3 * rng.standard_normal(shape) + 1).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    tail = shape[len(shape) - n_axes:]
    w, b = (rng.standard_normal(tail).astype(np.float32) for _ in range(2)) if affine else (None, None)
    fast = call("layer_norm", x, w, b, 1e-5, n_axes, impl="cpu")
    ref = call("layer_norm", x, w, b, 1e-5, n_axes, impl="reference")
    for a, r in zip(fast, ref):
        assert a.dtype == np.float32 and a.shape == r.shape
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)
    fast = call("layer_norm_backward", g, ref[1], ref[2], w, n_axes, impl="cpu")
    ref = call("layer_norm_backward", g, ref[1], ref[2], w, n_axes, impl="reference")
    for a, r in zip(fast, ref):
        assert a.dtype == np.float32 and a.shape == r.shape
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4)
