"""Associative binary operators for :func:`scans.scan`, each with its identity.

An operator takes two *elements* and returns their combination, ``op(x, y)``
with ``x`` the earlier element. Elements are arrays (or tuples of arrays for
``affine`` / ``matrix_affine``) with a leading axis along which the scan
runs; operators are vectorized over it and over any batch axes, so one call
combines many pairs at once.

Built-ins (identity in brackets):

* ``add`` [0], ``mul`` [1], ``maximum`` [-inf, or the dtype's minimum],
  ``minimum`` [+inf, or the dtype's maximum], ``logaddexp`` [-inf];
* ``affine`` [(1, 0)]: composition of maps ``h -> a*h + b`` given as ``(a, b)``
  pairs; ``op((a1, b1), (a2, b2)) = (a2*a1, a2*b1 + b2)`` (first map 1, then
  map 2), so ``scan(affine, (a, b))[1][t]`` solves ``h[t] = a[t]*h[t-1] + b[t]``
  from ``h[-1] = 0``;
* ``matmul`` [eye]: composition of linear maps given as square matrices of
  shape ``(..., N, N)``: ``op(X, Y) = Y @ X``, so
  ``scan(matmul, M)[t] = M[t] @ ... @ M[1] @ M[0]``;
* ``matrix_affine`` [(eye, 0)]: composition of ``h -> A @ h + b`` on
  ``(A, b)`` pairs, ``A`` of shape ``(..., N, N)`` and ``b`` of ``(..., N)``.

A user-defined operator is any callable ``fn(x, y)``; wrap it in :class:`Op`
to give it an identity (needed only for exclusive scans).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from neuro.backend import array_module

__all__ = ["Op", "add", "mul", "maximum", "minimum", "logaddexp", "affine", "matmul", "matrix_affine", "BUILTINS"]


class Op:
    """An associative operator ``fn(x, y)`` with (optionally) its identity.

    Parameters
    ----------
    fn : callable
        ``fn(x, y) -> z``, vectorized: ``x`` and ``y`` are arrays (or tuples of
        arrays) with equal leading length ``k``; ``z`` has the same structure.
    identity : scalar, tuple of scalars/arrays, or callable, optional
        The identity element ``e`` with ``fn(e, x) == fn(x, e) == x``. A value
        is broadcast to the shape of one element; a callable receives one
        element (leaves with leading length 1) and returns the identity shaped
        like it. Needed only for exclusive scans.
    name : str, optional
    n_leaves : int, optional
        How many arrays one element has (``None``: a single array). Checked
        against what :func:`scans.scan` is given.
    """

    def __init__(
        self,
        fn: Callable[[Any, Any], Any],
        identity: Any = None,
        *,
        name: str | None = None,
        n_leaves: int | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if n_leaves is not None and (not isinstance(n_leaves, int) or n_leaves < 1):
            raise ValueError(f"n_leaves must be a positive int or None, got {n_leaves!r}")
        self.fn = fn
        self._identity = identity
        self.name = name or getattr(fn, "__name__", "op")
        self.n_leaves = n_leaves

    def __call__(self, x: Any, y: Any) -> Any:
        return self.fn(x, y)

    def __repr__(self) -> str:
        return f"scans.ops.{self.name}" if BUILTINS.get(self.name) is self else f"Op({self.name})"

    @property
    def has_identity(self) -> bool:
        return self._identity is not None

    def identity(self, like: Any) -> Any:
        """The identity element shaped and typed like ``like`` (one element: leading length 1).

        Raises ``ValueError`` if this operator has no identity.
        """
        if self._identity is None:
            raise ValueError(f"operator {self.name!r} has no identity")
        return broadcast_identity(self._identity, like)


def broadcast_identity(identity: Any, like: Any) -> Any:
    """``identity`` (a value, structure of values, or callable) broadcast to the structure ``like``."""
    if callable(identity):
        return identity(like)
    if isinstance(like, tuple):
        if not isinstance(identity, (tuple, list)) or len(identity) != len(like):
            raise ValueError(f"identity must be a tuple of {len(like)} values to match the elements, got {identity!r}")
        return tuple(broadcast_identity(i, leaf) for i, leaf in zip(identity, like))
    xp = array_module(like)
    dtype = xp.result_type(like, identity) if np.isscalar(identity) else xp.result_type(like, xp.asarray(identity))
    value = xp.asarray(identity, dtype=dtype)
    return xp.broadcast_to(value, xp.broadcast_shapes(like.shape, value.shape)).copy()


# ------------------------------------------------------------- built-ins


def _full_like(like, value):
    xp = array_module(like)
    return xp.full(like.shape, value, dtype=like.dtype)


def _lowest(like):
    dt = like.dtype
    if dt.kind == "f":
        return _full_like(like, -np.inf)
    if dt.kind in "iu":
        return _full_like(like, np.iinfo(dt).min)
    if dt.kind == "b":
        return _full_like(like, False)
    raise TypeError(f"maximum has no identity for dtype {dt}")


def _highest(like):
    dt = like.dtype
    if dt.kind == "f":
        return _full_like(like, np.inf)
    if dt.kind in "iu":
        return _full_like(like, np.iinfo(dt).max)
    if dt.kind == "b":
        return _full_like(like, True)
    raise TypeError(f"minimum has no identity for dtype {dt}")


def _log_zero(like):
    xp = array_module(like)
    return xp.full(like.shape, -np.inf, dtype=xp.result_type(like.dtype, xp.float16))


def _pair(x, name):
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise TypeError(f"ops.{name} combines (first, second) pairs of arrays, got {type(x).__name__}")
    return x


def _affine(x, y):
    a1, b1 = _pair(x, "affine")
    a2, b2 = _pair(y, "affine")
    return a2 * a1, a2 * b1 + b2


def _affine_identity(like):
    a, b = like
    xp = array_module(a, b)
    return xp.ones_like(a), xp.zeros_like(b)


def _matmul(x, y):
    return y @ x


def _eye_like(m):
    xp = array_module(m)
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"matmul elements must be square matrices (..., N, N), got shape {m.shape}")
    return xp.broadcast_to(xp.eye(m.shape[-1], dtype=m.dtype), m.shape).copy()


def _matrix_affine(x, y):
    a1, b1 = _pair(x, "matrix_affine")
    a2, b2 = _pair(y, "matrix_affine")
    return a2 @ a1, (a2 @ b1[..., None])[..., 0] + b2


def _matrix_affine_identity(like):
    a, b = like
    xp = array_module(a, b)
    return _eye_like(a), xp.zeros_like(b)


def _add(x, y):
    return x + y


def _mul(x, y):
    return x * y


def _maximum(x, y):
    return array_module(x, y).maximum(x, y)


def _minimum(x, y):
    return array_module(x, y).minimum(x, y)


def _logaddexp(x, y):
    return array_module(x, y).logaddexp(x, y)


add = Op(_add, lambda like: array_module(like).zeros_like(like), name="add")
mul = Op(_mul, lambda like: array_module(like).ones_like(like), name="mul")
maximum = Op(_maximum, _lowest, name="maximum")
minimum = Op(_minimum, _highest, name="minimum")
logaddexp = Op(_logaddexp, _log_zero, name="logaddexp")
affine = Op(_affine, _affine_identity, name="affine", n_leaves=2)
matmul = Op(_matmul, lambda like: _eye_like(like), name="matmul")
matrix_affine = Op(_matrix_affine, _matrix_affine_identity, name="matrix_affine", n_leaves=2)

#: The built-in operators by name.
BUILTINS: dict[str, Op] = {
    op.name: op for op in (add, mul, maximum, minimum, logaddexp, affine, matmul, matrix_affine)
}

#: Built-ins whose NumPy ufunc has an ``accumulate`` (a sequential C loop): the CPU fast path.
UFUNCS = {"add": np.add, "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum, "logaddexp": np.logaddexp}
