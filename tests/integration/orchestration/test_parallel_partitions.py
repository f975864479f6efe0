"""Metering partitions fan out: concurrent runs on the multiprocess executor, and a 30-day range from the CLI.

Both tests run on a persistent instance configured by a copy of the repository's dagster.yaml
(SQLite under a temporary LUPA_DAGSTER_STORAGE), with steps in child processes, as runs launched
from `make ui` have. Each metering partition writes only its own delivery's Parquet files and touches no
DuckDB file, so concurrent partitions must finish without a lock error and without a retry.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import re
import subprocess
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import polars as pl
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

from assets.common.calendar import day_length_hours
from pipelines.definitions import build_defs
from tests.integration.orchestration.helpers import VENV_BIN, days, write_metering_day
from tests.integration.orchestration.reconstructable_jobs import run_metering_partition
from tests.landing_builder import GSRN1, GSRN2

METERING_ASSETS = [AssetKey("ingest_metering"), AssetKey("metering_daily")]
#: kWh per point per hour in the hand-made deliveries (metering_row's default "0,500")
KWH_PER_HOUR = 0.5
#: what a DuckDB, SQLite or file lock conflict says (not "blocking", which asset checks mention)
LOCK_ERROR = re.compile(r"\block(ed)?\b|could not set lock|lock conflict|database is locked", re.IGNORECASE)

pytestmark = pytest.mark.slow


def run_events(instance: DagsterInstance, run_id: str):
    return instance.all_logs(run_id)


def assert_day_stored(data_dir, day: dt.date) -> None:
    """Both stores hold the day: the delivery's readings and the per-point daily aggregate."""
    metering = data_dir / "warehouse" / "metering"
    readings = sorted((metering / "readings" / f"business_day={day}").glob("delivery=*.parquet"))
    assert readings, f"no readings Parquet for {day}"
    assert pl.read_parquet(readings).height == 2 * day_length_hours(day)
    daily = pl.read_parquet(metering / "daily" / f"business_day={day}" / "part.parquet")
    assert sorted(daily["metering_point_id"]) == sorted([GSRN1, GSRN2])
    assert daily["kwh_total"].to_list() == [KWH_PER_HOUR * day_length_hours(day)] * 2  # 23, 24 or 25 hours


def test_metering_steps_take_no_duckdb_pool():
    """Partitions only write their own Parquet files, so nothing makes them queue for a pool slot."""
    job = build_defs().resolve_job_def("metering_job")
    assert {node.name: node.pool for node in job.all_node_defs if node.pool} == {}


def test_four_partitions_materialise_concurrently_on_the_multiprocess_executor(installation):
    partitions = days(dt.date(2026, 11, 20), 4)
    for day in partitions:
        write_metering_day(installation.landing, day)
    # The instance exists before runs start, as it does under `make ui` or the daemon: four processes
    # creating a fresh SQLite instance at the same moment race on its schema (alembic "more than one head").
    DagsterInstance.get().dispose()

    # One process per run, the way a run launcher gives every run its own run worker (Dagster's run
    # orchestration is not thread-safe). Forked from a server that has imported the code location once.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pipelines.definitions", "tests.integration.orchestration.reconstructable_jobs"])
    step_start = {
        "forkserver": {
            "preload_modules": ["pipelines.definitions", "tests.integration.orchestration.reconstructable_jobs"]
        }
    }
    with ProcessPoolExecutor(max_workers=len(partitions), mp_context=context) as pool:
        outcomes = list(
            pool.map(
                partial(run_metering_partition, env=installation.env, start_method=step_start),
                [d.isoformat() for d in partitions],
            )
        )

    with DagsterInstance.get() as instance:
        windows = []
        for day, (run_id, success) in zip(partitions, outcomes, strict=True):
            run = instance.get_run_by_id(run_id)
            events = run_events(instance, run_id)
            failures = [
                e.message
                for e in events
                if e.dagster_event
                and e.dagster_event.event_type
                in (DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_UP_FOR_RETRY, DagsterEventType.RUN_FAILURE)
            ]
            assert success and run.status == DagsterRunStatus.SUCCESS, f"run for {day} failed: {failures}"
            assert not failures, f"run for {day}: {failures}"  # no failure, and no retry hiding a lock error
            assert not [e.message for e in events if LOCK_ERROR.search(e.message or "")]
            assert run.tags["dagster/partition"] == day.isoformat()
            assert any("multiprocess executor" in (e.message or "") for e in events)
            run_worker = {
                e.dagster_event.pid
                for e in events
                if e.dagster_event and e.dagster_event.event_type == DagsterEventType.RUN_START
            }
            step_pids = {
                e.dagster_event.pid
                for e in events
                if e.dagster_event and e.dagster_event.event_type == DagsterEventType.STEP_START
            }
            assert step_pids and not step_pids & run_worker, "steps ran in the run worker, not in child processes"
            start = next(
                e.timestamp
                for e in events
                if e.dagster_event and e.dagster_event.event_type == DagsterEventType.RUN_START
            )
            end = next(
                e.timestamp
                for e in events
                if e.dagster_event and e.dagster_event.event_type == DagsterEventType.RUN_SUCCESS
            )
            windows.append((start, end))
            for key in METERING_ASSETS:
                record = instance.fetch_materializations(key, limit=10).records
                assert any(r.run_id == run_id and r.partition_key == day.isoformat() for r in record), f"{key} {day}"
            assert_day_stored(installation.data, day)
        # the four runs were in progress at the same moment: the partitions really ran in parallel
        assert max(start for start, _ in windows) < min(end for _, end in windows)
        for key in METERING_ASSETS:
            assert {d.isoformat() for d in partitions} <= instance.get_materialized_partitions(key)


def test_a_30_day_range_from_the_command_line_is_one_run(installation):
    partitions = days(dt.date(2026, 10, 1), 30)  # crosses the end of summer time on 2026-10-25
    for day in partitions:
        write_metering_day(installation.landing, day)
    command = [
        str(VENV_BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "pipelines.definitions",
        "--select",
        "ingest_metering,metering_daily",
        "--partition-range",
        f"{partitions[0]}...{partitions[-1]}",
    ]
    done = subprocess.run(
        command, env=installation.subprocess_env(), cwd=installation.root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]

    with DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == 1, f"expected one run for the range, got {len(runs)}"
        run = runs[0]
        assert run.status == DagsterRunStatus.SUCCESS
        assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (
            partitions[0].isoformat(),
            partitions[-1].isoformat(),
        )
        expected = {d.isoformat() for d in partitions}
        for key in METERING_ASSETS:
            records = instance.fetch_materializations(key, limit=100).records
            assert {r.partition_key for r in records} == expected, key
            assert {r.run_id for r in records} == {run.run_id}
            assert instance.get_materialized_partitions(key) == expected
    for day in partitions:
        assert_day_stored(installation.data, day)
