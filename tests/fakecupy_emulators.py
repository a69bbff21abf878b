"""NumPy emulators of this project's CUDA kernels that fakecupy does not ship (see /work/shared/tools/fakecupy).

``tests/conftest.py`` registers them when ``cupy`` is fakecupy, so the ``gpu``
tests run the kernels' host code on machines without a GPU.
"""


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
