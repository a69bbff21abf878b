"""scikit-learn's estimator protocol for the readouts and the ESN, without importing scikit-learn.

``get_params`` / ``set_params`` / ``__repr__`` follow ``sklearn.base.BaseEstimator``
(parameters are the keyword arguments of ``__init__``, stored under their own
names and returned as given), so ``sklearn.base.clone``, ``GridSearchCV`` and
``cross_val_score`` work on them; ``__sklearn_tags__`` and ``score`` import
scikit-learn only when scikit-learn itself calls them (importing
``sklearn.base`` would add almost a second to ``import reservoirs``).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from neuro.backend import asnumpy

__all__ = ["Estimator", "NotFittedError"]


class NotFittedError(RuntimeError, ValueError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``.

    A ``ValueError`` and ``AttributeError`` like ``sklearn.exceptions.NotFittedError``
    (so scikit-learn's checks recognize it), and a ``RuntimeError`` as this
    project raised before.
    """


class Estimator:
    """Mixin: ``get_params``, ``set_params``, ``__repr__`` and scikit-learn tags.

    Subclasses store every ``__init__`` argument unchanged under its own name
    and check them in :meth:`_validate_params` (called by ``__init__`` and by
    :meth:`set_params`, which restores the old values if the new ones fail).
    ``_estimator_type`` is ``"regressor"`` or ``"classifier"``; regressors
    get ``score`` = R^2 (``sklearn.metrics.r2_score``, uniform average over
    outputs), as ``sklearn.base.RegressorMixin``.
    """

    _estimator_type: str = "regressor"

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return sorted(p.name for p in list(sig.parameters.values())[1:] if p.kind not in kinds)

    def _validate_params(self) -> None:
        """Raise ``TypeError``/``ValueError`` naming a parameter whose value is not allowed."""

    def get_params(self, deep: bool = True) -> dict:
        """The constructor arguments, by name (``deep`` is accepted for scikit-learn; nothing here nests)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any):
        """Set constructor arguments by name and check them; returns ``self``.

        ``ValueError`` for a name ``__init__`` does not take; an invalid value
        raises as the constructor would and leaves the object unchanged.
        """
        valid = self._get_param_names()
        for name in params:
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid parameters: {', '.join(valid)}")
        old = self.get_params()
        for name, value in params.items():
            setattr(self, name, value)
        try:
            self._validate_params()
        except (TypeError, ValueError):
            for name, value in old.items():
                setattr(self, name, value)
            raise
        return self

    def __repr__(self) -> str:
        """``Name(arg=value, ...)`` listing the arguments that differ from their defaults (as scikit-learn)."""
        sig = inspect.signature(type(self).__init__)
        changed = []
        for name, value in self.get_params().items():
            default = sig.parameters[name].default
            same = default is value
            if not same:
                try:
                    same = bool(default == value) and type(default) is type(value)
                except Exception:  # arrays compare elementwise
                    same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        classifier = self._estimator_type == "classifier"
        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags() if classifier else None,
            regressor_tags=None if classifier else RegressorTags(),
        )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2 of ``predict(X)`` against ``y`` (``sklearn.metrics.r2_score``, outputs averaged uniformly)."""
        from sklearn.metrics import r2_score

        y_pred = self.predict(X)
        pairs = zip(y, y_pred) if isinstance(y_pred, list) else [(y, y_pred)]
        true, pred = [], []
        for a, b in pairs:
            b = asnumpy(b)
            true.append(asnumpy(a).reshape(-1, b.shape[-1] if b.ndim > 1 else 1))
            pred.append(b.reshape(true[-1].shape))
        return float(r2_score(np.concatenate(true), np.concatenate(pred), sample_weight=sample_weight))
