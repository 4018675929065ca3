"""`python -m bench [NAME ...] [--strict]`: run the benchmarks and print a summary table.

Every module bench/<name>.py that defines `run() -> dict` is a benchmark; `run` returns what
`bench.common.write_result` wrote. With names, only those run. Exit status: 1 when a benchmark
crashed (or, with --strict, missed a target), else 0.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NOT_BENCHMARKS = {"common"}


def discover() -> list[str]:
    """Names of the modules in bench/ that define `run()`."""
    names = []
    for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)]):
        if info.name.startswith("_") or info.name in NOT_BENCHMARKS or info.ispkg:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "run", None)):
            names.append(info.name)
    return sorted(names)


def _summary(rows: list[tuple[str, float, dict[str, Any] | None, str | None]]) -> str:
    lines = [f"{'benchmark':<24} {'result':<8} {'time':>8}  targets"]
    lines.append("-" * 100)
    for name, seconds, result, error in rows:
        if error is not None:
            lines.append(f"{name:<24} {'ERROR':<8} {seconds:>7.1f}s  {error}")
            continue
        assert result is not None
        targets = result.get("targets", [])
        status = "pass" if result.get("passed", True) else "MISSED"
        first = True
        for t in targets or [None]:
            if t is None:
                text = "(no targets)"
            else:
                unit = f" {t['unit']}" if t.get("unit") else ""
                mark = "ok" if t["met"] else "MISSED"
                text = f"{t['metric']} = {t['actual']:.4g}{unit} ({t['op']} {t['threshold']:g}) {mark}"
            prefix = f"{name:<24} {status:<8} {seconds:>7.1f}s  " if first else " " * 44
            lines.append(prefix + text)
            first = False
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    available = discover()
    if args.list:
        print("\n".join(available))
        return 0
    unknown = [n for n in args.names if n not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    rows: list[tuple[str, float, dict[str, Any] | None, str | None]] = []
    for name in args.names or available:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            result = importlib.import_module(f"bench.{name}").run()
            rows.append((name, time.perf_counter() - start, result, None))
        except Exception as exc:
            traceback.print_exc()
            rows.append((name, time.perf_counter() - start, None, f"{type(exc).__name__}: {exc}"))
    print()
    print(_summary(rows))
    crashed = any(error is not None for *_, error in rows)
    missed = any(r is not None and not r.get("passed", True) for _, _, r, _ in rows)
    return 1 if crashed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
