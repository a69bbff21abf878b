"""Names that ``ann`` shares with PyTorch keep PyTorch's defaults (checked against torch's own signatures)."""

import inspect

import numpy as np
import pytest
import torch

import ann.nn as nn

# torch's RNN/LSTM/GRU constructors are ``(*args, **kwargs)``; their defaults live on RNNBase.
_TORCH_SIGNATURE_OF = {"RNN": torch.nn.RNNBase, "LSTM": torch.nn.RNNBase, "GRU": torch.nn.RNNBase}
_NOT_COMPARED = {"device", "dtype"}  # ann takes a NumPy dtype and has no device argument


def _shared_defaults(ours, theirs):
    """``(name, ours, torch's)`` for every parameter both signatures name."""
    o, t = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    return [(p, o[p].default, t[p].default) for p in t if p in o and p not in _NOT_COMPARED]


def _shared_module_names():
    return [n for n in nn.__all__ if hasattr(torch.nn, n) and n not in ("Module", "Parameter")]


@pytest.mark.parametrize("name", _shared_module_names())
def test_module_defaults_equal_torch(name):
    theirs = _TORCH_SIGNATURE_OF.get(name, getattr(torch.nn, name))
    for param, ours_default, torch_default in _shared_defaults(getattr(nn, name), theirs):
        assert ours_default == torch_default, f"{name}({param}=...) defaults to {ours_default!r}, torch to {torch_default!r}"


def test_the_comparison_sees_the_sequence_layers_arguments():
    """Guards the test above against comparing nothing (torch's ``*args`` signatures)."""
    compared = {p for p, _, _ in _shared_defaults(nn.LSTM, torch.nn.RNNBase)}
    assert {"num_layers", "bias", "batch_first", "dropout", "bidirectional"} <= compared
    compared = {p for p, _, _ in _shared_defaults(nn.MultiheadAttention, torch.nn.MultiheadAttention)}
    assert {"dropout", "bias", "kdim", "vdim", "batch_first"} <= compared


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_sequence_layers_are_time_first_by_default_as_torch(name):
    """Default-constructed on both sides, a ``(T, B, F)`` input gives torch's output and final state."""
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(4, 3, num_layers=2).double()
    ours = getattr(nn, name)(4, 3, num_layers=2, dtype="float64", seed=0)
    assert ours.batch_first is theirs.batch_first is False
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((6, 2, 4))  # (T, B, F) with T != B
    t_out, t_state = theirs(torch.tensor(x))
    o_out, o_state = ours(x)
    np.testing.assert_allclose(o_out.numpy(), t_out.detach().numpy(), atol=1e-12)
    t_h = t_state[0] if name == "LSTM" else t_state
    o_h = o_state[0] if name == "LSTM" else o_state
    np.testing.assert_allclose(o_h.numpy(), t_h.detach().numpy(), atol=1e-12)


def test_multihead_attention_is_sequence_first_by_default_as_torch():
    E, H, L, B = 8, 2, 5, 3
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, H, dtype=torch.float64)
    ours = nn.MultiheadAttention(E, H, dtype="float64", seed=0)
    assert ours.batch_first is theirs.batch_first is False
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((L, B, E))  # (L, B, E)
    t_out, t_w = theirs(*(torch.tensor(x),) * 3)
    o_out, o_w = ours(x)
    np.testing.assert_allclose(o_out.numpy(), t_out.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(o_w.numpy(), t_w.detach().numpy(), atol=1e-12)


def _shared_function_names(ours_module, theirs_module, names):
    """Names both modules hold whose torch signature Python can read (torch's C builtins have none)."""
    out = []
    for n in names:
        theirs = getattr(theirs_module, n, None)
        if theirs is None or not callable(theirs):
            continue
        try:
            inspect.signature(theirs)
        except (TypeError, ValueError):
            continue
        out.append(n)
    return out


def _function_cases():
    import ann.functional as F
    import ann.init as init
    import ann.optim as optim
    import ann.optim.lr_scheduler as lr_scheduler

    groups = [
        ("F", F, torch.nn.functional, F.__all__),
        ("init", init, torch.nn.init, [n for n in dir(init) if not n.startswith("_")]),
        ("optim", optim, torch.optim, optim.__all__),
        ("lr_scheduler", lr_scheduler, torch.optim.lr_scheduler, [n for n in dir(lr_scheduler) if n[:1].isupper()]),
    ]
    return [(f"{label}.{n}", getattr(ours, n), getattr(theirs, n))
            for label, ours, theirs, names in groups for n in _shared_function_names(ours, theirs, names)]


_FUNCTION_CASES = _function_cases()


@pytest.mark.parametrize("label,ours,theirs", _FUNCTION_CASES, ids=[c[0] for c in _FUNCTION_CASES])
def test_function_optimizer_and_scheduler_defaults_equal_torch(label, ours, theirs):
    for param, ours_default, torch_default in _shared_defaults(ours, theirs):
        assert ours_default == torch_default, f"{label}({param}=...) defaults to {ours_default!r}, torch to {torch_default!r}"


def test_the_function_comparison_covers_the_main_names():
    labels = {c[0] for c in _FUNCTION_CASES}
    assert {"F.cross_entropy", "F.dropout", "F.softmax", "F.glu", "F.layer_norm", "init.xavier_uniform_",
            "optim.Adam", "optim.SGD", "lr_scheduler.StepLR"} <= labels


def test_scaled_dot_product_attention_takes_torchs_positional_order():
    from ann.functional import scaled_dot_product_attention as ours

    names = ["query", "key", "value", "attn_mask", "dropout_p", "is_causal"]
    params = inspect.signature(ours).parameters
    assert list(params)[: len(names)] == names and params["scale"].kind is inspect.Parameter.KEYWORD_ONLY
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 5, 4)) for _ in range(3))
    allowed = rng.random((5, 5)) < 0.7
    allowed[:, 0] = True
    args = (None, 0.0, True)  # attn_mask, dropout_p, is_causal positionally, as torch takes them
    ref = torch.nn.functional.scaled_dot_product_attention(*map(torch.tensor, (q, k, v)), *args, scale=0.3)
    np.testing.assert_allclose(ours(q, k, v, *args, scale=0.3).numpy(), ref.numpy(), atol=1e-12)
    ref = torch.nn.functional.scaled_dot_product_attention(*map(torch.tensor, (q, k, v)), torch.tensor(allowed))
    np.testing.assert_allclose(ours(q, k, v, allowed).numpy(), ref.numpy(), atol=1e-12)
    np.testing.assert_array_equal(ours(q, k, v, mask=allowed, causal=True).numpy(), ours(q, k, v, allowed, is_causal=True).numpy())
    with pytest.raises(TypeError, match="attn_mask or mask"):
        ours(q, k, v, allowed, mask=allowed)


def test_multihead_attention_arguments_in_torchs_order():
    ours = [p for p in inspect.signature(nn.MultiheadAttention).parameters]
    theirs = [p for p in inspect.signature(torch.nn.MultiheadAttention).parameters if p not in _NOT_COMPARED]
    assert ours[: len(theirs)] == theirs
    with pytest.raises(NotImplementedError, match="add_bias_kv"):
        nn.MultiheadAttention(8, 2, add_bias_kv=True)
