"""Layers with PyTorch's names and state-dict naming (see :class:`Module`).

The core layers are imported eagerly. The sequence layers of the sibling
modules (``ann.nn.recurrent``: ``LSTM``, ``GRU``, ...; ``ann.nn.attention``,
``ann.nn.transformer``, ``ann.nn.ssm``, ``ann.nn.rwkv``, ``ann.nn.seq2seq``)
are reachable as ``ann.nn.<Name>`` too, imported on first access.
"""

import importlib

from .activation import *  # noqa: F401,F403
from .activation import __all__ as _act_all
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all
from .module import Module, Parameter

__all__ = ["Module", "Parameter", *_layers_all, *_act_all]

_LAZY_SUBMODULES = ("recurrent", "attention", "transformer", "ssm", "rwkv", "seq2seq")


def __getattr__(name: str):
    if name.startswith("_"):
        raise AttributeError(name)
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    for sub in _LAZY_SUBMODULES:
        try:
            module = importlib.import_module(f"{__name__}.{sub}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{sub}":
                continue
            raise
        if name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
