r"""Restricted Boltzmann machines on plain NumPy or CuPy arrays, trained with CD-k or persistent CD.

Bernoulli-Bernoulli energy (visible ``v`` in {0, 1}, hidden ``h`` in {0, 1}):

.. math::
    E(v, h) = -b^T v - c^T h - h^T W v, \qquad
    F(v) = -\log \sum_h e^{-E(v, h)} = -b^T v - \sum_j \mathrm{softplus}(c_j + W_j v)

Gaussian-Bernoulli (``visible="gaussian"``, real ``v``, fixed standard deviations ``sigma``):

.. math::
    E(v, h) = \sum_i \frac{(v_i - b_i)^2}{2\sigma_i^2} - c^T h - h^T W (v / \sigma), \qquad
    F(v) = \sum_i \frac{(v_i - b_i)^2}{2\sigma_i^2} - \sum_j \mathrm{softplus}(c_j + W_j (v/\sigma))

``W`` is ``(n_hidden, n_visible)`` (post, pre, as everywhere in the toolkit), ``b``
the visible bias ``(n_visible,)``, ``c`` the hidden bias ``(n_hidden,)``. Batches
are ``(B, n_visible)`` / ``(B, n_hidden)``. The model is not an autograd
``Module``: contrastive divergence is not the gradient of a computable loss, so
the updates are written out (Hinton 2002; Tieleman 2008 for PCD).

Arrays live where the parameters live (``backend=``, default the current
:mod:`neuro.backend`); inputs from the other module raise ``TypeError``. The
random numbers are drawn on the host from the ``seed`` Generator and copied to
the device, so a NumPy and a CuPy run with the same seed give the same numbers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from neuro.backend import array_module, is_cupy_array, resolve_dtype, to_device
from neuro.validation import as_param, check_int, check_nonneg, check_positive

from ..generator import make_rng
from ..tensor import _special
from ..warnings import NonFiniteLossWarning

__all__ = ["RBM", "MAX_ENUMERATED_UNITS"]

#: Exact partition functions enumerate ``2**n`` states of the smaller layer, ``n`` at most this.
MAX_ENUMERATED_UNITS = 20
_CHUNK = 1 << 14  # states per enumeration chunk (memory: chunk x units)


def _softplus(xp, x):
    return xp.logaddexp(0, x)


def _sigmoid(xp, x):
    return _special(xp).expit(x)


def _logsumexp(xp, x, axis=None):
    m = x.max(axis=axis, keepdims=True)
    out = m + xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True))
    return out.squeeze(axis) if axis is not None else out.reshape(())


def binary_states(n: int, start: int = 0, stop: int | None = None, xp=np, dtype=np.float64):
    """The binary vectors ``start .. stop-1`` (bit ``i`` of the index is unit ``i``) as ``(stop - start, n)``."""
    stop = 1 << n if stop is None else stop
    idx = xp.arange(start, stop, dtype=xp.int64)
    return ((idx[:, None] >> xp.arange(n, dtype=xp.int64)[None, :]) & 1).astype(dtype)


class RBM:
    """A restricted Boltzmann machine ``n_visible x n_hidden`` (see the module docstring for the energies).

    Parameters
    ----------
    n_visible, n_hidden : int
    visible : ``"bernoulli"`` (binary visible units) or ``"gaussian"`` (real, with fixed ``sigma``).
    sigma : float or ``(n_visible,)`` array, > 0; the Gaussian units' standard deviation (ignored for Bernoulli).
    dtype : float dtype of the parameters; float64 by default (exact log-likelihoods need it).
    backend : ``"numpy"`` or ``"cupy"``; default the current :func:`neuro.backend.get_backend`.
    seed : int or Generator; initializes ``W ~ N(0, 0.01**2)`` (Hinton's guide), ``b = c = 0``, and is the
        default random stream of every sampling method.

    Notes
    -----
    Attributes ``W``, ``b``, ``c`` are arrays of the backend; training state: the momentum buffers and
    the persistent chains of PCD (:meth:`reset_training_state` clears them).
    """

    def __init__(self, n_visible: int, n_hidden: int, *, visible: str = "bernoulli", sigma=1.0, dtype=None,
                 backend: str | None = None, seed=None):
        self.n_visible = check_int(n_visible, "n_visible")
        self.n_hidden = check_int(n_hidden, "n_hidden")
        if visible not in ("bernoulli", "gaussian"):
            raise ValueError(f"visible must be 'bernoulli' or 'gaussian', got {visible!r}")
        self.visible = visible
        self.dtype = resolve_dtype(dtype, np.float64)
        self.rng = make_rng(seed)
        w = self.rng.normal(0.0, 0.01, (self.n_hidden, self.n_visible))
        self.W = to_device(w, backend, self.dtype)
        self._xp = xp = array_module(self.W)
        self.b = xp.zeros(self.n_visible, dtype=self.dtype)
        self.c = xp.zeros(self.n_hidden, dtype=self.dtype)
        self.sigma = xp.asarray(as_param(sigma, self.n_visible, "sigma", positive=True), dtype=self.dtype)
        self.reset_training_state()

    # ------------------------------------------------------------------ helpers

    @property
    def xp(self):
        """The array module of the parameters (numpy or cupy)."""
        return self._xp

    def reset_training_state(self) -> None:
        """Forget the momentum buffers and the persistent chains."""
        self._velocity = None
        self.chains = None

    def _rng(self, seed):
        return self.rng if seed is None else make_rng(seed)

    def _batch(self, x, name: str, n: int, binary: bool):
        """``x`` as a ``(B, n)`` array of the parameters' module and dtype (a 1-D ``x`` is one sample)."""
        xp = self.xp
        if is_cupy_array(x) != is_cupy_array(self.W):
            where = "a CuPy" if is_cupy_array(x) else "a NumPy (host)"
            raise TypeError(f"{name} is {where} array but the RBM's parameters are on "
                            f"{'cupy' if is_cupy_array(self.W) else 'numpy'}; move one with neuro.backend.to_device")
        x = xp.asarray(x)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != n:
            raise ValueError(f"{name} must have shape (B, {n}) or ({n},), got {tuple(x.shape)}")
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
        x = x.astype(self.dtype, copy=False)
        if binary and bool(((x != 0) & (x != 1)).any()):
            raise ValueError(f"{name} must be binary (0 or 1) for Bernoulli units; binarize it first (e.g. x > 0.5)")
        if not binary and not bool(xp.isfinite(x).all()):
            raise ValueError(f"{name} must be finite")
        return x

    def _v(self, v, name: str = "v"):
        return self._batch(v, name, self.n_visible, self.visible == "bernoulli")

    def _h(self, h, name: str = "h"):
        return self._batch(h, name, self.n_hidden, True)

    def _uniform(self, shape, rng):
        return self.xp.asarray(rng.random(shape), dtype=self.dtype)

    def _scaled(self, v):
        """``v / sigma`` for Gaussian units, ``v`` itself for Bernoulli ones."""
        return v / self.sigma if self.visible == "gaussian" else v

    def _visible_term(self, v):
        """The visible part of the energy, ``-b^T v`` or ``sum (v - b)^2 / (2 sigma^2)``, per sample ``(B,)``."""
        if self.visible == "gaussian":
            return (((v - self.b) / self.sigma) ** 2).sum(axis=1) * 0.5
        return -(v @ self.b)

    # ------------------------------------------------------------- energies

    def energy(self, v, h):
        """``E(v, h)`` per sample: ``v`` ``(B, n_visible)``, ``h`` ``(B, n_hidden)`` -> ``(B,)``."""
        v, h = self._v(v), self._h(h)
        if v.shape[0] != h.shape[0]:
            raise ValueError(f"v and h must have the same batch size, got {v.shape[0]} and {h.shape[0]}")
        return self._visible_term(v) - h @ self.c - ((h @ self.W) * self._scaled(v)).sum(axis=1)

    def _free_energy(self, v):
        return self._visible_term(v) - _softplus(self.xp, self._scaled(v) @ self.W.T + self.c).sum(axis=1)

    def free_energy(self, v):
        """``F(v) = -log sum_h exp(-E(v, h))`` per sample ``(B,)`` (closed form)."""
        return self._free_energy(self._v(v))

    # ---------------------------------------------------------- conditionals

    def hidden_probs(self, v):
        """``p(h_j = 1 | v) = sigmoid(c_j + W_j v~)`` ``(B, n_hidden)`` (``v~ = v / sigma`` for Gaussian units)."""
        return self._hidden_probs(self._v(v))

    def _hidden_probs(self, v):
        return _sigmoid(self.xp, self._scaled(v) @ self.W.T + self.c)

    def visible_mean(self, h):
        """``E[v | h]`` ``(B, n_visible)``: ``sigmoid(b + W^T h)``, or ``b + sigma W^T h`` for Gaussian units."""
        return self._visible_mean(self._h(h))

    def _visible_mean(self, h):
        a = h @ self.W
        if self.visible == "gaussian":
            return self.b + self.sigma * a
        return _sigmoid(self.xp, a + self.b)

    def sample_hidden(self, v, seed=None):
        """A binary draw of ``h ~ p(h | v)`` ``(B, n_hidden)``."""
        p = self.hidden_probs(v)
        return (self._uniform(p.shape, self._rng(seed)) < p).astype(self.dtype)

    def sample_visible(self, h, seed=None):
        """A draw of ``v ~ p(v | h)`` ``(B, n_visible)``: binary, or Gaussian around :meth:`visible_mean`."""
        return self._sample_visible(self._h(h), self._rng(seed))

    def _sample_visible(self, h, rng):
        mean = self._visible_mean(h)
        if self.visible == "gaussian":
            return mean + self.sigma * self.xp.asarray(rng.standard_normal(mean.shape), dtype=self.dtype)
        return (self._uniform(mean.shape, rng) < mean).astype(self.dtype)

    def _gibbs(self, v, k: int, rng):
        for _ in range(k):
            p = self._hidden_probs(v)
            h = (self._uniform(p.shape, rng) < p).astype(self.dtype)
            v = self._sample_visible(h, rng)
        return v

    def gibbs(self, v, k: int = 1, seed=None):
        """``k`` full block-Gibbs steps ``v -> h -> v`` from ``v`` ``(B, n_visible)``; returns the last ``v``.

        ``k = 1`` is scikit-learn's ``BernoulliRBM.gibbs``.
        """
        return self._gibbs(self._v(v), check_int(k, "k"), self._rng(seed))

    def sample(self, n_samples: int, steps: int = 1000, seed=None):
        """``n_samples`` independent chains run ``steps`` Gibbs steps from uniform random (or N(b, sigma)) states."""
        n_samples = check_int(n_samples, "n_samples")
        rng = self._rng(seed)
        shape = (n_samples, self.n_visible)
        if self.visible == "gaussian":
            v0 = self.b + self.sigma * self.xp.asarray(rng.standard_normal(shape), dtype=self.dtype)
        else:
            v0 = (self._uniform(shape, rng) < 0.5).astype(self.dtype)
        return self._gibbs(v0, check_int(steps, "steps"), rng)

    # --------------------------------------------------------------- training

    def contrastive_divergence(self, v, *, lr: float = 0.1, k: int = 1, persistent: bool = False,
                               momentum: float = 0.0, weight_decay: float = 0.0, seed=None) -> float:
        """One CD-k (or PCD-k with ``persistent=True``) update on the mini-batch ``v`` ``(B, n_visible)``.

        Gradient of the log-likelihood, estimated as data statistics minus model statistics::

            dW = <p(h|v) v~^T>_data - <p(h|v) v~^T>_model - weight_decay * W
            db = <v - b>/sigma^2 (Gaussian) or <v> (Bernoulli), data - model;  dc = <p(h|v)>_data - model

        The model statistics come from ``k`` Gibbs steps started at the data (CD) or at the persistent
        chains (PCD; created from the first batch, kept in ``self.chains``). Parameters move by
        ``velocity = momentum * velocity + lr * grad``. Returns the batch's reconstruction error
        (:meth:`reconstruction_error`, before the update).
        """
        settings = self._cd_settings(k, lr, momentum, weight_decay)
        return float(self._cd(self._v(v), *settings, persistent, self._rng(seed)))

    @staticmethod
    def _cd_settings(k, lr, momentum, weight_decay):
        momentum = check_nonneg(momentum, "momentum")
        if momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        return check_int(k, "k"), check_positive(lr, "lr"), momentum, check_nonneg(weight_decay, "weight_decay")

    def _cd(self, v, k, lr, momentum, weight_decay, persistent, rng):
        """One update on the validated batch ``v``; returns its reconstruction error as a 0-d array (no sync)."""
        ph_data = self._hidden_probs(v)
        error = ((v - self._visible_mean(ph_data)) ** 2).mean()
        if persistent:
            if self.chains is None:
                self.chains = v.copy()
            v_model = self._gibbs(self.chains, k, rng)
            self.chains = v_model
        else:
            v_model = self._gibbs(v, k, rng)
        ph_model = self._hidden_probs(v_model)
        grads = self._gradients(v, ph_data, v_model, ph_model)
        if weight_decay:
            grads[0] -= weight_decay * self.W
        if self._velocity is None:
            self._velocity = [self.xp.zeros_like(p) for p in (self.W, self.b, self.c)]
        for p, vel, g in zip((self.W, self.b, self.c), self._velocity, grads):
            g *= lr
            if momentum:
                vel *= momentum
                vel += g
            else:
                vel[...] = g
            p += vel
        return error

    def _gradients(self, v_data, ph_data, v_model, ph_model):
        inv_n, inv_m = 1.0 / v_data.shape[0], 1.0 / v_model.shape[0]  # sums times 1/n: cheaper than mean()
        dW = (ph_data.T @ self._scaled(v_data)) * inv_n - (ph_model.T @ self._scaled(v_model)) * inv_m
        db = v_data.sum(axis=0) * inv_n - v_model.sum(axis=0) * inv_m  # <v - b>/sigma^2 = (<v> - b)/sigma^2
        if self.visible == "gaussian":
            db /= self.sigma**2
        dc = ph_data.sum(axis=0) * inv_n - ph_model.sum(axis=0) * inv_m
        return [dW, db, dc]

    def fit(self, data, *, epochs: int = 10, batch_size: int = 10, lr: float = 0.1, k: int = 1,
            persistent: bool = False, momentum: float = 0.0, weight_decay: float = 0.0, seed=None,
            callback=None) -> dict:
        """Train on ``data`` ``(N, n_visible)`` for ``epochs`` shuffled passes of :meth:`contrastive_divergence`.

        Unlike scikit-learn's ``BernoulliRBM.fit`` the training settings are arguments here, not
        constructor parameters. ``callback(rbm, epoch)`` (optional) runs after each epoch; what it
        returns (if not None) is collected in ``history["callback"]``. Returns
        ``{"reconstruction_error": [per epoch], "callback": [...]}``. Warns
        (:class:`~ann.warnings.NonFiniteLossWarning`) when an epoch's error is not finite.
        """
        data = self._v(data, "data")
        epochs = check_int(epochs, "epochs")
        batch_size = check_int(batch_size, "batch_size")
        settings = self._cd_settings(k, lr, momentum, weight_decay)
        rng = self._rng(seed)
        history = {"reconstruction_error": [], "callback": []}
        n = data.shape[0]
        for epoch in range(epochs):
            order = self.xp.asarray(rng.permutation(n))
            error = 0.0
            for start in range(0, n, batch_size):
                batch = data[order[start:start + batch_size]]
                error = error + self._cd(batch, *settings, persistent, rng) * batch.shape[0]
            history["reconstruction_error"].append(float(error) / n)
            if not np.isfinite(history["reconstruction_error"][-1]):
                warnings.warn(f"RBM training diverged in epoch {epoch + 1} (non-finite reconstruction error); "
                              "lower lr or momentum", NonFiniteLossWarning, stacklevel=2)
            if callback is not None:
                out = callback(self, epoch)
                if out is not None:
                    history["callback"].append(out)
        return history

    # ---------------------------------------------------------------- metrics

    def reconstruct(self, v):
        """Mean-field reconstruction ``E[v | h = p(h | v)]`` ``(B, n_visible)``."""
        return self._visible_mean(self._hidden_probs(self._v(v)))

    def reconstruction_error(self, v) -> float:
        """Mean squared error between ``v`` and :meth:`reconstruct` (over samples and units)."""
        v = self._v(v)
        return float(((v - self._visible_mean(self._hidden_probs(v))) ** 2).mean())

    def pseudo_log_likelihood(self, v):
        """``sum_i log p(v_i | v_-i)`` per sample ``(B,)``, exact over every unit (Bernoulli visible only).

        ``log p(v_i | v_-i) = log sigmoid(F(v with unit i flipped) - F(v))`` (Besag 1975). scikit-learn's
        ``score_samples`` estimates the same sum from one random unit; this is the full sum.
        """
        if self.visible != "bernoulli":
            raise ValueError("pseudo_log_likelihood needs Bernoulli visible units (visible='bernoulli')")
        v = self._v(v)
        xp = self.xp
        f = self._free_energy(v)
        pre = v @ self.W.T + self.c  # (B, n_hidden); flipping unit i shifts it by (1 - 2 v_i) W[:, i]
        total = xp.zeros(v.shape[0], dtype=self.dtype)
        for i in range(self.n_visible):
            sign = 1 - 2 * v[:, i]
            f_flip = -(v @ self.b + sign * self.b[i]) - _softplus(xp, pre + sign[:, None] * self.W[:, i]).sum(axis=1)
            total += -_softplus(xp, f - f_flip)  # log sigmoid(x) = -softplus(-x)
        return total

    def log_partition(self) -> float:
        """The exact ``log Z`` by enumerating the smaller layer (at most :data:`MAX_ENUMERATED_UNITS` units).

        Sums ``exp(-F)`` over every state of that layer (the other one summed, or for Gaussian
        units integrated, in closed form) in chunks, with log-sum-exp: no overflow.
        """
        xp = self.xp
        enumerate_hidden = self.visible == "gaussian" or self.n_hidden <= self.n_visible
        n = self.n_hidden if enumerate_hidden else self.n_visible
        if n > MAX_ENUMERATED_UNITS:
            raise ValueError(f"log_partition enumerates 2**{n} states; it needs the "
                             f"{'hidden' if enumerate_hidden else 'smaller'} layer to have at most "
                             f"{MAX_ENUMERATED_UNITS} units (n_visible={self.n_visible}, n_hidden={self.n_hidden})")
        parts = []
        for start in range(0, 1 << n, _CHUNK):
            states = binary_states(n, start, min(1 << n, start + _CHUNK), xp, self.dtype)
            if not enumerate_hidden:
                neg_f = -self._free_energy(states)
            elif self.visible == "bernoulli":  # sum over v in closed form: -F(h) = c^T h + sum softplus(b + W^T h)
                neg_f = states @ self.c + _softplus(xp, states @ self.W + self.b).sum(axis=1)
            else:  # Gaussian integral over v: c^T h + sum_i (b_i a_i / sigma_i + a_i^2 / 2), a = W^T h
                a = states @ self.W
                neg_f = states @ self.c + (self.b * a / self.sigma + 0.5 * a * a).sum(axis=1)
            parts.append(_logsumexp(xp, neg_f))
        log_z = float(_logsumexp(xp, xp.stack(parts)))
        if self.visible == "gaussian":
            log_z += float(xp.log(self.sigma).sum()) + 0.5 * self.n_visible * math.log(2 * math.pi)
        return log_z

    def log_likelihood(self, v, log_z: float | None = None):
        """Exact ``log p(v) = -F(v) - log Z`` per sample ``(B,)`` (``log_z``: from :meth:`log_partition`)."""
        v = self._v(v)
        if log_z is None:
            log_z = self.log_partition()
        return -self._free_energy(v) - log_z

    def __repr__(self) -> str:
        return (f"RBM(n_visible={self.n_visible}, n_hidden={self.n_hidden}, visible={self.visible!r}, "
                f"dtype={self.dtype}, backend={'cupy' if is_cupy_array(self.W) else 'numpy'})")
