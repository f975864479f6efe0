"""Features layer: who may be profiled, and one feature row per profiled customer (analytics zone)."""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, asset

from assets.common.calendar import run_business_day
from assets.common.conventions import OWNERS, data_errors_fail_cleanly, io_retry, schema_of_frame
from assets.common.reporting import counts_table, read_from
from assets.common.resources import PolicyResource
from assets.storage.metering import daily_aggregates, daily_root
from assets.storage.zones import DUCKDB_POOL, LupaStorage, replace_table
from data_contracts.contract import check_frame
from data_contracts.features import CustomerFeatures
from models.features import compute_customer_features, profiling_history_days
from models.profiling import candidates, split_population


def _core(storage: LupaStorage, table: str) -> pl.DataFrame:
    return storage.read_table("warehouse", f'select * from "{table}"')


@asset(
    group_name="features",
    owners=OWNERS,
    kinds={"polars", "duckdb"},
    pool=DUCKDB_POOL,
    deps=["customers", "consent_state", "contracts", "metering_point_attribution", "metering_daily", "retention"],
    retry_policy=io_retry,
    description=(
        "Customers who may be profiled on day D: household customers, adult, alive, with an active contract "
        "and enough days with readings in the trailing window (the policy file's `profiling` section), and "
        "without a profiling objection. Only customer_id is stored; exclusions are counted per reason."
    ),
)
@data_errors_fail_cleanly
def profiling_population(
    context: AssetExecutionContext, storage: LupaStorage, policy: PolicyResource
) -> MaterializeResult:
    as_of = run_business_day(context)
    rules = policy.load().profiling
    history = profiling_history_days(
        daily_aggregates(storage), _core(storage, "metering_point_attribution"), as_of, rules.window_days
    )
    frame = candidates(
        _core(storage, "customers"), _core(storage, "consent_state"), _core(storage, "contracts"), history, as_of
    )
    population, exclusions = split_population(frame, as_of, rules)
    stored = population.with_columns(pl.lit(as_of).alias("as_of"))
    with storage.analytics() as conn:
        replace_table(conn, "profiling_population", stored)
    reasons = dict(sorted(exclusions.group_by("reason").len().rows()))
    return MaterializeResult(
        metadata={
            "dagster/row_count": population.height,
            "dagster/column_schema": schema_of_frame(stored),
            "customers_considered": frame.height,
            "customers_left_out": exclusions["customer_id"].n_unique(),
            "left_out_per_reason": counts_table(reasons, key="reason", value="customers"),
            "as_of": as_of.isoformat(),
            **read_from(warehouse=storage.warehouse_path, metering_daily=daily_root(storage)),
        }
    )


@asset(
    group_name="features",
    owners=OWNERS,
    kinds={"polars", "duckdb"},
    pool=DUCKDB_POOL,
    deps=["profiling_population", "invoices", "contracts", "metering_point_attribution", "metering_daily"],
    retry_policy=io_retry,
    description=(
        "One row per profiled customer: consumption level and shape, seasonality, timing, data quality, payment "
        "behaviour and contract, over the trailing `profiling.window_days`. Validated by data_contracts.features; "
        "identifiers, "
        "names, addresses and the identity code are never features."
    ),
)
@data_errors_fail_cleanly
def customer_features(
    context: AssetExecutionContext, storage: LupaStorage, policy: PolicyResource
) -> MaterializeResult:
    as_of = run_business_day(context)
    window_days = policy.load().profiling.window_days
    with storage.analytics() as conn:
        population = conn.sql("select customer_id from profiling_population").pl()
    features = compute_customer_features(
        daily_aggregates(storage),
        _core(storage, "metering_point_attribution"),
        _core(storage, "contracts"),
        _core(storage, "invoices"),
        population,
        as_of,
        window_days,
    )
    check_frame(CustomerFeatures, features)  # strict: an identifier column would fail it
    with storage.analytics() as conn:
        replace_table(conn, "customer_features", features)
    start = as_of - dt.timedelta(days=window_days - 1)
    return MaterializeResult(
        metadata={
            "dagster/row_count": features.height,
            "dagster/column_schema": schema_of_frame(features),
            "window": f"{start} … {as_of}",
            "median_annual_kwh": float(features["annual_kwh"].median() or 0.0),
            **read_from(
                warehouse=storage.warehouse_path, metering_daily=daily_root(storage), analytics=storage.analytics_path
            ),
        }
    )
