"""Optimizers, learning-rate schedulers and gradient clipping (PyTorch semantics)."""

from . import lr_scheduler
from .clip import clip_grad_norm_, clip_grad_value_
from .lr_scheduler import CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, LRScheduler, MultiStepLR, StepLR
from .optimizer import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Optimizer, RMSprop

__all__ = [
    "Optimizer", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "AdamW", "Adamax",
    "lr_scheduler", "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "LambdaLR",
    "clip_grad_norm_", "clip_grad_value_",
]
