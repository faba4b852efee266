"""Run every ``benchmarks/bench_*.py`` module and print one line per result.

Usage::

    python -m benchmarks                  # every module
    python -m benchmarks instrumentation  # only modules whose name contains a word

The module contract is one function::

    def run() -> list[benchmarks.common.Result]: ...

Each :class:`~benchmarks.common.Result` carries the measured value, the baseline
measured *in the same run* (or none, for an absolute figure such as bytes per
event) and a target. The harness prints, per result, the measured values, the
ratio, the target and PASS or OVER.

Targets are reported, not asserted: a figure over its target is a finding to
investigate, not a broken build, so the exit status is 0 whatever the figures
are. It is 1 only when a benchmark module itself crashed (a bug), and 2 when a
filter matched no module.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import benchmarks
from benchmarks.common import Result

PREFIX = "bench_"


def discover(filters: Sequence[str] = ()) -> list[str]:
    """Names of the benchmark modules (``bench_*``), sorted, restricted to ``filters``."""
    names = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(benchmarks.__file__).parent)])
        if info.name.startswith(PREFIX)
    )
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    return names


def run_module(name: str) -> list[Result]:
    """Import ``benchmarks.<name>`` and return what its ``run()`` measured."""
    module = importlib.import_module(f"{benchmarks.__name__}.{name}")
    results = module.run()
    if not all(isinstance(r, Result) for r in results):
        raise TypeError(f"{name}.run() must return a list of benchmarks.common.Result")
    return list(results)


def main(argv: Sequence[str] | None = None) -> int:
    filters = list(sys.argv[1:] if argv is None else argv)
    names = discover(filters)
    if not names:
        print(f"no benchmark module matches {filters}", file=sys.stderr)
        return 2
    crashed = []
    over = 0
    for name in names:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            results = run_module(name)
        except Exception:
            traceback.print_exc()
            crashed.append(name)
            continue
        for result in results:
            print("  " + result.line(), flush=True)
            over += not result.passed
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    print(f"{over} result(s) over target; targets are reported, not asserted")
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
