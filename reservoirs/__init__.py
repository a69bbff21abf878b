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
"""

from neuro.version import __version__
from . import metrics, tasks, weights
from .checks import ReservoirWarning, UnstableReservoirWarning
from .esn import ESN
from .estimator import NotFittedError
from .lsm import LSM
from .readouts import RLS, Ridge, SoftmaxReadout
from .weights import spectral_radius

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
