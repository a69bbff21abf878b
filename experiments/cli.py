"""The ``neuro`` command: ``neuro list``, ``neuro run NAME``, ``neuro info``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata

from .registry import DEFAULT_EXPERIMENT, all_experiments, run_experiment


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _brian2_status() -> str:
    try:
        import brian2
    except Exception as exc:  # a broken install is reported, not raised
        return f"not usable ({exc.__class__.__name__}: {exc})"
    return f"usable (Brian2 {brian2.__version__})"


def _nvcc_status() -> str:
    from neuro.kernels import nvcc_path

    path = nvcc_path()
    if path is None:
        return "not found"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{path} (does not run: {exc})"
    release = next((line.strip() for line in out.splitlines() if "release" in line), "version unknown")
    return f"{path} ({release})"


def info_lines() -> list[str]:
    """What ``neuro info`` prints: versions and what is usable here."""
    from neuro import backend, kernels

    gpu_ok, gpu_reason = backend.cupy_status()
    lines = [f"python {sys.version.split()[0]}"]
    lines += [f"{name} {_version(name)}" for name in ("neurokit-sim", "numpy", "scipy", "numba", "brian2", "torch", "reservoirpy")]
    lines += [
        f"backend: {backend.get_backend()}",
        f"cupy/GPU: {'usable, ' if gpu_ok else 'not usable: '}{gpu_reason}",
        f"nvcc: {_nvcc_status()}",
        f"brian2: {_brian2_status()}",
        "kernels: "
        + ", ".join(
            f"{name} [{'/'.join(k for k, v in impls.items() if v and k != 'cuda_usable')}]"
            for name, impls in kernels.available().items()
        ),
    ]
    return lines


def _cmd_list(args: argparse.Namespace) -> int:
    experiments = all_experiments()
    width = max((len(n) for n in experiments), default=0)
    for name, exp in experiments.items():
        mark = " (default)" if name == DEFAULT_EXPERIMENT else ""
        print(f"{name:<{width}}  {exp.summary}{mark}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        folder = run_experiment(args.name, out=args.out, seed=args.seed, quick=args.quick)
    except KeyError as exc:
        print(f"neuro run: {exc.args[0]}", file=sys.stderr)
        return 2
    print(f"results written to {folder}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    print("\n".join(info_lines()))
    return 0


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative int, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuro", description="Neuromorphic simulation toolkit: run studies, list them, inspect the install.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registered experiments").set_defaults(fn=_cmd_list)
    run = sub.add_parser("run", help="run an experiment into results/<name>/<timestamp>/")
    run.add_argument("name", nargs="?", default=DEFAULT_EXPERIMENT, help=f"experiment name (default: {DEFAULT_EXPERIMENT})")
    run.add_argument("--quick", action="store_true", help="small sizes for a fast check")
    run.add_argument("--out", default="results", help="results root folder (default: results)")
    run.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    run.set_defaults(fn=_cmd_run)
    sub.add_parser("info", help="versions, backend, and whether CuPy/GPU/nvcc/Brian2 are usable").set_defaults(fn=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
