"""experiments: runnable studies behind the ``neuro`` command.

``neuro list`` lists them, ``neuro run NAME`` runs one into
``results/<NAME>/<timestamp>/``; seeds and parameters can be swept
(``--seeds 0-9 --sweep key=a,b``) on this process, a process pool or Dask,
and a run killed half way resumes. Register a new study with
:func:`experiment` in a module of :mod:`experiments.studies` (see
``docs/guide/experiments.md``).
"""

import logging

from neuro.version import __version__

from .config import ConfigError, param
from .executors import DaskExecutor, InlineExecutor, ProcessExecutor
from .jsonio import read_json, write_json
from .registry import DEFAULT_EXPERIMENT, Context, all_experiments, experiment, get
from .report import RunData, build_report, save_figure
from .runner import ExperimentFailed, run_experiment

logging.getLogger("neuro").addHandler(logging.NullHandler())  # quiet unless the application configures logging

__all__ = ["DEFAULT_EXPERIMENT", "ConfigError", "Context", "DaskExecutor", "ExperimentFailed", "InlineExecutor",
           "ProcessExecutor", "RunData", "all_experiments", "build_report", "experiment", "get", "param", "read_json",
           "run_experiment", "save_figure", "write_json"]
