"""Activation sparsity: measure it (:class:`SparsityRecorder`) and create it (:func:`relufy`).

::

    from ann.sparsity import SparsityRecorder, relufy
    rec = SparsityRecorder(model, eps=1e-3, windows=(1, 4, 16))
    model(x)                      # any number of forward passes
    stats = rec.summary()         # per activation site: zeros, frequencies, dead neurons, windows
    rec.remove()
    changes = relufy(model, activation="relu")   # GELU/SiLU/... -> ReLU, in place
"""

from .recorder import SiteStats, SparsityRecorder, activation_sites
from .relufy import relufy

__all__ = ["SparsityRecorder", "SiteStats", "activation_sites", "relufy"]
