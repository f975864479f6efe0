"""Erasing prospects: a data subject's request (`lupa erase --prospect-id`), the end of
`retention.prospects`, or a prospect who became a customer (docs/privacy.md, "Prospects").

Order, as for customers: the suppression record first (so that ingestion keeps the prospect out
of every later read, whatever happens next), then every warehouse table, the quarantine, the
prospect's contacts, and the published mart. The audit log holds pseudonyms, dates and counts only.
A customer's rows are never touched: a prospect who became a customer keeps the customer record.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import polars as pl

from assets.storage import prospect_suppression
from assets.storage.mart import NewerMartPublished, mart_path, publish, published_as_of
from assets.storage.suppression import pseudonym
from assets.storage.zones import LupaStorage, connect, query, table_exists
from data_contracts.audiences import PROSPECT_AUDIENCE_TABLES, PROSPECT_EXCLUSIONS_TABLE

#: warehouse tables keyed by prospect_id
PROSPECT_TABLES = (
    "prospects_valid",
    "prospects",
    *PROSPECT_AUDIENCE_TABLES.values(),
    PROSPECT_EXCLUSIONS_TABLE,
    "prospect_conversions",
)
#: warehouse tables holding a prospect's contacts (the prospect id as recipient)
CONTACT_TABLES = ("contacts_valid", "contact_history")


def audit_log(storage: LupaStorage):
    return storage.warehouse_dir / "audit" / "prospect_erasures.jsonl"


def _audit(storage: LupaStorage, entry: dict) -> None:
    log = audit_log(storage)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
    os.chmod(log, 0o600)


def erased_prospects(storage: LupaStorage) -> list[dict]:
    """The audit entries (pseudonyms, dates, reasons, counts)."""
    log = audit_log(storage)
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def _identifiers(conn, ids: list[str]) -> list[str]:
    """Every identifier any delivered row of these prospects carried (all versions)."""
    if not table_exists(conn, "prospects_valid"):
        return list(ids)
    rows = query(
        conn,
        "select prospect_id, personal_id, email from prospects_valid where list_contains($ids, prospect_id)",
        ids=ids,
    )
    found = {i for row in rows.iter_rows(named=True) for i in prospect_suppression.identifiers_of(row)}
    return sorted(found | set(ids))


def erase_prospects(
    storage: LupaStorage, due: pl.DataFrame, erased_on: dt.date, *, republish: bool = True
) -> dict[str, int]:
    """Erase every prospect in `due` (prospect_id, reason). Returns counts only."""
    if due.is_empty():
        return {}
    ids = due["prospect_id"].to_list()
    with storage.warehouse() as conn:
        identifiers = {
            r: _identifiers(conn, due.filter(pl.col("reason") == r)["prospect_id"].to_list())
            for r in set(due["reason"])
        }
    for reason, values in identifiers.items():
        prospect_suppression.add(storage.warehouse_dir, values, erased_on, reason)
    records = prospect_suppression.load(storage.warehouse_dir)
    removed: dict[str, int] = {}
    with storage.warehouse() as conn:
        conn.execute("begin transaction")
        try:
            for table in PROSPECT_TABLES:
                if table_exists(conn, table):
                    n = conn.execute(
                        f'delete from "{table}" where list_contains($ids, prospect_id)', {"ids": ids}
                    ).fetchall()[0][0]
                    removed[table] = removed.get(table, 0) + n
            for table in CONTACT_TABLES:
                if table_exists(conn, table):
                    n = conn.execute(
                        f'delete from "{table}" where list_contains($ids, customer_id)', {"ids": ids}
                    ).fetchall()[0][0]
                    removed[table] = n
            if table_exists(conn, "quarantine"):
                removed["quarantine"] = _delete_quarantined(conn, records)
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
    if republish:
        removed["mart rows"] = _republish_mart(storage, ids, erased_on)
    for reason in sorted(identifiers):
        _audit(
            storage,
            {
                "erased_on": erased_on.isoformat(),
                "reason": reason,
                "prospects": int((due["reason"] == reason).sum()),
                "subjects": sorted(pseudonym(i) for i in due.filter(pl.col("reason") == reason)["prospect_id"]),
                "suppressed_pseudonyms": len(identifiers[reason]),
                "removed": removed,
            },
        )
    return removed


def _delete_quarantined(conn, records: pl.DataFrame) -> int:
    rows = query(conn, "select source, file, line, raw from quarantine where source in ('prospects', 'contacts')")
    gone = []
    for source in ("prospects", "contacts"):
        part = rows.filter(pl.col("source") == source)
        kept = prospect_suppression.keep_raw(part, records, source)
        gone.append(part.join(kept.select("file", "line"), on=["file", "line"], how="anti"))
    frame = pl.concat(gone).select("source", "file", "line")
    if frame.is_empty():
        return 0
    conn.register("_gone", frame)
    try:
        conn.execute(
            "delete from quarantine q using _gone g where q.source = g.source and q.file = g.file and q.line = g.line"
        )
    finally:
        conn.unregister("_gone")
    return frame.height


def _republish_mart(storage: LupaStorage, ids: list[str], today: dt.date) -> int:
    """The published mart again without these prospects (no older exports kept); rows removed."""
    path = mart_path(storage.root)
    gone = pl.col("prospect_id").is_in(pl.Series(ids, dtype=pl.String).implode())
    for attempt in range(3):
        if not path.exists():
            return 0
        as_of = published_as_of(storage.root)
        with connect(path, read_only=True) as conn:
            tables = {
                name: query(conn, f'select * from "{name}"')
                for (name,) in conn.sql("select table_name from duckdb_tables()").fetchall()
            }
        hit = {n: t.filter(gone).height for n, t in tables.items() if "prospect_id" in t.columns}
        if not sum(hit.values()):
            return 0
        try:
            publish(
                storage.root,
                {n: t.filter(~gone) if "prospect_id" in t.columns else t for n, t in tables.items()},
                tag=f"prospect-erasure-{today.isoformat()}-{pseudonym(','.join(ids))[:8]}",
                keep_previous_exports=False,
                as_of=as_of,
            )
            return sum(hit.values())
        except NewerMartPublished:
            if attempt == 2:
                raise
    return 0


def latest_updates(conn) -> pl.DataFrame:
    """prospect_id → the latest updated_on of any delivered row (the retention clock)."""
    if not table_exists(conn, "prospects_valid"):
        return pl.DataFrame(schema={"prospect_id": pl.String, "updated_on": pl.Date})
    return query(conn, "select prospect_id, max(updated_on) as updated_on from prospects_valid group by 1")


def conversions(conn) -> pl.DataFrame:
    if not table_exists(conn, "prospect_conversions"):
        return pl.DataFrame(schema={"prospect_id": pl.String, "first_matched_on": pl.Date})
    return query(conn, "select prospect_id, first_matched_on from prospect_conversions")
