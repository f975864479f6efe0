"""Marketing audiences, their exclusions and renewal offers: the marketing policy applied.

Everything here is table-driven. `EXCLUSION_RULES` maps every reason code to a polars expression
builder (True = the customer is kept out); `marketing_policy.yaml`, through
`MarketingPolicy.rules_for`, selects which codes apply to which channel. A channel's audience is the
customers for whom none of its rules fires, and `audience_exclusions` lists every rule that fired,
not only the first. Each rule is null-safe and fails safe: a null it cannot resolve excludes.

The independent re-check that blocks publication is `models/audience_recheck.py`.

Input frames are the core tables of docs/tables.md (see `REQUIRED_COLUMNS`); they may be eager or
lazy. Only plain polars joins and expressions run, so the cost is linear in the inputs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from data_contracts.audiences import (
    _EVIDENCE_DTYPES,
    ADDRESS_FIELDS,
    CONSENT_EVIDENCE,
    CONTACT_FIELDS,
    EVENT_REASONS,
    REQUIRED_COLUMNS,
    UTC_US,
    renewal_columns,
    renewal_contact_fields,
)
from data_contracts.normalise import asml_match_key_expr
from data_contracts.policy import (
    REASON_CODES,
    RENEWAL_NO_CHANNEL,
    ChannelPolicy,
    MarketingPolicy,
)
from data_contracts.vocabulary import CHANNELS
from models.age import age_on
from models.audience_inputs import (
    AudienceInputs,
    AudienceResult,
    FrameLike,
    _consent_prefix,
    _lazy,
    _nonblank,
    _state_norm,
    _utc,
    frequency_window_utc,
)

# --------------------------------------------------------------------------------------------
# contact requirements and the rule registry


@dataclass(frozen=True)
class RuleContext:
    """What a rule may know: the policy, the channel being evaluated (None for renewals) and D."""

    policy: MarketingPolicy
    as_of: dt.date
    channel: str | None = None

    @property
    def channel_policy(self) -> ChannelPolicy:
        if self.channel is None:
            raise ValueError("this rule needs a channel")
        return self.policy.channel(self.channel)

    def consent_col(self, field: str) -> str:
        cp = self.channel_policy
        return _consent_prefix(cp.consent.purpose, cp.consent.channel) + field


def _valid_email() -> pl.Expr:
    # The core table nulls invalid addresses; this only guards against blanks and stray values.
    return _nonblank("email") & pl.col("email").str.contains(r"^[^@\s]+@[^@\s]+$")


def _valid_phone() -> pl.Expr:
    return _nonblank("phone_e164") & pl.col("phone_e164").str.contains(r"^\+[1-9][0-9]{5,14}$")


def _valid_mobile() -> pl.Expr:
    return _valid_phone() & pl.col("phone_is_mobile").fill_null(False)


def _valid_postal_address() -> pl.Expr:
    return (
        _nonblank("first_name")
        & _nonblank("last_name")
        & _nonblank("street_address")
        & _nonblank("city")
        & pl.col("postal_code").str.contains(r"^[0-9]{5}$").fill_null(False)
    )


#: contact requirement -> "the contact is usable" expression.
CONTACT_VALIDITY: dict[str, Callable[[], pl.Expr]] = {
    "valid_email": _valid_email,
    "valid_mobile": _valid_mobile,
    "valid_phone": _valid_phone,
    "valid_postal_address": _valid_postal_address,
}


def _active_relationship(as_of: dt.date) -> pl.Expr:
    return pl.col("ended_on").is_null() | (pl.col("ended_on") >= pl.lit(as_of))


def _rule_consent_missing(ctx: RuleContext) -> pl.Expr:
    missing = pl.col(ctx.consent_col("state")).is_null()
    if ctx.channel_policy.soft_opt_in:
        missing = missing & ~_active_relationship(ctx.as_of).fill_null(False)
    return missing


def _rule_consent_withdrawn(ctx: RuleContext) -> pl.Expr:
    return pl.col(ctx.consent_col("state")).eq_missing(pl.lit("withdrawn"))


def _rule_invalid_contact(ctx: RuleContext) -> pl.Expr:
    cp = ctx.channel_policy
    invalid = ~CONTACT_VALIDITY[cp.contact]().fill_null(False)
    if cp.uses_address:
        # A safety ban suppresses the address: that is `safety_ban` (which the policy requires on
        # every address channel), not an invalid contact.
        invalid = invalid & ~pl.col("safety_ban").fill_null(False)
    return invalid


def _rule_deceased(ctx: RuleContext) -> pl.Expr:
    return pl.col("deceased_on").is_not_null() & (pl.col("deceased_on") <= pl.lit(ctx.as_of))


def _rule_minor(ctx: RuleContext) -> pl.Expr:
    rule = ctx.policy.global_exclusions.minor
    assert rule is not None
    b = pl.col("birth_date")
    age = age_on(b, ctx.as_of)  # one definition with profiling's (models/age.py)
    is_person = (pl.col("customer_type") == "person").fill_null(False)
    # A person whose age cannot be established is not shown to be an adult.
    return is_person & (b.is_null() | (age < rule.age_limit))


def _rule_company(ctx: RuleContext) -> pl.Expr:
    return (pl.col("customer_type") != "person").fill_null(True)


def _rule_former_customer(ctx: RuleContext) -> pl.Expr:
    rule = ctx.policy.global_exclusions.former_customer
    assert rule is not None
    limit = ctx.as_of - dt.timedelta(days=rule.window_days)
    return pl.col("ended_on").is_not_null() & (pl.col("ended_on") < pl.lit(limit))


def _rule_frequency_cap(ctx: RuleContext) -> pl.Expr:
    rule = ctx.policy.global_exclusions.frequency_cap
    assert rule is not None
    return pl.col("_marketing_contacts").fill_null(0) >= rule.cap


def _rule_asml_mail(ctx: RuleContext) -> pl.Expr:
    return pl.col("_asml_mail").fill_null(False)


def _rule_asml_phone(ctx: RuleContext) -> pl.Expr:
    return pl.col("_asml_phone").fill_null(False)


def _rule_vtj_marketing_ban(ctx: RuleContext) -> pl.Expr:
    return pl.col("marketing_ban").fill_null(False)


def _rule_safety_ban(ctx: RuleContext) -> pl.Expr:
    return pl.col("safety_ban").fill_null(False)


#: reason code -> expression builder; True means "kept out for this reason".
EXCLUSION_RULES: dict[str, Callable[[RuleContext], pl.Expr]] = {
    "consent_missing": _rule_consent_missing,
    "consent_withdrawn": _rule_consent_withdrawn,
    "invalid_contact": _rule_invalid_contact,
    "deceased": _rule_deceased,
    "minor": _rule_minor,
    "company": _rule_company,
    "former_customer": _rule_former_customer,
    "frequency_cap": _rule_frequency_cap,
    "asml_mail": _rule_asml_mail,
    "asml_phone": _rule_asml_phone,
    "vtj_marketing_ban": _rule_vtj_marketing_ban,
    "safety_ban": _rule_safety_ban,
}
assert tuple(EXCLUSION_RULES) == REASON_CODES


def _rule_expr(code: str, ctx: RuleContext) -> pl.Expr:
    # Fail safe: a rule that cannot be decided (null) excludes. Rules are written so that a null
    # only reaches here when an input the rule needs is genuinely unreadable.
    return EXCLUSION_RULES[code](ctx).fill_null(True)


# --------------------------------------------------------------------------------------------
# facts: one row per customer with everything the rules read


def _resolve_latest(lf: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """Latest event per key; a tie at the same instant resolves to withdrawn.

    consent_state normally arrives resolved (one row per key), so only keys that still have several
    rows are sorted: the common case costs one hash pass instead of a full sort.
    """
    lf = lf.with_columns(_state_norm().alias("state"), pl.struct(keys).is_duplicated().alias("_dup"))
    single = lf.filter(~pl.col("_dup"))
    multi = (
        lf.filter(pl.col("_dup"))
        .with_columns((pl.col("state") == "granted").cast(pl.Int8).alias("_grant_rank"))
        .sort(["occurred_at", "_grant_rank", "event_id"], descending=[True, False, False], nulls_last=True)
        .unique(subset=keys, keep="first")
        .drop("_grant_rank")
    )
    return pl.concat([single, multi], how="vertical").drop("_dup")


def _consent_long(inputs: AudienceInputs, policy: MarketingPolicy) -> pl.LazyFrame:
    cs = _lazy(inputs.consent_state, "consent_state", REQUIRED_COLUMNS["consent_state"])
    refs = policy.consent_refs()
    purposes = sorted({p for p, _ in refs})
    channels = sorted({c for _, c in refs})
    evidence = [src for src, _ in CONSENT_EVIDENCE if src != "occurred_at"]
    return (
        cs.filter(pl.col("purpose").is_in(purposes))
        .select(
            pl.col("customer_id").cast(pl.String),
            pl.col("purpose").cast(pl.String),
            # An all-channel row (null channel) counts for every channel it covers.
            pl.when(pl.col("channel").is_null())
            .then(pl.lit(channels, pl.List(pl.String)))
            .otherwise(pl.concat_list(pl.col("channel").cast(pl.String)))
            .alias("channel"),
            pl.col("state").cast(pl.String),
            _utc(cs, "occurred_at").alias("occurred_at"),
            *[pl.col(c).cast(pl.String) for c in evidence],
        )
        .explode("channel")
        .filter(pl.col("channel").is_in(channels))
        .pipe(_resolve_latest, ["customer_id", "purpose", "channel"])
    )


def _profiling_withdrawn(inputs: AudienceInputs) -> pl.LazyFrame:
    cs = _lazy(inputs.consent_state, "consent_state", REQUIRED_COLUMNS["consent_state"])
    return (
        cs.filter(pl.col("purpose") == "profiling")
        .select(
            pl.col("customer_id").cast(pl.String),
            pl.col("state").cast(pl.String),
            _utc(cs, "occurred_at").alias("occurred_at"),
            pl.col("event_id").cast(pl.String),
        )
        .pipe(_resolve_latest, ["customer_id"])
        .filter(pl.col("state") == "withdrawn")
        .select("customer_id", pl.lit(True).alias("_profiling_withdrawn"))
    )


def _asml_keys(inputs: AudienceInputs, as_of: dt.date) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    reg = _lazy(inputs.asml_register, "asml_register", REQUIRED_COLUMNS["asml_register"])
    names = reg.collect_schema().names()
    if "match_key" in names:
        key = pl.col("match_key").cast(pl.String)
    elif all(c in names for c in ("first_name", "last_name", "street_address", "postal_code")):
        key = asml_match_key_expr()
    else:
        raise ValueError("asml_register: needs match_key, or first_name, last_name, street_address, postal_code")
    d = pl.lit(as_of)
    active = reg.filter(
        (pl.col("registered_on").is_null() | (pl.col("registered_on") <= d))
        & (pl.col("expires_on").is_null() | (pl.col("expires_on") >= d))
    )
    mail = (
        active.filter(pl.col("register") == "mail")
        .select(key.alias("_match_key"))
        .drop_nulls()
        .unique()
        .with_columns(pl.lit(True).alias("_asml_mail"))
    )
    phone = (
        active.filter(pl.col("register") == "phone")
        .select(pl.col("phone_e164").cast(pl.String).str.replace_all(r"\s", "").alias("phone_e164"))
        .drop_nulls()
        .unique()
        .with_columns(pl.lit(True).alias("_asml_phone"))
    )
    return mail, phone


def _marketing_contacts(inputs: AudienceInputs, policy: MarketingPolicy, as_of: dt.date) -> pl.LazyFrame | None:
    rule = policy.global_exclusions.frequency_cap
    if rule is None:
        return None
    ch = _lazy(inputs.contact_history, "contact_history", REQUIRED_COLUMNS["contact_history"])
    start, end = frequency_window_utc(as_of, rule.window_days, policy.tz)
    names = ch.collect_schema().names()
    dedupe = [c for c in ("customer_id", "channel", "campaign_id", "sent_at") if c in names]
    return (
        ch.select(
            pl.col("customer_id").cast(pl.String),
            *[pl.col(c) for c in dedupe if c not in ("customer_id", "sent_at")],
            pl.col("kind"),
            _utc(ch, "sent_at").alias("sent_at"),
        )
        .filter(
            (pl.col("kind") == rule.kind)
            & (pl.col("sent_at") >= pl.lit(start).cast(UTC_US))
            & (pl.col("sent_at") < pl.lit(end).cast(UTC_US))
        )
        .unique(subset=dedupe)
        .group_by("customer_id")
        .agg(pl.len().cast(pl.Int64).alias("_marketing_contacts"))
    )


def _facts(inputs: AudienceInputs, policy: MarketingPolicy, as_of: dt.date) -> pl.DataFrame:
    cust = _lazy(inputs.customers, "customers", REQUIRED_COLUMNS["customers"])
    cust = cust.select(
        pl.col("customer_id").cast(pl.String),
        *[pl.col(c) for c in REQUIRED_COLUMNS["customers"][1:]],
    ).with_columns(
        pl.col(["first_name", "last_name", "email", "phone_e164", *ADDRESS_FIELDS]).cast(pl.String),
        pl.col(["phone_is_mobile", "marketing_ban", "safety_ban"]).cast(pl.Boolean),
        pl.col(["birth_date", "ended_on", "deceased_on"]).cast(pl.Date),
    )

    # consent: one set of columns per (purpose, channel) the policy reads
    # collected once: every channel's columns are cut from the same resolved frame
    consent = _consent_long(inputs, policy).collect().lazy()
    for purpose, channel in policy.consent_refs():
        pre = _consent_prefix(purpose, channel)
        part = consent.filter((pl.col("purpose") == purpose) & (pl.col("channel") == channel)).select(
            "customer_id",
            *[pl.col(src).alias(pre + src) for src in ("state", *(s for s, _ in CONSENT_EVIDENCE))],
        )
        cust = cust.join(part, on="customer_id", how="left")

    # profiling objection and segment
    cust = cust.join(_profiling_withdrawn(inputs), on="customer_id", how="left")
    if inputs.segments is not None:
        seg = _lazy(inputs.segments, "segments", REQUIRED_COLUMNS["segments"])
        seg = (
            seg.select(pl.col("customer_id").cast(pl.String), "segment_id")
            .drop_nulls("segment_id")
            .group_by("customer_id")
            .agg(pl.col("segment_id").min())
        )
        cust = cust.join(seg, on="customer_id", how="left")
    else:
        cust = cust.with_columns(pl.lit(None, pl.String).alias("segment_id"))
    cust = cust.with_columns(
        pl.when(pl.col("_profiling_withdrawn").fill_null(False))
        .then(None)
        .otherwise(pl.col("segment_id"))
        .alias("segment_id")
    )

    # opt-out registers
    mail, phone = _asml_keys(inputs, as_of)
    cust = (
        cust.with_columns(asml_match_key_expr().alias("_match_key"))
        .join(mail, on="_match_key", how="left")
        .join(phone, on="phone_e164", how="left")
        .with_columns(pl.col(["_asml_mail", "_asml_phone"]).fill_null(False))
    )

    # frequency cap
    contacts = _marketing_contacts(inputs, policy, as_of)
    if contacts is not None:
        cust = cust.join(contacts, on="customer_id", how="left")
    else:
        cust = cust.with_columns(pl.lit(None, pl.Int64).alias("_marketing_contacts"))
    cust = cust.with_columns(pl.col("_marketing_contacts").fill_null(0))

    facts = cust.collect()
    dupes = facts.height - facts.get_column("customer_id").n_unique()
    if dupes:
        raise ValueError(f"customers: customer_id is not unique ({dupes} duplicate row(s))")
    return facts


# --------------------------------------------------------------------------------------------
# the audiences


def _audience_query(
    facts: pl.LazyFrame,
    policy: MarketingPolicy,
    channel: str,
    as_of: dt.date,
    asml_date: dt.date | None,
    population_date: dt.date | None,
) -> pl.LazyFrame:
    ctx = RuleContext(policy, as_of, channel)
    cp = policy.channel(channel)
    excluded = pl.any_horizontal([_rule_expr(code, ctx) for code in policy.rules_for(channel)])
    granted = pl.col(ctx.consent_col("state")) == "granted"

    if cp.legal_basis == "consent":
        by_consent = granted.fill_null(False)
        legal_basis = pl.when(by_consent).then(pl.lit("consent")).otherwise(pl.lit("opt_out"))
        rule = (
            pl.when(by_consent)
            .then(pl.lit(policy.admission_rule(channel)))
            .otherwise(pl.lit(policy.soft_opt_in_rule(channel)))
        )
        evidence = [
            pl.when(by_consent)
            .then(pl.col(ctx.consent_col(src)))
            .otherwise(None)
            .cast(_EVIDENCE_DTYPES[name])
            .alias(name)
            for src, name in CONSENT_EVIDENCE
        ]
    else:
        legal_basis = pl.lit("opt_out")
        rule = pl.lit(policy.admission_rule(channel))
        evidence = [pl.lit(None, _EVIDENCE_DTYPES[name]).alias(name) for _, name in CONSENT_EVIDENCE]

    return (
        facts.filter(~excluded)
        .select(
            "customer_id",
            "segment_id",
            "language",
            *CONTACT_FIELDS[cp.contact],
            legal_basis.cast(pl.String).alias("legal_basis"),
            rule.cast(pl.String).alias("rule"),
            *evidence,
            pl.lit(asml_date, pl.Date).alias("asml_checked_on"),
            pl.lit(population_date, pl.Date).alias("vtj_checked_on"),
            pl.lit(policy.version, pl.String).alias("policy_version"),
            pl.lit(as_of, pl.Date).alias("as_of"),
        )
        .sort("customer_id")
    )


def _exclusions_query(facts: pl.LazyFrame, policy: MarketingPolicy, as_of: dt.date) -> pl.LazyFrame:
    parts = []
    for channel in CHANNELS:
        ctx = RuleContext(policy, as_of, channel)
        for code in policy.rules_for(channel):
            event = pl.col(ctx.consent_col("event_id")) if code in EVENT_REASONS else pl.lit(None)
            parts.append(
                facts.filter(_rule_expr(code, ctx)).select(
                    "customer_id",
                    pl.lit(channel, pl.String).alias("channel"),
                    pl.lit(code, pl.String).alias("reason"),
                    event.cast(pl.String).alias("consent_event_id"),
                )
            )
    return (
        pl.concat(parts, how="vertical")
        .with_columns(
            pl.lit(policy.version, pl.String).alias("policy_version"),
            pl.lit(as_of, pl.Date).alias("as_of"),
        )
        .sort(["customer_id", "channel", "reason"])
    )


def _renewal_query(
    facts: pl.LazyFrame, contracts: FrameLike | None, policy: MarketingPolicy, as_of: dt.date
) -> pl.LazyFrame:
    rp = policy.renewal
    fields = renewal_contact_fields(policy)
    columns = renewal_columns(policy)
    if contracts is None:
        schema = {c: pl.String for c in columns} | {"end_date": pl.Date, "as_of": pl.Date}
        return pl.LazyFrame(schema=schema).select(columns)

    con = _lazy(contracts, "contracts", REQUIRED_COLUMNS["contracts"])
    ctx = RuleContext(policy, as_of)
    last = as_of + dt.timedelta(days=rp.window_days)
    no_row = [_rule_expr(code, ctx) for code in rp.no_row_for]

    usable: dict[str, pl.Expr] = {}
    for ch in rp.channel_preference:
        cp = policy.channel(ch)
        blocked = [
            _rule_expr(code, RuleContext(policy, as_of, ch)) for code in cp.exclusions if code in rp.channel_blocked_by
        ]
        ok = CONTACT_VALIDITY[cp.contact]().fill_null(False)
        if blocked:
            ok = ok & ~pl.any_horizontal(blocked)
        usable[ch] = ok

    chosen: pl.Expr = pl.lit(RENEWAL_NO_CHANNEL)
    reason: pl.Expr = pl.lit(rp.no_channel_reason)
    for ch in reversed(rp.channel_preference):
        chosen = pl.when(usable[ch]).then(pl.lit(ch)).otherwise(chosen)
        reason = pl.when(usable[ch]).then(pl.lit(policy.channel(ch).contact)).otherwise(reason)

    field_exprs = []
    for f in fields:
        carriers = [ch for ch in rp.channel_preference if f in CONTACT_FIELDS[policy.channel(ch).contact]]
        field_exprs.append(
            pl.when(pl.col("channel").is_in(carriers)).then(pl.col(f)).otherwise(None).cast(pl.String).alias(f)
        )

    rows = (
        con.select(
            pl.col("contract_id").cast(pl.String),
            pl.col("customer_id").cast(pl.String),
            pl.col("contract_type").cast(pl.String),
            pl.col("end_date").cast(pl.Date),
        )
        .filter(
            (pl.col("contract_type") == rp.contract_type)
            & (pl.col("end_date") > pl.lit(as_of))
            & (pl.col("end_date") <= pl.lit(last))
        )
        .join(facts, on="customer_id", how="inner")
        .filter(pl.col("customer_type").is_in(list(rp.customer_types)).fill_null(False))
    )
    if no_row:
        rows = rows.filter(~pl.any_horizontal(no_row))
    return (
        rows.with_columns(chosen.alias("channel"), reason.alias("reason"))
        .select(
            "contract_id",
            "customer_id",
            "end_date",
            "language",
            "channel",
            "reason",
            *field_exprs,
            pl.lit(policy.version, pl.String).alias("policy_version"),
            pl.lit(as_of, pl.Date).alias("as_of"),
        )
        .sort(["contract_id", "customer_id"])
    )


def build_audiences(
    customers: FrameLike,
    consent_state: FrameLike,
    asml_register: FrameLike,
    contact_history: FrameLike,
    segments: FrameLike | None,
    policy: MarketingPolicy,
    as_of: dt.date,
    asml_date: dt.date | None,
    population_date: dt.date | None,
    contracts: FrameLike | None = None,
) -> AudienceResult:
    """Apply the marketing policy on run day `as_of` (D) to the core tables."""
    inputs = AudienceInputs(
        customers=customers,
        consent_state=consent_state,
        asml_register=asml_register,
        contact_history=contact_history,
        segments=segments,
        contracts=contracts,
        asml_date=asml_date,
        population_date=population_date,
    )
    return build_audiences_from(inputs, policy, as_of)


def build_audiences_from(inputs: AudienceInputs, policy: MarketingPolicy, as_of: dt.date) -> AudienceResult:
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise TypeError("as_of must be a datetime.date (the business day D)")
    facts = _facts(inputs, policy, as_of).lazy()
    queries = [_audience_query(facts, policy, ch, as_of, inputs.asml_date, inputs.population_date) for ch in CHANNELS]
    queries.append(_exclusions_query(facts, policy, as_of))
    queries.append(_renewal_query(facts, inputs.contracts, policy, as_of))
    frames = pl.collect_all(queries)
    audiences = dict(zip(CHANNELS, frames[: len(CHANNELS)], strict=True))
    return AudienceResult(
        audience_email=audiences["email"],
        audience_sms=audiences["sms"],
        audience_letter=audiences["letter"],
        audience_phone=audiences["phone"],
        audience_exclusions=frames[len(CHANNELS)],
        renewal_offers=frames[len(CHANNELS) + 1],
        policy_version=policy.version,
        as_of=as_of,
    )
