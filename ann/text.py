"""A character-level text corpus from local files, for language-model experiments and tests.

:func:`char_corpus` reads the Python standard library's own ``.py`` sources
(always present where Python runs, so nothing is downloaded), normalizes
them to printable ASCII, and encodes characters as integer ids.
:func:`unigram_entropy` is the loss (nats per character) of the best model
that ignores context: a language model has learned something about
sequences only when its loss falls clearly below it.
"""

from __future__ import annotations

import os
import string
import sysconfig
from pathlib import Path

import numpy as np

from .generator import make_rng
from .losses import entropy
from .tensor import no_grad

__all__ = ["char_corpus", "decode", "encode", "generate", "normalize_text", "random_windows", "stdlib_sources", "unigram_entropy"]

_KEEP = set(string.printable) - set("\t\r\x0b\x0c")


def stdlib_sources(directory: str | os.PathLike | None = None) -> list[Path]:
    """The sorted ``*.py`` files directly in ``directory`` (default: the standard library's directory)."""
    root = Path(sysconfig.get_paths()["stdlib"] if directory is None else directory)
    if not root.is_dir():
        raise ValueError(f"directory {str(root)!r} is not a directory")
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    if not files:
        raise ValueError(f"no .py files in {str(root)!r}")
    return files


def normalize_text(text: str) -> str:
    """Tabs to four spaces, ``\\r`` dropped, every other character outside printable ASCII to ``?``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return "".join(c if c in _KEEP else "?" for c in text)


def char_corpus(n_chars: int = 200_000, seed=0, directory=None) -> tuple[np.ndarray, str]:
    """``n_chars`` characters of Python source as integer ids, and the vocabulary.

    Files of :func:`stdlib_sources` are taken in an order shuffled by ``seed``
    (int or Generator) and concatenated (normalized by :func:`normalize_text`)
    until ``n_chars`` characters are collected.

    Returns
    -------
    ids : int64 array ``(n_chars,)``, ``vocab[ids[i]]`` is character ``i``.
    vocab : str, the sorted distinct characters (the id of ``c`` is ``vocab.index(c)``).
    """
    if isinstance(n_chars, bool) or not isinstance(n_chars, (int, np.integer)) or n_chars < 2:
        raise ValueError(f"n_chars must be an int >= 2, got {n_chars!r}")
    files = stdlib_sources(directory)
    order = make_rng(seed).permutation(len(files))
    pieces, total = [], 0
    for i in order:
        text = normalize_text(files[i].read_text(encoding="utf-8", errors="replace"))
        pieces.append(text)
        total += len(text)
        if total >= n_chars:
            break
    text = "".join(pieces)[:n_chars]
    if len(text) < n_chars:
        raise ValueError(f"the sources hold only {len(text)} characters, fewer than n_chars={n_chars}")
    vocab = "".join(sorted(set(text)))
    return encode(text, vocab), vocab


def encode(text: str, vocab: str) -> np.ndarray:
    """Characters of ``text`` as int64 ids into ``vocab``; ``ValueError`` naming a character not in it."""
    lookup = {c: i for i, c in enumerate(vocab)}
    try:
        return np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    except KeyError as exc:
        raise ValueError(f"text holds the character {exc.args[0]!r}, which is not in the vocabulary") from None


def decode(ids, vocab: str) -> str:
    """The string of ``vocab`` characters for the integer ``ids`` (any 1-D sequence), each in ``[0, len(vocab))``."""
    ids = np.asarray(ids)
    if ids.size and ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
    ids = ids.ravel()
    bad = (ids < 0) | (ids >= len(vocab))
    if bad.any():
        raise ValueError(f"ids must be in [0, {len(vocab) - 1}] (indices into vocab), got {int(ids[bad][0])}")
    return "".join(vocab[i] for i in ids.tolist())


def unigram_entropy(ids, vocab_size: int | None = None) -> float:
    """Entropy of the character frequencies of ``ids``, in nats per character.

    The cross-entropy loss of the best context-free model of the same text.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be a non-empty 1-D integer array, got shape {ids.shape} and dtype {ids.dtype}")
    counts = np.bincount(ids, minlength=vocab_size or 0)
    return float(entropy(counts / counts.sum()))


def random_windows(ids, batch_size: int, length: int, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` random windows of ``ids``: inputs ``(B, length)`` and next-character targets ``(B, length)``.

    ``targets[b, t] == ids[start_b + t + 1]`` where ``inputs[b, t] == ids[start_b + t]``.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size < length + 1:
        raise ValueError(f"ids must be 1-D and longer than length={length}, got shape {ids.shape}")
    if batch_size < 1 or length < 1:
        raise ValueError(f"batch_size and length must be positive, got {batch_size} and {length}")
    starts = make_rng(seed).integers(0, ids.size - length, size=batch_size)
    idx = starts[:, None] + np.arange(length + 1)[None, :]
    windows = ids[idx]
    return windows[:, :-1], windows[:, 1:]


def generate(model, prompt, n_new: int, temperature: float = 1.0, seed=None, max_context: int | None = None) -> np.ndarray:
    """Extend the id sequence ``prompt`` by ``n_new`` ids sampled from ``model``'s next-token distribution.

    ``model`` maps ids ``(1, T)`` to logits ``(1, T, V)`` (any language model
    here). Each step feeds the last ``max_context`` ids (all when None) and
    samples from ``softmax(logits[-1] / temperature)`` with the generator made
    from ``seed``; ``temperature=0`` takes the argmax. Returns the prompt
    followed by the new ids, int64 ``(len(prompt) + n_new,)``.
    """
    ids = [int(i) for i in np.asarray(prompt).ravel()]
    if not ids:
        raise ValueError("prompt must hold at least one id")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    rng = make_rng(seed)
    with no_grad():
        for _ in range(int(n_new)):
            context = np.asarray(ids if max_context is None else ids[-max_context:], dtype=np.int64)[None]
            logits = np.asarray(model(context).numpy()[0, -1], dtype=np.float64)
            if temperature == 0:
                ids.append(int(np.argmax(logits)))
                continue
            z = logits / temperature
            p = np.exp(z - z.max())
            ids.append(int(rng.choice(p.size, p=p / p.sum())))
    return np.asarray(ids, dtype=np.int64)
