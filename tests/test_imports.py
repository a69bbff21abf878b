import subprocess
import sys


def test_all_packages_import():
    out = subprocess.run([sys.executable, "-c", "import neuro, ann, reservoirs, plasticity, scans, experiments"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_import_neuro_is_light():
    """Neither importing neuro nor using its spiking core pulls in Brian2, CuPy, PyTorch or matplotlib."""
    code = (
        "import sys, neuro, neuro.kernels; neuro.Network; "
        "print([m for m in ('brian2', 'neuro.brian2', 'cupy', 'torch', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_package_has_the_distribution_version():
    from importlib.metadata import version

    import ann
    import experiments
    import neuro
    import plasticity
    import reservoirs
    import scans

    expected = version("neurokit-sim")
    assert [m.__version__ for m in (neuro, scans, ann, reservoirs, plasticity, experiments)] == [expected] * 6


def _loaded_after(statement, modules):
    code = f"import sys; {statement}; print([m for m in {modules!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_reservoirs_is_light():
    """``import reservoirs`` loads its names on first use: no SciPy, no numba (and no kernels) until then."""
    heavy = ("scipy", "numba", "reservoirs.esn", "reservoirs.recurrence", "reservoirs.metrics", "neuro.kernels")
    assert _loaded_after("import reservoirs", heavy) == "[]"
    # the ESN needs scipy.sparse and numba, but not the optimizer and special functions of SoftmaxReadout
    assert _loaded_after("from reservoirs import ESN", ("scipy.optimize", "scipy.special")) == "[]"
    # the lazy names are the real ones, and dir() lists them
    code = "import reservoirs, reservoirs.esn as e; assert reservoirs.ESN is e.ESN; assert 'metrics' in dir(reservoirs)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
