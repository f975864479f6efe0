"""The schedule, the landing-zone sensor, the failure alert hook and the source-freshness check."""

import datetime as dt
import json
import os
import sys

from dagster import DagsterInstance, DefaultScheduleStatus, build_sensor_context

from assets.common.calendar import BUSINESS_DAY_TAG
from pipelines.automation import FailureAlerts
from pipelines.definitions import build_defs
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import GSRN1, metering_row, write


def test_daily_run_schedule_runs_the_daily_job_at_six_in_helsinki():
    schedule = build_defs().resolve_schedule_def("daily_run")
    assert schedule.job_name == "daily_job"
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "Europe/Helsinki"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING  # runs unattended once the daemon is up


def test_sensor_requests_the_day_whose_deliveries_changed(tmp_path):
    storage = storage_for(tmp_path)
    write(storage.landing, "metering", "20261120", [metering_row(GSRN1, "2026-11-18T22:00:00Z")])
    defs = build_defs(resource_overrides={"storage": storage})
    sensor = defs.resolve_sensor_def("landing_zone_sensor")
    repo = defs.get_repository_def()
    with DagsterInstance.ephemeral() as instance:
        first = sensor.evaluate_tick(
            build_sensor_context(instance=instance, resources={"storage": storage}, repository_def=repo)
        )
        assert [r.partition_key for r in first.run_requests] == ["2026-11-19"]
        cursor = first.cursor
        quiet = sensor.evaluate_tick(
            build_sensor_context(instance=instance, cursor=cursor, resources={"storage": storage}, repository_def=repo)
        )
        assert not quiet.run_requests
        write(storage.landing, "metering", "20261124", [metering_row(GSRN1, "2026-11-22T22:00:00Z")])
        write(
            storage.landing,
            "consents",
            "20261121",
            ["E1;C0000001;marketing;email;granted;2026-11-20T10:00:00Z;web_form;v3;f"],
        )
        new = sensor.evaluate_tick(
            build_sensor_context(instance=instance, cursor=cursor, resources={"storage": storage}, repository_def=repo)
        )
        assert sorted(r.partition_key for r in new.run_requests) == ["2026-11-20", "2026-11-23"]
        assert all(r.tags[BUSINESS_DAY_TAG] == r.partition_key for r in new.run_requests)
        assert len({r.run_key for r in new.run_requests}) == 2


def test_failure_alert_writes_the_log_and_calls_the_command(tmp_path):
    out = tmp_path / "hook-received.json"
    alerts = FailureAlerts(
        log_path=str(tmp_path / "alerts.jsonl"),
        command=f"{sys.executable} -c \"import sys; open(r'{out}', 'w').write(sys.stdin.read())\"",
    )
    alerts.send(
        {
            "run_id": "r1",
            "job": "daily_job",
            "failed_steps": ["ingest_customers"],
            "message": "customers/x.csv, line 1: UTF-8 text",
        }
    )
    logged = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert logged[0]["run_id"] == "r1"
    assert json.loads(out.read_text())["failed_steps"] == ["ingest_customers"]


def test_failure_alert_posts_the_alert_to_the_webhook(tmp_path):
    """A real HTTP server on loopback receives the alert as a JSON POST."""
    import http.server
    import threading

    received: list[tuple[str, dict]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        alerts = FailureAlerts(
            log_path=str(tmp_path / "alerts.jsonl"), webhook_url=f"http://127.0.0.1:{server.server_port}/lupa"
        )
        alerts.send({"run_id": "r2", "job": "daily_job", "failed_steps": ["marketing_mart"], "message": "blocked"})
    finally:
        server.shutdown()
        thread.join()
    assert received == [
        (
            "application/json",
            {"run_id": "r2", "job": "daily_job", "failed_steps": ["marketing_mart"], "message": "blocked"},
        )
    ]
    assert json.loads((tmp_path / "alerts.jsonl").read_text())["run_id"] == "r2"


def test_a_failed_run_reaches_the_failure_sensor_and_its_hook(tmp_path):
    storage = storage_for(tmp_path)
    write(storage.landing, "customers", "20261124", [], raw=b"\xff not utf8\n")
    hook_out = tmp_path / "hook.json"
    alerts = FailureAlerts(log_path=str(tmp_path / "alerts.jsonl"), command=f"cat > {hook_out}")
    defs = build_defs(resource_overrides={"storage": storage, "alerts": alerts})
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("daily_job").execute_in_process(
            instance=instance, partition_key="2026-11-23", tags={BUSINESS_DAY_TAG: "2026-11-23"}, raise_on_error=False
        )
        assert not result.success
        from dagster import build_run_status_sensor_context

        sensor = defs.resolve_sensor_def("run_failure_alert")
        context = build_run_status_sensor_context(
            sensor_name="run_failure_alert",
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            dagster_event=result.get_run_failure_event(),
            resources={"alerts": alerts},
        ).for_run_failure()
        sensor(context)
    alert = json.loads(hook_out.read_text())
    assert alert["run_id"] == result.run_id and alert["business_day"] == "2026-11-23"
    assert alert["failed_steps"] == ["ingest_customers"]
    # a failed run's alert also names the deliveries that were missing (here: metering's)
    assert any(c.startswith("ingest_metering/source_freshness: missing") for c in alert["failed_checks"])
    assert (tmp_path / "alerts.jsonl").read_text().count("\n") == 1


def _freshness(result) -> dict:
    return {c.asset_key.path[-1]: c for c in result.get_asset_check_evaluations() if c.check_name == "source_freshness"}


def test_source_freshness_fails_when_the_metering_delivery_is_missing_or_dated_too_early(tmp_path):
    storage = storage_for(tmp_path)
    day = dt.date(2026, 11, 23)
    checks = _freshness(run_day(storage, day))
    assert not checks["ingest_metering"].passed
    assert checks["ingest_metering"].metadata["problem"].value == "missing"
    assert checks["ingest_consents"].passed  # event-driven source
    # the delivery dated D (it holds D-1) is not the one D needs: D+1's
    write(storage.landing, "metering", "20261123", [metering_row(GSRN1, "2026-11-21T22:00:00Z")])
    check = _freshness(run_day(storage, day))["ingest_metering"]
    assert not check.passed and check.metadata["problem"].value == "missing"
    assert check.metadata["latest_delivery"].value == "metering_20261123.csv"


def test_source_freshness_judges_the_date_in_the_file_name_not_the_file_time(tmp_path):
    """A backfill or a fresh install: the files were copied in long after their delivery morning, or
    carry times from anywhere (a restore, a bucket sync). The names' dates decide, so the check passes."""
    storage = storage_for(tmp_path)
    day = dt.date(2026, 11, 23)
    metering = write(storage.landing, "metering", "20261124", [metering_row(GSRN1, "2026-11-22T22:00:00Z")])
    customers = write(storage.landing, "customers", "20261119", [])  # weekly: within the 7-day cadence
    for path, stamp in ((metering, dt.datetime(2027, 3, 1, 12, tzinfo=dt.UTC)), (customers, dt.datetime(2020, 1, 1))):
        os.utime(path, (stamp.timestamp(), stamp.timestamp()))
    checks = _freshness(run_day(storage, day))
    assert checks["ingest_metering"].passed, checks["ingest_metering"].metadata
    assert checks["ingest_customers"].passed, checks["ingest_customers"].metadata
    assert "problem" not in checks["ingest_metering"].metadata


def test_a_missing_delivery_reaches_the_alert_hook_although_the_run_succeeds(tmp_path):
    """source_freshness is not blocking (the day's audiences still publish), so the run succeeds; the
    source_freshness_alert sensor sends the failed check through the same hook as a failed run."""
    from dagster import build_run_status_sensor_context

    storage = storage_for(tmp_path)
    day = dt.date(2026, 11, 23)
    hook_out = tmp_path / "hook.json"
    alerts = FailureAlerts(log_path=str(tmp_path / "alerts.jsonl"), command=f"cat > {hook_out}")
    defs = build_defs(resource_overrides={"storage": storage, "alerts": alerts})
    with DagsterInstance.ephemeral() as instance:
        result = run_day(storage, day, instance=instance)
        assert result.success
        assert not _freshness(result)["ingest_metering"].passed
        sensor = defs.resolve_sensor_def("source_freshness_alert")
        context = build_run_status_sensor_context(
            sensor_name="source_freshness_alert",
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            dagster_event=result.get_run_success_event(),
            resources={"alerts": alerts},
        )
        sensor(context)
    alert = json.loads(hook_out.read_text())
    assert alert["run_id"] == result.run_id and alert["business_day"] == "2026-11-23"
    assert alert["failed_steps"] == []
    assert any(c.startswith("ingest_metering/source_freshness: missing") for c in alert["failed_checks"])
    assert "ingest_consents/source_freshness" not in " ".join(alert["failed_checks"])  # event-driven
    assert (tmp_path / "alerts.jsonl").read_text().count("\n") == 1


def test_a_run_with_every_delivery_on_time_sends_no_freshness_alert(tmp_path):
    from dagster import build_run_status_sensor_context

    storage = storage_for(tmp_path)
    day = dt.date(2026, 11, 23)
    write(storage.landing, "metering", "20261124", [metering_row(GSRN1, "2026-11-22T22:00:00Z")])
    for source in ("customers", "contracts", "asml"):
        write(storage.landing, source, "20261124", [])
    alerts = FailureAlerts(log_path=str(tmp_path / "alerts.jsonl"))
    defs = build_defs(resource_overrides={"storage": storage, "alerts": alerts})
    with DagsterInstance.ephemeral() as instance:
        result = run_day(storage, day, instance=instance)
        assert all(c.passed for c in _freshness(result).values())
        defs.resolve_sensor_def("source_freshness_alert")(
            build_run_status_sensor_context(
                sensor_name="source_freshness_alert",
                dagster_instance=instance,
                dagster_run=instance.get_run_by_id(result.run_id),
                dagster_event=result.get_run_success_event(),
                resources={"alerts": alerts},
            )
        )
    assert not (tmp_path / "alerts.jsonl").exists()
