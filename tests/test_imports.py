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
