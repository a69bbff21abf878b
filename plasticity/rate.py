r"""Rate-based rules: Hebb, covariance, Oja, Sanger (GHA), BCM, Földiák anti-Hebbian.

Notation shared by every docstring here. For one presentation,
:math:`x \in \mathbb{R}^{n_{pre}}` is the presynaptic activity (``pre``),
:math:`y \in \mathbb{R}^{n_{post}}` the postsynaptic activity (``post``),
:math:`W \in \mathbb{R}^{n_{post} \times n_{pre}}` the weights (``y = f(W x)``
upstream), :math:`\eta` the learning rate ``lr``, :math:`\Delta t` the step
(``dt``, or 1 presentation when ``dt`` is ``None``), and
:math:`\langle \cdot \rangle` the average over the batch of ``B``
presentations. Every update below is the change of one ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuro.backend import array_module, resolve_dtype

from neuro.validation import check_nonneg, check_positive, check_real
from ._checks import warn
from .base import Rule, check_shape, time_step, validated_dt

__all__ = ["Hebb", "Covariance", "Oja", "Sanger", "BCM", "Foldiak", "AntiHebbian"]


def _outer_mean(post, pre):
    """:math:`\\langle y x^T \\rangle`: ``(n_post, n_pre)``."""
    return post.T @ pre / pre.shape[0]


def _check_tau(name: str, tau: float, dt) -> float:
    tau = check_positive(tau, name)
    h = time_step(dt)
    if h > tau:
        unit = "dt" if dt is not None else "one presentation"
        warn(f"{name}={tau} is shorter than {unit} ({h}); the running average overshoots (unstable)")
    return tau


def _state_arrays(sizes: dict, fill: dict, dtype, like):
    xp = array_module(like) if like is not None else array_module()
    dtype = resolve_dtype(dtype if dtype is not None else getattr(like, "dtype", None))
    return {k: xp.full(n, fill.get(k, 0.0), dtype=dtype) for k, n in sizes.items()}


class _Factorized(Rule):
    r"""Rules of the form :math:`\Delta W = \eta \Delta t\,(\langle a\, b^T\rangle - c \odot W + k)`.

    Subclasses give ``_terms(pre, post, state, xp) -> (a (B, n_post), b (B, n_pre), c, k, new_state)``
    with ``c`` a scalar or ``(n_post,)`` (per row) and ``k`` a scalar; the
    dense and the synapse-list forms both follow from it.
    """

    def _scale(self):
        return self.lr * time_step(self.dt)

    def _compute(self, W, pre, post, state, xp):
        a, b, c, k, new = self._terms(pre, post, state, xp)
        dW = _outer_mean(a, b)
        if not _is_zero(c):
            dW -= (c[:, None] if getattr(c, "ndim", 0) else c) * W
        if k:
            dW += k
        dW *= self._scale()
        self._dense_fix(dW, xp)
        return dW, new

    def _compute_synapses(self, w, i, j, pre, post, state, xp, index=None):
        a, b, c, k, new = self._terms(pre, post, state, xp)
        dw = (a[:, j] * b[:, i]).mean(axis=0)
        if not _is_zero(c):
            dw -= (c[j] if getattr(c, "ndim", 0) else c) * w
        if k:
            dw += k
        dw *= self._scale()
        self._synapse_fix(dw, i, j)
        return None, dw, new

    def _dense_fix(self, dW, xp) -> None:
        """Hook: adjust the dense change in place (Foldiak's zero diagonal)."""

    def _synapse_fix(self, dw, i, j) -> None:
        """Hook: adjust the synapse-list change in place."""


def _is_zero(c) -> bool:
    return getattr(c, "ndim", 0) == 0 and c == 0


@dataclass(frozen=True)
class Hebb(_Factorized):
    r"""Plain Hebbian learning with optional weight decay.

    .. math::
        \Delta W = \eta\,\Delta t\,\big(\langle y\, x^T \rangle - \gamma W\big)

    :math:`\gamma` is ``decay`` (>= 0, per presentation or per unit of time).
    For a linear unit on zero-mean data with covariance :math:`C`,
    :math:`\mathbb{E}[\Delta W] = \eta \Delta t\, W (C - \gamma I)`: without
    decay the weights grow without bound along the top eigenvector of
    :math:`C`; decay only bounds them when :math:`\gamma > \lambda_{max}(C)`.
    """

    lr: float = 0.01
    decay: float = 0.0
    dt: float | None = None

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "decay", check_nonneg(self.decay, "decay"))
        object.__setattr__(self, "dt", validated_dt(self.dt))

    def _terms(self, pre, post, state, xp):
        return post, pre, self.decay, 0.0, None


@dataclass(frozen=True)
class Covariance(_Factorized):
    r"""Covariance rule (Sejnowski 1977): Hebb on deviations from running means.

    .. math::
        \Delta W = \eta\,\Delta t\,\langle (y - \bar y)(x - \bar x)^T \rangle, \qquad
        \bar x \leftarrow \bar x + \tfrac{\Delta t}{\tau}(\langle x\rangle - \bar x),\quad
        \bar y \leftarrow \bar y + \tfrac{\Delta t}{\tau}(\langle y\rangle - \bar y)

    :math:`\bar x` ``(n_pre,)`` and :math:`\bar y` ``(n_post,)`` are the state
    (keys ``"pre_mean"``, ``"post_mean"``, starting at ``pre_mean0`` and
    ``post_mean0``); :math:`\tau` is ``tau_mean`` (presentations, or time
    units when ``dt`` is given). ``delta`` uses the means held in the state
    before this step.
    """

    trial_state = False  # one pair of running means for all trials

    lr: float = 0.01
    tau_mean: float = 100.0
    dt: float | None = None
    pre_mean0: float = 0.0
    post_mean0: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "dt", validated_dt(self.dt))
        object.__setattr__(self, "tau_mean", _check_tau("tau_mean", self.tau_mean, self.dt))
        object.__setattr__(self, "pre_mean0", check_real(self.pre_mean0, "pre_mean0"))
        object.__setattr__(self, "post_mean0", check_real(self.post_mean0, "post_mean0"))

    def init_state(self, shape, *, batch_size: int = 1, dtype=None, like=None):
        """``{"pre_mean": (n_pre,), "post_mean": (n_post,)}`` filled with the initial means."""
        n_post, n_pre = check_shape(shape)
        return _state_arrays({"pre_mean": n_pre, "post_mean": n_post},
                             {"pre_mean": self.pre_mean0, "post_mean": self.post_mean0}, dtype, like)

    def _check_state(self, shape, batch_size, state):
        self._require_state(state, ("pre_mean", "post_mean"))

    def _terms(self, pre, post, state, xp):
        a = time_step(self.dt) / self.tau_mean
        new = {
            "pre_mean": state["pre_mean"] + a * (pre.mean(axis=0) - state["pre_mean"]),
            "post_mean": state["post_mean"] + a * (post.mean(axis=0) - state["post_mean"]),
        }
        return post - state["post_mean"], pre - state["pre_mean"], 0.0, 0.0, new


@dataclass(frozen=True)
class Oja(_Factorized):
    r"""Oja's rule (Oja 1982), applied to every row independently.

    .. math::
        \Delta W_{i\cdot} = \eta\,\Delta t\,\langle y_i\, x^T - y_i^2\, W_{i\cdot} \rangle

    For a linear unit :math:`y = w^T x` on zero-mean data with covariance
    :math:`C`, :math:`w` converges to the unit-norm eigenvector of the largest
    eigenvalue of :math:`C` (the first principal component), up to sign.
    """

    lr: float = 0.01
    dt: float | None = None

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "dt", validated_dt(self.dt))

    def _terms(self, pre, post, state, xp):
        return post, pre, (post * post).mean(axis=0), 0.0, None


@dataclass(frozen=True)
class Sanger(Rule):
    r"""Sanger's generalized Hebbian algorithm (GHA, Sanger 1989).

    .. math::
        \Delta W = \eta\,\Delta t\,\big(\langle y\, x^T\rangle - \mathrm{LT}[\langle y\, y^T\rangle]\, W\big)

    where :math:`\mathrm{LT}[\cdot]` keeps the diagonal and the entries below
    it. For linear units :math:`y = W x` on zero-mean data, row :math:`i`
    converges to the :math:`i`-th principal component (unit norm, up to sign),
    in order of decreasing eigenvalue. Not local to a synapse (the change of
    row :math:`i` involves rows :math:`k \le i`): dense weights only.
    """

    local = False

    lr: float = 0.01
    dt: float | None = None

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "dt", validated_dt(self.dt))

    def _compute(self, W, pre, post, state, xp):
        yy = xp.tril(_outer_mean(post, post))
        dW = _outer_mean(post, pre) - yy @ W
        return (self.lr * time_step(self.dt)) * dW, None


@dataclass(frozen=True)
class BCM(_Factorized):
    r"""Bienenstock-Cooper-Munro rule with a sliding threshold (Intrator & Cooper form).

    .. math::
        \Delta W_{i\cdot} = \eta\,\Delta t\,\langle y_i (y_i - \theta_i)\, x^T \rangle, \qquad
        \theta_i \leftarrow \theta_i + \tfrac{\Delta t}{\tau_\theta}\big(\langle y_i^2\rangle - \theta_i\big)

    i.e. :math:`\tau_\theta\, d\theta/dt = y^2 - \theta`, so :math:`\theta`
    tracks :math:`\mathbb{E}[y^2]`. :math:`\tau_\theta` is ``tau_theta``, in
    presentations unless ``dt`` is given. The state is
    ``{"theta": (n_post,)}`` starting at ``theta0``; ``delta`` uses the
    threshold held in the state before this step. With patterns shown at
    random, a unit becomes selective: it answers one pattern with
    :math:`y = \theta` and the others with :math:`y \approx 0` (the threshold
    must move faster than the weights: :math:`\tau_\theta \ll 1/\eta`).
    """

    trial_state = False  # one threshold per unit for all trials

    lr: float = 0.01
    tau_theta: float = 20.0
    dt: float | None = None
    theta0: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "dt", validated_dt(self.dt))
        object.__setattr__(self, "tau_theta", _check_tau("tau_theta", self.tau_theta, self.dt))
        object.__setattr__(self, "theta0", check_nonneg(self.theta0, "theta0"))

    def init_state(self, shape, *, batch_size: int = 1, dtype=None, like=None):
        """``{"theta": (n_post,)}`` filled with ``theta0``."""
        n_post, _ = check_shape(shape)
        return _state_arrays({"theta": n_post}, {"theta": self.theta0}, dtype, like)

    def _check_state(self, shape, batch_size, state):
        self._require_state(state, ("theta",))

    def _terms(self, pre, post, state, xp):
        theta = state["theta"]
        new_theta = theta + (time_step(self.dt) / self.tau_theta) * ((post * post).mean(axis=0) - theta)
        return post * (post - theta), pre, 0.0, 0.0, {"theta": new_theta}


@dataclass(frozen=True)
class Foldiak(_Factorized):
    r"""Anti-Hebbian decorrelation (Földiák 1990).

    .. math::
        \Delta W = -\eta\,\Delta t\,\big(\langle y\, x^T\rangle - p^2\big)

    with :math:`p^2` = ``target`` (the correlation left alone; Földiák's
    :math:`p` is the target firing probability, 0 for zero-mean signals).
    Meant for lateral weights (``pre`` = ``post`` = the layer's output,
    ``W`` square): with ``zero_diagonal=True`` (default) the diagonal of a
    square change is set to 0 (no self-connections). At the fixed point the
    outputs are decorrelated: :math:`\langle y_i y_j\rangle = p^2` for
    :math:`i \ne j`.
    """

    lr: float = 0.01
    target: float = 0.0
    zero_diagonal: bool = True
    dt: float | None = None

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "dt", validated_dt(self.dt))
        object.__setattr__(self, "target", check_real(self.target, "target"))
        if not isinstance(self.zero_diagonal, bool):
            raise TypeError(f"zero_diagonal must be a bool, got {type(self.zero_diagonal).__name__}")

    def _terms(self, pre, post, state, xp):
        return -post, pre, 0.0, self.target, None

    def _dense_fix(self, dW, xp) -> None:
        if self.zero_diagonal and dW.shape[0] == dW.shape[1]:
            n = dW.shape[0]
            dW[xp.arange(n), xp.arange(n)] = 0.0

    def _synapse_fix(self, dw, i, j) -> None:
        if self.zero_diagonal:
            dw[i == j] = 0.0


#: The same rule under its descriptive name.
AntiHebbian = Foldiak
