"""Contacts leave the warehouse once past `retention.contact_history`, and stay out.

A contact counts on the Helsinki date it was sent: on run day D it is kept while that date is on or
after `contact_history.cutoff(D)`. Two tables hold contacts: `contact_history` and its ingest-layer
copy `contacts_valid`, which ingestion rebuilds from every contact delivery on every run. The
`retention` asset deletes the contacts past the period from both and records D in
`contact_pruning_log`; ingestion then keeps them out (assets/storage/pruning.py).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from assets.storage.pruning import PruningLog, RetentionFilter
from assets.storage.zones import scalar, table_exists
from data_contracts.policy import RetentionPolicy
from data_contracts.vocabulary import TIME_ZONE_NAME

PRUNING_LOG = PruningLog("contact_pruning_log", "contacts_pruned")
TABLES = ("contact_history", "contacts_valid")
#: the Helsinki date a contact was sent, in DuckDB and in polars (sent_at is a UTC timestamp)
SENT_ON_SQL = f"timezone('{TIME_ZONE_NAME}', sent_at)::date"


def sent_on(frame: pl.DataFrame) -> pl.Series:
    return frame["sent_at"].dt.convert_time_zone(TIME_ZONE_NAME).dt.date()


def prune(conn: duckdb.DuckDBPyConnection, periods: RetentionPolicy, day: dt.date) -> dict[str, int]:
    """Delete the contacts sent before the cutoff of `day` from both tables and record `day`, so
    that ingestion keeps them out from now on. Rows removed per table."""
    before = periods.contact_history.cutoff(day)
    removed = {}
    for table in TABLES:
        if table_exists(conn, table):
            removed[table] = scalar(conn, f'select count(*) from "{table}" where {SENT_ON_SQL} < $b', b=before)
            conn.execute(f'delete from "{table}" where {SENT_ON_SQL} < $b', {"b": before})
    PRUNING_LOG.record(conn, day, removed.get("contact_history", 0))
    return removed


def keep_unpruned(conn: duckdb.DuckDBPyConnection, periods: RetentionPolicy) -> RetentionFilter | None:
    """Ingestion's filter for contact rows: drops the contacts sent before the cutoff of the latest
    day retention was enforced."""
    return PRUNING_LOG.keep_out(
        conn, lambda contacts, enforced: sent_on(contacts) < periods.contact_history.cutoff(enforced)
    )
