"""``python -m benchmarks NAME [--quick] [--out FILE]``: run one benchmark (or ``all``, or ``list``).

A benchmark is a module ``benchmarks/bench_<name>.py`` with a function
``run(quick: bool) -> list[Result]``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from .harness import write_jsonl


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("name", help="benchmark name, 'all' or 'list'")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--out", default="benchmarks/results.jsonl", help="JSON-lines file to append results to")
    args = parser.parse_args(argv)
    names = available()
    if args.name == "list":
        print("\n".join(names))
        return 0
    chosen = names if args.name == "all" else [args.name]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; available: {', '.join(names)}")
    for name in chosen:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        results = module.run(quick=args.quick)
        for r in results:
            print(r.line(), flush=True)
        write_jsonl(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
