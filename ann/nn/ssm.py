"""State-space layers: the diagonal LTI :class:`S4D` layer and the selective :class:`Mamba` block.

Both take ``(B, L, d_model)`` batches and run their state recurrences
through :mod:`ann.ssm` (a differentiable parallel scan over time).
:class:`Mamba` has the parameter names and shapes of ``mamba_ssm``'s
``Mamba`` module (``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``,
``A_log``, ``D``, ``out_proj``); :class:`MambaLM` stacks pre-norm residual
Mamba blocks into a language model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuro.backend import ANN_DTYPE, array_module, resolve_dtype
from neuro.validation import check_int

from .. import functional as F
from .. import init
from ..activations import silu, softplus
from ..generator import make_rng
from ..ssm import s4d_discretize, s4d_scan, selective_scan
from ..tensor import Tensor, as_tensor, concatenate
from .layers import Embedding, Linear, Sequential
from .module import Module, Parameter
from .transformer import make_norm

__all__ = ["S4D", "CausalDepthwiseConv1d", "Mamba", "MambaLM", "MambaLayer"]


def _param(shape, dtype) -> Parameter:
    return Parameter(array_module().zeros(shape, dtype=resolve_dtype(dtype, ANN_DTYPE)))


def _log_uniform(rng, low: float, high: float, size) -> np.ndarray:
    if not 0.0 < low <= high:
        raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={low}, dt_max={high}")
    return np.exp(rng.uniform(math.log(low), math.log(high), size=size))


class S4D(Module):
    """A diagonal linear time-invariant SSM layer (S4D, Gu et al. 2022) with real, negative ``A``.

    Per channel ``h`` (``H = d_model`` channels, ``N = d_state`` states each)::

        x'(t) = A x(t) + B u(t),   y(t) = C x(t) + D u(t)

    discretized by zero-order hold with step ``dt = exp(log_dt)``
    (:func:`ann.ssm.s4d_discretize`) and run as a recurrence
    (:func:`ann.ssm.s4d_scan`).

    Parameters ``log_dt`` ``(H,)`` (``dt`` log-uniform in ``[dt_min, dt_max]``),
    ``A_log`` ``(H, N)`` with ``A = -exp(A_log)``, ``B`` ``(H, N)`` (ones),
    ``C`` ``(H, N)`` (``N(0, 1)``) and ``D`` ``(H,)`` (``N(0, 1)``).

    ``init``: ``"real"`` (S4D-Real, ``A_n = -(n + 1)``) or ``"lin"``
    (the real part of S4D-Lin, ``A_n = -1/2`` for all ``n``; this layer keeps
    ``A`` real, so S4D-Lin's imaginary parts ``pi n`` are left out).
    """

    def __init__(self, d_model: int, d_state: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1, init: str = "real", dtype: Any = None, seed=None):
        super().__init__()
        rng = make_rng(seed)
        H, N = check_int(d_model, "d_model"), check_int(d_state, "d_state")
        self.d_model, self.d_state = H, N
        if init == "real":
            a = np.broadcast_to(np.arange(1, N + 1, dtype=np.float64), (H, N))
        elif init == "lin":
            a = np.full((H, N), 0.5)
        else:
            raise ValueError(f"init must be 'real' or 'lin', got {init!r}")
        self.init = init
        self.log_dt = _param((H,), dtype)
        self.log_dt.data[...] = np.log(_log_uniform(rng, dt_min, dt_max, H))
        self.A_log = _param((H, N), dtype)
        self.A_log.data[...] = np.log(a)
        self.B = _param((H, N), dtype)
        self.B.data[...] = 1.0
        self.C = _param((H, N), dtype)
        self.C.data[...] = rng.standard_normal((H, N))
        self.D = _param((H,), dtype)
        self.D.data[...] = rng.standard_normal(H)

    @property
    def A(self) -> Tensor:
        """The continuous-time diagonal ``A = -exp(A_log)``, ``(H, N)``, always negative."""
        return -self.A_log.exp()

    def discretize(self):
        """``(A_bar, B_bar)``, each ``(H, N)``, by zero-order hold."""
        return s4d_discretize(self.log_dt, self.A, self.B)

    def kernel(self, length: int) -> np.ndarray:
        """The convolution kernel ``K[h, k] = sum_n C[h, n] B_bar[h, n] A_bar[h, n]^k``, ``(H, length)`` (no gradient).

        ``y = causal_conv(u, K) + D u`` is the same map as :meth:`forward`.
        """
        A_bar, B_bar = self.discretize()
        xp = array_module(A_bar.data)
        powers = A_bar.data[..., None] ** xp.arange(length)
        return ((self.C.data * B_bar.data)[..., None] * powers).sum(axis=1)

    def forward(self, x):
        """``(B, L, H)`` -> ``(B, L, H)``."""
        x = as_tensor(x)
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (B, L, d_model={self.d_model}), got shape {x.shape}")
        A_bar, B_bar = self.discretize()
        y = s4d_scan(x.transpose(0, 2, 1), A_bar, B_bar, self.C, self.D)
        return y.transpose(0, 2, 1)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_state={self.d_state}, init={self.init!r}"


class CausalDepthwiseConv1d(Module):
    """Depthwise causal convolution over time: ``y[b, c, t] = bias[c] + sum_k weight[c, 0, k] * x[b, c, t - K + 1 + k]``.

    Equal to ``torch.nn.Conv1d(C, C, K, groups=C, padding=K - 1)`` with the
    output cut to the first ``L`` steps: output ``t`` sees inputs ``<= t`` only.
    ``weight`` ``(C, 1, K)`` and ``bias`` ``(C,)`` initialized as PyTorch
    (``U(-1/sqrt(K), 1/sqrt(K))``). Input and output ``(B, C, L)``.
    """

    def __init__(self, channels: int, kernel_size: int, bias: bool = True, dtype: Any = None, seed=None):
        super().__init__()
        rng = make_rng(seed)
        self.channels = check_int(channels, "channels")
        self.kernel_size = check_int(kernel_size, "kernel_size")
        bound = 1.0 / math.sqrt(self.kernel_size)
        self.weight = init.uniform_(_param((self.channels, 1, self.kernel_size), dtype), -bound, bound, seed=rng)
        if bias:
            self.bias = init.uniform_(_param((self.channels,), dtype), -bound, bound, seed=rng)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != 3 or x.shape[1] != self.channels:
            raise ValueError(f"x must be (B, C={self.channels}, L), got shape {x.shape}")
        K, L = self.kernel_size, x.shape[2]
        if K > 1:
            pad = Tensor(x.xp.zeros(x.shape[:2] + (K - 1,), dtype=x.dtype))
            x = concatenate([pad, x], axis=-1)
        w = self.weight.reshape(self.channels, K)
        out = None
        for k in range(K):
            term = x[:, :, k : k + L] * w[:, k : k + 1]
            out = term if out is None else out + term
        if self.bias is not None:
            out = out + self.bias.reshape(self.channels, 1)
        return out


class Mamba(Module):
    """The Mamba block (Gu & Dao 2023): gated selective SSM with a causal depthwise convolution.

    ``(B, L, d_model)`` -> ``(B, L, d_model)``::

        x, z   = split(in_proj(u))                         # (B, L, d_inner) each
        x      = silu(conv1d(x))                           # causal, depthwise, kernel d_conv
        dt, B, C = split(x_proj(x), [dt_rank, N, N])
        dt     = dt_proj.weight @ dt                       # (B, d_inner, L); bias added inside the scan
        y      = selective_scan(x, dt, A=-exp(A_log), B, C, D, z=z,
                                delta_bias=dt_proj.bias, delta_softplus=True)
        out    = out_proj(y)

    Parameters (names and shapes of ``mamba_ssm.Mamba``): ``in_proj.weight``
    ``(2 d_inner, d_model)``, ``conv1d.weight`` ``(d_inner, 1, d_conv)``,
    ``conv1d.bias``, ``x_proj.weight`` ``(dt_rank + 2N, d_inner)``,
    ``dt_proj.weight`` ``(d_inner, dt_rank)``, ``dt_proj.bias``, ``A_log``
    ``(d_inner, N)``, ``D`` ``(d_inner,)``, ``out_proj.weight``. ``d_inner =
    expand * d_model``; ``dt_rank="auto"`` is ``ceil(d_model / 16)``.
    Initialization as ``mamba_ssm``: ``A = -(1..N)`` per channel, ``D = 1``,
    ``softplus(dt_proj.bias)`` log-uniform in ``[dt_min, dt_max]`` (floored at
    ``dt_init_floor``), ``dt_proj.weight`` ``U(+-dt_rank^-1/2 * dt_scale)``.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        dtype: Any = None,
        seed=None,
    ):
        super().__init__()
        rng = make_rng(seed)
        self.d_model = check_int(d_model, "d_model")
        self.d_state = check_int(d_state, "d_state")
        self.d_conv = check_int(d_conv, "d_conv")
        self.d_inner = check_int(expand, "expand") * self.d_model
        self.dt_rank = math.ceil(self.d_model / 16) if dt_rank == "auto" else check_int(dt_rank, "dt_rank")
        Di, N, R = self.d_inner, self.d_state, self.dt_rank
        self.in_proj = Linear(self.d_model, 2 * Di, bias=bias, dtype=dtype, seed=rng)
        self.conv1d = CausalDepthwiseConv1d(Di, self.d_conv, bias=conv_bias, dtype=dtype, seed=rng)
        self.x_proj = Linear(Di, R + 2 * N, bias=False, dtype=dtype, seed=rng)
        self.dt_proj = Linear(R, Di, bias=True, dtype=dtype, seed=rng)
        std = R**-0.5 * dt_scale
        init.uniform_(self.dt_proj.weight, -std, std, seed=rng)
        dt = np.maximum(_log_uniform(rng, dt_min, dt_max, Di), dt_init_floor)
        self.dt_proj.bias.data[...] = dt + np.log(-np.expm1(-dt))  # inverse of softplus
        self.A_log = _param((Di, N), dtype)
        self.A_log.data[...] = np.log(np.arange(1, N + 1, dtype=np.float64))
        self.D = _param((Di,), dtype)
        self.D.data[...] = 1.0
        self.out_proj = Linear(Di, self.d_model, bias=bias, dtype=dtype, seed=rng)

    @property
    def A(self) -> Tensor:
        """``-exp(A_log)``, ``(d_inner, d_state)``."""
        return -self.A_log.exp()

    def forward(self, u):
        """``(B, L, d_model)`` -> ``(B, L, d_model)``."""
        u = as_tensor(u)
        if u.ndim != 3 or u.shape[-1] != self.d_model:
            raise ValueError(f"input must be (B, L, d_model={self.d_model}), got shape {u.shape}")
        Di, N, R = self.d_inner, self.d_state, self.dt_rank
        xz = self.in_proj(u).transpose(0, 2, 1)  # (B, 2 Di, L)
        x, z = xz[:, :Di], xz[:, Di:]
        x = silu(self.conv1d(x))  # (B, Di, L)
        x_dbl = self.x_proj(x.transpose(0, 2, 1))  # (B, L, R + 2N)
        dt = F.linear(x_dbl[..., :R], self.dt_proj.weight).transpose(0, 2, 1)  # (B, Di, L)
        Bm = x_dbl[..., R : R + N].transpose(0, 2, 1)  # (B, N, L)
        Cm = x_dbl[..., R + N :].transpose(0, 2, 1)
        y = selective_scan(x, dt, self.A, Bm, Cm, self.D, z=z, delta_bias=self.dt_proj.bias, delta_softplus=True)
        return self.out_proj(y.transpose(0, 2, 1))

    def initial_state(self, batch: int, xp=np):
        """Zero inference state: ``(conv_state (B, d_inner, d_conv), ssm_state (B, d_inner, d_state))``."""
        dtype = self.A_log.dtype
        return Tensor(xp.zeros((batch, self.d_inner, self.d_conv), dtype)), Tensor(xp.zeros((batch, self.d_inner, self.d_state), dtype))

    def step(self, u, state=None):
        """One token of recurrent inference: ``u`` ``(B, d_model)`` -> ``(out (B, d_model), new_state)``.

        ``state`` is ``(conv_state, ssm_state)`` from :meth:`initial_state` or a
        previous call (None: zeros). Feeding a sequence token by token gives
        :meth:`forward`'s outputs, with constant memory per step.
        """
        u = as_tensor(u)
        if u.ndim != 2 or u.shape[-1] != self.d_model:
            raise ValueError(f"u must be (B, d_model={self.d_model}), got shape {u.shape}")
        conv_state, h = self.initial_state(u.shape[0], u.xp) if state is None else state
        Di, N, R = self.d_inner, self.d_state, self.dt_rank
        xz = self.in_proj(u)
        x, z = xz[:, :Di], xz[:, Di:]
        conv_state = concatenate([conv_state[:, :, 1:], x.reshape(-1, Di, 1)], axis=-1)
        x = (conv_state * self.conv1d.weight.reshape(Di, self.d_conv)).sum(axis=-1)
        if self.conv1d.bias is not None:
            x = x + self.conv1d.bias
        x = silu(x)  # (B, Di)
        x_dbl = self.x_proj(x)
        dt = softplus(F.linear(x_dbl[:, :R], self.dt_proj.weight, self.dt_proj.bias))  # (B, Di)
        Bm, Cm = x_dbl[:, R : R + N], x_dbl[:, R + N :]
        dt3 = dt.reshape(-1, Di, 1)
        h = (dt3 * self.A).exp() * h + dt3 * Bm.reshape(-1, 1, N) * x.reshape(-1, Di, 1)
        y = (h * Cm.reshape(-1, 1, N)).sum(axis=-1) + self.D * x
        y = y * silu(z)
        return self.out_proj(y), (conv_state, h)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_inner={self.d_inner}, d_state={self.d_state}, d_conv={self.d_conv}, dt_rank={self.dt_rank}"


class MambaLayer(Module):
    """Pre-norm residual wrapper: ``x + mixer(norm(x))`` with ``mixer`` a :class:`Mamba`."""

    def __init__(self, d_model: int, norm: str = "rmsnorm", dtype: Any = None, seed=None, **mamba_kw):
        super().__init__()
        self.norm = make_norm(norm, d_model, 1e-5, dtype)
        self.mixer = Mamba(d_model, dtype=dtype, seed=seed, **mamba_kw)

    def forward(self, x):
        return x + self.mixer(self.norm(x))


class MambaLM(Module):
    """A Mamba language model: embedding, ``num_layers`` :class:`MambaLayer` s, final norm, head.

    ``forward(ids)`` maps integer ids ``(B, T)`` to next-token logits ``(B, T, vocab_size)``.
    Extra keywords (``d_state``, ``d_conv``, ``expand``, ...) go to every :class:`Mamba`.
    Parameter names follow ``mamba_ssm``'s ``MixerModel``: ``embedding``,
    ``layers.{i}.norm``, ``layers.{i}.mixer``, ``norm_f``, ``lm_head``.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, num_layers: int = 2, norm: str = "rmsnorm", dtype: Any = None, seed=None, **mamba_kw):
        super().__init__()
        rng = make_rng(seed)
        self.vocab_size = check_int(vocab_size, "vocab_size")
        self.embedding = Embedding(vocab_size, d_model, dtype=dtype, seed=rng)
        self.layers = Sequential(*[MambaLayer(d_model, norm, dtype, rng, **mamba_kw) for _ in range(check_int(num_layers, "num_layers"))])
        self.norm_f = make_norm(norm, d_model, 1e-5, dtype)
        self.lm_head = Linear(d_model, vocab_size, bias=False, dtype=dtype, seed=rng)

    def forward(self, ids):
        ids = ids.data if isinstance(ids, Tensor) else array_module(self.embedding.weight.data).asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"ids must be (B, T) integers, got shape {ids.shape}")
        return self.lm_head(self.norm_f(self.layers(self.embedding(ids))))
