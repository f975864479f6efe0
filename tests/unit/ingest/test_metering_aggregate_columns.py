"""The daily metering aggregate's night and quality columns, from the real ingest and aggregator.

A crafted delivery for one Helsinki business day: a PT1H point and a PT15M point, with ESTIMATED
and MISSING readings both inside and outside the night window (22–07 local time, its edges
included: 21:45 and 07:00 are day, 22:00 and 06:45 are night), plus a correction for the local
hour 23 of the day before, which belongs to that day and must not leak into this one's night.
The expected figures are written out by hand from local hours, not derived from UTC.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from assets.storage.metering import aggregate_day, daily_root, ingest_delivery
from assets.storage.zones import LupaStorage
from tests.landing_builder import GSRN1, GSRN2, metering_row, write

HELSINKI = ZoneInfo("Europe/Helsinki")

#: PT1H point: quality by local hour (OK otherwise); quantity of local hour h is 1 + h/100 kWh
HOURLY_QUALITY = {3: "MISSING", 22: "ESTIMATED", 6: "ESTIMATED", 7: "MISSING", 12: "ESTIMATED", 21: "OK"}
#: PT15M point: quality by local (hour, minute); every quarter that is not MISSING is 0,25 kWh
QUARTER_QUALITY = {(6, 45): "MISSING", (7, 0): "MISSING", (21, 45): "ESTIMATED", (22, 0): "ESTIMATED"}


def utc(day: dt.date, hour: int, minute: int = 0) -> str:
    local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=HELSINKI)
    return local.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hourly_kwh(hour: int) -> float:
    return 1 + hour / 100


def crafted_delivery(day: dt.date) -> list[str]:
    before = day - dt.timedelta(days=1)
    rows = [metering_row(GSRN1, utc(before, 23), "100,000", "OK")]  # a correction of the day before
    for h in range(24):
        quality = HOURLY_QUALITY.get(h, "OK")
        quantity = "" if quality == "MISSING" else f"{hourly_kwh(h):.2f}".replace(".", ",")
        rows.append(metering_row(GSRN1, utc(day, h), quantity, quality))
    for h in range(24):
        for m in (0, 15, 30, 45):
            quality = QUARTER_QUALITY.get((h, m), "OK")
            rows.append(metering_row(GSRN2, utc(day, h, m), "" if quality == "MISSING" else "0,250", quality, "PT15M"))
    return rows


@pytest.mark.parametrize("day", [dt.date(2026, 11, 23), dt.date(2026, 7, 15)], ids=["winter-utc+2", "summer-utc+3"])
def test_night_kwh_and_quality_counts_of_the_daily_aggregate(tmp_path, day):
    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))
    delivered = day + dt.timedelta(days=1)
    rows = crafted_delivery(day)
    write(storage.landing, "metering", delivered.strftime("%Y%m%d"), rows)

    outcome = ingest_delivery(storage, day)
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_quarantined) == (len(rows), len(rows), 0)
    assert outcome.days_written == {(day - dt.timedelta(days=1)).isoformat(): 1, day.isoformat(): 24 + 96}
    assert aggregate_day(storage, day, delivered) == 2

    daily = pl.read_parquet(daily_root(storage) / f"business_day={day.isoformat()}" / "part.parquet")
    got = {r["metering_point_id"]: r for r in daily.iter_rows(named=True)}
    assert set(got) == {GSRN1, GSRN2}

    hourly = got[GSRN1]
    # night 22–07 without the MISSING hour 3; hour 7 (MISSING anyway) and 21 are day hours
    night_hours = [22, 23, 0, 1, 2, 4, 5, 6]
    assert hourly["night_kwh"] == pytest.approx(sum(hourly_kwh(h) for h in night_hours))
    assert hourly["night_kwh"] == pytest.approx(8 + (22 + 23 + 0 + 1 + 2 + 4 + 5 + 6) / 100)  # 8.63, not 100 more
    assert hourly["kwh_total"] == pytest.approx(sum(hourly_kwh(h) for h in range(24) if h not in (3, 7)))
    assert (hourly["n_ok"], hourly["n_estimated"], hourly["n_missing"], hourly["n_expected"]) == (19, 3, 2, 24)
    assert hourly["resolution"] == "PT1H"
    for h in range(24):
        assert hourly[f"kwh_h{h:02d}"] == pytest.approx(0.0 if h in (3, 7) else hourly_kwh(h)), h

    quarters = got[GSRN2]
    # night: 9 hours × 4 quarters, minus the MISSING 06:45; 22:00 (ESTIMATED) counts, 21:45 and 07:00 do not
    assert quarters["night_kwh"] == pytest.approx((9 * 4 - 1) * 0.25)
    assert quarters["kwh_total"] == pytest.approx((96 - 2) * 0.25)
    assert (quarters["n_ok"], quarters["n_estimated"], quarters["n_missing"], quarters["n_expected"]) == (92, 2, 2, 96)
    assert (quarters["kwh_h06"], quarters["kwh_h07"], quarters["kwh_h21"], quarters["kwh_h22"]) == pytest.approx(
        (0.75, 0.75, 1.0, 1.0)
    )
    assert quarters["n_ok"] + quarters["n_estimated"] + quarters["n_missing"] == quarters["n_expected"]
