"""Publish layer: the marketing mart, validated as a whole and swapped in atomically."""

import datetime as dt

import duckdb
import polars as pl
from dagster import AssetExecutionContext, FreshnessPolicy, MaterializeResult, MetadataValue, asset

from assets.calendar import run_business_day
from assets.common import OWNERS, data_errors_fail_cleanly, io_retry
from assets.mart import exports_link, mart_path, publish
from assets.reporting import counts_table
from assets.storage import MART_POOL, LupaStorage, query
from data_contracts.audience_rules import AUDIENCE_TABLES
from data_contracts.contract import ContractViolation
from data_contracts.policy import CHANNELS, load_policy
from data_contracts.published import PublishedContractError, contains_personal_id, published_schemas, validate_published

WAREHOUSE_TABLES = [*AUDIENCE_TABLES.values(), "audience_exclusions", "renewal_offers"]
ANALYTICS_TABLES = ["customer_segments", "segment_catalogue"]


def validate_mart(path, safety_ban_ids: list[str]) -> None:
    """Re-open the staged file and check every table against its published contract."""
    schemas = published_schemas(load_policy(), safety_ban_ids)
    conn = duckdb.connect(str(path), read_only=True)
    try:
        for table, schema in schemas.items():
            frame = query(conn, f'select * from "{table}"')
            try:
                validate_published(table, frame, schema)
            except PublishedContractError as exc:
                raise ContractViolation(str(exc)) from None
            if contains_personal_id(frame):
                raise ContractViolation(f"{table}: a value shaped like a personal identity code would be published")
    finally:
        conn.close()


@asset(
    group_name="publish",
    owners=OWNERS,
    kinds={"duckdb", "parquet"},
    pool=MART_POOL,
    # after retention, which erases former customers from the tables read here
    deps=[*WAREHOUSE_TABLES, *ANALYTICS_TABLES, "retention"],
    retry_policy=io_retry,
    # the mart is due every morning after the 06:00 run: warn after 25 hours, fail after 26
    freshness_policy=FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=25)),
    description=(
        "marketing.duckdb plus Parquet exports and Excel-ready CSVs (UTF-8 BOM, `;`) for every audience: built as a "
        "new file, validated against the published contracts, then renamed into place. Runs only when every "
        "audience's blocking checks (policy, fail_safe, size_anomaly) passed."
    ),
)
@data_errors_fail_cleanly
def marketing_mart(context: AssetExecutionContext, storage: LupaStorage) -> MaterializeResult:
    day = run_business_day(context)
    with storage.warehouse() as conn:
        tables = {name: query(conn, f'select * from "{name}"') for name in WAREHOUSE_TABLES}
        safety_ban_ids = query(conn, "select customer_id from customers where safety_ban")["customer_id"].to_list()
    with storage.analytics() as conn:
        tables |= {name: query(conn, f'select * from "{name}"') for name in ANALYTICS_TABLES}
    counts = publish(storage.root, tables, tag=day.isoformat(), validate=lambda path: validate_mart(path, safety_ban_ids))
    exclusions = tables["audience_exclusions"]
    return MaterializeResult(
        metadata={
            "business_day": day.isoformat(),
            "audience_sizes": counts_table({ch: counts[AUDIENCE_TABLES[ch]] for ch in CHANNELS}, "channel", "customers"),
            "exclusions_per_reason": counts_table(dict(sorted(exclusions.group_by("reason").len().rows())), "reason", "rows"),
            "renewal_offers": counts["renewal_offers"],
            "segments": counts["segment_catalogue"],
            "mart": MetadataValue.path(str(mart_path(storage.root))),
            "exports": MetadataValue.path(str(exports_link(storage.root))),
        }
    )

