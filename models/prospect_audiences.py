"""Prospect audiences: the policy's `prospects` rules applied on day D (marketing-policy.md, "Prospects").

Table-driven like the customer audiences (`models/audience_rules.py`): `PROSPECT_RULES` maps
every reason code to an expression (True = kept out), `ProspectPolicy.rules_for` picks which codes
apply to a channel, and `prospect_audience_exclusions` lists every reason that fired. A null a
rule cannot resolve excludes. The independent re-check is `models/prospect_recheck.py`.

A prospect is a current customer (`is_customer`) when the identity code, the email address or the
ASML-style name-and-address key matches a customer of the latest CRM snapshot; the customer's own
rules then apply, and the prospect record is erased by the next run's retention (docs/privacy.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from data_contracts.audiences import (
    CONTACT_FIELDS,
    PROSPECT_AUDIENCE_TABLES,
    PROSPECT_CONSENT_EVIDENCE,
    PROSPECT_EVIDENCE_DTYPES,
    PROSPECT_EXCLUSION_COLUMNS,
    PROSPECT_EXCLUSIONS_TABLE,
    PROSPECT_REQUIRED_COLUMNS,
)
from data_contracts.normalise import asml_match_key_expr
from data_contracts.policy import PROSPECT_REASON_CODES, MarketingPolicy, ProspectPolicy
from data_contracts.vocabulary import CHANNELS
from models.age import age_on
from models.audience_inputs import AudienceInputs, FrameLike, _lazy
from models.audience_rules import CONTACT_VALIDITY, _marketing_contacts


@dataclass(frozen=True)
class ProspectInputs:
    """The core tables a prospect audience build reads, plus the dates of the register data checked."""

    prospects: FrameLike
    customers: FrameLike
    asml_register: FrameLike
    contact_history: FrameLike
    asml_date: dt.date | None = None
    population_date: dt.date | None = None


@dataclass(frozen=True)
class ProspectAudienceResult:
    audiences: dict[str, pl.DataFrame]
    exclusions: pl.DataFrame
    #: prospects matched to a current customer on D (prospect_id, detail): retention erases them
    conversions: pl.DataFrame
    policy_version: str
    as_of: dt.date

    def audience(self, channel: str) -> pl.DataFrame:
        return self.audiences[channel]

    def tables(self) -> dict[str, pl.DataFrame]:
        out = {PROSPECT_AUDIENCE_TABLES[ch]: self.audiences[ch] for ch in CHANNELS}
        out[PROSPECT_EXCLUSIONS_TABLE] = self.exclusions
        return out

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts only: sizes per channel and exclusions per reason."""
        return {
            "audience_sizes": {ch: self.audiences[ch].height for ch in CHANNELS},
            "exclusions_by_reason": dict(sorted(self.exclusions.group_by("reason").len().rows())),
        }


# --------------------------------------------------------------------------------------------
# the rules


@dataclass(frozen=True)
class ProspectRuleContext:
    policy: MarketingPolicy
    as_of: dt.date
    channel: str

    @property
    def prospects(self) -> ProspectPolicy:
        assert self.policy.prospects is not None
        return self.policy.prospects


def _consent(ctx: ProspectRuleContext) -> pl.Expr:
    column = ctx.prospects.channels[ctx.channel].consent
    assert column is not None
    return pl.col(column)


def _rule_is_customer(ctx: ProspectRuleContext) -> pl.Expr:
    return pl.col("_customer_match").is_not_null()


def _rule_objected(ctx: ProspectRuleContext) -> pl.Expr:
    return pl.col("marketing_objection").fill_null(True)


def _rule_consent_missing(ctx: ProspectRuleContext) -> pl.Expr:
    # never asked; a value that is neither granted nor withdrawn cannot reach here (the contract)
    return _consent(ctx).is_null()


def _rule_consent_withdrawn(ctx: ProspectRuleContext) -> pl.Expr:
    return _consent(ctx).eq_missing(pl.lit("withdrawn"))


def _rule_invalid_contact(ctx: ProspectRuleContext) -> pl.Expr:
    cp = ctx.prospects.channels[ctx.channel]
    invalid = ~CONTACT_VALIDITY[cp.contact]().fill_null(False)
    if cp.uses_address:
        invalid = invalid & ~pl.col("safety_ban").fill_null(False)
    return invalid


def _rule_deceased(ctx: ProspectRuleContext) -> pl.Expr:
    return pl.col("deceased_on").is_not_null() & (pl.col("deceased_on") <= pl.lit(ctx.as_of))


def _rule_minor(ctx: ProspectRuleContext) -> pl.Expr:
    # only when the identity code is known: most leads carry none (marketing-policy.md)
    rule = ctx.policy.global_exclusions.minor
    if rule is None:
        return pl.lit(False)
    return pl.col("birth_date").is_not_null() & (age_on(pl.col("birth_date"), ctx.as_of) < rule.age_limit)


def _rule_frequency_cap(ctx: ProspectRuleContext) -> pl.Expr:
    rule = ctx.policy.global_exclusions.frequency_cap
    if rule is None:
        return pl.lit(False)
    return pl.col("_marketing_contacts").fill_null(0) >= rule.cap


PROSPECT_RULES: dict[str, Callable[[ProspectRuleContext], pl.Expr]] = {
    "is_customer": _rule_is_customer,
    "objected": _rule_objected,
    "consent_missing": _rule_consent_missing,
    "consent_withdrawn": _rule_consent_withdrawn,
    "invalid_contact": _rule_invalid_contact,
    "deceased": _rule_deceased,
    "minor": _rule_minor,
    "frequency_cap": _rule_frequency_cap,
    "asml_mail": lambda _: pl.col("_asml_mail").fill_null(False),
    "asml_phone": lambda _: pl.col("_asml_phone").fill_null(False),
    "vtj_marketing_ban": lambda _: pl.col("marketing_ban").fill_null(False),
    "safety_ban": lambda _: pl.col("safety_ban").fill_null(False),
}
assert tuple(PROSPECT_RULES) == PROSPECT_REASON_CODES


def _rule_expr(code: str, ctx: ProspectRuleContext) -> pl.Expr:
    return PROSPECT_RULES[code](ctx).fill_null(True)


# --------------------------------------------------------------------------------------------
# facts: one row per prospect with everything the rules read


def _lower(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()


MATCH_KEYS: dict[str, Callable[[], pl.Expr]] = {
    "personal_id": lambda: pl.col("personal_id").cast(pl.String).str.to_uppercase(),
    "email": lambda: _lower("email"),
    "name_and_address": lambda: asml_match_key_expr(),
}


def customer_matches(prospects: pl.LazyFrame, customers: pl.LazyFrame, policy: ProspectPolicy) -> pl.LazyFrame:
    """prospect_id → how it matched a current customer (the match kinds, comma-separated)."""
    parts = []
    for kind in policy.customer_match:
        key = MATCH_KEYS[kind]
        known = customers.select(key().alias("_key")).drop_nulls().unique()
        parts.append(
            prospects.select("prospect_id", key().alias("_key"))
            .drop_nulls("_key")
            .join(known, on="_key", how="semi")
            .select("prospect_id", pl.lit(kind).alias("kind"))
        )
    return (
        pl.concat(parts)
        .unique()
        .group_by("prospect_id")
        .agg(pl.col("kind").sort().str.join(",").alias("_customer_match"))
    )


def _asml(inputs: ProspectInputs, as_of: dt.date) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    reg = _lazy(inputs.asml_register, "asml_register", ("register", "match_key", "phone_e164", "expires_on"))
    d = pl.lit(as_of)
    names = reg.collect_schema().names()
    registered = (
        (pl.col("registered_on").is_null() | (pl.col("registered_on") <= d)) if "registered_on" in names else True
    )
    active = reg.filter(registered & (pl.col("expires_on").is_null() | (pl.col("expires_on") >= d)))
    mail = (
        active.filter(pl.col("register") == "mail")
        .select(pl.col("match_key").alias("_match_key"))
        .drop_nulls()
        .unique()
        .with_columns(pl.lit(True).alias("_asml_mail"))
    )
    phone = (
        active.filter(pl.col("register") == "phone")
        .select("phone_e164")
        .drop_nulls()
        .unique()
        .with_columns(pl.lit(True).alias("_asml_phone"))
    )
    return mail, phone


def prospect_facts(inputs: ProspectInputs, policy: MarketingPolicy, as_of: dt.date) -> pl.DataFrame:
    assert policy.prospects is not None
    pros = _lazy(inputs.prospects, "prospects", PROSPECT_REQUIRED_COLUMNS["prospects"])
    cust = _lazy(inputs.customers, "customers", PROSPECT_REQUIRED_COLUMNS["customers"])
    mail, phone = _asml(inputs, as_of)
    facts = (
        pros.join(customer_matches(pros, cust, policy.prospects), on="prospect_id", how="left")
        .with_columns(asml_match_key_expr().alias("_match_key"))
        .join(mail, on="_match_key", how="left")
        .join(phone, on="phone_e164", how="left")
    )
    # a prospect's contacts (the prospect id as recipient) count exactly as a customer's do
    contacts = _marketing_contacts(
        AudienceInputs(customers=cust, consent_state=cust, asml_register=cust, contact_history=inputs.contact_history),
        policy,
        as_of,
    )
    if contacts is not None:
        facts = facts.join(contacts.rename({"customer_id": "prospect_id"}), on="prospect_id", how="left")
    else:
        facts = facts.with_columns(pl.lit(0, pl.Int64).alias("_marketing_contacts"))
    out = facts.collect()
    if out.height != out["prospect_id"].n_unique():
        raise ValueError("prospects: prospect_id is not unique")
    return out


# --------------------------------------------------------------------------------------------
# the audiences


def _audience(facts: pl.DataFrame, policy: MarketingPolicy, channel: str, inputs: ProspectInputs, as_of: dt.date):
    pp = policy.prospects
    assert pp is not None
    cp = pp.channels[channel]
    ctx = ProspectRuleContext(policy, as_of, channel)
    excluded = pl.any_horizontal([_rule_expr(code, ctx) for code in pp.rules_for(channel)])
    if cp.legal_basis == "consent":
        evidence = [
            pl.col(src).cast(PROSPECT_EVIDENCE_DTYPES[name]).alias(name) for src, name in PROSPECT_CONSENT_EVIDENCE
        ]
    else:
        evidence = [pl.lit(None, PROSPECT_EVIDENCE_DTYPES[name]).alias(name) for _, name in PROSPECT_CONSENT_EVIDENCE]
    return (
        facts.filter(~excluded)
        .select(
            "prospect_id",
            pl.col("source").alias("lead_source"),
            "language",
            *CONTACT_FIELDS[cp.contact],
            pl.lit(cp.legal_basis, pl.String).alias("legal_basis"),
            pl.lit(pp.admission_rule(channel), pl.String).alias("rule"),
            *evidence,
            pl.lit(inputs.asml_date, pl.Date).alias("asml_checked_on"),
            pl.lit(inputs.population_date, pl.Date).alias("vtj_checked_on"),
            pl.lit(policy.version, pl.String).alias("policy_version"),
            pl.lit(as_of, pl.Date).alias("as_of"),
        )
        .sort("prospect_id")
    )


def _exclusions(facts: pl.DataFrame, policy: MarketingPolicy, as_of: dt.date) -> pl.DataFrame:
    pp = policy.prospects
    assert pp is not None
    parts = []
    for channel in CHANNELS:
        ctx = ProspectRuleContext(policy, as_of, channel)
        for code in pp.rules_for(channel):
            detail = pl.col("_customer_match") if code == "is_customer" else pl.lit(None, pl.String)
            parts.append(
                facts.filter(_rule_expr(code, ctx)).select(
                    "prospect_id",
                    pl.lit(channel, pl.String).alias("channel"),
                    pl.lit(code, pl.String).alias("reason"),
                    detail.cast(pl.String).alias("detail"),
                )
            )
    frame = pl.concat(parts) if parts else pl.DataFrame(schema={c: pl.String for c in PROSPECT_EXCLUSION_COLUMNS[:4]})
    return (
        frame.with_columns(
            pl.lit(policy.version, pl.String).alias("policy_version"), pl.lit(as_of, pl.Date).alias("as_of")
        )
        .select(PROSPECT_EXCLUSION_COLUMNS)
        .sort("prospect_id", "channel", "reason")
    )


def build_prospect_audiences(inputs: ProspectInputs, policy: MarketingPolicy, as_of: dt.date) -> ProspectAudienceResult:
    """Apply the policy's prospect rules on run day `as_of` (D) to the core tables."""
    if policy.prospects is None:
        raise ValueError("the marketing policy has no `prospects` section")
    facts = prospect_facts(inputs, policy, as_of)
    return ProspectAudienceResult(
        audiences={ch: _audience(facts, policy, ch, inputs, as_of) for ch in CHANNELS},
        exclusions=_exclusions(facts, policy, as_of),
        conversions=facts.filter(pl.col("_customer_match").is_not_null())
        .select("prospect_id", pl.col("_customer_match").alias("detail"))
        .sort("prospect_id"),
        policy_version=policy.version,
        as_of=as_of,
    )
