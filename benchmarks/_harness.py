"""Shared helpers of the scale benchmarks (not a benchmark itself, so not in the registry).

* `measure`: run one phase in a fresh interpreter (`python -m <module> --worker …`) and take its
  peak RSS from `os.wait4` on that child (its own `ru_maxrss`, nothing inherited from the parent);
* `machine`, `versions`, `loadavg`: what the result was measured on;
* `scratch_root`: `$LUPA_BENCH_DIR` or `<tmp>/lupa-bench`, never inside the repository;
* `cached_data`: reuse synthetic data an earlier run wrote with the same parameters.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GIB = 1024**3


def scratch_root(override: Path | None = None) -> Path:
    root = Path(override or os.environ.get("LUPA_BENCH_DIR") or Path(tempfile.gettempdir()) / "lupa-bench").resolve()
    if root.is_relative_to(REPO):
        raise SystemExit(f"the scratch dir must be outside the repository: {root}")
    return root


def cpu_seconds() -> float:
    """CPU seconds (user + system, all threads) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def self_peak_rss() -> int:
    """Peak RSS of this process so far, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def measure(module: str, kind: str, args: list[str], scratch: Path, env: dict[str, str] | None = None) -> dict:
    """Run `python -m module --worker kind OUT *args` in a fresh interpreter; the worker writes a
    JSON dict to OUT. Adds the child's own peak RSS, CPU and wall time (incl. start-up)."""
    out = scratch / f"result-{kind}-{os.getpid()}.json"
    out.unlink(missing_ok=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--worker", kind, str(out), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if code != 0:
        out.unlink(missing_ok=True)
        raise RuntimeError(f"the {kind} measurement failed (exit code {code})")
    result = json.loads(out.read_text())
    out.unlink()
    result["peak_rss_bytes"] = usage.ru_maxrss * 1024  # Linux reports KiB
    result["process_seconds"] = round(elapsed, 3)  # incl. interpreter start and imports
    result["process_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    # the machine may be shared: a 1-minute load average above the core count means contention
    result["loadavg_1m_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    return result


def write_worker_result(out: Path, result: dict) -> int:
    result.setdefault("self_peak_rss_bytes", self_peak_rss())
    out.write_text(json.dumps(result, default=str))
    return 0


def machine() -> dict:
    import psutil

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_bytes": psutil.virtual_memory().total,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def versions(names: tuple[str, ...] = ("polars", "pyarrow", "numpy", "scikit-learn", "pandera", "pandas")) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def source_fingerprints(paths: tuple[str, ...]) -> dict:
    """sha256 (first 12 hex digits) and mtime of the measured source files: the code under test
    may change between runs, and the result says which version was measured."""
    import hashlib

    out = {}
    for rel in paths:
        path = REPO / rel
        if path.exists():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat(timespec="seconds")
            out[rel] = {"sha256": digest, "mtime": mtime}
    return out


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def cached_data(
    meta_path: Path, wanted: dict, intact: Callable[[dict], bool], regenerate: bool, make: Callable[[], dict]
) -> dict:
    """The description of the synthetic data: the one an earlier run wrote (at full size the data
    takes minutes to write) when it has the `wanted` parameters and `intact(meta)` holds, otherwise
    what `make()` returns after writing the data afresh. `reused` says which."""
    if not regenerate and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in wanted} == wanted and intact(meta):
            return meta | {"reused": True}
    meta = make()
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta | {"reused": False}


def disk_free_bytes(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def gib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / GIB:.2f} GiB"


def table(rows: list[tuple[str, ...]]) -> list[str]:
    """Plain aligned text table: first column left, the rest right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows
    ]
