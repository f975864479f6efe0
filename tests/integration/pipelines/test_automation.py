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
    assert (tmp_path / "alerts.jsonl").read_text().count("\n") == 1


def test_source_freshness_fails_when_the_metering_delivery_is_missing_or_late(tmp_path):
    storage = storage_for(tmp_path)
    day = dt.date(2026, 11, 23)
    result = run_day(storage, day)
    checks = {(c.asset_key.path[-1], c.check_name): c for c in result.get_asset_check_evaluations()}
    assert not checks[("ingest_metering", "source_freshness")].passed
    assert checks[("ingest_metering", "source_freshness")].metadata["problem"].value == "missing"
    assert checks[("ingest_consents", "source_freshness")].passed  # event-driven source
    path = write(storage.landing, "metering", "20261124", [metering_row(GSRN1, "2026-11-22T22:00:00Z")])
    on_time = dt.datetime(2026, 11, 24, 4, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))).timestamp()
    os.utime(path, (on_time, on_time))
    checks = {(c.asset_key.path[-1], c.check_name): c for c in run_day(storage, day).get_asset_check_evaluations()}
    assert checks[("ingest_metering", "source_freshness")].passed
    late = on_time + 3 * 3600
    os.utime(path, (late, late))
    check = {(c.asset_key.path[-1], c.check_name): c for c in run_day(storage, day).get_asset_check_evaluations()}[
        ("ingest_metering", "source_freshness")
    ]
    assert not check.passed and check.metadata["problem"].value == "late"
