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
