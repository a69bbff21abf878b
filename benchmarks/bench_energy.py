"""RBM training: ``ann.energy.RBM.fit`` (PCD-1) vs scikit-learn's ``BernoulliRBM.fit`` (PCD-1) on digits.

The case a user runs: one epoch over the 1797 binarized 8x8 digits (64 visible units),
64 hidden units, mini-batches of 10, learning rate 0.1, float64, one BLAS thread. Both do
persistent contrastive divergence with one Gibbs step and one chain per batch sample;
scikit-learn folds the batch size into the learning rate, which changes no cost. Ours also
computes the reconstruction error of every batch (one extra visible mean). Report only.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.neural_network import BernoulliRBM
from threadpoolctl import threadpool_limits

from ann.energy import RBM

from .harness import Result, compare


def run(quick: bool = False) -> list[Result]:
    x = (load_digits().data > 8).astype(np.float64)
    n_hidden, batch, lr = 64, 10, 0.1

    def ours():
        RBM(64, n_hidden, seed=0).fit(x, epochs=1, batch_size=batch, lr=lr, k=1, persistent=True, seed=1)

    def peer():
        BernoulliRBM(n_components=n_hidden, learning_rate=lr, batch_size=batch, n_iter=1, random_state=0).fit(x)

    with threadpool_limits(limits=1, user_api="blas"):
        r = compare("rbm PCD-1 epoch, digits 1797x64, 64 hidden, batch 10", ours, peer,
                    ours_label="ann.energy.RBM", peer_label="sklearn BernoulliRBM", repeats=5 if quick else 15,
                    params={"n_visible": 64, "n_hidden": n_hidden, "batch_size": batch, "samples": len(x),
                            "dtype": "float64", "threads": 1}, target="report")
    return [r]
