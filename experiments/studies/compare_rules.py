"""compare-rules: Hebb, Oja, Sanger and BCM (and STDP on a spiking neuron) side by side on the same streams.

Streams (one draw per seed, shared by every rule):

* ``gaussian``: zero-mean correlated Gaussian data in 8 dimensions with known
  covariance eigenvalues (4, 2, 1, 0.5, 0.25, ...);
* ``two-patterns``: two fixed non-negative patterns shown in random order (BCM's
  selectivity setting);
* ``patches``: 8x8 natural-image-like patches (scikit-learn's bundled digits,
  centred per pixel and scaled to unit average variance).

Each rule trains a layer of ``units`` linear units (Oja: independent units;
Sanger: the GHA layer; Hebb: plain, no decay; BCM: rectified units
``y = max(Wx, 0)``, so the rule sees only firing rates) with
:func:`plasticity.train`. Metrics per rule, stream and seed: alignment of
unit 1 with the first principal component (``|cos|``), the mean alignment of
row ``i`` with PC ``i`` (the top-k subspace, in order), the selectivity index
``1 - min/max`` of a unit's responses to the two patterns, the weight norm,
and stability (the final norm is finite and changed by less than 10% over the
last quarter of training). A fifth study runs pair STDP
(:func:`plasticity.attach_to_network`) on a ``neuro`` leaky integrate-and-fire
neuron driven by correlated and independent Poisson inputs at equal rates and
reports the mean final weight of each group (relative to the start).

One point of a run is one seed (``neuro run compare-rules --seeds 0-4``;
parameters: ``neuro show compare-rules``). A point's ``results.json`` holds
the metrics by rule and stream (``rate/<rule>/<stream>/<metric>``) and the
STDP weights; ``curves.npz`` the curves behind the figures. The report
(``report.md``) holds the table (mean and std over seeds) and the figures
``weight_norm``, ``alignment``, ``receptive_fields``, ``stdp_weights`` (PNG
and SVG in ``figures/``) drawn from the first point's saved curves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import plasticity as P
from experiments.config import param
from experiments.registry import experiment

RULES = ("hebb", "oja", "sanger", "bcm")
STREAMS = ("gaussian", "two-patterns", "patches")


#: learning rates per stream, scaled down where the inputs carry more power (|x|^2 ~ 8 for the Gaussian
#: stream, ~ 1 for the two patterns, ~ 64 for the patches); BCM needs its threshold to move faster than
#: its weights (tau_theta * lr * E[y^2 |x|^2] << 1), hence its smaller rates
LEARNING_RATES = {
    "gaussian": {"hebb": 0.002, "oja": 0.005, "sanger": 0.005, "bcm": 0.001},
    "two-patterns": {"hebb": 0.01, "oja": 0.005, "sanger": 0.005, "bcm": 0.005},
    "patches": {"hebb": 0.001, "oja": 0.001, "sanger": 0.001, "bcm": 0.0001},
}


def _make_rule(name: str, stream: str):
    lr = LEARNING_RATES[stream][name]
    return {"hebb": P.Hebb, "oja": P.Oja, "sanger": P.Sanger}[name](lr=lr) if name != "bcm" else \
        P.BCM(lr=lr, tau_theta=20.0)


def _activation(name: str):
    return "relu" if name == "bcm" else None


# ------------------------------------------------------------------ streams


def gaussian_stream(rng, n_samples: int, dim: int = 8):
    eig = 4.0 * 0.5 ** np.arange(dim)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    cov = q @ np.diag(eig) @ q.T
    X = rng.multivariate_normal(np.zeros(dim), cov, size=n_samples)
    return X, q.T  # rows of q.T: PCs by decreasing eigenvalue


def two_pattern_stream(rng, n_samples: int):
    patterns = np.array([[1.0, 0.2, 0.1, 0.0], [0.1, 0.3, 1.0, 0.2]])
    return patterns[rng.integers(0, 2, size=n_samples)], patterns


def patch_stream(rng, n_samples: int):
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    images = load_digits().images.reshape(-1, 64).astype(float)
    X = images[rng.integers(0, len(images), size=n_samples)]
    X = X - images.mean(axis=0)
    X /= np.sqrt(np.mean(np.var(images, axis=0)))
    w, v = np.linalg.eigh(np.cov((images - images.mean(0)).T))
    return X, v[:, ::-1].T


# ------------------------------------------------------------------ metrics


def _cos(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if not np.isfinite(na):
        return float("nan")  # diverged
    if na == 0:
        return 0.0  # a silent (all-zero) unit is not aligned with anything
    return float(abs(a @ b) / (na * nb))


def _alignment(W, pcs):
    """(|cos(row 0, PC1)|, mean_i |cos(row i, PC i)|)."""
    k = min(len(W), len(pcs))
    return _cos(W[0], pcs[0]), float(np.mean([_cos(W[i], pcs[i]) for i in range(k)]))


def _selectivity(W, patterns, activation):
    f = P.activation_function(activation)
    with np.errstate(all="ignore"):
        r = np.abs(f(patterns @ W.T))  # (2, units)
    hi, lo = r.max(axis=0), r.min(axis=0)
    s = np.where(hi > 0, 1 - lo / np.where(hi > 0, hi, 1), 0.0)
    return float(np.mean(s))


def _stability(norms):
    last = norms[-1]
    ref = norms[int(0.75 * (len(norms) - 1))]
    return bool(np.isfinite(last) and ref > 0 and abs(last / ref - 1) < 0.1)


# ------------------------------------------------------------------ studies


@dataclass(frozen=True)
class Config:
    """compare-rules' parameters (``neuro show compare-rules``); seeds are the run's sweep axis."""

    samples: int = param(12000, min=10, help="presentations per rate stream")
    units: int = param(4, min=1, max=16, help="units per rate layer")
    rules: tuple[str, ...] = param(RULES, choices=RULES, help="rate rules to train")
    streams: tuple[str, ...] = param(STREAMS, choices=STREAMS, help="input streams")
    stdp: bool = param(True, help="also run pair STDP on a LIF neuron")
    stdp_ms: float = param(15000.0, min=100.0, help="length of the STDP run (ms)")

    def __post_init__(self):
        for key in ("rules", "streams"):
            if not getattr(self, key):
                raise ValueError(f"{key}: give at least one")

    @classmethod
    def quick(cls) -> "Config":
        return cls(samples=3000, stdp_ms=4000.0)


_STREAM_MAKERS = {"gaussian": gaussian_stream, "two-patterns": two_pattern_stream, "patches": patch_stream}


def run_rate(seed: int, config: Config = Config(), progress=lambda it, **kw: it) -> tuple[dict, dict]:
    """Train the rules on the streams for one seed: ``({rule: {stream: metrics}}, arrays for the figures)``.

    ``progress`` wraps the loop over streams (``ctx.progress``: a bar when the run shows one)."""
    rng = np.random.default_rng(seed)
    n, units = config.samples, config.units
    streams = {name: _STREAM_MAKERS[name](rng, n) for name in STREAMS if name in config.streams}
    metrics: dict = {name: {} for name in config.rules}
    arrays = {}
    for stream, (X, ref) in progress(streams.items(), desc="streams", total=len(streams)):
        dim = X.shape[1]
        W0 = np.random.default_rng(seed + 1000).uniform(0.2, 0.5, size=(units, dim)) / np.sqrt(dim / 4)
        for name in config.rules:
            rule = _make_rule(name, stream)
            with np.errstate(over="ignore", invalid="ignore"):
                res = P.train(rule, W0, X, batch_size=1, activation=_activation(name), seed=seed,
                              record_every=max(1, n // 100))
            hist = res.history
            norms = np.linalg.norm(hist[:, 0, :], axis=1)
            row = {"weight_norm": float(norms[-1]), "stable": _stability(norms)}
            if stream == "two-patterns":
                row["selectivity"] = _selectivity(res.weights, ref, _activation(name))
            else:
                row["pc1_alignment"], row["topk_alignment"] = _alignment(res.weights, ref)
                arrays[f"{stream}.{name}.steps"] = res.steps
                arrays[f"{stream}.{name}.norm"] = norms
                arrays[f"{stream}.{name}.alignment"] = np.array([_cos(h[0], ref[0]) for h in hist])
            if stream == "patches":
                arrays[f"fields.{name}"] = res.weights
            metrics[name][stream] = row
    return metrics, arrays


def run_stdp(seed: int, T: float = 15000.0) -> dict:
    """Pair STDP on a ``neuro`` LIF neuron (2 trials, shared weights) fed 20 correlated + 20 independent 10 Hz inputs.

    The correlated inputs copy a common Poisson train with probability ``c = 0.3``
    per spike slot (equal rates in both groups). Weights are in units of their
    initial value (start 1, bounds [0, 2]).
    """
    import neuro

    n, half, dt, B, c, w0 = 40, 20, 1.0, 2, 0.3, 2.0
    spikes = neuro.correlated_spike_times(n, half, 10.0, c, T, dt, trials=B, seed=seed)
    net = neuro.Network(dt=dt, seed=seed)
    inp = net.spike_times(n, *spikes, name="in")
    out = net.population(1, neuro.LIF(I_bg=13.0), name="out")
    proj = net.connect(inp, out, "all_to_all", weight=w0)
    rule = P.STDP(a_plus=0.04, a_minus=0.048, tau_plus=20.0, tau_minus=20.0, dt=dt, w_min=0.0, w_max=2 * w0)
    P.attach_to_network(net, proj, rule, weights="shared")  # one weight vector learns from both trials
    corr = proj.i < half
    trace_c, trace_i = [], []

    def record(_net, _step):
        trace_c.append(proj.w[corr].mean() / w0)
        trace_i.append(proj.w[~corr].mean() / w0)

    net.add_hook(record, every=50)
    net.reset(batch_size=B, seed=seed)
    net.run(T)
    return {"correlated": float(proj.w[corr].mean() / w0), "independent": float(proj.w[~corr].mean() / w0),
            "trace_correlated": np.array(trace_c), "trace_independent": np.array(trace_i)}


# ------------------------------------------------------------------ report (from saved data)


def _fmt(values: list[float], key: str) -> str:
    v = np.array(values, dtype=float)
    if not len(v):
        return "-"
    m, sd = float(v.mean()), float(v.std())
    if not np.isfinite(m):
        return "diverged"
    if key == "weight_norm" and abs(m) >= 1e3:
        return f"{m:.2e}"
    return f"{m:.3f} ± {sd:.3f}"


def table(points) -> str:
    """The markdown table of one group of points (mean ± std over their seeds), rate rules then STDP."""
    results = [p.results for p in points if p.results is not None]
    head = ("| rule | stream | PC1 alignment | top-k alignment | selectivity | weight norm | stable |\n"
            "|---|---|---|---|---|---|---|\n")
    lines = []
    for stream in STREAMS:
        for name in RULES:
            rows = [r["rate"][name][stream] for r in results if stream in r["rate"].get(name, {})]
            if not rows:
                continue
            cells = [_fmt([r[k] for r in rows if k in r], k) for k in ("pc1_alignment", "topk_alignment", "selectivity", "weight_norm")]
            lines.append(f"| {name} | {stream} | " + " | ".join(cells) + f" | {np.mean([r['stable'] for r in rows]):.2f} |")
    text = head + "\n".join(lines) + "\n"
    stdp = [r["stdp"] for r in results if "stdp" in r]
    if stdp:
        text += ("\nSTDP on a neuro LIF neuron (mean final weight / initial weight; bounds [0, 2]):\n\n"
                 "| inputs | mean weight |\n|---|---|\n"
                 f"| correlated (c = 0.3) | {_fmt([s['correlated'] for s in stdp], '')} |\n"
                 f"| independent | {_fmt([s['independent'] for s in stdp], '')} |\n")
    return text


def write_figures(arrays: dict, rules, folder) -> list[str]:
    """The figures of one point's saved arrays; returns their markdown."""
    from matplotlib.figure import Figure

    from experiments.report import save_figure

    out = []
    for key, ylabel, fname, log in (("norm", "|w| (unit 1)", "weight_norm", True),
                                    ("alignment", "|cos(w, PC1)|", "alignment", False)):
        shown = [s for s in ("gaussian", "patches") if any(f"{s}.{r}.{key}" in arrays for r in rules)]
        if not shown:
            continue
        fig = Figure(figsize=(4.5 * len(shown), 3.5))
        fig.subplots_adjust(wspace=0.3, bottom=0.15)
        for k, stream in enumerate(shown):
            ax = fig.add_subplot(1, len(shown), k + 1)
            for name in rules:
                if f"{stream}.{name}.{key}" in arrays:
                    y = arrays[f"{stream}.{name}.{key}"]
                    ax.plot(arrays[f"{stream}.{name}.steps"], np.where(np.isfinite(y), y, np.nan), label=name)
            if log:
                ax.set_yscale("log")
            ax.set_title(stream)
            ax.set_xlabel("presentations")
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=8)
        out.append(save_figure(fig, folder, fname))

    fields = [r for r in rules if f"fields.{r}" in arrays]
    if fields:
        fig = Figure(figsize=(6, 1.5 * len(fields)))
        for row, name in enumerate(fields):
            W = arrays[f"fields.{name}"]
            W = np.where(np.isfinite(W), W, 0.0)
            scale = np.maximum(np.abs(W).max(axis=1, keepdims=True), 1e-300)
            tiles = np.full((8, W.shape[0] * 9 - 1), np.nan)  # units side by side, one blank column between
            for u in range(W.shape[0]):
                tiles[:, u * 9:u * 9 + 8] = (W[u] / scale[u]).reshape(8, 8)
            ax = fig.add_subplot(len(fields), 1, row + 1)
            ax.imshow(tiles, cmap="RdBu_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(name)
        fig.suptitle("receptive fields on 8x8 digit patches (each unit scaled to max |w| = 1)", fontsize=9)
        out.append(save_figure(fig, folder, "receptive_fields"))

    if "stdp.correlated" in arrays:
        fig = Figure(figsize=(5, 3.5))
        fig.subplots_adjust(left=0.15, bottom=0.15)
        ax = fig.add_subplot(1, 1, 1)
        t = (np.arange(len(arrays["stdp.correlated"])) + 1) * 50
        ax.plot(t, arrays["stdp.correlated"], label="correlated inputs")
        ax.plot(t, arrays["stdp.independent"], label="independent inputs")
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("mean weight / initial weight")
        ax.legend()
        out.append(save_figure(fig, folder, "stdp_weights"))
    return out


def report(run, folder) -> str:
    """report.md's section: one table per group of the sweep, and the figures of the first finished point."""
    parts = ["## Rules compared (mean ± std over seeds)\n"]
    for overrides, points in run.groups():
        if len(run.groups()) > 1:
            parts.append(f"### {', '.join(f'{k}={v}' for k, v in overrides.items())}\n")
        parts.append(table(points))
    first = run.done[0]
    parts.append(f"Figures: seed {first.seed}" + "".join(f", {k}={v}" for k, v in first.overrides.items()) + ".\n")
    parts += write_figures(first.load_arrays("curves.npz"), first.config.get("rules", RULES), folder)
    return "\n".join(parts) + "\n"


@experiment("compare-rules", "Hebb, Oja, Sanger, BCM (and STDP) on the same input streams over several seeds",
            config=Config, report=report)
def run(ctx) -> dict:
    """One seed: every rule on every stream (and STDP); the curves behind the figures go to ``curves.npz``."""
    config = ctx.config
    metrics, arrays = run_rate(ctx.seed, config, ctx.progress)
    results = {"rate": metrics}
    if config.stdp:
        stdp = run_stdp(ctx.seed, config.stdp_ms)
        results["stdp"] = {"correlated": stdp["correlated"], "independent": stdp["independent"]}
        arrays["stdp.correlated"], arrays["stdp.independent"] = stdp["trace_correlated"], stdp["trace_independent"]
    ctx.save_arrays("curves.npz", **arrays)
    return results
