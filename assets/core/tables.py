"""Core current-state tables, built from the ingest layer's valid rows (`<source>_valid`).

Each builder is a plain function on a DuckDB connection (or polars frames) so it is testable
without Dagster. The semantics come from `landing-zone.md`: snapshots replace, invoices upsert,
consent events append and resolve by time, VTJ rows carry state forward.
"""

from __future__ import annotations

import polars as pl

from data_contracts.identifiers import birth_date, email_normalised, map_distinct, phone_e164
from data_contracts.vocabulary import CHANNELS


def population_register(population_valid: pl.DataFrame) -> pl.DataFrame:
    """Carry VTJ state forward per person.

    Flags come from the latest row (latest updated_on; on a tie, the later delivery, then the
    later line). Empty address columns mean "no change", so the address is the one from the
    latest row that had one. A recorded death is never undone by a later row without one.
    """
    ordered = population_valid.sort("updated_on", "delivered_on", "line")
    has_address = pl.col("street_address").is_not_null()
    return (
        ordered.group_by("personal_id", maintain_order=True)
        .agg(
            pl.col("deceased_on").drop_nulls().last(),
            (pl.col("marketing_ban") == "1").last().alias("marketing_ban"),
            (pl.col("safety_ban") == "1").last().alias("safety_ban"),
            pl.col("street_address").filter(has_address).last(),
            pl.col("postal_code").filter(has_address).last(),
            pl.col("city").filter(has_address).last(),
            pl.col("updated_on").last(),
        )
        .sort("personal_id")
    )


def customers(snapshot: pl.DataFrame, register: pl.DataFrame) -> pl.DataFrame:
    """The CRM snapshot merged with VTJ: VTJ's address wins, a safety ban suppresses every address."""
    vtj = register.rename({c: f"vtj_{c}" for c in register.columns if c != "personal_id"})
    merged = snapshot.join(vtj, on="personal_id", how="left")
    banned = pl.col("vtj_safety_ban").fill_null(False)
    use_vtj = pl.col("vtj_street_address").is_not_null()

    def address(column: str) -> pl.Expr:
        return (
            pl.when(banned)
            .then(None)
            .when(use_vtj)
            .then(pl.col(f"vtj_{column}"))
            .otherwise(pl.col(column))
            .alias(column)
        )

    email = map_distinct(pl.col("email"), email_normalised, pl.String())
    e164 = map_distinct(pl.col("phone"), lambda v: phone_e164(v)[0], pl.String())
    mobile = map_distinct(pl.col("phone"), lambda v: phone_e164(v)[1], pl.Boolean())
    return merged.select(
        "customer_id",
        "customer_type",
        "personal_id",
        "business_id",
        "first_name",
        "last_name",
        "company_name",
        "language",
        email.alias("email"),
        pl.when(pl.col("email").is_null())
        .then(pl.lit("absent"))
        .when(email.is_null())
        .then(pl.lit("invalid"))
        .otherwise(pl.lit("valid"))
        .alias("email_status"),
        e164.alias("phone_e164"),
        pl.when(pl.col("phone").is_null())
        .then(pl.lit("absent"))
        .when(e164.is_null())
        .then(pl.lit("invalid"))
        .otherwise(pl.lit("valid"))
        .alias("phone_status"),
        mobile.fill_null(False).alias("phone_is_mobile"),
        address("street_address"),
        address("postal_code"),
        address("city"),
        pl.when(banned)
        .then(pl.lit("suppressed"))
        .when(use_vtj)
        .then(pl.lit("vtj"))
        .when(pl.col("street_address").is_not_null())
        .then(pl.lit("crm"))
        .otherwise(pl.lit("absent"))
        .alias("address_source"),
        map_distinct(pl.col("personal_id"), birth_date, pl.Date()).alias("birth_date"),
        "customer_since",
        "ended_on",
        pl.col("vtj_deceased_on").alias("deceased_on"),
        pl.col("vtj_marketing_ban").fill_null(False).alias("marketing_ban"),
        banned.alias("safety_ban"),
        pl.col("vtj_updated_on").alias("vtj_updated_on"),
        pl.col("file").alias("snapshot_file"),
    ).sort("customer_id")


CONTRACTS_SQL = """
select contract_id, customer_id, metering_point_id, product_code, contract_type, start_date, end_date,
       site_type, heating, file as snapshot_file
from contracts_valid order by contract_id
"""

ATTRIBUTION_SQL = """
select metering_point_id, customer_id, contract_id, start_date as valid_from, end_date as valid_to
from contracts_valid order by metering_point_id, start_date
"""

INVOICES_SQL = """
select invoice_id, customer_id, contract_id, issued_on, due_on, amount_eur::decimal(12, 2) as amount_eur,
       paid_on, reminders, in_collection = '1' as in_collection, file as delivery_file
from billing_valid
qualify row_number() over (partition by invoice_id order by delivered_on desc, line desc) = 1
order by invoice_id
"""

CONSENT_EVENTS_SQL = """
select event_id, customer_id, purpose, channel, action, occurred_at, source, wording_version, evidence_ref, file, line
from consents_valid
qualify row_number() over (partition by event_id order by delivered_on, line) = 1
order by occurred_at, event_id
"""

# Per (customer, purpose, channel): the latest occurred_at among that channel's own events and the
# all-channel ones; a tie at the same instant resolves to withdrawn. File order never decides.
# The state is the state on the run's day D: only events that occurred by the end of D (Helsinki)
# count, `$day_end` = `end_of_business_day(D)`. The files of D+1 may hold events of D+1's early
# hours; they are in the log (`consent_events`) and count from D+1 on, so a grant made on D+1 can
# neither put a customer into D's audience nor override a withdrawal made on D.
CONSENT_STATE_SQL = f"""
with events as (select * from ({CONSENT_EVENTS_SQL}) where occurred_at < $day_end),
channels(channel) as (values {", ".join(f"('{c}')" for c in CHANNELS)}),
expanded as (
    select e.*, c.channel as effective_channel, e.channel is null as all_channel_event
    from events e join channels c on e.channel is null or e.channel = c.channel
    where e.purpose in ('marketing', 'newsletter')
    union all
    select e.*, null as effective_channel, true as all_channel_event from events e where e.purpose = 'profiling'
)
select customer_id, purpose, effective_channel as channel, action as state, event_id, occurred_at,
       source, wording_version, evidence_ref, all_channel_event
from expanded
qualify row_number() over (
    partition by customer_id, purpose, effective_channel
    order by occurred_at desc, (action = 'withdrawn') desc, event_id desc) = 1
order by customer_id, purpose, channel nulls first
"""

CONTACT_HISTORY_SQL = """
select customer_id, channel, campaign_id, kind, sent_at
from contacts_valid
qualify row_number() over (partition by customer_id, channel, campaign_id, sent_at order by delivered_on, line) = 1
order by sent_at, customer_id, channel, campaign_id
"""


def prospects(prospects_valid: pl.DataFrame, register: pl.DataFrame) -> pl.DataFrame:
    """The prospect state: the latest row per prospect_id (latest updated_on; on a tie, the later
    delivery, then the later line), with the VTJ flags where the register knows the person.

    Contacts are typed as for customers (an invalid one is unusable, the row stays). A safety ban
    suppresses the address, as it does a customer's.
    """
    latest = (
        prospects_valid.sort("updated_on", "delivered_on", "line").group_by("prospect_id", maintain_order=True).last()
    )
    vtj = register.select(
        "personal_id",
        pl.col("deceased_on"),
        pl.col("marketing_ban").alias("vtj_marketing_ban"),
        pl.col("safety_ban").alias("vtj_safety_ban"),
        pl.col("updated_on").alias("vtj_updated_on"),
    )
    merged = latest.join(vtj, on="personal_id", how="left")
    banned = pl.col("vtj_safety_ban").fill_null(False)
    email = map_distinct(pl.col("email"), email_normalised, pl.String())
    e164 = map_distinct(pl.col("phone"), lambda v: phone_e164(v)[0], pl.String())
    mobile = map_distinct(pl.col("phone"), lambda v: phone_e164(v)[1], pl.Boolean())

    def status(raw: str, parsed: pl.Expr) -> pl.Expr:
        return (
            pl.when(pl.col(raw).is_null())
            .then(pl.lit("absent"))
            .when(parsed.is_null())
            .then(pl.lit("invalid"))
            .otherwise(pl.lit("valid"))
        )

    return merged.select(
        "prospect_id",
        "source",
        "collected_on",
        "updated_on",
        "first_name",
        "last_name",
        "personal_id",
        map_distinct(pl.col("personal_id"), birth_date, pl.Date()).alias("birth_date"),
        *[pl.when(banned).then(None).otherwise(pl.col(c)).alias(c) for c in ("street_address", "postal_code", "city")],
        email.alias("email"),
        status("email", email).alias("email_status"),
        e164.alias("phone_e164"),
        status("phone", e164).alias("phone_status"),
        mobile.fill_null(False).alias("phone_is_mobile"),
        "language",
        "email_consent",
        "sms_consent",
        (pl.col("marketing_objection") == "1").alias("marketing_objection"),
        "wording_version",
        "evidence_ref",
        "deceased_on",
        pl.col("vtj_marketing_ban").fill_null(False).alias("marketing_ban"),
        banned.alias("safety_ban"),
        "vtj_updated_on",
        "file",
    ).sort("prospect_id")
