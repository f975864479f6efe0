"""Segments layer: fit (or refit) the segmentation, keep ids stable, name the segments, show them."""

import datetime as dt
import os

import polars as pl
from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from assets.common.calendar import run_business_day
from assets.common.conventions import OWNERS, data_errors_fail_cleanly, io_retry, schema_of_frame
from assets.common.reporting import read_from
from assets.common.resources import PolicyResource
from assets.segments import model_store as registry
from assets.storage.metering import daily_aggregates, daily_root
from assets.storage.zones import DUCKDB_POOL, LupaStorage, replace_table
from data_contracts.vocabulary import LANGUAGES
from models.features import monthly_kwh_shares
from models.report import build_report
from models.segmentation import segment_customers


@multi_asset(
    specs=[
        AssetSpec(
            "segment_model",
            group_name="segments",
            owners=OWNERS,
            kinds={"scikit-learn"},
            deps=["customer_features"],
            description=(
                "Scaling + KMeans over the profiled customers' features, k chosen by silhouette and bootstrap "
                "stability; "
                "clusters matched to the previous model (Hungarian) so segment ids and names stay stable. "
                "Model versions are stored under the analytics zone; the HTML report under reports/."
            ),
        ),
        AssetSpec(
            "customer_segments",
            group_name="segments",
            owners=OWNERS,
            kinds={"duckdb"},
            deps=["segment_model"],
            description="customer_id → segment_id for the profiled population only (model_version, as_of).",
        ),
        AssetSpec(
            "segment_catalogue",
            group_name="segments",
            owners=OWNERS,
            kinds={"duckdb"},
            deps=["segment_model"],
            description=(
                "Each segment's names and descriptions in Finnish, Swedish and English, size and key centroid features."
            ),
        ),
    ],
    pool=DUCKDB_POOL,
    retry_policy=io_retry,
)
@data_errors_fail_cleanly
def segments(context: AssetExecutionContext, storage: LupaStorage, policy: PolicyResource):
    as_of = run_business_day(context)
    rules = policy.load().profiling
    with storage.analytics() as conn:
        features = conn.sql("select * from customer_features").pl()
    window = (as_of - dt.timedelta(days=rules.window_days - 1), as_of)
    if features.height < rules.min_customers_to_fit:
        yield from _not_fitted(storage, features.height, as_of, rules.min_customers_to_fit)
        return
    previous = registry.load_previous_state(storage.models_dir, before=as_of)
    result = segment_customers(features, as_of, window, previous)
    stored = registry.save_model(storage.models_dir, result)
    attribution = storage.read_table("warehouse", "select * from metering_point_attribution")
    monthly = monthly_kwh_shares(
        daily_aggregates(storage),
        attribution.join(features.select("customer_id"), on="customer_id", how="semi"),
        as_of,
        rules.window_days,
    )
    report = build_report(result, features, monthly)
    report_path = storage.reports_dir / "segment_report.html"
    report_path.write_text(report["html"], encoding="utf-8")
    os.chmod(report_path.parent, 0o755)  # aggregates only: shared with marketers like the mart
    os.chmod(report_path, 0o644)
    with storage.analytics() as conn:
        replace_table(conn, "customer_segments", result.customer_segments)
        replace_table(conn, "segment_catalogue", result.segment_catalogue)
    candidates = {
        str(c.k): {"silhouette": round(c.silhouette, 4), "stability": round(c.stability, 4), "chosen": c.chosen}
        for c in result.fit.candidates
    }
    yield MaterializeResult(
        asset_key=AssetKey("segment_model"),
        metadata={
            **read_from(
                analytics=storage.analytics_path, warehouse=storage.warehouse_path, metering_daily=daily_root(storage)
            ),
            "model_version": result.model_version,
            "previous_version": result.previous_version or "none",
            "k": result.fit.k,
            "selection_rule": result.fit.selection_rule,
            "candidates": MetadataValue.json(candidates),
            "segments": MetadataValue.md(report["markdown"]),
            "size_movement": MetadataValue.md(_movement_table(result.size_movement)),
            "model_path": MetadataValue.path(str(stored.path)),
            "report": MetadataValue.path(str(report_path)),
            "window": f"{window[0]} … {window[1]}",
            "profiled_customers": features.height,
        },
    )
    yield MaterializeResult(
        asset_key=AssetKey("customer_segments"),
        metadata={
            "dagster/row_count": result.customer_segments.height,
            "dagster/column_schema": schema_of_frame(result.customer_segments),
            "model_version": result.model_version,
        },
    )
    yield MaterializeResult(
        asset_key=AssetKey("segment_catalogue"),
        metadata={
            "dagster/row_count": result.segment_catalogue.height,
            "dagster/column_schema": schema_of_frame(result.segment_catalogue),
            "sizes": MetadataValue.json({str(r["segment_id"]): r["size"] for r in result.segment_catalogue.to_dicts()}),
        },
    )


EMPTY_SEGMENTS = {"customer_id": pl.String, "segment_id": pl.Int32, "model_version": pl.String, "as_of": pl.Date}
EMPTY_CATALOGUE = {
    "segment_id": pl.Int32,
    **{f"{k}_{lang}": pl.String for k in ("name", "description") for lang in LANGUAGES},
    "size": pl.Int64,
    "model_version": pl.String,
}


def _not_fitted(storage: LupaStorage, profiled: int, as_of: dt.date, needed: int):
    """Too few customers to cluster: publish no segments rather than meaningless ones."""
    with storage.analytics() as conn:
        replace_table(conn, "customer_segments", pl.DataFrame(schema=EMPTY_SEGMENTS))
        replace_table(conn, "segment_catalogue", pl.DataFrame(schema=EMPTY_CATALOGUE))
    reason = (
        f"not fitted: {profiled} profiled customers on {as_of}, "
        f"at least {needed} needed (profiling.min_customers_to_fit)"
    )
    yield MaterializeResult(
        asset_key=AssetKey("segment_model"), metadata={"status": reason, "profiled_customers": profiled}
    )
    yield MaterializeResult(
        asset_key=AssetKey("customer_segments"), metadata={"dagster/row_count": 0, "status": reason}
    )
    yield MaterializeResult(
        asset_key=AssetKey("segment_catalogue"), metadata={"dagster/row_count": 0, "status": reason}
    )


def _movement_table(movement: pl.DataFrame) -> str:
    lines = ["| segment | status | size | previous | change |", "|---:|---|---:|---:|---:|"]
    for r in movement.sort("segment_id").to_dicts():
        change = r.get("change") if r.get("change") is not None else "—"
        lines.append(
            f"| {r['segment_id']} | {r['status']} | {r.get('size') or 0} | {r.get('previous_size') or '—'} | {change} |"
        )
    return "\n".join(lines)
