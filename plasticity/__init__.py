"""plasticity: local learning rules with one interface, and where they attach.

Every weight rule is a small validated spec (``Oja(lr=0.01)``) with
``init_state(shape)``, a pure ``delta(W, pre, post, state)`` (the batch is
averaged) and an in-place ``step(W, pre, post, state)``; weights are
``(n_post, n_pre)``. Rate rules: :class:`Hebb`, :class:`Covariance`,
:class:`Oja`, :class:`Sanger`, :class:`BCM`, :class:`Foldiak`; spike rule:
:class:`STDP` (pair or triplet); constraints (:class:`Clip`,
:class:`SoftBounds`, :class:`RowNorm`, :class:`SumNorm`) compose with any of
them. :func:`train` drives a rate population over a data stream;
:class:`IntrinsicPlasticity` adapts gains and biases; :func:`hebbian_storage`
is the outer-product memory.
"""

from ._checks import PlasticityWarning
from .base import Rule
from .constraints import Clip, Constraint, RowNorm, SoftBounds, SumNorm
from .intrinsic import IntrinsicPlasticity, kl_to_target
from .memory import hebbian_storage, recall
from .rate import BCM, AntiHebbian, Covariance, Foldiak, Hebb, Oja, Sanger
from .stdp import STDP
from .train import TrainResult, activation_function, train

__all__ = [
    "AntiHebbian",
    "BCM",
    "Clip",
    "Constraint",
    "Covariance",
    "Foldiak",
    "Hebb",
    "IntrinsicPlasticity",
    "Oja",
    "PlasticityWarning",
    "RowNorm",
    "Rule",
    "STDP",
    "Sanger",
    "SoftBounds",
    "SumNorm",
    "TrainResult",
    "activation_function",
    "hebbian_storage",
    "kl_to_target",
    "recall",
    "train",
]
