"""Loss functions (PyTorch semantics) and information-theory helpers.

Losses take :class:`~ann.tensor.Tensor` inputs and return a Tensor: a scalar
for ``reduction="mean"`` or ``"sum"``, the per-element losses for ``"none"``.
Classification losses take logits or log-probabilities of shape ``(N, C)`` or
``(N, C, d1, ...)`` (class axis 1, as PyTorch) and integer targets of shape
``(N,)`` / ``(N, d1, ...)``, or class probabilities of the logits' shape.

Energy-based losses (LeCun et al. 2006, "A Tutorial on Energy-Based
Learning", section 2) take energies ``(N, C)`` (low = compatible) over C
answers and integer targets ``(N,)``: :func:`energy_loss`,
:func:`energy_perceptron_loss`, :func:`energy_hinge_loss`,
:func:`energy_log_loss`, :func:`energy_square_square_loss`,
:func:`energy_square_exp_loss` and :func:`energy_nll_loss` (their Module
forms are in :mod:`ann.energy`).

The helpers :func:`entropy`, :func:`cross_entropy_of` and
:func:`kl_divergence` work on plain probability arrays (NumPy or CuPy),
along the last axis, in nats (``base=2`` for bits), with ``0 log 0 = 0``;
floating inputs keep their dtype (as ``scipy.stats.entropy``), others become float64.
"""

from __future__ import annotations

import math

import numpy as np

from neuro.validation import check_nonneg, check_positive

from .activations import log_softmax, relu, softplus
from .tensor import Tensor, _operand, _xp, _special, absolute, amin, exp, make_op, maximum, minimum, where

__all__ = [
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "kl_div",
    "energy_loss",
    "energy_perceptron_loss",
    "energy_hinge_loss",
    "energy_log_loss",
    "energy_square_square_loss",
    "energy_square_exp_loss",
    "energy_nll_loss",
    "entropy",
    "cross_entropy_of",
    "kl_divergence",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, allowed=_REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _weighted_mean(losses: Tensor, w) -> Tensor:
    """``losses.sum() / w.sum()``; ``nan`` when every weight is zero or every target ignored (as PyTorch)."""
    total = float(w.sum())
    return losses.sum() * (1.0 / total if total != 0 else float("nan"))


def _check_same_shape(input: Tensor, target: Tensor, name: str) -> None:
    if input.shape != target.shape:
        raise ValueError(f"{name}: input shape {input.shape} and target shape {target.shape} must be equal")


def _class_targets(logits: Tensor, target, ignore_index: int | None, name: str):
    """Validate integer targets (``ignore_index=None``: every target must be a class); returns the target array."""
    xp = _xp(logits.data)
    t = target.data if isinstance(target, Tensor) else xp.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: integer class targets must have an integer dtype, got {t.dtype}")
    expected = (logits.shape[0],) + logits.shape[2:]
    if t.shape != expected:
        raise ValueError(f"{name}: target shape {t.shape} does not match input shape {logits.shape} (expected {expected})")
    n_classes = logits.shape[1]
    valid = t != ignore_index if ignore_index is not None else xp.ones(t.shape, dtype=bool)
    if bool(((t < 0) | (t >= n_classes))[valid].any()):
        bad = t[valid & ((t < 0) | (t >= n_classes))].ravel()[0]
        allowed = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise ValueError(f"{name}: target values must be in [0, {n_classes - 1}]{allowed}; got {int(bad)}")
    return t


def _pick_class(logp: Tensor, t, ignore_index: int):
    """``-logp[n, t[n], ...]`` for valid targets (0 where ignored) and the mask of valid targets."""
    xp = _xp(logp.data)
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)
    # move class axis last and gather with integer arrays
    moved = logp if logp.ndim == 2 else logp.transpose((0, *range(2, logp.ndim), 1))
    flat = moved.reshape((-1, logp.shape[1]))
    rows = xp.arange(flat.shape[0])
    picked = flat[rows, safe.reshape(-1)].reshape(t.shape)
    return where(valid, -picked, 0.0), valid


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer ``target`` under log-probabilities ``input`` ``(N, C, ...)``.

    ``weight`` (optional, ``(C,)``) rescales each class; ``"mean"`` divides by the
    summed weights of the non-ignored targets (as PyTorch).
    """
    _check_reduction(reduction)
    input = _operand(input)
    if input.ndim < 2:
        raise ValueError(f"nll_loss: input must have shape (N, C, ...), got {input.shape}")
    t = _class_targets(input, target, ignore_index, "nll_loss")
    losses, valid = _pick_class(input, t, ignore_index)
    xp = _xp(input.data)
    if weight is None:
        w = valid.astype(input.dtype)
    else:
        wd = weight.data if isinstance(weight, Tensor) else xp.asarray(weight)
        if wd.shape != (input.shape[1],):
            raise ValueError(f"nll_loss: weight must have shape ({input.shape[1]},), got {wd.shape}")
        w = xp.where(valid, wd.astype(input.dtype)[xp.where(valid, t, 0)], 0)
        losses = losses * w
    if reduction == "mean":
        return _weighted_mean(losses, w)
    return _reduce(losses, reduction)


def cross_entropy(
    input,
    target,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between ``softmax(input)`` and ``target`` (PyTorch's ``F.cross_entropy``).

    ``input``: logits ``(N, C)`` or ``(N, C, d1, ...)``. ``target``: integer classes
    ``(N, ...)`` (``ignore_index`` entries skipped) or class probabilities of ``input``'s
    shape. Computed through log-sum-exp, so logits of magnitude 1e4 and ``-inf``
    logits in non-target classes give finite losses and gradients.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    input = _operand(input)
    if input.ndim < 2:
        raise ValueError(f"cross_entropy: input must have shape (N, C, ...), got {input.shape}")
    xp = _xp(input.data)
    n_classes = input.shape[1]
    logp = log_softmax(input, axis=1)
    t_raw = target.data if isinstance(target, Tensor) else xp.asarray(target)
    wd = None
    if weight is not None:
        wd = (weight.data if isinstance(weight, Tensor) else xp.asarray(weight)).astype(input.dtype)
        if wd.shape != (n_classes,):
            raise ValueError(f"cross_entropy: weight must have shape ({n_classes},), got {wd.shape}")
    wshape = (1, n_classes) + (1,) * (input.ndim - 2)

    if t_raw.dtype.kind == "f":  # class probabilities
        if t_raw.shape != input.shape:
            raise TypeError(
                f"cross_entropy: targets of dtype {t_raw.dtype} and shape {t_raw.shape}: class-index targets need an "
                f"integer dtype, probability targets the input's shape {input.shape}"
            )
        p = t_raw.astype(input.dtype)
        if label_smoothing > 0:
            p = p * (1 - label_smoothing) + label_smoothing / n_classes
        if wd is not None:
            p = p * wd.reshape(wshape)
        # 0 * log 0 = 0: classes with zero target probability contribute nothing even at -inf
        terms = where(p != 0, logp, 0.0) * p
        losses = -terms.sum(axis=1)
        return _reduce(losses, reduction)

    t = _class_targets(input, target, ignore_index, "cross_entropy")
    nll, valid = _pick_class(logp, t, ignore_index)
    if wd is None:
        w = valid.astype(input.dtype)
        nll_w = nll
    else:
        w = xp.where(valid, wd[xp.where(valid, t, 0)], 0).astype(input.dtype)
        nll_w = nll * w
    if label_smoothing > 0:
        terms = logp if wd is None else logp * wd.reshape(wshape)
        smooth = -terms.sum(axis=1)
        smooth = where(valid, smooth, 0.0)
        losses = nll_w * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)
    else:
        losses = nll_w
    if reduction == "mean":
        return _weighted_mean(losses, w)
    return _reduce(losses, reduction)


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean") -> Tensor:
    """``-(t log p + (1 - t) log(1 - p))`` for probabilities ``input``; logs clamped at -100 (as PyTorch)."""
    _check_reduction(reduction)
    input = _operand(input)
    target = _operand(target, input)
    _check_same_shape(input, target, "binary_cross_entropy")
    xp = _xp(input.data)
    # written so that NaN fails the check too (PyTorch raises on NaN input or target)
    for name, arr in (("input", input.data), ("target", target.data)):
        if not bool(((arr >= 0) & (arr <= 1)).all()):
            raise ValueError(f"binary_cross_entropy: {name} must hold probabilities in [0, 1] (no NaN)")
    p, t = input.data, target.data

    def fwd():
        with np.errstate(divide="ignore"):
            lp = xp.maximum(xp.log(p), -100)
            l1p = xp.maximum(xp.log1p(-p), -100)
        return -(t * lp + (1 - t) * l1p)

    out = fwd().astype(input.dtype, copy=False)

    def backward(g):
        eps = 1e-12  # PyTorch's EPSILON in binary_cross_entropy_backward
        gi = g * (p - t) / xp.maximum((1 - p) * p, eps)
        return (gi.astype(p.dtype, copy=False), None)

    loss = make_op(out, (input, target), backward, "binary_cross_entropy")
    if weight is not None:
        loss = loss * _operand(weight, input)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction: str = "mean") -> Tensor:
    """BCE on logits, stable: ``(1 - t) x + (1 + (w_p - 1) t) * log(1 + exp(-x))`` (as PyTorch)."""
    _check_reduction(reduction)
    input = _operand(input)
    target = _operand(target, input)
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    # log(1 + exp(-x)) = softplus(-x) = max(-x, 0) + log1p(exp(-|x|))
    log_sig_neg = maximum(-input, 0.0) + _log1p_exp_neg_abs(input)
    if pos_weight is None:
        loss = (1 - target) * input + log_sig_neg
    else:
        pw = _operand(pos_weight, input)
        loss = (1 - target) * input + (1 + (pw - 1) * target) * log_sig_neg
    if weight is not None:
        loss = loss * _operand(weight, input)
    return _reduce(loss, reduction)


def _log1p_exp_neg_abs(x: Tensor) -> Tensor:
    """``log1p(exp(-|x|))`` as a primitive (its gradient is ``-sign(x) * sigmoid(-|x|)``)."""
    xp = _xp(x.data)
    a = xp.abs(x.data)
    out = xp.log1p(xp.exp(-a))

    def backward(g):
        return (g * (-xp.sign(x.data) * _special(xp).expit(-a)),)

    return make_op(out, (x,), backward, "log1p_exp_neg_abs")


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)**2``."""
    _check_reduction(reduction)
    input = _operand(input)
    target = _operand(target, input)
    _check_same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error ``|input - target|`` (gradient 0 where equal, as PyTorch)."""
    _check_reduction(reduction)
    input = _operand(input)
    target = _operand(target, input)
    _check_same_shape(input, target, "l1_loss")
    return _reduce(absolute(input - target), reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """``0.5 d**2`` for ``|d| < delta`` else ``delta (|d| - 0.5 delta)``, ``d = input - target``."""
    _check_reduction(reduction)
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    input = _operand(input)
    target = _operand(target, input)
    _check_same_shape(input, target, "huber_loss")
    d = input - target
    ad = absolute(d)
    quad = minimum(ad, delta)  # |d| clipped at delta
    loss = 0.5 * quad * quad + delta * (ad - quad)
    return _reduce(loss, reduction)


def kl_div(input, target, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """PyTorch's ``F.kl_div``: pointwise ``target * (log target - input)`` with ``input`` log-probabilities.

    ``reduction="batchmean"`` divides the sum by the batch size (the true KL divergence).
    """
    _check_reduction(reduction, _REDUCTIONS + ("batchmean",))
    input = _operand(input)
    target = _operand(target, input)
    _check_same_shape(input, target, "kl_div")
    if log_target:
        from .tensor import exp

        loss = exp(target) * (target - input)
    else:
        xp = _xp(target.data)
        t = target.data
        with np.errstate(divide="ignore"):
            logt = xp.where(t > 0, xp.log(xp.where(t > 0, t, 1)), 0).astype(t.dtype)
        loss = where(t > 0, target * (Tensor(logt) - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() * (1.0 / input.shape[0]) if input.ndim else loss.sum()
    return _reduce(loss, reduction)


# ------------------------------------------------ energy-based losses
#
# Notation of LeCun et al. (2006): E_y is the energy of the correct answer,
# E_bar = min over y' != y of E_y' the energy of the most offending incorrect
# answer. Ties among the minima share the gradient evenly (as torch.amin).


def _energies(energies, target, name: str, contrastive: bool = True):
    """Validated ``(energies (N, C) Tensor, targets (N,))``."""
    energies = _operand(energies)
    if energies.ndim != 2:
        raise ValueError(f"{name}: energies must have shape (N, C), got {energies.shape}")
    if contrastive and energies.shape[1] < 2:
        raise ValueError(f"{name}: energies need C >= 2 answers to contrast, got shape {energies.shape}")
    if energies.dtype.kind != "f":
        raise TypeError(f"{name}: energies must be floating, got dtype {energies.dtype}")
    if not bool(_xp(energies.data).isfinite(energies.data).all()):
        raise ValueError(f"{name}: energies must be finite (got inf or nan)")
    return energies, _class_targets(energies, target, None, name)


def _correct(energies: Tensor, t) -> Tensor:
    """``E[n, t[n]]`` ``(N,)``."""
    return energies[_xp(energies.data).arange(energies.shape[0]), t]


def _most_offending(energies: Tensor, t) -> Tensor:
    """``min over y != t[n] of E[n, y]`` ``(N,)``."""
    xp = _xp(energies.data)
    is_target = xp.arange(energies.shape[1])[None, :] == t[:, None]
    return amin(where(is_target, float("inf"), energies), axis=1)


def energy_loss(energies, target, reduction: str = "mean") -> Tensor:
    """Energy loss ``E_y``: pushes the correct answer's energy down only (LeCun et al. 2006, section 2.2).

    ``energies`` ``(N, C)``, ``target`` integer ``(N,)``. Without a contrastive
    term it can collapse (every energy driven down); use it only with
    architectures where lowering one energy raises the others.
    """
    _check_reduction(reduction)
    energies, t = _energies(energies, target, "energy_loss", contrastive=False)
    return _reduce(_correct(energies, t), reduction)


def energy_perceptron_loss(energies, target, reduction: str = "mean") -> Tensor:
    """Generalized perceptron loss ``E_y - min_y' E_y'`` (min over all answers; >= 0)."""
    _check_reduction(reduction)
    energies, t = _energies(energies, target, "energy_perceptron_loss", contrastive=False)
    return _reduce(_correct(energies, t) - amin(energies, axis=1), reduction)


def energy_hinge_loss(energies, target, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Generalized margin (hinge) loss ``max(0, m + E_y - E_bar)`` with margin ``m >= 0``.

    ``E_bar`` is the lowest energy among the incorrect answers. The gradient at
    the hinge's kink is 0 (as ``torch.relu``).
    """
    _check_reduction(reduction)
    margin = check_nonneg(margin, "margin")
    energies, t = _energies(energies, target, "energy_hinge_loss")
    return _reduce(relu(margin + _correct(energies, t) - _most_offending(energies, t)), reduction)


def energy_log_loss(energies, target, reduction: str = "mean") -> Tensor:
    """Log (soft-hinge) loss ``log(1 + exp(E_y - E_bar))``, computed as a softplus (finite at 1e4)."""
    _check_reduction(reduction)
    energies, t = _energies(energies, target, "energy_log_loss")
    return _reduce(softplus(_correct(energies, t) - _most_offending(energies, t)), reduction)


def energy_square_square_loss(energies, target, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Square-square loss ``E_y**2 + max(0, m - E_bar)**2`` (meant for energies >= 0)."""
    _check_reduction(reduction)
    margin = check_nonneg(margin, "margin")
    energies, t = _energies(energies, target, "energy_square_square_loss")
    e_y = _correct(energies, t)
    push = relu(margin - _most_offending(energies, t))
    return _reduce(e_y * e_y + push * push, reduction)


def energy_square_exp_loss(energies, target, gamma: float = 1.0, reduction: str = "mean") -> Tensor:
    """Square-exponential loss ``E_y**2 + gamma exp(-E_bar)`` (meant for energies >= 0).

    ``gamma > 0``. Overflows to ``inf`` where ``E_bar`` is below about -88
    (float32) or -709 (float64), as the formula does.
    """
    _check_reduction(reduction)
    gamma = check_positive(gamma, "gamma")
    energies, t = _energies(energies, target, "energy_square_exp_loss")
    e_y = _correct(energies, t)
    return _reduce(e_y * e_y + gamma * exp(-_most_offending(energies, t)), reduction)


def energy_nll_loss(energies, target, beta: float = 1.0, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood loss ``E_y + (1/beta) log sum_y' exp(-beta E_y')``.

    The Gibbs distribution ``P(y) = softmax(-beta E)_y`` at inverse temperature
    ``beta > 0``; computed through log-softmax (finite at 1e4). With
    ``beta = 1`` this equals ``cross_entropy(-energies, target)``.
    """
    _check_reduction(reduction)
    beta = check_positive(beta, "beta")
    energies, t = _energies(energies, target, "energy_nll_loss", contrastive=False)
    logp = log_softmax(energies * (-beta), axis=1)
    return _reduce(_correct(logp, t) * (-1.0 / beta), reduction)


# --------------------------------------------------- information theory


def _prob_arrays(*arrays):
    """The arrays in one floating dtype: the inputs' own (as ``scipy.stats.entropy``), float64 for non-float input."""
    raw = [a.data if isinstance(a, Tensor) else a for a in arrays]
    xp = _xp(*raw)
    raw = [xp.asarray(a) for a in raw]
    dtype = np.result_type(*raw)
    dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
    out = []
    for name, a in zip("pq", raw):
        a = a.astype(dtype, copy=False)
        if bool((a < 0).any()):
            raise ValueError(f"{name} must hold probabilities (>= 0)")
        out.append(a)
    return xp, out


def _check_distribution(xp, p, axis, name):
    """``p`` must sum to 1 along ``axis`` (to float32 rounding), else a ``ValueError`` naming it."""
    sums = p.sum(axis=axis)
    if not bool((xp.abs(sums - 1) <= 1e-4).all()):
        worst = float(sums.ravel()[int(xp.argmax(xp.abs(sums - 1).ravel()))])
        raise ValueError(f"{name} must be a probability distribution summing to 1 along axis {axis}, got a sum of {worst}")


def _check_base(base):
    if base is None:
        return
    if isinstance(base, bool) or not isinstance(base, (int, float, np.integer, np.floating)):
        raise TypeError(f"base must be a real number or None, got {type(base).__name__}")
    if not (np.isfinite(base) and base > 0 and base != 1):
        raise ValueError(f"base must be a finite number > 0 and != 1 (e.g. 2 for bits), got {base}")


def _log_base(xp, x, base):
    with np.errstate(divide="ignore"):
        lx = xp.log(x)
    return lx if base is None else lx / math.log(base)  # a Python float keeps float32 float32


def entropy(p, axis: int = -1, base: float | None = None):
    """Shannon entropy ``-sum p log p`` along ``axis`` (nats, or ``base``), with ``0 log 0 = 0``.

    ``p`` must sum to 1 along ``axis`` (unlike ``scipy.stats.entropy``, which normalizes).
    """
    _check_base(base)
    xp, (p,) = _prob_arrays(p)
    _check_distribution(xp, p, axis, "p")
    terms = xp.where(p > 0, p * _log_base(xp, xp.where(p > 0, p, 1), base), 0)
    return -terms.sum(axis=axis)


def cross_entropy_of(p, q, axis: int = -1, base: float | None = None):
    """Cross-entropy ``-sum p log q`` along ``axis``; ``inf`` where ``q = 0 < p``. ``p`` and ``q`` must sum to 1."""
    _check_base(base)
    xp, (p, q) = _prob_arrays(p, q)
    _check_distribution(xp, p, axis, "p")
    _check_distribution(xp, q, axis, "q")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = xp.where(p > 0, p * _log_base(xp, q, base), 0)
    return -terms.sum(axis=axis)


def kl_divergence(p, q, axis: int = -1, base: float | None = None):
    """Kullback-Leibler divergence ``sum p log(p / q)`` along ``axis``; ``inf`` where ``q = 0 < p``. ``p`` and ``q`` must sum to 1."""
    _check_base(base)
    xp, (p, q) = _prob_arrays(p, q)
    _check_distribution(xp, p, axis, "p")
    _check_distribution(xp, q, axis, "q")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = xp.where(p > 0, p * (_log_base(xp, xp.where(p > 0, p, 1), base) - _log_base(xp, q, base)), 0)
    return terms.sum(axis=axis)
