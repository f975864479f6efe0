"""A metering day is complete when every interval of its Helsinki day is read: 23, 24 or 25 hours.

On the spring change day (2026-03-29, 23 hours) a PT15M point has 92 quarter-hours, on the autumn one
(2026-10-25, 25 hours) 100. A day is complete with all of them and incomplete with one fewer; a
delivery that sends 96 quarter-hours for the 25-hour day (a source that assumed every day has 24
hours) is stored, and judged incomplete. A point whose meter is replaced that day (PT1H, then PT15M)
is judged by the hours it covers, not by its finer resolution alone.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from assets.common.calendar import day_length_hours
from assets.storage.metering import aggregate_day, daily_root, ingest_delivery
from assets.storage.zones import LupaStorage
from data_contracts.contract import check_frame
from data_contracts.core import metering_daily
from models.features import _with_day_columns
from tests.landing_builder import GSRN1, metering_row, write

SPRING, AUTUMN, PLAIN = dt.date(2026, 3, 29), dt.date(2026, 10, 25), dt.date(2026, 11, 23)


def starts(day: dt.date, minutes: int) -> list[dt.datetime]:
    """Every interval start of the Helsinki day `day`, in UTC."""
    from data_contracts.vocabulary import HELSINKI

    first = dt.datetime.combine(day, dt.time(), HELSINKI).astimezone(dt.UTC)
    last = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), HELSINKI).astimezone(dt.UTC)
    n = int((last - first).total_seconds() // 60 // minutes)
    return [first + dt.timedelta(minutes=minutes * i) for i in range(n)]


def judged(tmp_path, day: dt.date, rows: list[str]) -> dict:
    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))
    write(storage.landing, "metering", (day + dt.timedelta(days=1)).strftime("%Y%m%d"), rows)
    outcome = ingest_delivery(storage, day)
    assert outcome.rows_quarantined == 0
    aggregate_day(storage, day, day + dt.timedelta(days=1))
    daily = pl.read_parquet(daily_root(storage) / f"business_day={day}" / "part.parquet").with_columns(
        pl.lit(day).alias("business_day")
    )
    check_frame(metering_daily, daily)  # the core table's contract accepts every such day
    [row] = _with_day_columns(daily.lazy()).collect().select("n_expected", "_read", "_complete").to_dicts()
    return row


def quarter_rows(day: dt.date, drop: int = 0) -> list[str]:
    times = starts(day, 15)
    return [metering_row(GSRN1, t.strftime("%Y-%m-%dT%H:%M:%SZ"), "0,100", "OK", "PT15M") for t in times[drop:]]


def test_the_change_days_have_23_and_25_hours():
    assert (day_length_hours(SPRING), day_length_hours(AUTUMN), day_length_hours(PLAIN)) == (23, 25, 24)
    assert (len(starts(SPRING, 15)), len(starts(AUTUMN, 15))) == (92, 100)


@pytest.mark.parametrize(
    "day, drop, expected, read, complete",
    [
        pytest.param(SPRING, 0, 92, 92, True, id="spring-92-of-92"),
        pytest.param(SPRING, 1, 92, 91, False, id="spring-91-of-92"),
        pytest.param(AUTUMN, 0, 100, 100, True, id="autumn-100-of-100"),
        pytest.param(AUTUMN, 4, 100, 96, False, id="autumn-96-of-100"),
        pytest.param(PLAIN, 0, 96, 96, True, id="plain-96-of-96"),
    ],
)
def test_a_quarter_hour_day_is_complete_only_with_every_interval_of_its_length(
    tmp_path, day, drop, expected, read, complete
):
    row = judged(tmp_path, day, quarter_rows(day, drop))
    assert (row["n_expected"], row["_read"], row["_complete"]) == (expected, read, complete)


@pytest.mark.parametrize("day, hours", [(SPRING, 23), (AUTUMN, 25)], ids=["spring", "autumn"])
def test_an_hourly_day_of_23_or_25_hours_is_complete(tmp_path, day, hours):
    rows = [metering_row(GSRN1, t.strftime("%Y-%m-%dT%H:%M:%SZ")) for t in starts(day, 60)]
    assert len(rows) == hours
    assert judged(tmp_path, day, rows)["_complete"] is True


@pytest.mark.parametrize("day", [PLAIN, AUTUMN], ids=["plain", "autumn"])
def test_a_day_the_meter_is_replaced_is_complete_when_its_hours_are_covered(tmp_path, day):
    """PT1H until 10:00 local time, PT15M from then on (landing-zone.md: a point may switch)."""
    hourly = starts(day, 60)
    switch = hourly[10]
    rows = [metering_row(GSRN1, t.strftime("%Y-%m-%dT%H:%M:%SZ")) for t in hourly if t < switch]
    rows += [
        metering_row(GSRN1, t.strftime("%Y-%m-%dT%H:%M:%SZ"), "0,100", "OK", "PT15M")
        for t in starts(day, 15)
        if t >= switch
    ]
    assert judged(tmp_path, day, rows)["_complete"] is True
