"""Steps on a distributed executor: dagster-celery workers, Redis, Postgres instance storage, the S3 lake.

For this module the tests start Redis (Debian's redis-server), moto's S3 server and a PostgreSQL
cluster on loopback, and two Celery worker processes (`dagster-celery worker start`, with the
worker config in docs/deploy/celery-worker.yaml). Runs are orchestrated from the test process with
`LUPA_EXECUTOR=celery`, so every step runs in a worker. Everything has a timeout: a lost step must
end as a retry or a clear failure, never as a hang.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._serdes import serialize_value

from assets.storage.zones import DUCKDB_POOL
from pipelines.executors import CELERY_EXECUTOR_CONFIG
from tests.integration.orchestration.helpers import (
    REPO,
    VENV_BIN,
    Installation,
    days,
    write_metering_day,
    write_tiny_landing_zone,
)
from tests.integration.orchestration.test_lake_s3 import mart_tables
from tests.integration.orchestration.test_postgres import PRODUCTION_YAML, postgres  # noqa: F401  (a fixture)
from tests.servers import redis_server, s3_server

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAY = dt.date(2026, 11, 23)
RANGE = days(DAY - dt.timedelta(days=3), 4)  # a small range: 2026-11-20 … 2026-11-23
WORKER_CONFIG = REPO / "docs" / "deploy" / "celery-worker.yaml"
RUN_TIMEOUT = 300


@pytest.fixture(scope="module")
def redis():
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres, redis, s3):  # noqa: F811
    """An installation on Postgres with its lake on S3, and two Celery workers of one slot each."""
    root = tmp_path_factory.mktemp("celery")
    inst = Installation(root, PRODUCTION_YAML)
    env = inst.subprocess_env(
        **postgres.env,
        **s3.env,
        LUPA_ENV="production",
        LUPA_PSEUDONYM_KEY="ab" * 32,
        LUPA_LAKE_URL=s3.lake_url("celery"),
        LUPA_EXECUTOR="celery",
        DAGSTER_CELERY_BROKER_URL=redis.url,
        DAGSTER_CELERY_BACKEND_URL=redis.url,
    )
    workers: dict[str, subprocess.Popen] = {}
    try:
        # one after the other: each worker opens the instance on start, and two first opens of a fresh
        # instance database race to create its tables
        for name in ("w1", "w2"):
            workers[name] = start_worker(name, env, root)
            wait_for_workers(env, {name})
        yield inst, env, workers
    finally:
        for process in workers.values():
            stop(process)


def start_worker(name: str, env: dict[str, str], root: Path) -> subprocess.Popen:
    log = open(root / f"worker-{name}.log", "wb")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [
            str(VENV_BIN / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(WORKER_CONFIG),
            "-n",
            name,
            "--",
            "--concurrency",
            "1",
        ],
        env=env,
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole
    )


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for_workers(env: dict[str, str], names: set[str], timeout: float = 120) -> None:
    from celery import Celery

    app = Celery(broker=env["DAGSTER_CELERY_BROKER_URL"], backend=env["DAGSTER_CELERY_BACKEND_URL"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        seen = {host.split("@")[0] for reply in replies for host in reply}
        if names <= seen:
            return
        time.sleep(1)
    pytest.fail(f"celery workers {sorted(names)} did not come up within {timeout:.0f} s", pytrace=False)


def _run(job: str, env: dict[str, str], tags: dict[str, str]) -> tuple[str, bool]:
    """One run orchestrated in its own process (as a run worker would), steps on the Celery workers."""
    os.environ.update(env)
    from dagster import execute_job, reconstructable

    from tests.integration.orchestration import reconstructable_jobs

    with DagsterInstance.get() as instance:
        result = execute_job(reconstructable(getattr(reconstructable_jobs, job)), instance=instance, tags=tags)
        return result.run_id, result.success


def run_in_process(job: str, env: dict[str, str], tags: dict[str, str], on_start=None) -> tuple[str, bool]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(_run, job, env, tags)
        if on_start is not None:
            on_start()
        return future.result(timeout=RUN_TIMEOUT)


def step_intervals(instance: DagsterInstance, run_id: str) -> dict[str, list[tuple[float, float | None]]]:
    """Per step: (start, end) of each attempt, from the event log."""
    spans: dict[str, list[list]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            spans.setdefault(event.step_key, []).append([entry.timestamp, None])
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            spans[event.step_key][-1][1] = entry.timestamp
    return {k: [tuple(s) for s in v] for k, v in spans.items()}


def workers_used(instance: DagsterInstance, run_id: str) -> set[str]:
    used = set()
    for entry in instance.all_logs(run_id):
        data = (
            entry.dagster_event.engine_event_data
            if entry.dagster_event and entry.dagster_event.is_engine_event
            else None
        )
        for item in (data.metadata if data else {}).items():
            if item[0] == "Celery worker":
                used.add(str(item[1].value).split("@")[0])
    return used


def test_the_worker_config_matches_the_executor_config():
    worker = yaml.safe_load(WORKER_CONFIG.read_text())["execution"]["config"]
    assert worker == CELERY_EXECUTOR_CONFIG


def instance_env(env: dict[str, str], monkeypatch) -> None:
    """This test process opens the cluster's instance too (for this test only)."""
    for key, value in env.items():
        if key.startswith(("DAGSTER_", "LUPA_DAGSTER")):
            monkeypatch.setenv(key, value)


def test_metering_range_and_daily_run_on_celery_workers_publish_the_local_mart(cluster, tmp_path, monkeypatch):
    inst, env, _workers = cluster
    for day in RANGE[:-1]:
        write_metering_day(inst.landing, day)
    write_tiny_landing_zone(inst.landing, DAY)

    range_tags = {"dagster/asset_partition_range_start": str(RANGE[0]), "dagster/asset_partition_range_end": str(DAY)}
    metering_run, ok = run_in_process("metering_job", env, range_tags)
    assert ok, "the metering range failed on the celery workers"
    daily_run, ok = run_in_process("daily_job", env, {"dagster/partition": str(DAY), "lupa/business_day": str(DAY)})
    assert ok, "the daily run failed on the celery workers"

    instance_env(env, monkeypatch)
    with DagsterInstance.get() as instance:
        for run_id in (metering_run, daily_run):
            assert instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS
        spans = step_intervals(instance, daily_run)
        used = workers_used(instance, metering_run) | workers_used(instance, daily_run)
        slots = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
        events = serialize_value([instance.all_logs(r) for r in (metering_run, daily_run)])
        run_configs = repr([instance.get_run_by_id(r).run_config for r in (metering_run, daily_run)])

    assert used == {"w1", "w2"}, f"steps ran on {sorted(used)}: both workers should have taken steps"
    # the duckdb_files pool: no two DuckDB steps of the run were ever in progress at the same time
    from pipelines.definitions import build_defs

    job = build_defs().resolve_job_def("daily_job")
    pooled = {n.name for n in job.all_node_defs if n.pool == DUCKDB_POOL}
    duck = sorted((s, e) for key, attempts in spans.items() if key in pooled for s, e in attempts)
    assert len(duck) >= 5 and all(e is not None for _, e in duck)
    assert all(later[0] >= earlier[1] for earlier, later in zip(duck, duck[1:], strict=False)), (
        "two steps holding duckdb_files overlapped"
    )
    assert slots.slot_count == 1 and not slots.claimed_slots
    # the object store's keys, passed to the workers in their environment, reach no event, run config
    # or worker log (the workers log every step's events at INFO)
    worker_logs = "".join(p.read_text(errors="replace") for p in inst.root.glob("worker-*.log"))
    for secret in (env["AWS_SECRET_ACCESS_KEY"], env["AWS_ACCESS_KEY_ID"]):
        assert secret not in events and secret not in run_configs and secret not in worker_logs

    # the same mart as a local run (embedded instance, local lake, in-process)
    from assets.storage.zones import LupaStorage
    from tests.dagster_helpers import run_day

    local = LupaStorage(landing_dir=str(inst.landing), data_dir=str(tmp_path / "local"))
    for day in RANGE[:-1]:
        assert run_day(local, day, job="metering_job").success
    assert run_day(local, DAY).success
    assert mart_tables(inst.data) == mart_tables(local.root)


def worker_of(instance: DagsterInstance, run_id: str, step_key: str) -> str | None:
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event and event.is_engine_event and event.step_key == step_key:
            worker = event.engine_event_data.metadata.get("Celery worker")
            if worker is not None:
                return str(worker.value).split("@")[0]
    return None


def pool_processes(worker: subprocess.Popen) -> list[psutil.Process]:
    """The prefork pool processes of a worker (dagster-celery CLI → celery main → pool children)."""
    return [p for child in psutil.Process(worker.pid).children() for p in child.children()]


def many_points(n: int) -> tuple[str, ...]:
    from stdnum import ean

    return tuple(f"6435501{i:010d}" + ean.calc_check_digit(f"6435501{i:010d}") for i in range(n))


def test_a_worker_killed_mid_step_is_retried_on_the_other_worker_not_hung(cluster, monkeypatch):
    inst, env, workers = cluster
    day = DAY + dt.timedelta(days=1)
    write_metering_day(inst.landing, day, points=many_points(3000))  # 72,000 readings: a step of seconds
    instance_env(env, monkeypatch)
    killed: list[tuple[str, str]] = []

    def kill_the_step_process() -> None:
        """As soon as a step is in progress on a worker, SIGKILL that worker's pool process."""
        deadline = time.monotonic() + 120
        with DagsterInstance.get() as instance:
            while time.monotonic() < deadline:
                runs = instance.get_runs(limit=1)
                if runs and runs[0].tags.get("dagster/partition") == str(day):
                    run_id = runs[0].run_id
                    running = [k for k, a in step_intervals(instance, run_id).items() if a[-1][1] is None]
                    worker = worker_of(instance, run_id, running[0]) if running else None
                    if worker:
                        for process in pool_processes(workers[worker]):
                            process.send_signal(signal.SIGKILL)
                        killed.append((worker, running[0]))
                        return
                time.sleep(0.02)

    started = time.monotonic()
    run_id, ok = run_in_process("metering_job", env, {"dagster/partition": str(day)}, on_start=kill_the_step_process)
    assert killed, "no step was caught in progress"
    with DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        spans = step_intervals(instance, run_id)
        retried_on = worker_of(instance, run_id, killed[0][1])
    assert time.monotonic() - started < RUN_TIMEOUT
    # the task went back on the queue (acks late, rejected when its worker was lost) and ran again
    assert ok and run.status == DagsterRunStatus.SUCCESS, spans
    attempts = spans[killed[0][1]]
    assert len(attempts) == 2 and attempts[0][1] is None and attempts[1][1] is not None, attempts
    assert retried_on is not None
