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

Writes ``table.md`` and ``table.csv`` (mean and std over seeds) and the
figures ``weight_norm.png``, ``alignment.png``, ``receptive_fields.png``,
``stdp_weights.png`` into the results folder.
"""

from __future__ import annotations

import csv

import numpy as np

import plasticity as P
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


def run_rate(seed: int, quick: bool, units: int = 4) -> tuple[list[dict], dict]:
    """Train every rule on every stream for one seed; returns metric rows and curves for the figures."""
    rng = np.random.default_rng(seed)
    n = 3000 if quick else 12000
    streams = {
        "gaussian": gaussian_stream(rng, n),
        "two-patterns": two_pattern_stream(rng, n),
        "patches": patch_stream(rng, n),
    }
    rows, curves = [], {}
    for stream, (X, ref) in streams.items():
        dim = X.shape[1]
        W0 = np.random.default_rng(seed + 1000).uniform(0.2, 0.5, size=(units, dim)) / np.sqrt(dim / 4)
        for name in RULES:
            rule = _make_rule(name, stream)
            with np.errstate(over="ignore", invalid="ignore"):
                res = P.train(rule, W0, X, batch_size=1, activation=_activation(name), seed=seed,
                              record_every=max(1, n // 100))
            hist = res.history
            norms = np.linalg.norm(hist[:, 0, :], axis=1)
            row = {"rule": name, "stream": stream, "seed": seed, "weight_norm": float(norms[-1]),
                   "stable": _stability(norms)}
            if stream == "two-patterns":
                row["selectivity"] = _selectivity(res.weights, ref, _activation(name))
            else:
                row["pc1_alignment"], row["topk_alignment"] = _alignment(res.weights, ref)
                curves[(stream, name)] = {
                    "steps": res.steps, "norm": norms,
                    "alignment": np.array([_cos(h[0], ref[0]) for h in hist]),
                }
            if stream == "patches":
                curves[("fields", name)] = res.weights
            rows.append(row)
    return rows, curves


def run_stdp(seed: int, quick: bool) -> dict:
    """Pair STDP on a ``neuro`` LIF neuron (2 trials, shared weights) fed 20 correlated + 20 independent 10 Hz inputs.

    The correlated inputs copy a common Poisson train with probability ``c = 0.3``
    per spike slot (equal rates in both groups). Weights are in units of their
    initial value (start 1, bounds [0, 2]).
    """
    import neuro

    n, half, dt, B, c, w0 = 40, 20, 1.0, 2, 0.3, 2.0
    T = 4000.0 if quick else 15000.0  # ms
    spikes = neuro.correlated_spike_times(n, half, 10.0, c, T, dt, trials=B, seed=seed)
    net = neuro.Network(dt=dt, seed=seed)
    inp = net.spike_times(n, *spikes, name="in")
    out = net.population(1, neuro.LIF(I_bg=13.0), name="out")
    proj = net.connect(inp, out, "all_to_all", weight=w0)
    rule = P.STDP(a_plus=0.04, a_minus=0.048, tau_plus=20.0, tau_minus=20.0, dt=dt, w_min=0.0, w_max=2 * w0)
    P.attach_to_network(net, proj, rule)
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


# ------------------------------------------------------------------ outputs


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds for each (rule, stream)."""
    out = []
    for stream in STREAMS:
        for name in RULES:
            sel = [r for r in rows if r["rule"] == name and r["stream"] == stream]
            entry = {"rule": name, "stream": stream, "seeds": len(sel)}
            for key in ("pc1_alignment", "topk_alignment", "selectivity", "weight_norm"):
                vals = np.array([r[key] for r in sel if key in r], dtype=float)
                if len(vals):
                    entry[key] = float(np.mean(vals))
                    entry[key + "_std"] = float(np.std(vals))
            entry["stable_fraction"] = float(np.mean([r["stable"] for r in sel]))
            out.append(entry)
    return out


def _fmt(entry, key):
    if key not in entry:
        return "-"
    m, s = entry[key], entry[key + "_std"]
    if not np.isfinite(m):
        return "diverged"
    if key == "weight_norm" and abs(m) >= 1e3:
        return f"{m:.2e}"
    return f"{m:.3f} ± {s:.3f}"


def write_table(summary: list[dict], stdp: list[dict], out_dir) -> str:
    head = "| rule | stream | PC1 alignment | top-k alignment | selectivity | weight norm | stable |\n|---|---|---|---|---|---|---|\n"
    lines = [
        f"| {e['rule']} | {e['stream']} | {_fmt(e, 'pc1_alignment')} | {_fmt(e, 'topk_alignment')} | "
        f"{_fmt(e, 'selectivity')} | {_fmt(e, 'weight_norm')} | {e['stable_fraction']:.2f} |"
        for e in summary
    ]
    c = np.array([s["correlated"] for s in stdp])
    i = np.array([s["independent"] for s in stdp])
    stdp_md = (
        "\n\nSTDP on a neuro LIF neuron (mean final weight / initial weight; bounds [0, 2]):\n\n"
        "| inputs | mean weight |\n|---|---|\n"
        f"| correlated (c = 0.3) | {c.mean():.3f} ± {c.std():.3f} |\n| independent | {i.mean():.3f} ± {i.std():.3f} |\n"
    )
    text = head + "\n".join(lines) + stdp_md
    (out_dir / "table.md").write_text(text)
    with open(out_dir / "table.csv", "w", newline="") as fh:
        keys = ["rule", "stream", "seeds", "pc1_alignment", "pc1_alignment_std", "topk_alignment", "topk_alignment_std",
                "selectivity", "selectivity_std", "weight_norm", "weight_norm_std", "stable_fraction"]
        w = csv.DictWriter(fh, fieldnames=keys, restval="")
        w.writeheader()
        for e in summary:
            w.writerow(e)
    return text


def write_figures(curves: dict, stdp: dict, out_dir) -> list[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = []

    def save(fig, name):
        FigureCanvasAgg(fig)
        fig.savefig(out_dir / name, dpi=100)
        names.append(name)

    for key, ylabel, fname, log in (("norm", "|w| (unit 1)", "weight_norm.png", True),
                                    ("alignment", "|cos(w, PC1)|", "alignment.png", False)):
        fig = Figure(figsize=(9, 3.5))
        fig.subplots_adjust(wspace=0.3, bottom=0.15)
        for k, stream in enumerate(("gaussian", "patches")):
            ax = fig.add_subplot(1, 2, k + 1)
            for name in RULES:
                cv = curves.get((stream, name))
                if cv is not None:
                    y = cv[key]
                    ax.plot(cv["steps"], np.where(np.isfinite(y), y, np.nan), label=name)
            if log:
                ax.set_yscale("log")
            ax.set_title(stream)
            ax.set_xlabel("presentations")
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=8)
        save(fig, fname)

    fig = Figure(figsize=(6, 6))
    for r, name in enumerate(RULES):
        W = curves[("fields", name)]
        W = np.where(np.isfinite(W), W, 0.0)
        scale = np.maximum(np.abs(W).max(axis=1, keepdims=True), 1e-300)
        tiles = np.full((8, W.shape[0] * 9 - 1), np.nan)  # units side by side, one blank column between
        for u in range(W.shape[0]):
            tiles[:, u * 9:u * 9 + 8] = (W[u] / scale[u]).reshape(8, 8)
        ax = fig.add_subplot(len(RULES), 1, r + 1)
        ax.imshow(tiles, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name)
    fig.suptitle("receptive fields on 8x8 digit patches (each unit scaled to max |w| = 1)", fontsize=9)
    save(fig, "receptive_fields.png")

    fig = Figure(figsize=(5, 3.5))
    fig.subplots_adjust(left=0.15, bottom=0.15)
    ax = fig.add_subplot(1, 1, 1)
    t = (np.arange(len(stdp["trace_correlated"])) + 1) * 50
    ax.plot(t, stdp["trace_correlated"], label="correlated inputs")
    ax.plot(t, stdp["trace_independent"], label="independent inputs")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("mean weight / initial weight")
    ax.legend()
    save(fig, "stdp_weights.png")
    return names


@experiment("compare-rules", "Hebb, Oja, Sanger, BCM (and STDP) on the same input streams over several seeds")
def run(ctx) -> dict:
    n_seeds = int(ctx.params.get("seeds", 2 if ctx.quick else 5))
    seeds = [ctx.seed + k for k in range(n_seeds)]
    rows, stdp_runs, first_curves = [], [], None
    for s in seeds:
        r, curves = run_rate(s, ctx.quick)
        rows.extend(r)
        first_curves = first_curves or curves
        stdp_runs.append(run_stdp(s, ctx.quick))
    summary = summarize(rows)
    table = write_table(summary, stdp_runs, ctx.out_dir)
    figures = write_figures(first_curves, stdp_runs[0], ctx.out_dir)
    return {
        "seeds": seeds,
        "summary": summary,
        "stdp": [{"correlated": s["correlated"], "independent": s["independent"]} for s in stdp_runs],
        "per_seed": rows,
        "figures": figures,
        "table": table,
    }
