"""Daily runs never overlap on one installation (docs/decisions.md §21).

A daily run rebuilds mutable intermediate tables in the shared warehouse (core state, audiences)
and the mart re-checks the audiences it reads against the inputs it reads: two daily runs for two
days at once read each other's half-built tables. The DuckDB pool only serialises steps, not runs,
so whole daily runs are serialised here, two ways:

- runs the daemon launches (the schedule, the landing-zone sensor, the UI's "Materialize all" of
  `daily_job`) carry `SERIAL_TAG` from the job, and `dagster.yaml` limits runs with that tag to one
  at a time (`concurrency: runs: tag_concurrency_limits`): the next one stays queued;
- `lupa daily` and `lupa backfill` run in-process (`execute_in_process` bypasses the run queue), so
  they hold an installation-wide file lock in the data directory for the whole command, and then
  wait until no daemon-launched daily run is in progress. Their runs carry the tag too, so while
  one is in progress the daemon keeps its daily runs queued.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: the tag dagster.yaml's tag concurrency limit counts; every daily_job run carries it
SERIAL_TAG = "lupa/serial"
SERIAL_VALUE = "daily_run"
LOCK_NAME = ".daily_run.lock"
#: how often a waiting command looks again for a daemon-launched daily run to finish
POLL_SECONDS = 2.0


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_NAME


@contextmanager
def installation_lock(data_dir: Path, what: str) -> Iterator[None]:
    """Hold the installation's daily-run lock for the whole block; say so while waiting for it.

    An advisory `flock` on a file in the data directory: every process on the installation sees it,
    and the kernel releases it when its holder dies, so a killed run never leaves it stuck."""
    path = lock_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another run"
            print(
                f"{what}: waiting for the daily run already in progress on this installation ({holder}; lock {path})",
                file=sys.stderr,
                flush=True,
            )
            started = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            print(f"{what}: the other run finished after {time.monotonic() - started:.0f} s; starting", file=sys.stderr)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def wait_for_queued_daily_runs(instance, what: str) -> None:
    """Wait while a daily run the daemon launched (it holds no file lock) is still in progress."""
    from dagster import RunsFilter
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

    filters = RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES, tags={SERIAL_TAG: SERIAL_VALUE})
    announced = False
    while runs := instance.get_runs(filters=filters, limit=1):
        if not announced:
            print(f"{what}: waiting for daily run {runs[0].run_id} (launched by the daemon) to finish", file=sys.stderr)
            announced = True
        time.sleep(POLL_SECONDS)
