"""ann vs PyTorch CPU: one MLP training step, and autograd overhead on tiny ops.

* ``mlp train step``: forward, cross-entropy, backward and an Adam update of an
  MLP 784-512-512-10 (ReLU) at batch 128, float32. Target: <= 1.5x PyTorch.
* ``tiny ops``: the same step for a 16-16-16 MLP at batch 1, where the time is
  all per-operation overhead (Python graph bookkeeping vs PyTorch's C++ autograd).
* ``transformer encoder``: a training step (forward, MSE loss, backward, Adam) of
  two pre-norm encoder layers (d_model 128, 4 heads, feed-forward 512, exact
  GELU, no dropout) on (32, 128, 128) float32 inputs, against
  ``torch.nn.TransformerEncoder`` with the same weights; and the forward alone
  (inference, no gradient). Target: <= 1.3x PyTorch for the training step.

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
    r.ours_range_s = tuple(t / inner for t in r.ours_range_s)
    r.peer_range_s = tuple(t / inner for t in r.peer_range_s)
    return r


def _encoder_pair(batch, length, d_model, nhead, layers, seed=0):
    """ann's ``TransformerBlock`` stack and ``torch.nn.TransformerEncoder`` (norm_first) with the same weights."""
    import torch

    import ann
    import ann.functional as F
    from ann import nn, optim

    torch.manual_seed(seed)
    layer = torch.nn.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout=0.0, activation="gelu",
                                             batch_first=True, norm_first=True)
    theirs = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
    ours = nn.Sequential(*[nn.TransformerBlock(d_model, nhead, 4 * d_model, activation="gelu") for _ in range(layers)])
    ours.load_state_dict({k.replace("layers.", ""): v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(seed)
    x, y = (rng.standard_normal((batch, length, d_model)).astype(np.float32) for _ in range(2))
    xt, yt = torch.tensor(x), torch.tensor(y)
    opt, topt = optim.Adam(ours.parameters(), lr=1e-4), torch.optim.Adam(theirs.parameters(), lr=1e-4)
    with torch.no_grad(), ann.no_grad():
        np.testing.assert_allclose(ours(x).numpy(), theirs(xt).numpy(), rtol=1e-3, atol=1e-3)

    def train_ours():
        opt.zero_grad()
        F.mse_loss(ours(ann.Tensor(x)), y).backward()
        opt.step()

    def train_peer():
        topt.zero_grad()
        torch.nn.functional.mse_loss(theirs(xt), yt).backward()
        topt.step()

    def infer_ours():
        with ann.no_grad():
            return ours(x)

    def infer_peer():
        with torch.no_grad():
            return theirs(xt)

    return (train_ours, train_peer), (infer_ours, infer_peer)


def _encoder(quick: bool, threads: int = 1) -> list[Result]:
    import torch
    from threadpoolctl import threadpool_limits

    shape = dict(batch=8 if quick else 32, length=128, d_model=128, nhead=4, layers=2)
    train, infer = _encoder_pair(**shape)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    results = []
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            for what, (ours, peer), target in (("train step", train, "<= 1.3x"), ("inference", infer, "report")):
                results.append(compare(
                    f"transformer encoder {what} 2 layers d=128 h=4 L=128 B={shape['batch']} threads={threads}",
                    ours, peer, ours_label="ann (NumPy)", peer_label=f"PyTorch {torch.__version__} CPU",
                    repeats=5 if quick else 21, warmup=2,
                    params={**shape, "dim_feedforward": 512, "activation": "gelu", "norm_first": True,
                            "dtype": "float32", "threads": threads}, target=target,
                ))
    finally:
        torch.set_num_threads(previous)
    return results


def run(quick: bool = False) -> list[Result]:
    thread_counts = [1] if quick else sorted({1, os.cpu_count() or 1})
    results = []
    for threads in thread_counts:
        results.append(_timed("mlp 784-512-512-10 train step b=128", (784, 512, 512, 10), 128, threads,
                              repeats=7 if quick else 21, target="<= 1.5x"))
    results.append(_timed("tiny ops: mlp 16-16-16 train step b=1", (16, 16, 16), 1, 1,
                          repeats=5 if quick else 11, target="report", inner=200))
    return results + _encoder(quick)
