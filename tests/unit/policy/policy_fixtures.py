"""Hand-made core tables for the policy tests (shapes as in docs/tables.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from data_contracts.policy import MarketingPolicy, load_policy
from models.audience_inputs import AudienceInputs, AudienceResult
from models.audience_rules import build_audiences_from

D = dt.date(2026, 11, 24)
UTC = dt.UTC
ASML_DATE = dt.date(2026, 11, 20)
POPULATION_DATE = dt.date(2026, 11, 24)

CUSTOMER_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "customer_type": pl.String(),
    "personal_id": pl.String(),
    "business_id": pl.String(),
    "first_name": pl.String(),
    "last_name": pl.String(),
    "company_name": pl.String(),
    "language": pl.String(),
    "email": pl.String(),
    "email_status": pl.String(),
    "phone_e164": pl.String(),
    "phone_status": pl.String(),
    "phone_is_mobile": pl.Boolean(),
    "street_address": pl.String(),
    "postal_code": pl.String(),
    "city": pl.String(),
    "address_source": pl.String(),
    "birth_date": pl.Date(),
    "customer_since": pl.Date(),
    "ended_on": pl.Date(),
    "deceased_on": pl.Date(),
    "marketing_ban": pl.Boolean(),
    "safety_ban": pl.Boolean(),
    "vtj_updated_on": pl.Date(),
    "snapshot_file": pl.String(),
}

CONSENT_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "purpose": pl.String(),
    "channel": pl.String(),
    "state": pl.String(),
    "event_id": pl.String(),
    "occurred_at": pl.Datetime("us", "UTC"),
    "source": pl.String(),
    "wording_version": pl.String(),
    "evidence_ref": pl.String(),
    "all_channel_event": pl.Boolean(),
}

ASML_SCHEMA: dict[str, pl.DataType] = {
    "register": pl.String(),
    "match_key": pl.String(),
    "phone_e164": pl.String(),
    "registered_on": pl.Date(),
    "expires_on": pl.Date(),
    "extract_date": pl.Date(),
}

CONTACT_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "channel": pl.String(),
    "campaign_id": pl.String(),
    "kind": pl.String(),
    "sent_at": pl.Datetime("us", "UTC"),
}

SEGMENT_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "segment_id": pl.String(),
    "model_version": pl.String(),
    "as_of": pl.Date(),
}

CONTRACT_SCHEMA: dict[str, pl.DataType] = {
    "contract_id": pl.String(),
    "customer_id": pl.String(),
    "metering_point_id": pl.String(),
    "product_code": pl.String(),
    "contract_type": pl.String(),
    "start_date": pl.Date(),
    "end_date": pl.Date(),
    "site_type": pl.String(),
    "heating": pl.String(),
}


def customer(customer_id: str = "C0000001", **over: Any) -> dict[str, Any]:
    """An adult household customer with every contact valid and no restriction."""
    n = int(customer_id[1:])
    row: dict[str, Any] = {
        "customer_id": customer_id,
        "customer_type": "person",
        "personal_id": None,
        "business_id": None,
        "first_name": "Matti",
        "last_name": f"Meikäläinen{n}",
        "company_name": None,
        "language": "fi",
        "email": f"matti{n}@example.fi",
        "email_status": "valid",
        "phone_e164": f"+35840{n:07d}",
        "phone_status": "valid",
        "phone_is_mobile": True,
        "street_address": f"Mannerheimintie {n}",
        "postal_code": "00100",
        "city": "Helsinki",
        "address_source": "crm",
        "birth_date": dt.date(1980, 5, 17),
        "customer_since": dt.date(2015, 1, 1),
        "ended_on": None,
        "deceased_on": None,
        "marketing_ban": False,
        "safety_ban": False,
        "vtj_updated_on": None,
        "snapshot_file": "customers_20261125.csv",
    }
    row.update(over)
    return row


def consent(
    customer_id: str,
    channel: str | None,
    state: str,
    at: dt.datetime,
    *,
    purpose: str = "marketing",
    event_id: str | None = None,
    **over: Any,
) -> dict[str, Any]:
    row = {
        "customer_id": customer_id,
        "purpose": purpose,
        "channel": channel,
        "state": state,
        "event_id": event_id or f"E-{customer_id}-{purpose}-{channel}-{at:%Y%m%d%H%M%S}",
        "occurred_at": at,
        "source": "web_form",
        "wording_version": "v3",
        "evidence_ref": f"form/{customer_id}/{at:%Y%m%d}",
        "all_channel_event": channel is None,
    }
    row.update(over)
    return row


def granted_everywhere(customer_id: str, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    at = at or dt.datetime(2025, 1, 1, 12, tzinfo=UTC)
    return [consent(customer_id, ch, "granted", at) for ch in ("email", "sms", "letter", "phone")]


def contact(
    customer_id: str,
    sent_at: dt.datetime,
    *,
    kind: str = "marketing",
    channel: str = "email",
    campaign_id: str | None = None,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "channel": channel,
        "campaign_id": campaign_id or f"K{sent_at:%Y%m%d%H%M%S}",
        "kind": kind,
        "sent_at": sent_at,
    }


def asml(
    register: str,
    *,
    match_key: str | None = None,
    phone_e164: str | None = None,
    registered_on: dt.date = dt.date(2020, 1, 1),
    expires_on: dt.date | None = None,
) -> dict[str, Any]:
    return {
        "register": register,
        "match_key": match_key,
        "phone_e164": phone_e164,
        "registered_on": registered_on,
        "expires_on": expires_on,
        "extract_date": ASML_DATE,
    }


def contract(
    contract_id: str, customer_id: str, end_date: dt.date | None, *, contract_type: str = "fixed_term"
) -> dict[str, Any]:
    return {
        "contract_id": contract_id,
        "customer_id": customer_id,
        "metering_point_id": "643007000000000017",
        "product_code": "FIXED24",
        "contract_type": contract_type,
        "start_date": dt.date(2024, 1, 1),
        "end_date": end_date,
        "site_type": "apartment",
        "heating": None,
    }


def frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def make_inputs(
    customers: list[dict[str, Any]],
    consents: list[dict[str, Any]] = (),
    *,
    registers: list[dict[str, Any]] = (),
    contacts: list[dict[str, Any]] = (),
    segments: list[dict[str, Any]] = (),
    contracts: list[dict[str, Any]] = (),
) -> AudienceInputs:
    return AudienceInputs(
        customers=frame(list(customers), CUSTOMER_SCHEMA),
        consent_state=frame(list(consents), CONSENT_SCHEMA),
        asml_register=frame(list(registers), ASML_SCHEMA),
        contact_history=frame(list(contacts), CONTACT_SCHEMA),
        segments=frame(list(segments), SEGMENT_SCHEMA),
        contracts=frame(list(contracts), CONTRACT_SCHEMA),
        asml_date=ASML_DATE,
        population_date=POPULATION_DATE,
    )


def run(inputs: AudienceInputs, policy: MarketingPolicy | None = None, as_of: dt.date = D) -> AudienceResult:
    return build_audiences_from(inputs, policy or load_policy(), as_of)


def members(result: AudienceResult, channel: str) -> set[str]:
    return set(result.audience(channel).get_column("customer_id").to_list())


def reasons(result: AudienceResult, customer_id: str, channel: str) -> set[str]:
    exc = result.audience_exclusions.filter((pl.col("customer_id") == customer_id) & (pl.col("channel") == channel))
    return set(exc.get_column("reason").to_list())
