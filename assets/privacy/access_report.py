"""Gathering an access report (`lupa sar`, GDPR Art. 15): everything the restricted warehouse and the
analytics zone keep about one customer, read and handed to `models.access_report` to be explained.

A customer who has been erased gets a report of what the erasure kept, and why (`build_erased_report`):
the date of the erasure, the invoices kept restricted under the Accounting Act (each with the last day
it is kept, `RetentionPolicy.invoice_kept_until`, after which the `retention` asset deletes it) and the
suppression record that keeps them from being loaded again. Nothing else is held, so nothing else is
shown: a full report would list empty sections and consent states that no longer exist.

Reads are short read-only DuckDB connections (a read-only connection still blocks a writer), and
nothing goes through Dagster: no run config, no event log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from assets.privacy.erasure import HeldAfterErasure, held_after_erasure
from assets.segments.model_store import load_model
from assets.storage import lake
from assets.storage.metering_parts import listed
from assets.storage.zones import LupaStorage, connect, query, table_exists
from data_contracts.policy import MarketingPolicy, load_policy
from data_contracts.processing_register import AccessReportError, load_processing_register
from models import access_report as content


@dataclass
class Match:
    customer_ids: list[str] = field(default_factory=list)
    #: the identity code matched only the population register (no customer record)
    register_only: bool = False
    #: nothing is held but what an erasure of this customer kept
    erased: HeldAfterErasure | None = None


@dataclass(frozen=True)
class Zones:
    warehouse: Path
    analytics: Path
    models: Path
    daily: Path

    @classmethod
    def of(cls, storage: LupaStorage) -> Zones:
        root = Path(storage.data_dir)
        return cls(
            root / "warehouse" / "warehouse.duckdb",
            root / "analytics" / "analytics.duckdb",
            root / "analytics" / "models",
            storage.metering_dir / "daily" if storage.lake_url else root / "warehouse" / "metering" / "daily",
        )


# =================================================================================================
# finding the customer
# =================================================================================================
_CUSTOMER_TABLES = (
    "customers",
    "customers_valid",
    "contracts",
    "invoices",
    "consent_events",
    "contact_history",
    "audience_history",
)


def find_customers(storage: LupaStorage, *, customer_id: str | None = None, personal_id: str | None = None) -> Match:
    """The customers held under the id or identity code. Data still held comes first; only when
    there is none does an erasure of the subject answer, with what it kept."""
    zones = Zones.of(storage)
    if not zones.warehouse.exists():
        raise AccessReportError(f"no warehouse at {zones.warehouse}: run the pipeline first")
    cid = customer_id.strip().upper() if customer_id is not None else None
    with connect(zones.warehouse, read_only=True) as conn:
        if cid is not None:
            for table in _CUSTOMER_TABLES:
                if (
                    table_exists(conn, table)
                    and conn.sql(
                        f'select count(*) from "{table}" where customer_id = $c', params={"c": cid}
                    ).fetchall()[0][0]
                ):
                    return Match([cid])
        else:
            ids: set[str] = set()
            for table in ("customers", "customers_valid"):
                if table_exists(conn, table):
                    rows = conn.sql(
                        f'select distinct customer_id from "{table}" where upper(trim(personal_id)) = $p',
                        params={"p": personal_id},
                    ).fetchall()
                    ids.update(r[0] for r in rows)
            if ids:
                return Match(sorted(ids))
            if (
                table_exists(conn, "population_register")
                and conn.sql(
                    "select count(*) from population_register where upper(trim(personal_id)) = $p",
                    params={"p": personal_id},
                ).fetchall()[0][0]
            ):
                return Match([], register_only=True)
    return Match(erased=held_after_erasure(storage, customer_id=cid, personal_id=personal_id))


# =================================================================================================
# reading the data of one customer
# =================================================================================================
def _rows(conn, sql: str, **params: Any) -> list[dict[str, Any]]:
    return query(conn, sql, **params).to_dicts()


def _one(conn, sql: str, **params: Any) -> dict[str, Any] | None:
    rows = _rows(conn, sql, **params)
    return rows[0] if rows else None


def _daily_rows(zones: Zones, periods: list[dict[str, Any]]) -> pl.DataFrame:
    """The customer's per-day metering aggregates, only inside their own attribution periods."""
    empty = pl.DataFrame(
        schema={
            "metering_point_id": pl.String,
            "business_day": pl.Date,
            "kwh_total": pl.Float64,
            "n_ok": pl.Int64,
            "n_estimated": pl.Int64,
            "n_missing": pl.Int64,
            "n_expected": pl.Int64,
        }
    )
    if not periods:
        return empty
    today = dt.date.today()
    lo = min(p["valid_from"] for p in periods)
    hi = max(p["valid_to"] or today for p in periods)
    files = []
    for path in listed(zones.daily, "business_day=*/part.parquet"):
        try:
            day = dt.date.fromisoformat(path.parent.name.split("=", 1)[1])
        except ValueError:
            continue
        if lo <= day <= hi:
            files.append(path)
    if not files:
        return empty
    points = sorted({p["metering_point_id"] for p in periods})
    lf = lake.scan_parquet(files)
    day = pl.col("business_day")
    if lf.collect_schema()["business_day"] == pl.String:
        day = day.str.to_date("%Y-%m-%d")
    daily = (
        lf.filter(pl.col("metering_point_id").is_in(points))
        .select(
            "metering_point_id",
            day.cast(pl.Date).alias("business_day"),
            "kwh_total",
            "n_ok",
            "n_estimated",
            "n_missing",
            "n_expected",
        )
        .collect()
    )
    spans = pl.DataFrame(
        {
            "metering_point_id": [p["metering_point_id"] for p in periods],
            "valid_from": [p["valid_from"] for p in periods],
            "valid_to": [p["valid_to"] or dt.date(9999, 12, 31) for p in periods],
        },
        schema={"metering_point_id": pl.String, "valid_from": pl.Date, "valid_to": pl.Date},
    )
    inside = daily.join(spans, on="metering_point_id").filter(
        pl.col("business_day").is_between(pl.col("valid_from"), pl.col("valid_to"))
    )
    return (
        inside.drop("valid_from", "valid_to")
        .unique(["metering_point_id", "business_day"])
        .sort("metering_point_id", "business_day")
    )


def _quarantined(conn, customer_id: str | None, personal_id: str | None) -> list[dict[str, Any]]:
    """Rejected records whose fields name this customer (rule and file only, never the raw record)."""
    if not table_exists(conn, "quarantine"):
        return []
    keys = [k for k in (customer_id, personal_id) if k]
    if not keys:
        return []
    return _rows(
        conn,
        "select source, file, line, rule, detail from quarantine "
        "where list_has_any(string_split(replace(raw, '\"', ''), ';'), $keys) order by source, file, line",
        keys=keys,
    )


def _analytics_rows(zones: Zones, customer_id: str, objected: bool) -> content.AnalyticsRows:
    """The customer's features and segment; every customer's features only to explain a segment,
    and never for an objector."""
    with connect(zones.analytics, read_only=True) as conn:
        has = lambda table: table_exists(conn, table)  # noqa: E731
        features = (
            _one(conn, "select * from customer_features where customer_id = $c", c=customer_id)
            if has("customer_features")
            else None
        )
        segment = (
            _one(conn, "select * from customer_segments where customer_id = $c", c=customer_id)
            if has("customer_segments")
            else None
        )
        as_of = (
            conn.sql("select max(as_of) from profiling_population").fetchall()[0][0]
            if has("profiling_population")
            else None
        )
        population = query(conn, "select * from customer_features") if (features and segment and not objected) else None
        catalogue = (
            _one(
                conn,
                "select * from segment_catalogue where segment_id = $s and model_version = $v",
                s=segment["segment_id"],
                v=segment["model_version"],
            )
            if segment and has("segment_catalogue")
            else None
        )
    return content.AnalyticsRows(features, segment, as_of, population, catalogue)


def _segment_model(models_dir: Path, version: str) -> content.SegmentModel | None:
    """The stored model of a segment; None when it cannot be read (the report then says so)."""
    try:
        stored = load_model(models_dir, version)
        pipeline = stored.pipeline()
    except (OSError, ValueError, KeyError):
        return None
    return content.SegmentModel(stored.metadata, pipeline, stored.state.segments)


def _profiling(
    zones: Zones,
    customer_id: str | None,
    current: dict | None,
    state: list[dict],
    contracts: list[dict],
    daily: pl.DataFrame,
    policy: MarketingPolicy,
) -> dict[str, Any]:
    analytics = model = None
    if customer_id is not None and zones.analytics.exists():
        analytics = _analytics_rows(zones, customer_id, content.profiling_objection(state) is not None)
        if analytics.population is not None:
            model = _segment_model(zones.models, analytics.segment["model_version"])
    return content.profiling(customer_id, current, state, contracts, daily, analytics, model, policy.profiling)


# =================================================================================================
# the reports
# =================================================================================================
def build_report(
    storage: LupaStorage,
    customer_id: str | None,
    *,
    personal_id: str | None = None,
    language: str | None = None,
    matched_by: str = "customer_id",
    generated_at: dt.datetime | None = None,
    register: dict[str, Any] | None = None,
    policy: MarketingPolicy | None = None,
) -> dict[str, Any]:
    """Everything held about one customer (or, with customer_id None, one population-register
    person found by `personal_id`), as one JSON-serialisable dict with language-neutral codes."""
    zones = Zones.of(storage)
    policy = policy or load_policy()
    register = register or load_processing_register(policy=policy)
    generated_at = (generated_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    with connect(zones.warehouse, read_only=True) as conn:
        has = lambda table: table_exists(conn, table)  # noqa: E731
        current = crm = None
        if customer_id is not None:
            current = (
                _one(conn, "select * from customers where customer_id = $c", c=customer_id)
                if has("customers")
                else None
            )
            if has("customers_valid"):
                crm = _one(
                    conn,
                    "select * from customers_valid where customer_id = $c "
                    "order by (file = $f) desc, delivered_on desc, line desc limit 1",
                    c=customer_id,
                    f=(current or {}).get("snapshot_file") or "",
                )
        pid = personal_id or (current or crm or {}).get("personal_id")
        vtj = (
            _one(conn, "select * from population_register where upper(trim(personal_id)) = upper(trim($p))", p=pid)
            if pid and has("population_register")
            else None
        )
        c = customer_id or ""

        def mine(table: str, order: str, columns: str = "*") -> list[dict[str, Any]]:
            """This customer's rows of a warehouse table (none when the table does not exist yet)."""
            return (
                _rows(conn, f'select {columns} from "{table}" where customer_id = $c order by {order}', c=c)
                if has(table)
                else []
            )

        contracts = mine("contracts", "start_date, contract_id")
        periods = mine("metering_point_attribution", "metering_point_id, valid_from")
        invoices = mine("invoices", "issued_on, invoice_id")
        events = mine("consent_events", "occurred_at, event_id")
        state = mine("consent_state", "purpose, channel nulls first")
        contacts = mine("contact_history", "sent_at, channel, campaign_id")
        history = mine("audience_history", "business_day, channel")
        latest_day = (
            conn.sql("select max(business_day) from audience_history").fetchall()[0][0]
            if has("audience_history")
            else None
        )
        exclusions = mine("audience_exclusions", "channel, reason", "channel, reason, policy_version, as_of")
        renewals = mine(
            "renewal_offers", "contract_id", "contract_id, end_date, channel, reason, policy_version, as_of"
        )
        # a campaign's plan, its released list (treated, control or left out, and why) and removals
        campaign_columns = "campaign_id, send_on, status, channel, reason"
        campaigns = {
            "planned": mine("campaign_plan", "campaign_id", "campaign_id, status, channel, reason, planned_on"),
            "released": mine("campaign_release_list", "send_on, campaign_id", campaign_columns),
            "removed": mine("campaign_removals", "removed_on, campaign_id", "campaign_id, removed_on, reason"),
        }
        rejected = _quarantined(conn, customer_id, pid)
        latest_delivery = (
            conn.sql("select max(delivered_on) from file_registry").fetchall()[0][0] if has("file_registry") else None
        )

    daily = _daily_rows(zones, periods)
    invoices = content.with_days_late(invoices)
    profiling = _profiling(zones, customer_id, current, state, contracts, daily, policy)
    return {
        "report": {
            "kind": "gdpr_art15_access_report",
            "generated_at": generated_at,
            "language": language or (current or crm or {}).get("language") or "fi",
            "customer_id": customer_id,
            "matched_by": matched_by,
            "in_current_customer_register": current is not None,
            "register_only": customer_id is None,
            "erased": False,
            "latest_delivery_processed": latest_delivery,
            "audiences_as_of": latest_day,
            "policy_version": policy.version,
            "processing_register_version": register["version"],
        },
        "identity": content.identity(current, crm, vtj) if (current or crm) else [],
        "population_register": vtj,
        "contracts": contracts,
        "metering_points": content.metering_points(periods, contracts),
        "consumption_monthly": content.monthly_consumption(daily),
        "invoices": {
            "items": invoices,
            "summary": content.invoice_summary(invoices),
            "payment_features": profiling.pop("payment_features"),
        },
        "consents": {"events": events, "state": state, "marketing_channels": content.channel_state(state, policy)},
        "profiling": profiling,
        "audiences": {
            "history": content.audience_history(history, latest_day, profiling["objected"]),
            "exclusions": exclusions,
            "renewal_offers": renewals,
        },
        "contact_history": contacts,
        "campaigns": campaigns,
        "rejected_records": rejected,
        "processing": content.processing_summary(register),
    }


def build_erased_report(
    held: HeldAfterErasure,
    *,
    language: str | None = None,
    matched_by: str = "customer_id",
    generated_at: dt.datetime | None = None,
    register: dict[str, Any] | None = None,
    policy: MarketingPolicy | None = None,
) -> dict[str, Any]:
    """The report for an erased customer: when the erasure was, and exactly what it kept and why.
    Their language was erased with them, so it is the one asked for, or Finnish."""
    policy = policy or load_policy()
    register = register or load_processing_register(policy=policy)
    invoice_rule = next(r for r in register["retention"] if r["id"] == "invoices")
    invoices = [
        {k: v for k, v in inv.items() if k not in ("customer_id", "retention_basis")}
        | {"kept_until": policy.retention.invoice_kept_until(inv["issued_on"])}
        for inv in held.invoices
    ]
    return {
        "report": {
            "kind": "gdpr_art15_access_report",
            "generated_at": (generated_at or dt.datetime.now(dt.UTC)).replace(microsecond=0),
            "language": language or "fi",
            "customer_id": held.customer_id,
            "matched_by": matched_by,
            "erased": True,
            "policy_version": policy.version,
            "processing_register_version": register["version"],
        },
        "erasure": {
            "erased_on": held.erased_on,
            "retained_invoices": {
                "items": invoices,
                "restricted": True,
                "retention": {k: invoice_rule[k] for k in ("name", "period", "after", "period_source")},
                "kept_until": max((i["kept_until"] for i in invoices), default=None),
            },
            "suppression_record": {
                "erased_on": held.erased_on,
                "pseudonyms": held.pseudonyms,
                "metering_point_periods": held.metering_point_periods,
                "kept_until": None,
            },
        },
        "processing": {
            "version": register["version"],
            "controller": register["controller"],
            "rights": register["rights"],
        },
    }
