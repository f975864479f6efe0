"""Daily runs are serialised: the daily job's tag, the instance's run limit, and the file lock of `lupa`."""

import threading
import time
from pathlib import Path

import yaml

from pipelines.definitions import daily_job, metering_job
from pipelines.serial_runs import SERIAL_TAG, SERIAL_VALUE, installation_lock

REPO = Path(__file__).resolve().parents[3]


def test_daily_runs_carry_the_tag_dagster_yaml_limits_to_one_run():
    assert daily_job.tags[SERIAL_TAG] == SERIAL_VALUE
    assert SERIAL_TAG not in (metering_job.tags or {})  # metering partitions still run in parallel
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert {"key": SERIAL_TAG, "value": SERIAL_VALUE, "limit": 1} in config["concurrency"]["runs"][
        "tag_concurrency_limits"
    ]


def test_a_second_command_waits_for_the_lock_and_says_so(tmp_path, capsys):
    entered = threading.Event()

    def second():
        with installation_lock(tmp_path, "lupa daily --date 2026-11-25"):
            entered.set()

    with installation_lock(tmp_path, "lupa daily --date 2026-11-24"):
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.5)
        assert not entered.is_set()  # held off while the first run holds the lock
    waiter.join(timeout=5)
    assert entered.is_set()
    err = capsys.readouterr().err
    assert "waiting for the daily run already in progress on this installation" in err
    assert "lupa daily --date 2026-11-24" in err  # who holds it


def test_a_run_left_in_progress_by_a_killed_lupa_process_is_failed_and_its_slot_freed(tmp_path, capsys):
    """What a SIGKILLed `lupa daily` leaves (a started run holding the pool's only slot), cleaned up by
    the next command under the lock; a run of another host, or one the daemon launched, is left alone."""
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.storage.dagster_run import DagsterRun

    from pipelines.serial_runs import PROCESS_TAG, clean_up_dead_runs, process_tag

    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        instance.event_log_storage.set_concurrency_slots("duckdb_files", 1)

        def started(run_id: str, tags: dict) -> DagsterRun:
            run = instance.add_run(
                DagsterRun(job_name="daily_job", run_id=run_id, status=DagsterRunStatus.STARTED, tags=tags)
            )
            return run

        dead = started("dead", process_tag())
        other_host = started("elsewhere", {PROCESS_TAG: "another-host:1234"})
        launched = started("launched", {})
        assert instance.event_log_storage.claim_concurrency_slot(
            "duckdb_files", dead.run_id, "ingest_customers"
        ).is_claimed
        assert not instance.event_log_storage.claim_concurrency_slot(
            "duckdb_files", "next", "ingest_customers"
        ).is_claimed

        lines = clean_up_dead_runs(instance, "lupa daily --date 2026-11-25")

        assert len(lines) == 1 and "run dead (daily_job) was left in progress by process" in lines[0]
        assert "run dead" in capsys.readouterr().err
        assert instance.get_run_by_id("dead").status == DagsterRunStatus.FAILURE
        for kept in (other_host, launched):
            assert instance.get_run_by_id(kept.run_id).status == DagsterRunStatus.STARTED
        # the slot is free again: the next run's step gets it instead of waiting for ever
        assert instance.event_log_storage.claim_concurrency_slot("duckdb_files", "next", "ingest_customers").is_claimed


def test_a_daemon_launched_run_whose_worker_died_is_failed_too_on_a_local_installation(tmp_path):
    """The default run launcher starts run workers on this machine, and each logs its pid first: a
    worker that is gone (killed) leaves a run every later daily run would wait for; one alive is left alone."""
    import os
    import subprocess

    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.events import EngineEventData
    from dagster._core.storage.dagster_run import DagsterRun

    from pipelines.serial_runs import SERIAL_TAG, SERIAL_VALUE, clean_up_dead_runs

    gone = subprocess.Popen(["true"])
    gone.wait()
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        for run_id, pid in (("killed", gone.pid), ("alive", os.getpid())):
            run = instance.add_run(
                DagsterRun(
                    job_name="daily_job",
                    run_id=run_id,
                    status=DagsterRunStatus.STARTED,
                    tags={SERIAL_TAG: SERIAL_VALUE},
                )
            )
            instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
        lines = clean_up_dead_runs(instance, "lupa daily --date 2026-11-25")
        assert len(lines) == 1 and "run killed (daily_job)" in lines[0] and "launched by the daemon" in lines[0]
        assert instance.get_run_by_id("killed").status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id("alive").status == DagsterRunStatus.STARTED
