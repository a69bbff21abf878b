"""Seq2Seq with Bahdanau attention: against a PyTorch twin (same names and weights), and learning to reverse digits."""

import numpy as np
import pytest
import torch

import ann.functional as F
from ann.nn.seq2seq import BahdanauAttention, Seq2Seq
from ann.optim import Adam
from ann.tensor import Tensor


class TorchAttention(torch.nn.Module):
    def __init__(self, q, k, a):
        super().__init__()
        self.query_proj = torch.nn.Linear(q, a, bias=False)
        self.key_proj = torch.nn.Linear(k, a)
        self.v = torch.nn.Parameter(torch.zeros(a))

    def forward(self, query, keys, mask=None):
        e = torch.tanh(self.key_proj(keys) + self.query_proj(query)[:, None, :]) @ self.v
        if mask is not None:
            e = e.masked_fill(~mask, float("-inf"))
        w = torch.softmax(e, dim=-1)
        return (w[:, :, None] * keys).sum(1), w


class TorchSeq2Seq(torch.nn.Module):
    """The model written directly in PyTorch, parameter names as ours."""

    def __init__(self, sv, tv, e, h, a, cell, layers, bos, pad):
        super().__init__()
        self.cell, self.layers, self.bos, self.pad = cell, layers, bos, pad
        self.src_embed = torch.nn.Embedding(sv, e)
        self.tgt_embed = torch.nn.Embedding(tv, e)
        rnn, cls = (torch.nn.GRU, torch.nn.GRUCell) if cell == "gru" else (torch.nn.LSTM, torch.nn.LSTMCell)
        self.encoder = rnn(e, h, num_layers=layers, batch_first=True)
        for k in range(layers):
            self.add_module(f"decoder_l{k}", cls(e + h if k == 0 else h, h))
        self.attention = TorchAttention(h, h, a)
        self.out = torch.nn.Linear(2 * h, tv)

    def forward(self, src, tgt):
        memory, state = self.encoder(self.src_embed(src))
        mask = None if self.pad is None else src != self.pad
        if self.cell == "lstm":
            states = [(state[0][k], state[1][k]) for k in range(self.layers)]
        else:
            states = [state[k] for k in range(self.layers)]
        prev = torch.full((src.shape[0],), self.bos, dtype=torch.long)
        logits = []
        for t in range(tgt.shape[1]):
            top = states[-1][0] if self.cell == "lstm" else states[-1]
            ctx, _ = self.attention(top, memory, mask)
            x = torch.cat([self.tgt_embed(prev), ctx], -1)
            for k in range(self.layers):
                states[k] = getattr(self, f"decoder_l{k}")(x, states[k])
                x = states[k][0] if self.cell == "lstm" else states[k]
            logits.append(self.out(torch.cat([x, ctx], -1)))
            prev = tgt[:, t]
        return torch.stack(logits, 1)


def _to_torch(ours, theirs):
    state = {k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()}
    assert sorted(state) == sorted(theirs.state_dict())
    theirs.load_state_dict(state)


def test_attention_matches_torch():
    rng = np.random.default_rng(0)
    B, S, Hq, Hk, A = 3, 5, 4, 6, 7
    ours = BahdanauAttention(Hq, Hk, A, dtype="float64", seed=0)
    theirs = TorchAttention(Hq, Hk, A).double()
    _to_torch(ours, theirs)
    q, k = rng.standard_normal((B, Hq)), rng.standard_normal((B, S, Hk))
    mask = np.ones((B, S), bool)
    mask[0, 3:] = False
    mask[2, :1] = False
    qt, kt = torch.tensor(q, requires_grad=True), torch.tensor(k, requires_grad=True)
    qa, ka = Tensor(q, requires_grad=True), Tensor(k, requires_grad=True)
    ctx_t, w_t = theirs(qt, kt, torch.tensor(mask))
    ctx_a, w_a = ours(qa, ka, mask=mask)
    np.testing.assert_allclose(ctx_a.numpy(), ctx_t.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(w_a.numpy(), w_t.detach().numpy(), atol=1e-12)
    assert np.all(w_a.numpy()[~mask] == 0)
    g1, g2 = rng.standard_normal((B, Hk)), rng.standard_normal((B, S))
    ((ctx_t * torch.tensor(g1)).sum() + (w_t * torch.tensor(g2)).sum()).backward()
    ((ctx_a * Tensor(g1)).sum() + (w_a * Tensor(g2)).sum()).backward()
    np.testing.assert_allclose(qa.grad, qt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(ka.grad, kt.grad.numpy(), atol=1e-12)
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, named[name].grad.numpy(), atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell,layers,pad", [("gru", 1, None), ("lstm", 2, 0)])
def test_teacher_forced_forward_matches_torch(cell, layers, pad):
    rng = np.random.default_rng(1)
    sv, tv, E, H, A = 7, 6, 5, 4, 3
    ours = Seq2Seq(sv, tv, E, H, A, cell=cell, num_layers=layers, bos_index=5, src_pad_index=pad, dtype="float64", seed=0)
    theirs = TorchSeq2Seq(sv, tv, E, H, A, cell, layers, 5, pad).double()
    _to_torch(ours, theirs)
    src = rng.integers(1, sv, (3, 6))
    src[1, 4:] = 0  # padding (masked out where src_pad_index=0)
    tgt = rng.integers(0, tv, (3, 4))
    out_t = theirs(torch.tensor(src), torch.tensor(tgt))
    out_a = ours(src, tgt)
    np.testing.assert_allclose(out_a.numpy(), out_t.detach().numpy(), atol=1e-10)
    loss_t = torch.nn.functional.cross_entropy(out_t.reshape(-1, tv), torch.tensor(tgt).reshape(-1))
    loss_a = F.cross_entropy(out_a.reshape(-1, tv), tgt.reshape(-1))
    assert abs(loss_t.item() - loss_a.item()) < 1e-10
    loss_t.backward()
    loss_a.backward()
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, named[name].grad.numpy(), atol=1e-10, err_msg=name)


def test_greedy_decode_is_consistent_with_forward():
    """Greedy tokens are the argmax of the teacher-forced logits when fed those same tokens."""
    rng = np.random.default_rng(2)
    m = Seq2Seq(8, 9, 6, 10, cell="lstm", bos_index=8, seed=3)
    src = rng.integers(0, 8, (5, 4))
    tokens, attn = m.greedy_decode(src, 6, return_attention=True)
    assert tokens.shape == (5, 6) and attn.shape == (5, 6, 4)
    np.testing.assert_allclose(attn.sum(-1), 1.0, rtol=1e-5)
    logits = m(src, tokens)
    np.testing.assert_array_equal(logits.numpy().argmax(-1), tokens)
    # without teacher forcing the decoder feeds back its own argmax: the same logits whatever tgt says
    free = m(src, np.zeros_like(tokens), teacher_forcing=0.0)
    np.testing.assert_allclose(free.numpy(), logits.numpy(), rtol=1e-5, atol=1e-6)
    # partial teacher forcing draws its coin flips from the model's seed
    a = Seq2Seq(8, 9, 6, 10, cell="lstm", bos_index=8, seed=3)(src, tokens[:, ::-1], teacher_forcing=0.5)
    b = Seq2Seq(8, 9, 6, 10, cell="lstm", bos_index=8, seed=3)(src, tokens[:, ::-1], teacher_forcing=0.5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def _reversal_accuracy(cell, steps, length=5, seed=0):
    rng = np.random.default_rng(seed)
    V = 10  # digits; id 10 is the start token
    m = Seq2Seq(V, V + 1, embed_dim=16, hidden_size=48, cell=cell, bos_index=V, seed=seed)
    opt = Adam(m.parameters(), lr=1e-2)
    for _ in range(steps):
        src = rng.integers(0, V, (64, length))
        tgt = src[:, ::-1].copy()
        loss = F.cross_entropy(m(src, tgt).reshape(-1, V + 1), tgt.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    src = rng.integers(0, V, (500, length))
    pred = m.greedy_decode(src, length)
    return (pred == src[:, ::-1]).mean()


def test_learns_to_reverse_digits():
    acc = _reversal_accuracy("gru", steps=150)
    assert acc > 0.8, f"token accuracy {acc:.3f} (chance 0.1)"


@pytest.mark.slow
def test_learns_to_reverse_longer_digits_lstm():
    acc = _reversal_accuracy("lstm", steps=600, length=8)
    assert acc > 0.9, f"token accuracy {acc:.3f} (chance 0.1)"


def test_bad_inputs():
    m = Seq2Seq(5, 6, 4, 8, bos_index=0, seed=0)
    src = np.zeros((2, 3), np.int64)
    with pytest.raises(ValueError, match=r"src ids must be in \[0, 4\]"):
        m(np.full((2, 3), 5), src)
    with pytest.raises(ValueError, match=r"tgt ids must be in \[0, 5\]"):
        m(src, np.full((2, 3), 6))
    with pytest.raises(TypeError, match="integer"):
        m(src.astype(float), src)
    with pytest.raises(ValueError, match=r"shape \(B, length\)"):
        m(np.zeros(3, np.int64), src)
    with pytest.raises(ValueError, match="same batch size"):
        m(src, np.zeros((3, 3), np.int64))
    with pytest.raises(ValueError, match="cell"):
        Seq2Seq(5, 6, cell="rnn")
    with pytest.raises(ValueError, match="bos_index"):
        Seq2Seq(5, 6, bos_index=6)
    with pytest.raises(ValueError, match="teacher_forcing"):
        m(src, src, teacher_forcing=1.5)
    att = BahdanauAttention(3, 3, 2, seed=0)
    with pytest.raises(ValueError, match="at least one"):
        att(Tensor(np.zeros((1, 3), np.float32)), Tensor(np.zeros((1, 2, 3), np.float32)), mask=np.zeros((1, 2), bool))
