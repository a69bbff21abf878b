"""ann vs PyTorch CPU: one MLP training step, and autograd overhead on tiny ops.

* ``mlp train step``: forward, cross-entropy, backward and an Adam update of an
  MLP 784-512-512-10 (ReLU) at batch 128, float32. Target: <= 1.5x PyTorch.
* ``tiny ops``: the same step for a 16-16-16 MLP at batch 1, where the time is
  all per-operation overhead (Python graph bookkeeping vs PyTorch's C++ autograd).

Both sides run with the same number of BLAS/intra-op threads (1 by default,
the machine's cores too unless ``quick``), set with threadpoolctl and
``torch.set_num_threads``.
"""

from __future__ import annotations

import os

import numpy as np

from .harness import Result, compare


def _pair(sizes, batch, seed=0):
    import torch

    import ann
    import ann.functional as F
    from ann import nn, optim

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    model = nn.MLP(sizes, activation="relu", seed=seed)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    tmodel = torch.nn.Sequential(*layers)
    tmodel.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    xt, yt = torch.tensor(x), torch.tensor(y)
    xa = ann.Tensor(x)

    def ours():
        opt.zero_grad()
        F.cross_entropy(model(xa), y).backward()
        opt.step()

    def peer():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(xt), yt).backward()
        topt.step()

    return ours, peer


def _timed(name, sizes, batch, threads, repeats, target, inner=1):
    import torch
    from threadpoolctl import threadpool_limits

    ours, peer = _pair(sizes, batch)

    def loop(fn):
        def run():
            for _ in range(inner):
                fn()
        return run

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            r = compare(
                f"{name} threads={threads}",
                loop(ours),
                loop(peer),
                ours_label="ann (NumPy)",
                peer_label=f"PyTorch {torch.__version__} CPU",
                repeats=repeats,
                warmup=2,
                params={"sizes": list(sizes), "batch": batch, "dtype": "float32", "threads": threads,
                        "steps_per_sample": inner, "optimizer": "Adam"},
                target=target,
            )
    finally:
        torch.set_num_threads(previous)
    # report per training step
    r.ours_median_s /= inner
    r.peer_median_s /= inner
    return r


def run(quick: bool = False) -> list[Result]:
    thread_counts = [1] if quick else sorted({1, os.cpu_count() or 1})
    results = []
    for threads in thread_counts:
        results.append(_timed("mlp 784-512-512-10 train step b=128", (784, 512, 512, 10), 128, threads,
                              repeats=7 if quick else 21, target="<= 1.5x"))
    results.append(_timed("tiny ops: mlp 16-16-16 train step b=1", (16, 16, 16), 1, 1,
                          repeats=5 if quick else 11, target="report", inner=200))
    return results
