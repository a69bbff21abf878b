"""Trained readouts: ridge regression, recursive least squares (online / FORCE), softmax.

All follow scikit-learn's shapes: features ``X`` ``(n_samples, n_features)``
(a sequence ``(T, N)`` or a batch ``(B, T, N)`` is flattened over its leading
axes), targets ``y`` ``(n_samples, n_outputs)`` or ``(n_samples,)``, learned
``coef_`` ``(n_outputs, n_features)`` and ``intercept_`` ``(n_outputs,)``, so
``predict(X) = X @ coef_.T + intercept_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse

from neuro.backend import asnumpy

from neuro.validation import as_float_array, check_int, check_positive
from .estimator import Estimator, NotFittedError

__all__ = ["RLS", "Ridge", "SoftmaxReadout"]


def _features(X: Any, name: str = "X") -> np.ndarray:
    if scipy.sparse.issparse(X):
        raise TypeError(f"{name} is a scipy.sparse matrix; the readouts take dense arrays (use {name}.toarray())")
    X = as_float_array(asnumpy(X) if not isinstance(X, list) else X, name, np.float64, ndims=(1, 2, 3))
    if X.ndim == 1:
        X = X[:, None]
    if X.shape[-1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required ({name})")
    X = X.reshape(-1, X.shape[-1])
    if X.shape[0] == 0:
        raise ValueError(f"{name} has 0 samples; at least 1 is required")
    return X


def _check_n_features(X2: np.ndarray, estimator: Any, n: int | None = None) -> None:
    n = estimator.n_features_in_ if n is None else n
    if X2.shape[-1] != n:
        raise ValueError(f"X has {X2.shape[-1]} features, but {type(estimator).__name__} is expecting {n} features as input")


def _check_widths(X2: np.ndarray, y2: np.ndarray, n_features: int, n_outputs: int, estimator: Any) -> None:
    """Later ``partial_fit`` data must have the widths of the first (scikit-learn's wording for X)."""
    _check_n_features(X2, estimator, n_features)
    if y2.shape[1] != n_outputs:
        raise ValueError(f"y has {y2.shape[1]} outputs, but {type(estimator).__name__} was fitted with {n_outputs}")


def _pair(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Flattened ``(n, N)`` features and ``(n, O)`` targets; the bool says ``y`` was 1-D."""
    if y is None:
        raise ValueError("this readout requires y to be passed, but the target y is None")
    X2 = _features(X)
    y_arr = as_float_array(asnumpy(y), "y", np.float64, ndims=(1, 2, 3))
    flat = y_arr.ndim == 1
    y2 = y_arr[:, None] if flat else y_arr.reshape(-1, y_arr.shape[-1])
    if y2.shape[0] != X2.shape[0]:
        raise ValueError(f"X and y must have the same number of samples, got {X2.shape[0]} and {y2.shape[0]}")
    return X2, y2, flat


def _check_bool(value: Any, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


class _Linear(Estimator):
    """Shared prediction code of the linear readouts."""

    # fitted attributes exist on the instance only once fitted (scikit-learn's convention); reads before see None
    coef_: np.ndarray | None = None
    intercept_: np.ndarray | None = None
    _flat = False

    @property
    def n_features_in_(self) -> int:
        """Number of features seen in fit (``AttributeError`` before, as scikit-learn)."""
        if self.coef_ is None:
            raise AttributeError(f"this {type(self).__name__} is not fitted yet, so it has no n_features_in_")
        return self.coef_.shape[1]

    def __sklearn_is_fitted__(self) -> bool:
        return self.coef_ is not None or getattr(self, "_stale", False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _forget(self) -> None:
        vars(self).pop("coef_", None)
        vars(self).pop("intercept_", None)

    def _check_fitted(self):
        if getattr(self, "_stale", False):
            self.solve()
        if self.coef_ is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def predict(self, X: Any) -> np.ndarray:
        """Outputs ``X @ coef_.T + intercept_``: ``(..., O)`` for features ``(..., N)`` (``(...,)`` if fitted on 1-D y)."""
        self._check_fitted()
        arr = as_float_array(asnumpy(X), "X", np.float64, ndims=(1, 2, 3))
        if arr.ndim == 1:
            arr = arr[None, :] if arr.shape[0] == self.coef_.shape[1] and self.coef_.shape[1] > 1 else arr[:, None]
        _check_n_features(arr, self)
        out = arr @ self.coef_.T + self.intercept_
        return out[..., 0] if self._flat else out


class Ridge(_Linear):
    """Ridge (Tikhonov) regression with an unpenalized intercept, accumulated over many sequences.

    Minimizes ``sum ||y - X w - b||^2 + ridge ||w||^2`` (the intercept ``b``
    is not penalized, as in scikit-learn and ReservoirPy). :meth:`partial_fit`
    only adds ``X^T X``, ``X^T y`` and the sums to running totals (in float64,
    around a shift point for accuracy), so long data never need to sit in
    memory at once; the weights are solved lazily from the totals with a
    Cholesky factorization (``scipy.linalg.cho_factor``), falling back to a
    least-squares solve (``scipy.linalg.lstsq``, minimum norm) when the
    system is singular (``ridge = 0`` with collinear features).

    Parameters
    ----------
    ridge : float >= 0, the L2 penalty.
    fit_intercept : bool, learn ``intercept_`` (else it is 0).
    """

    def __init__(self, ridge: float = 1e-6, *, fit_intercept: bool = True):
        self.ridge = ridge
        self.fit_intercept = fit_intercept
        self._validate_params()
        self.reset()

    def _validate_params(self) -> None:
        check_positive(self.ridge, "ridge", allow_zero=True)
        _check_bool(self.fit_intercept, "fit_intercept")

    def reset(self) -> "Ridge":
        """Forget everything accumulated."""
        self._n = 0
        self._shift = self._sxx = self._sxy = self._sx = self._sy = None
        self._stale = False
        self._forget()
        return self

    def partial_fit(self, X: Any, y: Any) -> "Ridge":
        """Add samples ``X`` ``(n, N)`` (or ``(T, N)``, ``(B, T, N)``) with targets ``y``, then solve."""
        self.accumulate(X, y)
        self.solve()
        return self

    def accumulate(self, X: Any, y: Any) -> "Ridge":
        """Add samples to the running totals without solving (call :meth:`solve` after the last batch)."""
        X2, y2, flat = _pair(X, y)
        if self._n:
            _check_widths(X2, y2, self._sxx.shape[0], self._sxy.shape[1], self)
        elif X2.shape[0]:
            self._shift = X2.mean(axis=0) if self.fit_intercept else np.zeros(X2.shape[1])
            self._sxx = np.zeros((X2.shape[1], X2.shape[1]))
            self._sxy = np.zeros((X2.shape[1], y2.shape[1]))
            self._sx = np.zeros(X2.shape[1])
            self._sy = np.zeros(y2.shape[1])
            self._flat = flat
        if X2.shape[0] == 0:
            return self
        Xc = X2 - self._shift
        self._sxx += Xc.T @ Xc
        self._sxy += Xc.T @ y2
        self._sx += Xc.sum(axis=0)
        self._sy += y2.sum(axis=0)
        self._n += X2.shape[0]
        self._stale = True
        return self

    def fit(self, X: Any, y: Any) -> "Ridge":
        """Fit on ``X`` ``(n, N)`` / ``(T, N)`` / ``(B, T, N)`` and ``y`` with matching leading axes."""
        return self.reset().partial_fit(X, y)

    def solve(self) -> "Ridge":
        """Solve for ``coef_`` and ``intercept_`` from the totals accumulated so far."""
        if not self._n:
            raise RuntimeError("Ridge has no samples; call fit, partial_fit or accumulate first")
        if not self._stale:
            return self
        n = self._n
        sxx, sxy = self._sxx.copy(), self._sxy.copy()
        if self.fit_intercept:
            mx, my = self._sx / n, self._sy / n  # mx is relative to the shift point
            sxx -= n * np.outer(mx, mx)
            sxy -= n * np.outer(mx, my)
        A = sxx + self.ridge * np.eye(sxx.shape[0])
        try:
            w = scipy.linalg.cho_solve(scipy.linalg.cho_factor(A, check_finite=False), sxy, check_finite=False)
        except scipy.linalg.LinAlgError:
            w = scipy.linalg.lstsq(A, sxy, check_finite=False)[0]
        if self.fit_intercept:
            intercept = my - (mx + self._shift) @ w
        else:
            intercept = np.zeros(sxy.shape[1])
        self.coef_ = w.T.copy()
        self.intercept_ = intercept
        self._stale = False
        return self


class RLS(_Linear):
    """Recursive least squares: an online linear readout, updated one sample at a time.

    With ``P0 = I / alpha`` and forgetting factor ``forgetting`` (``lambda``),
    each sample ``(x, y)`` (``x`` augmented with a constant 1 when
    ``fit_intercept``) does::

        k = P x / (lambda + x^T P x);  e = y - w x;  w += e k^T;  P = (P - k x^T P) / lambda

    With ``lambda = 1`` the weights after ``n`` samples equal the ridge
    solution ``(X^T X + alpha I)^{-1} X^T y`` on the augmented features (the
    intercept is penalized by ``alpha`` here, unlike :class:`Ridge`). Used
    while the network's own output is fed back, this is FORCE learning
    (Sussillo & Abbott 2009; see :meth:`reservoirs.ESN.fit_online`).

    Parameters
    ----------
    alpha : float > 0, the initial regularization (``P0 = I / alpha``); FORCE uses ~1.
    forgetting : float in (0, 1], 1 for no forgetting.
    fit_intercept : bool.
    """

    def __init__(self, alpha: float = 1.0, *, forgetting: float = 1.0, fit_intercept: bool = True):
        self.alpha = alpha
        self.forgetting = forgetting
        self.fit_intercept = fit_intercept
        self._validate_params()
        self.reset()

    def _validate_params(self) -> None:
        check_positive(self.alpha, "alpha")
        if check_positive(self.forgetting, "forgetting") > 1.0:
            raise ValueError(f"forgetting must be in (0, 1], got {self.forgetting}")
        _check_bool(self.fit_intercept, "fit_intercept")

    def reset(self) -> "RLS":
        """Forget the weights and ``P``."""
        self._w = None  # (O, N + intercept)
        self._P = None
        self._forget()
        return self

    def initialize(self, n_features: int, n_outputs: int) -> "RLS":
        """Zero weights and ``P = I / alpha`` for ``n_features`` inputs and ``n_outputs`` outputs."""
        n_features = check_int(n_features, "n_features")
        n_outputs = check_int(n_outputs, "n_outputs")
        m = n_features + self.fit_intercept
        self._w = np.zeros((n_outputs, m))
        self._P = np.eye(m) / self.alpha
        self._publish()
        return self

    def _publish(self):
        n = self._w.shape[1] - self.fit_intercept
        self.coef_ = self._w[:, :n]
        self.intercept_ = self._w[:, n] if self.fit_intercept else np.zeros(self._w.shape[0])

    def update(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """One RLS step on one sample ``x`` ``(N,)`` with target ``y`` ``(O,)``; returns the prediction made before it."""
        if self.fit_intercept:
            x = np.append(x, 1.0)
        P, w, lam = self._P, self._w, self.forgetting
        Px = P @ x
        k = Px / (lam + x @ Px)
        prior = w @ x
        w += np.outer(y - prior, k)
        P -= np.outer(k, Px)
        if lam != 1.0:
            P /= lam
        return prior

    def partial_fit(self, X: Any, y: Any) -> np.ndarray:
        """Update on each row of ``X`` ``(n, N)`` with ``y`` ``(n, O)`` in order; returns the ``(n, O)`` prior predictions."""
        X2, y2, flat = _pair(X, y)
        if self._w is None:
            self.initialize(X2.shape[1], y2.shape[1])
            self._flat = flat
        else:
            _check_widths(X2, y2, self.coef_.shape[1], self._w.shape[0], self)
        out = np.empty_like(y2)
        for i in range(X2.shape[0]):
            out[i] = self.update(X2[i], y2[i])
        return out[:, 0] if self._flat else out

    def fit(self, X: Any, y: Any) -> "RLS":
        """Reset, then :meth:`partial_fit` over all samples."""
        self.reset().partial_fit(X, y)
        return self


class SoftmaxReadout(Estimator):
    """Multinomial logistic (softmax) regression for classification readouts.

    Minimizes ``mean_i -log p(c_i | x_i) + (l2 / 2) ||coef_||^2`` (intercept
    not penalized), the objective of scikit-learn's ``LogisticRegression``
    with ``C = 1 / (n_samples * l2)``. Classes are the sorted unique labels.

    Parameters
    ----------
    l2 : float >= 0, the weight penalty.
    solver : ``"lbfgs"`` (default: ``scipy.optimize`` L-BFGS on the exact
        gradient, converges to the optimum) or ``"ann"`` (full-batch
        ``ann.optim.Adam`` on ``ann.functional.cross_entropy`` with ``ann``'s
        autograd; the same objective, reached to optimizer tolerance).
    max_iter : int, iterations (L-BFGS iterations or Adam steps).
    tol : float, gradient tolerance (infinity norm) to stop at.
    lr : float, Adam's learning rate (``solver="ann"`` only).
    """

    SOLVERS = ("lbfgs", "ann")
    _estimator_type = "classifier"
    coef_: np.ndarray | None = None  # (n_classes, N); set by fit (on the instance)
    intercept_: np.ndarray | None = None
    classes_: np.ndarray | None = None

    def __init__(
        self, l2: float = 1e-4, *, solver: str = "lbfgs", max_iter: int = 1000, tol: float = 1e-10, lr: float = 0.05
    ):
        self.l2 = l2
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.lr = lr
        self._validate_params()

    def _validate_params(self) -> None:
        check_positive(self.l2, "l2", allow_zero=True)
        if self.solver not in self.SOLVERS:
            raise ValueError(f"solver must be one of {self.SOLVERS}, got {self.solver!r}")
        check_int(self.max_iter, "max_iter")
        check_positive(self.tol, "tol")
        check_positive(self.lr, "lr")

    def _loss(self, theta, X, Y):
        n, d = X.shape
        k = Y.shape[1]
        W = theta[: k * d].reshape(k, d)
        b = theta[k * d:]
        import scipy.special  # here, not at the top: only this readout needs it (import cost)

        logits = X @ W.T + b
        logp = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)
        loss = -np.sum(Y * logp) / n + 0.5 * self.l2 * np.sum(W * W)
        G = (np.exp(logp) - Y) / n
        grad = np.concatenate([(G.T @ X + self.l2 * W).ravel(), G.sum(axis=0)])
        return loss, grad

    def fit(self, X: Any, y: Any) -> "SoftmaxReadout":
        """Fit on features ``X`` ``(n, N)`` and labels ``y`` ``(n,)`` (integers, strings, or any sortable type).

        ``ValueError`` for continuous (non-integral float) labels, as scikit-learn's classifiers.
        """
        X2 = _features(X)
        if y is None:
            raise ValueError("SoftmaxReadout requires y to be passed, but the target y is None")
        labels = np.asarray(asnumpy(y)).reshape(-1)
        if labels.shape[0] != X2.shape[0]:
            raise ValueError(f"X and y must have the same number of samples, got {X2.shape[0]} and {labels.shape[0]}")
        if labels.dtype.kind == "f" and not np.all(np.isfinite(labels) & (labels == np.round(labels))):
            raise ValueError("Unknown label type: continuous; y must hold class labels (integers or strings)")
        classes, idx = np.unique(labels, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y must hold at least two classes, got 1 class ({classes[0]!r})")
        self.classes_ = classes
        k, d = classes.size, X2.shape[1]
        if self.solver == "ann":
            return self._fit_ann(X2, idx, k)
        import scipy.optimize  # here, not at the top: only this readout needs it (0.1 s to import)

        Y = np.eye(k)[idx]
        res = scipy.optimize.minimize(
            self._loss, np.zeros(k * d + k), args=(X2, Y), jac=True, method="L-BFGS-B",
            options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 1e-15},
        )
        self.coef_ = res.x[: k * d].reshape(k, d)
        self.intercept_ = res.x[k * d:]
        self.n_iter_ = int(res.nit)
        return self

    def _fit_ann(self, X: np.ndarray, idx: np.ndarray, k: int) -> "SoftmaxReadout":
        import ann  # imported here: reservoirs stays importable (and light) without it
        import ann.functional as F

        W = ann.Tensor(np.zeros((k, X.shape[1])), requires_grad=True)  # float64 arrays stay float64 in ann
        b = ann.Tensor(np.zeros(k), requires_grad=True)
        opt = ann.optim.Adam([W, b], lr=self.lr)
        Xt = ann.Tensor(X)
        steps = 0
        for steps in range(1, self.max_iter + 1):
            opt.zero_grad()
            loss = F.cross_entropy(Xt @ W.T + b, idx) + 0.5 * self.l2 * (W * W).sum()
            loss.backward()
            if max(np.abs(asnumpy(W.grad)).max(), np.abs(asnumpy(b.grad)).max()) < self.tol:
                break
            opt.step()
        self.coef_ = asnumpy(W.data).copy()
        self.intercept_ = asnumpy(b.data).copy()
        self.n_iter_ = steps
        return self

    @property
    def n_features_in_(self) -> int:
        """Number of features seen in fit (``AttributeError`` before, as scikit-learn)."""
        if self.coef_ is None:
            raise AttributeError("this SoftmaxReadout is not fitted yet, so it has no n_features_in_")
        return self.coef_.shape[1]

    def __sklearn_is_fitted__(self) -> bool:
        return self.coef_ is not None

    def _logits(self, X: Any) -> np.ndarray:
        if self.coef_ is None:
            raise NotFittedError("this SoftmaxReadout is not fitted yet; call fit first")
        X2 = _features(X)
        _check_n_features(X2, self)
        return X2 @ self.coef_.T + self.intercept_

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``(n, n_classes)``; for two classes ``(n,)``, the second class's logit minus the first's.

        The two-class form is scikit-learn's (positive means ``classes_[1]``).
        """
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, columns in the order of ``classes_``."""
        import scipy.special

        return scipy.special.softmax(self._logits(X), axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable label per sample ``(n,)``."""
        return self.classes_[np.argmax(self._logits(X), axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Fraction of correctly classified samples (weighted by ``sample_weight`` ``(n,)`` if given), as scikit-learn."""
        correct = self.predict(X) == np.asarray(asnumpy(y)).reshape(-1)
        if sample_weight is None:
            return float(np.mean(correct))
        weights = as_float_array(asnumpy(sample_weight), "sample_weight", np.float64, ndims=(1,))
        if weights.shape != correct.shape:
            raise ValueError(f"sample_weight must have shape {correct.shape}, got {weights.shape}")
        return float(np.average(correct, weights=weights))
