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
warehouse transaction commits, `completed` at the end, and why: a data subject's request
(`lupa erase`) or the end of the customer data's retention period (the `retention` asset). An
erasure that fails half-way (say, while republishing the mart) is therefore never lost: the access
report recognises it as unfinished, and `lupa erase` run again finishes it, because every step can
be repeated. An access request from an erased customer is answered from the log
(`held_after_erasure`), by customer id or identity code.

The `retention` asset erases many former customers a day, so `erase_customers` takes them
together: one suppression write, one warehouse transaction, one pass over the aggregates and one
republication of the mart, with each customer's own audit entries and counts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assets.campaigns.exports import drop_from_send_lists
from assets.privacy.report_files import delete_stored_reports
from assets.storage import lake, suppression
from assets.storage.mart import NewerMartPublished, mart_path, publish, published_as_of
from assets.storage.metering import daily_aggregate_files, quarantine_root
from assets.storage.metering_parts import listed
from assets.storage.zones import LupaStorage, connect, query, table_exists
from data_contracts.policy import RetentionPolicy

#: why invoices survive an erasure; how long is the policy's `retention.invoices` period
INVOICE_RETENTION_BASIS = "accounting records (Accounting Act 1336/1997, ch. 2 §10)"

#: why a customer was erased, recorded in every audit entry: their own request (GDPR Art. 17) ...
REQUEST = "data_subject_request"
#: ... or the end of the policy's `retention.customer_data` period after the relationship ended
RETENTION = "retention"


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
        fh.write(
            json.dumps({"step": step, "subject": subject, "erased_on": erased_on.isoformat(), **facts}, sort_keys=True)
            + "\n"
        )
    os.chmod(log, 0o600)


def _erasures(entries: list[dict]) -> dict[str, list[dict]]:
    """Per subject, the audit entries of their latest erasure, from its `suppressed` entry on."""
    latest: dict[str, list[dict]] = {}
    for e in entries:
        if e["step"] == "suppressed":
            latest[e["subject"]] = [e]
        elif e["subject"] in latest:
            latest[e["subject"]].append(e)
    return latest


def _tables_with(conn, column: str) -> list[str]:
    rows = conn.sql(
        "select table_name from duckdb_columns() "
        "where column_name = $c and not starts_with(table_name, '_') order by 1",
        params={"c": column},
    ).fetchall()
    return [r[0] for r in rows]


def _delete_rows(conn, table: str, column: str, owners: dict[str, str]) -> dict[str, int]:
    """Delete the rows whose `column` holds one of `owners`' keys; count them per customer (the values)."""
    conn.register(
        "_owners",
        pl.DataFrame(
            {"value": list(owners), "owner": list(owners.values())}, schema={"value": pl.String, "owner": pl.String}
        ),
    )
    try:
        counts = dict(
            conn.sql(
                f'select o.owner, count(*) from "{table}" t join _owners o on t."{column}" = o.value group by 1'
            ).fetchall()
        )
        if counts:
            conn.execute(f'delete from "{table}" where "{column}" in (select value from _owners)')
    finally:
        conn.unregister("_owners")
    return counts


def _customers_held(conn, customer_ids: list[str]) -> set[str]:
    """The customers some warehouse table still holds (the restricted invoices do not count)."""
    return {
        c
        for t in _tables_with(conn, "customer_id")
        if t != "invoices_retained"
        for (c,) in conn.sql(
            f'select distinct customer_id from "{t}" where list_contains($c, customer_id)', params={"c": customer_ids}
        ).fetchall()
    }


def _personal_ids(conn, customer_ids: list[str]) -> dict[str, list[str]]:
    """The customers' identity codes, without those a customer the erasure keeps also holds.

    A person who came back under a new customer id before the old relationship was erased (retention
    erases a former customer years after it ended) is a customer again: the code, and the register
    rows keyed by it, belong to the relationship that goes on, so they are neither deleted nor
    suppressed. Everything of the erased customer id still is (docs/privacy.md, "A returning customer")."""
    found: dict[str, set[str]] = {c: set() for c in customer_ids}
    # customer_listings: a customer the latest snapshot no longer lists is in neither of the others
    tables = [t for t in ("customers", "customers_valid", "customer_listings") if table_exists(conn, t)]
    if not tables:
        return {c: [] for c in customer_ids}
    held = " union all ".join(
        f'select customer_id, personal_id from "{t}" where personal_id is not null' for t in tables
    )
    sql = (
        f"with held as ({held}) select distinct e.customer_id, e.personal_id from held e "
        "where list_contains($c, e.customer_id) and not exists "
        "(select 1 from held k where k.personal_id = e.personal_id and not list_contains($c, k.customer_id))"
    )
    for c, pid in conn.sql(sql, params={"c": customer_ids}).fetchall():
        found[c].add(pid)
    return {c: sorted(p) for c, p in found.items()}


POINT_PERIODS = {"customer_id": pl.String, "metering_point_id": pl.String, "valid_from": pl.Date, "valid_to": pl.Date}


def _point_periods(conn, customer_ids: list[str]) -> pl.DataFrame:
    """The metering point periods whose readings were the customers' (`metering_point_attribution`)."""
    if not table_exists(conn, "metering_point_attribution"):
        return pl.DataFrame(schema=POINT_PERIODS)
    return query(
        conn,
        "select customer_id, metering_point_id, valid_from, valid_to from metering_point_attribution "
        "where list_contains($c, customer_id)",
        c=customer_ids,
    )


def erase(storage: LupaStorage, customer_id: str, today: dt.date, retention: RetentionPolicy) -> dict:
    """Erase the customer at their request (`lupa erase`), or finish an earlier erasure of them that
    was interrupted. Returns the erasure's account, as `erase_customers` does."""
    return erase_customers(storage, [customer_id], today, REQUEST, retention)[customer_id]


def erase_customers(
    storage: LupaStorage, customer_ids: list[str], today: dt.date, reason: str, retention: RetentionPolicy
) -> dict[str, dict]:
    """Erase the customers, or finish earlier erasures of them that were interrupted.

    Returns, per customer, the erasure's account (as the audit log has it): pseudonym, date, reason,
    rows removed per table, invoices kept, metering point periods suppressed. An interrupted erasure
    keeps the date and reason it started with; the identity codes are gone from the warehouse by
    then, so their pseudonyms come from its `suppressed` entry.

    An erasure for `RETENTION` suppresses no metering point periods. The readings are kept for their
    own period (`retention.metering_readings`, stated separately in the access report) and whole
    days of them expire together; rewriting years of reading files for every former customer each
    day would cost far more than the partitions themselves. Once the customer's contracts are
    erased, nothing attributes those readings to anyone.
    """
    customer_ids = list(dict.fromkeys(customer_ids))
    if not customer_ids:
        return {}
    subjects = {c: suppression.pseudonym(c) for c in customer_ids}
    earlier = _erasures(_audit_entries(storage))
    unfinished = {c for c in customer_ids if subjects[c] in earlier and earlier[subjects[c]][-1]["step"] != "completed"}
    with storage.warehouse() as conn:
        held = _customers_held(conn, customer_ids)
        unknown = [c for c in customer_ids if c not in held and c not in unfinished]
        if unknown:
            raise UnknownCustomer(f"customer {unknown[0]} is not held in the warehouse; nothing to erase")
        personal_ids = _personal_ids(conn, customer_ids)
        new = [c for c in customer_ids if c not in unfinished]
        if new:
            _suppress(storage, conn, new, personal_ids, subjects, reason, today)
        latest = _erasures(_audit_entries(storage))
        started = {c: latest[subjects[c]][0] for c in customer_ids}
        erased_on = {c: dt.date.fromisoformat(started[c]["erased_on"]) for c in customer_ids}
        why = {
            c: started[c].get("reason", REQUEST) for c in customer_ids
        }  # entries written before reasons were recorded were requests
        if held:
            pseudonyms = {p: c for c in held for p in (subjects[c], *started[c]["identity_code_pseudonyms"])}
            codes = {pid: c for c in held for pid in personal_ids[c]}
            in_warehouse, kept = _erase_from_warehouse(
                conn, [c for c in customer_ids if c in held], codes, pseudonyms, erased_on, retention
            )
            for c in customer_ids:
                if c in held:
                    _audit(
                        storage,
                        "warehouse_erased",
                        subjects[c],
                        erased_on[c],
                        reason=why[c],
                        rows_removed=in_warehouse[c],
                        kept=kept[c],
                    )

    removed = _erase_from_analytics(storage, customer_ids)
    # the erasures' point periods, from the suppression record: the warehouse no longer has them
    # when an interrupted erasure is finished (periods of others erased those days are already gone)
    with_points = [erased_on[c] for c in customer_ids if started[c]["metering_point_periods_suppressed"]]
    points = suppression.load(storage.warehouse_dir).points.filter(
        pl.col("erased_on").is_in(pl.Series(with_points, dtype=pl.Date).implode())
    )
    daily_rows = _rewrite_daily(storage, points)
    quarantined_rows = compact_metering_quarantine(storage, points)
    for c, tables in _republish_mart(storage, customer_ids, today).items():
        removed[c] |= tables
    for c, n in drop_from_send_lists(storage.root, customer_ids).items():
        removed[c]["campaign_send_list_rows"] = n
    for c in customer_ids:
        # access reports `lupa sar` stored for them (full personal data), found by pseudonym
        removed[c]["access_report_files"] = delete_stored_reports(
            [subjects[c], *started[c]["identity_code_pseudonyms"]], [c]
        )
    for c in customer_ids:
        # the aggregates are rewritten once for all; the rows go to the erasures that suppressed point
        # periods (one, in practice: `lupa erase` takes one customer, retention suppresses none)
        metering = {"metering_daily_rows": daily_rows, "metering_quarantine_rows": quarantined_rows}
        rows = removed[c] | (metering if started[c]["metering_point_periods_suppressed"] else {})
        _audit(
            storage,
            "completed",
            subjects[c],
            erased_on[c],
            reason=why[c],
            rows_removed={k: v for k, v in sorted(rows.items()) if v},
        )
    latest = _erasures(_audit_entries(storage))
    return {c: _account(latest[subjects[c]]) for c in customer_ids}


def _suppress(
    storage: LupaStorage,
    conn,
    customer_ids: list[str],
    personal_ids: dict[str, list[str]],
    subjects: dict[str, str],
    reason: str,
    today: dt.date,
) -> None:
    """Record the suppression first, so that nothing erased can come back in through ingestion, then
    audit each start. A request also suppresses the customer's metering point periods."""
    points = _point_periods(conn, customer_ids) if reason == REQUEST else pl.DataFrame(schema=POINT_PERIODS)
    suppression.add(
        storage.warehouse_dir,
        [i for c in customer_ids for i in (c, *personal_ids[c])],
        points.with_columns(pl.lit(today).alias("erased_on")),
        today,
    )
    for c in customer_ids:
        # links the subject to the pseudonyms of their identity codes, so an access request by
        # identity code still finds what was kept
        _audit(
            storage,
            "suppressed",
            subjects[c],
            today,
            reason=reason,
            identity_code_pseudonyms=[suppression.pseudonym(p) for p in personal_ids[c]],
            metering_point_periods_suppressed=int((points["customer_id"] == c).sum()),
        )


def _erase_from_analytics(storage: LupaStorage, customer_ids: list[str]) -> dict[str, dict[str, int]]:
    """Delete the customers' rows from every analytics table; rows removed per customer and table."""
    removed: dict[str, dict[str, int]] = {c: {} for c in customer_ids}
    if storage.analytics_path.exists():
        with connect(storage.analytics_path) as conn:
            for table in _tables_with(conn, "customer_id"):
                for c, n in _delete_rows(conn, table, "customer_id", {c: c for c in customer_ids}).items():
                    removed[c][f"analytics.{table}"] = n
    return removed


def _erase_from_warehouse(
    conn,
    customer_ids: list[str],
    codes: dict[str, str],
    pseudonyms: dict[str, str],
    erased_on: dict[str, dt.date],
    retention: RetentionPolicy,
) -> tuple[dict, dict]:
    """One transaction: keep the customers' invoices restricted, delete everything else of them.

    `codes` maps each identity code to its customer; `pseudonyms` maps the pseudonyms of each
    customer's id and identity codes to the customer, to find them in raw quarantined records.
    Returns, per customer, the rows removed per table and what was kept (count, legal basis, last
    day kept)."""
    removed: dict[str, dict[str, int]] = {c: {} for c in customer_ids}
    conn.execute("begin transaction")
    if table_exists(conn, "invoices"):
        conn.execute(
            "create table if not exists invoices_retained as "
            "select *, ''::varchar as retention_basis, null::date as restricted_on from invoices limit 0"
        )
        conn.register(
            "_restricted",
            pl.DataFrame(
                {"customer_id": customer_ids, "restricted_on": [erased_on[c] for c in customer_ids]},
                schema={"customer_id": pl.String, "restricted_on": pl.Date},
            ),
        )
        conn.execute(
            "insert into invoices_retained select i.*, $basis, r.restricted_on "
            "from invoices i join _restricted r on i.customer_id = r.customer_id",
            {"basis": INVOICE_RETENTION_BASIS},
        )
        conn.unregister("_restricted")
    issued = (
        query(
            conn,
            "select customer_id, issued_on from invoices_retained where list_contains($c, customer_id)",
            c=customer_ids,
        )
        if table_exists(conn, "invoices_retained")
        else pl.DataFrame(schema={"customer_id": pl.String, "issued_on": pl.Date})
    )
    for table in _tables_with(conn, "customer_id"):
        if table != "invoices_retained":
            for c, n in _delete_rows(conn, table, "customer_id", {c: c for c in customer_ids}).items():
                removed[c][table] = n
    if codes:
        for table in _tables_with(conn, "personal_id"):
            for c, n in _delete_rows(conn, table, "personal_id", codes).items():
                removed[c][table] = removed[c].get(table, 0) + n
    if table_exists(conn, "quarantine"):
        for c, n in _delete_quarantined(conn, pseudonyms).items():
            removed[c]["quarantine"] = n
    conn.execute("commit")
    kept = {}
    for c in customer_ids:
        dates = issued.filter(pl.col("customer_id") == c)["issued_on"].to_list()
        until = max((retention.invoice_kept_until(d) for d in dates), default=None)
        kept[c] = {
            "invoices_retained": len(dates),
            "basis": INVOICE_RETENTION_BASIS,
            "last_kept_until": until.isoformat() if until else None,
        }
    return {c: dict(sorted(r.items())) for c, r in removed.items()}, kept


def _delete_quarantined(conn, owners: dict[str, str]) -> dict[str, int]:
    """Delete the quarantined records with a field that is one of the customers' identifiers (the
    raw record is matched field by field against `owners`' pseudonyms); count them per customer."""
    quarantine = query(conn, "select rowid as id, raw from quarantine")

    def owner(raw: str) -> str | None:
        return next((owners[p] for p in suppression.raw_field_pseudonyms(raw) if p in owners), None)

    hits = quarantine.with_columns(pl.col("raw").map_elements(owner, return_dtype=pl.String).alias("owner")).drop_nulls(
        "owner"
    )
    if hits.height:
        conn.execute("delete from quarantine where list_contains($ids, rowid)", {"ids": hits["id"].to_list()})
    return dict(hits.group_by("owner").len().rows())


def _account(entries: list[dict]) -> dict:
    """One erasure's audit entries summed up: what `lupa erase` reports."""
    removed: dict[str, int] = {}
    for e in entries:
        for table, n in e.get("rows_removed", {}).items():
            removed[table] = removed.get(table, 0) + n
    return {
        "subject": entries[0]["subject"],
        "erased_on": entries[0]["erased_on"],
        "reason": entries[0].get("reason", REQUEST),
        "rows_removed": dict(sorted(removed.items())),
        "kept": next((e["kept"] for e in entries if e["step"] == "warehouse_erased"), None),
        "metering_point_periods_suppressed": entries[0]["metering_point_periods_suppressed"],
    }


def held_after_erasure(
    storage: LupaStorage, *, customer_id: str | None = None, personal_id: str | None = None
) -> HeldAfterErasure | None:
    """The erasure of this customer (asked for by customer id or by identity code) and what it kept;
    None when the audit log has no erasure of them. An erasure that was interrupted is returned too,
    marked incomplete."""
    wanted = suppression.pseudonym(customer_id if customer_id is not None else personal_id)
    started = next(
        (
            e
            for e in reversed(_audit_entries(storage))
            if e["step"] == "suppressed" and (wanted == e["subject"] or wanted in e["identity_code_pseudonyms"])
        ),
        None,
    )
    if started is None:
        return None
    entries = _erasures(_audit_entries(storage))[started["subject"]]
    invoices: list[dict] = []
    with storage.warehouse(read_only=True) as conn:
        if table_exists(conn, "invoices_retained"):
            if customer_id is None:
                kept_ids = [c for (c,) in conn.sql("select distinct customer_id from invoices_retained").fetchall()]
                customer_id = next((c for c in kept_ids if suppression.pseudonym(c) == started["subject"]), None)
            if customer_id is not None:
                invoices = query(
                    conn,
                    "select * from invoices_retained where customer_id = $c order by issued_on, invoice_id",
                    c=customer_id,
                ).to_dicts()
    return HeldAfterErasure(
        erased_on=dt.date.fromisoformat(started["erased_on"]),
        customer_id=customer_id,
        invoices=invoices,
        pseudonyms=1 + len(started["identity_code_pseudonyms"]),
        metering_point_periods=started["metering_point_periods_suppressed"],
        complete=entries[-1]["step"] == "completed",
    )


def _rewrite_daily(storage: LupaStorage, points: pl.DataFrame) -> int:
    """Drop the erased customers' point periods from the per-day aggregates now (they are small)."""
    if points.is_empty():
        return 0
    erased = suppression.Suppressions(frozenset(), points)
    removed = 0
    for path in daily_aggregate_files(storage):
        day = dt.date.fromisoformat(path.parent.name.split("=")[1])
        if not ((points["valid_from"] <= day) & (points["valid_to"].is_null() | (points["valid_to"] >= day))).any():
            continue
        frame = lake.read_parquet(path)
        kept = erased.keep_readings(frame)
        if kept.height != frame.height:
            removed += frame.height - kept.height
            lake.write_parquet(kept, path)
    return removed


def compact_metering_quarantine(storage: LupaStorage, points: pl.DataFrame) -> int:
    """Rewrite the metering quarantine files (`delivery=*.parquet`, whose raw Datahub lines carry the
    GSRN) without the records of these erased point periods; returns the records removed. Erasure
    runs it for the points it suppresses; afterwards metering ingestion keeps such records out of a
    re-delivered or backfilled file (`Suppressions.keep_quarantined_readings`)."""
    root = quarantine_root(storage)
    if points.is_empty():
        return 0
    erased = suppression.Suppressions(frozenset(), points)
    removed = 0
    for path in listed(root, "delivery=*.parquet"):
        frame = lake.read_parquet(path)
        if "raw" not in frame.columns:
            continue
        kept = erased.keep_quarantined_readings(frame)
        if kept.height != frame.height:
            removed += frame.height - kept.height
            lake.write_parquet(kept, path)  # owner-only locally: the umask (pipelines.settings) and the folder
    return removed


def _republish_mart(storage: LupaStorage, customer_ids: list[str], today: dt.date) -> dict[str, dict[str, int]]:
    """Publish the current mart again without the customers; no older exports are kept.

    The mart is read before the publish lock is taken, so a daily publish may land in between. The
    republish then refuses to replace that newer mart with the older one it read (`as_of`), and
    starts again from the newer one, which the daily publish already built without the customers.
    Returns, per customer, the rows removed per mart table."""
    path = mart_path(storage.root)
    erased = pl.col("customer_id").is_in(pl.Series(customer_ids, dtype=pl.String).implode())
    for attempt in range(3):
        if not path.exists():
            return {}
        as_of = published_as_of(storage.root)
        with connect(path, read_only=True) as conn:
            tables = {
                name: query(conn, f'select * from "{name}"')
                for (name,) in conn.sql("select table_name from duckdb_tables()").fetchall()
            }
        removed: dict[str, dict[str, int]] = {c: {} for c in customer_ids}
        for name, table in tables.items():
            if "customer_id" in table.columns:
                for c, n in table.filter(erased).group_by("customer_id").len().rows():
                    removed[c][f"mart.{name}"] = n
        try:
            publish(
                storage.root,
                {n: t.filter(~erased) if "customer_id" in t.columns else t for n, t in tables.items()},
                tag=f"erasure-{today.isoformat()}-{suppression.pseudonym(','.join(customer_ids))[:8]}",
                keep_previous_exports=False,
                as_of=as_of,
                lake_exports=storage.lake_exports,
            )
            return removed
        except NewerMartPublished:
            if attempt == 2:
                raise
    return removed
