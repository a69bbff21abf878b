r"""Weight bounds and normalizations that compose with any rule.

A constraint has two hooks, either of which may do nothing:

* ``transform(W, dW) -> dW``: reshape a proposed change before it is applied
  (soft bounds scale it by the distance to the bound);
* ``project(W)``: act on the weights, in place, after the change is applied
  (clipping, normalization).

Rules take ``constraints=(c1, c2, ...)``: the ``transform`` hooks run in that
order inside ``rule.delta``, the ``project`` hooks in that order inside
``rule.step`` after :math:`W \leftarrow W + \Delta W`. Weights are
``(n_post, n_pre)``; "row" means the incoming weights of one postsynaptic unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuro.backend import array_module

from neuro.validation import check_choice, check_positive, check_real

__all__ = ["Constraint", "Clip", "SoftBounds", "RowNorm", "SumNorm", "apply_transforms", "apply_projections"]


class Constraint:
    """Base class: both hooks do nothing."""

    def transform(self, W, dW):
        """The change to apply instead of ``dW`` (same shape as ``W``)."""
        return dW

    def project(self, W) -> None:
        """Modify ``W`` in place after a change was applied."""
        return None


def _check_bounds(w_min, w_max, *, optional: bool) -> tuple[float | None, float | None]:
    lo = None if (optional and w_min is None) else check_real(w_min, "w_min")
    hi = None if (optional and w_max is None) else check_real(w_max, "w_max")
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"w_min must be < w_max, got w_min={lo}, w_max={hi}")
    return lo, hi


@dataclass(frozen=True)
class Clip(Constraint):
    r"""Hard bounds: :math:`W \leftarrow \min(\max(W, w_{min}), w_{max})` after each step.

    Either bound may be ``None`` (unbounded on that side), not both.
    """

    w_min: float | None = 0.0
    w_max: float | None = 1.0

    def __post_init__(self):
        if self.w_min is None and self.w_max is None:
            raise ValueError("Clip needs w_min or w_max (got both None)")
        lo, hi = _check_bounds(self.w_min, self.w_max, optional=True)
        object.__setattr__(self, "w_min", lo)
        object.__setattr__(self, "w_max", hi)

    def project(self, W) -> None:
        clip_inplace(W, self.w_min, self.w_max)


@dataclass(frozen=True)
class SoftBounds(Constraint):
    r"""Soft (multiplicative) bounds on the change.

    .. math::
        \Delta W \leftarrow [\Delta W]_+ \odot (w_{max} - W) + [\Delta W]_- \odot (W - w_{min})

    where :math:`[a]_+ = \max(a, 0)` and :math:`[a]_- = \min(a, 0)`, so
    potentiation vanishes as :math:`W \to w_{max}` and depression as
    :math:`W \to w_{min}`; weights that start inside stay inside for small
    enough changes.
    """

    w_min: float = 0.0
    w_max: float = 1.0

    def __post_init__(self):
        lo, hi = _check_bounds(self.w_min, self.w_max, optional=False)
        object.__setattr__(self, "w_min", lo)
        object.__setattr__(self, "w_max", hi)

    def transform(self, W, dW):
        xp = array_module(W, dW)
        return xp.where(dW > 0, dW * (self.w_max - W), dW * (W - self.w_min))


@dataclass(frozen=True)
class RowNorm(Constraint):
    r"""L2 normalization of each row: :math:`W_{i\cdot} \leftarrow c\, W_{i\cdot} / \lVert W_{i\cdot} \rVert_2`.

    ``norm`` is :math:`c` (> 0). Rows that are exactly zero are left as they are.
    """

    norm: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "norm", check_positive(self.norm, "norm"))

    def project(self, W) -> None:
        xp = array_module(W)
        n = xp.sqrt(xp.sum(W * W, axis=-1, keepdims=True))
        W *= xp.where(n > 0, self.norm / xp.where(n > 0, n, 1.0), 1.0)


@dataclass(frozen=True)
class SumNorm(Constraint):
    r"""Keep each row's sum at ``total`` (:math:`s_i = \sum_j W_{ij}`, :math:`n` = ``n_pre``).

    ``mode="multiplicative"``: :math:`W_{i\cdot} \leftarrow W_{i\cdot}\, c / s_i`
    (rows with :math:`s_i = 0` are left as they are);
    ``mode="subtractive"``: :math:`W_{i\cdot} \leftarrow W_{i\cdot} + (c - s_i)/n`.
    """

    total: float = 1.0
    mode: str = "multiplicative"

    def __post_init__(self):
        object.__setattr__(self, "total", check_real(self.total, "total"))
        check_choice(self.mode, "mode", ("multiplicative", "subtractive"))

    def project(self, W) -> None:
        xp = array_module(W)
        s = xp.sum(W, axis=-1, keepdims=True)
        if self.mode == "multiplicative":
            W *= xp.where(s != 0, self.total / xp.where(s != 0, s, 1.0), 1.0)
        else:
            W += (self.total - s) / W.shape[-1]


def clip_inplace(W, lo, hi) -> None:
    """``W`` clipped to ``[lo, hi]`` in place (a bound may be ``None``); NumPy or CuPy."""
    xp = array_module(W)
    if lo is not None:
        xp.maximum(W, lo, out=W)
    if hi is not None:
        xp.minimum(W, hi, out=W)


def check_constraints(constraints) -> tuple[Constraint, ...]:
    """``constraints`` (one or an iterable of :class:`Constraint`) as a tuple."""
    if constraints is None:
        return ()
    if isinstance(constraints, Constraint):
        return (constraints,)
    try:
        items = tuple(constraints)
    except TypeError:
        raise TypeError(f"constraints must be a Constraint or an iterable of them, got {type(constraints).__name__}") from None
    for c in items:
        if not isinstance(c, Constraint):
            raise TypeError(f"constraints must hold Constraint instances (Clip, SoftBounds, RowNorm, SumNorm), got {type(c).__name__}")
    return items


def apply_transforms(constraints, W, dW):
    """Run every ``transform`` hook in order; returns the final change."""
    for c in constraints:
        dW = c.transform(W, dW)
    return dW


def apply_projections(constraints, W) -> None:
    """Run every ``project`` hook in order, in place."""
    for c in constraints:
        c.project(W)
