"""W_in density as ReservoirPy's (exactly round(p * N * F) nonzeros), and its effect on NARMA-10."""

import numpy as np
import pytest
import scipy.sparse

from reservoirs import ESN
from reservoirs.metrics import nrmse
from reservoirs.tasks import narma10
from reservoirs.weights import bernoulli_matrix

rpy_mat_gen = pytest.importorskip("reservoirpy.mat_gen")
rpy_nodes = pytest.importorskip("reservoirpy.nodes")


def _nnz(W):
    return W.nnz if scipy.sparse.issparse(W) else int(np.count_nonzero(W))


@pytest.mark.parametrize("shape", [(300, 1), (300, 3), (100, 10), (7, 1), (50, 2)])
@pytest.mark.parametrize("p", [0.1, 0.5, 1.0])
def test_bernoulli_density_equals_reservoirpy(shape, p):
    ours = bernoulli_matrix(shape, connectivity=p, seed=0)
    ref = rpy_mat_gen.bernoulli(*shape, connectivity=p, seed=0)
    assert _nnz(ours) == _nnz(ref)
    assert set(np.unique(ours)) <= {-1.0, 0.0, 1.0}


def test_esn_input_density_equals_reservoirpy_for_one_input():
    # the reported bug: W_in of a one-input ESN at 10% connectivity was fully dense
    esn = ESN(300, input_connectivity=0.1, input_dim=1, seed=0)
    ref = rpy_nodes.Reservoir(300, input_connectivity=0.1, seed=0)
    ref.initialize(np.zeros((1, 1)))
    assert np.count_nonzero(esn.W_in) == _nnz(ref.Win) == 30


def test_connect_every_unit_gives_each_unit_an_input():
    esn = ESN(300, input_connectivity=0.1, input_dim=2, seed=0, connect_every_unit=True)
    assert np.all(np.count_nonzero(esn.W_in, axis=1) >= 1)
    assert np.count_nonzero(esn.W_in) < 300 * 2  # still sparse where a row already had an entry
    fb = ESN(50, input_connectivity=0.1, feedback=True, seed=0, connect_every_unit=True)
    fb._ensure_feedback(1)
    assert np.all(fb.W_fb != 0)
    with pytest.raises(TypeError, match="connect_every_unit"):
        ESN(10, connect_every_unit="yes")


def test_narma10_nrmse_matches_reservoirpy():
    # same sizes and hyperparameters on the same data (the weight draws differ): before the density fix
    # our default was 0.54 against ReservoirPy's 0.38 (5 seeds)
    ours, ref = [], []
    for seed in range(5):
        u, y = narma10(4000, seed=100 + seed)
        esn = ESN(100, input_scaling=1.0, seed=seed).fit(u[:3000], y[:3000], warmup=100)
        ours.append(nrmse(y[3000:], esn.predict(u)[3000:]))
        res = rpy_nodes.Reservoir(100, sr=0.9, lr=1.0, input_connectivity=0.1, rc_connectivity=0.1, bias=np.zeros(100), seed=seed)
        states = res.run(u)
        readout = rpy_nodes.Ridge(ridge=1e-6).fit(states[100:3000], y[100:3000])
        ref.append(nrmse(y[3000:], readout.run(states[3000:])))
    assert abs(np.mean(ours) - np.mean(ref)) < 0.2 * np.mean(ref), (ours, ref)  # 0.34 vs 0.38 measured
