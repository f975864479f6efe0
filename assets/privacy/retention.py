"""Retention: keep each kind of data only as long as the policy file says, and compact erasures.

Periods come from `retention:` in the marketing policy; what was removed is reported in counts.
Former customers whose relationship ended longer ago than `customer_data` are erased the way
`lupa erase` erases (assets/privacy/former_customers.py says who, assets/privacy/erasure.py how), invoices
leave the warehouse after the Accounting Act's period (assets/storage/invoice_retention.py), contacts after
theirs (assets/storage/contact_retention.py; ingestion keeps both out afterwards, assets/storage/pruning.py), and
compaction physically removes the readings of erased customers' metering point periods, which
every read already filtered out.

Runs daily after every core table and before profiling, the audiences and `marketing_mart`
(docs/decisions.md §15): a blocked audience never holds back what the law requires, a customer it
erases is never profiled or put in an audience that day, and the mart a run publishes never holds a
customer that run erased. The erasure also republishes the mart in place, so the one already
published (and its exports) loses them even when the run's own mart is held back.
"""

import datetime as dt
import json
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.common.calendar import run_business_day
from assets.common.conventions import OWNERS, data_errors_fail_cleanly, io_retry
from assets.common.reporting import counts_table
from assets.common.resources import PolicyResource
from assets.privacy import former_customers, prospect_erasure
from assets.privacy.erasure import RETENTION, erase_customers
from assets.storage import contact_retention, invoice_retention, lake, suppression
from assets.storage.ingestion import refresh_quarantine_view
from assets.storage.metering import daily_root, quarantine_root, readings_root
from assets.storage.metering_parts import listed
from assets.storage.pruning import QUARANTINE_LOG, prune_quarantine
from assets.storage.quarantine import unresolved_blocking_rows
from assets.storage.zones import DUCKDB_POOL, LupaStorage, scalar, table_exists
from data_contracts.policy import RetentionPolicy
from data_contracts.vocabulary import HELSINKI
from models.prospect_retention import prospects_due
from models.retention import days_before, former_customers_past, plan_retention


def _day_of(path) -> dt.date:
    return dt.date.fromisoformat(path.name.split("=")[1])


def drop_partitions(root, days: list[dt.date]) -> int:
    """Delete the business-day partitions of these days under `root` (the plan chose them)."""
    for day in days:
        lake.remove_tree(root / f"business_day={day.isoformat()}")
    return len(days)


def partition_days(root) -> list[dt.date]:
    return [_day_of(folder) for folder in listed(root, "business_day=*")]


def quarantine_files(storage: LupaStorage) -> dict[dt.date, Path]:
    """The metering quarantine's files by delivery date."""
    root = quarantine_root(storage)
    paths = listed(root, "delivery=*.parquet")
    return {dt.datetime.strptime(p.stem.split("=")[1], "%Y%m%d").date(): p for p in paths}


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
        for folder in listed(readings_root(storage), "business_day=*"):
            day = _day_of(folder)
            if day < period["valid_from"] or (period["valid_to"] is not None and day > period["valid_to"]):
                continue
            for part in listed(folder, "*.parquet"):
                frame = lake.read_parquet(part)
                kept = frame.filter(pl.col("metering_point_id") != period["metering_point_id"])
                if kept.height != frame.height:
                    removed += frame.height - kept.height
                    lake.write_parquet(kept, part)  # the same name, replaced whole
        done.add(json.dumps(period, default=str, sort_keys=True))
    if todo:
        marker.write_text(json.dumps(sorted(done)))
    return removed


def erase_former_customers(storage: LupaStorage, former: list[str], periods: RetentionPolicy) -> dict[str, int]:
    """Erase the former customers past the period, as `lupa erase` would; counts only.

    The erasure is dated by the calendar (the day it happens, which is what a former customer asking
    later is told), while the run day D decided who is past the period.
    """
    accounts = erase_customers(storage, former, dt.datetime.now(HELSINKI).date(), RETENTION, periods)
    return {
        "former customers erased": len(accounts),
        "their invoices, kept restricted": sum(
            (a["kept"] or {}).get("invoices_retained", 0) for a in accounts.values()
        ),
    }


def erase_due_prospects(storage: LupaStorage, day: dt.date, periods: RetentionPolicy) -> dict[str, int]:
    """Prospects past `retention.prospects`, and prospects who became customers (models/prospect_retention.py)."""
    with storage.warehouse() as conn:
        due = prospects_due(prospect_erasure.latest_updates(conn), prospect_erasure.conversions(conn), periods, day)
    removed = prospect_erasure.erase_prospects(storage, due, day)
    counts = dict(due.group_by("reason").len().rows())
    return {
        "prospects erased after their retention period": counts.get("retention", 0),
        "prospects erased because they became customers": counts.get("became_customer", 0),
        "their contacts": removed.get("contacts_valid", 0),
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
        "prospects",
    ],
    retry_policy=io_retry,
    description=(
        "Enforces the retention periods of the policy file (metering readings, quarantine, contact history, audience "
        "history, invoices, invoices kept after an erasure, former customers' data: erased like `lupa erase`; "
        "prospects past `retention.prospects` or who became customers: erased, with a suppression record) "
        "and compacts erased customers' readings out of the metering Parquet. Runs after the core tables, before "
        "profiling, the audiences and the mart. "
        "Reports counts only."
    ),
)
@data_errors_fail_cleanly
def retention(context: AssetExecutionContext, storage: LupaStorage, policy: PolicyResource) -> MaterializeResult:
    day = run_business_day(context)
    periods = policy.load().retention
    plan = plan_retention(periods, day)
    removed: dict[str, int] = {}
    for label, root in (
        ("metering reading days", readings_root(storage)),
        ("metering aggregate days", daily_root(storage)),
    ):
        removed[label] = drop_partitions(root, days_before(partition_days(root), plan.metering_readings_from))
    quarantined = quarantine_files(storage)
    expired_files = days_before(quarantined, plan.quarantine_from)
    for delivered_on in expired_files:
        lake.remove(quarantined[delivered_on])
    removed["metering quarantine files"] = len(expired_files)
    with storage.warehouse() as conn:
        # before the erasures, so that no invoice past its period is moved to the restricted table
        removed["invoices past the Accounting Act period"] = invoice_retention.prune(conn, periods, day)
        former = former_customers_past(former_customers.relationship_facts(conn), plan)
        open_without_contract = former_customers.open_without_contract(conn, plan.customer_data_from)
    removed |= erase_former_customers(storage, former, periods)
    removed |= erase_due_prospects(storage, day, periods)
    deletions = {
        "audience history rows": ("audience_history", "business_day", plan.audience_history_from),
        # a released campaign list records who was chosen for contact: kept as long as audience history
        "campaign list rows": ("campaign_release_list", "send_on", plan.audience_history_from),
        "campaign removal rows": ("campaign_removals", "removed_on", plan.audience_history_from),
        "campaign releases": ("campaign_releases", "send_on", plan.audience_history_from),
    }
    # the fail safe: quarantined rows that still block publication on D stay until a person resolves them
    blocking = pl.concat(
        [
            unresolved_blocking_rows(storage, day, policy.load()),
            unresolved_blocking_rows(storage, day, policy.load(), recipients="prospects"),
        ]
    )
    with storage.warehouse() as conn:
        removed["invoices retained after erasure"] = invoice_retention.expire_retained(conn, periods, day)
        removed["quarantine rows"], held = prune_quarantine(conn, plan.quarantine_from, blocking)
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
            # past the quarantine period but unresolved and able to restrict contact: kept, the fail_safe
            # check still blocks on them
            "quarantine_kept_until_resolved": counts_table(held, "source", "rows kept"),
            "quarantine_kept_until_resolved_total": sum(held.values()),
            # kept, because the CRM shows them as active; someone should ask the CRM's owners why
            "active_in_crm_without_a_contract_since_cutoff": open_without_contract,
            "kept_since": MetadataValue.json(plan.kept_since()),
        }
    )
