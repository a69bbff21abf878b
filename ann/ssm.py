"""State-space sequence operators: Mamba's selective scan and the diagonal LTI (S4D) SSM.

Both reduce to the differentiable linear recurrence of :mod:`ann.recurrence`
(a parallel scan forward and backward), over a state laid out as
``(batch, channels, state, time)`` so that time is the last, contiguous axis.
"""

from __future__ import annotations

import numpy as np

from .activations import silu, softplus
from .recurrence import linear_recurrence
from .tensor import Tensor, as_tensor, is_grad_enabled, make_op

__all__ = ["selective_scan", "composed_selective_scan", "s4d_discretize", "s4d_scan"]


def _per_step(X, name: str, batch: int, dim: int, dstate: int, length: int):
    """``B`` or ``C`` laid out as ``(batch or 1, dim or 1, N, L or 1)`` for broadcasting against the state."""
    if X.ndim == 2:  # (D, N): time- and batch-invariant
        if X.shape != (dim, dstate):
            raise ValueError(f"{name} of 2 dimensions must be (D, N) = {(dim, dstate)}, got {X.shape}")
        return X.reshape(1, dim, dstate, 1)
    if X.ndim == 3:  # (B, N, L)
        if X.shape != (batch, dstate, length):
            raise ValueError(f"{name} of 3 dimensions must be (B, N, L) = {(batch, dstate, length)}, got {X.shape}")
        return X.reshape(batch, 1, dstate, length)
    if X.ndim == 4:  # (B, G, N, L): group g serves channels g*D/G .. (g+1)*D/G - 1
        groups = X.shape[1]
        if X.shape[0] != batch or X.shape[2:] != (dstate, length) or groups < 1 or dim % groups:
            raise ValueError(f"{name} of 4 dimensions must be (B, G, N, L) with G dividing D={dim}, got {X.shape}")
        return X[:, np.arange(dim) // (dim // groups)]
    raise ValueError(f"{name} must have 2, 3 or 4 dimensions, got shape {X.shape}")


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False):
    """Mamba's selective SSM, with the semantics of ``selective_scan_ref`` (state-spaces/mamba).

    With ``dt = delta (+ delta_bias)`` (then ``softplus`` if ``delta_softplus``),
    for every batch ``b``, channel ``d`` and state ``n``::

        h[t] = exp(dt[t] * A[d, n]) * h[t-1] + dt[t] * B[n, t] * u[t]
        y[t] = sum_n C[n, t] * h[t, n]  (+ D[d] * u[t])  (* silu(z[t]))

    Parameters
    ----------
    u, delta : (B, D, L) Tensors or arrays (input and step size).
    A : (D, N), real (usually negative).
    B, C : (B, N, L) input-dependent, (B, G, N, L) grouped, or (D, N) fixed.
    D : optional (D,) skip connection.  z : optional (B, D, L) gate.
    delta_bias : optional (D,).
    return_last_state : also return ``h[L-1]`` of shape (B, D, N).

    Returns
    -------
    out : Tensor (B, D, L), and ``last_state`` (B, D, N) when asked.
    """
    inputs = (u, delta, A, B, C, D, z, delta_bias)
    if not is_grad_enabled() or not any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        # no gradient wanted: the fused forward kernel (ann.ssm_kernel), same numbers
        from .ssm_kernel import selective_scan_arrays

        arrays = [None if x is None else as_tensor(x).data for x in inputs]
        _check_shapes(*(as_tensor(x) for x in inputs[:5]))
        y, last = selective_scan_arrays(*arrays, delta_softplus=delta_softplus)
        return (Tensor(y), Tensor(last)) if return_last_state else Tensor(y)
    return _differentiable(*inputs, delta_softplus, return_last_state, fused=True)


def _differentiable(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, fused):
    """The recorded graph: step size, scan core, skip and gate; the core fused when ``fused`` allows it.

    The fused core (the registered kernels) needs one float dtype and does not
    return the last state; otherwise the core is composed over the parallel scan.
    """
    u, delta, A, B, C = (as_tensor(x) for x in (u, delta, A, B, C))
    _check_shapes(u, delta, A, B, C)
    dt = _step_size(delta, delta_bias, delta_softplus, u.shape[1])
    if fused and not return_last_state and _fusable(u, dt, A, B, C):
        return _skip_and_gate(_fused_scan(u, dt, A, B, C), u, D, z)
    y, h = _composed_scan(u, dt, A, B, C)
    y = _skip_and_gate(y, u, D, z)
    return (y, h[..., -1]) if return_last_state else y


def _fusable(*xs: Tensor) -> bool:
    """The fused kernels take arrays of one float dtype."""
    dtypes = {x.data.dtype for x in xs}
    return len(dtypes) == 1 and dtypes <= {np.dtype(np.float32), np.dtype(np.float64)}


def _fused_scan(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """``y = C . h`` (B, D, L) through the registered kernels, differentiable in all five inputs.

    Forward: ``selective_scan`` without softplus, bias, skip or gate; backward:
    ``selective_scan_backward`` (the fused CPU kernel recomputes the states).
    """
    from neuro.kernels import call

    from . import ssm_kernel  # noqa: F401  (registers the kernels)

    arrays = [x.data for x in (u, dt, A, B, C)]
    y, _ = call("selective_scan", *arrays)
    return make_op(y, (u, dt, A, B, C), lambda g: call("selective_scan_backward", *arrays, g), "selective_scan")


def _step_size(delta: Tensor, delta_bias, delta_softplus: bool, dim: int) -> Tensor:
    """``delta (+ delta_bias)``, then ``softplus`` if asked: the step size ``dt`` (B, D, L)."""
    if delta_bias is not None:
        delta = delta + as_tensor(delta_bias).reshape(dim, 1)
    return softplus(delta) if delta_softplus else delta


def _skip_and_gate(y: Tensor, u: Tensor, D, z) -> Tensor:
    """``(y + D u) * silu(z)``, each part only when given."""
    if D is not None:
        y = y + u * as_tensor(D).reshape(u.shape[1], 1)
    if z is not None:
        y = y * silu(as_tensor(z))
    return y


def _check_shapes(u, delta, A, B, C) -> None:
    if u.ndim != 3 or delta.shape != u.shape:
        raise ValueError(f"u and delta must both be (B, D, L); got {u.shape} and {delta.shape}")
    if A.ndim != 2 or A.shape[0] != u.shape[1]:
        raise ValueError(f"A must be (D, N) with D={u.shape[1]}, got {A.shape}")
    for name, X in (("B", B), ("C", C)):
        _per_step(X, name, u.shape[0], u.shape[1], A.shape[1], u.shape[2])


def composed_selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False):
    """:func:`selective_scan` composed from differentiable ops over the parallel scan (the reference)."""
    return _differentiable(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, fused=False)


def _composed_scan(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """``y = C . h`` (B, D, L) and the states ``h`` (B, D, N, L), over :func:`linear_recurrence`."""
    batch, dim, length = u.shape
    dstate = A.shape[1]
    dt = dt.reshape(batch, dim, 1, length)
    decay = (dt * A.reshape(1, dim, dstate, 1)).exp()  # (B, D, N, L)
    drive = dt * _per_step(B, "B", batch, dim, dstate, length) * u.reshape(batch, dim, 1, length)
    h = linear_recurrence(decay, drive, axis=-1)  # (B, D, N, L)
    return (h * _per_step(C, "C", batch, dim, dstate, length)).sum(axis=2), h


def s4d_discretize(log_dt, A, B):
    """Zero-order-hold discretization of the diagonal system ``x' = A x + B u``.

    ``A_bar = exp(dt A)``, ``B_bar = (A_bar - 1) / A * B``, per channel and state.
    ``log_dt`` is ``(D,)``; ``A`` (negative real) and ``B`` are ``(D, N)``.
    Returns ``(A_bar, B_bar)``, each ``(D, N)``.
    """
    log_dt, A, B = as_tensor(log_dt), as_tensor(A), as_tensor(B)
    dtA = log_dt.exp().reshape(-1, 1) * A
    A_bar = dtA.exp()
    return A_bar, (A_bar - 1.0) / A * B


def s4d_scan(u, A_bar, B_bar, C, D=None) -> Tensor:
    """Run the discretized diagonal SSM over ``u`` of shape (B, D, L).

    ``h[t] = A_bar * h[t-1] + B_bar * u[t]`` (state (B, D, N)), and
    ``y[t] = sum_n C[d, n] h[t, n] + D[d] u[t]``. Returns (B, D, L).
    """
    u = as_tensor(u)
    batch, dim, length = u.shape
    A_bar, B_bar, C = as_tensor(A_bar), as_tensor(B_bar), as_tensor(C)
    dstate = A_bar.shape[-1]
    drive = B_bar.reshape(1, dim, dstate, 1) * u.reshape(batch, dim, 1, length)
    h = linear_recurrence(A_bar.reshape(1, dim, dstate, 1), drive, axis=-1)
    y = (h * C.reshape(1, dim, dstate, 1)).sum(axis=2)
    if D is not None:
        y = y + u * as_tensor(D).reshape(dim, 1)
    return y
