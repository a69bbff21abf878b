"""Launchers of the spiking engine's CUDA kernels (``spiking.cu``, with ``philox.cuh``).

Each launcher takes the compiled ``cupy.RawKernel`` and then the arguments
of the NumPy reference it stands for, in the same order, and updates the
same arrays in place (the references and the numba fast paths live beside
the models: :mod:`neuro.neurons`, :mod:`neuro.synapses`, :mod:`neuro.inputs`;
the registrations that tie the three together are there and in
:mod:`neuro.device_engine`). One thread per (trial, neuron) in a
grid-stride loop: the trials of a batch run in parallel.

Arrays are CuPy arrays: state (B, N) or (L, B, N) ring buffers of the
network's dtype (float32 or float64), C-contiguous (they are updated in
place, so a strided one raises ``ValueError``); parameters float64 (N,) or
(S,); step indices int64. The kernels do the CPU's arithmetic in the CPU's
order (see ``spiking.cu``); they differ from it only in ``exp``/``log``
(within 1 ulp) and in the order ``atomicAdd`` sums the inputs reaching one
neuron in one step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["SOURCE", "launch_lif_step", "launch_lif_cond_step", "launch_poisson_advance", "launch_propagate",
           "launch_propagate_tm"]

#: The CUDA source of the spiking kernels (it includes ``philox.cuh`` from the same folder).
SOURCE = Path(__file__).with_name("spiking.cu")

_THREADS = 256
_MAX_BLOCKS = 1 << 20  # the loops are grid-stride: more work per thread beyond this


def _grid(total: int) -> tuple[tuple[int], tuple[int]]:
    return (max(1, min(-(-total // _THREADS), _MAX_BLOCKS)),), (_THREADS,)


def _inplace(name: str, a):
    """``a`` itself, checked C-contiguous (a kernel writing through a pointer must see the array's own memory)."""
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (the kernel updates it in place), got strides {a.strides}")
    return a


def _read(a, dtype=None):
    """``a`` as a C-contiguous device array of ``dtype`` (a copy only when needed)."""
    import cupy

    return cupy.ascontiguousarray(a if dtype is None else a.astype(dtype, copy=False))


def _current(I_ext, v):
    """The injected current broadcast to ``v``'s (B, N) shape and dtype, C-contiguous."""
    import cupy

    return _read(cupy.broadcast_to(I_ext, v.shape), v.dtype)


def _params(*arrays):
    return tuple(_read(a, np.float64) for a in arrays)


def launch_lif_step(kernel, v, I_e, I_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, v_th, v_reset,
                    decay_m, decay_e, decay_i, spikes):
    """:func:`neuro.neurons.lif_step_reference` on the GPU (``spiking_lif_step_f32``/``_f64``); returns ``spikes``."""
    B, N = v.shape
    args = (_inplace("v", v), _inplace("I_e", I_e), _inplace("I_i", I_i),
            _current(I_ext, v),
            _inplace("last_spike", last_spike), np.int64(step), _read(ref_steps, np.int64),
            *_params(E_L, R, I_bg, v_th, v_reset, decay_m, decay_e, decay_i), _inplace("spikes", spikes),
            np.int64(B), np.int64(N))
    kernel(*_grid(B * N), args)
    return spikes


def launch_lif_cond_step(kernel, v, g_e, g_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, E_e, E_i, v_th,
                         v_reset, dt_tau, decay_e, decay_i, spikes):
    """:func:`neuro.neurons.lif_cond_step_reference` on the GPU (``spiking_lif_cond_step_f32``/``_f64``)."""
    B, N = v.shape
    args = (_inplace("v", v), _inplace("g_e", g_e), _inplace("g_i", g_i),
            _current(I_ext, v),
            _inplace("last_spike", last_spike), np.int64(step), _read(ref_steps, np.int64),
            *_params(E_L, R, I_bg, E_e, E_i, v_th, v_reset, dt_tau, decay_e, decay_i), _inplace("spikes", spikes),
            np.int64(B), np.int64(N))
    kernel(*_grid(B * N), args)
    return spikes


def _shared_weights(w) -> None:
    if w.ndim != 1:
        raise ValueError(f"w must have shape (S,) (weights shared by the trials) on the GPU, got {w.shape}: "
                         "per-trial weights run on the CPU")


def launch_propagate(kernel, spikes, indptr, post, w, delay, buf, step):
    """:func:`neuro.synapses.propagate_reference` on the GPU (``spiking_propagate_f32``/``_f64``).

    ``buf``: the (L, B, n_post) ring buffer; ``spikes`` (B, n_pre) bool.
    """
    L, B, n_post = buf.shape
    n_pre = spikes.shape[1]
    _shared_weights(w)
    args = (_inplace("spikes", spikes), _read(indptr, np.int64), _read(post, np.int64), _read(w, np.float64),
            _read(delay, np.int64), _inplace("buf", buf), np.int64(step), np.int64(L), np.int64(B), np.int64(n_pre),
            np.int64(n_post))
    kernel(*_grid(B * n_pre), args)


def launch_propagate_tm(kernel, spikes, indptr, post, w, delay, U, D, F, u, R, last, buf, step, dt):
    """:func:`neuro.synapses.propagate_tm_reference` on the GPU (``spiking_propagate_tm_f32``/``_f64``)."""
    L, B, n_post = buf.shape
    n_pre = spikes.shape[1]
    S = u.shape[1]
    _shared_weights(w)
    args = (_inplace("spikes", spikes), _read(indptr, np.int64), _read(post, np.int64), _read(w, np.float64),
            _read(delay, np.int64), *_params(U, D, F), _inplace("u", u), _inplace("R", R), _inplace("last", last),
            _inplace("buf", buf), np.int64(step), np.float64(dt), np.int64(L), np.int64(B), np.int64(n_pre),
            np.int64(n_post), np.int64(S))
    kernel(*_grid(B * n_pre), args)


def launch_poisson_advance(kernel, keys, log_q, draws, next_step, step, spikes):
    """:func:`neuro.inputs.poisson_advance_reference` on the GPU (``spiking_poisson_advance_f64``); (B, n) state."""
    B, n = next_step.shape
    args = (_read(keys, np.uint64), _read(log_q, np.float64), _inplace("draws", draws),
            _inplace("next_step", next_step), np.int64(step), _inplace("spikes", spikes), np.int64(B), np.int64(n))
    kernel(*_grid(B * n), args)
