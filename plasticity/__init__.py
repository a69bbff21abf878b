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
is the outer-product memory. :mod:`plasticity.attach` binds rules to a
``neuro`` projection (:func:`attach_to_network`), a ``neuro.Simulator``
connection (:func:`attach_to_simulator`), an ``ann`` layer
(:func:`step_layer`), an echo-state network (:func:`adapt_esn`) and the
coupling protocol (:class:`PlasticSynapses`).
"""

from neuro.version import __version__
from ._checks import PlasticityWarning
from .attach import (
    ESNAdaptation,
    PlasticSynapses,
    ProjectionPlasticity,
    SimulatorPlasticity,
    adapt_esn,
    attach_to_network,
    attach_to_simulator,
    step_layer,
)
from .base import Rule
from .divergence import DivergenceWatch
from .constraints import Clip, Constraint, RowNorm, SoftBounds, SumNorm
from .intrinsic import IntrinsicPlasticity, kl_to_target
from .memory import hebbian_storage, recall
from .rate import BCM, AntiHebbian, Covariance, Foldiak, Hebb, Oja, Sanger
from .stdp import STDP
from .synapse_index import SynapseIndex
from .train import TrainResult, activation_function, train

__all__ = [
    "DivergenceWatch",
    "AntiHebbian",
    "BCM",
    "Clip",
    "Constraint",
    "Covariance",
    "ESNAdaptation",
    "Foldiak",
    "Hebb",
    "IntrinsicPlasticity",
    "Oja",
    "PlasticSynapses",
    "PlasticityWarning",
    "ProjectionPlasticity",
    "RowNorm",
    "Rule",
    "STDP",
    "Sanger",
    "SimulatorPlasticity",
    "SoftBounds",
    "SumNorm",
    "SynapseIndex",
    "TrainResult",
    "activation_function",
    "adapt_esn",
    "attach_to_network",
    "attach_to_simulator",
    "hebbian_storage",
    "kl_to_target",
    "recall",
    "step_layer",
    "train",
]
