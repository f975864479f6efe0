"""Core layer: current state as of run day D, each table validated by its contract before writing."""

import datetime as dt
import json

import pandera.polars as pa
import polars as pl
from dagster import AssetExecutionContext, AssetMaterialization, MaterializeResult, MetadataValue, asset

from assets.common.calendar import run_business_day
from assets.common.conventions import (
    OWNERS,
    business_days,
    data_errors_fail_cleanly,
    io_retry,
    schema_of_frame,
    single_run,
)
from assets.common.reporting import coverage
from assets.core import tables as core_tables
from assets.ingest.assets import INGEST_ASSET
from assets.storage import lake, suppression
from assets.storage.metering import daily_root, manifest_root, readings_root
from assets.storage.metering_aggregate import aggregate_days
from assets.storage.zones import DUCKDB_POOL, LupaStorage, date_range_of, query, replace_table
from data_contracts import core as contracts
from data_contracts.contract import check_frame
from data_contracts.normalise import asml_match_key_expr
from data_contracts.vocabulary import end_of_business_day
from models.features import complete_day


def _publish(
    storage: LupaStorage, name: str, frame: pl.DataFrame, schema: pa.DataFrameSchema, date_column: str | None, **extra
) -> MaterializeResult:
    """Validate, replace the warehouse table, and describe it with counts and coverage only."""
    check_frame(schema, frame)
    with storage.warehouse() as conn:
        replace_table(conn, name, frame)
    metadata = {
        "dagster/row_count": frame.height,
        "dagster/column_schema": schema_of_frame(frame),
        "table": f"warehouse.duckdb/{name}",
    }
    if date_column:
        metadata["date_coverage"] = coverage(*date_range_of(frame, date_column))
    return MaterializeResult(metadata=metadata | extra)


def _read(storage: LupaStorage, sql: str, **params: object) -> pl.DataFrame:
    with storage.warehouse(read_only=False) as conn:
        return query(conn, sql, **params)


def core_asset(name: str, deps: list[str], description: str, kinds=frozenset({"duckdb", "polars"})):
    decorate = asset(
        name=name,
        group_name="core",
        owners=OWNERS,
        kinds=set(kinds),
        pool=DUCKDB_POOL,
        deps=deps,
        retry_policy=io_retry,
        description=description,
    )
    return lambda fn: decorate(data_errors_fail_cleanly(fn))


@core_asset(
    "population_register",
    [INGEST_ASSET["population"]],
    "VTJ state carried forward per person: latest flags, last known address, recorded deaths.",
)
def population_register(storage: LupaStorage) -> MaterializeResult:
    frame = core_tables.population_register(_read(storage, "select * from population_valid"))
    return _publish(
        storage,
        "population_register",
        frame,
        contracts.population_register,
        "updated_on",
        safety_bans=int(frame["safety_ban"].sum()),
        marketing_bans=int(frame["marketing_ban"].sum()),
        deaths=int(frame["deceased_on"].is_not_null().sum()),
    )


@core_asset(
    "customers",
    [INGEST_ASSET["customers"], "population_register"],
    "Customers in the latest CRM snapshot, merged with VTJ (VTJ address wins; a safety ban suppresses every address).",
)
def customers(storage: LupaStorage) -> MaterializeResult:
    frame = core_tables.customers(
        _read(storage, "select * from customers_valid"), _read(storage, "select * from population_register")
    )
    by_type = dict(frame.group_by("customer_type").len().rows())
    return _publish(
        storage,
        "customers",
        frame,
        contracts.customers,
        "customer_since",
        persons=by_type.get("person", 0),
        companies=by_type.get("company", 0),
        address_source=MetadataValue.json(dict(sorted(frame.group_by("address_source").len().rows()))),
        email_status=MetadataValue.json(dict(sorted(frame.group_by("email_status").len().rows()))),
        phone_status=MetadataValue.json(dict(sorted(frame.group_by("phone_status").len().rows()))),
    )


@core_asset(
    "prospects",
    [INGEST_ASSET["prospects"], "population_register"],
    "Prospects (leads who are not customers yet): the latest row per prospect_id, with VTJ flags where the "
    "register knows the person (a safety ban suppresses the address).",
)
def prospects(storage: LupaStorage) -> MaterializeResult:
    frame = core_tables.prospects(
        _read(storage, "select * from prospects_valid"), _read(storage, "select * from population_register")
    )
    return _publish(
        storage,
        "prospects",
        frame,
        contracts.prospects,
        "updated_on",
        per_source=MetadataValue.json(dict(sorted(frame.group_by("source").len().rows()))),
        objections=int(frame["marketing_objection"].sum()),
    )


@core_asset("contracts", [INGEST_ASSET["contracts"]], "Contracts in the latest snapshot.")
def contracts_table(storage: LupaStorage) -> MaterializeResult:
    frame = _read(storage, core_tables.CONTRACTS_SQL)
    return _publish(storage, "contracts", frame, contracts.contracts, "start_date")


@core_asset(
    "metering_point_attribution",
    [INGEST_ASSET["contracts"]],
    "Which customer a metering point's readings belong to, per contract period.",
)
def metering_point_attribution(storage: LupaStorage) -> MaterializeResult:
    frame = _read(storage, core_tables.ATTRIBUTION_SQL)
    return _publish(
        storage,
        "metering_point_attribution",
        frame,
        contracts.metering_point_attribution,
        "valid_from",
        metering_points=frame["metering_point_id"].n_unique(),
    )


@core_asset("invoices", [INGEST_ASSET["billing"]], "Invoices, upserted by invoice_id: the latest delivery wins.")
def invoices(storage: LupaStorage) -> MaterializeResult:
    frame = _read(storage, core_tables.INVOICES_SQL)
    return _publish(
        storage, "invoices", frame, contracts.invoices, "issued_on", unpaid=int(frame["paid_on"].is_null().sum())
    )


@core_asset(
    "consent_state",
    [INGEST_ASSET["consents"]],
    "The consent event log and the resulting state per (customer, purpose, channel), with the deciding event.",
)
def consent_state(context: AssetExecutionContext, storage: LupaStorage) -> MaterializeResult:
    events = _read(storage, core_tables.CONSENT_EVENTS_SQL)
    check_frame(contracts.consent_events, events)
    with storage.warehouse() as conn:
        replace_table(conn, "consent_events", events)
    state = _read(storage, core_tables.CONSENT_STATE_SQL, day_end=end_of_business_day(run_business_day(context)))
    summary = state.group_by("purpose", "channel", "state").len().sort("purpose", "channel", "state", nulls_last=False)
    return _publish(
        storage,
        "consent_state",
        state,
        contracts.consent_state,
        None,
        consent_events=events.height,
        event_coverage=coverage(*date_range_of(events.with_columns(pl.col("occurred_at").dt.date()), "occurred_at")),
        state_counts=MetadataValue.md(
            "| purpose | channel | state | customers |\n|---|---|---|---:|\n"
            + "\n".join(f"| {p} | {c or 'all'} | {s} | {n:,} |" for p, c, s, n in summary.rows())
        ),
    )


@core_asset(
    "asml_register",
    [INGEST_ASSET["asml"]],
    "The latest ASML opt-out extract (mail and phone registers) with normalised match keys.",
)
def asml_register(storage: LupaStorage) -> MaterializeResult:
    raw = _read(storage, "select * from asml_valid")
    frame = raw.select(
        "register",
        pl.when(pl.col("register") == "mail")
        .then(asml_match_key_expr("first_name", "last_name", "street_address", "postal_code"))
        .alias("match_key"),
        pl.when(pl.col("register") == "phone").then(pl.col("phone")).alias("phone_e164"),
        "registered_on",
        "expires_on",
        pl.col("delivered_on").alias("extract_date"),
    )
    return _publish(
        storage,
        "asml_register",
        frame,
        contracts.asml_register,
        "registered_on",
        mail_entries=int((frame["register"] == "mail").sum()),
        phone_entries=int((frame["register"] == "phone").sum()),
    )


@core_asset(
    "contact_history",
    [INGEST_ASSET["contacts"]],
    "Contacts sent to customers, deduplicated on (customer, channel, campaign, sent_at).",
)
def contact_history(storage: LupaStorage) -> MaterializeResult:
    frame = _read(storage, core_tables.CONTACT_HISTORY_SQL)
    return _publish(
        storage,
        "contact_history",
        frame,
        contracts.contact_history,
        None,
        sent_coverage=coverage(*date_range_of(frame.with_columns(pl.col("sent_at").dt.date()), "sent_at")),
        marketing_contacts=int((frame["kind"] == "marketing").sum()),
    )


@asset(
    name="metering_daily",
    group_name="core",
    owners=OWNERS,
    kinds={"duckdb", "parquet"},
    partitions_def=business_days,
    backfill_policy=single_run,
    deps=["ingest_metering"],
    retry_policy=io_retry,
    description=(
        "Per metering point and Helsinki business day: kWh total, kWh per local hour, night kWh (22–07), "
        "reading counts by quality and the expected interval count (23/24/25 or 92/96/100). Built from every "
        "delivery visible to the run, latest delivery winning; days corrected by D's delivery are rebuilt too."
    ),
)
@data_errors_fail_cleanly
def metering_daily(context: AssetExecutionContext, storage: LupaStorage) -> MaterializeResult:
    as_of = run_business_day(context)
    cutoff = as_of + dt.timedelta(days=1)
    keys = list(context.partition_keys) if context.has_partition_key_range else [context.partition_key]
    corrected = _corrected_days(storage, keys) - set(keys)
    targets = [dt.date.fromisoformat(k) for k in keys + sorted(corrected)]
    rows_per_day = aggregate_days(
        readings_root(storage),
        daily_root(storage),
        targets,
        cutoff,
        suppression.load(storage.warehouse_dir).points,
        spill_dir=storage.spill_dir,
    )
    written = sorted(
        daily_root(storage) / f"business_day={d.isoformat()}" / "part.parquet" for d, n in rows_per_day.items() if n
    )
    schema: dict = {}
    incomplete: dict = {}
    if written:
        daily = lake.scan_parquet(written).collect()
        check_frame(contracts.metering_daily, daily)
        schema = {"dagster/column_schema": schema_of_frame(daily.schema)}
        # a day short of intervals (say 96 of a 25-hour day's 100) is stored as read, and counted here:
        # the features leave it out of whatever needs a whole day
        incomplete = {"point_days_incomplete": int(daily.select((~complete_day()).sum()).item())}
    for key in sorted(corrected):  # a correction re-materialises that day's partition, recorded as such
        n = rows_per_day[dt.date.fromisoformat(key)]
        context.log_event(
            AssetMaterialization(
                asset_key="metering_daily", partition=key, metadata={"rows": n, "rebuilt_for": as_of.isoformat()}
            )
        )
    rows = sum(rows_per_day.values())
    days = sorted(keys)
    return MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "business_days": f"{days[0]} … {days[-1]}" if len(days) > 1 else days[0],
            "corrected_days_rebuilt": MetadataValue.json(sorted(corrected)),
            "visible_deliveries_up_to": cutoff.isoformat(),
            "daily": MetadataValue.path(str(daily_root(storage))),
            **incomplete,
            **schema,
        }
    )


def _corrected_days(storage: LupaStorage, keys: list[str]) -> set[str]:
    """Days other than the partition's own that the partitions' deliveries re-sent."""
    days: set[str] = set()
    for key in keys:
        delivered = dt.date.fromisoformat(key) + dt.timedelta(days=1)
        manifest = manifest_root(storage) / f"delivery={delivered:%Y%m%d}.json"
        if manifest.exists():
            days.update(json.loads(manifest.read_text())["days_written"])
    return days
