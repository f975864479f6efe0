"""Celery workers and the S3 lake: metering partitions on 1 and 2 workers, and the daily run's S3 overhead.

    python -m benchmarks.run distributed [--partitions 8] [--points 1000] [--workers 1,2] [--repeats 3]

Starts what the tests start (tests/servers.py): Redis and moto's S3 server on loopback, and Celery
workers (`dagster-celery worker start`, one slot each, docs/deploy/celery-worker.yaml). The instance
is a copy of the repository's dagster.yaml (SQLite) in a scratch DAGSTER_HOME; the lake is on the S3
server. Measured, for each worker count:

* `range`: one run of `metering_job` over the N partitions (`BackfillPolicy.single_run`: two steps);
* `runs`: N single-partition runs of `metering_job` started at once, each orchestrated in its own
  process (as a run launcher would), their steps shared by the workers.

Then, in the same invocation, the daily run (in-process, as `lupa daily` runs it) on the last day,
alternating a local lake and the lake on the S3 server, `--repeats` times each, after loading the
same N metering days into both: the overhead of the lake on S3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks import _harness as h

FIRST_DAY = dt.date(2026, 11, 16)


def gsrns(n: int) -> tuple[str, ...]:
    from stdnum import ean

    return tuple(f"6435501{i:010d}" + ean.calc_check_digit(f"6435501{i:010d}") for i in range(n))


def landing_zone(landing: Path, days: list[dt.date], points: int) -> None:
    from tests.integration.orchestration.helpers import write_metering_day, write_tiny_landing_zone
    from tests.landing_builder import GSRN1, GSRN2

    write_tiny_landing_zone(landing, days[-1])  # customers, contracts, consents and the last day's metering
    for day in days:  # every day's metering, for `points` points (the tiny zone's two among them)
        write_metering_day(landing, day, points=(GSRN1, GSRN2, *gsrns(points - 2)))


def _run(job: str, env: dict[str, str], tags: dict[str, str]) -> tuple[bool, float]:
    os.environ.update(env)
    from dagster import DagsterInstance, execute_job, reconstructable

    from tests.integration.orchestration import reconstructable_jobs

    start = time.perf_counter()
    with DagsterInstance.get() as instance:
        result = execute_job(reconstructable(getattr(reconstructable_jobs, job)), instance=instance, tags=tags)
    return result.success, time.perf_counter() - start


def start_workers(n: int, env: dict[str, str], root: Path) -> list[subprocess.Popen]:
    from tests.integration.orchestration.test_celery import start_worker, wait_for_workers

    workers: list[subprocess.Popen] = []
    try:
        for i in range(n):  # one after the other: two first opens of a fresh instance race to create its tables
            workers.append(start_worker(f"b{i}", env, root))
            wait_for_workers(env, {f"b{i}"})
    except BaseException:
        stop_workers(workers)
        raise
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for process in workers:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)


def celery_case(workers: int, days: list[dt.date], points: int, scratch: Path, redis, s3) -> dict:
    from tests.integration.orchestration.helpers import REPO, Installation

    result = {}
    for shape in ("range", "runs"):
        inst = Installation(scratch / f"celery-{workers}-{shape}", REPO / "dagster.yaml")
        landing_zone(inst.landing, days, points)
        env = inst.subprocess_env(
            **s3.env,
            LUPA_LAKE_URL=s3.lake_url(f"bench-{workers}-{shape}"),
            LUPA_EXECUTOR="celery",
            DAGSTER_CELERY_BROKER_URL=redis.url,
            DAGSTER_CELERY_BACKEND_URL=redis.url,
        )
        procs = start_workers(workers, env, inst.root)
        load = h.loadavg()
        try:
            context = multiprocessing.get_context("spawn")
            start = time.perf_counter()
            if shape == "range":
                tags = {
                    "dagster/asset_partition_range_start": str(days[0]),
                    "dagster/asset_partition_range_end": str(days[-1]),
                }
                with ProcessPoolExecutor(1, mp_context=context) as pool:
                    outcomes = [pool.submit(_run, "metering_job", env, tags).result(timeout=1800)]
            else:
                with ProcessPoolExecutor(len(days), mp_context=context) as pool:
                    futures = [pool.submit(_run, "metering_job", env, {"dagster/partition": str(d)}) for d in days]
                    outcomes = [f.result(timeout=1800) for f in futures]
            wall = time.perf_counter() - start
        finally:
            stop_workers(procs)
        result[shape] = {
            "seconds": round(wall, 1),
            "runs": len(outcomes),
            "all_succeeded": all(ok for ok, _ in outcomes),
            "loadavg_before": load,
            "loadavg_after": h.loadavg(),
        }
        print(f"  {workers} worker(s), {shape}: {wall:.1f} s ({len(outcomes)} run(s))", flush=True)
    return result


def daily_overhead(days: list[dt.date], points: int, repeats: int, scratch: Path, s3) -> dict:
    from assets.storage.zones import LupaStorage
    from tests.dagster_helpers import run_day

    for key, value in s3.env.items():
        os.environ[key] = value
    landing = scratch / "daily" / "landing"
    landing_zone(landing, days, points)
    lakes = {
        "local": LupaStorage(landing_dir=str(landing), data_dir=str(scratch / "daily" / "local")),
        "s3": LupaStorage(
            landing_dir=str(landing), data_dir=str(scratch / "daily" / "s3"), lake_url=s3.lake_url("bench-daily")
        ),
    }
    for storage in lakes.values():  # the same history in both, untimed
        for day in days[:-1]:
            assert run_day(storage, day, job="metering_job").success
    seconds: dict[str, list[float]] = {name: [] for name in lakes}
    loads = []
    for _ in range(repeats):
        for name, storage in lakes.items():  # alternating, so both see the same machine load
            loads.append(h.loadavg()[0])
            start = time.perf_counter()
            assert run_day(storage, days[-1]).success
            seconds[name].append(round(time.perf_counter() - start, 2))
    local, remote = statistics.median(seconds["local"]), statistics.median(seconds["s3"])
    print(f"  daily run: local lake {local:.1f} s, S3 lake {remote:.1f} s (medians of {repeats})", flush=True)
    return {
        "seconds": seconds,
        "median_local": local,
        "median_s3": remote,
        "overhead_seconds": round(remote - local, 2),
        "overhead_ratio": round(remote / local, 3),
        "loadavg_1min": loads,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--points", type=int, default=1000, help="metering points per delivery")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="daily runs per lake")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(h.REPO))  # the test helpers that start the servers
    os.environ.setdefault("LUPA_VAR_DIR", str(h.scratch_root(args.dir) / "var"))
    from tests.servers import redis_server, s3_server

    scratch = h.scratch_root(args.dir) / f"distributed-{os.getpid()}"
    scratch.mkdir(parents=True)
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range(args.partitions)]
    result = {
        "measured_at": h.now_iso(),
        "machine": h.machine(),
        "partitions": args.partitions,
        "points": args.points,
        "celery": {},
    }
    with redis_server() as redis, s3_server() as s3:
        for n in [int(w) for w in args.workers.split(",")]:
            result["celery"][str(n)] = celery_case(n, days, args.points, scratch, redis, s3)
        result["daily"] = daily_overhead(days, args.points, args.repeats, scratch, s3)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    ok = all(c[s]["all_succeeded"] for c in result["celery"].values() for s in c)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
