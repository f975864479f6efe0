"""Rows past retention stay out: what the `retention` asset removed, ingestion keeps out afterwards.

Several ingest tables are rebuilt on every run from every delivery ever made (billing is an upsert
log, contacts an append log), and the landing zone is read-only, so a row deleted from the
warehouse alone would be back the next morning. Each kind of data that has this problem has a
`PruningLog`: the `retention` asset records in it each day D it enforced the period (with how many
rows it removed), and ingestion then drops, before anything is written, every row that was past its
period on the latest recorded D. That holds on every later run and on a backfill of an earlier day
alike, because the latest recorded D decides, not the day being run. Ingestion counts those rows
as `rows_past_retention` (conservation check, `file_registry`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import polars as pl

from assets.storage.zones import query, scalar, table_exists
from models.fail_safe import RESOLUTION_KEY, held_until_resolved

#: ingestion's filter: the valid rows of every file in scope in, the rows to keep out
RetentionFilter = Callable[[pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True)
class PruningLog:
    """`<table>(business_day DATE, <count_column> BIGINT)`: one row per day retention was enforced."""

    table: str
    count_column: str

    def record(self, conn: duckdb.DuckDBPyConnection, day: dt.date, removed: int) -> None:
        conn.execute(f'create table if not exists "{self.table}" (business_day date, "{self.count_column}" bigint)')
        conn.execute(f'insert into "{self.table}" values ($d, $n)', {"d": day, "n": removed})

    def enforced(self, conn: duckdb.DuckDBPyConnection) -> dt.date | None:
        """The latest day retention was enforced, or None before the first time."""
        return scalar(conn, f'select max(business_day) from "{self.table}"') if table_exists(conn, self.table) else None

    def keep_out(
        self, conn: duckdb.DuckDBPyConnection, past: Callable[[pl.DataFrame, dt.date], pl.Series]
    ) -> RetentionFilter | None:
        """Ingestion's filter: drops the rows `past(frame, enforced)` marks (a boolean per row) as
        past their period on the latest enforced day. None before the first enforcement."""
        enforced = self.enforced(conn)
        if enforced is None:
            return None
        return lambda frame: frame.filter(~past(frame, enforced).fill_null(False))

    def kept_since(
        self, conn: duckdb.DuckDBPyConnection, cutoff: Callable[[dt.date], dt.date], day: dt.date
    ) -> dt.date:
        """The earliest date still kept when running `day`: its own cutoff, or the cutoff of the
        latest enforced day if that is later (a backfill of an earlier day)."""
        enforced = self.enforced(conn)
        return max(cutoff(day), cutoff(enforced)) if enforced is not None else cutoff(day)


#: the quarantine (table `quarantine`) is written by every ingest run for the files in the window of
#: the day being run; the log keeps a backfill of an earlier day from storing again what the latest
#: enforcement removed (see `PruningLog.kept_since`); neither retention nor ingestion drops a row the fail
#: safe holds until it is resolved (`prune_quarantine`, `quarantine_to_store`)
QUARANTINE_LOG = PruningLog("quarantine_pruning_log", "quarantine_rows_pruned")


def quarantine_resolutions(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """(source, file, line) of every quarantined row a person resolved (`lupa resolve-quarantine`)."""
    if not table_exists(conn, "quarantine_resolutions"):
        return pl.DataFrame(schema={"source": pl.String, "file": pl.String, "line": pl.Int64})
    return query(conn, "select distinct source, file, line from quarantine_resolutions")


def quarantine_to_store(conn: duckdb.DuckDBPyConnection, quarantine: pl.DataFrame, since: dt.date) -> pl.DataFrame:
    """Ingestion: the quarantined rows of files delivered on or after `since`, and the older ones the
    fail safe holds until a person resolves them (`models.fail_safe.held_until_resolved`)."""
    held = held_until_resolved(quarantine, quarantine_resolutions(conn))
    return quarantine.filter((pl.col("delivered_on") >= since) | held)


def prune_quarantine(
    conn: duckdb.DuckDBPyConnection, before: dt.date, blocking: pl.DataFrame
) -> tuple[int, dict[str, int]]:
    """Retention: delete the quarantined rows delivered before `before`, except those that still block
    publication on the day being run (`blocking`: the fail_safe check's unresolved rows; the rows
    `held_until_resolved` marks, within the extract in force for snapshot sources). Returns the
    rows deleted and, per source, the rows kept past the period for that reason (counts only)."""
    if not table_exists(conn, "quarantine"):
        return 0, {}
    conn.register("_blocking", blocking.select(RESOLUTION_KEY).unique())
    try:
        held = "(source, file, line) in (select source, file, line from _blocking)"
        kept = dict(
            conn.sql(
                f"select source, count(*) from quarantine where delivered_on < $b and {held} group by 1 order by 1",
                params={"b": before},
            ).fetchall()
        )
        removed = scalar(conn, f"select count(*) from quarantine where delivered_on < $b and not {held}", b=before)
        conn.execute(f"delete from quarantine where delivered_on < $b and not {held}", {"b": before})
    finally:
        conn.unregister("_blocking")
    return removed, kept
