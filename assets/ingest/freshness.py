"""When a source's delivery for business day D counts as missing: judged by the date in its file name.

A file's modification time is not a delivery fact: a backfill, a fresh install, a restore from
backup or a copy between buckets all give old deliveries new times, and every one of them then read
"late". The date in the name (`<prefix>_YYYYMMDD.csv`) is what the source declares and what decides
which files a run may see (`visible_cutoff`), so the verdict is the same on every re-run of D.

What it cannot say is the hour a file arrived, so there is no "late" any more: a delivery that had
not come when the run looked is missing for that run (and the landing-zone sensor re-runs the day
when it comes). See docs/decisions.md, "Source freshness".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from assets.storage.landing import visible_cutoff
from data_contracts.vocabulary import HELSINKI


@dataclass(frozen=True)
class FreshnessVerdict:
    """`problem` is None when a delivery dated within [`due_from`, `due_to`] is there, else "missing"."""

    due_from: dt.date
    due_to: dt.date
    problem: str | None


def judge_delivery(
    day: dt.date, delivered_on: list[dt.date], cadence_days: int, expected_time: dt.time, now: dt.datetime
) -> FreshnessVerdict:
    """The run for D needs a delivery dated D+1, or within the cadence before it (D+1-cadence+1 … D+1).

    D+1's delivery is only due from the policy's expected time (Helsinki) on D+1: a run that looks
    earlier (a manual run in the night) expects the one before it instead. `now` is when the check
    runs; for a backfill it is long after, and the whole rule is the file names.
    """
    cutoff = visible_cutoff(day)
    due_to = cutoff if now >= dt.datetime.combine(cutoff, expected_time, HELSINKI) else cutoff - dt.timedelta(days=1)
    due_from = due_to - dt.timedelta(days=cadence_days - 1)
    present = any(due_from <= d <= cutoff for d in delivered_on)
    return FreshnessVerdict(due_from, due_to, None if present else "missing")
