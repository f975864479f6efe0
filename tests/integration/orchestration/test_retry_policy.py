"""Transient I/O errors are retried by the assets' retry policy; data errors are not."""

import datetime as dt

from dagster import AssetKey, DagsterEventType

import assets.core.assets
from assets.common.calendar import BUSINESS_DAY_TAG
from pipelines.definitions import build_defs
from tests.dagster_helpers import storage_for
from tests.landing_builder import GSRN1, metering_row, write

DAY = dt.date(2026, 11, 23)


def run_metering_daily(storage):
    defs = build_defs(resource_overrides={"storage": storage})
    return defs.resolve_job_def("metering_job").execute_in_process(
        asset_selection=[AssetKey("ingest_metering"), AssetKey("metering_daily")],
        partition_key=DAY.isoformat(),
        tags={BUSINESS_DAY_TAG: DAY.isoformat()},
        raise_on_error=False,
    )


def test_a_transient_io_error_is_retried_and_the_step_then_succeeds(tmp_path, monkeypatch):
    storage = storage_for(tmp_path)
    write(storage.landing, "metering", "20261124", [metering_row(GSRN1, "2026-11-22T22:00:00Z")])
    real, calls = assets.core.assets.aggregate_days, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("Input/output error (a network file system hiccup)")
        return real(*args, **kwargs)

    monkeypatch.setattr(assets.core.assets, "aggregate_days", flaky)
    result = run_metering_daily(storage)
    assert result.success and len(calls) == 2
    retried = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert [e.step_key for e in retried] == ["metering_daily"]


def test_a_data_error_fails_once_without_a_retry(tmp_path):
    storage = storage_for(tmp_path)
    write(storage.landing, "metering", "20261124", [], raw=b"MeteringPointGSRN;wrong header\n")
    result = run_metering_daily(storage)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert "metering/metering_20261124.csv" in failure.event_specific_data.error.message


def test_a_metering_gz_that_is_not_gzip_fails_once_without_a_retry(tmp_path):
    """A `.csv.gz` holding plain CSV bytes is a damaged delivery, not a network error: one attempt,
    one message naming the file (no traceback, no value from the file), nothing stored."""
    storage = storage_for(tmp_path)
    path = write(storage.landing, "metering", "20261124", [metering_row(GSRN1, "2026-11-22T22:00:00Z")])
    path.rename(path.with_name(path.name + ".gz"))  # the bytes stay plain CSV
    result = run_metering_daily(storage)
    assert not result.success
    # a retried step logs STEP_RESTARTED for each attempt after the first
    starts = (DagsterEventType.STEP_START, DagsterEventType.STEP_RESTARTED)
    attempts = [e for e in result.all_events if e.event_type in starts and e.step_key == "ingest_metering"]
    assert len(attempts) == 1
    assert not [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.message
    assert "metering/metering_20261124.csv.gz" in message and "not gzip" in message
    assert "Traceback" not in message and "Exceeded max_retries" not in message and GSRN1 not in message
    assert not list(storage.metering_dir.rglob("*.parquet"))
