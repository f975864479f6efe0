"""Two daily runs started at once on one installation run one after the other, and both finish.

A daily run rebuilds the warehouse's intermediate tables (core state, audiences); two at once read
each other's half-built tables, and one used to die in `marketing_mart`'s policy re-check. Here two
`lupa daily` processes for two days start together on a copy of the repository's dagster.yaml: one
waits for the installation's daily-run lock, both succeed, their runs do not overlap in time, and
the later day's mart is the one in place (the earlier day either published first or kept it).
"""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._utils.tags import TagConcurrencyLimitsCounter

from assets.storage.mart import published_as_of
from pipelines.serial_runs import SERIAL_TAG, SERIAL_VALUE
from tests.integration.orchestration.helpers import VENV_BIN, write_metering_day, write_tiny_landing_zone

pytestmark = pytest.mark.slow

D1, D2 = dt.date(2026, 11, 24), dt.date(2026, 11, 25)


def mart_metadata(instance: DagsterInstance, run_id: str) -> dict:
    [event] = [
        e
        for e in instance.all_logs(run_id)
        if e.dagster_event
        and e.dagster_event.is_step_materialization
        and e.dagster_event.asset_key == AssetKey("marketing_mart")
    ]
    return {k: v.value for k, v in event.dagster_event.materialization.metadata.items()}


def test_two_daily_runs_started_together_run_one_after_the_other(installation):
    write_tiny_landing_zone(installation.landing, D1)
    write_metering_day(installation.landing, D2)
    DagsterInstance.get().dispose()  # the instance exists before the runs start, as under the daemon

    env = installation.subprocess_env()
    processes = {
        day: subprocess.Popen(
            [str(VENV_BIN / "lupa"), "daily", "--date", day.isoformat()],
            env=env,
            cwd=installation.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for day in (D1, D2)
    }
    outputs = {day: p.communicate(timeout=300) for day, p in processes.items()}
    for day, p in processes.items():
        assert p.returncode == 0, (day, outputs[day][1][-4000:])
    stderr = "".join(err for _, err in outputs.values())
    assert "waiting for the daily run already in progress on this installation" in stderr
    assert "database is locked" not in stderr and "policy check" not in stderr

    with DagsterInstance.get() as instance:
        runs = {run.tags["lupa/business_day"]: run for run in instance.get_runs()}
        assert set(runs) == {D1.isoformat(), D2.isoformat()}
        records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
        spans = sorted((records[r.run_id].start_time, records[r.run_id].end_time) for r in runs.values())
        assert all(r.status == DagsterRunStatus.SUCCESS for r in runs.values())
        assert spans[0][1] <= spans[1][0], f"the two daily runs overlapped: {spans}"
        # the run for D1 published before D2's run, or found D2's mart and kept it
        first = mart_metadata(instance, runs[D1.isoformat()].run_id)
        assert first["published"] is True or first["kept_mart_as_of"] == D2.isoformat()
        assert mart_metadata(instance, runs[D2.isoformat()].run_id)["published"] is True

        # runs the daemon launches are held too: with one daily run in progress, the queue blocks the next
        assert all(r.tags.get(SERIAL_TAG) == SERIAL_VALUE for r in runs.values())
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        counter = TagConcurrencyLimitsCounter(limits, [runs[D1.isoformat()]])
        assert counter.is_blocked(runs[D2.isoformat()])
    assert published_as_of(installation.data) == D2
