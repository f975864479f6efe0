"""The nine landing-zone sources, each declared once as a SourceContract (see `landing-zone.md`).

Field rules come from the declarations; the few rules that look at several fields, at other rows
(duplicates) or at other sources (orphans) are listed explicitly under `rules`. Reference data
for the orphan rule arrives through the `context` mapping (`known_customer_ids`).
"""

from __future__ import annotations

import polars as pl

from data_contracts.contract import Field, Rule, SourceContract
from data_contracts.identifiers import (
    business_id_canonical,
    business_id_problem,
    email_canonical,
    gsrn_problem,
    personal_id_canonical,
    personal_id_problem,
    phone_canonical,
)
from data_contracts.vocabulary import CHANNELS, LANGUAGES, end_of_business_day

DATE = "date"
TIMESTAMP = "timestamp"
FLAG = ("0", "1")

customers = SourceContract(
    source="customers",
    file_prefix="customers",
    semantics="snapshot",
    description="CRM full snapshot: the latest delivery on or before D+1 is the customer base.",
    fields=(
        Field("customer_id", pattern=r"^C\d{7}$"),
        Field("customer_type", allowed=("person", "company")),
        Field("personal_id", required=False, validator=personal_id_problem, canonical=personal_id_canonical),
        Field("business_id", required=False, validator=business_id_problem, canonical=business_id_canonical),
        Field("first_name", required=False),
        Field("last_name", required=False),
        Field("company_name", required=False),
        Field("language", allowed=LANGUAGES),
        Field("email", required=False, canonical=email_canonical),
        Field("phone", required=False, canonical=phone_canonical),
        Field("street_address", required=False),
        Field("postal_code", required=False, pattern=r"^\d{5}$"),
        Field("city", required=False),
        Field("customer_since", DATE),
        Field("ended_on", DATE, required=False),
    ),
    rules=(
        Rule(
            "duplicate_customer_id",
            "customer_id appears more than once in the snapshot",
            lambda _: pl.col("customer_id").is_duplicated(),
        ),
        Rule(
            "person_without_personal_id",
            "a person needs a personal_id and no business_id",
            lambda _: (
                (pl.col("customer_type") == "person")
                & (pl.col("personal_id").is_null() | pl.col("business_id").is_not_null())
            ),
        ),
        Rule(
            "company_without_business_id",
            "a company needs a business_id and no personal_id",
            lambda _: (
                (pl.col("customer_type") == "company")
                & (pl.col("business_id").is_null() | pl.col("personal_id").is_not_null())
            ),
        ),
        Rule(
            "person_without_name",
            "a person needs first_name and last_name",
            lambda _: (
                (pl.col("customer_type") == "person") & (pl.col("first_name").is_null() | pl.col("last_name").is_null())
            ),
        ),
        Rule(
            "company_without_name",
            "a company needs company_name",
            lambda _: (pl.col("customer_type") == "company") & pl.col("company_name").is_null(),
        ),
        Rule(
            "ended_before_start",
            "ended_on is before customer_since",
            lambda _: pl.col("ended_on") < pl.col("customer_since"),
        ),
    ),
)

contracts = SourceContract(
    source="contracts",
    file_prefix="contracts",
    semantics="snapshot",
    description="Contract full snapshot: which customer holds which metering point, and when.",
    fields=(
        Field("contract_id"),
        Field("customer_id", pattern=r"^C\d{7}$"),
        Field("metering_point_id", validator=gsrn_problem),
        Field("product_code"),
        Field("contract_type", allowed=("fixed_term", "open_ended")),
        Field("start_date", DATE),
        Field("end_date", DATE, required=False),
        Field("site_type", allowed=("apartment", "row_house", "detached_house", "summer_cottage")),
        Field("heating", required=False, allowed=("district", "electric", "heat_pump", "other")),
    ),
    rules=(
        Rule(
            "duplicate_contract_id",
            "contract_id appears more than once in the snapshot",
            lambda _: pl.col("contract_id").is_duplicated(),
        ),
        Rule(
            "fixed_term_without_end",
            "a fixed_term contract needs end_date",
            lambda _: (pl.col("contract_type") == "fixed_term") & pl.col("end_date").is_null(),
        ),
        Rule("end_before_start", "end_date is before start_date", lambda _: pl.col("end_date") < pl.col("start_date")),
        Rule(
            "unknown_customer",
            "customer_id is not in the customer snapshot",
            lambda ctx: (
                ~pl.col("customer_id").is_in(pl.Series(ctx.get("known_customer_ids", []), dtype=pl.String).implode())
            ),
        ),
    ),
)

billing = SourceContract(
    source="billing",
    file_prefix="invoices",
    semantics="upsert",
    description="New and changed invoices; the latest delivery wins per invoice_id.",
    fields=(
        Field("invoice_id"),
        Field("customer_id", pattern=r"^C\d{7}$"),
        Field("contract_id"),
        Field("issued_on", DATE),
        Field("due_on", DATE),
        Field("amount_eur", "decimal_comma"),
        Field("paid_on", DATE, required=False),
        Field("reminders", "int", min_value=0),
        Field("in_collection", allowed=FLAG),
    ),
    rules=(
        Rule(
            "duplicate_invoice_id",
            "invoice_id appears more than once in the delivery",
            lambda _: pl.col("invoice_id").is_duplicated(),
        ),
        Rule("due_before_issue", "due_on is before issued_on", lambda _: pl.col("due_on") < pl.col("issued_on")),
    ),
)

consents = SourceContract(
    source="consents",
    file_prefix="consent_events",
    semantics="append",
    description="Append-only consent event log; state is the latest occurred_at per channel.",
    fields=(
        Field("event_id"),
        Field("customer_id", pattern=r"^C\d{7}$"),
        Field("purpose", allowed=("marketing", "profiling", "newsletter")),
        Field("channel", required=False, allowed=CHANNELS),
        Field("action", allowed=("granted", "withdrawn")),
        Field("occurred_at", TIMESTAMP),
        Field("source", allowed=("web_form", "customer_service", "mobile_app", "paper_form")),
        Field("wording_version"),
        Field("evidence_ref"),
    ),
    unique_across_deliveries="event_id",
    rules=(
        Rule(
            "duplicate_event_id",
            "event_id appears more than once in the file, or was delivered in an earlier file",
            # every copy within a file; a copy of an event an earlier file delivered (the earlier one stands)
            lambda ctx: (
                pl.col("event_id").is_duplicated()
                | pl.col("event_id").is_in(ctx.get("delivered_before", pl.Series(dtype=pl.String)))
            ),
        ),
        Rule(
            "occurred_in_future",
            "occurred_at is after the file's delivery date (Helsinki time)",
            # a file delivered on D+1 cannot hold an event of D+2: such a timestamp is wrong, and
            # counting it would let a grant outlast a withdrawal made before it (ingestion passes
            # each file's `delivered_on`; without one, as in a bare `split`, nothing is in the future)
            lambda ctx: (
                pl.col("occurred_at") >= end_of_business_day(ctx["delivered_on"])
                if ctx.get("delivered_on") is not None
                else pl.lit(False)
            ),
        ),
        Rule(
            "profiling_with_channel",
            "a profiling event covers every channel and has no channel",
            lambda _: (pl.col("purpose") == "profiling") & pl.col("channel").is_not_null(),
        ),
    ),
)

asml = SourceContract(
    source="asml",
    file_prefix="asml",
    semantics="snapshot",
    description="ASML opt-out registers (kieltorekisteri); each extract replaces the previous one.",
    fields=(
        Field("register", allowed=("mail", "phone")),
        Field("first_name", required=False),
        Field("last_name", required=False),
        Field("street_address", required=False),
        Field("postal_code", required=False, pattern=r"^\d{5}$"),
        Field("phone", required=False, pattern=r"^\+[1-9]\d{6,14}$"),
        Field("registered_on", DATE),
        Field("expires_on", DATE, required=False),
    ),
    rules=(
        Rule(
            "mail_entry_incomplete",
            "a mail entry needs first_name, last_name, street_address and postal_code",
            lambda _: (
                (pl.col("register") == "mail")
                & pl.any_horizontal(
                    [pl.col(c).is_null() for c in ("first_name", "last_name", "street_address", "postal_code")]
                )
            ),
        ),
        Rule(
            "phone_entry_incomplete",
            "a phone entry needs an E.164 phone",
            lambda _: (pl.col("register") == "phone") & pl.col("phone").is_null(),
        ),
        Rule(
            "expires_before_registered",
            "expires_on is before registered_on",
            lambda _: pl.col("expires_on") < pl.col("registered_on"),
        ),
    ),
)

population = SourceContract(
    source="population",
    file_prefix="vtj",
    semantics="state",
    description="Population Information System (VTJ) updates; the latest row per person carries the flags.",
    fields=(
        Field("personal_id", validator=personal_id_problem, canonical=personal_id_canonical),
        Field("deceased_on", DATE, required=False),
        Field("marketing_ban", allowed=FLAG),
        Field("safety_ban", allowed=FLAG),
        Field("street_address", required=False),
        Field("postal_code", required=False, pattern=r"^\d{5}$"),
        Field("city", required=False),
        Field("updated_on", DATE),
    ),
    rules=(
        Rule(
            "updated_in_future",
            "updated_on is after the file's delivery date",
            # the latest updated_on decides a person's flags: a row dated in the future (a wrong
            # year) would outrank every real update after it, a lifted ban or a recorded death
            lambda ctx: (
                pl.col("updated_on") > pl.lit(ctx["delivered_on"])
                if ctx.get("delivered_on") is not None
                else pl.lit(False)
            ),
        ),
        Rule(
            "safety_ban_with_address",
            "a safety-ban row must carry no address",
            lambda _: (
                (pl.col("safety_ban") == "1")
                & pl.any_horizontal([pl.col(c).is_not_null() for c in ("street_address", "postal_code", "city")])
            ),
        ),
    ),
)

#: a contact's recipient: a customer id, or a prospect id for a contact with a prospect (landing-zone.md)
RECIPIENT_ID = r"^(C\d{7}|P\d{9})$"

contacts = SourceContract(
    source="contacts",
    file_prefix="contacts",
    semantics="append",
    description="Contact history; the same (recipient, channel, campaign, sent_at) twice is one contact.",
    fields=(
        Field("customer_id", pattern=RECIPIENT_ID),
        Field("channel", allowed=CHANNELS),
        Field("campaign_id"),
        Field("kind", allowed=("marketing", "customer_communication")),
        Field("sent_at", TIMESTAMP),
    ),
)


CONSENT_VALUES = ("granted", "withdrawn")
ADDRESS_GROUP = ("street_address", "postal_code", "city")


def _granted_any() -> pl.Expr:
    return (pl.col("email_consent") == "granted").fill_null(False) | (pl.col("sms_consent") == "granted").fill_null(
        False
    )


prospects = SourceContract(
    source="prospects",
    file_prefix="prospects",
    semantics="append",
    description=(
        "Leads (competitions, events, offer requests, bought address lists), append-only; "
        "the latest updated_on per prospect_id is the prospect's state."
    ),
    fields=(
        Field("prospect_id", pattern=r"^P\d{9}$"),
        Field("source", allowed=("competition", "event", "offer_request", "address_list")),
        Field("collected_on", DATE),
        Field("updated_on", DATE),
        Field("first_name"),
        Field("last_name"),
        Field("personal_id", required=False, validator=personal_id_problem, canonical=personal_id_canonical),
        Field("street_address", required=False),
        Field("postal_code", required=False, pattern=r"^\d{5}$"),
        Field("city", required=False),
        Field("email", required=False, canonical=email_canonical),
        Field("phone", required=False, canonical=phone_canonical),
        Field("language", required=False, allowed=LANGUAGES),
        Field("email_consent", required=False, allowed=CONSENT_VALUES),
        Field("sms_consent", required=False, allowed=CONSENT_VALUES),
        Field("marketing_objection", allowed=FLAG),
        Field("wording_version", required=False),
        Field("evidence_ref", required=False),
    ),
    rules=(
        Rule(
            "consent_on_purchased_list",
            "an address_list row never carries a granted consent (a bought list gives no consent)",
            lambda _: (pl.col("source") == "address_list") & _granted_any(),
        ),
        Rule(
            "consent_without_evidence",
            "a granted consent needs wording_version and evidence_ref",
            lambda _: _granted_any() & (pl.col("wording_version").is_null() | pl.col("evidence_ref").is_null()),
        ),
        Rule(
            "collected_after_delivery",
            "collected_on is after the file's delivery date",
            lambda ctx: (
                pl.col("collected_on") > pl.lit(ctx["delivered_on"])
                if ctx.get("delivered_on") is not None
                else pl.lit(False)
            ),
        ),
        Rule(
            "updated_before_collected",
            "updated_on is before collected_on",
            lambda _: pl.col("updated_on") < pl.col("collected_on"),
        ),
        Rule(
            "address_incomplete",
            "street_address, postal_code and city are given together or not at all",
            lambda _: (
                pl.any_horizontal([pl.col(c).is_null() for c in ADDRESS_GROUP])
                & pl.any_horizontal([pl.col(c).is_not_null() for c in ADDRESS_GROUP])
            ),
        ),
        Rule(
            "duplicate_prospect_state",
            "the same prospect_id appears twice with the same updated_on in one delivery",
            lambda _: pl.struct("prospect_id", "updated_on").is_duplicated(),
        ),
    ),
)


def _repeated_interval(keys: pl.Series) -> pl.Series:
    """True on each row whose (point, Start Time) appeared on an earlier row of the batch.

    A Datahub export lists each point's intervals in order, so a repeat is usually the row right
    before, and checking that is one pass, where hashing costs ten times more on a big day. Rows
    that break the order (a corrupted GSRN, say) and the row before each are set aside: every row
    of the points of those rows is hashed, as a small group. Anything else is hashed whole.
    """
    frame = keys.struct.unnest().with_row_index("_row")
    point, start = (pl.col(c) for c in frame.columns[1:])
    if frame.null_count().sum_horizontal().item():
        return keys.is_first_distinct().not_()
    back = frame.select(
        ((point < point.shift(1)) | ((point == point.shift(1)) & (start < start.shift(1)))).fill_null(False)
    ).to_series()
    aside = back | back.shift(-1, fill_value=False)
    if aside.sum() > keys.len() // 100:
        return keys.is_first_distinct().not_()
    rest = frame.filter(~aside)
    if not rest.select(
        ((point > point.shift(1)) | ((point == point.shift(1)) & (start >= start.shift(1)))).fill_null(True).all()
    ).item():
        return keys.is_first_distinct().not_()
    repeated = rest.filter((point == point.shift(1)) & (start == start.shift(1))).get_column("_row")
    if aside.any():
        # every row of a point that has a row set aside (a superset of the rows sharing a key)
        group = frame.filter(point.is_in(frame.filter(aside).get_column(frame.columns[1]).unique().implode()))
        repeated = pl.concat(
            [repeated, group.filter(pl.struct(point, start).is_first_distinct().not_()).get_column("_row")]
        )
    flags = pl.zeros(keys.len(), dtype=pl.Boolean, eager=True).rename(keys.name)
    return flags.scatter(repeated, True) if repeated.len() else flags


METERING_HEADER = (
    "MeteringPointGSRN",
    "Product Type",
    "Resolution",
    "Unit Type",
    "Reading Type",
    "Start Time",
    "Quantity",
    "Quality",
)

metering = SourceContract(
    source="metering",
    file_prefix="metering",
    semantics="latest_delivery_wins",
    description="Datahub metering export; the latest delivery wins per (point, start time).",
    fields=(
        Field("MeteringPointGSRN", validator=gsrn_problem),
        Field("Product Type", allowed=("8716867000030",)),
        Field("Resolution", allowed=("PT15M", "PT1H")),
        Field("Unit Type", allowed=("kWh",)),
        Field("Reading Type"),
        Field("Start Time", TIMESTAMP, pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"),
        Field("Quantity", "decimal_comma", required=False, min_value=0),
        Field("Quality", allowed=("OK", "ESTIMATED", "MISSING")),
    ),
    rules=(
        Rule(
            "quantity_missing",
            "Quantity is required unless Quality is MISSING",
            lambda _: (pl.col("Quality") != "MISSING") & pl.col("Quantity").is_null(),
        ),
        Rule(
            "quantity_with_missing",
            "Quantity must be empty when Quality is MISSING",
            lambda _: (pl.col("Quality") == "MISSING") & pl.col("Quantity").is_not_null(),
        ),
        Rule(
            "start_not_on_interval",
            "Start Time is not on a Resolution boundary",
            # seconds since the epoch, in UTC: whole quarter-hours, and whole hours for PT1H
            lambda _: (
                pl.col("Start Time").dt.epoch("s") % pl.when(pl.col("Resolution") == "PT1H").then(3600).otherwise(900)
                != 0
            ),
        ),
        Rule(
            "start_after_delivery",
            "Start Time is after the end of the file's delivery day (Helsinki time)",
            # a delivery holds intervals that have begun: one starting after its delivery day is a
            # wrong date (a far-future year), which would otherwise open a business day of its own
            lambda ctx: (
                pl.col("Start Time") >= end_of_business_day(ctx["delivered_on"])
                if ctx.get("delivered_on") is not None
                else pl.lit(False)
            ),
        ),
        Rule(
            "duplicate_interval",
            "the same (point, Start Time) appears again in the same delivery",
            lambda _: pl.struct("MeteringPointGSRN", "Start Time").map_batches(
                _repeated_interval, return_dtype=pl.Boolean
            ),
        ),
    ),
)

SMALL_SOURCES: dict[str, SourceContract] = {
    c.source: c for c in (customers, contracts, billing, consents, asml, population, contacts, prospects)
}
ALL_SOURCES: dict[str, SourceContract] = SMALL_SOURCES | {"metering": metering}
