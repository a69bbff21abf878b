"""NumPy emulators of this project's CUDA kernels that fakecupy does not ship (see /work/shared/tools/fakecupy).

``tests/conftest.py`` registers them when ``cupy`` is fakecupy, so the ``gpu``
tests run the kernels' host code on machines without a GPU.
"""

import numpy as np

from neuro.exp64 import exp_array


def gather_matmul(grid, block, args, shared_mem):
    """Emulates ``neuro/kernels/gather_matmul.cu``: for each share z of the active rows (grid z),
    out[b, :] += sum over that share of h[b, idx[i]] * w[idx[i], :] (skipping h == 0), as the atomic adds do."""
    h, idx, w, out, k, f, d = args
    k, f, d = int(k), int(f), int(d)
    if block[1:] != (1, 1):
        raise ValueError(f"gather_matmul: the kernel uses 1-D blocks, got block={block}")
    if grid[0] * block[0] < d:
        raise ValueError(f"gather_matmul: grid={grid} x block={block} covers fewer than d={d} columns")
    n_rows, shares = grid[1], grid[2]
    if idx.size < k or h.size < n_rows * f or w.size < f * d or out.size < n_rows * d:
        raise IndexError(f"gather_matmul: arrays too small for k={k}, f={f}, d={d}, {n_rows} batch rows")
    sel = idx[:k]
    if k and (sel.min() < 0 or sel.max() >= f):
        raise IndexError(f"gather_matmul: an index is outside [0, {f})")
    rows = w[: f * d].reshape(f, d)
    per = -(-k // shares)
    for z in range(shares):
        share = sel[z * per : (z + 1) * per]
        for b in range(n_rows):
            a = h[b * f : (b + 1) * f][share]
            keep = a != 0
            if keep.any():
                out[b * d : (b + 1) * d] += a[keep] @ rows[share[keep]]


KERNELS = {"gather_matmul_f32": gather_matmul, "gather_matmul_f64": gather_matmul}


# ------------------------------------------------ neuro/kernels/spiking.cu (the spiking engine on the GPU)
# Each emulator does its kernel's arithmetic in the kernel's order (the thread of (trial, neuron) owns its
# element; atomicAdd order is emulated as trial-major, row, synapse: the CPU loop's order).


def _grid_covers(name, grid, block, total):
    if grid[1:] != (1, 1) or block[1:] != (1, 1):
        raise ValueError(f"{name}: the kernel uses a 1-D grid-stride loop, got grid={grid} block={block}")
    if total and grid[0] * block[0] < 1:
        raise ValueError(f"{name}: no threads for {total} elements")


def _shaped(B, N, *flat):
    for a in flat:
        if a.size < B * N:
            raise IndexError(f"an array of {a.size} elements is shorter than B * N = {B * N}")
    return [a[: B * N].reshape(B, N) for a in flat]


def lif_step(grid, block, args, shared_mem):
    """Emulates ``spiking_lif_step_*``: :func:`neuro.neurons.lif_step_reference` on the (B, N) views
    (float64: the kernel's arithmetic exactly; float32: the kernel thresholds before rounding v, as the numba loop)."""
    from neuro.neurons import _lif_step_loop

    (v, I_e, I_i, I_ext, last, step, ref, E_L, R, I_bg, v_th, v_reset, dm, de, di, spikes, B, N) = args
    B, N = int(B), int(N)
    _grid_covers("spiking_lif_step", grid, block, B * N)
    v, I_e, I_i, I_ext, last, spikes = _shaped(B, N, v, I_e, I_i, I_ext, last, spikes)
    if v.dtype == np.float64:
        from neuro.neurons import lif_step_reference

        lif_step_reference(v, I_e, I_i, I_ext, last, step, ref[:N], E_L[:N], R[:N], I_bg[:N], v_th[:N],
                           v_reset[:N], dm[:N], de[:N], di[:N], spikes)
    else:
        _lif_step_loop(v, I_e, I_i, I_ext, last, step, ref[:N], E_L[:N], R[:N], I_bg[:N], v_th[:N], v_reset[:N],
                       dm[:N], de[:N], di[:N], spikes)


def lif_cond_step(grid, block, args, shared_mem):
    """Emulates ``spiking_lif_cond_step_*``: :func:`neuro.neurons.lif_cond_step_reference` on the (B, N) views
    (float32: the numba loop, which thresholds before rounding v, as the kernel)."""
    from neuro.neurons import _lif_cond_step_loop, lif_cond_step_reference

    (v, g_e, g_i, I_ext, last, step, ref, E_L, R, I_bg, E_e, E_i, v_th, v_reset, dt_tau, de, di, spikes, B, N) = args
    B, N = int(B), int(N)
    _grid_covers("spiking_lif_cond_step", grid, block, B * N)
    v, g_e, g_i, I_ext, last, spikes = _shaped(B, N, v, g_e, g_i, I_ext, last, spikes)
    fn = lif_cond_step_reference if v.dtype == np.float64 else _lif_cond_step_loop
    fn(v, g_e, g_i, I_ext, last, step, ref[:N], E_L[:N], R[:N], I_bg[:N], E_e[:N], E_i[:N], v_th[:N],
       v_reset[:N], dt_tau[:N], de[:N], di[:N], spikes)


def _rows(spikes, indptr, B, n_pre):
    """(trial, synapse) of every synapse of every spiking (trial, row), trial-major."""
    from neuro.synapses import _targets

    return _targets(spikes[: B * n_pre].reshape(B, n_pre), indptr[: n_pre + 1])


def propagate(grid, block, args, shared_mem):
    """Emulates ``spiking_propagate_*``: buf[(step + delay) % L, b, post] += w (in the atomics' CPU order)."""
    spikes, indptr, post, w, delay, buf, step, L, B, n_pre, n_post = args
    L, B, n_pre, n_post = int(L), int(B), int(n_pre), int(n_post)
    _grid_covers("spiking_propagate", grid, block, B * n_pre)
    trial, syn = _rows(spikes, indptr, B, n_pre)
    slot = (step + delay[syn]) % L
    np.add.at(buf, (slot * B + trial) * n_post + post[syn], w[syn].astype(buf.dtype))


def propagate_tm(grid, block, args, shared_mem):
    """Emulates ``spiking_propagate_tm_*``: the Tsodyks-Markram update of each touched (trial, synapse), then
    buf += w (u R) (the kernel's association, as the numba loop's)."""
    (spikes, indptr, post, w, delay, U, D, F, u, R, last, buf, step, dt, L, B, n_pre, n_post, S) = args
    L, B, n_pre, n_post, S = int(L), int(B), int(n_pre), int(n_post), int(S)
    _grid_covers("spiking_propagate_tm", grid, block, B * n_pre)
    trial, syn = _rows(spikes, indptr, B, n_pre)
    if not len(syn):
        return
    bs = trial * S + syn
    isi = (step - last[bs]) * dt
    u_old, R_old = u[bs].astype(np.float64), R[bs].astype(np.float64)
    R_new = 1.0 + (R_old - u_old * R_old - 1.0) * exp_array(-isi / D[syn])
    u_new = U[syn] + u_old * (1.0 - U[syn]) * exp_array(-isi / F[syn])
    u[bs], R[bs], last[bs] = u_new, R_new, step
    slot = (step + delay[syn]) % L
    np.add.at(buf, (slot * B + trial) * n_post + post[syn], (w[syn] * (u_new * R_new)).astype(buf.dtype))


def poisson_advance(grid, block, args, shared_mem):
    """Emulates ``spiking_poisson_advance_*``: :func:`neuro.inputs.poisson_advance_reference` (the NumPy Philox)."""
    from neuro.inputs import poisson_advance_reference

    keys, log_q, draws, next_step, step, spikes, B, n = args
    B, n = int(B), int(n)
    _grid_covers("spiking_poisson_advance", grid, block, B * n)
    log_q, draws, next_step, spikes = _shaped(B, n, log_q, draws, next_step, spikes)
    poisson_advance_reference(keys[: 2 * B].reshape(B, 2), log_q, draws, next_step, step, spikes)


for _suffix in ("f32", "f64"):
    KERNELS[f"spiking_lif_step_{_suffix}"] = lif_step
    KERNELS[f"spiking_lif_cond_step_{_suffix}"] = lif_cond_step
    KERNELS[f"spiking_propagate_{_suffix}"] = propagate
    KERNELS[f"spiking_propagate_tm_{_suffix}"] = propagate_tm
    KERNELS[f"spiking_poisson_advance_{_suffix}"] = poisson_advance
