"""Retention: keep each kind of data only as long as the policy file says, and compact erasures.

Periods come from `retention:` in the marketing policy; what was removed is reported in counts.
Former customers whose relationship ended longer ago than `customer_data` are erased the way
`lupa erase` erases (assets/customer_retention.py says who, pipelines/erasure.py how), invoices
leave the warehouse after the Accounting Act's period (assets/invoice_retention.py), contacts after
theirs (assets/contact_retention.py; ingestion keeps both out afterwards, assets/pruning.py), and
compaction physically removes the readings of erased customers' metering point periods, which
every read already filtered out.

Runs daily after the audiences and before `marketing_mart`, so the mart a run publishes never
holds a customer that run erased; the erasure also republishes the mart in place, so the one
already published (and its exports) loses them even when the run's own mart is held back.
"""

import datetime as dt
import json
import shutil

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.audiences.assets import unresolved_blocking_rows
from assets.common.calendar import HELSINKI, run_business_day
from assets.common.conventions import OWNERS, data_errors_fail_cleanly, io_retry
from assets.common.reporting import counts_table
from assets.privacy import former_customers as customer_retention
from assets.privacy.erasure import RETENTION, erase_customers
from assets.storage import contact_retention, invoice_retention, suppression
from assets.storage.ingestion import refresh_quarantine_view
from assets.storage.metering import daily_root, quarantine_root, readings_root
from assets.storage.pruning import QUARANTINE_LOG, prune_quarantine
from assets.storage.zones import DUCKDB_POOL, LupaStorage, scalar, table_exists
from data_contracts.policy import load_policy


def _day_of(path) -> dt.date:
    return dt.date.fromisoformat(path.name.split("=")[1])


def drop_old_partitions(root, before: dt.date) -> int:
    removed = 0
    for folder in root.glob("business_day=*"):
        if _day_of(folder) < before:
            shutil.rmtree(folder)
            removed += 1
    return removed


def compact_erased_readings(storage: LupaStorage) -> int:
    """Rewrite the reading files that still hold an erased customer's point periods. (Their
    quarantined records leave the metering quarantine at the erasure itself, and ingestion keeps
    them out of every later delivery or backfill.)"""
    erased = suppression.load(storage.warehouse_dir)
    marker = suppression.suppression_dir(storage.warehouse_dir) / "compacted.json"
    done = set(json.loads(marker.read_text())) if marker.exists() else set()
    todo = [r for r in erased.points.to_dicts() if json.dumps(r, default=str, sort_keys=True) not in done]
    removed = 0
    for period in todo:
        for folder in readings_root(storage).glob("business_day=*"):
            day = _day_of(folder)
            if day < period["valid_from"] or (period["valid_to"] is not None and day > period["valid_to"]):
                continue
            for part in folder.glob("*.parquet"):
                frame = pl.read_parquet(part)
                kept = frame.filter(pl.col("metering_point_id") != period["metering_point_id"])
                if kept.height != frame.height:
                    removed += frame.height - kept.height
                    tmp = part.with_suffix(".tmp")
                    kept.write_parquet(tmp)
                    tmp.replace(part)
        done.add(json.dumps(period, default=str, sort_keys=True))
    if todo:
        marker.write_text(json.dumps(sorted(done)))
    return removed


def erase_former_customers(storage: LupaStorage, former: list[str]) -> dict[str, int]:
    """Erase the former customers past the period, as `lupa erase` would; counts only.

    The erasure is dated by the calendar (the day it happens, which is what a former customer asking
    later is told), while the run day D decided who is past the period.
    """
    accounts = erase_customers(storage, former, dt.datetime.now(HELSINKI).date(), RETENTION)
    return {
        "former customers erased": len(accounts),
        "their invoices, kept restricted": sum(
            (a["kept"] or {}).get("invoices_retained", 0) for a in accounts.values()
        ),
    }


@asset(
    group_name="core",
    owners=OWNERS,
    kinds={"duckdb", "parquet"},
    pool=DUCKDB_POOL,
    # After every core table (so the day's quarantine is in), before profiling and the audiences, so
    # that a blocked audience (a failed blocking check) never holds back the deletions the law requires.
    deps=[
        "metering_daily",
        "customers",
        "contracts",
        "invoices",
        "contact_history",
        "consent_state",
        "asml_register",
        "population_register",
    ],
    retry_policy=io_retry,
    description=(
        "Enforces the retention periods of the policy file (metering readings, quarantine, contact history, audience "
        "history, invoices, invoices kept after an erasure, former customers' data: erased like `lupa erase`) and compacts "
        "erased customers' readings out of the metering Parquet. Runs before the mart is published. Reports counts only."
    ),
)
@data_errors_fail_cleanly
def retention(context: AssetExecutionContext, storage: LupaStorage) -> MaterializeResult:
    day = run_business_day(context)
    periods = load_policy().retention
    removed: dict[str, int] = {}
    readings_before = periods.metering_readings.cutoff(day)
    removed["metering reading days"] = drop_old_partitions(readings_root(storage), readings_before)
    removed["metering aggregate days"] = drop_old_partitions(daily_root(storage), readings_before)
    quarantine_before = periods.quarantine.cutoff(day)
    removed["metering quarantine files"] = 0
    for path in quarantine_root(storage).glob("delivery=*.parquet") if quarantine_root(storage).exists() else []:
        if dt.datetime.strptime(path.stem.split("=")[1], "%Y%m%d").date() < quarantine_before:
            path.unlink()
            removed["metering quarantine files"] += 1
    customers_before = periods.customer_data.cutoff(day)
    with storage.warehouse() as conn:
        # before the erasures, so that no invoice past its period is moved to the restricted table
        removed["invoices past the Accounting Act period"] = invoice_retention.prune(conn, periods, day)
        former = customer_retention.ended_before(conn, customers_before)
        open_without_contract = customer_retention.open_without_contract(conn, customers_before)
    removed |= erase_former_customers(storage, former)
    deletions = {
        "audience history rows": ("audience_history", "business_day", periods.audience_history.cutoff(day)),
    }
    # the fail safe: quarantined rows that still block publication on D stay until a person resolves them
    blocking = unresolved_blocking_rows(storage, day)
    with storage.warehouse() as conn:
        removed["invoices retained after erasure"] = invoice_retention.expire_retained(conn, periods, day)
        removed["quarantine rows"], held = prune_quarantine(conn, quarantine_before, blocking)
        for label, (table, column, before) in deletions.items():
            if table_exists(conn, table):
                removed[label] = scalar(conn, f'select count(*) from "{table}" where {column} < $b', b=before)
                conn.execute(f'delete from "{table}" where {column} < $b', {"b": before})
        QUARANTINE_LOG.record(conn, day, removed["quarantine rows"])
        # the day's quarantine is in (retention runs after every ingest), and metering files may be gone
        refresh_quarantine_view(conn, quarantine_root(storage))
        contacts = contact_retention.prune(conn, periods, day)
        removed["contact history rows"] = contacts.get("contact_history", 0)
        removed["contacts_valid rows"] = contacts.get("contacts_valid", 0)
    removed["erased readings compacted"] = compact_erased_readings(storage)
    return MaterializeResult(
        metadata={
            "business_day": day.isoformat(),
            "removed": counts_table(removed, "what", "removed"),
            # past the quarantine period but unresolved and able to restrict contact: kept, the fail_safe check still blocks on them
            "quarantine_kept_until_resolved": counts_table(held, "source", "rows kept"),
            "quarantine_kept_until_resolved_total": sum(held.values()),
            # kept, because the CRM shows them as active; someone should ask the CRM's owners why
            "active_in_crm_without_a_contract_since_cutoff": open_without_contract,
            "kept_since": MetadataValue.json(
                {
                    "metering_readings": str(readings_before),
                    "quarantine": str(quarantine_before),
                    "contact_history": str(periods.contact_history.cutoff(day)),
                    "audience_history": str(periods.audience_history.cutoff(day)),
                    "customer_data": str(customers_before),
                }
            ),
        }
    )
