"""scaling-laws: a Chinchilla-style compute-optimal study (Hoffmann et al. 2022) at toy scale.

Character-level Transformers (:class:`ann.nn.transformer.TransformerLM`,
pre-norm, GELU, 2 heads) of several widths and depths learn to predict the
next character of Python standard-library source (:func:`ann.text.char_corpus`,
files shuffled by seed; the last 10% held out). ``N`` counts the non-embedding
parameters (the blocks and the final norm: not the token and position tables
nor the output head, which at this scale would dominate). Every model trains
at each of several fixed compute budgets ``C = 6 N D`` FLOPs: ``D = C / (6 N)``
tokens, i.e. ``D / (batch x length)`` Adam steps (a model whose step count
at a budget falls outside ``steps_range`` is skipped there) with a cosine schedule to a
tenth of the learning rate over the run (as the paper: the schedule matches
the run's length). The score is the held-out cross-entropy (nats per
character) on a fixed set of windows.

Analysis with :mod:`ann.scaling`, on the losses averaged over seeds:

* approach 2 (IsoFLOP): per budget a parabola of loss in ``log N``
  (:func:`ann.scaling.isoflop_minima`), its minimum ``N_opt`` and
  ``D_opt = C / (6 N_opt)``; power laws ``N_opt ~ C^a`` and ``D_opt ~ C^b``
  (:func:`ann.scaling.fit_power_law`; ``a + b = 1`` by construction) through
  the minima that fall inside the sampled sizes (others are extrapolations);
* approach 3: ``L(N, D) = E + A / N^alpha + B / D^beta`` fitted to every run
  (:func:`ann.scaling.fit_loss`, Huber loss on log-loss), its implied
  exponents ``a = beta / (alpha + beta)``, ``b = alpha / (alpha + beta)`` and
  its compute-optimal allocation at each budget.

The budgets and exponents per seed are recorded too, so the spread shows how
much (little) a toy study of this size pins down. The paper's numbers for
reference: ``a = 0.49``, ``b = 0.51`` (approach 2), and :data:`ann.scaling.CHINCHILLA`.

Cost and results: the quick form (3 models, 3 budgets, 2 seeds) trains about
11,000 Adam steps (5,400 per seed) of tiny models, 25-35 s on one core; its
minima lie inside the sampled sizes and give ``a = 0.73`` (approach 3: 0.64).
The full form (6 models of 252-56,640 parameters, budgets 3e8-3e10 FLOPs,
3 seeds) took 5 minutes on the shared 2-core machine: all five minima inside
the sampled sizes, ``a = 0.48``, ``b = 0.52`` from the IsoFLOP minima (0.47,
0.47, 0.50 per seed; the paper: 0.49, 0.51), while the ``L(N, D)`` fit
(``alpha = 0.43``, ``beta = 0.18``, RMSE 0.026 in log-loss) implies
``a = 0.30``: at this scale the two approaches disagree (in the paper they
gave 0.49 and 0.46).

Writes ``isoflop.png``, ``optimal_allocation.png`` and ``loss_fit.png``;
``results.json`` holds every run (model, N, budget, D, steps, seed, loss),
the parabolas, minima, power laws and the L(N, D) fit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ann import scaling
from ann.losses import cross_entropy
from ann.nn.transformer import TransformerLM
from ann.optim import Adam
from ann.optim.lr_scheduler import CosineAnnealingLR
from ann.tensor import no_grad
from ann.text import char_corpus, random_windows, unigram_entropy
from experiments.config import param
from experiments.registry import experiment
from experiments.studies._figures import figure, save

BATCH, LENGTH = 8, 32
TOKENS_PER_STEP = BATCH * LENGTH
LR = 1e-2
EVAL_WINDOWS = 64


def non_embedding_params(model: TransformerLM) -> int:
    """Parameters of the blocks and the final norm (not the token/position tables nor the head)."""
    return int(sum(p.data.size for name, p in model.named_parameters()
                   if not name.startswith(("embedding.", "pos.", "head."))))


def make_model(vocab_size: int, shape: tuple[int, int], seed: int) -> TransformerLM:
    d_model, layers = shape
    return TransformerLM(vocab_size, d_model=d_model, nhead=2, num_layers=layers, max_len=LENGTH, seed=seed)


def train(model, train_ids, eval_x, eval_y, steps: int, seed: int) -> float:
    """``steps`` Adam steps (cosine to LR/10) on random windows; returns the held-out loss (nats/char)."""
    V = model.vocab_size
    opt = Adam(model.parameters(), lr=LR)
    sched = CosineAnnealingLR(opt, T_max=steps, eta_min=LR / 10)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x, y = random_windows(train_ids, BATCH, LENGTH, seed=rng)
        loss = cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with no_grad():
        return float(cross_entropy(model(eval_x).reshape(-1, V), eval_y.reshape(-1)).item())


def analyse(runs: list[dict], budgets, seeds) -> dict:
    """Approach 2 and 3 on the seed-mean losses, and approach 2 per seed."""
    def by_run(subset):
        keys = sorted({(r["flops"], r["n_params"]) for r in subset})
        loss = np.array([np.mean([r["loss"] for r in subset if (r["flops"], r["n_params"]) == k]) for k in keys])
        return np.array([k[0] for k in keys]), np.array([k[1] for k in keys], dtype=np.float64), loss

    def approach2(c, n, loss):
        iso = scaling.isoflop_minima(c, n, loss)
        ok = iso["interior"]
        out = {"flops": iso["flops"], "n_opt": iso["n_opt"], "d_opt": iso["d_opt"], "loss_opt": iso["loss_opt"],
               "interior": ok, "parabolas": [p.coefficients for p in iso["parabolas"]], "a": None, "b": None}
        if ok.sum() >= 2:
            out["a"] = scaling.fit_power_law(iso["flops"][ok], iso["n_opt"][ok]).exponent
            out["b"] = scaling.fit_power_law(iso["flops"][ok], iso["d_opt"][ok]).exponent
        return out

    c, n, loss = by_run(runs)
    res = {"mean": {"flops": c, "n_params": n, "n_tokens": c / (6 * n), "loss": loss}}
    res["approach2"] = approach2(c, n, loss)
    res["approach2_per_seed"] = [approach2(*by_run([r for r in runs if r["seed"] == s])) for s in seeds]
    fit = scaling.fit_loss(n, c / (6 * n), loss)
    n_opt, d_opt = scaling.compute_optimal(np.asarray(budgets), fit)
    res["approach3"] = {"E": fit.E, "A": fit.A, "B": fit.B, "alpha": fit.alpha, "beta": fit.beta,
                        "a": fit.beta / (fit.alpha + fit.beta), "b": fit.alpha / (fit.alpha + fit.beta),
                        "flops": budgets, "n_opt": n_opt, "d_opt": d_opt,
                        "rmse_log_loss": float(np.sqrt(np.mean((np.log(fit(n, c / (6 * n))) - np.log(loss)) ** 2)))}
    return res


def write_figures(out_dir, res) -> list[str]:
    names = []
    an = res["analysis"]
    mean = an["mean"]
    c, n, loss = (np.asarray(mean[k]) for k in ("flops", "n_params", "loss"))
    a2 = an["approach2"]
    colors = [f"C{i}" for i in range(len(a2["flops"]))]
    fig, axes = figure(5.5, 4.0)
    ax = axes[0]
    for budget, coef, n_opt, l_opt, col in zip(a2["flops"], a2["parabolas"], a2["n_opt"], a2["loss_opt"], colors):
        sel = c == budget
        ax.plot(n[sel], loss[sel], "o", color=col, label=f"C = {budget:.2g} FLOPs")
        grid = np.geomspace(n[sel].min() / 1.5, n[sel].max() * 1.5, 100)
        ax.plot(grid, np.polyval(coef, np.log(grid)), "-", color=col, lw=1)
        if np.isfinite(n_opt) and n[sel].min() <= n_opt <= n[sel].max():
            ax.plot([n_opt], [l_opt], "*", color=col, ms=12, mec="k")
        for r in res["runs"]:
            if r["flops"] == budget:
                ax.plot(r["n_params"], r["loss"], ".", color=col, alpha=0.35, ms=4)
    ax.set_xscale("log")
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("held-out loss (nats/char)")
    ax.set_title(f"IsoFLOP curves (mean of {len(res['seeds'])} seeds; dots: single seeds; stars: minima)", fontsize=8)
    ax.legend(fontsize=7)
    save(fig, out_dir, "isoflop.png", names)

    fig, axes = figure(9.0, 3.6, 1, 2)
    a3 = an["approach3"]
    for ax, key, label, exp_key in ((axes[0], "n_opt", "N_opt", "a"), (axes[1], "d_opt", "D_opt (tokens)", "b")):
        flops = np.asarray(a2["flops"])
        vals = np.asarray(a2[key], dtype=np.float64)
        ok = np.asarray(a2["interior"], dtype=bool)
        ax.plot(flops[ok], vals[ok], "o", label="IsoFLOP minima")
        if (~ok).any():
            ax.plot(flops[~ok], vals[~ok], "x", color="0.5", label="minima outside the sampled N (left out)")
        if a2[exp_key] is not None:
            law = scaling.fit_power_law(flops[ok], vals[ok])
            ax.plot(flops, law(flops), "-", label=f"fit: {label} ~ C^{law.exponent:.2f}")
        ax.plot(a3["flops"], a3[key], "s--", mfc="none", label=f"L(N, D) fit: C^{a3[exp_key]:.2f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    save(fig, out_dir, "optimal_allocation.png", names)

    fig, axes = figure(5.0, 4.0)
    ax = axes[0]
    fit = scaling.LossFit(a3["E"], a3["A"], a3["B"], a3["alpha"], a3["beta"])
    pred = fit(n, c / (6 * n))
    ax.plot(pred, loss, "o")
    lims = [min(pred.min(), loss.min()), max(pred.max(), loss.max())]
    ax.plot(lims, lims, "k--", lw=1)
    ax.set_xlabel("L(N, D) fit (nats/char)")
    ax.set_ylabel("observed held-out loss")
    ax.set_title(f"E={fit.E:.2f} A={fit.A:.3g} B={fit.B:.3g} alpha={fit.alpha:.2f} beta={fit.beta:.2f}", fontsize=8)
    save(fig, out_dir, "loss_fit.png", names)
    return names


@dataclass(frozen=True)
class Config:
    """The model shapes, the compute budgets, the step limits, the seeds and the corpus size."""

    models: tuple[tuple[int, ...], ...] = param(((4, 1), (8, 1), (16, 1), (24, 1), (32, 2), (48, 2)),
                                                help="model shapes (d_model, num_layers), e.g. [[4,1],[8,1]]")
    budgets: tuple[float, ...] = param((3e8, 1e9, 3e9, 1e10, 3e10), min=1.0, help="training compute budgets C (FLOPs)")
    steps_range: tuple[int, ...] = param((20, 20000), min=1, help="min, max training steps: runs outside are skipped")
    seeds: int = param(3, min=1, help="seeds (ctx.seed, ctx.seed + 1, ...)")
    n_chars: int = param(400_000, min=1, help="characters of Python source in the corpus")

    def __post_init__(self):
        if not self.models or not all(len(m) == 2 and min(m) >= 1 for m in self.models):
            raise ValueError(f"models: expected pairs (d_model, num_layers) of positive ints, got {self.models}")
        if not self.budgets:
            raise ValueError("budgets: give at least one budget")
        if len(self.steps_range) != 2 or self.steps_range[0] > self.steps_range[1]:
            raise ValueError(f"steps_range: expected min, max with min <= max, got {self.steps_range}")

    @classmethod
    def quick(cls) -> "Config":
        return cls(models=((4, 1), (8, 1), (16, 1)), budgets=(1.5e8, 4e8, 1e9), steps_range=(15, 5000), seeds=2,
                   n_chars=100_000)


@experiment("scaling-laws", "Chinchilla-style IsoFLOP study of character-level Transformers on stdlib source, fitted with ann.scaling",
            config=Config)
def run(ctx) -> dict:
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency; tiny matrices run best on one thread

    config = ctx.config
    shapes = [tuple(s) for s in config.models]
    budgets = list(config.budgets)
    min_steps, max_steps = config.steps_range
    n_seeds, n_chars = config.seeds, config.n_chars
    ids, vocab = char_corpus(n_chars, seed=ctx.seed)
    cut = int(0.9 * len(ids))
    train_ids, held_out = ids[:cut], ids[cut:]
    eval_x, eval_y = random_windows(held_out, EVAL_WINDOWS, LENGTH, seed=ctx.seed + 1)
    sizes = {s: non_embedding_params(make_model(len(vocab), s, 0)) for s in shapes}
    seeds = [ctx.seed + k for k in range(n_seeds)]
    runs = []
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for seed in seeds:
            for budget in budgets:
                for shape in shapes:
                    steps = int(round(budget / (6 * sizes[shape] * TOKENS_PER_STEP)))
                    if not min_steps <= steps <= max_steps:
                        continue  # too short to mean anything, or too long for this study's time
                    loss = train(make_model(len(vocab), shape, seed), train_ids, eval_x, eval_y, steps, seed)
                    runs.append({"d_model": shape[0], "num_layers": shape[1], "n_params": sizes[shape], "flops": budget,
                                 "steps": steps, "n_tokens": steps * TOKENS_PER_STEP, "seed": seed, "loss": loss})
    res = {
        "corpus": {"n_chars": n_chars, "vocab_size": len(vocab), "held_out_unigram_entropy": unigram_entropy(held_out, len(vocab))},
        "training": {"batch": BATCH, "length": LENGTH, "lr": LR, "schedule": "cosine to lr/10", "eval_windows": EVAL_WINDOWS},
        "models": [{"d_model": s[0], "num_layers": s[1], "n_params": sizes[s]} for s in shapes],
        "budgets": budgets, "steps_range": [min_steps, max_steps], "seeds": seeds, "runs": runs, "train_seconds": time.perf_counter() - start,
        "chinchilla": {"E": scaling.CHINCHILLA.E, "A": scaling.CHINCHILLA.A, "B": scaling.CHINCHILLA.B,
                       "alpha": scaling.CHINCHILLA.alpha, "beta": scaling.CHINCHILLA.beta,
                       "tokens_per_parameter_at_5.76e23": scaling.CHINCHILLA.tokens_per_parameter(5.76e23)},
    }
    res["analysis"] = analyse(runs, budgets, seeds)
    res["figures"] = write_figures(ctx.out_dir, res)
    return res
