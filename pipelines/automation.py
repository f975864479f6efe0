"""What runs the pipeline unattended: the 06:00 schedule, the landing-zone sensor, the failure alerts.

Two sensors share one hook (`FailureAlerts`): `run_failure_alert` for a failed run, and
`source_freshness_alert` for a run that succeeded although a source's delivery was missing. The
freshness check is deliberately not blocking (a missing CRM snapshot must not hold back the day's
audiences, docs/decisions.md), so without the second sensor its failure would only show in the UI.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from dagster import (
    ConfigurableResource,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    build_schedule_from_partitioned_job,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from assets.common.calendar import BUSINESS_DAY_TAG, yesterday_in_helsinki
from assets.common.conventions import business_days
from assets.storage.landing import FILE_NAME
from assets.storage.zones import LupaStorage


def make_schedule(job):
    """06:00 Europe/Helsinki every day, for the previous business day's partition.

    On by default: the scheduler is one of the pipeline's users, so a deployment runs every morning
    once the daemon runs, without anyone switching it on in the UI."""
    return build_schedule_from_partitioned_job(
        job,
        name="daily_run",
        hour_of_day=6,
        minute_of_hour=0,
        default_status=DefaultScheduleStatus.RUNNING,
        description=(
            "Runs the whole graph at 06:00 Helsinki time for the previous business day, after the night's deliveries."
        ),
    )


def deliveries_by_day(landing: Path) -> dict[str, str]:
    """Fingerprint of every delivery date's files (names and sizes), keyed by delivery date."""
    files: dict[str, list[str]] = defaultdict(list)
    if landing.exists():
        for path in sorted(landing.glob("*/*")):
            match = FILE_NAME.match(path.name)
            if match:
                files[match["date"]].append(f"{path.parent.name}/{path.name}:{path.stat().st_size}")
    return {day: hashlib.sha256("\n".join(names).encode()).hexdigest()[:16] for day, names in sorted(files.items())}


def make_landing_sensor(job):
    @sensor(
        name="landing_zone_sensor",
        job=job,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.STOPPED,
        description=(
            "Watches the landing zone. When the files delivered on day X change (a new delivery, a late file, a "
            "correction), it requests the daily run for business day X-1, which reads everything delivered up to X "
            "and rebuilds any metering day a correction touched. On first start it only records what is there."
        ),
    )
    def landing_zone_sensor(context: SensorEvaluationContext, storage: LupaStorage):
        seen = json.loads(context.cursor) if context.cursor else None
        current = deliveries_by_day(storage.landing)
        if seen is None:  # first evaluation: the history is loaded by `lupa backfill`, not by the sensor
            latest = max(current, default=None)
            requests = [_request(latest, current[latest])] if latest else []
            return SensorResult(run_requests=[r for r in requests if r], cursor=json.dumps(current))
        changed = [day for day, fingerprint in current.items() if seen.get(day) != fingerprint]
        requests = [r for r in (_request(day, current[day]) for day in changed) if r]
        if not requests:
            return SensorResult(skip_reason=SkipReason("no new or changed deliveries"), cursor=json.dumps(current))
        return SensorResult(run_requests=requests, cursor=json.dumps(current))

    return landing_zone_sensor


def _request(delivery_yyyymmdd: str, fingerprint: str) -> RunRequest | None:
    day = dt.datetime.strptime(delivery_yyyymmdd, "%Y%m%d").date() - dt.timedelta(days=1)
    first = dt.date.fromisoformat(business_days.get_first_partition_key())
    if day < first or day > yesterday_in_helsinki():
        return None  # outside the partitioned history
    key = day.isoformat()
    return RunRequest(
        run_key=f"{key}:{fingerprint}",
        partition_key=key,
        tags={BUSINESS_DAY_TAG: key, "lupa/trigger": "landing_zone_sensor"},
    )


class FailureAlerts(ConfigurableResource):
    """Where failed runs are reported: an append-only alert log, plus an optional command or webhook.

    The command gets the alert as JSON on stdin; the webhook gets it as a JSON POST. Alerts hold
    run ids, job names, step keys and error messages, which by design never quote personal data.
    """

    log_path: str
    command: str | None = None
    webhook_url: str | None = None
    timeout_seconds: float = 10.0

    def send(self, alert: dict) -> None:
        path = Path(self.log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(alert, sort_keys=True) + "\n")
        payload = json.dumps(alert).encode()
        if self.command:
            subprocess.run(self.command, shell=True, input=payload, timeout=self.timeout_seconds, check=False)
        if self.webhook_url:
            request = urllib.request.Request(
                self.webhook_url, data=payload, headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=self.timeout_seconds).close()


def failure_alerts_from_env(var_dir: Path) -> FailureAlerts:
    return FailureAlerts(
        log_path=os.environ.get("LUPA_ALERT_LOG", str(var_dir / "alerts" / "run_failures.jsonl")),
        command=os.environ.get("LUPA_ALERT_COMMAND") or None,
        webhook_url=os.environ.get("LUPA_ALERT_WEBHOOK") or None,
    )


@run_failure_sensor(
    name="run_failure_alert",
    monitor_all_code_locations=False,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Records every failed run in the alert log and calls the configured hook "
        "(LUPA_ALERT_COMMAND / LUPA_ALERT_WEBHOOK)."
    ),
)
def run_failure_alert(context: RunFailureSensorContext, alerts: FailureAlerts) -> None:
    run = context.dagster_run
    alerts.send(
        alert_for(
            run.run_id,
            run.job_name,
            dict(run.tags),
            context.failure_event.message or "",
            [e.step_key for e in context.get_step_failure_events()],
            failed_freshness_checks(context.instance, run.run_id),
        )
    )


#: the check whose failure alerts even when the run succeeds (assets/ingest/assets.py)
FRESHNESS_CHECK = "source_freshness"


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    name="source_freshness_alert",
    monitor_all_code_locations=False,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "For a run that succeeded while a source_freshness check failed (a missing delivery), records the alert "
        "and calls the same hook as run_failure_alert. A failed run's alert lists those checks itself."
    ),
)
def source_freshness_alert(context: RunStatusSensorContext, alerts: FailureAlerts) -> None:
    run = context.dagster_run
    failed = failed_freshness_checks(context.instance, run.run_id)
    if failed:
        message = "source_freshness failed: " + "; ".join(failed)
        alerts.send(alert_for(run.run_id, run.job_name, dict(run.tags), message, [], failed))


def failed_freshness_checks(instance: DagsterInstance, run_id: str) -> list[str]:
    """`<asset>/source_freshness: <problem> (expected …; latest <file name>)` per failed check of the run.

    Only the check's own metadata is quoted: dates and landing file names, never a personal value.
    """
    found = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if evaluation is None or evaluation.check_name != FRESHNESS_CHECK or evaluation.passed:
            continue
        meta = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        found.append(
            f"{evaluation.asset_key.to_user_string()}/{FRESHNESS_CHECK}: {meta.get('problem', 'failed')} "
            f"(expected {meta.get('expected', '?')}; latest {meta.get('latest_delivery', 'none')})"
        )
    return sorted(found)


def alert_for(
    run_id: str,
    job_name: str,
    tags: dict[str, str],
    message: str,
    failed_steps: list[str],
    failed_checks: Sequence[str] = (),
) -> dict:
    return {
        "run_id": run_id,
        "job": job_name,
        "business_day": tags.get(BUSINESS_DAY_TAG) or tags.get("dagster/partition"),
        "failed_steps": sorted(s for s in failed_steps if s),
        "failed_checks": sorted(failed_checks),
        "message": message,
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
