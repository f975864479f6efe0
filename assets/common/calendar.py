"""Helsinki business days, and how a run knows which one it is running.

Partition keys are Helsinki calendar days (`Europe/Helsinki`, 23 or 25 hours on DST days). An
unpartitioned asset in a partitioned run takes its day from the run's tags, so every asset in
one run evaluates the same D.
"""

from __future__ import annotations

import datetime as dt

from data_contracts.vocabulary import HELSINKI

#: explicit override of the business day (set by `lupa daily`, sensors and tests)
BUSINESS_DAY_TAG = "lupa/business_day"
PARTITION_TAG = "dagster/partition"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def parse_day(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def yesterday_in_helsinki(now: dt.datetime | None = None) -> dt.date:
    now = now or dt.datetime.now(tz=HELSINKI)
    return now.astimezone(HELSINKI).date() - dt.timedelta(days=1)


def business_day_from_tags(tags: dict[str, str]) -> dt.date | None:
    for key in (BUSINESS_DAY_TAG, PARTITION_TAG, RANGE_END_TAG):
        if tags.get(key):
            return parse_day(tags[key])
    return None


def run_business_day(context) -> dt.date:
    """The business day D a run is for: explicit tag, else its partition, else the range end."""
    day = business_day_from_tags(dict(context.run.tags))
    if day is None and getattr(context, "has_partition_key", False):
        day = parse_day(context.partition_key)
    if day is None:
        raise ValueError(
            "this run has no business day: launch it for a partition, or set the tag "
            f"{BUSINESS_DAY_TAG}=YYYY-MM-DD (lupa daily does this)"
        )
    return day


def day_length_hours(day: dt.date) -> int:
    """23, 24 or 25: the length of a Helsinki calendar day."""
    start = dt.datetime.combine(day, dt.time(), HELSINKI)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), HELSINKI)
    return int((end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds() // 3600)
