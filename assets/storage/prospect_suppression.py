"""Erased prospects stay erased, and a new lead from the same person is lawful again.

An erased prospect (a data subject's request, the end of `retention.prospects`, or a prospect who
became a customer) leaves only keyed pseudonyms (the same HMAC key as customers' suppression
records) of the prospect id, the identity code and the email address, each with the erasure date.
The records are the prospects' own file (`suppressions/prospects.parquet`): they are applied to the
`prospects` source and to contacts with a prospect as recipient, never to a customer's rows, so a
prospect who became a customer keeps the customer record.

How a re-delivered list is told apart from a new lead (docs/privacy.md, "Prospects"): a prospect
row that matches a record (by any of the three pseudonyms) is dropped when it was collected on or
before the erasure date, whatever its prospect_id: a list delivered again, or the same old lead
under a new id. A row collected after the erasure is a new collection of the person's data (a new
competition entry, a new offer request, with its own consent and evidence) and is kept. A contact
with an erased prospect is dropped when it was sent on or before the erasure date.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl

from assets.storage.suppression import pseudonym, suppression_dir
from data_contracts.identifiers import email_normalised, map_distinct, personal_id_canonical
from data_contracts.vocabulary import HELSINKI

SCHEMA = {"pseudonym": pl.String, "erased_on": pl.Date, "reason": pl.String}
FILE = "prospects.parquet"
#: the prospect row's identifiers a record may name
IDENTIFIERS = ("prospect_id", "personal_id", "email")
#: field positions in a delivered prospects record (the contract's header order)
COLLECTED_ON_FIELD = 2


def _path(warehouse_dir: Path) -> Path:
    return suppression_dir(warehouse_dir) / FILE


def load(warehouse_dir: Path) -> pl.DataFrame:
    """pseudonym → the latest erasure date recorded for it."""
    path = _path(warehouse_dir)
    if not path.exists():
        return pl.DataFrame(schema=SCHEMA)
    return pl.read_parquet(path)


def identifiers_of(row: dict) -> list[str]:
    """The identifiers a suppression record keeps for one prospect row (canonical spellings)."""
    out = [row.get("prospect_id")]
    if row.get("personal_id"):
        out.append(personal_id_canonical(row["personal_id"]))
    if row.get("email"):
        out.append(email_normalised(row["email"]) or row["email"])
    return [v for v in out if v]


def add(warehouse_dir: Path, identifiers: list[str], erased_on: dt.date, reason: str) -> None:
    """Append records (atomic replace). A pseudonym erased again keeps its latest date."""
    folder = suppression_dir(warehouse_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    new = pl.DataFrame(
        {
            "pseudonym": [pseudonym(i) for i in identifiers],
            "erased_on": [erased_on] * len(identifiers),
            "reason": [reason] * len(identifiers),
        },
        schema=SCHEMA,
    )
    frame = (
        pl.concat([load(warehouse_dir), new])
        .sort("pseudonym", "erased_on")
        .unique("pseudonym", keep="last", maintain_order=True)
    )
    tmp = folder / f".{FILE}.tmp"
    frame.write_parquet(tmp)
    os.chmod(tmp, 0o600)
    tmp.replace(_path(warehouse_dir))


def _erased_on(records: pl.DataFrame, column: pl.Expr) -> pl.Expr:
    lookup = dict(records.select("pseudonym", "erased_on").iter_rows())
    return map_distinct(column.cast(pl.String), lambda v: lookup.get(pseudonym(v)), pl.Date())


def keep_prospects(valid: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Valid prospect rows without those of erased prospects collected on or before their erasure."""
    if records.is_empty() or valid.is_empty():
        return valid
    latest = pl.max_horizontal([_erased_on(records, pl.col(c)) for c in IDENTIFIERS if c in valid.columns])
    return valid.filter(~(latest.is_not_null() & (pl.col("collected_on") <= latest)).fill_null(False))


def keep_contacts(valid: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Contacts without those sent to an erased prospect on or before the erasure (Helsinki date)."""
    if records.is_empty() or valid.is_empty():
        return valid
    erased = _erased_on(records, pl.col("customer_id"))
    sent = pl.col("sent_at").dt.convert_time_zone(HELSINKI.key).dt.date()
    prospect = pl.col("customer_id").str.starts_with("P")
    return valid.filter(~(prospect & erased.is_not_null() & (sent <= erased)).fill_null(False))


def keep_raw(quarantine: pl.DataFrame, records: pl.DataFrame, source: str) -> pl.DataFrame:
    """Quarantined prospect (or contact) records naming an erased prospect: dropped unless they
    legibly were collected after the erasure (an unreadable date is treated as before it)."""
    if records.is_empty() or quarantine.is_empty():
        return quarantine
    lookup = dict(records.select("pseudonym", "erased_on").iter_rows())

    def erased(raw: str) -> bool:
        fields = [f.strip().strip('"') for f in raw.split(";")]
        dates = [
            lookup[p]
            for f in fields
            if f
            for p in {pseudonym(f), pseudonym(personal_id_canonical(f)), pseudonym(email_normalised(f) or f)}
            if p in lookup
        ]
        if not dates:
            return False
        if source != "prospects":
            return True
        try:
            collected = dt.date.fromisoformat(fields[COLLECTED_ON_FIELD])
        except (IndexError, ValueError):
            return True
        return collected <= max(dates)

    hit = quarantine["raw"].map_elements(erased, return_dtype=pl.Boolean)
    return quarantine.filter(~hit)


def drop_erased_prospects(
    tables: dict[str, pl.DataFrame], records: pl.DataFrame
) -> tuple[dict[str, pl.DataFrame], int]:
    """Tables about to be published, without the prospects erased on or after the day they were
    built for (`as_of`): a publisher that read the warehouse before an erasure must not publish the
    erased prospect again. A prospect id erased before `as_of` is a new lead collected since (ingestion
    kept only rows collected after the erasure) and stays. Returns the tables and how many prospects
    were dropped (a count, never who)."""
    if records.is_empty():
        return dict(tables), 0
    lookup = dict(records.select("pseudonym", "erased_on").iter_rows())
    ids = {
        p
        for frame in tables.values()
        if "prospect_id" in frame.columns
        for p in frame["prospect_id"].drop_nulls().unique().to_list()
    }
    erased_on = {p: lookup[pseudonym(p)] for p in ids if pseudonym(p) in lookup}
    if not erased_on:
        return dict(tables), 0
    gone = pl.DataFrame({"prospect_id": list(erased_on), "_erased_on": list(erased_on.values())})
    out, dropped = {}, set()
    for name, frame in tables.items():
        if "prospect_id" not in frame.columns or "as_of" not in frame.columns:
            out[name] = frame
            continue
        marked = frame.join(gone, on="prospect_id", how="left")
        hit = (pl.col("_erased_on").is_not_null() & (pl.col("_erased_on") >= pl.col("as_of"))).fill_null(False)
        dropped |= set(marked.filter(hit)["prospect_id"].to_list())
        out[name] = marked.filter(~hit).drop("_erased_on")
    return out, len(dropped)
