"""`lupa daily` and `lupa backfill`: runs of the graph through Dagster on the configured instance, so
what they do is recorded where the UI shows it.

Both run in-process, past the daemon's run queue, so each holds the installation's daily-run lock
for the whole command and waits for a daemon-launched daily run to finish (`pipelines/serial_runs.py`):
two daily runs never share the warehouse's intermediate tables."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pipelines.commands import iso_date


def _run(job_name: str, partition_key: str | None = None, tags: dict[str, str] | None = None, asset_keys=None) -> bool:
    from dagster import DagsterInstance

    from pipelines.definitions import build_defs
    from pipelines.serial_runs import process_tag

    defs = build_defs()
    job = defs.resolve_job_def(job_name)
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            partition_key=partition_key,
            # the process tag lets the next `lupa` run clean up after this one if it is killed
            tags=(tags or {}) | process_tag(),
            raise_on_error=False,
            asset_selection=asset_keys,
            # the full event log, framework stack traces included, is in the instance (make ui); the
            # terminal gets one line per warning or failed step, written below (`run_report`)
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
        for line in run_report(instance, result):
            print(line, file=sys.stderr)
    if not result.success:
        print(f"run {result.run_id} failed; open the Dagster UI (make ui) for the event log", file=sys.stderr)
    else:
        print(f"run {result.run_id} succeeded ({job_name}{', ' + partition_key if partition_key else ''})")
    return result.success


def run_report(instance, result) -> list[str]:
    """What the terminal shows of a run: the warnings the assets logged, and one line per failed step
    with its message (a bad delivery's names file, line and rule). No framework stack trace: Dagster
    prints one with every failed step, before the message that matters, and a `Failure` raised on
    purpose has nothing in it to debug; the trace stays in the event log for the one that is a bug."""
    lines, not_run = [], 0
    for entry in instance.all_logs(result.run_id):
        if entry.is_dagster_event or entry.level < logging.WARNING or not entry.user_message:
            continue
        if entry.user_message.startswith("Dependencies for step"):
            not_run += 1  # the engine's note for every step downstream of a failure: counted, not listed
            continue
        where = f"{entry.step_key}: " if entry.step_key else ""
        lines.append(f"{logging.getLevelName(entry.level).lower()}: {where}{' '.join(entry.user_message.split())}")
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            lines.append(f"step {event.step_key} failed: {_failure_message(event.step_failure_data)}")
    if not_run:
        lines.append(f"{not_run} step(s) downstream of it not run")
    return lines


def _failure_message(failure) -> str:
    """A step failure in one line: a `Failure`'s own description; else the error's class and message."""
    described = failure.user_failure_data.description if failure.user_failure_data else None
    if described:
        return " ".join(described.split())
    error = failure.error
    if error is None:
        return "no error recorded"
    return f"{error.cls_name}: {' '.join(error.message.split())}" if error.cls_name else " ".join(error.message.split())


@contextmanager
def _alone_on_installation(what: str) -> Iterator[None]:
    """No other daily run on this installation while the block runs (see pipelines/serial_runs.py)."""
    from dagster import DagsterInstance

    from pipelines.serial_runs import clean_up_dead_runs, installation_lock, wait_for_queued_daily_runs
    from pipelines.settings import load_settings

    with installation_lock(load_settings().data_dir, what):
        with DagsterInstance.get() as instance:
            clean_up_dead_runs(instance, what)
            wait_for_queued_daily_runs(instance, what)
        yield


def cmd_daily(args: argparse.Namespace) -> int:
    from assets.common.calendar import BUSINESS_DAY_TAG

    day = args.date.isoformat()
    with _alone_on_installation(f"lupa daily --date {day}"):
        return 0 if _run("daily_job", partition_key=day, tags={BUSINESS_DAY_TAG: day}) else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    """Load a range: the metering partitions in one run, then the whole graph once for the last day."""
    if args.end < args.start:
        print("--end is before --start", file=sys.stderr)
        return 2
    with _alone_on_installation(f"lupa backfill --start {args.start} --end {args.end}"):
        return _backfill(args)


def _backfill(args: argparse.Namespace) -> int:
    import time

    from assets.common.calendar import BUSINESS_DAY_TAG

    start = time.monotonic()
    ok = _run(
        "metering_job",
        tags={
            "dagster/asset_partition_range_start": args.start.isoformat(),
            "dagster/asset_partition_range_end": args.end.isoformat(),
            BUSINESS_DAY_TAG: args.end.isoformat(),
        },
    )
    print(f"metering {args.start} … {args.end}: {time.monotonic() - start:.1f} s")
    if not ok:
        return 1
    end = args.end.isoformat()
    ok = _run("daily_job", partition_key=end, tags={BUSINESS_DAY_TAG: end})
    print(f"backfill {args.start} … {args.end} took {time.monotonic() - start:.1f} s in all")
    return 0 if ok else 1


def add_parser(subparsers) -> None:
    daily = subparsers.add_parser("daily", help="run the whole graph for business day D through Dagster")
    daily.add_argument("--date", type=iso_date, required=True)
    daily.set_defaults(fn=cmd_daily)

    backfill = subparsers.add_parser(
        "backfill", help="load the metering partitions of a range in one run, then everything for the last day"
    )
    backfill.add_argument("--start", type=iso_date, required=True)
    backfill.add_argument("--end", type=iso_date, required=True)
    backfill.set_defaults(fn=cmd_backfill)
