"""``ann.manual_seed``: the default generator behind ``seed=None``, as ``torch.manual_seed``."""

import numpy as np
import pytest
import torch

import ann
import ann.functional as F
from ann import nn


def _draw():
    """Parameters and a dropout mask made with ``seed=None`` everywhere."""
    lin = nn.Linear(4, 3)
    lstm = nn.LSTM(2, 3)
    drop = F.dropout(ann.Tensor(np.ones((5, 5), np.float32)), 0.5, True)
    return [lin.weight.numpy(), lin.bias.numpy(), lstm.weight_hh_l0.numpy(), drop.numpy()]


def test_manual_seed_repeats_seed_none_draws_as_torch():
    ann.manual_seed(123)
    first = _draw()
    ann.manual_seed(123)
    again = _draw()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    ann.manual_seed(124)
    other = _draw()
    assert not np.array_equal(first[0], other[0])
    # the same contract in torch
    torch.manual_seed(123)
    t1 = torch.nn.Linear(4, 3).weight.detach().clone()
    torch.manual_seed(123)
    assert torch.equal(t1, torch.nn.Linear(4, 3).weight)


def test_successive_draws_differ_and_explicit_seeds_bypass_the_default():
    ann.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    assert not np.array_equal(a.weight.numpy(), b.weight.numpy())  # one stream, as torch
    ann.manual_seed(0)
    explicit = nn.Linear(4, 3, seed=7)  # does not advance the default generator
    c = nn.Linear(4, 3)
    np.testing.assert_array_equal(c.weight.numpy(), a.weight.numpy())
    np.testing.assert_array_equal(explicit.weight.numpy(), nn.Linear(4, 3, seed=7).weight.numpy())


def test_manual_seed_returns_the_generator_and_records_the_seed():
    g = ann.manual_seed(5)
    assert g is ann.default_generator and isinstance(g, np.random.Generator)
    assert ann.initial_seed() == 5
    np.testing.assert_array_equal(ann.manual_seed(5).random(3), np.random.default_rng(5).random(3))


@pytest.mark.parametrize("bad,err", [(-1, ValueError), (1.5, TypeError), ("1", TypeError), (True, TypeError)])
def test_manual_seed_rejects_bad_seeds(bad, err):
    with pytest.raises(err, match="seed"):
        ann.manual_seed(bad)
