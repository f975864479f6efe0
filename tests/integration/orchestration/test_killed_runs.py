"""A `lupa daily` killed outright (SIGKILL: an OOM kill, a node restart) leaves nothing stuck or half-published.

One installation publishes D1's mart, then gets D2's deliveries; a reference copy runs D2 cleanly.
Each case copies the D1 installation, starts `lupa daily --date D2` as its own process and kills it
with SIGKILL at one moment: while an ingest step holds the `duckdb_files` slot, while the audiences are
built, and while the new mart is staged beside the old one. Then:
- the published mart is readable and is either D1's or D2's, table for table;
- the next `lupa daily --date D2` cleans up (one line: the killed run is marked failed and its slots
  freed), completes instead of waiting on the pool for ever, and publishes what the clean run did.
A run costs seconds on this tiny zone, so the cases are few.
"""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import subprocess
import time

import polars as pl
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from assets.storage.mart import STAGED_PREFIX, published_as_of, read_published
from tests.integration.orchestration.helpers import (
    REPO,
    VENV_BIN,
    Installation,
    write_metering_day,
    write_tiny_landing_zone,
)
from tests.integration.publish.test_marketing_mart import MART_TABLES
from tests.landing_builder import HEADERS, PERSON, PERSON2, write

pytestmark = pytest.mark.slow

D1, D2 = dt.date(2026, 11, 24), dt.date(2026, 11, 25)
RUN_TIMEOUT = 300


def lupa_daily(installation: Installation, day: dt.date) -> subprocess.Popen:
    return subprocess.Popen(
        [str(VENV_BIN / "lupa"), "daily", "--date", day.isoformat()],
        env=installation.subprocess_env(),
        cwd=installation.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen) -> str:
    try:
        _, err = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()  # a run waiting on the pool for ever would outlive the test
        process.communicate()
        raise
    assert process.returncode == 0, err[-4000:]
    return err


def mart(installation: Installation) -> dict[str, pl.DataFrame]:
    return {t: read_published(installation.data, t) for t in MART_TABLES}


def same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> bool:
    return all(a[t] is not None and b[t] is not None and a[t].equals(b[t]) for t in MART_TABLES)


def copy_of(template: Installation, root) -> Installation:
    shutil.copytree(template.root, root)
    return Installation(root, REPO / "dagster.yaml")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """(D1's installation with D2's deliveries waiting, D1's mart, D2's mart from a clean run)."""
    template = Installation(tmp_path_factory.mktemp("killed") / "d1", REPO / "dagster.yaml")
    write_tiny_landing_zone(template.landing, D1)
    finished(lupa_daily(template, D1))
    old = mart(template)
    # D2: a new consent (so the mart changes) and the day's readings
    write(
        template.landing,
        "consents",
        (D2 + dt.timedelta(days=1)).strftime("%Y%m%d"),
        ["E2;C0000002;marketing;email;granted;2026-11-25T10:00:00Z;web_form;v3;form-2"],
    )
    write_metering_day(template.landing, D2)
    reference = copy_of(template, template.root.parent / "reference")
    finished(lupa_daily(reference, D2))
    new = mart(reference)
    assert not same(old, new) and published_as_of(reference.data) == D2
    return template, old, new


def step_started(instance: DagsterInstance, step: str) -> str | None:
    """The run id of the in-progress run once `step` has started in it."""
    for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]), limit=1):
        if any(e.step_key == step for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)):
            return run.run_id
    return None


def staged_mart(installation: Installation) -> bool:
    return any(p.name.startswith(STAGED_PREFIX) for p in installation.data.iterdir())


@pytest.mark.parametrize(
    "step, wait_for_staging",
    [
        pytest.param("ingest_customers", False, id="while-an-ingest-step-holds-the-duckdb-slot"),
        pytest.param("audiences", False, id="while-the-audiences-are-built"),
        pytest.param("marketing_mart", True, id="while-the-new-mart-is-staged"),
    ],
)
def test_a_killed_daily_run_leaves_a_whole_mart_and_the_next_run_completes(
    published, tmp_path, monkeypatch, step, wait_for_staging
):
    template, old, new = published
    installation = copy_of(template, tmp_path / "case")
    for key, value in installation.env.items():
        monkeypatch.setenv(key, value)  # the test reads the same instance the run writes
    instance = DagsterInstance.get()
    try:
        process = lupa_daily(installation, D2)
        deadline = time.monotonic() + RUN_TIMEOUT
        killed_run = None
        while process.poll() is None and time.monotonic() < deadline:
            killed_run = killed_run or step_started(instance, step)
            if killed_run and (not wait_for_staging or staged_mart(installation)):
                break
            time.sleep(0.002 if killed_run else 0.05)
        assert process.poll() is None, f"the run ended before {step} could be interrupted"
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        if wait_for_staging:
            assert staged_mart(installation)  # killed with the new mart half-way to its place

        # the published mart: readable, and wholly D1's or wholly D2's
        kept = mart(installation)
        assert same(kept, old) or same(kept, new)
        assert published_as_of(installation.data) in (D1, D2)
        assert instance.get_run_by_id(killed_run).status == DagsterRunStatus.STARTED  # it could not record its end

        # the next run cleans up after it, completes, and publishes what a clean run does
        err = finished(lupa_daily(installation, D2))
        assert f"run {killed_run} (daily_job) was left in progress by process" in err
        assert "marked failed and its concurrency slots freed" in err
        assert instance.get_run_by_id(killed_run).status == DagsterRunStatus.FAILURE
        assert same(mart(installation), new)
        assert not staged_mart(installation)
    finally:
        instance.dispose()


def test_a_bad_delivery_is_one_line_in_the_terminal_without_a_framework_traceback(published, tmp_path):
    """What `lupa daily` prints for a refused file: the step and its message, no Dagster stack trace."""
    template, _, _ = published
    installation = copy_of(template, tmp_path / "bad")
    # the CRM's rows under a wrong header: refused whole, and none of their values may reach Dagster
    write(
        installation.landing,
        "customers",
        "20261126",
        [PERSON, PERSON2],
        header=HEADERS["customers"].replace("language", "lang"),
    )
    process = lupa_daily(installation, D2)
    try:
        _, err = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "step ingest_customers failed: customers/customers_20261126.csv, line 1: the header customer_id;" in err
    for framework in ("Traceback", "Stack Trace", 'File "', "dagster._core"):
        assert framework not in err, err
    assert "step(s) downstream of it not run" in err
    assert len(err.strip().splitlines()) <= 4, err
    stored = b"".join(p.read_bytes() for p in installation.storage_dir.rglob("*") if p.is_file())
    for value in (
        "131052-308T",
        "020701B233P",
        "Kaarina",
        "Laaksonen",
        "kaarina@example.fi",
        "Vuorikatu 3",
        "Runebergsgatan",
    ):
        assert value not in err and value.encode() not in stored, value
