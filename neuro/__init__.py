"""neuro: the array backend, the kernel registry, and the spiking core.

Importing ``neuro`` is cheap: Brian2 and CuPy are imported only when used.
"""

from . import backend
from .backend import array_module, asnumpy, get_backend, make_rng, set_backend, to_device, use_backend

__all__ = [
    "array_module",
    "asnumpy",
    "backend",
    "get_backend",
    "make_rng",
    "set_backend",
    "to_device",
    "use_backend",
]
