"""Per-day metering aggregates, built for many days in one DuckDB pass.

For every (metering point, start time) the row of the latest delivery visible to the run wins
(deliveries up to `cutoff`; within a delivery the first line, as the duplicate rule keeps it).
A history load of 400 days runs as one query instead of 400, which is what makes `lupa backfill`
take minutes, not hours.

The dedupe is most of the query's cost. A day whose readings all come from one delivery that
stored its keys in strictly increasing order (the usual day: Datahub exports are ordered) has
nothing to dedupe, and skips it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl

from assets.common.calendar import day_length_hours
from assets.storage import lake
from assets.storage.metering_parts import Manifests, part_tag


def aggregate_sql(
    parts: list[str], days: list[dt.date], cutoff: dt.date, suppress: bool = False, dedupe: bool = True
) -> str:
    files = ", ".join(f"'{p}'" for p in parts)
    lengths = ", ".join(f"(date '{d.isoformat()}', {day_length_hours(d)})" for d in days)
    latest = (
        "select business_day, metering_point_id, unnest(arg_max(reading, version)) from versions "
        "group by business_day, metering_point_id, start_utc"
        if dedupe
        else "select business_day, metering_point_id, unnest(reading) from versions"
    )
    erased = (
        "and not exists (select 1 from erased e where e.metering_point_id = r.metering_point_id "
        "and r.business_day between e.valid_from and coalesce(e.valid_to, date '9999-12-31'))"
    )
    reading = "{'resolution': resolution, 'quantity_kwh': quantity_kwh, 'quality': quality, 'local_hour': local_hour}"
    hours = ",\n           ".join(
        f"coalesce(sum(quantity_kwh) filter (where local_hour = {h}), 0)::double as kwh_h{h:02d}" for h in range(24)
    )
    return f"""
    with versions as (
        select business_day, metering_point_id, start_utc,
               {reading} as reading,
               (delivery - date '2000-01-01')::bigint * 10000000000 - line as version
        from read_parquet([{files}], hive_partitioning = true, hive_types = {{'business_day': date}}) r
        where delivery <= date '{cutoff.isoformat()}'
        {erased if suppress else ""}
    ),
    -- the latest delivery wins per interval, and within it the first line, which the duplicate
    -- rule keeps too (a repeat it cannot see, across blocks of an unordered file, lands here);
    -- a grouped arg_max spills to disk
    -- under the memory limit, where a window over every reading would not
    latest as ({latest}),
    day_length(business_day, hours) as (values {lengths})
    select l.business_day, metering_point_id,
           min(resolution) as resolution,
           coalesce(sum(quantity_kwh), 0)::double as kwh_total,
           {hours},
           coalesce(sum(quantity_kwh) filter (where local_hour >= 22 or local_hour < 7), 0)::double as night_kwh,
           count(*) filter (where quality = 'OK') as n_ok,
           count(*) filter (where quality = 'ESTIMATED') as n_estimated,
           count(*) filter (where quality = 'MISSING') as n_missing,
           -- the intervals of the day's length at the resolutions read; a day whose meter was
           -- replaced (PT1H, then PT15M) expects its hourly readings plus quarters for the rest
           (case when count(distinct resolution) > 1
                 then count(*) filter (where resolution = 'PT1H')
                      + (any_value(d.hours) - count(*) filter (where resolution = 'PT1H')) * 4
                 when min(resolution) = 'PT15M' then any_value(d.hours) * 4
                 else any_value(d.hours) end)::bigint as n_expected
    from latest l join day_length d on l.business_day = d.business_day
    group by l.business_day, metering_point_id
    order by l.business_day, metering_point_id
    """


def aggregate_days(
    readings_root: Path,
    daily_root: Path,
    days: list[dt.date],
    cutoff: dt.date,
    erased_points: pl.DataFrame | None = None,
    spill_dir: Path | None = None,
) -> dict[dt.date, int]:
    """(Re)build `daily/business_day=D/part.parquet` for each day; returns rows per day.

    Readings of an erased customer's point periods (`erased_points`) are filtered out of the read
    until the retention compaction removes them physically. A day with no readings left has its
    aggregate removed, so it never shows stale numbers.
    """
    suppress = erased_points is not None and not erased_points.is_empty()
    days = sorted(set(days))
    rows: dict[dt.date, int] = {}
    conn = duckdb.connect()
    # an in-memory DuckDB spills to `.tmp` in the current directory by default; readings are
    # restricted data, so spill inside the restricted zone instead (a lake on S3: the local
    # restricted folder `spill_dir`, which the caller passes)
    spill = spill_dir if spill_dir is not None else readings_root.parent / ".duckdb_spill"
    conn.execute(f"set temp_directory = '{lake.sql_path(spill)}'")
    lake.register(conn, readings_root)
    conn.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
    conn.execute("set preserve_insertion_order = false")
    try:
        if suppress:
            conn.register("erased", erased_points)
        for start in range(0, len(days), DAYS_PER_QUERY):
            batch = days[start : start + DAYS_PER_QUERY]
            rows |= _aggregate_batch(conn, readings_root, daily_root, batch, cutoff, suppress)
    finally:
        conn.close()
    return rows


def _one_ordered_delivery(manifests: Manifests, parts: list[Path], cutoff: dt.date) -> bool:
    """True when a day's readings visible at `cutoff` come from a single delivery whose manifest
    says its keys are in strictly increasing order: then no interval is stored twice, and the
    latest-delivery-wins dedupe (the costly part of the query) has nothing to do."""
    tags = {part_tag(p) for p in parts}
    visible = [t for t in tags if dt.datetime.strptime(t, "%Y%m%d").date() <= cutoff]
    if len(visible) != 1:
        return False
    manifest = manifests.get(visible[0])
    return bool(manifest and manifest.get("keys_in_order", False))


#: DuckDB's memory for the aggregation; beyond it, it spills to the restricted zone
MEMORY_LIMIT = "3GB"

#: days per DuckDB query: one month of a large retailer's readings keeps memory bounded
DAYS_PER_QUERY = 31


def _aggregate_batch(
    conn, readings_root: Path, daily_root: Path, days: list[dt.date], cutoff: dt.date, suppress: bool
) -> dict[dt.date, int]:
    # only the parts of each delivery's committed generation (metering_parts): never a half-written delivery
    manifests = Manifests(readings_root.parent / "deliveries")
    parts = {d: manifests.visible_in(readings_root / f"business_day={d.isoformat()}") for d in days}
    unique = [d for d in days if _one_ordered_delivery(manifests, parts[d], cutoff)]
    frames = [
        conn.sql(
            aggregate_sql([lake.sql_path(p) for d in group for p in parts[d]], group, cutoff, suppress, dedupe=dedupe)
        ).pl()
        for group, dedupe in ((unique, False), ([d for d in days if d not in unique], True))
        if any(parts[d] for d in group)
    ]
    frame = pl.concat(frames) if frames else pl.DataFrame()
    by_day = frame.partition_by("business_day", as_dict=True) if frame.height else {}
    rows: dict[dt.date, int] = {}
    for day in days:
        target = daily_root / f"business_day={day.isoformat()}"
        part = by_day.get((day,))
        if part is None or part.is_empty():
            lake.remove_tree(target)
            rows[day] = 0
            continue
        lake.write_parquet(part, target / "part.parquet")  # one object: readers see the old day or the new
        rows[day] = part.height
    return rows
