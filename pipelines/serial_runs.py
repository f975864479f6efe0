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

A `lupa` run killed outright (SIGKILL, an OOM kill, a node restart) cannot record its own end: its run
stays "started" in the instance and keeps the `duckdb_files` pool slot its step held, so the next
run would wait on the pool for ever. Every run `lupa` starts therefore carries `PROCESS_TAG` (host
and pid), and under the lock, before starting, `clean_up_dead_runs` marks failed each run of this
host still in progress with that tag, and frees its slots: holding the lock proves its process is
gone, since every `lupa daily`/`backfill` holds the lock for as long as its runs last. A daemon-launched
run whose worker process is gone is cleaned up the same way where its pid can be trusted (the local
default run launcher on SQLite storage); otherwise such runs are Dagster's own to monitor
(`run_monitoring` in dagster.yaml, docs/decisions.md §35).
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: the tag dagster.yaml's tag concurrency limit counts; every daily_job run carries it
SERIAL_TAG = "lupa/serial"
SERIAL_VALUE = "daily_run"
LOCK_NAME = ".daily_run.lock"
#: on every run `lupa` executes in-process: `<host>:<pid>` of the process that runs it
PROCESS_TAG = "lupa/process"
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


def process_tag() -> dict[str, str]:
    """The tag naming this process as the one executing a run (see `clean_up_dead_runs`)."""
    return {PROCESS_TAG: f"{socket.gethostname()}:{os.getpid()}"}


def clean_up_dead_runs(instance, what: str) -> list[str]:
    """Mark failed every run `lupa` started on this host that is still in progress, and free the
    concurrency slots it holds; one line per run cleaned up, also printed on stderr.

    Call it only under `installation_lock`: then no `lupa` run of this installation is alive, so a
    run in progress with this host's `PROCESS_TAG` was left by a process that died. A run without the
    tag (the daemon launched it) is cleaned up only when its worker's pid is known to be gone
    (`_dead_local_run_worker`): a killed worker would otherwise keep every later daily run waiting."""
    from dagster import RunsFilter
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

    host = socket.gethostname()
    lines = []
    for run in instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES)):
        owner = run.tags.get(PROCESS_TAG, "")
        if not owner:
            worker = _dead_local_run_worker(instance, run)
            if worker is None:
                continue
            owner = f"{host}:{worker} (its run worker, launched by the daemon)"
        elif owner.rpartition(":")[0] != host:
            continue
        instance.report_run_failed(run, f"the process that ran it ({owner}) is gone (killed); marked failed by {what}")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        line = (
            f"{what}: run {run.run_id} ({run.job_name}) was left in progress by process {owner}, which is gone: "
            "marked failed and its concurrency slots freed"
        )
        print(line, file=sys.stderr, flush=True)
        lines.append(line)
    return lines


def _dead_local_run_worker(instance, run) -> int | None:
    """The pid of a daemon-launched run's worker process when that process is gone, else None.

    Only where a pid means something here: the default run launcher starts run workers on this
    machine, and SQLite instance storage is one machine's. The worker's pid is in the engine event it
    logs first ("Started process for run (pid: N)"). A pid that is alive again (reused) counts as
    alive: the run is then left for the UI, the safe side."""
    from dagster import DagsterEventType
    from dagster._core.launcher import DefaultRunLauncher
    from dagster._core.storage.runs import SqliteRunStorage

    if not isinstance(instance.run_launcher, DefaultRunLauncher) or not isinstance(
        instance.run_storage, SqliteRunStorage
    ):
        return None
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        if (
            data
            and "pid" in data.metadata
            and (entry.dagster_event.message or "").startswith("Started process for run")
        ):
            pid = int(data.metadata["pid"].value)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return pid
            except PermissionError:
                return None
            return None
    return None
