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


# --------------------------------------------------------------------------------------------
# prospects: their own tables beside the customer audiences (docs/decisions.md §24)

#: prospect audience table per channel; read the same way as AUDIENCE_TABLES (a campaign targeting
#: `prospects` reads these, one targeting `both` reads both)
PROSPECT_AUDIENCE_TABLES: dict[str, str] = {ch: f"prospect_audience_{ch}" for ch in CHANNELS}
PROSPECT_EXCLUSIONS_TABLE = "prospect_audience_exclusions"

#: the audience tables by recipient type, for readers that target either or both
AUDIENCE_TABLES_BY_RECIPIENT: dict[str, dict[str, str]] = {
    "customers": AUDIENCE_TABLES,
    "prospects": PROSPECT_AUDIENCE_TABLES,
}
#: the id column a recipient type's tables are keyed by
RECIPIENT_ID_COLUMN: dict[str, str] = {"customers": "customer_id", "prospects": "prospect_id"}

#: The columns each prospect input frame must have.
PROSPECT_REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "prospects": (
        "prospect_id",
        "source",
        "collected_on",
        "first_name",
        "last_name",
        "personal_id",
        "birth_date",
        "street_address",
        "postal_code",
        "city",
        "email",
        "phone_e164",
        "phone_is_mobile",
        "language",
        "email_consent",
        "sms_consent",
        "marketing_objection",
        "wording_version",
        "evidence_ref",
        "deceased_on",
        "marketing_ban",
        "safety_ban",
    ),
    "customers": ("customer_id", "personal_id", "email", "first_name", "last_name", "street_address", "postal_code"),
}

#: A consent row's evidence: the prospect's own consent, given where the lead was collected.
#: (source column of `prospects`, published name)
PROSPECT_CONSENT_EVIDENCE: tuple[tuple[str, str], ...] = (
    ("source", "consent_source"),
    ("collected_on", "consent_collected_on"),
    ("wording_version", "consent_wording_version"),
    ("evidence_ref", "consent_evidence_ref"),
)
PROSPECT_EVIDENCE_DTYPES: dict[str, pl.DataType] = {
    "consent_source": pl.String(),
    "consent_collected_on": pl.Date(),
    "consent_wording_version": pl.String(),
    "consent_evidence_ref": pl.String(),
}


def prospect_audience_columns(policy: MarketingPolicy, channel: str) -> tuple[str, ...]:
    """The exact, ordered column set of one published prospect audience table (no segment: prospects
    are never profiled)."""
    assert policy.prospects is not None
    fields = CONTACT_FIELDS[policy.prospects.channels[channel].contact]
    return (
        "prospect_id",
        "lead_source",
        "language",
        *fields,
        "legal_basis",
        "rule",
        *(name for _, name in PROSPECT_CONSENT_EVIDENCE),
        "asml_checked_on",
        "vtj_checked_on",
        "policy_version",
        "as_of",
    )


#: `detail` says how an `is_customer` prospect matched (personal_id, email, name_and_address: no
#: values, no customer id); null for every other reason
PROSPECT_EXCLUSION_COLUMNS: tuple[str, ...] = ("prospect_id", "channel", "reason", "detail", "policy_version", "as_of")
