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
