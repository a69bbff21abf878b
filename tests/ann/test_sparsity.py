"""``ann.sparsity``: the recorder's counts against hand-computed values; relufy changes only activations."""

import numpy as np
import pytest

import ann
from ann import nn
from ann.sparsity import SparsityRecorder, activation_sites, relufy


class Fixed(nn.Module):
    """Returns a fixed array whatever the input, through an Identity 'activation' site named act."""

    def __init__(self, a):
        super().__init__()
        self.a = a
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(ann.Tensor(self.a))


def test_recorder_counts_equal_hand_computed_values():
    a = np.array([[[0.0, 2.0, 0.0, 0.0005],
                   [0.0, 1.0, 0.0, 0.0],
                   [0.0, 0.0, 3.0, 0.0],
                   [0.0, 4.0, 0.0, 0.0]]])  # (1 sequence, T=4, H=4); ReLU leaves it unchanged
    model = Fixed(a)
    rec = SparsityRecorder(model, eps=1e-3, windows=(1, 2, 4, 8))
    model(None)
    model(None)  # twice: the counts double, the fractions stay
    s = rec.summary()["act"]
    assert s["n_tokens"] == 8 and s["n_neurons"] == 4
    assert s["zero_fraction"] == pytest.approx(11 / 16)
    assert s["small_fraction"] == pytest.approx(12 / 16)  # 0.0005 <= eps
    np.testing.assert_allclose(s["frequency"], [0, 3 / 4, 1 / 4, 1 / 4])
    np.testing.assert_array_equal(s["dead"], [0])  # neuron 0 is never active; the others are
    assert s["dead_fraction"] == 0.25
    # windows of w tokens: fraction of neurons used at least once
    # w=1: per token 2/4, 1/4, 1/4, 1/4 -> 5/16; w=2: {1,3}+{1} -> 2/4, {1,2} -> 2/4; w=4: 3/4; w=8: T=4 < 8, none
    assert s["window_usage"] == pytest.approx({1: 5 / 16, 2: 0.5, 4: 0.75})
    rec.reset()
    assert rec.summary() == {}
    rec.remove()
    model(None)
    assert rec.summary() == {}


def test_recorder_positive_mode_counts_negative_outputs_as_inactive():
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.LeakyReLU(0.1))
    model[0].weight.data[:] = 0
    model[0].bias.data[:] = np.array([-1.0, 1.0, -1.0, 1.0], np.float32)
    x = ann.Tensor(np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32))
    with SparsityRecorder(model, active="positive") as rec:
        model(x)
    s = rec.summary()["1"]
    np.testing.assert_array_equal(s["dead"], [0, 2])
    assert s["zero_fraction"] == 0.0  # leaky ReLU gives no exact zeros
    np.testing.assert_array_equal(SparsityRecorder(model).stats["1"].n_tokens, 0)


def test_recorder_on_mlp_and_transformer_sites():
    mlp = nn.MLP([5, 8, 8, 2], activation="gelu", seed=0)
    assert activation_sites(mlp) == ["1", "3"]
    lm = nn.TransformerLM(11, d_model=8, nhead=2, num_layers=2, activation="reglu", seed=0)
    assert activation_sites(lm) == ["block0.act", "block1.act"]
    rec = SparsityRecorder(lm, windows=(2,))
    lm(np.arange(12).reshape(2, 6) % 11)
    s = rec.summary()
    assert set(s) == {"block0.act", "block1.act"}
    assert s["block0.act"]["n_tokens"] == 12 and s["block0.act"]["n_neurons"] == 32
    hidden = {}
    lm.block0.act.register_forward_hook(lambda m, a, o: hidden.setdefault("h", o.numpy()))
    rec.reset()
    lm(np.arange(12).reshape(2, 6) % 11)
    assert rec.summary()["block0.act"]["zero_fraction"] == pytest.approx(np.mean(hidden["h"] == 0))


def test_recorder_bad_input():
    with pytest.raises(TypeError, match="Module"):
        SparsityRecorder("model")
    with pytest.raises(ValueError, match="no activation sites"):
        SparsityRecorder(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="active must be"):
        SparsityRecorder(nn.MLP([2, 2, 2]), active="sometimes")
    with pytest.raises(ValueError, match="windows"):
        SparsityRecorder(nn.MLP([2, 2, 2]), windows=(0,))
    with pytest.raises(AttributeError, match="nope"):
        SparsityRecorder(nn.MLP([2, 2, 2]), sites=["nope"])


def _outputs_of(model, names, x):
    got = {}
    handles = [model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: got.setdefault(n, o.numpy().copy()))
               for n in names]
    out = model(x)
    for h in handles:
        h.remove()
    return out.numpy(), got


@pytest.mark.parametrize("activation", ["gelu", "swiglu"])
def test_relufy_changes_only_the_activations(activation):
    lm = nn.TransformerLM(13, d_model=8, nhead=2, num_layers=2, activation=activation, seed=1)
    ids = np.random.default_rng(0).integers(0, 13, (2, 7))
    params_before = {k: (p, p.data.copy()) for k, p in lm.named_parameters()}
    modules_before = {n: m for n, m in lm.named_modules() if not n.endswith("act")}
    _, first = _outputs_of(lm, ["block0.linear1"], ids)
    changes = relufy(lm, "relu")
    assert [c["name"] for c in changes] == ["block0.act", "block1.act"]
    assert changes[0]["after"] == ("Activation('reglu')" if activation == "swiglu" else "Activation('relu')")
    assert lm.block0.activation == ("reglu" if activation == "swiglu" else "relu")
    for k, p in lm.named_parameters():
        assert p is params_before[k][0]
        np.testing.assert_array_equal(p.data, params_before[k][1])
    assert set(params_before) == {k for k, _ in lm.named_parameters()}
    for n, m in lm.named_modules():
        if not n.endswith("act"):
            assert modules_before[n] is m
    _, after = _outputs_of(lm, ["block0.linear1"], ids)
    np.testing.assert_array_equal(after["block0.linear1"], first["block0.linear1"])  # upstream of the swap: same
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_array_equal(lm.block0.act(ann.Tensor(x)).numpy(),
                                  ann.activations.get("reglu" if activation == "swiglu" else "relu")(x).numpy())
    assert relufy(lm, "relu") == []  # already ReLU: nothing to change


def test_relufy_shifted_and_after_norm_keep_state_dict():
    mlp = nn.MLP([4, 6, 6, 2], activation="silu", seed=0)
    keys = list(mlp.state_dict())
    changes = relufy(mlp, "shifted_relu", shift=0.25)
    assert [c["name"] for c in changes] == ["1", "3"]
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    h = mlp[0](ann.Tensor(x)).numpy()
    np.testing.assert_allclose(mlp[1](ann.Tensor(h)).numpy(), np.maximum(h - 0.25, 0))
    assert list(mlp.state_dict()) == keys

    lm = nn.TransformerLM(9, d_model=8, nhead=2, num_layers=1, activation="gelu", norm="rmsnorm", seed=0)
    keys = list(lm.state_dict())
    ids = np.arange(6).reshape(1, 6)
    h0 = lm.block0.norm2(lm.embedding(ids)).numpy()
    changes = relufy(lm, "relu", after_norm=True)
    assert [c["name"] for c in changes] == ["block0.act", "block0.norm1", "block0.norm2"]  # not the final norm
    assert list(lm.state_dict()) == keys
    np.testing.assert_array_equal(lm.block0.norm2(lm.embedding(ids)).numpy(), np.maximum(h0, 0))
    lm.load_state_dict(lm.state_dict())
    lm(ids).sum().backward()
    assert lm.block0.norm2.weight.grad is not None


def test_relufy_bad_input():
    with pytest.raises(ValueError, match="activation must be"):
        relufy(nn.MLP([2, 2, 2]), "gelu")
    with pytest.raises(ValueError, match="not an activation"):
        relufy(nn.MLP([2, 2, 2]), sites=["0"])
    with pytest.raises(ValueError, match="not a LayerNorm"):
        relufy(nn.MLP([2, 2, 2]), after_norm=["0"])
