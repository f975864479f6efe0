"""The published audience tables, declared: which core columns the rules read, which columns each
audience, exclusion and renewal table carries, and the consent evidence each row records.

The rules that fill these tables are in `models/audience_rules.py`; their independent re-check in
`models/audience_recheck.py`; the pandera schemas built from these declarations in `published.py`.
"""

from __future__ import annotations

import polars as pl

from data_contracts.policy import MarketingPolicy
from data_contracts.vocabulary import CHANNELS

#: The columns each input frame must have. Extra columns are ignored.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id",
        "customer_type",
        "language",
        "first_name",
        "last_name",
        "email",
        "phone_e164",
        "phone_is_mobile",
        "street_address",
        "postal_code",
        "city",
        "birth_date",
        "ended_on",
        "deceased_on",
        "marketing_ban",
        "safety_ban",
    ),
    "consent_state": (
        "customer_id",
        "purpose",
        "channel",
        "state",
        "event_id",
        "occurred_at",
        "source",
        "wording_version",
        "evidence_ref",
    ),
    # plus match_key, or first_name/last_name/street_address/postal_code to derive it
    "asml_register": ("register", "phone_e164", "registered_on", "expires_on"),
    # channel and campaign_id are used for de-duplication when present
    "contact_history": ("customer_id", "kind", "sent_at"),
    "segments": ("customer_id", "segment_id"),
    "contracts": ("contract_id", "customer_id", "contract_type", "end_date"),
}

AUDIENCE_TABLES: dict[str, str] = {ch: f"audience_{ch}" for ch in CHANNELS}

ADDRESS_FIELDS: tuple[str, ...] = ("street_address", "postal_code", "city")

#: The contact fields a channel's audience row carries, by the channel's contact requirement.
CONTACT_FIELDS: dict[str, tuple[str, ...]] = {
    "valid_email": ("email",),
    "valid_mobile": ("phone_e164",),
    "valid_phone": ("phone_e164",),
    "valid_postal_address": ("first_name", "last_name", *ADDRESS_FIELDS),
}

CONSENT_EVIDENCE: tuple[tuple[str, str], ...] = (
    ("event_id", "consent_event_id"),
    ("occurred_at", "consent_occurred_at"),
    ("source", "consent_source"),
    ("wording_version", "consent_wording_version"),
    ("evidence_ref", "consent_evidence_ref"),
)

UTC_US = pl.Datetime("us", "UTC")

_EVIDENCE_DTYPES: dict[str, pl.DataType] = {
    "consent_event_id": pl.String(),
    "consent_occurred_at": UTC_US,
    "consent_source": pl.String(),
    "consent_wording_version": pl.String(),
    "consent_evidence_ref": pl.String(),
}


def audience_columns(policy: MarketingPolicy, channel: str) -> tuple[str, ...]:
    """The exact, ordered column set of one published audience table."""
    fields = CONTACT_FIELDS[policy.channel(channel).contact]
    return (
        "customer_id",
        "segment_id",
        "language",
        *fields,
        "legal_basis",
        "rule",
        *(name for _, name in CONSENT_EVIDENCE),
        "asml_checked_on",
        "vtj_checked_on",
        "policy_version",
        "as_of",
    )


EXCLUSION_COLUMNS: tuple[str, ...] = ("customer_id", "channel", "reason", "consent_event_id", "policy_version", "as_of")

#: The exclusion reasons decided by a consent event, whose id `audience_exclusions.consent_event_id`
#: carries: the latest event for the channel (its own or an all-channel one). Every other reason,
#: `consent_missing` included (no event was ever given), leaves it null.
EVENT_REASONS: tuple[str, ...] = ("consent_withdrawn",)


def renewal_contact_fields(policy: MarketingPolicy) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for ch in policy.renewal.channel_preference:
        for f in CONTACT_FIELDS[policy.channel(ch).contact]:
            seen[f] = None
    return tuple(seen)


def renewal_columns(policy: MarketingPolicy) -> tuple[str, ...]:
    """The exact, ordered column set of `renewal_offers`."""
    return (
        "contract_id",
        "customer_id",
        "end_date",
        "language",
        "channel",
        "reason",
        *renewal_contact_fields(policy),
        "policy_version",
        "as_of",
    )
