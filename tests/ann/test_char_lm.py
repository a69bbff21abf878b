"""Learning smoke tests: character-level language models on Python standard-library sources.

Each model trains from scratch with Adam on random windows of the first 90%
of the corpus and is scored on windows of the held-out last 10% (other
files). The baseline is the unigram entropy of the held-out characters: the
loss of the best model that ignores context (evaluated on its own data, so
it is an optimistic baseline). Passing means the held-out cross-entropy is
clearly below it, i.e. the model learned to use context.

Measured on the 2-core development machine (shared with other jobs, so
timings vary by about 2x): the corpus has 96 symbols and a held-out unigram
entropy of 3.10 nats/char. Held-out losses and training times measured there
(nats/char; the assertions leave a margin):

    transformer default (d=48, 100 steps)   2.51    8-16 s
    mamba default       (d=32,  45 steps)   2.41    6-9 s
    transformer slow    (d=64, 250 steps)   2.34   57-70 s
    mamba slow          (d=64, 100 steps)   2.01   32-52 s
    rwkv slow           (d=48, 100 steps)   2.20   35-41 s
"""

import time

import numpy as np
import pytest

from ann.losses import cross_entropy
from ann.nn.rwkv import RWKVLM
from ann.nn.ssm import MambaLM
from ann.nn.transformer import TransformerLM
from ann.optim import Adam
from ann.tensor import no_grad
from ann.text import (
    char_corpus,
    decode,
    encode,
    generate,
    random_windows,
    unigram_entropy,
)


def train_char_lm(make_model, steps: int, batch: int = 16, length: int = 48, lr: float = 1e-2, n_chars: int = 120_000, seed: int = 0) -> dict:
    """Train ``make_model(vocab_size)`` for ``steps`` Adam steps; held-out loss, baseline and time."""
    ids, vocab = char_corpus(n_chars, seed=seed)
    cut = int(0.9 * len(ids))
    train, held_out = ids[:cut], ids[cut:]
    model = make_model(len(vocab))
    opt = Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed + 1)
    start = time.perf_counter()
    first = None
    for _ in range(steps):
        x, y = random_windows(train, batch, length, seed=rng)
        loss = cross_entropy(model(x).reshape(-1, len(vocab)), y.reshape(-1))
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    with no_grad():
        x, y = random_windows(held_out, 64, length, seed=seed + 2)
        held_out_loss = cross_entropy(model(x).reshape(-1, len(vocab)), y.reshape(-1)).item()
    return {
        "first_loss": first,
        "held_out_loss": held_out_loss,
        "unigram_entropy": unigram_entropy(held_out, len(vocab)),
        "seconds": seconds,
    }


def _report(name, r):
    print(f"{name}: held-out {r['held_out_loss']:.3f} vs unigram {r['unigram_entropy']:.3f} nats/char "
          f"(first batch {r['first_loss']:.3f}), trained in {r['seconds']:.1f} s")


def _transformer(d_model, layers=2):
    return lambda vocab: TransformerLM(vocab, d_model=d_model, nhead=4, num_layers=layers, max_len=64, activation="gelu", seed=0)


def _mamba(d_model, layers=2):
    return lambda vocab: MambaLM(vocab, d_model=d_model, num_layers=layers, d_state=8, seed=0)


# --------------------------------------------------------------- default


def test_transformer_learns_characters_quickly():
    r = train_char_lm(_transformer(48), steps=100)
    _report("transformer (default)", r)
    assert r["held_out_loss"] < r["unigram_entropy"] - 0.4


def test_mamba_learns_characters_quickly():
    r = train_char_lm(_mamba(32), steps=45)
    _report("mamba (default)", r)
    assert r["held_out_loss"] < r["unigram_entropy"] - 0.4


# ------------------------------------------------------------------ slow


@pytest.mark.slow
def test_transformer_learns_characters_well():
    r = train_char_lm(_transformer(64), steps=250, length=64)
    _report("transformer (slow)", r)
    assert r["held_out_loss"] < r["unigram_entropy"] - 0.6


@pytest.mark.slow
def test_mamba_learns_characters_well():
    r = train_char_lm(_mamba(64), steps=100, length=64)
    _report("mamba (slow)", r)
    assert r["held_out_loss"] < r["unigram_entropy"] - 0.8


@pytest.mark.slow
def test_rwkv_learns_characters():
    r = train_char_lm(lambda vocab: RWKVLM(vocab, d_model=48, num_layers=2, seed=0), steps=100, lr=3e-3)
    _report("rwkv (slow)", r)
    assert r["held_out_loss"] < r["unigram_entropy"] - 0.4


# ----------------------------------------------------------------- corpus


def test_corpus_is_deterministic_and_round_trips():
    ids, vocab = char_corpus(5000, seed=3)
    again, vocab2 = char_corpus(5000, seed=3)
    np.testing.assert_array_equal(ids, again)
    assert vocab == vocab2 and list(vocab) == sorted(set(vocab))
    assert ids.dtype == np.int64 and ids.shape == (5000,) and ids.max() < len(vocab)
    text = decode(ids, vocab)
    np.testing.assert_array_equal(encode(text, vocab), ids)
    assert all(c == "\n" or 32 <= ord(c) < 127 for c in vocab)
    other, _ = char_corpus(5000, seed=4)
    assert not np.array_equal(other, ids)
    with pytest.raises(ValueError, match="vocabulary"):
        encode("\u00e9", vocab)
    with pytest.raises(ValueError, match="n_chars"):
        char_corpus(1)


def test_decode_rejects_ids_outside_the_vocab():
    assert decode(np.array([0, 2]), "abc") == "ac"
    with pytest.raises(ValueError, match=r"ids must be in \[0, 2\].*got -1"):
        decode([-1, -2], "abc")
    with pytest.raises(ValueError, match="got 3"):
        decode([3], "abc")
    with pytest.raises(TypeError, match="ids must be integers"):
        decode([0.5], "abc")


def test_unigram_entropy_and_windows():
    ids = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert unigram_entropy(ids) == pytest.approx(np.log(4))
    assert unigram_entropy(np.zeros(10, dtype=np.int64)) == 0.0
    x, y = random_windows(np.arange(100), 5, 7, seed=0)
    assert x.shape == y.shape == (5, 7)
    np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(ValueError, match="length"):
        random_windows(np.arange(5), 2, 5)


def test_generate_greedy_and_sampled():
    lm = TransformerLM(7, d_model=8, nhead=2, num_layers=1, max_len=6, seed=0)
    out = generate(lm, [1, 2], 8, temperature=0, max_context=6)
    assert out.shape == (10,) and list(out[:2]) == [1, 2]
    for t in range(2, 10):  # every greedy id is the argmax given the (cropped) context before it
        context = out[max(0, t - 6) : t][None]
        assert out[t] == np.argmax(lm(context).numpy()[0, -1])
    a = generate(lm, [3], 5, temperature=1.0, seed=4, max_context=6)
    np.testing.assert_array_equal(a, generate(lm, [3], 5, temperature=1.0, seed=4, max_context=6))
    assert a.min() >= 0 and a.max() < 7
    with pytest.raises(ValueError, match="prompt"):
        generate(lm, [], 3)
