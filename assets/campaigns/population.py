"""What a campaign plan reads: the published audiences (customers and, when published, prospects), recipient-neutrally.

A recipient must be in the day's audience of the channel chosen for them, so the plan reads the
audiences exactly as the mart published them: every channel rule, the fail safe and the evidence have
already been applied and checked there. Prospects come from the prospect mart tables
(`prospect_audience_<channel>`, `prospect_audience_exclusions`, keyed by `prospect_id`) when they are
published; without them `CampaignPopulation.prospects` is None and a brief reaching prospects is refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from assets.storage.mart import mart_path
from assets.storage.zones import LupaStorage, query, table_exists
from data_contracts.audiences import AUDIENCE_TABLES, PROSPECT_AUDIENCE_TABLES, PROSPECT_EXCLUSIONS_TABLE
from data_contracts.vocabulary import CHANNELS
from models.campaign_plan import CampaignPopulation, customer_profiles

_REACH = {"recipient_id": pl.String, "recipient_type": pl.String}
CUSTOMERS = {"customer_id": pl.String, "language": pl.String, "safety_ban": pl.Boolean}
CONTRACTS = {
    "customer_id": pl.String,
    "contract_type": pl.String,
    "product_code": pl.String,
    "site_type": pl.String,
    "start_date": pl.Date,
    "end_date": pl.Date,
}
INVOICES = {"customer_id": pl.String, "paid_on": pl.Date, "reminders": pl.Int64}
HISTORY = {
    "customer_id": pl.String,
    "channel": pl.String,
    "campaign_id": pl.String,
    "kind": pl.String,
    "sent_at": pl.Datetime("us", "UTC"),
}
_EXCLUSION = {"recipient_id": pl.String, "channel": pl.String, "reason": pl.String}


@dataclass(frozen=True)
class PublishedDay:
    """The day's population plus what the send lists need: the audience rows (contact data) per channel,
    the segment catalogue and who is under a safety ban."""

    population: CampaignPopulation
    contacts: dict[str, pl.DataFrame]
    catalogue: pl.DataFrame | None
    safety_ban_ids: frozenset[str]
    objectors: frozenset[str]


def _read_mart(path: Path) -> dict[str, pl.DataFrame]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        wanted = [
            *AUDIENCE_TABLES.values(),
            "audience_exclusions",
            "segment_catalogue",
            "customer_segments",
            *PROSPECT_AUDIENCE_TABLES.values(),
            PROSPECT_EXCLUSIONS_TABLE,
        ]
        return {name: query(conn, f'select * from "{name}"') for name in wanted if table_exists(conn, name)}
    finally:
        conn.close()


def _as_recipients(frame: pl.DataFrame, id_column: str, kind: str) -> pl.DataFrame:
    return frame.rename({id_column: "recipient_id"}).with_columns(pl.lit(kind).alias("recipient_type"))


def published_day(storage: LupaStorage, day: dt.date) -> PublishedDay:
    mart = _read_mart(mart_path(storage.root))
    prospects_published = any(t in mart for t in PROSPECT_AUDIENCE_TABLES.values())
    contacts: dict[str, pl.DataFrame] = {}
    for ch in CHANNELS:
        parts = (
            [_as_recipients(mart[AUDIENCE_TABLES[ch]], "customer_id", "customer")]
            if AUDIENCE_TABLES[ch] in mart
            else []
        )
        if PROSPECT_AUDIENCE_TABLES[ch] in mart:
            parts.append(_as_recipients(mart[PROSPECT_AUDIENCE_TABLES[ch]], "prospect_id", "prospect"))
        contacts[ch] = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame(schema=_REACH)
    reachable = {ch: contacts[ch].select(_REACH.keys()).cast(_REACH) for ch in CHANNELS}
    exclusion_parts = []
    if "audience_exclusions" in mart:
        exclusion_parts.append(
            mart["audience_exclusions"].select(pl.col("customer_id").alias("recipient_id"), "channel", "reason")
        )
    if PROSPECT_EXCLUSIONS_TABLE in mart:
        exclusion_parts.append(
            mart[PROSPECT_EXCLUSIONS_TABLE].select(pl.col("prospect_id").alias("recipient_id"), "channel", "reason")
        )
    exclusions = (
        pl.concat([p.cast(_EXCLUSION) for p in exclusion_parts]) if exclusion_parts else pl.DataFrame(schema=_EXCLUSION)
    )
    prospects = None
    if prospects_published:
        known = [contacts[ch].filter(pl.col("recipient_type") == "prospect").select("recipient_id") for ch in CHANNELS]
        if PROSPECT_EXCLUSIONS_TABLE in mart:
            known.append(mart[PROSPECT_EXCLUSIONS_TABLE].select(pl.col("prospect_id").alias("recipient_id")))
        prospects = (
            pl.concat([k.cast({"recipient_id": pl.String}) for k in known])
            .unique()
            .rename({"recipient_id": "prospect_id"})
        )
    with storage.warehouse() as conn:
        customers = query(conn, "select customer_id, language, safety_ban from customers")
        contracts = query(
            conn, "select customer_id, contract_type, product_code, site_type, start_date, end_date from contracts"
        )
        invoices = query(conn, "select customer_id, paid_on, reminders from invoices")
        objectors = query(
            conn,
            "select customer_id from consent_state where purpose = 'profiling' and state = 'withdrawn'",
        )["customer_id"].to_list()
    segments = mart.get("customer_segments", pl.DataFrame(schema={"customer_id": pl.String, "segment_id": pl.Int32}))
    profiles = customer_profiles(customers, contracts, invoices, segments, day)
    return PublishedDay(
        population=CampaignPopulation(reachable, exclusions, profiles, prospects),
        contacts=contacts,
        catalogue=mart.get("segment_catalogue"),
        safety_ban_ids=frozenset(customers.filter(pl.col("safety_ban"))["customer_id"].to_list()),
        objectors=frozenset(objectors),
    )


def contact_history(storage: LupaStorage) -> pl.DataFrame:
    with storage.warehouse() as conn:
        return _read(conn, "contact_history", "select * from contact_history", HISTORY)


def contracts(storage: LupaStorage) -> pl.DataFrame:
    with storage.warehouse() as conn:
        return _read(conn, "contracts", "select customer_id, product_code, start_date from contracts", CONTRACTS)


def _read(conn, table: str, sql: str, schema: dict) -> pl.DataFrame:
    """A core table, or an empty frame of its columns when the installation has never built it (a landing
    zone without that source): no campaign can then use it, and none is planned wrongly for it."""
    if not table_exists(conn, table):
        return pl.DataFrame(schema=schema)
    return query(conn, sql)
