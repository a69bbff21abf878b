"""coupled: a spiking liquid, an echo-state network and ann readouts in one neuro.Simulator run on one input stream.

The task: classify which of ``n_classes`` smooth template waveforms
(sums of three random sinusoids of 3-20 Hz, over ``duration`` ms) a trial
carried, each trial the template plus smooth noise (an OU process, tau 10
ms, SD ``noise``). The stream ``u(t)`` reaches two substrates in the same
Simulator (tick ``DT`` = 0.5 ms):

* the liquid of Maass et al. (2002) (``LSM.maass2002(...).network()``, 135
  LIF neurons, static input synapses since the stream is sustained) through
  ``N_CHANNELS`` = 4 Poisson input channels with Gaussian tuning curves
  (80 Hz peak at u = -0.75, -0.25, 0.25, 0.75, width 0.25); its spikes are
  filtered per neuron (``RateReadout``, tau 30 ms, in Hz, scaled by 1/50);
* an ``ESN`` with a time constant (``tau`` 20 ms, ``dt`` 0.5 ms: leak rate
  0.025), fed ``u`` directly, adapted beforehand by intrinsic plasticity
  (:func:`plasticity.adapt_esn`, Gaussian target N(0, 0.5^2), on ten training
  trials of the same stream). Measured on the ESN alone (200 training trials,
  2 seeds), this IP setting is about neutral for the task (0.92 / 0.77
  held-out accuracy vs 0.94 / 0.75 unadapted); a narrower target (SD 0.3) or
  stronger input (scaling 2) shrinks the gains and the spectral radius (to
  0.26-0.6) and costs 0.03-0.08;
* ``ann`` readouts as ``ann.ModuleComponent``: a ``Linear`` layer and an
  LSTM (an ``LSTMCell`` and a ``Linear`` head) on the liquid alone, the ESN
  alone and both concatenated (6 readouts), learning online with Adam from
  the one-hot class over the last third of each trial (mean squared error,
  on every ``EVERY`` = 3rd tick, truncated
  backpropagation of one step) over ``epochs`` passes of the training trials,
  then scored, frozen, on held-out trials by the argmax at the last tick.

Offline references from the same run: a softmax readout
(:class:`reservoirs.SoftmaxReadout`) on the monitored final states of the
liquid, the ESN, both, the filtered input channels alone (the input-only
baseline), and a twin of the ESN (same weights) left without intrinsic
plasticity, which runs in the same Simulator. Several seeds (each draws the templates, the circuits and the
trials). Writes ``accuracy.png`` (every readout and substrate, mean and SD
over seeds), ``online_learning.png`` (the online readouts' training loss) and
``readout_traces.png`` (the concatenated linear readout's class scores along
held-out trials); ``results.json`` holds every number behind them.

Cost: the quick form (2 seeds, 72 + 48 trials of 120 ms, 2 passes) takes
5-30 s depending on the machine's load; the full form (5 seeds, 300 + 150
trials of 250 ms, 6 passes) 7 CPU minutes (14 min wall on the shared 2-core
machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import ann
from experiments.config import param
from experiments.registry import experiment
from experiments.studies._figures import figure, save
from neuro import Simulator
from neuro.components import RateReadout
from plasticity import IntrinsicPlasticity, adapt_esn
from reservoirs import ESN, LSM, SoftmaxReadout

DT = 0.5  # ms
N_CHANNELS = 4
PREFERRED = np.array([-0.75, -0.25, 0.25, 0.75])
PEAK_RATE = 80.0  # Hz
RATE_SCALE = 1.0 / 50.0  # liquid rates (Hz) into the readouts
EVERY = 3  # ann readouts run on every 3rd tick
LEARN_FROM = 2 / 3  # online readouts learn over the last third of each trial
SUBSTRATES = {"liquid": ("lsm",), "esn": ("esn",), "both": ("lsm", "esn")}
READOUTS = ("linear", "lstm")


class LSTMReadout(ann.nn.Module):
    """An ``LSTMCell`` and a ``Linear`` head with a recurrent ``step(x, state) -> (y, state)`` for ModuleComponent."""

    def __init__(self, n_in: int, hidden: int, n_out: int, seed=None):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.cell = ann.nn.LSTMCell(n_in, hidden, seed=rng)
        self.head = ann.nn.Linear(hidden, n_out, seed=rng)

    def step(self, x, state):
        h, c = self.cell(x, state)
        return self.head(h), (h, c)

    def forward(self, x):  # (T, B, n_in) -> (T, B, n_out), the whole sequence from a zero state
        state, ys = None, []
        for k in range(x.shape[0]):
            y, state = self.step(x[k], state)
            ys.append(y)
        return ann.stack(ys)


def templates(n_classes: int, duration: float, rng) -> np.ndarray:
    """``(n_classes, T)``: sums of three sinusoids (3-20 Hz, random phases), scaled to peak 0.8."""
    t = np.arange(int(round(duration / DT))) * DT * 1e-3  # s
    f = rng.uniform(3.0, 20.0, (n_classes, 3, 1))
    waves = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, (n_classes, 3, 1))).sum(axis=1)
    return 0.8 * waves / np.abs(waves).max(axis=1, keepdims=True)


def trials(shapes: np.ndarray, n: int, noise: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy trials: the stream ``(n, T, 1)`` and the labels ``(n,)``."""
    labels = rng.integers(0, len(shapes), n)
    T = shapes.shape[1]
    decay = np.exp(-DT / 10.0)
    kicks = rng.standard_normal((n, T)) * noise * np.sqrt(1 - decay**2)
    ou = np.zeros((n, T))
    ou[:, 0] = noise * rng.standard_normal(n)
    for k in range(1, T):
        ou[:, k] = decay * ou[:, k - 1] + kicks[:, k]
    return (shapes[labels] + ou)[:, :, None], labels


def encode_spikes(u: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson spikes of the tuned input channels: ``(indices, times ms, trials)`` for ``LSM.network``."""
    rate = PEAK_RATE * np.exp(-((u - PREFERRED) ** 2) / (2 * 0.25**2))  # (n, T, C) Hz
    trial, tick, channel = np.nonzero(rng.random(rate.shape) < rate * DT * 1e-3)
    return channel.astype(np.int64), tick * DT, trial.astype(np.int64)


def masked_mse(y, target):
    """Mean squared error over the trials whose target is given (an all-zero target row means none yet)."""
    mask = np.asarray(target.numpy().any(axis=1, keepdims=True), dtype=y.dtype)
    if not mask.any():
        return (y * 0.0).sum()
    return (((y - target) ** 2) * ann.Tensor(mask)).sum() / (mask.sum() * y.shape[1])


def build(lsm, esn, plain, modules, spikes, n_classes, learn: bool, lr: float):
    """The Simulator: liquid, its rate filters, the ESN and the readouts (learning or frozen)."""
    sim = Simulator(dt=DT)
    sim.add("net", lsm.network(*spikes))
    n = lsm.n_neurons
    sim.add("lsm", RateReadout(n, 1, tau=30.0, dt=DT))
    sim.add("inp", RateReadout(N_CHANNELS, 1, tau=30.0, dt=DT))
    sim.add("esn", esn)
    sim.add("plain", plain)
    eye = np.eye(n)
    sim.connect("net.E.spikes", "lsm.x", weight=eye[:, : lsm.n_exc])
    sim.connect("net.I.spikes", "lsm.x", weight=eye[:, lsm.n_exc:])
    sim.connect("net.input.spikes", "inp.x")
    sizes = {"lsm": n, "esn": esn.units}
    for name, module in modules.items():
        substrate = SUBSTRATES[name.split("/")[1]]
        opt = ann.optim.Adam(module.parameters(), lr=lr) if learn else None
        sim.add(name, ann.ModuleComponent(module, {s: sizes[s] for s in substrate}, {"y": n_classes}, every=EVERY,
                                          optimizer=opt, loss=masked_mse))
        for s in substrate:
            sim.connect("lsm.r" if s == "lsm" else "esn.x", f"{name}.{s}", weight=RATE_SCALE if s == "lsm" else None)
    return sim


def run_trials(sim, u, onehot, duration, learn: bool, seed: int):
    """One pass over a batch of trials; the final states and outputs ``(B, n)`` by port, and the output traces."""
    T = u.shape[1]
    final = {p: sim.monitor(p, every=T - 1) for p in ("lsm.r", "esn.x", "plain.x", "inp.r")}
    readouts = [c for c in sim.components if "/" in c]
    final.update({f"{c}.y": sim.monitor(f"{c}.y", every=T - 1) for c in readouts})
    traces = sim.monitor("linear/both.y", every=10)
    inputs = {"esn.u": u, "plain.u": u}
    if learn:
        start = LEARN_FROM * duration  # the class is taught over the last third of each trial
        target = lambda t, y=onehot: y if t >= start else np.zeros_like(y)  # noqa: E731
        inputs.update({f"{c}.target": target for c in readouts})
    sim.reset(batch_size=len(u), seed=seed).run(duration, inputs=inputs)
    return {p: m.values[:, -1] for p, m in final.items()}, traces  # port monitors are (B, K, n)


def one_seed(seed: int, cfg: dict) -> dict:
    rng = np.random.default_rng(seed)
    K, duration = cfg["n_classes"], cfg["duration"]
    shapes = templates(K, duration, rng)
    u_train, y_train = trials(shapes, cfg["n_train"], cfg["noise"], rng)
    u_test, y_test = trials(shapes, cfg["n_test"], cfg["noise"], rng)
    lsm = LSM.maass2002(seed=seed, n_inputs=N_CHANNELS, dt=DT, input_p=0.5, input_synapses="static")
    esn_kw = dict(tau=20.0, dt=DT, input_dim=1, spectral_radius=0.9, input_scaling=1.0, input_connectivity=1.0,
                  bias_scaling=0.1, seed=seed + 1, threads=1)
    esn, plain = ESN(cfg["esn_units"], **esn_kw), ESN(cfg["esn_units"], **esn_kw)  # the same weights; only one adapts
    ip = IntrinsicPlasticity(lr=cfg["ip_lr"], activation="tanh", mu=0.0, sigma=0.5)
    adapt_u = u_train[: cfg["ip_trials"]].reshape(-1, 1)
    before = esn.run(adapt_u)
    adaptation = adapt_esn(esn, adapt_u, ip=ip)
    after = esn.run(adapt_u)
    ip_summary = {"state_sd_before": float(before.std()), "state_sd_after": float(after.std()),
                  "spectral_radius_before": adaptation["spectral_radius_before"],
                  "spectral_radius_after": adaptation["spectral_radius_after"]}
    sizes = {"liquid": lsm.n_neurons, "esn": esn.units, "both": lsm.n_neurons + esn.units}
    modules = {}
    for name, n_in in sizes.items():
        modules[f"linear/{name}"] = ann.nn.Linear(n_in, K, seed=rng)
        modules[f"lstm/{name}"] = LSTMReadout(n_in, cfg["lstm_hidden"], K, seed=rng)
    onehot_train = np.eye(K)[y_train]
    train_sim = build(lsm, esn, plain, modules, encode_spikes(u_train, rng), K, True, cfg["lr"])
    losses = {name: [] for name in modules}
    for epoch in range(cfg["epochs"]):
        states_train, _ = run_trials(train_sim, u_train, onehot_train, duration, True, seed + 10 + epoch)
        for name in modules:
            comp = train_sim.components[name]
            taught = [v for v in comp.losses[-cfg["ticks_per_epoch"]:] if v > 0]  # the last third of each trial
            losses[name].append(float(np.mean(taught)))
    test_sim = build(lsm, esn, plain, modules, encode_spikes(u_test, rng), K, False, cfg["lr"])
    states_test, traces = run_trials(test_sim, u_test, None, duration, False, seed + 99)
    online = {name: float(np.mean(states_test[f"{name}.y"].argmax(axis=1) == y_test)) for name in modules}
    features = {"input only": ("inp.r",), "liquid": ("lsm.r",), "esn": ("esn.x",), "both": ("lsm.r", "esn.x"),
                "esn without IP": ("plain.x",)}
    offline = {}
    for name, ports in features.items():
        xtr = np.concatenate([states_train[p] for p in ports], axis=1)
        xte = np.concatenate([states_test[p] for p in ports], axis=1)
        mean, sd = xtr.mean(axis=0), xtr.std(axis=0) + 1e-9
        clf = SoftmaxReadout(l2=1e-2).fit((xtr - mean) / sd, y_train)
        offline[name] = float(clf.score((xte - mean) / sd, y_test))
    return {"seed": seed, "online": online, "offline": offline, "losses": losses, "intrinsic_plasticity": ip_summary,
            "liquid_rate_hz": float(states_test["lsm.r"].mean()),
            "trace_t": traces.t, "trace_linear_both": traces.values[:4], "trace_labels": y_test[:4],
            "templates": shapes}


def write_figures(out_dir, res) -> list[str]:
    names = []
    seeds = res["per_seed"]
    fig, axes = figure(6.5, 3.8)
    ax = axes[0]
    labels, width = list(SUBSTRATES), 0.26
    x = np.arange(len(labels))
    for i, (kind, key) in enumerate((("softmax (offline)", "offline"), ("ann linear (online)", "linear"),
                                     ("ann LSTM (online)", "lstm"))):
        if key == "offline":
            vals = np.array([[s["offline"][n] for n in labels] for s in seeds])
        else:
            vals = np.array([[s["online"][f"{key}/{n}"] for n in labels] for s in seeds])
        ax.bar(x + (i - 1) * width, vals.mean(axis=0), width, yerr=vals.std(axis=0), capsize=2, label=kind)
    plain = np.array([s["offline"]["esn without IP"] for s in seeds])
    ax.plot([x[1] - width], [plain.mean()], "D", color="k", ms=5, label=f"ESN without IP, softmax ({plain.mean():.2f})")
    base = np.array([s["offline"]["input only"] for s in seeds])
    ax.axhline(base.mean(), color="k", ls=":", lw=1, label=f"input only, softmax ({base.mean():.2f})")
    ax.axhline(1.0 / res["config"]["n_classes"], color="0.6", ls="--", lw=1, label="chance")
    ax.set_xticks(x, ["liquid (135 LIF)", f"ESN ({res['config']['esn_units']}, IP)", "both"])
    ax.set_ylabel("held-out accuracy at the last tick")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{res['config']['n_classes']} noisy templates, mean and SD of {len(seeds)} seeds", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    save(fig, out_dir, "accuracy.png", names)

    fig, axes = figure(5.5, 3.6)
    ax = axes[0]
    for name in seeds[0]["losses"]:
        curve = np.mean([s["losses"][name] for s in seeds], axis=0)
        ax.plot(np.arange(1, curve.size + 1), curve, marker="o", ls="-" if name.startswith("linear") else "--", label=name)
    ax.set_xlabel("epoch (one pass over the training trials)")
    ax.set_ylabel("online MSE loss (taught ticks of the pass)")
    ax.legend(fontsize=7)
    save(fig, out_dir, "online_learning.png", names)

    fig, axes = figure(8.0, 3.2, 1, 4)
    s0 = seeds[0]
    tr = np.asarray(s0["trace_linear_both"])  # (4 trials, K_t, classes)
    for b, ax in enumerate(axes):
        for c in range(tr.shape[2]):
            ax.plot(s0["trace_t"], tr[b, :, c], lw=1.5 if c == s0["trace_labels"][b] else 0.7, label=f"class {c}")
        ax.set_title(f"trial of class {s0['trace_labels'][b]}", fontsize=8)
        ax.set_xlabel("t (ms)")
    axes[0].set_ylabel("linear/both output")
    axes[0].legend(fontsize=6)
    save(fig, out_dir, "readout_traces.png", names)
    return names


@dataclass(frozen=True)
class Config:
    """The stream, the readouts' sizes and training, and the seeds."""

    duration: float = param(250.0, min=1.0, help="length of each trial (ms)")
    noise: float = param(0.4, min=0.0, help="SD of the smooth (OU) noise added to each trial")
    n_train: int = param(300, min=1, help="training trials")
    n_test: int = param(150, min=1, help="test trials")
    esn_units: int = param(150, min=1, help="units of the IP-adapted ESN")
    lstm_hidden: int = param(24, min=1, help="hidden units of the LSTM readout")
    epochs: int = param(6, min=1, help="passes over the training trials")
    lr: float = param(1e-2, min=0.0, help="learning rate of the trained ann readouts")
    seeds: int = param(5, min=1, help="seeds (ctx.seed + 1000 k)")

    @classmethod
    def quick(cls) -> "Config":
        return cls(duration=120.0, n_train=72, n_test=48, esn_units=60, lstm_hidden=12, epochs=2, seeds=2)


@experiment("coupled", "spiking liquid + IP-adapted ESN(tau) + ann readouts (linear, LSTM) in one Simulator run on one stream",
            config=Config)
def run(ctx) -> dict:
    c = ctx.config
    cfg = {"n_classes": 3, "duration": c.duration, "noise": c.noise, "n_train": c.n_train, "n_test": c.n_test,
           "esn_units": c.esn_units, "lstm_hidden": c.lstm_hidden, "epochs": c.epochs, "lr": c.lr,
           "ip_lr": 3e-4, "ip_trials": 10, "dt": DT, "every": EVERY}
    cfg["ticks_per_epoch"] = -(-int(round(cfg["duration"] / DT)) // EVERY)
    n_seeds = c.seeds
    per_seed = [one_seed(ctx.seed + 1000 * k, cfg) for k in range(n_seeds)]
    summary = {}
    for kind in ("online", "offline"):
        for name in per_seed[0][kind]:
            vals = [s[kind][name] for s in per_seed]
            summary[f"{kind}:{name}"] = {"mean": float(np.mean(vals)), "sd": float(np.std(vals))}
    res = {"config": cfg, "seeds": [s["seed"] for s in per_seed], "summary": summary, "per_seed": per_seed}
    res["figures"] = write_figures(ctx.out_dir, res)
    return res
