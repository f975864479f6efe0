"""`lupa erase --customer-id ID`: the right to erasure (GDPR Art. 17), honoured in every zone.

1. A suppression record (keyed pseudonyms of the customer id and identity code, the date, and the
   metering point periods that were the customer's) is written first, so ingestion can never
   bring the customer back, whatever is re-delivered or backfilled.
2. Every row of the customer is deleted from the warehouse, the analytics zone, the published mart
   and its exports, and audience history. Per-day metering aggregates are rewritten without the
   customer's point periods; raw readings are filtered out of every read and removed physically
   by the `retention` asset's compaction.
3. Invoices are kept under the Accounting Act, moved to the restricted `invoices_retained` table
   and out of every analytical and marketing use.
4. An audit record without personal data (pseudonyms, date, counts) is appended. It is the
   erasure's own account: an access request from an erased customer is answered from it
   (`held_after_erasure`), by customer id or by identity code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assets import suppression
from assets.mart import mart_path, publish
from assets.metering import daily_root
from assets.storage import LupaStorage, connect, query, table_exists

#: why invoices survive an erasure, and for how long (Kirjanpitolaki 1336/1997, 2 luku 10 §)
INVOICE_RETENTION = "accounting records: kept 6 years after the end of the financial year (Accounting Act 1336/1997, ch. 2 §10)"


class UnknownCustomer(Exception):
    pass


@dataclass(frozen=True)
class HeldAfterErasure:
    """What is still held about an erased customer, and why: the honest answer to their access request."""

    erased_on: dt.date
    #: None when asked by identity code and no retained invoice still carries the customer id
    customer_id: str | None
    #: restricted under the Accounting Act, in `invoices_retained`
    invoices: list[dict]
    #: keyed pseudonyms of the customer id and identity code(s) in the suppression record
    pseudonyms: int
    metering_point_periods: int


def audit_log(storage: LupaStorage) -> Path:
    return storage.warehouse_dir / "audit" / "erasures.jsonl"


def _tables_with(conn, column: str) -> list[str]:
    rows = conn.sql(
        "select table_name from duckdb_columns() where column_name = $c and not starts_with(table_name, '_') order by 1", params={"c": column}
    ).fetchall()
    return [r[0] for r in rows]


def _delete(conn, table: str, column: str, value: str) -> int:
    n = conn.sql(f'select count(*) from "{table}" where "{column}" = $v', params={"v": value}).fetchall()[0][0]
    if n:
        conn.execute(f'delete from "{table}" where "{column}" = $v', {"v": value})
    return n


def erase(storage: LupaStorage, customer_id: str, today: dt.date) -> dict:
    removed: dict[str, int] = {}
    with storage.warehouse() as conn:
        known = [t for t in _tables_with(conn, "customer_id") if t != "invoices_retained" and conn.sql(f'select count(*) from "{t}" where customer_id = $c', params={"c": customer_id}).fetchall()[0][0]]
        if not known:
            raise UnknownCustomer(f"customer {customer_id} is not held in the warehouse; nothing to erase")
        personal_ids = sorted({
            pid for t in ("customers", "customers_valid") if table_exists(conn, t)
            for pid in query(conn, f'select personal_id from "{t}" where customer_id = $c and personal_id is not null', c=customer_id)["personal_id"].to_list()
        })
        points = query(conn, "select metering_point_id, valid_from, valid_to from metering_point_attribution where customer_id = $c", c=customer_id) \
            if table_exists(conn, "metering_point_attribution") else pl.DataFrame(schema={"metering_point_id": pl.String, "valid_from": pl.Date, "valid_to": pl.Date})
        suppression.add(storage.warehouse_dir, [customer_id, *personal_ids], points.with_columns(pl.lit(today).alias("erased_on")), today)

        conn.execute("begin transaction")
        if table_exists(conn, "invoices"):
            conn.execute(
                "create table if not exists invoices_retained as select *, ''::varchar as retention_basis, null::date as restricted_on from invoices limit 0"
            )
            conn.execute("insert into invoices_retained select *, $basis, $today from invoices where customer_id = $c",
                         {"basis": INVOICE_RETENTION, "today": today, "c": customer_id})
        kept = conn.sql("select count(*) from invoices_retained where customer_id = $c", params={"c": customer_id}).fetchall()[0][0] \
            if table_exists(conn, "invoices_retained") else 0
        for table in _tables_with(conn, "customer_id"):
            if table != "invoices_retained":
                removed[table] = _delete(conn, table, "customer_id", customer_id)
        for pid in personal_ids:
            for table in _tables_with(conn, "personal_id"):
                removed[table] = removed.get(table, 0) + _delete(conn, table, "personal_id", pid)
        if table_exists(conn, "quarantine"):
            erased = suppression.load(storage.warehouse_dir)
            quarantine = query(conn, "select rowid as id, raw from quarantine")
            hits = quarantine.join(erased.keep_raw(quarantine).select("id"), on="id", how="anti")["id"].to_list()
            if hits:
                conn.execute("delete from quarantine where list_contains($ids, rowid)", {"ids": hits})
            removed["quarantine"] = len(hits)
        conn.execute("commit")

    if storage.analytics_path.exists():
        with connect(storage.analytics_path) as conn:
            for table in _tables_with(conn, "customer_id"):
                removed[f"analytics.{table}"] = _delete(conn, table, "customer_id", customer_id)

    removed["metering_daily_rows"] = _rewrite_daily(storage, points)
    removed |= _republish_mart(storage, customer_id, today)
    record = {
        "subject": suppression.pseudonym(customer_id),
        # links the subject to the pseudonyms of their identity codes, so an access request by
        # identity code still finds what was kept
        "identity_code_pseudonyms": [suppression.pseudonym(pid) for pid in personal_ids],
        "erased_on": today.isoformat(),
        "rows_removed": {k: v for k, v in sorted(removed.items()) if v},
        "kept": {"invoices_retained": kept, "basis": INVOICE_RETENTION},
        "metering_point_periods_suppressed": points.height,
    }
    log = audit_log(storage)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
    os.chmod(log, 0o600)
    return record


def held_after_erasure(storage: LupaStorage, *, customer_id: str | None = None, personal_id: str | None = None) -> HeldAfterErasure | None:
    """The erasure of this customer (asked for by customer id or by identity code) and what it kept;
    None when the audit log has no erasure of them."""
    log = audit_log(storage)
    if not log.exists():
        return None
    wanted = suppression.pseudonym(customer_id if customer_id is not None else personal_id)
    records = (json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip())
    record = next((r for r in records if wanted == r["subject"] or wanted in r["identity_code_pseudonyms"]), None)
    if record is None:
        return None
    invoices: list[dict] = []
    with storage.warehouse(read_only=True) as conn:
        if table_exists(conn, "invoices_retained"):
            if customer_id is None:
                kept_ids = [c for (c,) in conn.sql("select distinct customer_id from invoices_retained").fetchall()]
                customer_id = next((c for c in kept_ids if suppression.pseudonym(c) == record["subject"]), None)
            if customer_id is not None:
                invoices = query(conn, "select * from invoices_retained where customer_id = $c order by issued_on, invoice_id", c=customer_id).to_dicts()
    return HeldAfterErasure(
        erased_on=dt.date.fromisoformat(record["erased_on"]),
        customer_id=customer_id,
        invoices=invoices,
        pseudonyms=1 + len(record["identity_code_pseudonyms"]),
        metering_point_periods=record["metering_point_periods_suppressed"],
    )


def _rewrite_daily(storage: LupaStorage, points: pl.DataFrame) -> int:
    """Drop the erased customer's point periods from the per-day aggregates now (they are small)."""
    if points.is_empty():
        return 0
    erased = suppression.Suppressions(frozenset(), points)
    removed = 0
    for path in sorted(daily_root(storage).glob("business_day=*/part.parquet")):
        day = dt.date.fromisoformat(path.parent.name.split("=")[1])
        if not ((points["valid_from"] <= day) & (points["valid_to"].is_null() | (points["valid_to"] >= day))).any():
            continue
        frame = pl.read_parquet(path)
        kept = erased.keep_readings(frame)
        if kept.height != frame.height:
            removed += frame.height - kept.height
            tmp = path.with_suffix(".tmp")
            kept.write_parquet(tmp)
            tmp.replace(path)
    return removed


def _republish_mart(storage: LupaStorage, customer_id: str, today: dt.date) -> dict[str, int]:
    """Publish the current mart again without the customer; no older exports are kept."""
    path = mart_path(storage.root)
    if not path.exists():
        return {}
    with connect(path, read_only=True) as conn:
        tables = {name: query(conn, f'select * from "{name}"') for (name,) in conn.sql("select table_name from duckdb_tables()").fetchall()}
    removed = {f"mart.{n}": int((t["customer_id"] == customer_id).sum()) for n, t in tables.items() if "customer_id" in t.columns}
    publish(storage.root, {n: t.filter(pl.col("customer_id") != customer_id) if "customer_id" in t.columns else t for n, t in tables.items()},
            tag=f"erasure-{today.isoformat()}-{suppression.pseudonym(customer_id)[:8]}", keep_previous_exports=False)
    return removed
