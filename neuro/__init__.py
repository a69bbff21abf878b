"""neuro: the array backend, the kernel registry, and the spiking core.

Importing ``neuro`` is cheap: the spiking core (numba kernels) is imported on
first use of one of its names (``neuro.Network``, ``neuro.LIF``, ...), and
Brian2 and CuPy only when used (``neuro.brian2`` is never imported here).
"""

from importlib import import_module

from .version import __version__
from . import backend
from .backend import array_module, asnumpy, get_backend, make_rng, set_backend, to_device, use_backend

# public name -> submodule holding it, imported lazily (PEP 562)
_LAZY = {
    "Network": "network",
    "Population": "populations",
    "LIF": "neurons",
    "LIFCond": "neurons",
    "Izhikevich": "neurons",
    "AdEx": "neurons",
    "AdExCond": "neurons",
    "NeuronModel": "neurons",
    "Projection": "synapses",
    "tsodyks_markram": "synapses",
    "SpikeTimes": "inputs",
    "PoissonInput": "inputs",
    "Current": "inputs",
    "correlated_spike_times": "inputs",
    "SpikeMonitor": "monitors",
    "StateMonitor": "monitors",
    "RateMonitor": "monitors",
    "TraceMonitor": "monitors",
    "Simulator": "simulator",
    "RateReadout": "components",
    "NeuroWarning": "validation",
    "DtWarning": "validation",
    "NonFiniteWarning": "validation",
    "connectivity": None,
}

__all__ = [
    "array_module",
    "asnumpy",
    "backend",
    "get_backend",
    "make_rng",
    "set_backend",
    "to_device",
    "use_backend",
    # spiking core (lazy)
    "AdEx",
    "AdExCond",
    "Current",
    "DtWarning",
    "Izhikevich",
    "LIF",
    "LIFCond",
    "Network",
    "NeuroWarning",
    "NeuronModel",
    "NonFiniteWarning",
    "PoissonInput",
    "Population",
    "Projection",
    "RateMonitor",
    "RateReadout",
    "Simulator",
    "SpikeMonitor",
    "SpikeTimes",
    "StateMonitor",
    "TraceMonitor",
    "connectivity",
    "correlated_spike_times",
    "tsodyks_markram",
]


def __getattr__(name):
    if name in _LAZY:
        module = import_module(f".{_LAZY[name] or name}", __name__)
        value = module if _LAZY[name] is None else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neuro' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
