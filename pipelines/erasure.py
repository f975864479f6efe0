"""`lupa erase --customer-id ID`: the right to erasure (GDPR Art. 17), honoured in every zone.

1. A suppression record (keyed pseudonyms of the customer id and identity code, the date, and the
   metering point periods that were the customer's) is written first, so ingestion can never
   bring the customer back, whatever is re-delivered or backfilled.
2. Every row of the customer is deleted from the warehouse, the analytics zone, the published mart
   and its exports, and audience history. Per-day metering aggregates are rewritten without the
   customer's point periods; raw readings are filtered out of every read and removed physically
   by the `retention` asset's compaction.
3. Invoices are kept under the Accounting Act, moved to the restricted `invoices_retained` table
   and out of every analytical and marketing use, until the policy's `retention.invoices` period
   has passed (`RetentionPolicy.invoice_kept_until`).

The audit log, which holds no personal data (pseudonyms, dates, counts), says how far an erasure
got: `suppressed` as soon as the suppression record is written, `warehouse_erased` when the
warehouse transaction commits, `completed` at the end. An erasure that fails half-way (say, while
republishing the mart) is therefore never lost: the access report recognises it as unfinished, and
`lupa erase` run again finishes it, because every step can be repeated. An access request from an
erased customer is answered from the log (`held_after_erasure`), by customer id or identity code.
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
from data_contracts.policy import load_policy

#: why invoices survive an erasure; how long is the policy's `retention.invoices` period
INVOICE_RETENTION_BASIS = "accounting records (Accounting Act 1336/1997, ch. 2 §10)"


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
    #: False while an interrupted erasure waits for `lupa erase` to finish it: other zones may still hold the customer
    complete: bool


def audit_log(storage: LupaStorage) -> Path:
    return storage.warehouse_dir / "audit" / "erasures.jsonl"


def _audit_entries(storage: LupaStorage) -> list[dict]:
    log = audit_log(storage)
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def _audit(storage: LupaStorage, step: str, subject: str, erased_on: dt.date, **facts) -> None:
    """Append one step of an erasure to the audit log: pseudonyms, dates and counts only."""
    log = audit_log(storage)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"step": step, "subject": subject, "erased_on": erased_on.isoformat(), **facts}, sort_keys=True) + "\n")
    os.chmod(log, 0o600)


def _erasure_of(storage: LupaStorage, subject: str) -> list[dict]:
    """The audit entries of the latest erasure of `subject`, from its `suppressed` entry on."""
    entries = [e for e in _audit_entries(storage) if e["subject"] == subject]
    starts = [i for i, e in enumerate(entries) if e["step"] == "suppressed"]
    return entries[starts[-1]:] if starts else []


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
    """Erase the customer, or finish an earlier erasure of them that was interrupted.

    Returns the erasure's account (as the audit log has it): pseudonym, date, rows removed per
    table, invoices kept, metering point periods suppressed. An interrupted erasure keeps the date
    it started on; the identity codes are gone from the warehouse by then, so their pseudonyms come
    from its `suppressed` entry.
    """
    subject = suppression.pseudonym(customer_id)
    entries = _erasure_of(storage, subject)
    unfinished = bool(entries) and entries[-1]["step"] != "completed"
    with storage.warehouse() as conn:
        known = [t for t in _tables_with(conn, "customer_id") if t != "invoices_retained" and conn.sql(f'select count(*) from "{t}" where customer_id = $c', params={"c": customer_id}).fetchall()[0][0]]
        if not known and not unfinished:
            raise UnknownCustomer(f"customer {customer_id} is not held in the warehouse; nothing to erase")
        personal_ids = sorted({
            pid for t in ("customers", "customers_valid") if table_exists(conn, t)
            for pid in query(conn, f'select personal_id from "{t}" where customer_id = $c and personal_id is not null', c=customer_id)["personal_id"].to_list()
        })
        if not unfinished:
            points = query(conn, "select metering_point_id, valid_from, valid_to from metering_point_attribution where customer_id = $c", c=customer_id) \
                if table_exists(conn, "metering_point_attribution") else pl.DataFrame(schema={"metering_point_id": pl.String, "valid_from": pl.Date, "valid_to": pl.Date})
            suppression.add(storage.warehouse_dir, [customer_id, *personal_ids], points.with_columns(pl.lit(today).alias("erased_on")), today)
            # links the subject to the pseudonyms of their identity codes, so an access request by
            # identity code still finds what was kept
            _audit(storage, "suppressed", subject, today, identity_code_pseudonyms=[suppression.pseudonym(p) for p in personal_ids],
                   metering_point_periods_suppressed=points.height)
            entries = _erasure_of(storage, subject)
        erased_on = dt.date.fromisoformat(entries[0]["erased_on"])
        if known:
            deleted, kept = _erase_from_warehouse(conn, storage, customer_id, personal_ids, erased_on)
            _audit(storage, "warehouse_erased", subject, erased_on, rows_removed=deleted, kept=kept)

    removed: dict[str, int] = {}
    if storage.analytics_path.exists():
        with connect(storage.analytics_path) as conn:
            for table in _tables_with(conn, "customer_id"):
                removed[f"analytics.{table}"] = _delete(conn, table, "customer_id", customer_id)
    # the erasure's point periods, from the suppression record: the warehouse no longer has them
    # when an interrupted erasure is finished (periods of others erased that day are already gone)
    points = suppression.load(storage.warehouse_dir).points.filter(pl.col("erased_on") == erased_on)
    removed["metering_daily_rows"] = _rewrite_daily(storage, points)
    removed |= _republish_mart(storage, customer_id, today)
    _audit(storage, "completed", subject, erased_on, rows_removed={k: v for k, v in sorted(removed.items()) if v})
    return _account(_erasure_of(storage, subject))


def _erase_from_warehouse(conn, storage: LupaStorage, customer_id: str, personal_ids: list[str], erased_on: dt.date) -> tuple[dict, dict]:
    """One transaction: keep the invoices restricted, delete everything else of the customer.

    Returns the rows removed per table and what was kept (count, legal basis, last day kept)."""
    removed: dict[str, int] = {}
    conn.execute("begin transaction")
    if table_exists(conn, "invoices"):
        conn.execute(
            "create table if not exists invoices_retained as select *, ''::varchar as retention_basis, null::date as restricted_on from invoices limit 0"
        )
        conn.execute("insert into invoices_retained select *, $basis, $on from invoices where customer_id = $c",
                     {"basis": INVOICE_RETENTION_BASIS, "on": erased_on, "c": customer_id})
    issued = query(conn, "select issued_on from invoices_retained where customer_id = $c", c=customer_id)["issued_on"].to_list() \
        if table_exists(conn, "invoices_retained") else []
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
    retention = load_policy().retention
    until = max((retention.invoice_kept_until(d) for d in issued), default=None)
    kept = {"invoices_retained": len(issued), "basis": INVOICE_RETENTION_BASIS, "last_kept_until": until.isoformat() if until else None}
    return {k: v for k, v in sorted(removed.items()) if v}, kept


def _account(entries: list[dict]) -> dict:
    """One erasure's audit entries summed up: what `lupa erase` reports."""
    removed: dict[str, int] = {}
    for e in entries:
        for table, n in e.get("rows_removed", {}).items():
            removed[table] = removed.get(table, 0) + n
    return {
        "subject": entries[0]["subject"],
        "erased_on": entries[0]["erased_on"],
        "rows_removed": dict(sorted(removed.items())),
        "kept": next((e["kept"] for e in entries if e["step"] == "warehouse_erased"), None),
        "metering_point_periods_suppressed": entries[0]["metering_point_periods_suppressed"],
    }


def held_after_erasure(storage: LupaStorage, *, customer_id: str | None = None, personal_id: str | None = None) -> HeldAfterErasure | None:
    """The erasure of this customer (asked for by customer id or by identity code) and what it kept;
    None when the audit log has no erasure of them. An erasure that was interrupted is returned too,
    marked incomplete."""
    wanted = suppression.pseudonym(customer_id if customer_id is not None else personal_id)
    started = next((e for e in reversed(_audit_entries(storage)) if e["step"] == "suppressed"
                    and (wanted == e["subject"] or wanted in e["identity_code_pseudonyms"])), None)
    if started is None:
        return None
    entries = _erasure_of(storage, started["subject"])
    invoices: list[dict] = []
    with storage.warehouse(read_only=True) as conn:
        if table_exists(conn, "invoices_retained"):
            if customer_id is None:
                kept_ids = [c for (c,) in conn.sql("select distinct customer_id from invoices_retained").fetchall()]
                customer_id = next((c for c in kept_ids if suppression.pseudonym(c) == started["subject"]), None)
            if customer_id is not None:
                invoices = query(conn, "select * from invoices_retained where customer_id = $c order by issued_on, invoice_id", c=customer_id).to_dicts()
    return HeldAfterErasure(
        erased_on=dt.date.fromisoformat(started["erased_on"]),
        customer_id=customer_id,
        invoices=invoices,
        pseudonyms=1 + len(started["identity_code_pseudonyms"]),
        metering_point_periods=started["metering_point_periods_suppressed"],
        complete=entries[-1]["step"] == "completed",
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
