"""LSTM forward + backward (BPTT) vs ``torch.nn.LSTM`` on the CPU, same weights, same process.

Two settings: the libraries' default threading, and both pinned to one thread
(``torch.set_num_threads(1)`` and ``threadpoolctl`` on NumPy's BLAS), which is
the fairer comparison on a small, shared machine. Plus inference (forward under
``no_grad``) of a larger LSTM, H = 256, T = 200, B = 32, one thread each
(target <= 1.3x).
"""

from __future__ import annotations

import contextlib

import numpy as np

from .harness import Result, compare


@contextlib.contextmanager
def _one_thread():
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def _case(T: int, B: int, I: int, H: int, layers: int, repeats: int, threads: str) -> Result:
    import torch

    from ann.nn.recurrent import LSTM
    from ann.tensor import Tensor

    torch.manual_seed(0)
    theirs = torch.nn.LSTM(I, H, num_layers=layers, batch_first=True)
    ours = LSTM(I, H, num_layers=layers, batch_first=True, seed=0)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
    g = np.random.default_rng(1).standard_normal((B, T, H)).astype(np.float32)
    x_t, g_t = torch.tensor(x, requires_grad=True), torch.tensor(g)

    def run_ours():
        xa = Tensor(x, requires_grad=True)
        y, _ = ours(xa)
        y.backward(g)
        ours.zero_grad()

    def run_torch():
        y, _ = theirs(x_t)
        y.backward(g_t)
        theirs.zero_grad()
        x_t.grad = None

    return compare(
        f"lstm fwd+bwd T={T} B={B} I={I} H={H} L={layers} ({threads})",
        run_ours,
        run_torch,
        ours_label="ann.nn.LSTM (NumPy forward loop + numba BPTT)",
        peer_label=f"torch.nn.LSTM CPU {torch.__version__}",
        repeats=repeats,
        params={"T": T, "B": B, "input": I, "H": H, "num_layers": layers, "dtype": "float32", "threads": threads},
        target="<= 3x",
    )


def _inference(T: int, B: int, I: int, H: int, repeats: int) -> Result:
    import torch

    from ann.nn.recurrent import LSTM
    from ann.tensor import no_grad

    torch.manual_seed(0)
    theirs = torch.nn.LSTM(I, H, batch_first=True)
    ours = LSTM(I, H, batch_first=True, seed=0)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
    x_t = torch.tensor(x)

    def run_ours():
        with no_grad():
            return ours(x)[0]

    def run_torch():
        with torch.no_grad():
            return theirs(x_t)[0]

    np.testing.assert_allclose(run_ours().numpy(), run_torch().numpy(), atol=2e-5)
    return compare(
        f"lstm inference T={T} B={B} I={I} H={H} (1 thread each)", run_ours, run_torch,
        ours_label="ann.nn.LSTM (fused float32 layer: one packed product per step)", peer_label=f"torch.nn.LSTM CPU {torch.__version__}",
        repeats=repeats, params={"T": T, "B": B, "input": I, "H": H, "dtype": "float32", "threads": 1, "no_grad": True},
        target="<= 1.3x",
    )


def run(quick: bool = False) -> list[Result]:
    repeats = 5 if quick else 11
    cases = [(100, 32, 128, 128, 1)] if quick else [(100, 32, 128, 128, 1), (100, 32, 128, 128, 2), (50, 8, 64, 64, 1)]
    results = []
    for case in cases:
        results.append(_case(*case, repeats, "default threads"))
        with _one_thread():
            results.append(_case(*case, repeats, "1 thread each"))
    with _one_thread():
        results.append(_inference(50 if quick else 200, 32, 256, 256, 5 if quick else 21))
    return results
