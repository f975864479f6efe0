"""Run registered benchmarks: `python -m benchmarks.run [names…] [options for the benchmark]`.

    python -m benchmarks.run                       # every registered benchmark, default options
    python -m benchmarks.run --list                # what is registered
    python -m benchmarks.run metering_ingest --points 20000

Leading arguments that do not start with `-` are benchmark names; everything after them is passed
unchanged to each selected benchmark's `main(argv)`.

To add a benchmark: write `benchmarks/<name>.py` with a `main(argv: list[str]) -> int` function
and a module docstring, then add one line to `REGISTRY` below.
"""

from __future__ import annotations

import importlib
import sys

#: benchmark name -> module that has `main(argv) -> int`
REGISTRY: dict[str, str] = {
    "metering_ingest": "benchmarks.metering_ingest",
    "profiling_scale": "benchmarks.profiling_scale",
    "audience_scale": "benchmarks.audience_scale",
    "distributed": "benchmarks.distributed",
}


def _summary(module_name: str) -> str:
    doc = importlib.import_module(module_name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args and args[0] == "--list":
        for name, module in REGISTRY.items():
            print(f"{name:24} {_summary(module)}")
        return 0
    names: list[str] = []
    while args and not args[0].startswith("-"):
        names.append(args.pop(0))
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; registered: {', '.join(REGISTRY)}", file=sys.stderr)
        return 2
    status = 0
    for name in names or list(REGISTRY):
        print(f"== {name}", flush=True)
        status |= importlib.import_module(REGISTRY[name]).main(list(args)) or 0
    return status


if __name__ == "__main__":
    raise SystemExit(main())
