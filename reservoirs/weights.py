"""Random reservoir matrices and their spectral radius.

Conventions (as ReservoirPy 0.4's defaults, so that users find the same
kind of reservoir, though not the same random draws):

* recurrent ``W`` ``(units, units)``: a ``scipy.sparse`` CSR matrix with a
  fraction ``connectivity`` of nonzero entries drawn from N(0, 1), then
  rescaled so that its spectral radius (largest eigenvalue modulus, found
  with ARPACK through ``scipy.sparse.linalg.eigs``) equals the one asked for;
* input ``W_in`` ``(units, F)``: exactly ``round(input_connectivity * units * F)``
  entries equal to +-``input_scaling`` (Bernoulli signs), the rest zero;
* bias ``(units,)``: +-``bias_scaling`` (Bernoulli signs), zero by default.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from neuro.backend import make_rng, resolve_dtype

from neuro.validation import check_fraction, check_int, check_positive

__all__ = ["bernoulli_matrix", "orthogonal_matrix", "random_sparse", "scale_spectral_radius", "spectral_radius"]


def spectral_radius(W: Any, *, maxiter: int | None = None) -> float:
    """The largest eigenvalue modulus of the square matrix ``W`` (dense or scipy.sparse).

    Sparse matrices larger than 64x64 with at most 25% nonzeros use ARPACK (``scipy.sparse.linalg.eigs``,
    ``k=1``, ``which="LM"``, start vector of ones, ``maxiter = 20 * n`` by
    default, as ReservoirPy; the dense solver if ARPACK does not converge); others ``scipy.linalg.eigvals``.
    """
    if scipy.sparse.issparse(W):
        n = W.shape[0]
        if W.shape != (n, n):
            raise ValueError(f"W must be square, got shape {W.shape}")
        if n <= 64 or W.nnz > 0.25 * n * n:
            return float(np.max(np.abs(scipy.linalg.eigvals(W.toarray())))) if n else 0.0
        if W.nnz == 0:
            return 0.0
        try:
            vals = scipy.sparse.linalg.eigs(
                W.astype(np.float64), k=1, which="LM", maxiter=maxiter or 20 * n, return_eigenvectors=False,
                v0=np.ones(n),
            )
        except scipy.sparse.linalg.ArpackNoConvergence:
            # e.g. many eigenvalues of equal modulus (orthogonal matrices): fall back to the dense solver
            return float(np.max(np.abs(scipy.linalg.eigvals(W.toarray()))))
        return float(np.max(np.abs(vals)))
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be a square matrix, got shape {W.shape}")
    return float(np.max(np.abs(scipy.linalg.eigvals(W)))) if W.size else 0.0


_spectral_radius = spectral_radius  # (parameters below shadow the name)


def scale_spectral_radius(W: Any, radius: float):
    """``W`` multiplied so that its spectral radius is ``radius`` (a new matrix; ``W`` is untouched)."""
    radius = check_positive(radius, "spectral_radius")
    current = _spectral_radius(W)
    if current == 0.0:
        raise ValueError("W has spectral radius 0 (nilpotent or empty); it cannot be rescaled")
    return W * (radius / current)


def random_sparse(
    units: int,
    *,
    connectivity: float = 0.1,
    spectral_radius: float | None = 0.9,
    seed: Any = None,
    dtype: Any = None,
) -> scipy.sparse.csr_matrix:
    """A random ``(units, units)`` CSR matrix, N(0, 1) on a random ``connectivity`` fraction of entries.

    Exactly ``round(connectivity * units**2)`` entries are nonzero (positions
    drawn without replacement). With ``spectral_radius`` it is rescaled to
    that spectral radius; if the draw happens to have spectral radius 0 (tiny
    sparse matrices), it is redrawn.
    """
    units = check_int(units, "units")
    connectivity = check_fraction(connectivity, "connectivity")
    dtype = resolve_dtype(dtype)
    rng = make_rng(seed)
    nnz = max(1, int(round(connectivity * units * units)))
    for _ in range(100):
        flat = rng.choice(units * units, size=nnz, replace=False)
        values = rng.standard_normal(nnz)
        W = scipy.sparse.csr_matrix((values, (flat // units, flat % units)), shape=(units, units))
        W.sort_indices()
        if spectral_radius is None:
            return W.astype(dtype)
        current = _spectral_radius(W)
        if current > 0:
            return (W * (check_positive(spectral_radius, "spectral_radius") / current)).astype(dtype).tocsr()
    raise ValueError(f"could not draw a {units}x{units} matrix with connectivity {connectivity} and nonzero spectral radius")


def bernoulli_matrix(
    shape: tuple[int, ...],
    *,
    scaling: Any = 1.0,
    connectivity: float = 1.0,
    every_row: bool = False,
    seed: Any = None,
    dtype: Any = None,
) -> np.ndarray:
    """Dense array of ``shape`` with entries +-1 (equal odds) on a ``connectivity`` fraction, 0 elsewhere.

    Exactly ``round(connectivity * size)`` entries are nonzero, at positions
    drawn without replacement: the density ReservoirPy's ``bernoulli``
    initializer gives (through ``scipy.sparse.random``) for every shape, so a
    ``(300, 1)`` input matrix at connectivity 0.1 has 30 nonzeros.
    ``every_row=True`` (2-D shapes) then gives each row without a nonzero one
    at a random column, so every unit receives input (denser than asked for
    narrow matrices). ``scaling`` (a scalar, or one value per column)
    multiplies the result, so input features may get different gains
    (ReservoirPy's ``input_scaling``).
    """
    connectivity = check_fraction(connectivity, "connectivity")
    rng = make_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=shape)
    if connectivity < 1.0:
        size = int(np.prod(shape))
        mask = np.zeros(size, dtype=bool)
        mask[rng.choice(size, size=int(round(connectivity * size)), replace=False)] = True
        mask = mask.reshape(shape)
        if every_row and len(shape) == 2 and shape[1] > 0:
            empty = ~mask.any(axis=1)
            mask[np.flatnonzero(empty), rng.integers(0, shape[1], size=int(empty.sum()))] = True
        signs = signs * mask
    return (signs * np.asarray(scaling, dtype=np.float64)).astype(resolve_dtype(dtype))


def orthogonal_matrix(units: int, *, spectral_radius: float = 1.0, seed: Any = None, dtype: Any = None) -> np.ndarray:
    """A random orthogonal ``(units, units)`` matrix (Haar measure) times ``spectral_radius``.

    All its eigenvalues have modulus ``spectral_radius``: the classic
    choice for linear reservoirs with memory capacity close to ``units``.
    """
    units = check_int(units, "units")
    radius = check_positive(spectral_radius, "spectral_radius")
    rng = make_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((units, units)))
    q = q * np.sign(np.diag(r))  # Haar-distributed (Mezzadri 2007)
    return (radius * q).astype(resolve_dtype(dtype))
