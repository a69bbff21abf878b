"""Layers with PyTorch's names and state-dict naming (see :class:`Module`)."""

from .activation import *  # noqa: F401,F403
from .activation import __all__ as _act_all
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all
from .module import Module, Parameter

__all__ = ["Module", "Parameter", *_layers_all, *_act_all]
