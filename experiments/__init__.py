"""experiments: runnable studies behind the ``neuro`` command.

``neuro list`` lists them, ``neuro run NAME`` runs one into
``results/<NAME>/<timestamp>/``. Register a new study with
:func:`experiments.registry.experiment` in a module of
:mod:`experiments.studies`.
"""

from neuro.version import __version__
from .registry import DEFAULT_EXPERIMENT, Context, all_experiments, experiment, get, run_experiment

__all__ = ["DEFAULT_EXPERIMENT", "Context", "all_experiments", "experiment", "get", "run_experiment"]
