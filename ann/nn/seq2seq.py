"""An encoder-decoder RNN with additive (Bahdanau) attention.

``Seq2Seq`` embeds the source tokens, runs a GRU or LSTM encoder over them,
and decodes one target token per step with a cell of the same kind whose
input is the previous token's embedding joined with an attention context
(Bahdanau, Cho & Bengio, 2015)::

    e_tj  = v . tanh(W_q s_{t-1} + W_k h_j)          (scores over source positions j)
    a_t   = softmax_j(e_tj)   (padding masked out)
    ctx_t = sum_j a_tj h_j
    s_t   = cell([emb(y_{t-1}), ctx_t], s_{t-1})
    logits_t = W_o [s_t, ctx_t] + b_o

Training uses teacher forcing (the true previous token is fed back, with
probability ``teacher_forcing``); :meth:`Seq2Seq.greedy_decode` feeds back its
own argmax. All sizes are in tokens/features; shapes are batch-first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro.backend import ANN_DTYPE, array_module, resolve_dtype
from neuro.validation import check_int

from .. import functional as F
from ..generator import make_rng
from ..tensor import Tensor, concatenate, no_grad, stack, where
from .layers import Embedding, Linear
from .module import Module, Parameter
from .recurrent import GRU, LSTM, GRUCell, LSTMCell

__all__ = ["BahdanauAttention", "Seq2Seq"]



class BahdanauAttention(Module):
    """Additive attention ``score(q, k_j) = v . tanh(W_q q + W_k k_j)``.

    Parameters ``query_proj.weight`` ``(A, query_size)`` (no bias),
    ``key_proj.weight`` ``(A, key_size)``, ``key_proj.bias`` ``(A,)`` and ``v`` ``(A,)``.
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int, dtype: Any = None, seed=None):
        super().__init__()
        rng = make_rng(seed)
        self.attention_size = check_int(attention_size, "attention_size")
        self.query_proj = Linear(query_size, attention_size, bias=False, dtype=dtype, seed=rng)
        self.key_proj = Linear(key_size, attention_size, bias=True, dtype=dtype, seed=rng)
        bound = 1.0 / np.sqrt(attention_size)
        dt = resolve_dtype(dtype, ANN_DTYPE)
        self.v = Parameter(array_module().asarray(rng.uniform(-bound, bound, attention_size), dtype=dt))

    def project_keys(self, keys: Tensor) -> Tensor:
        """``W_k k_j + b`` for every key: ``(B, S, key_size)`` -> ``(B, S, A)``; compute once per source."""
        return self.key_proj(keys)

    def forward(self, query: Tensor, keys: Tensor, projected_keys: Tensor | None = None, mask=None):
        """Attend from ``query`` ``(B, query_size)`` over ``keys`` ``(B, S, key_size)``.

        ``mask`` (optional, boolean ``(B, S)``): True where a key may be attended to
        (each row needs at least one True). Returns ``(context (B, key_size), weights (B, S))``.
        """
        if query.ndim != 2 or keys.ndim != 3 or query.shape[0] != keys.shape[0]:
            raise ValueError(f"query must be (B, query_size) and keys (B, S, key_size); got {query.shape} and {keys.shape}")
        pk = self.project_keys(keys) if projected_keys is None else projected_keys
        q = self.query_proj(query)  # (B, A)
        e = F.tanh(pk + q.reshape(q.shape[0], 1, q.shape[1])) @ self.v  # (B, S)
        if mask is not None:
            m = mask.data if isinstance(mask, Tensor) else mask
            m = array_module(e.data).asarray(m, dtype=bool)
            if m.shape != e.shape:
                raise ValueError(f"mask must have shape (B, S) = {e.shape}, got {m.shape}")
            if not bool(m.any(axis=1).all()):
                raise ValueError("mask must allow at least one source position in every row")
            e = where(m, e, -1e9)  # masked positions get zero weight
        weights = F.softmax(e, axis=-1)
        context = (weights.reshape(weights.shape[0], 1, weights.shape[1]) @ keys).reshape(keys.shape[0], keys.shape[2])
        return context, weights


class Seq2Seq(Module):
    """Encoder-decoder GRU/LSTM with Bahdanau attention, for token sequences.

    Parameters
    ----------
    src_vocab, tgt_vocab : vocabulary sizes (token ids ``0 .. vocab-1``).
    embed_dim, hidden_size : embedding width and recurrent state size.
    attention_size : width of the additive attention (default ``hidden_size``).
    cell : ``"gru"`` (default) or ``"lstm"``.
    num_layers : depth of the encoder and the decoder.
    bos_index : target id fed to the decoder at the first step (start of sequence).
    src_pad_index : optional source id treated as padding: masked out of the attention (the
        encoder still runs over it, so pad at the end and keep pads few, or use equal lengths).
    dtype, seed : parameter dtype (float32) and seed for every initializer and the
        teacher-forcing coin flips.

    Notes
    -----
    Sub-modules: ``src_embed``, ``tgt_embed`` (:class:`Embedding`), ``encoder``
    (:class:`GRU`/:class:`LSTM`), ``decoder_l{k}`` (one :class:`GRUCell`/:class:`LSTMCell`
    per layer; layer 0 reads ``[embedding, context]``), ``attention`` (:class:`BahdanauAttention`), ``out``
    (:class:`Linear` from ``[s_t, ctx_t]`` to ``tgt_vocab`` logits).
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        embed_dim: int = 32,
        hidden_size: int = 64,
        attention_size: int | None = None,
        cell: str = "gru",
        num_layers: int = 1,
        bos_index: int = 0,
        src_pad_index: int | None = None,
        dtype: Any = None,
        seed=None,
    ):
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.src_vocab = check_int(src_vocab, "src_vocab")
        self.tgt_vocab = check_int(tgt_vocab, "tgt_vocab")
        E = check_int(embed_dim, "embed_dim")
        H = check_int(hidden_size, "hidden_size")
        self.num_layers = check_int(num_layers, "num_layers")
        if not 0 <= int(bos_index) < self.tgt_vocab:
            raise ValueError(f"bos_index must be a target id in [0, {self.tgt_vocab - 1}], got {bos_index}")
        self.bos_index = int(bos_index)
        self.src_pad_index = src_pad_index
        self.cell = cell
        self.hidden_size = H
        dtype = resolve_dtype(dtype, ANN_DTYPE)
        rng = make_rng(seed)
        self._rng = rng
        A = H if attention_size is None else check_int(attention_size, "attention_size")
        self.src_embed = Embedding(self.src_vocab, E, dtype=dtype, seed=rng)
        self.tgt_embed = Embedding(self.tgt_vocab, E, dtype=dtype, seed=rng)
        rnn_cls, cell_cls = (GRU, GRUCell) if cell == "gru" else (LSTM, LSTMCell)
        self.encoder = rnn_cls(E, H, num_layers=self.num_layers, batch_first=True, dtype=dtype, seed=rng)
        for k in range(self.num_layers):
            setattr(self, f"decoder_l{k}", cell_cls(E + H if k == 0 else H, H, dtype=dtype, seed=rng))
        self.attention = BahdanauAttention(H, H, A, dtype=dtype, seed=rng)
        self.out = Linear(2 * H, self.tgt_vocab, dtype=dtype, seed=rng)

    # ----------------------------------------------------------- pieces
    def _tokens(self, ids, vocab: int, name: str):
        if isinstance(ids, Tensor):
            arr = ids.data
        else:
            arr = ids if hasattr(ids, "__cuda_array_interface__") else np.asarray(ids)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be integer token ids of shape (B, length), got shape {arr.shape}")
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= vocab):
            raise ValueError(f"{name} ids must be in [0, {vocab - 1}], got range [{int(arr.min())}, {int(arr.max())}]")
        return arr

    def encode(self, src):
        """Run the encoder: ``src`` ``(B, S)`` ids -> ``(memory (B, S, H), state, mask or None)``."""
        src = self._tokens(src, self.src_vocab, "src")
        memory, state = self.encoder(self.src_embed(src))
        mask = None if self.src_pad_index is None else (src != self.src_pad_index)
        return memory, state, mask

    def _layer_states(self, state) -> list:
        L = self.num_layers
        if self.cell == "lstm":
            h, c = state
            return [(h[k], c[k]) for k in range(L)]
        return [state[k] for k in range(L)]

    def _decode_step(self, token_ids, states, memory, projected, mask):
        """One decoder step from the previous tokens ``(B,)``: returns ``(logits (B, V), states, weights (B, S))``."""
        top = states[-1][0] if self.cell == "lstm" else states[-1]
        context, weights = self.attention(top, memory, projected, mask)
        x = concatenate([self.tgt_embed(token_ids), context], axis=-1)
        new_states = []
        for k in range(self.num_layers):
            st = getattr(self, f"decoder_l{k}")(x, states[k])
            new_states.append(st)
            x = st[0] if self.cell == "lstm" else st
        logits = self.out(concatenate([x, context], axis=-1))
        return logits, new_states, weights

    # ------------------------------------------------------------- API
    def forward(self, src, tgt, teacher_forcing: float = 1.0):
        """Teacher-forced decoding for training.

        ``src`` ``(B, S)`` and ``tgt`` ``(B, T)`` integer ids; the decoder sees ``bos_index``
        and then ``tgt[:, t-1]`` (or, with probability ``1 - teacher_forcing`` per step,
        its own previous argmax). Returns the logits ``(B, T, tgt_vocab)`` predicting ``tgt``.
        """
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be a probability in [0, 1], got {teacher_forcing}")
        tgt = self._tokens(tgt, self.tgt_vocab, "tgt")
        memory, state, mask = self.encode(src)
        if tgt.shape[0] != memory.shape[0]:
            raise ValueError(f"src and tgt must have the same batch size, got {memory.shape[0]} and {tgt.shape[0]}")
        projected = self.attention.project_keys(memory)
        states = self._layer_states(state)
        xp = array_module(memory.data)
        prev = xp.full((tgt.shape[0],), self.bos_index, dtype=np.int64)
        outputs = []
        for t in range(tgt.shape[1]):
            logits, states, _ = self._decode_step(prev, states, memory, projected, mask)
            outputs.append(logits)
            if teacher_forcing >= 1.0 or self._rng.random() < teacher_forcing:
                prev = xp.asarray(tgt[:, t])
            else:
                prev = logits.data.argmax(axis=-1)
        return stack(outputs, axis=1)

    def greedy_decode(self, src, max_len: int, return_attention: bool = False):
        """Decode ``max_len`` tokens greedily (feeding back each argmax), without recording gradients.

        Returns the token ids ``(B, max_len)`` (and, with ``return_attention``, the
        attention weights ``(B, max_len, S)``) as arrays.
        """
        max_len = check_int(max_len, "max_len")
        with no_grad():
            memory, state, mask = self.encode(src)
            projected = self.attention.project_keys(memory)
            states = self._layer_states(state)
            xp = array_module(memory.data)
            prev = xp.full((memory.shape[0],), self.bos_index, dtype=np.int64)
            tokens, attn = [], []
            for _ in range(max_len):
                logits, states, weights = self._decode_step(prev, states, memory, projected, mask)
                prev = logits.data.argmax(axis=-1)
                tokens.append(prev)
                attn.append(weights.data)
        out = xp.stack(tokens, axis=1)
        return (out, xp.stack(attn, axis=1)) if return_attention else out
