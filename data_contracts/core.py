"""pandera (polars) contracts for the core current-state tables (see docs/tables.md).

Every core asset validates its frame against its contract before writing it, so a bug in a
builder fails the run instead of publishing a wrong current state.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from data_contracts.vocabulary import CHANNELS

UTC = pl.Datetime("us", "UTC")


def _unique(*columns: str) -> pa.Check:
    return pa.Check(
        lambda data: data.lazyframe.select(~pl.struct(list(columns)).is_duplicated()),
        name=f"unique({', '.join(columns)})",
    )


def _str(nullable: bool = False, **kw) -> pa.Column:
    return pa.Column(pl.String, nullable=nullable, **kw)


customers = pa.DataFrameSchema(
    {
        "customer_id": _str(unique=True, checks=pa.Check.str_matches(r"^C\d{7}$")),
        "customer_type": _str(checks=pa.Check.isin(["person", "company"])),
        "personal_id": _str(True),
        "business_id": _str(True),
        "first_name": _str(True),
        "last_name": _str(True),
        "company_name": _str(True),
        "language": _str(checks=pa.Check.isin(["fi", "sv", "en"])),
        "email": _str(True),
        "email_status": _str(checks=pa.Check.isin(["valid", "invalid", "absent"])),
        "phone_e164": _str(True, checks=pa.Check.str_matches(r"^\+[1-9]\d{6,14}$")),
        "phone_status": _str(checks=pa.Check.isin(["valid", "invalid", "absent"])),
        "phone_is_mobile": pa.Column(pl.Boolean),
        "street_address": _str(True),
        "postal_code": _str(True),
        "city": _str(True),
        "address_source": _str(checks=pa.Check.isin(["crm", "vtj", "suppressed", "absent"])),
        "birth_date": pa.Column(pl.Date, nullable=True),
        "customer_since": pa.Column(pl.Date),
        "ended_on": pa.Column(pl.Date, nullable=True),
        "deceased_on": pa.Column(pl.Date, nullable=True),
        "marketing_ban": pa.Column(pl.Boolean),
        "safety_ban": pa.Column(pl.Boolean),
        "vtj_updated_on": pa.Column(pl.Date, nullable=True),
        "snapshot_file": _str(),
    },
    checks=[
        pa.Check(
            lambda data: data.lazyframe.select(
                ~(
                    pl.col("safety_ban")
                    & pl.any_horizontal(pl.col("street_address", "postal_code", "city").is_not_null())
                )
            ),
            name="no_address_under_safety_ban",
        ),
        pa.Check(
            lambda data: data.lazyframe.select(
                (pl.col("customer_type") == "company") | pl.col("birth_date").is_not_null()
            ),
            name="every_person_has_a_birth_date",
        ),
    ],
    name="customers",
    strict=True,
)

population_register = pa.DataFrameSchema(
    {
        "personal_id": _str(unique=True),
        "deceased_on": pa.Column(pl.Date, nullable=True),
        "marketing_ban": pa.Column(pl.Boolean),
        "safety_ban": pa.Column(pl.Boolean),
        "street_address": _str(True),
        "postal_code": _str(True),
        "city": _str(True),
        "updated_on": pa.Column(pl.Date),
    },
    name="population_register",
    strict=True,
)

contracts = pa.DataFrameSchema(
    {
        "contract_id": _str(unique=True),
        "customer_id": _str(),
        "metering_point_id": _str(checks=pa.Check.str_matches(r"^\d{18}$")),
        "product_code": _str(),
        "contract_type": _str(checks=pa.Check.isin(["fixed_term", "open_ended"])),
        "start_date": pa.Column(pl.Date),
        "end_date": pa.Column(pl.Date, nullable=True),
        "site_type": _str(),
        "heating": _str(True),
        "snapshot_file": _str(),
    },
    name="contracts",
    strict=True,
)

metering_point_attribution = pa.DataFrameSchema(
    {
        "metering_point_id": _str(),
        "customer_id": _str(),
        "contract_id": _str(unique=True),
        "valid_from": pa.Column(pl.Date),
        "valid_to": pa.Column(pl.Date, nullable=True),
    },
    checks=[
        pa.Check(
            lambda data: data.lazyframe.select((pl.col("valid_to") >= pl.col("valid_from")).fill_null(True)),
            name="period_ordered",
        )
    ],
    name="metering_point_attribution",
    strict=True,
)

invoices = pa.DataFrameSchema(
    {
        "invoice_id": _str(unique=True),
        "customer_id": _str(),
        "contract_id": _str(),
        "issued_on": pa.Column(pl.Date),
        "due_on": pa.Column(pl.Date),
        "amount_eur": pa.Column(pl.Decimal(12, 2)),
        "paid_on": pa.Column(pl.Date, nullable=True),
        "reminders": pa.Column(pl.Int64, checks=pa.Check.ge(0)),
        "in_collection": pa.Column(pl.Boolean),
        "delivery_file": _str(),
    },
    name="invoices",
    strict=True,
)

consent_events = pa.DataFrameSchema(
    {
        "event_id": _str(unique=True),
        "customer_id": _str(),
        "purpose": _str(checks=pa.Check.isin(["marketing", "profiling", "newsletter"])),
        "channel": _str(True, checks=pa.Check.isin(CHANNELS)),
        "action": _str(checks=pa.Check.isin(["granted", "withdrawn"])),
        "occurred_at": pa.Column(UTC),
        "source": _str(),
        "wording_version": _str(),
        "evidence_ref": _str(),
        "file": _str(),
        "line": pa.Column(pl.Int64),
    },
    name="consent_events",
    strict=True,
)

consent_state = pa.DataFrameSchema(
    {
        "customer_id": _str(),
        "purpose": _str(checks=pa.Check.isin(["marketing", "profiling", "newsletter"])),
        "channel": _str(True, checks=pa.Check.isin(CHANNELS)),
        "state": _str(checks=pa.Check.isin(["granted", "withdrawn"])),
        "event_id": _str(),
        "occurred_at": pa.Column(UTC),
        "source": _str(),
        "wording_version": _str(),
        "evidence_ref": _str(),
        "all_channel_event": pa.Column(pl.Boolean),
    },
    checks=[
        _unique("customer_id", "purpose", "channel"),
        pa.Check(
            lambda data: data.lazyframe.select((pl.col("purpose") == "profiling") == pl.col("channel").is_null()),
            name="profiling_has_no_channel_others_have_one",
        ),
    ],
    name="consent_state",
    strict=True,
)

asml_register = pa.DataFrameSchema(
    {
        "register": _str(checks=pa.Check.isin(["mail", "phone"])),
        "match_key": _str(True),
        "phone_e164": _str(True),
        "registered_on": pa.Column(pl.Date),
        "expires_on": pa.Column(pl.Date, nullable=True),
        "extract_date": pa.Column(pl.Date),
    },
    checks=[
        pa.Check(
            lambda data: data.lazyframe.select(
                pl.when(pl.col("register") == "mail")
                .then(pl.col("match_key").is_not_null())
                .otherwise(pl.col("phone_e164").is_not_null())
            ),
            name="entry_has_its_match_field",
        )
    ],
    name="asml_register",
    strict=True,
)

prospects = pa.DataFrameSchema(
    {
        "prospect_id": _str(unique=True, checks=pa.Check.str_matches(r"^P\d{9}$")),
        "source": _str(checks=pa.Check.isin(["competition", "event", "offer_request", "address_list"])),
        "collected_on": pa.Column(pl.Date),
        "updated_on": pa.Column(pl.Date),
        "first_name": _str(),
        "last_name": _str(),
        "personal_id": _str(True),
        "birth_date": pa.Column(pl.Date, nullable=True),
        "street_address": _str(True),
        "postal_code": _str(True),
        "city": _str(True),
        "email": _str(True),
        "email_status": _str(checks=pa.Check.isin(["valid", "invalid", "absent"])),
        "phone_e164": _str(True, checks=pa.Check.str_matches(r"^\+[1-9]\d{6,14}$")),
        "phone_status": _str(checks=pa.Check.isin(["valid", "invalid", "absent"])),
        "phone_is_mobile": pa.Column(pl.Boolean),
        "language": _str(True, checks=pa.Check.isin(["fi", "sv", "en"])),
        "email_consent": _str(True, checks=pa.Check.isin(["granted", "withdrawn"])),
        "sms_consent": _str(True, checks=pa.Check.isin(["granted", "withdrawn"])),
        "marketing_objection": pa.Column(pl.Boolean),
        "wording_version": _str(True),
        "evidence_ref": _str(True),
        "deceased_on": pa.Column(pl.Date, nullable=True),
        "marketing_ban": pa.Column(pl.Boolean),
        "safety_ban": pa.Column(pl.Boolean),
        "vtj_updated_on": pa.Column(pl.Date, nullable=True),
        "file": _str(),
    },
    checks=[
        pa.Check(
            lambda data: data.lazyframe.select(
                ~(pl.col("safety_ban") & pl.col("street_address").is_not_null()).fill_null(False)
            ),
            name="no_address_under_safety_ban",
        )
    ],
    name="prospects",
    strict=True,
)

contact_history = pa.DataFrameSchema(
    {
        "customer_id": _str(),
        "channel": _str(checks=pa.Check.isin(CHANNELS)),
        "campaign_id": _str(),
        "kind": _str(checks=pa.Check.isin(["marketing", "customer_communication"])),
        "sent_at": pa.Column(UTC),
    },
    checks=[_unique("customer_id", "channel", "campaign_id", "sent_at")],
    name="contact_history",
    strict=True,
)

metering_daily = pa.DataFrameSchema(
    {
        "business_day": pa.Column(pl.Date),
        "metering_point_id": _str(),
        "resolution": _str(checks=pa.Check.isin(["PT1H", "PT15M"])),
        "kwh_total": pa.Column(pl.Float64, checks=pa.Check.ge(0)),
        **{f"kwh_h{h:02d}": pa.Column(pl.Float64, checks=pa.Check.ge(0)) for h in range(24)},
        "night_kwh": pa.Column(pl.Float64, checks=pa.Check.ge(0)),
        "n_ok": pa.Column(pl.Int64, checks=pa.Check.ge(0)),
        "n_estimated": pa.Column(pl.Int64, checks=pa.Check.ge(0)),
        "n_missing": pa.Column(pl.Int64, checks=pa.Check.ge(0)),
        # 23/24/25 hours or 92/96/100 quarters; a day the meter is replaced (PT1H, then PT15M)
        # expects its hourly readings plus quarters for the rest, which lies between the two
        "n_expected": pa.Column(pl.Int64, checks=pa.Check.in_range(23, 100)),
    },
    checks=[_unique("business_day", "metering_point_id")],
    name="metering_daily",
    strict=True,
)
