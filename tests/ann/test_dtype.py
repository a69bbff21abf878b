"""dtype discipline: float32 in, float32 everywhere (every output, every graph value, every gradient).

One test runs every public op of ``ann`` (the tensor primitives and ``Tensor``
operators, every name of ``ann.functional`` and of the activation registry),
every ``ann.nn`` module and every optimizer in float32. It checks the dtype of
each output (with and without gradient recording), of every value recorded in
the graph, of the gradient every backward closure hands to each of its parents
(:func:`ann.tensor._accumulate` casts leaf gradients, which would hide an
intermediate float64 gradient and its float64 matrix products), of the leaf
gradients and of the optimizers' parameters and state.

The names are enumerated from the packages' ``__all__`` and the activation
registry: a new public op or module fails here until it has a case below.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import ann
import ann.functional as F
from ann import activations, nn, optim
from ann.tensor import Tensor, _topological_order, no_grad

F32 = np.float32

# public names that are not float ops, with the reason
NOT_OPS = {
    "Tensor": "the tensor class (its operators have cases below)",
    "manual_seed": "reseeds the default generator", "initial_seed": "returns an int",
    "Size": "a tuple (a tensor's shape)", "ValuesIndices": "a named tuple",
    "as_tensor": "wraps an array, no computation",
    "no_grad": "context manager", "enable_grad": "context manager", "is_grad_enabled": "flag",
    "make_op": "the primitive constructor used by every op",
    "gradcheck": "runs in float64 by design", "GradcheckError": "exception",
    "AnnWarning": "warning class", "NonFiniteLossWarning": "warning class",
    "Module": "abstract base class", "Parameter": "leaf tensor class",
    "Optimizer": "abstract base class",
    "ModuleComponent": "a neuro.Simulator adapter: its ports carry float64 NumPy arrays (the Simulator's convention)",
}


def _x(rng, *shape, positive=False, unit=False):
    a = rng.standard_normal(shape)
    if positive:
        a = np.abs(a) + 0.5
    if unit:
        a = rng.uniform(0.1, 0.9, shape)
    return Tensor(a.astype(F32), requires_grad=True)


def _ids(rng, high, *shape):
    return rng.integers(0, high, shape)


def _attention_qkv(rng, n=7):
    return [_x(rng, 2, n, 4) for _ in range(3)]


# name -> rng -> (callable, args, kwargs); several cases of one name are "name[variant]"
FUNCTION_CASES = {
    "zeros": lambda r: (lambda: ann.zeros((2, 3)) + _x(r, 2, 3), (), {}),
    "ones": lambda r: (lambda: ann.ones((2, 3)) * _x(r, 2, 3), (), {}),
    "concatenate": lambda r: (ann.concatenate, ([_x(r, 2, 3), _x(r, 1, 3)],), {}),
    "stack": lambda r: (ann.stack, ([_x(r, 2, 3), _x(r, 2, 3)],), {"axis": 1}),
    "stack[dim]": lambda r: (ann.stack, ([_x(r, 2, 3), _x(r, 2, 3)],), {"dim": 1}),
    "cat": lambda r: (ann.cat, ([_x(r, 2, 3), _x(r, 2, 2)], 1), {}),
    "split": lambda r: (ann.split, (_x(r, 4, 3), 2), {}),
    "where": lambda r: (ann.where, (r.random((3, 4)) > 0.5, _x(r, 3, 4), 0.0), {}),
    "maximum": lambda r: (ann.maximum, (_x(r, 3, 4), _x(r, 4)), {}),
    "minimum": lambda r: (ann.minimum, (_x(r, 3, 4), 0.5), {}),
    "matmul": lambda r: (ann.matmul, (_x(r, 2, 3, 4), _x(r, 4, 5)), {}),
    "exp": lambda r: (ann.exp, (_x(r, 3, 4),), {}),
    "log": lambda r: (ann.log, (_x(r, 3, 4, positive=True),), {}),
    "sqrt": lambda r: (ann.sqrt, (_x(r, 3, 4, positive=True),), {}),
    "tanh": lambda r: (ann.tanh, (_x(r, 3, 4),), {}),
    "sigmoid": lambda r: (ann.sigmoid, (_x(r, 3, 4),), {}),
    "erf": lambda r: (ann.erf, (_x(r, 3, 4),), {}),
    # ann.functional (the activations come from the registry below)
    "linear": lambda r: (F.linear, (_x(r, 2, 3, 5), _x(r, 4, 5), _x(r, 4)), {}),
    "dropout": lambda r: (F.dropout, (_x(r, 3, 4), 0.3), {"seed": 0}),
    "embedding": lambda r: (F.embedding, (_ids(r, 6, 2, 3), _x(r, 6, 4)), {"padding_idx": 1}),
    "layer_norm": lambda r: (F.layer_norm, (_x(r, 2, 3, 5), 5, _x(r, 5), _x(r, 5)), {}),
    "rms_norm": lambda r: (F.rms_norm, (_x(r, 2, 3, 5), 5, _x(r, 5)), {}),
    "scaled_dot_product_attention": lambda r: (
        F.scaled_dot_product_attention, _attention_qkv(r), {"causal": True, "dropout_p": 0.2, "seed": 0}),
    "scaled_dot_product_attention[mask]": lambda r: (
        F.scaled_dot_product_attention, _attention_qkv(r), {"mask": r.random((7, 7)) > 0.3}),
    "flash_attention": lambda r: (F.flash_attention, _attention_qkv(r), {"causal": True, "block_q": 3, "block_k": 4}),
    "flash_attention[mask]": lambda r: (
        F.flash_attention, _attention_qkv(r), {"mask": r.random((7, 7)) > 0.3, "block_q": 4, "block_k": 3}),
    "linear_recurrence": lambda r: (F.linear_recurrence, (_x(r, 2, 6, unit=True), _x(r, 2, 6), _x(r, 2)), {}),
    "selective_scan": lambda r: (
        F.selective_scan,
        (_x(r, 2, 4, 6), _x(r, 2, 4, 6), Tensor(-np.abs(r.standard_normal((4, 3))).astype(F32) - 0.5, requires_grad=True),
         _x(r, 2, 3, 6), _x(r, 2, 3, 6), _x(r, 4), _x(r, 2, 4, 6)),
        {"delta_bias": _x(r, 4), "delta_softplus": True, "return_last_state": True}),
    "s4d_discretize": lambda r: (
        F.s4d_discretize,
        (_x(r, 4), Tensor(-np.abs(r.standard_normal((4, 3))).astype(F32) - 0.5, requires_grad=True), _x(r, 4, 3)), {}),
    "s4d_scan": lambda r: (F.s4d_scan, (_x(r, 2, 4, 6), _x(r, 4, 3, unit=True), _x(r, 4, 3), _x(r, 4, 3), _x(r, 4)), {}),
    "wkv_recurrent": lambda r: (
        F.wkv_recurrent, (_x(r, 4), _x(r, 4), _x(r, 2, 5, 4), _x(r, 2, 5, 4)), {"return_state": True}),
    "wkv_parallel": lambda r: (F.wkv_parallel, (_x(r, 4), _x(r, 4), _x(r, 2, 5, 4), _x(r, 2, 5, 4)), {}),
    "prelu[channels]": lambda r: (F.prelu, (_x(r, 2, 3, 4), _x(r, 3)), {}),
    "gelu[tanh]": lambda r: (F.gelu, (_x(r, 3, 4),), {"approximate": "tanh"}),
    "cross_entropy": lambda r: (
        F.cross_entropy, (_x(r, 4, 5), _ids(r, 5, 4)), {"weight": _x(r, 5, positive=True), "label_smoothing": 0.1}),
    "cross_entropy[probabilities]": lambda r: (
        F.cross_entropy, (_x(r, 4, 5, 3), Tensor(r.dirichlet(np.ones(5), (4, 3)).transpose(0, 2, 1).astype(F32))), {}),
    "nll_loss": lambda r: (F.nll_loss, (F.log_softmax(_x(r, 4, 5)), _ids(r, 5, 4)), {"weight": _x(r, 5, positive=True)}),
    "binary_cross_entropy": lambda r: (
        F.binary_cross_entropy, (_x(r, 4, 3, unit=True), Tensor(r.random((4, 3)).astype(F32))), {"weight": _x(r, 3)}),
    "binary_cross_entropy_with_logits": lambda r: (
        F.binary_cross_entropy_with_logits, (_x(r, 4, 3), Tensor(r.random((4, 3)).astype(F32))),
        {"weight": _x(r, 3), "pos_weight": _x(r, 3, positive=True)}),
    "mse_loss": lambda r: (F.mse_loss, (_x(r, 4, 3), _x(r, 4, 3)), {}),
    "l1_loss": lambda r: (F.l1_loss, (_x(r, 4, 3), _x(r, 4, 3)), {}),
    "huber_loss": lambda r: (F.huber_loss, (_x(r, 4, 3), _x(r, 4, 3)), {"delta": 0.5}),
    "kl_div": lambda r: (F.kl_div, (F.log_softmax(_x(r, 4, 5)), F.softmax(_x(r, 4, 5))), {"reduction": "batchmean"}),
    "kl_div[log_target]": lambda r: (
        F.kl_div, (F.log_softmax(_x(r, 4, 5)), F.log_softmax(_x(r, 4, 5))), {"log_target": True}),
    "entropy": lambda r: (F.entropy, (r.dirichlet(np.ones(5), 3).astype(F32),), {"base": 2}),
    "cross_entropy_of": lambda r: (F.cross_entropy_of, tuple(r.dirichlet(np.ones(5), 3).astype(F32) for _ in "pq"), {}),
    "kl_divergence": lambda r: (F.kl_divergence, tuple(r.dirichlet(np.ones(5), 3).astype(F32) for _ in "pq"), {"base": 2}),
    "sparse_relu": lambda r: (F.sparse_relu, (_x(r, 3, 4),), {"threshold": 0.1}),
    "energy_loss": lambda r: (F.energy_loss, (_x(r, 4, 5), _ids(r, 5, 4)), {}),
    "energy_perceptron_loss": lambda r: (F.energy_perceptron_loss, (_x(r, 4, 5), _ids(r, 5, 4)), {}),
    "energy_hinge_loss": lambda r: (F.energy_hinge_loss, (_x(r, 4, 5), _ids(r, 5, 4)), {"margin": 0.5}),
    "energy_log_loss": lambda r: (F.energy_log_loss, (_x(r, 4, 5), _ids(r, 5, 4)), {}),
    "energy_square_square_loss": lambda r: (F.energy_square_square_loss, (_x(r, 4, 5), _ids(r, 5, 4)), {}),
    "energy_square_exp_loss": lambda r: (F.energy_square_exp_loss, (_x(r, 4, 5), _ids(r, 5, 4)), {"gamma": 0.5}),
    "energy_nll_loss": lambda r: (F.energy_nll_loss, (_x(r, 4, 5), _ids(r, 5, 4)), {"beta": 2.0}),
}

# Tensor operators and methods (Python scalars, NumPy float64 scalars and float32 tensors as operands)
TENSOR_CASES = {
    "__add__": lambda r: (lambda a, b: a + b + 1.5 + np.float64(2.0), (_x(r, 3, 4), _x(r, 4)), {}),
    "__radd__": lambda r: (lambda a: 1.5 + np.float64(0.5) + a, (_x(r, 3, 4),), {}),
    "__sub__": lambda r: (lambda a, b: a - b - np.float64(0.5), (_x(r, 3, 4), _x(r, 3, 1)), {}),
    "__rsub__": lambda r: (lambda a: np.float64(1.0) - (2.0 - a), (_x(r, 3, 4),), {}),
    "__mul__": lambda r: (lambda a, b: a * b * np.float64(3.0) * 0.5, (_x(r, 3, 4), _x(r, 4)), {}),
    "__rmul__": lambda r: (lambda a: np.float64(2.0) * (0.5 * a), (_x(r, 3, 4),), {}),
    "__truediv__": lambda r: (lambda a, b: a / b / np.float64(3.0), (_x(r, 3, 4), _x(r, 4, positive=True)), {}),
    "__rtruediv__": lambda r: (lambda a: np.float64(1.0) / (2.0 / a), (_x(r, 3, 4, positive=True),), {}),
    "__pow__": lambda r: (lambda a, b: a**2 + a**np.float64(1.5) + a**b, (_x(r, 3, 4, positive=True), _x(r, 3, 4)), {}),
    "__rpow__": lambda r: (lambda a: 2.0**a + np.float64(1.5)**a, (_x(r, 3, 4),), {}),
    "__matmul__": lambda r: (lambda a, b: a @ b, (_x(r, 3, 4), _x(r, 4)), {}),
    "__rmatmul__": lambda r: (lambda a: r.standard_normal(4).astype(F32) @ a, (_x(r, 4, 3),), {}),
    "__neg__": lambda r: (lambda a: -a, (_x(r, 3, 4),), {}),
    "__abs__": lambda r: (abs, (_x(r, 3, 4),), {}),
    "__getitem__": lambda r: (lambda a: a[1:, [0, 2, 2]] + a[0, :3], (_x(r, 3, 4),), {}),
    "astype": lambda r: (lambda a: a.astype(F32), (_x(r, 3, 4),), {}),
    "exp": lambda r: (Tensor.exp, (_x(r, 3, 4),), {}),
    "log": lambda r: (Tensor.log, (_x(r, 3, 4, positive=True),), {}),
    "sqrt": lambda r: (Tensor.sqrt, (_x(r, 3, 4, positive=True),), {}),
    "abs": lambda r: (Tensor.abs, (_x(r, 3, 4),), {}),
    "tanh": lambda r: (Tensor.tanh, (_x(r, 3, 4),), {}),
    "sigmoid": lambda r: (Tensor.sigmoid, (_x(r, 3, 4),), {}),
    "erf": lambda r: (Tensor.erf, (_x(r, 3, 4),), {}),
    "clip": lambda r: (Tensor.clip, (_x(r, 3, 4),), {"min": -0.5, "max": np.float64(0.5)}),
    "clamp": lambda r: (Tensor.clamp, (_x(r, 3, 4),), {"min": -0.5}),
    "sum": lambda r: (Tensor.sum, (_x(r, 3, 4),), {"axis": 1}),
    "mean": lambda r: (Tensor.mean, (_x(r, 3, 4),), {"axis": 0, "keepdims": True}),
    "var": lambda r: (Tensor.var, (_x(r, 3, 4),), {"axis": 1, "ddof": 1}),
    "max": lambda r: (Tensor.max, (_x(r, 3, 4),), {"axis": 1}),
    "max[dim]": lambda r: (lambda a: a.max(dim=1, keepdim=True).values, (_x(r, 3, 4),), {}),
    "sum[dim]": lambda r: (Tensor.sum, (_x(r, 3, 4),), {"dim": 1, "keepdim": True}),
    "view": lambda r: (Tensor.view, (_x(r, 3, 4), 2, 6), {}),
    "permute": lambda r: (Tensor.permute, (_x(r, 2, 3, 4), 2, 0, 1), {}),
    "transpose[swap]": lambda r: (Tensor.transpose, (_x(r, 2, 3, 4), 0, 2), {}),
    "float": lambda r: (Tensor.float, (_x(r, 3, 4),), {}),
    "to": lambda r: (Tensor.to, (_x(r, 3, 4), "cpu", F32), {}),
    "min": lambda r: (Tensor.min, (_x(r, 3, 4),), {}),
    "reshape": lambda r: (Tensor.reshape, (_x(r, 3, 4), 2, 6), {}),
    "transpose": lambda r: (Tensor.transpose, (_x(r, 2, 3, 4), 1, 2, 0), {}),
    "swapaxes": lambda r: (Tensor.swapaxes, (_x(r, 2, 3, 4), 0, 2), {}),
    "T": lambda r: (lambda a: a.T, (_x(r, 3, 4),), {}),
}
# Tensor members that compute nothing differentiable
TENSOR_NOT_OPS = {"backward", "detach", "item", "numpy", "retain_grad", "requires_grad_", "zero_grad",
                  "argmax", "argmin", "long", "tolist", "numel", "dim", "device", "cpu", "cuda",
                  "double",  # float64 by definition
                  "shape", "dtype", "ndim", "size", "is_leaf", "xp", "data", "grad", "requires_grad"}
TENSOR_OPERATORS = ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
                    "__rtruediv__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__", "__neg__", "__abs__",
                    "__getitem__"]


def _module(factory, *inputs, train=True):
    """A case calling the module built by ``factory()`` on ``inputs`` (rng -> arrays/tensors)."""

    def case(r):
        m = factory()
        m.train(train)
        return m, tuple(i(r) if callable(i) else i for i in inputs), {}

    return case


def _xs(*shape, **kw):
    return lambda r: _x(r, *shape, **kw)


def _idx(high, *shape):
    return lambda r: _ids(r, high, *shape)


MODULE_CASES = {
    "Linear": _module(lambda: nn.Linear(5, 3, seed=0), _xs(2, 4, 5)),
    "Sequential": _module(lambda: nn.Sequential(nn.Linear(5, 4, seed=0), nn.GELU(), nn.Linear(4, 3, seed=1)), _xs(2, 5)),
    "Dropout": _module(lambda: nn.Dropout(0.3, seed=0), _xs(3, 4)),
    "Embedding": _module(lambda: nn.Embedding(6, 4, padding_idx=0, seed=0), _idx(6, 2, 3)),
    "LayerNorm": _module(lambda: nn.LayerNorm(5), _xs(2, 3, 5)),
    "RMSNorm": _module(lambda: nn.RMSNorm(5), _xs(2, 3, 5)),
    "MLP": _module(lambda: nn.MLP([5, 4, 3], activation="gelu", dropout=0.2, seed=0), _xs(2, 5)),
    "Identity": _module(nn.Identity, _xs(2, 5)),
    "CrossEntropyLoss": _module(lambda: nn.CrossEntropyLoss(weight=np.ones(4, F32), label_smoothing=0.1), _xs(3, 4), _idx(4, 3)),
    "NLLLoss": _module(nn.NLLLoss, _xs(3, 4), _idx(4, 3)),
    "MSELoss": _module(nn.MSELoss, _xs(3, 4), _xs(3, 4)),
    "L1Loss": _module(nn.L1Loss, _xs(3, 4), _xs(3, 4)),
    "HuberLoss": _module(lambda: nn.HuberLoss(delta=0.5), _xs(3, 4), _xs(3, 4)),
    "BCELoss": _module(nn.BCELoss, _xs(3, 4, unit=True), _xs(3, 4, unit=True)),
    "BCEWithLogitsLoss": _module(lambda: nn.BCEWithLogitsLoss(pos_weight=np.full(4, 2, F32)), _xs(3, 4), _xs(3, 4, unit=True)),
    "KLDivLoss": _module(lambda: nn.KLDivLoss(reduction="batchmean"), _xs(3, 4), _xs(3, 4, unit=True)),
    "Activation": _module(lambda: nn.Activation("leaky_relu", negative_slope=0.2), _xs(2, 5)),
    "PReLU": _module(lambda: nn.PReLU(3), _xs(2, 3, 4)),
    "LeakyReLU": _module(nn.LeakyReLU, _xs(2, 5)),
    "RNN": _module(lambda: nn.RNN(5, 4, num_layers=2, bidirectional=True, batch_first=True, seed=0), _xs(2, 3, 5)),
    "RNN[relu]": _module(lambda: nn.RNN(5, 4, nonlinearity="relu", batch_first=True, seed=0), _xs(2, 3, 5)),
    "LSTM": _module(lambda: nn.LSTM(5, 4, num_layers=2, bidirectional=True, batch_first=True, seed=0), _xs(2, 3, 5)),
    "GRU": _module(lambda: nn.GRU(5, 4, num_layers=2, bidirectional=True, batch_first=True, seed=0), _xs(2, 3, 5)),
    "RNNCell": _module(lambda: nn.RNNCell(5, 4, seed=0), _xs(2, 5), _xs(2, 4)),
    "LSTMCell": _module(lambda: nn.LSTMCell(5, 4, seed=0), _xs(2, 5)),
    "GRUCell": _module(lambda: nn.GRUCell(5, 4, seed=0), _xs(2, 5)),
    "BahdanauAttention": _module(lambda: nn.BahdanauAttention(4, 6, 5, seed=0), _xs(2, 4), _xs(2, 3, 6)),
    "Seq2Seq": _module(lambda: nn.Seq2Seq(7, 9, embed_dim=4, hidden_size=6, seed=0), _idx(7, 2, 5), _idx(9, 2, 4)),
    "Seq2Seq[lstm]": _module(lambda: nn.Seq2Seq(7, 9, embed_dim=4, hidden_size=6, cell="lstm", seed=0),
                             _idx(7, 2, 5), _idx(9, 2, 4)),
    "MultiheadAttention": _module(lambda: nn.MultiheadAttention(8, 2, dropout=0.2, batch_first=True, seed=0), _xs(2, 5, 8)),
    "MultiheadAttention[flash]": _module(lambda: nn.MultiheadAttention(8, 2, batch_first=True, use_flash=True, block_q=2, block_k=3, seed=0),
                                         _xs(2, 5, 8), None, None, None, False),
    "LearnedPositionalEncoding": _module(lambda: nn.LearnedPositionalEncoding(10, 4, seed=0), _xs(2, 3, 4)),
    "SinusoidalPositionalEncoding": _module(lambda: nn.SinusoidalPositionalEncoding(4), _xs(2, 3, 4)),
    "TransformerBlock": _module(lambda: nn.TransformerBlock(8, 2, 16, dropout=0.1, seed=0), _xs(2, 5, 8)),
    "TransformerBlock[causal flash swiglu rmsnorm]": _module(
        lambda: nn.TransformerBlock(8, 2, 16, activation="swiglu", causal=True, norm="rmsnorm", use_flash=True, seed=0),
        _xs(2, 5, 8)),
    "TransformerLM": _module(lambda: nn.TransformerLM(11, d_model=8, nhead=2, num_layers=1, max_len=8, seed=0),
                             _idx(11, 2, 5)),
    "S4D": _module(lambda: nn.S4D(4, d_state=3, seed=0), _xs(2, 6, 4)),
    "CausalDepthwiseConv1d": _module(lambda: nn.CausalDepthwiseConv1d(4, 3, seed=0), _xs(2, 4, 6)),
    "Mamba": _module(lambda: nn.Mamba(8, d_state=4, seed=0), _xs(2, 6, 8)),
    "MambaLayer": _module(lambda: nn.MambaLayer(8, d_state=4, seed=0), _xs(2, 6, 8)),
    "MambaLM": _module(lambda: nn.MambaLM(11, d_model=8, num_layers=1, d_state=4, seed=0), _idx(11, 2, 5)),
    "RWKVTimeMix": _module(lambda: nn.RWKVTimeMix(8, seed=0), _xs(2, 5, 8)),
    "RWKVChannelMix": _module(lambda: nn.RWKVChannelMix(8, seed=0), _xs(2, 5, 8)),
    "RWKVBlock": _module(lambda: nn.RWKVBlock(8, seed=0), _xs(2, 5, 8)),
    "RWKVLM": _module(lambda: nn.RWKVLM(11, d_model=8, num_layers=1, seed=0), _idx(11, 2, 5)),
    "SparseReLU": _module(lambda: nn.SparseReLU(0.1), _xs(3, 6)),
}


def _optimizer(cls, **kw):
    def case(r):
        model = nn.Sequential(nn.Linear(5, 4, seed=0), nn.Tanh(), nn.Linear(4, 3, seed=1))
        return ("optimizer", cls(model.parameters(), **kw), model), (_x(r, 2, 5),), {}

    return case


OPTIMIZER_CASES = {
    "SGD": _optimizer(optim.SGD, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "RMSprop": _optimizer(optim.RMSprop, momentum=0.5, centered=True, weight_decay=1e-2),
    "Adagrad": _optimizer(optim.Adagrad, lr_decay=1e-3, weight_decay=1e-2),
    "Adadelta": _optimizer(optim.Adadelta, weight_decay=1e-2),
    "Adam": _optimizer(optim.Adam, amsgrad=True, weight_decay=1e-2),
    "AdamW": _optimizer(optim.AdamW),
    "Adamax": _optimizer(optim.Adamax, weight_decay=1e-2),
}


def _enumerate() -> dict:
    """Every public op, module and optimizer name, mapped to its case builders (None when a case is missing)."""
    names: dict[str, list] = {}

    def add(key, table, name):
        found = [v for k, v in table.items() if k == name or k.startswith(name + "[")]
        names[key] = found or None

    for name in ann.__all__:
        obj = getattr(ann, name)
        if name not in NOT_OPS and callable(obj) and not inspect.ismodule(obj):
            add(f"ann.{name}", FUNCTION_CASES, name)
    for name in dict.fromkeys(F.__all__):
        if name in activations.names() or name in ("swish", "hard_swish"):
            continue  # covered by the registry below
        add(f"ann.functional.{name}", FUNCTION_CASES, name)
    for name in activations.names():
        found = [v for k, v in FUNCTION_CASES.items() if k.startswith(name + "[")]
        names[f"ann.activations.{name}"] = [_activation_case(name), *found]
    members = {n for n in vars(Tensor) if not n.startswith("_")} | set(TENSOR_OPERATORS)
    for name in sorted(members - TENSOR_NOT_OPS):
        add(f"Tensor.{name}", TENSOR_CASES, name)
    for name in nn.__all__:
        cls = getattr(nn, name)
        if name in NOT_OPS or not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
            continue
        if name not in MODULE_CASES and issubclass(cls, nn.Activation) and cls.__init__ is not nn.Activation.__init__:
            names[f"ann.nn.{name}"] = [_module(cls, _xs(3, 6))]  # parameterless activation module
        else:
            add(f"ann.nn.{name}", MODULE_CASES, name)
    for name in optim.__all__:
        obj = getattr(optim, name)
        if inspect.isclass(obj) and issubclass(obj, optim.Optimizer) and name not in NOT_OPS:
            add(f"ann.optim.{name}", OPTIMIZER_CASES, name)
    return names


def _activation_case(name):
    return lambda r: (activations.get(name), (_x(r, 3, 6),), {})


CASES = _enumerate()


def _tensors(obj):
    """Every Tensor or array in a (nested) result."""
    if isinstance(obj, (Tensor, np.ndarray, np.generic)):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _check_outputs(result, problems, where):
    found = False
    for t in _tensors(result):
        dtype = t.dtype
        if dtype.kind == "f":
            found = True
            if dtype != F32:
                problems.append(f"{where}: output dtype {dtype}")
    if not found:
        problems.append(f"{where}: no floating output")


def _watch_graph(root, problems):
    """Check every recorded value, and wrap every backward closure to check the gradients it returns."""
    for node in _topological_order(root):
        if node.data.dtype != F32:
            problems.append(f"graph value of op {node._op or 'leaf'!r} has dtype {node.data.dtype}")
        if node._backward is None:
            continue

        def checked(g, inner=node._backward, parents=node._parents, op=node._op):
            if g.dtype != F32:
                problems.append(f"op {op!r} receives a {g.dtype} gradient")
            grads = inner(g)
            for p, pg in zip(parents, grads):
                if pg is not None and p.requires_grad and pg.dtype != p.data.dtype:
                    problems.append(f"op {op!r} backward returns a {pg.dtype} gradient for a {p.data.dtype} input")
            return grads

        node._backward = checked


def _run(case, problems):
    rng = np.random.default_rng(0)
    fn, args, kwargs = case(rng)
    optimizer = None
    if isinstance(fn, tuple) and fn[0] == "optimizer":
        _, optimizer, fn = fn
    leaves = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
    leaves += list(fn.parameters()) if isinstance(fn, nn.Module) else []
    with no_grad():
        _check_outputs(fn(*args, **kwargs), problems, "without grad")
    result = fn(*args, **kwargs)
    _check_outputs(result, problems, "with grad")
    outputs = [t for t in _tensors(result) if isinstance(t, Tensor) and t.requires_grad]
    if not outputs:
        return  # a plain-array function (information-theory helpers): outputs checked above
    loss = sum((o * Tensor(rng.standard_normal(o.shape).astype(F32))).sum() for o in outputs)
    _watch_graph(loss, problems)
    loss.backward()
    for leaf in leaves:
        if leaf.grad is not None and leaf.grad.dtype != F32:
            problems.append(f"leaf gradient dtype {leaf.grad.dtype}")
    if optimizer is not None:
        for _ in range(2):
            optimizer.step()
        for p in leaves:
            if p.data.dtype != F32:
                problems.append(f"parameter became {p.data.dtype} after step()")
        for st in optimizer.state.values():
            for key, value in st.items():
                if hasattr(value, "dtype") and value.dtype != F32:
                    problems.append(f"optimizer state {key!r} has dtype {value.dtype}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_stays_float32(name):
    """Outputs, recorded values and gradients of ``name`` stay float32 (every public op, module, optimizer)."""
    cases = CASES[name]
    if cases is None:
        pytest.fail(f"{name} has no case in tests/ann/test_dtype.py: add one (or list it in NOT_OPS with the reason)")
    problems: list = []
    for case in cases:
        _run(case, problems)
    assert not problems, f"{name}: " + "; ".join(dict.fromkeys(problems))
