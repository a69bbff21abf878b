"""The ``neuro`` command (also ``python -m experiments``).

``neuro list``, ``neuro show NAME``, ``neuro run NAME [options]``,
``neuro report RUN_DIR``, ``neuro info``; ``neuro`` alone prints help.
Exit status: 0 done; 1 some points failed (the count is printed); 2 a user
mistake (one line on stderr, no traceback); 130 interrupted (finished points
are kept: the same command resumes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib import metadata

import logging

from . import config as cfg
from .config import ConfigError
from .registry import DEFAULT_EXPERIMENT, all_experiments, get


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
    from neuro import backend

    from .environment import all_kernels

    gpu_ok, gpu_reason = backend.cupy_status()
    lines = [f"python {sys.version.split()[0]}"]
    lines += [f"{name} {_version(name)}" for name in ("neurokit-sim", "numpy", "scipy", "numba", "brian2", "torch", "reservoirpy")]
    lines += [
        f"backend: {backend.get_backend()}",
        f"cupy/GPU: {'usable, ' if gpu_ok else 'not usable: '}{gpu_reason}",
        f"nvcc: {_nvcc_status()}",
        f"brian2: {_brian2_status()}",
        "kernels (reference / CPU fast path / CUDA, * = the CUDA kernel cannot run here):",
    ]
    for name, impls in all_kernels().items():
        parts = [k for k in ("reference", "cpu") if impls[k]]
        if impls["cuda"]:
            parts.append("cuda" if impls["cuda_usable"] else "cuda*")
        lines.append(f"  {name} [{'/'.join(parts)}]")
    return lines



class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) and help text computed when asked (the study list)."""

    def __init__(self, *args, lazy_epilog=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy_epilog = lazy_epilog

    def format_help(self) -> str:
        if self._lazy_epilog is not None:
            self.epilog = self._lazy_epilog()
        return super().format_help()

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _studies_epilog() -> str:
    lines = [f"  {name:<16} {exp.summary}" for name, exp in all_experiments().items()]
    return "studies:\n" + "\n".join(lines)


def _cmd_list(args: argparse.Namespace) -> int:
    experiments = all_experiments()
    width = max((len(n) for n in experiments), default=0)
    for name, exp in experiments.items():
        mark = " (default)" if name == DEFAULT_EXPERIMENT else ""
        params = " [config]" if exp.config is not None else ""
        print(f"{name:<{width}}  {exp.summary}{mark}{params}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    exp = get(args.name)
    print(f"{exp.name}: {exp.summary}")
    if exp.config is None:
        print("no declared parameters; --set key=value passes values to ctx.params (read as JSON where they parse)")
        return 0
    rows = [("parameter", "type", "default", "quick", "allowed", "help")]
    for s in cfg.schema_fields(exp.config):
        rows.append((s.name, s.type_name(), _shown(s.default), _shown(s.quick), _allowed(s), s.help))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(f"{c:<{w}}" for c, w in zip(r, widths)) + "  " + r[5])
    return 0


def _shown(value) -> str:
    """A value as it is written after ``--set key=``."""
    if isinstance(value, tuple) and any(isinstance(v, tuple) for v in value):
        return json.dumps(value, separators=(",", ":"))  # nested: a JSON list, [[4,1],[8,1]]
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _allowed(spec) -> str:
    if spec.choices:
        return "|".join(map(str, spec.choices))
    if spec.min is not None and spec.max is not None:
        return f"{spec.min} to {spec.max}"
    if spec.min is not None or spec.max is not None:
        return f">= {spec.min}" if spec.min is not None else f"<= {spec.max}"
    return ""


def _values(args: argparse.Namespace) -> tuple[dict, dict]:
    values = cfg.load_file(args.config) if args.config else {}
    assigned = [cfg.parse_assignment(text) for text in args.set]
    values.update(assigned)
    axes: dict = {}
    for text in args.sweep:
        key, vals = cfg.parse_sweep(text)
        if key in axes or key in dict(assigned):
            raise ConfigError(f"--sweep {key}: given twice (or also with --set)")
        axes[key] = vals
    return values, axes


def _plan(args: argparse.Namespace):
    from .runner import plan, plan_from_run

    spec_given = any((args.name, args.quick, args.seed is not None, args.seeds, args.set, args.sweep, args.config))
    if args.resume and not spec_given:
        return plan_from_run(args.resume)
    values, axes = _values(args)
    seeds = cfg.parse_seeds(args.seeds) if args.seeds else None
    return plan(args.name or DEFAULT_EXPERIMENT, quick=args.quick, seeds=seeds,
                seed=0 if args.seed is None else args.seed, values=values, axes=axes)


def _cmd_run(args: argparse.Namespace) -> int:
    from .executors import make_executor
    from .runner import execute, out_root

    p = _plan(args)  # every check before anything is created (or a cluster started)
    if args.resume is None:
        out_root(args.out)
    progress = not args.quiet
    with make_executor(workers=args.workers or None, dask_local=args.dask_local, scheduler=args.scheduler,
                       use_pool=args.workers is not None) as executor:
        outcome = execute(p, out=args.out, executor=executor, resume=args.resume, new=args.new, progress=progress)
    if outcome.run_dir is not None:
        print(f"results written to {outcome.run_dir}")
        if (outcome.run_dir / "report.md").is_file():
            print(f"report: {outcome.run_dir / 'report.md'}")
    if outcome.failed:
        where = f" (errors in {outcome.run_dir}/points/*.failed.json)" if outcome.run_dir else ""
        first = outcome.failed[0]
        print(f"neuro run: {len(outcome.failed)} of {outcome.total} points failed{where}; first: {first['error']}",
              file=sys.stderr)
        if outcome.run_dir is None:
            print(first["traceback"], file=sys.stderr, end="")
        return 1
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    try:
        path = build_report(args.run_dir)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(f"report written to {path}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    print("\n".join(info_lines()))
    return 0


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative int, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative int, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def _add_verbosity(parser: argparse.ArgumentParser, default) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=default, help="more messages (-vv: debug)")
    group.add_argument("-q", "--quiet", action="store_true", default=default, help="only warnings and errors; no progress bar")


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("name", nargs="?", default=None, help=f"study name (default: {DEFAULT_EXPERIMENT}; see below)")
    run.add_argument("--quick", action="store_true", help="the study's small settings, for a fast check")
    seeds = run.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=_non_negative_int, default=None, help="one random seed (default: 0)")
    seeds.add_argument("--seeds", metavar="LIST", help="seeds as a sweep axis: 0-9, 0,3,5 or 0-3,7")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter (repeatable; see neuro show NAME)")
    run.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2", help="sweep a parameter over values (repeatable: the grid is their product)")
    run.add_argument("--config", metavar="FILE", help="parameter values from a .toml or .json file (--set wins)")
    run.add_argument("--out", default="results", help="results root folder (default: results)")
    run.add_argument("--resume", metavar="RUN_DIR", help="go on with this run folder (by default an unfinished run of the same command is resumed)")
    run.add_argument("--new", action="store_true", help="start a new run folder even if an unfinished one matches")
    ex = run.add_mutually_exclusive_group()
    ex.add_argument("--workers", type=_positive_int, nargs="?", const=0, default=None, metavar="N",
                    help="a local process pool of N workers (N omitted: one per core)")
    ex.add_argument("--dask-local", type=_positive_int, metavar="N", help="a Dask LocalCluster of N worker processes")
    ex.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask cluster's scheduler (tcp://host:8786)")


def _version_text() -> str:
    from .environment import toolkit_version

    return f"neuro (neurokit-sim) {toolkit_version()}"


class _Version(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version_text())
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neuro", description="Neuromorphic simulation toolkit: run studies and sweeps, list them, "
                     "rebuild reports, inspect the install.")
    parser.add_argument("--version", action=_Version)
    _add_verbosity(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.add_parser("list", help="list the registered studies").set_defaults(fn=_cmd_list)
    show = sub.add_parser("show", help="a study's parameters: type, default, quick value, range")
    show.add_argument("name")
    show.set_defaults(fn=_cmd_show)
    run = sub.add_parser("run", help="run a study (or a sweep) into OUT/<name>/<timestamp>/",
                         lazy_epilog=_studies_epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_arguments(run)
    _add_verbosity(run, argparse.SUPPRESS)
    run.set_defaults(fn=_cmd_run)
    report = sub.add_parser("report", help="rebuild a run folder's summary, figures and report.md from its saved data")
    report.add_argument("run_dir")
    _add_verbosity(report, argparse.SUPPRESS)
    report.set_defaults(fn=_cmd_report)
    sub.add_parser("info", help="versions, backend, and whether CuPy/GPU/nvcc/Brian2 are usable").set_defaults(fn=_cmd_info)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> logging.Handler:
    logger = logging.getLogger("neuro")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("neuro: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO)
    return handler


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handler = _configure_logging(args.verbose or 0, bool(args.quiet))
    try:
        return args.fn(args)
    except (ConfigError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"neuro {args.command}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neuro {args.command}: interrupted; finished points are kept", file=sys.stderr)
        return 130
    finally:
        logging.getLogger("neuro").removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
