"""Publish layer: the marketing mart, validated as a whole and swapped in atomically."""

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import duckdb
import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetSpec,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.audiences.assets import (
    audience_inputs,
    confirmed_channels,
    confirmed_prospect_channels,
    prospect_inputs,
    prospect_violations_of,
)
from assets.common.calendar import run_business_day
from assets.common.conventions import OWNERS, data_errors_fail_cleanly, io_retry, schema_of_frame
from assets.common.reporting import counts_table
from assets.common.resources import PolicyResource
from assets.storage.mart import (
    NewerMartPublished,
    exports_link,
    mart_path,
    publish,
    published_as_of,
    published_size,
    without_erased,
)
from assets.storage.quarantine import unresolved_blocking_rows
from assets.storage.zones import DUCKDB_POOL, LupaStorage, query
from data_contracts.audiences import AUDIENCE_TABLES, PROSPECT_AUDIENCE_TABLES, PROSPECT_EXCLUSIONS_TABLE
from data_contracts.contract import ContractViolation
from data_contracts.policy import MarketingPolicy
from data_contracts.published import (
    PublishedContractError,
    contains_personal_id,
    prospect_published_schemas,
    published_schemas,
    validate_published,
)
from data_contracts.vocabulary import CHANNELS
from models.audience_inputs import AudienceInputs, AudienceResult
from models.audience_recheck import policy_violations
from models.audience_size import SizeChange, held_back
from models.prospect_audiences import ProspectInputs

WAREHOUSE_TABLES = [*AUDIENCE_TABLES.values(), "audience_exclusions", "renewal_offers"]
#: the prospects' own tables, published beside the customer audiences (decisions §24)
PROSPECT_TABLES = [*PROSPECT_AUDIENCE_TABLES.values(), PROSPECT_EXCLUSIONS_TABLE]
ANALYTICS_TABLES = ["customer_segments", "segment_catalogue"]

#: Declared here, in the one layer that writes it: `marketing_mart` appends the day's published
#: audiences once its mart swap succeeded and records the materialization then. An audience held back
#: by a check, or a re-run of an older day that keeps the later mart, is never recorded.
audience_history = AssetSpec(
    "audience_history",
    group_name="publish",
    owners=OWNERS,
    kinds={"duckdb"},
    deps=["marketing_mart"],
    description=(
        "Restricted, append-only: who was in which published audience on which day, with the legal basis, the "
        "admission rule and the deciding consent event's evidence (the access report and audits read it). "
        "Appended by `marketing_mart` after each successful publication."
    ),
)


@dataclass(frozen=True)
class ProspectValidation:
    """What the mart's validation needs to re-check the staged prospect tables (the same three
    decisions as the customer audiences': re-check, fail safe, size)."""

    safety_ban_ids: list[str]
    inputs: ProspectInputs | None = None
    blockers: pl.DataFrame | None = None
    published_sizes: Mapping[str, int | None] | None = None
    confirmed: Iterable[str] = ()


def validate_mart(
    path,
    safety_ban_ids: list[str],
    *,
    day: dt.date | None = None,
    inputs: AudienceInputs | None = None,
    blockers: pl.DataFrame | None = None,
    published_sizes: Mapping[str, int | None] | None = None,
    confirmed: Iterable[str] = (),
    policy: MarketingPolicy,
    prospects: ProspectValidation | None = None,
) -> None:
    """Re-open the staged file and check what would be published; raise to refuse publication.

    Every table is checked against its published contract. With `day` and `inputs`, the staged
    audiences are also re-checked against every rule of the policy (`policy_violations`), and with
    `blockers`, no unresolved quarantined row may restrict contact (the fail-safe). With
    `published_sizes` (rows per channel in the mart being replaced) and `confirmed` (the channels a
    person confirmed for D), no audience may move by more than the policy's anomaly rule allows
    (`models.audience_size.held_back`, the `size_anomaly` check's decision). Materialising
    `marketing_mart` alone (say, from the UI) skips the audiences' blocking checks: these are the
    same checks, run on the very rows about to be published. Errors give counts, never values.
    """
    schemas = published_schemas(policy, safety_ban_ids)
    staged = _staged_and_valid(path, schemas)
    if blockers is not None and blockers.height:
        raise ContractViolation(_fail_safe_refusal(blockers))
    if day is not None and inputs is not None:
        result = AudienceResult(
            **{AUDIENCE_TABLES[ch]: staged[AUDIENCE_TABLES[ch]] for ch in CHANNELS},
            audience_exclusions=staged["audience_exclusions"],
            renewal_offers=staged["renewal_offers"],
            policy_version=policy.version,
            as_of=day,
        )
        violations = policy_violations(result, inputs, policy, day)
        if violations.height:
            raise ContractViolation(_policy_refusal(violations))
    if published_sizes is not None:
        sizes = {ch: staged[AUDIENCE_TABLES[ch]].height for ch in CHANNELS}
        jumped = held_back(sizes, published_sizes, confirmed, policy.anomaly)
        if jumped:
            raise ContractViolation(_size_anomaly_refusal(jumped, day, policy))
    if prospects is not None:
        validate_prospect_tables(path, prospects, day=day, policy=policy)


def _staged_and_valid(path, schemas: dict) -> dict[str, pl.DataFrame]:
    """Read each staged table of the new mart and check it against its published contract and for
    identity-code-shaped values. Raises ContractViolation (counts and names, never values)."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        staged = {}
        for table, schema in schemas.items():
            frame = query(conn, f'select * from "{table}"')
            try:
                validate_published(table, frame, schema)
            except PublishedContractError as exc:
                raise ContractViolation(str(exc)) from None
            if contains_personal_id(frame):
                raise ContractViolation(f"{table}: a value shaped like a personal identity code would be published")
            staged[table] = frame
    finally:
        conn.close()
    return staged


def validate_prospect_tables(path, checks: ProspectValidation, *, day: dt.date | None, policy: MarketingPolicy) -> None:
    """The staged prospect tables against their contracts, the independent re-check, the prospects'
    fail safe and the size rule. Raises to refuse publication; counts, never values."""
    schemas = prospect_published_schemas(policy, checks.safety_ban_ids)
    staged = _staged_and_valid(path, schemas)
    if not staged:
        return
    if checks.blockers is not None and checks.blockers.height:
        raise ContractViolation(
            _fail_safe_refusal(checks.blockers).replace("marketing mart", "marketing mart (prospects)")
        )
    if day is not None and checks.inputs is not None:
        audiences = {ch: staged[PROSPECT_AUDIENCE_TABLES[ch]] for ch in CHANNELS}
        violations = prospect_violations_of(audiences, staged[PROSPECT_EXCLUSIONS_TABLE], checks.inputs, policy, day)
        if violations.height:
            raise ContractViolation(_policy_refusal(violations).replace("marketing mart", "marketing mart (prospects)"))
    if checks.published_sizes is not None:
        sizes = {ch: staged[PROSPECT_AUDIENCE_TABLES[ch]].height for ch in CHANNELS}
        jumped = held_back(sizes, checks.published_sizes, checks.confirmed, policy.anomaly)
        if jumped:
            raise ContractViolation(
                _size_anomaly_refusal(jumped, day, policy).replace("--channel", "--recipients prospects --channel")
            )


def _policy_refusal(violations: pl.DataFrame) -> str:
    per = violations.group_by("table", "check").len().sort("table", "check").rows()
    listed = "; ".join(f"{table} {check}: {n}" for table, check, n in per)
    return (
        f"marketing mart not published: the policy check found {violations.height} row(s) breaking a rule ({listed}). "
        "This is a bug in the audience build; yesterday's mart stays in place."
    )


def _fail_safe_refusal(blockers: pl.DataFrame) -> str:
    per = blockers.group_by("channel", "rule").len().sort("channel", "rule").rows()
    listed = "; ".join(f"{channel} {rule}: {n}" for channel, rule, n in per)
    rows = blockers.select("source", "file", "line", "rule").unique().sort("source", "file", "line")
    where = ", ".join(f"{r['source']}/{r['file']} line {r['line']}" for r in rows.head(10).to_dicts())
    more = f" and {rows.height - 10} more" if rows.height > 10 else ""
    return (
        f"marketing mart not published: the fail_safe check found {rows.height} unresolved quarantined row(s) "
        f"that could restrict contact ({listed}) at {where}{more}. Resolve them (lupa resolve-quarantine) "
        "or have the source re-deliver."
    )


def _size_anomaly_refusal(jumped: list[SizeChange], day: dt.date | None, policy: MarketingPolicy) -> str:
    listed = "; ".join(
        f"{c.channel}: {c.published} → {c.size} customers" + (f" ({c.change:+.0%})" if c.change is not None else "")
        for c in jumped
    )
    date = day.isoformat() if day is not None else "D"
    return (
        f"marketing mart not published: the size_anomaly check holds back {len(jumped)} audience(s) that moved by more "
        f"than the policy allows (±{policy.anomaly.threshold:.0%}, at least {policy.anomaly.min_change} customers) "
        f"since the published mart ({listed}). Find the cause; when the change is real, confirm it "
        f"(lupa confirm-audience --date {date} --channel {jumped[0].channel} --note TEXT, once per channel) and "
        "re-run. The published mart stays in place."
    )


#: What audience_history keeps of each audience row beyond who, where and when: the admission rule and
#: the deciding consent event's evidence, so that years later the row still proves why the customer
#: could be contacted (the audience tables themselves are replaced every day). Opt-out rows have no
#: deciding event: their evidence columns are null. Columns added after the table's first version, so
#: `migrate_audience_history` adds them to an existing warehouse, where old rows keep nulls.
HISTORY_PROOF_COLUMNS: dict[str, str] = {
    "rule": "VARCHAR",
    "consent_event_id": "VARCHAR",
    "consent_occurred_at": "TIMESTAMPTZ",
    "consent_source": "VARCHAR",
    "consent_wording_version": "VARCHAR",
    "consent_evidence_ref": "VARCHAR",
}


def history_rows(day: dt.date, audiences: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The audience_history rows of day D: one per (channel, customer) in the audience of each channel,
    with the row's legal basis, rule and consent evidence exactly as published."""
    return pl.concat(
        [
            audiences[ch].select(
                pl.lit(day, pl.Date).alias("business_day"),
                pl.lit(ch, pl.String).alias("channel"),
                "customer_id",
                "segment_id",
                "legal_basis",
                "policy_version",
                *HISTORY_PROOF_COLUMNS,
            )
            for ch in CHANNELS
        ]
    )


def migrate_audience_history(conn: duckdb.DuckDBPyConnection) -> None:
    """Add the proof columns to an audience_history created before they existed.

    The table is append-only and holds years of rows, so it is altered in place, never rebuilt: an old
    warehouse keeps working and its old rows keep nulls (what was not recorded then cannot be invented
    now). Idempotent; a no-op while the table does not exist yet."""
    exists = conn.execute(
        "select count(*) from information_schema.tables where table_name = 'audience_history' "
        "and table_catalog = current_database() and table_schema = current_schema()"
    ).fetchall()[0][0]
    if not exists:
        return
    for name, sql_type in HISTORY_PROOF_COLUMNS.items():
        conn.execute(f'alter table audience_history add column if not exists "{name}" {sql_type}')


def append_audience_history(storage: LupaStorage, day: dt.date, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Record who was in which published audience on day D, and on what evidence (restricted, append-only).

    Called only after the mart swap succeeded, under the publish lock. A re-run of the same day
    replaces that day's rows; other days are never touched. Customers the suppression records name
    are dropped once more right here (`without_erased`): an erasure recorded since the swap has
    already deleted their history, and must not find it appended again."""
    history, _ = without_erased(
        storage.root, {"audience_history": history_rows(day, {ch: tables[AUDIENCE_TABLES[ch]] for ch in CHANNELS})}
    )
    history = history["audience_history"]
    with storage.warehouse() as conn:
        conn.register("_history", history)
        try:
            conn.execute("begin transaction")
            migrate_audience_history(conn)
            conn.execute("create table if not exists audience_history as select * from _history limit 0")
            conn.execute("delete from audience_history where business_day = $d", {"d": day})
            conn.execute("insert into audience_history by name select * from _history")
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
        finally:
            conn.unregister("_history")
    return history


@asset(
    group_name="publish",
    owners=OWNERS,
    kinds={"duckdb", "parquet"},
    pool=DUCKDB_POOL,
    # after retention, which erases former customers from the tables read here
    deps=[*WAREHOUSE_TABLES, *PROSPECT_TABLES, *ANALYTICS_TABLES, "retention"],
    retry_policy=io_retry,
    # the mart is due every morning after the 06:00 run: warn after 25 hours, fail after 26
    freshness_policy=FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=25)
    ),
    description=(
        "marketing.duckdb plus Parquet exports and Excel-ready CSVs (UTF-8 BOM, `;`) for every audience: built as a "
        "new file, validated against the published contracts, the policy check, the fail-safe and the size anomaly "
        "rule, then renamed into place; then the day's rows are appended to audience_history. Runs only when every "
        "audience's blocking checks "
        "(policy, fail_safe, size_anomaly) passed. A run for a day older than the published mart keeps that mart "
        "(published: false)."
    ),
)
@data_errors_fail_cleanly
def marketing_mart(context: AssetExecutionContext, storage: LupaStorage, policy: PolicyResource) -> MaterializeResult:
    day = run_business_day(context)
    kept = published_as_of(storage.root)
    if kept is not None and kept > day:  # checked again under the publish lock
        return _kept(context, storage, day, kept)
    policy = policy.load()
    with storage.warehouse() as conn:
        tables = {name: query(conn, f'select * from "{name}"') for name in WAREHOUSE_TABLES + PROSPECT_TABLES}
        safety_ban_ids = query(conn, "select customer_id from customers where safety_ban")["customer_id"].to_list()
        prospect_bans = query(conn, "select prospect_id from prospects where safety_ban")["prospect_id"].to_list()
    with storage.analytics() as conn:
        tables |= {name: query(conn, f'select * from "{name}"') for name in ANALYTICS_TABLES}

    def validate(path) -> None:
        validate_mart(
            path,
            safety_ban_ids,
            day=day,
            inputs=audience_inputs(storage, day),
            blockers=unresolved_blocking_rows(storage, day, policy),
            # read under the publish lock: the sizes of the mart this one would replace
            published_sizes={ch: published_size(storage.root, AUDIENCE_TABLES[ch]) for ch in CHANNELS},
            confirmed=confirmed_channels(storage, day),
            policy=policy,
            prospects=ProspectValidation(
                prospect_bans,
                inputs=prospect_inputs(storage),
                blockers=unresolved_blocking_rows(storage, day, policy, recipients="prospects"),
                published_sizes={ch: published_size(storage.root, PROSPECT_AUDIENCE_TABLES[ch]) for ch in CHANNELS},
                confirmed=confirmed_prospect_channels(storage, day),
            ),
        )

    recorded: dict = {}

    def record_history(published: dict[str, pl.DataFrame], erased_since_read: int) -> None:
        # under the publish lock, right after the swap: no erasure can republish in between
        recorded.update(
            tables=published,
            erased_since_read=erased_since_read,
            history=append_audience_history(storage, day, published),
        )

    try:
        counts = publish(
            storage.root,
            tables,
            tag=day.isoformat(),
            validate=validate,
            as_of=day,
            after_swap=record_history,
            lake_exports=storage.lake_exports,
        )
    except NewerMartPublished as newer:
        return _kept(context, storage, day, newer.kept_as_of)
    history, tables = recorded["history"], recorded["tables"]
    context.log_event(
        AssetMaterialization(
            asset_key="audience_history",
            description="the published audiences of the day, appended after the mart swap",
            metadata={
                "business_day": day.isoformat(),
                "rows_for_day": history.height,
                "dagster/column_schema": schema_of_frame(history),
            },
        )
    )
    exclusions = tables["audience_exclusions"]
    return MaterializeResult(
        metadata={
            "business_day": day.isoformat(),
            "published": True,
            "audience_sizes": counts_table(
                {ch: counts[AUDIENCE_TABLES[ch]] for ch in CHANNELS}, "channel", "customers"
            ),
            "exclusions_per_reason": counts_table(
                dict(sorted(exclusions.group_by("reason").len().rows())), "reason", "rows"
            ),
            "renewal_offers": counts["renewal_offers"],
            "prospect_audience_sizes": counts_table(
                {ch: counts[PROSPECT_AUDIENCE_TABLES[ch]] for ch in CHANNELS}, "channel", "prospects"
            ),
            "prospect_exclusions_per_reason": counts_table(
                dict(sorted(tables[PROSPECT_EXCLUSIONS_TABLE].group_by("reason").len().rows())), "reason", "rows"
            ),
            "segments": counts["segment_catalogue"],
            "audience_history_rows": history.height,
            # customers erased after this run read the warehouse, kept out of the mart and history (a count only)
            "erased_since_read": recorded["erased_since_read"],
            "mart": MetadataValue.path(str(mart_path(storage.root))),
            "exports": MetadataValue.path(str(storage.lake_exports or exports_link(storage.root))),
        }
    )


def _kept(context: AssetExecutionContext, storage: LupaStorage, day: dt.date, kept: dt.date) -> MaterializeResult:
    """A re-run or backfill of an older day never replaces a later mart (it would bring back customers
    who withdrew consent since): nothing is published and audience_history is not touched."""
    context.log.warning(
        f"marketing_mart for {day.isoformat()} not published: the published mart is as of {kept.isoformat()}, "
        "a later business day; "
        "it is kept in place, and audience_history is unchanged. Re-run the latest day to publish corrections."
    )
    return MaterializeResult(
        metadata={
            "business_day": day.isoformat(),
            "published": False,
            "kept_mart_as_of": kept.isoformat(),
            "reason": f"the published mart is as of {kept.isoformat()}, later than {day.isoformat()}",
            "mart": MetadataValue.path(str(mart_path(storage.root))),
        }
    )
