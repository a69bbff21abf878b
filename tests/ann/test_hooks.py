"""Forward hooks, ``get_submodule``/``set_submodule`` and ``Sequential`` editing, against PyTorch."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

import ann
from ann import nn


def _pair(seed=0):
    """The same 3-layer MLP in ann and in PyTorch (same weights)."""
    ours = nn.MLP([4, 8, 3], seed=seed)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def _run_both(hook_factory):
    """Register the hooks made by ``hook_factory(lib, log)`` on both models; run them once; return outputs and logs."""
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    results = []
    for lib, model, inp in (("ann", *_pair()[:1], ann.Tensor(x)), ("torch", _pair()[1], torch.tensor(x))):
        log = []
        hook_factory(lib, model, log)
        out = model(inp)
        results.append((out.detach().numpy() if lib == "torch" else out.numpy(), log))
    return results


def _as_np(v):
    return v.detach().numpy() if isinstance(v, torch.Tensor) else v.numpy()


def test_hooks_called_in_pytorch_order_with_pytorch_arguments():
    def factory(lib, model, log):
        def pre(name):
            def hook(module, args):
                assert isinstance(args, tuple) and len(args) == 1
                log.append(("pre", name, type(module).__name__.lower(), _as_np(args[0]).shape))
            return hook

        def post(name):
            def hook(module, args, output):
                log.append(("post", name, _as_np(args[0]).round(5).tolist(), _as_np(output).round(5).tolist()))
            return hook

        model.register_forward_pre_hook(pre("root"))
        model[0].register_forward_hook(post("first"))
        model[0].register_forward_pre_hook(pre("first"))
        model[2].register_forward_hook(post("last-b"))
        model[2].register_forward_hook(post("last-a"), prepend=True)
        model.register_forward_hook(post("root"))

    (out_a, log_a), (out_t, log_t) = _run_both(factory)
    np.testing.assert_allclose(out_a, out_t, rtol=1e-5, atol=1e-6)
    assert [e[:2] for e in log_a] == [e[:2] for e in log_t] == [
        ("pre", "root"), ("pre", "first"), ("post", "first"), ("post", "last-a"), ("post", "last-b"), ("post", "root")]
    for a, t in zip(log_a, log_t):
        if a[0] == "post":
            np.testing.assert_allclose(a[2], t[2], atol=1e-4)
            np.testing.assert_allclose(a[3], t[3], atol=1e-4)


def test_hooks_replace_inputs_and_outputs_as_pytorch():
    def factory(lib, model, log):
        model[0].register_forward_pre_hook(lambda m, args: args[0] * 2)  # a bare value is wrapped in a tuple
        model[1].register_forward_pre_hook(lambda m, args: (args[0] - 0.1,))
        model[2].register_forward_hook(lambda m, args, out: out + 1)
        model[2].register_forward_hook(lambda m, args, out: None)  # None keeps the output

    (out_a, _), (out_t, _) = _run_both(factory)
    np.testing.assert_allclose(out_a, out_t, rtol=1e-5, atol=1e-6)
    plain = _pair()[0](ann.Tensor(np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32))).numpy()
    assert not np.allclose(out_a, plain)


def test_hooks_with_kwargs_and_always_call():
    lin = nn.Linear(2, 2, seed=0)
    calls = []

    class Scaled(nn.Module):
        def forward(self, x, scale=1.0):
            if scale < 0:
                raise ValueError("negative scale")
            return x * scale

    m = Scaled()
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"scale": kwargs.get("scale", 1.0) * 3}), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: calls.append(kwargs["scale"]), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, out: calls.append(out is None), always_call=True)
    np.testing.assert_allclose(m(ann.Tensor([1.0]), scale=2.0).numpy(), [6.0])
    assert calls == [6.0, False]
    with pytest.raises(ValueError, match="negative scale"):
        m(ann.Tensor([1.0]), scale=-1.0)
    assert calls == [6.0, False, True]  # only the always_call hook ran, with output None
    bad = Scaled()
    bad.register_forward_pre_hook(lambda mod, args, kwargs: "oops", with_kwargs=True)
    with pytest.raises(RuntimeError, match="new_args, new_kwargs"):
        bad(ann.Tensor([1.0]))
    with pytest.raises(TypeError, match="hook must be callable"):
        lin.register_forward_hook("not a function")


def test_handles_remove_and_raising_hook_leaves_model_usable():
    model, _ = _pair()
    x = ann.Tensor(np.ones((1, 4), np.float32))
    clean = model(x).numpy()
    seen = []
    h1 = model[1].register_forward_hook(lambda m, a, o: seen.append(1))

    def boom(m, a, o):
        raise RuntimeError("hook failed")

    h2 = model[1].register_forward_hook(boom)
    with pytest.raises(RuntimeError, match="hook failed"):
        model(x)
    assert seen == [1]
    h2.remove()
    h2.remove()  # removing twice is harmless, as in PyTorch
    np.testing.assert_array_equal(model(x).numpy(), clean)
    assert seen == [1, 1]
    with h1:
        pass  # a handle is a context manager that removes its hook on exit
    model(x)
    assert seen == [1, 1]
    assert h1.id != h2.id
    # the model still trains after the failure
    loss = model(x).sum()
    loss.backward()
    assert model[0].weight.grad is not None


def test_get_and_set_submodule_as_pytorch():
    ours = nn.Sequential(nn.Sequential(nn.Linear(2, 3, seed=0), nn.ReLU()), nn.Linear(3, 1, seed=1))
    theirs = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU()), torch.nn.Linear(3, 1))
    for model, new in ((ours, nn.GELU()), (theirs, torch.nn.GELU())):
        assert model.get_submodule("") is model
        assert model.get_submodule("0.1") is model[0][1]
        model.set_submodule("0.1", new)
        assert model[0][1] is new
        assert list(dict(model.named_modules())) == ["", "0", "0.0", "0.1", "1"]  # replaced in place, order kept
        model.set_submodule("0.extra", type(new)())  # a new name is added (strict=False), as PyTorch
        with pytest.raises(AttributeError, match="has no attribute `nope`"):
            model.set_submodule("0.nope", type(new)(), strict=True)
        with pytest.raises(AttributeError, match="has no attribute `9`"):
            model.get_submodule("9.0")
        with pytest.raises(AttributeError, match="`weight` is not an nn.Module"):
            model.get_submodule("1.weight")
        with pytest.raises(AttributeError, match="`weight` is not an nn.Module"):
            model.set_submodule("1.weight", type(new)())
        with pytest.raises(ValueError, match="without a target name"):
            model.set_submodule("", type(new)())
        with pytest.raises(ValueError, match="is not an nn.Module"):
            model.set_submodule("0.1", 3)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def _names(seq):
    return [(k, type(m).__name__) for k, m in seq._modules.items()]


def test_sequential_editing_matches_pytorch():
    def build(lib):
        return lib.Sequential(lib.Linear(2, 3), lib.ReLU(), lib.Linear(3, 4), lib.Tanh())

    ours, nn_t = build(nn), build(torch.nn)
    for lib, seq in ((nn, ours), (torch.nn, nn_t)):
        assert len(seq) == 4
        assert type(seq[-1]).__name__ == "Tanh"
        sub = seq[1:3]
        assert type(sub).__name__ == "Sequential" and list(sub._modules) == ["1", "2"]
        seq[1] = lib.GELU()
        seq[-1] = lib.Sigmoid()
        del seq[0]
        seq.insert(1, lib.Identity())
        seq.insert(-1, lib.ReLU())
        seq.append(lib.Identity())
        seq.extend([lib.Linear(4, 1)])
        popped = seq.pop(0)
        assert type(popped).__name__ == "GELU"
        del seq[::2]
        for bad in (10, -10):
            with pytest.raises(IndexError):
                seq[bad]
            with pytest.raises(IndexError):
                seq.insert(bad, lib.Identity())
    assert [n for _, n in _names(ours)] == [n for _, n in _names(nn_t)]
    assert list(ours._modules) == list(nn_t._modules)
    with pytest.raises(TypeError, match="Modules"):
        ours[0] = "relu"
    with pytest.raises(TypeError, match="integers or slices"):
        ours["0"]


def test_sequential_ordereddict_and_mlp_assignment_keep_parameter_names():
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2, seed=0)), ("act", nn.ReLU())]))
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias"]
    mlp = nn.MLP([3, 5, 5, 2], activation="gelu", seed=0)
    names = list(mlp.state_dict())
    mlp[1] = nn.ReLU()
    assert list(mlp.state_dict()) == names
    assert [type(m).__name__ for m in mlp] == ["Linear", "ReLU", "Linear", "Activation", "Linear"]
