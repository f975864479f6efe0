"""Audiences layer: the marketing policy applied on day D, with blocking checks before publication.

Every audience asset carries three blocking checks; any failure keeps `marketing_mart` from
running, so yesterday's mart stays in place:
- `policy`: an independent re-check finds no row that breaks a rule;
- `fail_safe`: no unresolved quarantined row could have restricted this channel (names file:line);
- `size_anomaly`: the size moved less than the policy's threshold since the published mart, or a
  person confirmed the change (`lupa confirm-audience`).
"""

import datetime as dt

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from assets.common.calendar import run_business_day
from assets.common.conventions import OWNERS, data_errors_fail_cleanly, io_retry, schema_of_frame
from assets.common.reporting import counts_table, read_from
from assets.common.resources import PolicyResource
from assets.storage.mart import published_size
from assets.storage.quarantine import unresolved_blocking_rows
from assets.storage.zones import DUCKDB_POOL, LupaStorage, query, replace_table, table_exists
from data_contracts.audiences import AUDIENCE_TABLES, PROSPECT_AUDIENCE_TABLES, PROSPECT_EXCLUSIONS_TABLE
from data_contracts.vocabulary import CHANNELS
from models.audience_inputs import AudienceInputs
from models.audience_recheck import policy_violations
from models.audience_rules import build_audiences_from
from models.audience_size import size_change
from models.prospect_audiences import ProspectInputs, build_prospect_audiences
from models.prospect_recheck import prospect_violations

CHECKS = {
    "policy": "an independent re-check of every row against every rule finds no violation",
    "fail_safe": (
        "no unresolved quarantined row (ASML, VTJ, consent withdrawal, marketing contact) could have restricted "
        "this channel"
    ),
    "size_anomaly": (
        "the audience size moved less than the policy's anomaly threshold since the published mart, "
        "or a person confirmed it"
    ),
}

AUDIENCE_SPECS = [
    AssetSpec(
        AUDIENCE_TABLES[ch],
        group_name="audiences",
        owners=OWNERS,
        kinds={"polars", "duckdb"},
        deps=["customers", "consent_state", "asml_register", "contact_history", "customer_segments", "retention"],
        description=(
            f"Customers who may receive {ch} marketing on day D, each with the rule that let them in and its evidence."
        ),
    )
    for ch in CHANNELS
] + [
    AssetSpec(
        "audience_exclusions",
        group_name="audiences",
        owners=OWNERS,
        kinds={"polars", "duckdb"},
        deps=["customers", "consent_state", "asml_register", "contact_history", "retention"],
        description=(
            "Every (customer, channel, reason) that keeps a customer out of a marketing audience: "
            "all reasons, not only the first."
        ),
    ),
    AssetSpec(
        "renewal_offers",
        group_name="audiences",
        owners=OWNERS,
        kinds={"polars", "duckdb"},
        deps=["customers", "contracts", "retention"],
        description=(
            "Customer communication: household fixed-term contracts ending within the renewal window, "
            "with the chosen channel or the reason for none."
        ),
    ),
]


def _core(storage: LupaStorage, sql: str) -> pl.DataFrame:
    with storage.warehouse() as conn:
        return query(conn, sql)


def audience_inputs(storage: LupaStorage, day: dt.date) -> AudienceInputs:
    """What an audience build for day D reads (the mart's validation re-checks the published rows against it)."""
    with storage.analytics() as conn:
        segments = query(conn, "select customer_id, segment_id from customer_segments")
    asml = _core(storage, "select * from asml_register")
    population_date = _core(storage, "select max(updated_on) as d from population_register")["d"][0]
    return AudienceInputs(
        customers=_core(storage, "select * from customers"),
        consent_state=_core(storage, "select * from consent_state"),
        asml_register=asml,
        contact_history=_core(storage, "select * from contact_history"),
        segments=segments,
        contracts=_core(storage, "select * from contracts"),
        asml_date=asml["extract_date"].max() if asml.height else None,
        population_date=population_date,
    )


def confirmed_channels(storage: LupaStorage, day: dt.date) -> set[str]:
    """The channels whose size change on D a person confirmed (`lupa confirm-audience`)."""
    with storage.warehouse() as conn:
        if not table_exists(conn, "audience_confirmations"):
            return set()
        return set(
            query(conn, "select channel from audience_confirmations where business_day = $d", d=day)[
                "channel"
            ].to_list()
        )


@multi_asset(
    specs=AUDIENCE_SPECS,
    check_specs=[
        AssetCheckSpec(name, asset=AUDIENCE_TABLES[ch], description=text, blocking=True)
        for ch in CHANNELS
        for name, text in CHECKS.items()
    ],
    pool=DUCKDB_POOL,
    retry_policy=io_retry,
)
@data_errors_fail_cleanly
def audiences(context: AssetExecutionContext, storage: LupaStorage, policy: PolicyResource):
    day = run_business_day(context)
    policy = policy.load()
    inputs = audience_inputs(storage, day)
    result = build_audiences_from(inputs, policy, day)
    violations = policy_violations(result, inputs, policy, day)
    blockers = unresolved_blocking_rows(storage, day, policy)
    confirmed = confirmed_channels(storage, day)
    with storage.warehouse() as conn:
        for name, frame in result.tables().items():
            replace_table(conn, name, frame)
    summary = result.summary()
    for ch in CHANNELS:
        table = AUDIENCE_TABLES[ch]
        frame = result.audience(ch)
        yield MaterializeResult(
            asset_key=AssetKey(table),
            metadata={
                "dagster/row_count": frame.height,
                "dagster/column_schema": schema_of_frame(frame),
                "policy_version": policy.version,
                "business_day": day.isoformat(),
                **read_from(warehouse=storage.warehouse_path, analytics=storage.analytics_path),
                "excluded_per_reason": counts_table(
                    dict(
                        sorted(
                            result.audience_exclusions.filter(pl.col("channel") == ch).group_by("reason").len().rows()
                        )
                    ),
                    "reason",
                    "customers",
                ),
            },
        )
        yield from _checks(storage, table, ch, frame.height, violations, blockers, confirmed, policy.anomaly)
    yield MaterializeResult(
        asset_key=AssetKey("audience_exclusions"),
        metadata={
            "dagster/row_count": result.audience_exclusions.height,
            "dagster/column_schema": schema_of_frame(result.audience_exclusions),
            "sizes_per_channel": MetadataValue.json(summary["audience_sizes"]),
            "exclusions_per_reason": counts_table(
                dict(sorted(result.audience_exclusions.group_by("reason").len().rows())), "reason", "rows"
            ),
        },
    )
    yield MaterializeResult(
        asset_key=AssetKey("renewal_offers"),
        metadata={
            "dagster/row_count": result.renewal_offers.height,
            "dagster/column_schema": schema_of_frame(result.renewal_offers),
            "per_channel": MetadataValue.json(dict(sorted(result.renewal_offers.group_by("channel").len().rows()))),
        },
    )


def _checks(storage, table, channel, size, violations, blockers, confirmed, anomaly):
    broken = violations.filter(pl.col("table") == table) if violations.height else violations
    yield AssetCheckResult(
        asset_key=AssetKey(table),
        check_name="policy",
        passed=broken.height == 0,
        metadata={
            "violations": broken.height,
            "per_check": MetadataValue.json(dict(broken.group_by("check").len().rows()) if broken.height else {}),
        },
    )
    mine = blockers.filter(pl.col("channel") == channel) if blockers.height else blockers
    yield AssetCheckResult(
        asset_key=AssetKey(table),
        check_name="fail_safe",
        passed=mine.height == 0,
        metadata={
            "blocking_rows": mine.height,
            "rows": MetadataValue.md(
                "\n".join(
                    f"- `{r['source']}/{r['file']}`, line {r['line']}: {r['rule']}" for r in mine.head(50).to_dicts()
                )
                or "none"
            ),
        },
    )
    decision = size_change(channel, size, published_size(storage.root, table), confirmed, anomaly)
    yield AssetCheckResult(
        asset_key=AssetKey(table),
        check_name="size_anomaly",
        passed=not decision.held_back,
        metadata={
            "size": size,
            "published_size": decision.published if decision.published is not None else "none",
            "change": round(decision.change, 4) if decision.change is not None else "n/a",
            "threshold": anomaly.threshold,
            "min_change": anomaly.min_change,
            "confirmed_by_person": decision.confirmed,
        },
    )


# ---- prospects: their own audiences, the same three blocking checks --------------------------
PROSPECT_CHECKS = {
    "policy": "an independent re-check of every prospect row against every prospect rule finds no violation",
    "fail_safe": (
        "no unresolved quarantined row (a prospect's objection or withdrawal, ASML, VTJ, a marketing contact) "
        "could have restricted this channel"
    ),
    "size_anomaly": CHECKS["size_anomaly"],
}
#: `lupa confirm-audience --recipients prospects` records the channel under this prefix
PROSPECT_CONFIRMATION_PREFIX = "prospects:"

PROSPECT_SPECS = [
    AssetSpec(
        PROSPECT_AUDIENCE_TABLES[ch],
        group_name="audiences",
        owners=OWNERS,
        kinds={"polars", "duckdb"},
        deps=["prospects", "customers", "asml_register", "contact_history", "retention"],
        description=(
            f"Prospects (not customers yet) who may receive {ch} marketing on day D, each with the rule that "
            "let them in and the prospect's own consent evidence."
        ),
    )
    for ch in CHANNELS
] + [
    AssetSpec(
        PROSPECT_EXCLUSIONS_TABLE,
        group_name="audiences",
        owners=OWNERS,
        kinds={"polars", "duckdb"},
        deps=["prospects", "customers", "asml_register", "contact_history", "retention"],
        description="Every (prospect, channel, reason) that keeps a prospect out of a prospect audience.",
    )
]


def prospect_inputs(storage: LupaStorage) -> ProspectInputs:
    """What a prospect audience build reads (the mart's validation re-checks against the same)."""
    asml = _core(storage, "select * from asml_register")
    population_date = _core(storage, "select max(updated_on) as d from population_register")["d"][0]
    return ProspectInputs(
        prospects=_core(storage, "select * from prospects"),
        customers=_core(storage, "select * from customers"),
        asml_register=asml,
        contact_history=_core(storage, "select * from contact_history"),
        asml_date=asml["extract_date"].max() if asml.height else None,
        population_date=population_date,
    )


def prospect_violations_of(audiences: dict, exclusions: pl.DataFrame, inputs: ProspectInputs, policy, day):
    return prospect_violations(
        audiences,
        exclusions,
        inputs.prospects,
        inputs.customers,
        inputs.asml_register,
        inputs.contact_history,
        policy,
        day,
    )


def confirmed_prospect_channels(storage: LupaStorage, day: dt.date) -> set[str]:
    return {
        c.removeprefix(PROSPECT_CONFIRMATION_PREFIX)
        for c in confirmed_channels(storage, day)
        if c.startswith(PROSPECT_CONFIRMATION_PREFIX)
    }


CONVERSIONS_DDL = (
    "create table if not exists prospect_conversions (prospect_id varchar primary key, first_matched_on date)"
)


def record_conversions(storage: LupaStorage, conversions: pl.DataFrame, day: dt.date) -> None:
    """Remember the first day each prospect matched a customer: retention erases them after it
    (restricted; ids and dates only)."""
    with storage.warehouse() as conn:
        conn.execute(CONVERSIONS_DDL)
        conn.register("_conv", conversions.select("prospect_id", pl.lit(day).alias("d")))
        try:
            conn.execute(
                "insert into prospect_conversions select prospect_id, d from _conv on conflict (prospect_id) do update "
                "set first_matched_on = least(excluded.first_matched_on, prospect_conversions.first_matched_on)"
            )
        finally:
            conn.unregister("_conv")


@multi_asset(
    specs=PROSPECT_SPECS,
    check_specs=[
        AssetCheckSpec(name, asset=PROSPECT_AUDIENCE_TABLES[ch], description=text, blocking=True)
        for ch in CHANNELS
        for name, text in PROSPECT_CHECKS.items()
    ],
    pool=DUCKDB_POOL,
    retry_policy=io_retry,
)
@data_errors_fail_cleanly
def prospect_audiences(context: AssetExecutionContext, storage: LupaStorage, policy: PolicyResource):
    day = run_business_day(context)
    policy = policy.load()
    inputs = prospect_inputs(storage)
    result = build_prospect_audiences(inputs, policy, day)
    violations = prospect_violations_of(result.audiences, result.exclusions, inputs, policy, day)
    blockers = unresolved_blocking_rows(storage, day, policy, recipients="prospects")
    confirmed = confirmed_prospect_channels(storage, day)
    with storage.warehouse() as conn:
        for name, frame in result.tables().items():
            replace_table(conn, name, frame)
    record_conversions(storage, result.conversions, day)
    for ch in CHANNELS:
        table = PROSPECT_AUDIENCE_TABLES[ch]
        frame = result.audience(ch)
        yield MaterializeResult(
            asset_key=AssetKey(table),
            metadata={
                "dagster/row_count": frame.height,
                "dagster/column_schema": schema_of_frame(frame),
                "policy_version": policy.version,
                "business_day": day.isoformat(),
                "excluded_per_reason": counts_table(
                    dict(sorted(result.exclusions.filter(pl.col("channel") == ch).group_by("reason").len().rows())),
                    "reason",
                    "prospects",
                ),
            },
        )
        yield from _checks(storage, table, ch, frame.height, violations, blockers, confirmed, policy.anomaly)
    yield MaterializeResult(
        asset_key=AssetKey(PROSPECT_EXCLUSIONS_TABLE),
        metadata={
            "dagster/row_count": result.exclusions.height,
            "dagster/column_schema": schema_of_frame(result.exclusions),
            "sizes_per_channel": MetadataValue.json(result.summary()["audience_sizes"]),
            "exclusions_per_reason": counts_table(result.summary()["exclusions_by_reason"], "reason", "rows"),
            "matched_to_customers": result.conversions.height,
        },
    )
