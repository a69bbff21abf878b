"""The spiking engine on CuPy (neuro.device_engine) against the CPU engine, spike for spike (float64).

On a machine without a GPU these run under fakecupy (its kernels emulated in NumPy: tests/fakecupy_emulators.py),
which checks the host side: what is launched with which arguments, that the state stays on the device, and that
the step loop makes no host transfer. The networks are those of the Brian2 and engine tests.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from neuro import AdEx, AdExCond, Izhikevich, LIF, Network, kernels, use_backend
from neuro import device_engine
from neuro.monitors import RateMonitor, SpikeMonitor, StateMonitor, TraceMonitor

HERE = Path(__file__).resolve().parent


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(f"_gpu_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def brian2_nets():
    """The networks of test_spiking_brian2.py (their builders need no Brian2, the module imports it)."""
    return _module(HERE / "test_spiking_brian2.py")


@pytest.fixture(scope="module")
def engine_nets():
    return _module(HERE / "test_spiking_network.py")


def _on_both(build, duration, batch_size=1, seed=None, pieces=1):
    """Build twice; reset one on the CPU and one on the GPU (``set_backend``); run both; return both monitor dicts."""
    (cpu, cpu_mons), (gpu, gpu_mons) = build(), build()
    cpu.reset(batch_size, seed)
    with use_backend("cupy"):
        gpu.reset(batch_size, seed)
    assert gpu._device is not None and cpu._device is None
    for _ in range(pieces):
        cpu.run(duration / pieces)
        gpu.run(duration / pieces)
    return cpu_mons, gpu_mons


def _emulated() -> bool:
    """True under fakecupy: the kernels are NumPy emulators doing the CPU's arithmetic in its order."""
    import cupy

    return hasattr(cupy, "_fake")


def _assert_same_records(want: dict, got: dict) -> None:
    """Spike for spike and value for value under fakecupy; on a GPU, where ``exp``/``log`` (1 ulp) and the order of
    atomicAdd can move a spike by a step in a recurrent network, the same statistics (see neuro.device_engine)."""
    if not _emulated():
        _assert_same_statistics(want, got)
        return
    for name, a in want.items():
        b = got[name]
        if isinstance(a, SpikeMonitor):
            for attr in ("steps", "i", "trial", "count"):
                np.testing.assert_array_equal(getattr(b, attr), getattr(a, attr), err_msg=f"{name}.{attr}")
        elif isinstance(a, RateMonitor):
            np.testing.assert_array_equal(b.counts, a.counts, err_msg=name)
        elif isinstance(a, StateMonitor):
            np.testing.assert_array_equal(b.t, a.t)
            for var in a.variables:
                np.testing.assert_array_equal(b.values[var], a.values[var], err_msg=f"{name}.{var}")
        elif isinstance(a, TraceMonitor):
            np.testing.assert_array_equal(b.t, a.t)
            np.testing.assert_array_equal(b.values, a.values, err_msg=name)
        else:
            raise TypeError(f"no comparison for {type(a).__name__}")
        assert all(isinstance(x, np.ndarray) for x in _host_attrs(b)), f"{name}: records are NumPy arrays"


def _assert_same_statistics(want: dict, got: dict) -> None:
    for name, a in want.items():
        b = got[name]
        assert all(isinstance(x, np.ndarray) for x in _host_attrs(b)), f"{name}: records are NumPy arrays"
        if isinstance(a, SpikeMonitor):
            assert abs(int(b.count.sum()) - int(a.count.sum())) <= 0.02 * a.count.sum() + 2, name
            assert np.mean(b.count == a.count) >= 0.9, name
        elif isinstance(a, RateMonitor):
            assert b.counts.shape == a.counts.shape
            assert abs(int(b.counts.sum()) - int(a.counts.sum())) <= 0.02 * a.counts.sum() + 2, name
        elif isinstance(a, StateMonitor):
            np.testing.assert_array_equal(b.t, a.t)
            for var in a.variables:
                np.testing.assert_allclose(b.values[var].mean(axis=1), a.values[var].mean(axis=1), rtol=0.05,
                                           atol=0.05 * np.abs(a.values[var]).mean() + 1e-12, err_msg=f"{name}.{var}")
        else:
            np.testing.assert_array_equal(b.t, a.t)
            np.testing.assert_allclose(b.values.mean(), a.values.mean(), rtol=0.05, err_msg=name)


def _host_attrs(mon):
    if isinstance(mon, SpikeMonitor):
        return mon.t, mon.i, mon.trial, mon.count
    if isinstance(mon, RateMonitor):
        return (mon.counts,)
    if isinstance(mon, StateMonitor):
        return (mon.t, *mon.values.values())
    return mon.t, mon.values


def _spikes(mons):
    return sum(int(m.count.sum()) for m in mons.values() if isinstance(m, SpikeMonitor))


# ------------------------------------------------------ whole networks, spike for spike


@pytest.mark.gpu
def test_recurrent_tsodyks_markram_network_of_the_brian2_test(brian2_nets):
    """LIF, recurrent Tsodyks-Markram synapses with delays, input spike times; spikes, rates, v, I_e, I_i."""
    want, got = _on_both(brian2_nets.recurrent_network, 100.0)
    assert _spikes(want) > 100
    _assert_same_records(want, got)


@pytest.mark.gpu
def test_conductance_network_of_the_brian2_test(brian2_nets):
    want, got = _on_both(brian2_nets.conductance_network, 100.0)
    assert _spikes(want) > 50
    _assert_same_records(want, got)


@pytest.mark.gpu
def test_poisson_driven_batch_with_per_trial_spike_times_run_in_pieces(engine_nets):
    """Two populations, Poisson inputs, per-trial spike times, static and dynamic synapses, every monitor kind;
    three trials with per-trial seeds, run in two pieces."""
    want, got = _on_both(lambda: engine_nets._lsm_like(ticks=True), 100.0, batch_size=3, seed=[4, 5, 6], pieces=2)
    assert _spikes(want) > 100
    assert not np.array_equal(want["spikes"].count[0], want["spikes"].count[1])  # trials differ
    _assert_same_records(want, got)


@pytest.mark.gpu
def test_current_and_conductance_populations_coupled_both_ways(engine_nets):
    want, got = _on_both(engine_nets._mixed_cond, 80.0, batch_size=2, seed=3)
    assert _spikes(want) > 20
    _assert_same_records(want, got)


@pytest.mark.gpu
@pytest.mark.parametrize("model", [Izhikevich(a=np.linspace(0.02, 0.1, 12), t_ref=0.5, I_bg=4.0),
                                   AdEx(a=np.linspace(0.0, 0.004, 12), t_ref=1.0, I_bg=0.7),
                                   AdExCond(t_ref=1.0, I_bg=0.7)], ids=["izhikevich", "adex", "adex_cond"])
def test_models_without_a_kernel_run_their_numpy_api_code_on_the_device(model):
    cond = isinstance(model, AdExCond)

    def build():
        net = Network(dt=0.05, seed=2)
        pop = net.population(12, model, name="P")
        src = net.poisson(8, rates=np.linspace(20.0, 120.0, 8), name="in")
        net.connect(src, pop, "fixed_probability", p=0.5, weight=0.05 if cond else 4.0, delay=0.5, U=0.3,
                    D=100.0, F=50.0, receptor="exc" if cond else None)
        net.connect(pop, pop, "fixed_probability", p=0.3, weight=0.02 if cond else -2.0, delay=1.0,
                    receptor="inh" if cond else None)
        net.inject(pop, np.linspace(0.0, 0.2, 12))
        return net, dict(spikes=net.monitor_spikes(pop),
                         state=net.monitor_state(pop, ["v", model.state_vars[1]], every=1.0))

    want, got = _on_both(build, 100.0, batch_size=2, seed=1)
    assert _spikes(want) > 10
    _assert_same_records(want, got)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cuba", "coba"])
def test_brette2007_networks(kind):
    nets = _module(HERE.parents[1] / "examples" / "brette2007.py")
    want, got = _on_both(lambda: nets.build(kind, seed=0), 30.0, batch_size=2, seed=1)
    assert _spikes(want) > 100
    _assert_same_records(want, got)


# ------------------------------------------------------------------ Poisson inputs


@pytest.mark.gpu
def test_poisson_spikes_are_the_cpus_for_per_trial_rates_and_silent_inputs():
    rates = np.array([[0.0, 5.0, 40.0, 300.0, 10000.0], [80.0, 0.0, 10.0, 500.0, 2.0]])  # 10 kHz: p = 1 per step

    def build():
        net = Network(dt=0.1, seed=9)
        src = net.poisson(5, rates=rates)
        return net, dict(spikes=net.monitor_spikes(src), rate=net.monitor_rate(src))

    want, got = _on_both(build, 200.0, batch_size=2, pieces=2)
    assert want["spikes"].count[0, 0] == want["spikes"].count[1, 1] == 0
    assert want["spikes"].count[0, 4] == 2000  # every step
    _assert_same_records(want, got)


@pytest.mark.gpu
def test_poisson_kernel_equals_its_numpy_reference_on_a_random_state():
    import cupy

    from neuro.inputs import poisson_advance_reference

    rng = np.random.default_rng(0)
    B, n, step = 3, 50, 7
    keys = rng.integers(0, 1 << 32, (B, 2), dtype=np.uint64)
    log_q = np.log1p(-rng.uniform(0.0, 0.9, (B, n)))
    log_q[0, :5] = 0.0  # rate 0
    draws = rng.integers(0, 1 << 40, (B, n))
    next_step = np.where(rng.random((B, n)) < 0.5, step, step + 3)
    host = [keys, log_q, draws.copy(), next_step.copy(), step, np.zeros((B, n), bool)]
    dev = [cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in host]
    poisson_advance_reference(*host)
    kernels.call("spiking_poisson_advance", *dev, impl="cuda")
    assert host[5].sum() > 30
    for h, d in zip(host[2:], dev[2:]):
        if isinstance(h, np.ndarray):
            np.testing.assert_array_equal(d.get(), h)


# ------------------------------------------------------ transfers, chunks, state, protocol


@pytest.mark.gpu
def test_the_step_loop_makes_no_host_transfer(engine_nets, monkeypatch):
    """No transfer inside a step: records come home in chunks (here one, at the end of each run), weights go over
    once per run."""
    import cupy

    fake = getattr(cupy, "_fake", None)
    if fake is None:
        pytest.skip("the transfer log is fakecupy's (on a GPU the other tests run the same code)")
    in_steps = []
    tick = device_engine.DeviceEngine._tick

    def logged_tick(self, currents=None):
        before = len(fake.EVENTS)
        tick(self, currents)
        in_steps.extend(e for e in fake.EVENTS[before:] if e[0] != "launch")

    monkeypatch.setattr(device_engine.DeviceEngine, "_tick", logged_tick)
    net, mons = engine_nets._lsm_like(ticks=True)
    with use_backend("cupy"):
        net.reset(2, seed=1)
    assert net._device.chunk > 600
    fake.EVENTS.clear()
    net.run(30.0)
    net.run(30.0)
    assert sum(kind == "launch" for kind, _, _ in fake.EVENTS) > 600 * 5  # it ran on the device
    assert in_steps == []
    transfers = [e for e in fake.EVENTS if e[0] in ("H2D", "D2H")]
    assert 0 < len(transfers) < 40 and mons["spikes"].count.sum() > 20


@pytest.mark.gpu
def test_records_brought_home_in_many_chunks_equal_one_chunk(engine_nets, monkeypatch):
    monkeypatch.setattr(device_engine, "CHUNK_BYTES", 10_000)  # a few steps per chunk
    (cpu, want), (gpu, got) = engine_nets._lsm_like(ticks=True), engine_nets._lsm_like(ticks=True)
    cpu.reset(2, seed=1)
    gpu.backend = "cupy"
    gpu.reset(2, seed=1)
    assert 1 < gpu._device.chunk < 20
    cpu.run(60.0)
    gpu.run(60.0)
    _assert_same_records(want, got)


@pytest.mark.gpu
def test_state_is_on_the_device_and_set_state_takes_device_or_host_values():
    import cupy

    def build(backend):
        net = Network(dt=0.1, seed=0, backend=backend)
        pop = net.population(20, LIF(tau_m=10.0, I_bg=16.0, t_ref=1.0), name="P")
        net.connect(pop, pop, "fixed_probability", p=0.3, weight=0.8, delay=0.5, U=0.4, D=80.0, F=20.0)
        return net, pop, net.monitor_spikes(pop)

    (cpu, cp_, cm), (gpu, gp, gm) = build("numpy"), build("cupy")
    v0 = np.linspace(0.0, 15.0, 20)
    for net, pop, v, I in ((cpu, cp_, v0, 0.5), (gpu, gp, cupy.asarray(v0), np.full(20, 0.5))):
        net.reset(2, seed=4)
        net.set_state(pop, "v", v)
        net.set_state(pop, "I_e", I)  # a host value onto the device state: copied over
        net.run(30.0)
    assert isinstance(gp.v, cupy.ndarray) and isinstance(gp.spikes, cupy.ndarray)
    assert isinstance(gpu.projections[0].u, cupy.ndarray) and isinstance(gpu.projections[0].w, np.ndarray)
    assert cm.count.sum() > 20
    np.testing.assert_array_equal(gm.count, cm.count)
    tol = 0.0 if _emulated() else 1e-9  # a GPU's exp (Tsodyks-Markram) is within an ulp of the host's
    np.testing.assert_allclose(gp.v.get(), cp_.v, rtol=tol, atol=tol)
    np.testing.assert_allclose(gpu.projections[0].R.get(), cpu.projections[0].R, rtol=tol, atol=tol)


@pytest.mark.gpu
def test_step_protocol_takes_and_returns_device_arrays():
    import cupy

    def build(backend):
        net = Network(dt=0.1, seed=0, backend=backend)
        pop = net.population(10, LIF(tau_m=10.0, t_ref=1.0), name="P")
        src = net.poisson(5, 200.0, name="in")
        net.connect(src, pop, "all_to_all", weight=2.0, delay=0.2)
        return net, net.monitor_spikes(pop)

    (cpu, cm), (gpu, gm) = build("numpy"), build("cupy")
    cpu.reset(2)
    gpu.reset(2)
    drive = np.random.default_rng(0).uniform(10.0, 25.0, (50, 2, 10))
    for k in range(50):
        want = cpu.step(inputs={"P.I": drive[k]})
        got = gpu.step(inputs={"P.I": cupy.asarray(drive[k])})
        assert set(got) == set(want) == {"P.spikes", "in.spikes"}
        for port in want:
            assert isinstance(got[port], cupy.ndarray)
            np.testing.assert_array_equal(got[port].get(), want[port])
    assert cm.count.sum() > 10
    np.testing.assert_array_equal(gm.count, cm.count)  # the records are home after each step


@pytest.mark.gpu
def test_what_stays_on_the_cpu_is_refused_by_name():
    net = Network(dt=0.1, seed=0, backend="cupy")
    pop = net.population(5, LIF())
    net.reset()
    net.add_hook(lambda n, step: None)
    with pytest.raises(ValueError, match="hooks"):
        net.run(1.0)
    with pytest.raises(ValueError, match="hooks"):
        net.step()
    net.hooks.clear()
    with pytest.raises(ValueError, match="brian2"):
        net.run(1.0, engine="brian2")
    net.inject(pop, np.ones((10, 5)), every=1.0)
    with pytest.raises(ValueError, match="current waveforms"):
        net.reset()
    with pytest.raises(ValueError, match="reset"):  # refused before any state changed: no run on the host
        net.run(1.0)
    with pytest.raises(ValueError, match="backend must be one of"):
        Network(backend="tpu")


@pytest.mark.gpu
def test_float32_state_runs_on_the_device_in_float32(engine_nets):
    """float32 adds some synaptic inputs in another precision than the CPU (atomicAdd of a float32 amplitude), so
    the spikes are compared in total, not one by one."""
    def build():
        net, mons = engine_nets._lsm_like(dtype="float32")
        return net, mons

    want, got = _on_both(build, 100.0, batch_size=2, seed=2)
    gpu_total, cpu_total = _spikes(got), _spikes(want)
    assert got["state"].values["v"].dtype == np.float32
    assert cpu_total > 100 and abs(gpu_total - cpu_total) <= 0.05 * cpu_total


def test_the_gpu_backend_without_cupy_is_refused_at_reset_naming_what_is_missing(monkeypatch):
    from neuro import backend

    monkeypatch.setattr(backend, "cupy_status", lambda: (False, "CuPy is not installed (a test's stand-in)"))
    net = Network(dt=0.1, backend="cupy")
    net.population(3, LIF())
    with pytest.raises(RuntimeError, match="'cupy' backend is not available: CuPy is not installed"):
        net.reset()
    assert net._device is None
