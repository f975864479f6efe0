"""Ingest layer: one asset per landing-zone source, each with conservation and quarantine-rate checks."""

import datetime as dt
from collections import Counter
from dataclasses import replace

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from assets.common.calendar import run_business_day
from assets.common.conventions import (
    OWNERS,
    business_days,
    data_errors_fail_cleanly,
    io_retry,
    schema_of_contract,
    single_run,
)
from assets.common.reporting import conservation_result, counts_table, files_table, quarantine_rate_result
from assets.common.resources import PolicyResource
from assets.ingest.freshness import judge_delivery
from assets.storage import contact_retention, invoice_retention
from assets.storage.ingestion import (
    customer_identity_codes,
    keyed_by_identity_code,
    known_customer_ids,
    read_source,
    record_listings,
    stored_conservation,
    write_source,
)
from assets.storage.landing import list_files, visible_cutoff
from assets.storage.metering import (
    ingest_deliveries,
    manifest_root,
    quarantine_root,
    readings_root,
    stored_rows,
    verify_known_deliveries,
)
from assets.storage.pruning import QUARANTINE_LOG, quarantine_to_store
from assets.storage.zones import DUCKDB_POOL, LupaStorage
from data_contracts import sources
from data_contracts.contract import SourceContract
from data_contracts.vocabulary import HELSINKI

#: asset name per source: `ingest_<source>` (docs/naming.md); the contracts ingest needs the customer
#: snapshot for its orphan rule, the population ingest for returning customers' identity codes
INGEST_ASSET = {c.source: f"ingest_{c.source}" for c in sources.ALL_SOURCES.values()}
#: the sources rebuilt from every delivery whose rows retention removes: ingestion keeps those out
KEEP_UNPRUNED = {
    sources.billing.source: invoice_retention.keep_unpruned,
    sources.contacts.source: contact_retention.keep_unpruned,
}


def ingest_checks(key: str) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            "conservation",
            asset=key,
            description="for every file, rows read = rows valid + rows quarantined",
            blocking=True,
        ),
        AssetCheckSpec(
            "quarantine_rate",
            asset=key,
            description=(
                "each file of the run's own delivery (D+1) quarantines at most the policy's "
                "`data_quality.quarantine_rate_threshold` of its records"
            ),
        ),
    ]


def _per_file(quarantine) -> Counter[str]:
    return Counter(dict(quarantine.group_by("file").len().rows()))


def build_ingest_asset(contract: SourceContract, deps: tuple[str, ...] = ()):
    name = INGEST_ASSET[contract.source]

    @asset(
        name=name,
        group_name="ingest",
        owners=OWNERS,
        kinds={"polars", "duckdb"},
        pool=DUCKDB_POOL,
        deps=list(deps),
        retry_policy=io_retry,
        check_specs=ingest_checks(name),
        description=f"{contract.description} Validated against `data_contracts.sources.{contract.source}`; "
        f"valid rows go to `{contract.source}_valid`, rejected rows to `quarantine` (restricted).",
        metadata={"dagster/column_schema": schema_of_contract(contract), "semantics": contract.semantics},
    )
    @data_errors_fail_cleanly
    def _ingest(context: AssetExecutionContext, storage: LupaStorage, policy: PolicyResource) -> MaterializeResult:
        day = run_business_day(context)
        rules = policy.load()
        periods = rules.retention
        with storage.warehouse() as conn:
            reference = {"known_customer_ids": known_customer_ids(conn)} if contract is sources.contracts else {}
            pruned = KEEP_UNPRUNED[contract.source](conn, periods) if contract.source in KEEP_UNPRUNED else None
            codes = customer_identity_codes(conn) if keyed_by_identity_code(contract) else None
            outcome = read_source(storage, contract, day, reference, retention_filter=pruned, customer_codes=codes)
            # a backfill of an earlier day does not store again what the latest retention removed, but
            # a row the fail safe holds until it is resolved is stored whatever its age
            quarantine_since = QUARANTINE_LOG.kept_since(conn, periods.quarantine.cutoff, day)
            to_store = quarantine_to_store(conn, outcome.quarantine, quarantine_since)
            write_source(conn, replace(outcome, quarantine=to_store))
            if contract is sources.customers:
                record_listings(conn, outcome.valid)
            stored = stored_conservation(conn, outcome)
        # per file: quarantined records past the period, counted but deliberately not stored
        expired = _per_file(outcome.quarantine) - _per_file(to_store)
        per_file_ok = all(
            r["rows_read"] == r["stored_valid"] + r["stored_quarantined"] + expired[r["file"]]
            for r in stored.iter_rows(named=True)
        )
        return MaterializeResult(
            metadata={
                "business_day": day.isoformat(),
                "files_read": len(outcome.files),
                "rows_read": outcome.rows_read,
                "rows_valid": outcome.rows_valid,
                "rows_quarantined": outcome.rows_quarantined,
                "rows_past_retention": outcome.rows_past_retention,
                "quarantined_per_rule": counts_table(outcome.rule_counts()),
                "files": files_table(
                    [(f.file, f.rows_read, f.rows_valid, f.rows_quarantined) for f in outcome.files],
                    storage.landing,
                    contract.source,
                ),
            },
            check_results=[
                conservation_result(
                    AssetKey(name),
                    outcome.rows_read,
                    outcome.rows_valid,
                    outcome.rows_quarantined,
                    per_file_ok,
                    outcome.rows_suppressed,
                    outcome.rows_past_retention,
                ),
                quarantine_rate_result(
                    AssetKey(name),
                    # the run's own delivery (D+1); earlier files were rated by the runs they arrived for
                    [
                        (f.file, f.rows_read, f.rows_quarantined)
                        for f in outcome.files
                        if f.delivered_on == visible_cutoff(day)
                    ],
                    rules.data_quality.quarantine_rate_threshold,
                ),
            ],
        )

    return _ingest


ingest_customers = build_ingest_asset(sources.customers)
ingest_contracts = build_ingest_asset(sources.contracts, deps=(INGEST_ASSET["customers"],))
ingest_billing = build_ingest_asset(sources.billing)
ingest_consents = build_ingest_asset(sources.consents)
ingest_asml = build_ingest_asset(sources.asml)
# after the customers: a customer who returned after an erasure gets their register rows by the
# current snapshot's identity codes (assets/storage/suppression.py)
ingest_population = build_ingest_asset(sources.population, deps=(INGEST_ASSET["customers"],))
ingest_contacts = build_ingest_asset(sources.contacts)
ingest_prospects = build_ingest_asset(sources.prospects)


@asset(
    name="ingest_metering",
    group_name="ingest",
    owners=OWNERS,
    kinds={"polars", "parquet"},
    partitions_def=business_days,
    backfill_policy=single_run,
    retry_policy=io_retry,
    check_specs=ingest_checks("ingest_metering"),
    description=(
        "Datahub metering delivery for business day D (the file dated D+1), validated against "
        "`data_contracts.sources.metering` and stored as hive-partitioned Parquet per Helsinki business day. "
        "Corrections of earlier days are stored under their own day; the latest delivery wins per (point, start time)."
    ),
    metadata={"dagster/column_schema": schema_of_contract(sources.metering)},
)
@data_errors_fail_cleanly
def ingest_metering(context: AssetExecutionContext, storage: LupaStorage, policy: PolicyResource) -> MaterializeResult:
    days = list(context.partition_keys) if context.has_partition_key_range else [context.partition_key]
    read = valid = quarantined = suppressed = 0
    rules: dict[str, int] = {}
    files, corrected, missing = [], set(), []
    stored_ok = True
    business = [dt.date.fromisoformat(k) for k in days]
    # before anything is stored: a changed older delivery fails the run, naming the file
    hashed = verify_known_deliveries(storage, visible_cutoff(max(business)), {visible_cutoff(d) for d in business})
    outcomes = ingest_deliveries(storage, business)
    for key, outcome in zip(days, outcomes, strict=True):
        if outcome.file is None:
            missing.append(key)
            continue
        read, valid, quarantined = (
            read + outcome.rows_read,
            valid + outcome.rows_valid,
            quarantined + outcome.rows_quarantined,
        )
        suppressed += outcome.rows_suppressed
        for rule, n in outcome.rule_counts.items():
            rules[rule] = rules.get(rule, 0) + n
        stored_ok &= stored_rows(storage, outcome.delivered_on) == (outcome.rows_valid, outcome.rows_quarantined)
        files.append((outcome.file, outcome.rows_read, outcome.rows_valid, outcome.rows_quarantined))
        corrected.update(outcome.corrected_days)
    if missing:
        context.log.warning(f"no metering delivery for {len(missing)} business day(s): {', '.join(missing[:10])}")
    return MaterializeResult(
        metadata={
            "business_days": f"{days[0]} … {days[-1]}" if len(days) > 1 else days[0],
            "deliveries_read": len(files),
            "deliveries_missing": len(missing),
            "known_deliveries_hashed": hashed,
            "rows_read": read,
            "rows_valid": valid,
            "rows_quarantined": quarantined,
            "quarantined_per_rule": counts_table(rules),
            "corrected_days": MetadataValue.json(sorted(corrected)[-50:]),
            "files": files_table(files, storage.landing, "metering"),
            "readings": MetadataValue.path(str(readings_root(storage))),
            "quarantine": MetadataValue.path(str(quarantine_root(storage))),
            "manifests": MetadataValue.path(str(manifest_root(storage))),
        },
        check_results=[
            conservation_result(AssetKey("ingest_metering"), read, valid, quarantined, stored_ok, suppressed),
            quarantine_rate_result(
                AssetKey("ingest_metering"),
                [(f[0], f[1], f[3]) for f in files],
                policy.load().data_quality.quarantine_rate_threshold,
            ),
        ],
    )


def build_freshness_check(source: str):
    """Fails when the delivery the source owes business day D is missing, judged by the file names' dates.

    Not blocking: a missing CRM snapshot leaves the previous one in use, and holding back every
    audience for it would stop a day's publication over a stale but valid input. It alerts instead
    (`source_freshness_alert`, pipelines/automation.py). Why the file's modification time is not
    read: assets/ingest/freshness.py.
    """
    name = INGEST_ASSET[source]

    @asset_check(
        asset=name,
        name="source_freshness",
        description=(
            "A delivery dated D+1 (or within the source's cadence before it) is in the landing zone; "
            "D+1's is due at the policy's Helsinki delivery time. A missing delivery alerts."
        ),
    )
    def _freshness(
        context: AssetCheckExecutionContext, storage: LupaStorage, policy: PolicyResource
    ) -> AssetCheckResult:
        day = run_business_day(context)
        quality = policy.load().data_quality
        cadence = quality.delivery_cadence_days.get(source)
        files = list_files(storage.landing, sources.ALL_SOURCES[source], up_to=visible_cutoff(day))
        latest = files[-1] if files else None
        if cadence is None:
            return AssetCheckResult(
                passed=True,
                metadata={
                    "expectation": "event-driven: no delivery is expected on a given day",
                    "latest_delivery": latest.name if latest else "none",
                },
            )
        verdict = judge_delivery(
            day,
            [f.delivered_on for f in files],
            cadence,
            dt.time.fromisoformat(quality.expected_delivery_time),
            dt.datetime.now(tz=HELSINKI),
        )
        window = str(verdict.due_to) if verdict.due_from == verdict.due_to else f"{verdict.due_from} … {verdict.due_to}"
        metadata = {
            "expected": (
                f"a delivery dated {window} (D+1's due by {quality.expected_delivery_time} Helsinki time on D+1)"
            ),
            "latest_delivery": latest.name if latest else "none",
        }
        if verdict.problem:
            return AssetCheckResult(
                passed=False, severity=AssetCheckSeverity.ERROR, metadata=metadata | {"problem": verdict.problem}
            )
        return AssetCheckResult(passed=True, metadata=metadata)

    return _freshness


source_freshness_checks = [build_freshness_check(source) for source in sources.ALL_SOURCES]
