"""Invoices leave the warehouse once the Accounting Act no longer requires them, and stay out.

The last day an invoice is kept is `RetentionPolicy.invoice_kept_until(issued_on)`, the same date
erasure and the access report state. Two tables hold invoices: `invoices` (with its ingest-layer
copy `billing_valid`) and `invoices_retained` (what erasures kept, restricted).

Billing is an upsert log and the landing zone is read-only: every run re-reads every billing
delivery ever made, so deleting an invoice from the warehouse alone would last only until the next
run. The `retention` asset therefore deletes the invoices past their last day and records the day
it enforced (`invoice_pruning_log`); ingestion then drops every version of those invoices before
anything is written (`keep_unpruned`, with assets/storage/pruning.py), on every later run and on a backfill
of an earlier day alike. Which version decides is the one the core table would hold: the latest
delivery wins.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from assets.storage.pruning import PruningLog, RetentionFilter
from assets.storage.zones import scalar, table_exists
from data_contracts.policy import RetentionPolicy
from models.retention import invoice_dates_past

PRUNING_LOG = PruningLog("invoice_pruning_log", "invoices_pruned")


def _expired_dates(
    conn: duckdb.DuckDBPyConnection, table: str, periods: RetentionPolicy, day: dt.date
) -> list[dt.date]:
    if not table_exists(conn, table):
        return []
    return invoice_dates_past(
        periods, [d for (d,) in conn.sql(f'select distinct issued_on from "{table}"').fetchall()], day
    )


def prune(conn: duckdb.DuckDBPyConnection, periods: RetentionPolicy, day: dt.date) -> int:
    """Delete the invoices past their last day on `day` from `invoices` and every version of them
    from `billing_valid`, and record `day` so that ingestion keeps them out from now on."""
    expired = _expired_dates(conn, "invoices", periods, day)
    removed = 0
    if expired:
        gone = "select invoice_id from invoices where list_contains($e, issued_on)"
        removed = scalar(conn, f"select count(*) from ({gone})", e=expired)
        if table_exists(conn, "billing_valid"):
            conn.execute(f"delete from billing_valid where invoice_id in ({gone})", {"e": expired})
        conn.execute("delete from invoices where list_contains($e, issued_on)", {"e": expired})
    PRUNING_LOG.record(conn, day, removed)
    return removed


def expire_retained(conn: duckdb.DuckDBPyConnection, periods: RetentionPolicy, day: dt.date) -> int:
    """Delete the invoices an erasure kept (restricted) whose last day to be kept is before `day`."""
    expired = _expired_dates(conn, "invoices_retained", periods, day)
    if not expired:
        return 0
    removed = scalar(conn, "select count(*) from invoices_retained where list_contains($e, issued_on)", e=expired)
    conn.execute("delete from invoices_retained where list_contains($e, issued_on)", {"e": expired})
    return removed


def keep_unpruned(conn: duckdb.DuckDBPyConnection, periods: RetentionPolicy) -> RetentionFilter | None:
    """Ingestion's filter for billing rows: drops every version of an invoice the `retention` asset
    has pruned (past its last day on the latest day retention was enforced)."""

    def past(billing: pl.DataFrame, enforced: dt.date) -> pl.Series:
        # the version core_tables.INVOICES_SQL keeps: the latest delivery, then the latest line
        latest = billing.sort("delivered_on", "line").unique("invoice_id", keep="last")
        expired = invoice_dates_past(periods, latest["issued_on"].unique().to_list(), enforced)
        gone = latest.filter(pl.col("issued_on").is_in(pl.Series(expired, dtype=pl.Date).implode()))["invoice_id"]
        return billing["invoice_id"].is_in(gone.implode())

    return PRUNING_LOG.keep_out(conn, past)
