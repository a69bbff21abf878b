"""reservoirs: echo-state networks, readouts, benchmark tasks and metrics.

* :class:`ESN` - a sparse random leaky reservoir (ReservoirPy 0.4's update) with a
  ridge readout: ``run``, ``fit``, ``predict``, ``generate`` (closed loop), ``fit_online`` (RLS / FORCE);
* readouts: :class:`Ridge`, :class:`RLS`, :class:`SoftmaxReadout` (with the ESN, scikit-learn estimators:
  ``get_params``/``set_params``/``score``, ``sklearn.base.clone``);
* :mod:`reservoirs.tasks` (Mackey-Glass, NARMA-10, delayed recall, spike templates) and
  :mod:`reservoirs.metrics` (NRMSE, R^2, memory capacity, separation, kernel quality, ESP checks);
* :class:`LSM` - a liquid state machine on :mod:`neuro`'s spiking engine, with the
  ``LSM.maass2002`` preset (Maass, Natschlaeger & Markram 2002);
* :mod:`reservoirs.weights` - random sparse / orthogonal matrices and ``spectral_radius``.

The public names are loaded on first use (PEP 562), so that ``import reservoirs``
does not pay for SciPy and numba (about half a second) before they are needed.
"""

from neuro.version import __version__

from importlib import import_module

from .checks import ReservoirWarning, UnstableReservoirWarning

#: Public name -> the submodule that defines it (a submodule itself where the name is the module's).
_LAZY = {
    "ESN": "esn",
    "LSM": "lsm",
    "NotFittedError": "estimator",
    "RLS": "readouts",
    "Ridge": "readouts",
    "SoftmaxReadout": "readouts",
    "spectral_radius": "weights",
    "metrics": None,
    "tasks": None,
    "weights": None,
}

__all__ = [
    "ESN",
    "LSM",
    "NotFittedError",
    "RLS",
    "ReservoirWarning",
    "Ridge",
    "SoftmaxReadout",
    "UnstableReservoirWarning",
    "metrics",
    "spectral_radius",
    "tasks",
    "weights",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _LAZY[name]
    value = import_module(f".{name if module is None else module}", __name__)
    if module is not None:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
