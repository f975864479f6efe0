"""Marketing audiences, their exclusions and renewal offers: the marketing policy applied.

Everything here is table-driven. `EXCLUSION_RULES` maps every reason code to a polars expression
builder (True = the customer is kept out); `marketing_policy.yaml`, through
`MarketingPolicy.rules_for`, selects which codes apply to which channel. A channel's audience is the
customers for whom none of its rules fires, and `audience_exclusions` lists every rule that fired,
not only the first. Each rule is null-safe and fails safe: a null it cannot resolve excludes.

`policy_violations` is the independent re-check that blocks publication. It does not use the rule
registry: it recomputes each rule by a separately written route and reports every published row that
breaks one.

Input frames are the core tables of docs/tables.md (see `REQUIRED_COLUMNS`); they may be eager or
lazy. Only plain polars joins and expressions run, so the cost is linear in the inputs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import polars as pl

from .normalise import asml_match_key_expr
from .policy import (
    CHANNELS,
    REASON_CODES,
    RENEWAL_NO_CHANNEL,
    ChannelPolicy,
    MarketingPolicy,
    load_policy,
)

__all__ = [
    "AUDIENCE_TABLES",
    "CONTACT_FIELDS",
    "EXCLUSION_RULES",
    "REQUIRED_COLUMNS",
    "AudienceInputs",
    "AudienceResult",
    "audience_columns",
    "build_audiences",
    "build_audiences_from",
    "frequency_window_utc",
    "policy_violations",
    "renewal_columns",
]

FrameLike = pl.DataFrame | pl.LazyFrame

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
# inputs and result


@dataclass(frozen=True)
class AudienceInputs:
    """The core tables an audience build reads, plus the dates of the register data checked."""

    customers: FrameLike
    consent_state: FrameLike
    asml_register: FrameLike
    contact_history: FrameLike
    segments: FrameLike | None = None
    contracts: FrameLike | None = None
    asml_date: dt.date | None = None
    vtj_date: dt.date | None = None


@dataclass(frozen=True)
class AudienceResult:
    audience_email: pl.DataFrame
    audience_sms: pl.DataFrame
    audience_letter: pl.DataFrame
    audience_phone: pl.DataFrame
    audience_exclusions: pl.DataFrame
    renewal_offers: pl.DataFrame
    policy_version: str
    as_of: dt.date

    def audience(self, channel: str) -> pl.DataFrame:
        return getattr(self, AUDIENCE_TABLES[channel])

    @property
    def audiences(self) -> dict[str, pl.DataFrame]:
        return {ch: self.audience(ch) for ch in CHANNELS}

    def tables(self) -> dict[str, pl.DataFrame]:
        """Every published table by its name."""
        out = {AUDIENCE_TABLES[ch]: self.audience(ch) for ch in CHANNELS}
        out["audience_exclusions"] = self.audience_exclusions
        out["renewal_offers"] = self.renewal_offers
        return out

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts only (no personal data): audience sizes and exclusions per channel and reason."""
        sizes = {ch: self.audience(ch).height for ch in CHANNELS}
        reasons: dict[str, int] = {}
        for row in self.audience_exclusions.group_by("reason").len().sort("reason").iter_rows(named=True):
            reasons[row["reason"]] = int(row["len"])
        renew: dict[str, int] = {}
        for row in self.renewal_offers.group_by("channel").len().sort("channel").iter_rows(named=True):
            renew[row["channel"]] = int(row["len"])
        return {"audience_sizes": sizes, "exclusions_by_reason": reasons, "renewal_offers_by_channel": renew}


# --------------------------------------------------------------------------------------------
# small helpers


def _lazy(frame: FrameLike, name: str, required: tuple[str, ...]) -> pl.LazyFrame:
    lf = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    if not isinstance(lf, pl.LazyFrame):
        raise TypeError(f"{name}: expected a polars DataFrame or LazyFrame, got {type(frame).__name__}")
    names = lf.collect_schema().names()
    missing = [c for c in required if c not in names]
    if missing:
        raise ValueError(f"{name}: missing required column(s) {', '.join(missing)}")
    return lf


def _utc(lf: pl.LazyFrame, column: str) -> pl.Expr:
    """`column` as a UTC datetime in microseconds; a naive timestamp is taken to be UTC."""
    dtype = lf.collect_schema()[column]
    e = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        e = e.dt.replace_time_zone("UTC") if dtype.time_zone is None else e.dt.convert_time_zone("UTC")
        return e.cast(UTC_US)
    raise TypeError(f"column {column} must be a timestamp, found {dtype}")


def frequency_window_utc(as_of: dt.date, window_days: int, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of the local days D-(window_days-1) .. D, inclusive."""
    first_day = as_of - dt.timedelta(days=window_days - 1)
    day_after = as_of + dt.timedelta(days=1)
    start = dt.datetime.combine(first_day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    end = dt.datetime.combine(day_after, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    return start, end


def _nonblank(column: str) -> pl.Expr:
    return pl.col(column).is_not_null() & (pl.col(column).cast(pl.String).str.strip_chars().str.len_chars() > 0)


def _state_norm(col: str = "state") -> pl.Expr:
    # `granted` is the only state that grants. Any other value on an existing row, null included,
    # is read as a withdrawal (fail safe). A customer with no row at all stays null after the join.
    return pl.when(pl.col(col).eq_missing(pl.lit("granted"))).then(pl.lit("granted")).otherwise(pl.lit("withdrawn"))


def _consent_prefix(purpose: str, channel: str) -> str:
    return f"_c_{purpose}_{channel}_"


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
    d = ctx.as_of
    b = pl.col("birth_date")
    birthday_not_yet = (b.dt.month().cast(pl.Int32) * 100 + b.dt.day().cast(pl.Int32)) > (d.month * 100 + d.day)
    age = pl.lit(d.year, pl.Int32) - b.dt.year().cast(pl.Int32) - birthday_not_yet.cast(pl.Int32)
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
    vtj_date: dt.date | None,
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
            pl.lit(vtj_date, pl.Date).alias("vtj_checked_on"),
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
    policy: MarketingPolicy | None,
    as_of: dt.date,
    asml_date: dt.date | None,
    vtj_date: dt.date | None,
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
        vtj_date=vtj_date,
    )
    return build_audiences_from(inputs, policy, as_of)


def build_audiences_from(inputs: AudienceInputs, policy: MarketingPolicy | None, as_of: dt.date) -> AudienceResult:
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise TypeError("as_of must be a datetime.date (the business day D)")
    policy = policy if policy is not None else load_policy()
    facts = _facts(inputs, policy, as_of).lazy()
    queries = [_audience_query(facts, policy, ch, as_of, inputs.asml_date, inputs.vtj_date) for ch in CHANNELS]
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


# --------------------------------------------------------------------------------------------
# the independent re-check


def _ref_customer_facts(inputs: AudienceInputs, policy: MarketingPolicy, as_of: dt.date) -> pl.DataFrame:
    """Per-customer facts recomputed without the rule registry, by a different route."""
    cust = _lazy(inputs.customers, "customers", REQUIRED_COLUMNS["customers"]).with_columns(
        pl.col("customer_id").cast(pl.String)
    )
    d_int = as_of.year * 10000 + as_of.month * 100 + as_of.day
    b = pl.col("birth_date").cast(pl.Date)
    b_int = b.dt.year().cast(pl.Int64) * 10000 + b.dt.month().cast(pl.Int64) * 100 + b.dt.day().cast(pl.Int64)
    ge = policy.global_exclusions
    out = cust.select(
        "customer_id",
        pl.lit(True).alias("_known"),
        pl.col("customer_type").cast(pl.String),
        pl.col(["email", "phone_e164", "first_name", "last_name", *ADDRESS_FIELDS]).cast(pl.String),
        pl.col("phone_is_mobile").cast(pl.Boolean).alias("_mobile"),
        # floor((D - birth) / 10000) in yyyymmdd arithmetic is the age in whole years
        ((pl.lit(d_int, pl.Int64) - b_int) // 10000).alias("_age"),
        (pl.col("deceased_on").cast(pl.Date) <= pl.lit(as_of)).fill_null(False).alias("_dead"),
        (
            (pl.lit(as_of) - pl.col("ended_on").cast(pl.Date)).dt.total_days()
            > (ge.former_customer.window_days if ge.former_customer else 10**9)
        )
        .fill_null(False)
        .alias("_former"),
        (pl.col("marketing_ban").cast(pl.Boolean) == True).fill_null(False).alias("_vtj_ban"),  # noqa: E712
        (pl.col("safety_ban").cast(pl.Boolean) == True).fill_null(False).alias("_safety"),  # noqa: E712
        pl.col("ended_on").cast(pl.Date).alias("_ended_on"),
    )

    # frequency cap: local calendar date of each contact, counted inside [D-window+1, D]
    if ge.frequency_cap is not None:
        ch = _lazy(inputs.contact_history, "contact_history", REQUIRED_COLUMNS["contact_history"])
        local_day = _utc(ch, "sent_at").dt.convert_time_zone(policy.timezone).dt.date()
        names = ch.collect_schema().names()
        key = [c for c in ("customer_id", "channel", "campaign_id") if c in names]
        counts = (
            ch.with_columns(
                local_day.alias("_day"), _utc(ch, "sent_at").alias("_ts"), pl.col("customer_id").cast(pl.String)
            )
            .filter(
                (pl.col("kind") == ge.frequency_cap.kind)
                & pl.col("_day").is_between(as_of - dt.timedelta(days=ge.frequency_cap.window_days - 1), as_of)
            )
            .group_by("customer_id")
            .agg(pl.struct([*key, "_ts"]).n_unique().alias("_n_contacts"))
        )
        out = out.join(counts, on="customer_id", how="left")
    else:
        out = out.with_columns(pl.lit(0).alias("_n_contacts"))

    # ASML: active entries joined on the normalised key / the E.164 number
    reg = _lazy(inputs.asml_register, "asml_register", REQUIRED_COLUMNS["asml_register"])
    reg_names = reg.collect_schema().names()
    key_expr = pl.col("match_key").cast(pl.String) if "match_key" in reg_names else asml_match_key_expr()
    live = reg.filter(
        pl.lit(as_of).is_between(
            pl.col("registered_on").fill_null(dt.date.min), pl.col("expires_on").fill_null(dt.date.max)
        )
    )
    mail_hits = (
        out.select("customer_id", asml_match_key_expr().alias("k"))
        .join(live.filter(pl.col("register") == "mail").select(key_expr.alias("k")), on="k", how="semi")
        .select("customer_id", pl.lit(True).alias("_on_asml_mail"))
        .unique()
    )
    phone_hits = (
        out.select("customer_id", "phone_e164")
        .join(
            live.filter(pl.col("register") == "phone").select(
                pl.col("phone_e164").cast(pl.String).str.replace_all(r"\s", "")
            ),
            on="phone_e164",
            how="semi",
        )
        .select("customer_id", pl.lit(True).alias("_on_asml_phone"))
        .unique()
    )
    out = out.join(mail_hits, on="customer_id", how="left").join(phone_hits, on="customer_id", how="left")

    # profiling objection: latest profiling event(s); withdrawn if any event at the latest instant is
    cs = _lazy(inputs.consent_state, "consent_state", REQUIRED_COLUMNS["consent_state"])
    cs = cs.with_columns(pl.col("customer_id").cast(pl.String), _utc(cs, "occurred_at").alias("occurred_at"))
    prof = (
        cs.filter(pl.col("purpose") == "profiling")
        .filter(pl.col("occurred_at") == pl.col("occurred_at").max().over("customer_id"))
        .group_by("customer_id")
        .agg(pl.col("state").ne_missing(pl.lit("granted")).any().alias("_objects"))
    )
    out = out.join(prof, on="customer_id", how="left")

    # consent per (purpose, channel): own-channel and all-channel rows, latest instant, withdrawn wins
    for purpose, channel in policy.consent_refs():
        rows = cs.filter(
            (pl.col("purpose") == purpose) & (pl.col("channel").is_null() | (pl.col("channel") == channel))
        )
        latest = (
            rows.filter(pl.col("occurred_at") == pl.col("occurred_at").max().over("customer_id"))
            .group_by("customer_id")
            .agg(
                pl.when(pl.col("state").ne_missing(pl.lit("granted")).any())
                .then(pl.lit("withdrawn"))
                .otherwise(pl.lit("granted"))
                .alias(f"_st_{channel}"),
                pl.col("event_id")
                .cast(pl.String)
                .filter(pl.col("state") == "granted")
                .alias(f"_granted_ids_{channel}"),
            )
        )
        out = out.join(latest, on="customer_id", how="left")

    return out.with_columns(
        pl.col(["_on_asml_mail", "_on_asml_phone", "_objects"]).fill_null(False),
        pl.col("_n_contacts").fill_null(0),
    ).collect()


def _check_contact(req: str) -> pl.Expr:
    """True when the audience row's own contact values are usable (checked on the row itself)."""
    if req == "valid_email":
        return pl.col("email").str.contains(r"^[^@\s]+@[^@\s]+$").fill_null(False)
    if req == "valid_phone":
        return pl.col("phone_e164").str.contains(r"^\+[1-9][0-9]{5,14}$").fill_null(False)
    if req == "valid_mobile":
        return pl.col("phone_e164").str.contains(r"^\+[1-9][0-9]{5,14}$").fill_null(False) & pl.col(
            "_mobile"
        ).fill_null(False)
    if req == "valid_postal_address":
        present = [
            (pl.col(c).str.strip_chars().str.len_chars() > 0).fill_null(False)
            for c in ("first_name", "last_name", "street_address", "city")
        ]
        return pl.all_horizontal(present) & pl.col("postal_code").str.contains(r"^[0-9]{5}$").fill_null(False)
    raise ValueError(f"unknown contact requirement {req!r}")


_VIOLATION_SCHEMA = {"table": pl.String, "customer_id": pl.String, "check": pl.String, "detail": pl.String}


def _hits(table: str, frame: pl.DataFrame, mask: pl.Expr, check: str, detail: str | pl.Expr) -> pl.DataFrame:
    """Rows of `frame` where `mask` holds (a null mask is no hit: masks are written missing-aware)."""
    return frame.filter(mask.fill_null(False)).select(
        pl.lit(table, pl.String).alias("table"),
        pl.col("customer_id").cast(pl.String),
        pl.lit(check, pl.String).alias("check"),
        (detail if isinstance(detail, pl.Expr) else pl.lit(detail, pl.String)).alias("detail"),
    )


def policy_violations(
    result: AudienceResult,
    inputs: AudienceInputs,
    policy: MarketingPolicy | None,
    as_of: dt.date,
) -> pl.DataFrame:
    """Every published row that breaks a rule: (table, customer_id, check, detail). Empty = pass.

    Re-derives each rule independently of the rule registry, so a bug in one is caught by the other.
    It also checks that audiences and exclusions partition customers x channels. `detail` never
    holds personal data.
    """
    policy = policy if policy is not None else load_policy()
    ref = _ref_customer_facts(inputs, policy, as_of)
    ge = policy.global_exclusions
    found: list[pl.DataFrame] = []
    seg_of = None
    if inputs.segments is not None:
        seg_of = (
            inputs.segments.lazy()
            .select(pl.col("customer_id").cast(pl.String), pl.col("segment_id").alias("_segment"))
            .drop_nulls("_segment")
            .group_by("customer_id")
            .agg(pl.col("_segment").min())
            .collect()
        )

    for channel in CHANNELS:
        table = AUDIENCE_TABLES[channel]
        cp = policy.channel(channel)
        aud = result.audience(channel)
        expected_cols = audience_columns(policy, channel)
        if tuple(aud.columns) != expected_cols:
            found.append(
                pl.DataFrame(
                    {
                        "table": [table],
                        "customer_id": [None],
                        "check": ["columns"],
                        "detail": [f"columns differ from {list(expected_cols)}"],
                    },
                    schema=_VIOLATION_SCHEMA,
                )
            )
            continue
        fields = CONTACT_FIELDS[cp.contact]
        j = (
            aud.rename({c: f"row_{c}" for c in fields})
            .with_columns(pl.col("customer_id").cast(pl.String))
            .join(ref, on="customer_id", how="left")
        )
        # the row's own contact values, checked for usability
        row_contact = j.with_columns(*[pl.col(f"row_{c}").alias(c) for c in fields])

        def add(mask: pl.Expr, check: str, detail: str, frame: pl.DataFrame = j) -> None:
            found.append(_hits(table, frame, mask, check, detail))  # noqa: B023

        add(pl.col("_known").is_null(), "unknown_customer", "not in the customers table")
        add(pl.col("customer_id").is_duplicated(), "duplicate_row", "customer appears more than once")
        add(
            ~pl.col("policy_version").eq_missing(pl.lit(policy.version)), "policy_version", f"expected {policy.version}"
        )
        add(~pl.col("as_of").eq_missing(pl.lit(as_of)), "as_of", f"expected {as_of}")
        same = pl.all_horizontal([pl.col(f"row_{c}").eq_missing(pl.col(c)) for c in fields])
        add(~same, "contact_mismatch", "contact fields differ from the customer record")
        add(~_check_contact(cp.contact), "invalid_contact", f"{cp.contact} does not hold", row_contact)

        st = pl.col(f"_st_{cp.consent.channel}")
        add(st.eq_missing(pl.lit("withdrawn")), "consent_withdrawn", "latest consent event is a withdrawal")
        granted = st.eq_missing(pl.lit("granted"))
        if cp.legal_basis == "consent":
            soft_ok = (
                pl.lit(cp.soft_opt_in)
                & st.is_null()
                & (pl.col("_ended_on").is_null() | (pl.col("_ended_on") >= pl.lit(as_of))).fill_null(False)
            )
            add(~(granted | soft_ok), "consent_missing", "no granted consent")
            add(
                granted & ~pl.col("legal_basis").eq_missing(pl.lit("consent")),
                "legal_basis",
                "consent row not marked consent",
            )
            deciding = (
                pl.col(f"_granted_ids_{cp.consent.channel}").list.contains(pl.col("consent_event_id")).fill_null(False)
            )
            add(granted & ~deciding, "consent_evidence", "consent_event_id is not the deciding granted event")
            required = [n for _, n in CONSENT_EVIDENCE if n != "consent_evidence_ref"]
            add(
                granted & pl.any_horizontal([pl.col(n).is_null() for n in required]),
                "consent_evidence",
                "deciding consent event fields are missing",
            )
        else:
            add(~pl.col("legal_basis").eq_missing(pl.lit("opt_out")), "legal_basis", "expected opt_out")

        if ge.deceased is not None:
            add(pl.col("_dead"), "deceased", "deceased on or before D")
        if ge.minor is not None:
            add(
                pl.col("customer_type").eq_missing(pl.lit("person"))
                & ~(pl.col("_age") >= ge.minor.age_limit).fill_null(False),
                "minor",
                f"not shown to be {ge.minor.age_limit} or older on D",
            )
        if ge.company is not None:
            add(~pl.col("customer_type").eq_missing(pl.lit("person")), "company", "not a household customer")
        if ge.former_customer is not None:
            add(pl.col("_former"), "former_customer", "relationship ended before the window")
        if ge.frequency_cap is not None:
            add(pl.col("_n_contacts") >= ge.frequency_cap.cap, "frequency_cap", "marketing contact cap reached")
        channel_checks = {
            "asml_mail": pl.col("_on_asml_mail"),
            "asml_phone": pl.col("_on_asml_phone"),
            "vtj_marketing_ban": pl.col("_vtj_ban"),
            "safety_ban": pl.col("_safety"),
        }
        for code in cp.exclusions:
            add(channel_checks[code], code, f"{code} applies on D")
        shown = [f"row_{c}" for c in ADDRESS_FIELDS if c in fields]
        if shown:
            add(
                pl.col("_safety") & pl.any_horizontal([pl.col(c).is_not_null() for c in shown]),
                "address_under_safety_ban",
                "address shown for a safety-banned customer",
            )
        add(
            pl.col("_objects") & pl.col("segment_id").is_not_null(),
            "segment_after_objection",
            "segment shown for a customer who objected to profiling",
        )
        if seg_of is not None:
            js = j.select("customer_id", "segment_id", "_objects").join(seg_of, on="customer_id", how="left")
            add(
                ~pl.col("_objects") & ~pl.col("segment_id").eq_missing(pl.col("_segment")),
                "segment_mismatch",
                "segment_id differs from customer_segments",
                js,
            )

    # audiences and exclusions partition customers x channels
    exc = result.audience_exclusions.select(
        pl.col("customer_id").cast(pl.String), pl.col("channel").cast(pl.String)
    ).unique()
    members = pl.concat(
        [
            result.audience(ch).select(pl.col("customer_id").cast(pl.String), pl.lit(ch, pl.String).alias("channel"))
            for ch in CHANNELS
        ]
    )
    both = members.join(exc, on=["customer_id", "channel"], how="semi")
    found.append(
        _hits(
            "audience_exclusions",
            both,
            pl.lit(True),
            "in_audience_and_excluded",
            pl.lit("also in audience_") + pl.col("channel"),
        )
    )
    everyone = ref.select("customer_id").join(pl.DataFrame({"channel": list(CHANNELS)}), how="cross")
    lost = everyone.join(members, on=["customer_id", "channel"], how="anti").join(
        exc, on=["customer_id", "channel"], how="anti"
    )
    found.append(
        _hits(
            "audience_exclusions",
            lost,
            pl.lit(True),
            "unaccounted",
            pl.lit("neither in nor excluded from ") + pl.col("channel"),
        )
    )
    found.append(
        _hits(
            "audience_exclusions",
            result.audience_exclusions,
            ~pl.col("reason").is_in(list(REASON_CODES)),
            "reason_code",
            "unknown reason code",
        )
    )
    found.append(
        _hits(
            "audience_exclusions",
            result.audience_exclusions,
            pl.struct("customer_id", "channel", "reason").is_duplicated(),
            "duplicate_row",
            "reason listed twice",
        )
    )

    found.extend(_renewal_violations(result, inputs, policy, as_of, ref))

    found = [f for f in found if f.height]
    if not found:
        return pl.DataFrame(schema=_VIOLATION_SCHEMA)
    return pl.concat([f.cast(_VIOLATION_SCHEMA) for f in found]).sort(
        ["table", "customer_id", "check"], nulls_last=True
    )


def _renewal_violations(
    result: AudienceResult, inputs: AudienceInputs, policy: MarketingPolicy, as_of: dt.date, ref: pl.DataFrame
) -> list[pl.DataFrame]:
    rp = policy.renewal
    table = "renewal_offers"
    ro = result.renewal_offers
    all_fields = renewal_contact_fields(policy)
    if tuple(ro.columns) != renewal_columns(policy):
        return [
            pl.DataFrame(
                {
                    "table": [table],
                    "customer_id": [None],
                    "check": ["columns"],
                    "detail": [f"columns differ from {list(renewal_columns(policy))}"],
                },
                schema=_VIOLATION_SCHEMA,
            )
        ]
    if ro.height == 0:
        return []
    j = (
        ro.rename({c: f"row_{c}" for c in all_fields})
        .with_columns(pl.col("customer_id").cast(pl.String), pl.col("contract_id").cast(pl.String))
        .join(ref, on="customer_id", how="left")
    )
    if inputs.contracts is not None:
        con = (
            inputs.contracts.lazy()
            .select(
                pl.col("contract_id").cast(pl.String),
                pl.col("contract_type").cast(pl.String).alias("_ctype"),
                pl.col("customer_id").cast(pl.String).alias("_owner"),
                pl.col("end_date").cast(pl.Date).alias("_end"),
            )
            .collect()
        )
        j = j.join(con, on="contract_id", how="left")
    else:
        j = j.with_columns(
            pl.lit(None, pl.String).alias("_ctype"),
            pl.lit(None, pl.String).alias("_owner"),
            pl.lit(None, pl.Date).alias("_end"),
        )
    out: list[pl.DataFrame] = []

    def add(mask: pl.Expr, check: str, detail: str, frame: pl.DataFrame = j) -> None:
        out.append(_hits(table, frame, mask, check, detail))

    add(pl.col("_known").is_null(), "unknown_customer", "not in the customers table")
    add(pl.col("contract_id").is_duplicated(), "duplicate_row", "contract appears more than once")
    add(
        ~pl.col("_ctype").eq_missing(pl.lit(rp.contract_type)),
        "contract_type",
        f"not a known {rp.contract_type} contract",
    )
    add(~pl.col("_owner").eq_missing(pl.col("customer_id")), "contract_owner", "contract belongs to another customer")
    in_window = pl.col("_end").is_between(as_of + dt.timedelta(days=1), as_of + dt.timedelta(days=rp.window_days))
    add(
        ~in_window.fill_null(False) | ~pl.col("_end").eq_missing(pl.col("end_date")),
        "renewal_window",
        "end_date outside the renewal window",
    )
    add(
        ~pl.col("customer_type").is_in(list(rp.customer_types)).fill_null(False),
        "company",
        "customer type out of scope",
    )
    if "deceased" in rp.no_row_for:
        add(pl.col("_dead"), "deceased", "renewal offer for a deceased customer")
    shown = [f"row_{c}" for c in ADDRESS_FIELDS if c in all_fields]
    if shown:
        add(
            pl.col("_safety") & pl.any_horizontal([pl.col(c).is_not_null() for c in shown]),
            "address_under_safety_ban",
            "address shown for a safety-banned customer",
        )
    add(
        ~pl.col("channel").is_in([*rp.channel_preference, RENEWAL_NO_CHANNEL]).fill_null(False),
        "renewal_channel",
        "channel not in the renewal preference",
    )
    for ch in rp.channel_preference:
        cp = policy.channel(ch)
        fields = CONTACT_FIELDS[cp.contact]
        on_ch = pl.col("channel") == ch
        row_contact = j.with_columns(*[pl.col(f"row_{c}").alias(c) for c in fields])
        add(on_ch & ~_check_contact(cp.contact), "invalid_contact", f"{cp.contact} does not hold", row_contact)
        add(
            on_ch & ~pl.all_horizontal([pl.col(f"row_{c}").eq_missing(pl.col(c)) for c in fields]),
            "contact_mismatch",
            "contact fields differ from the customer record",
        )
        others = [f for f in all_fields if f not in fields]
        if others:
            add(
                on_ch & pl.any_horizontal([pl.col(f"row_{f}").is_not_null() for f in others]),
                "contact_leak",
                "carries contact fields of another channel",
            )
    # the channel must be the first usable one in the preference order
    expected: pl.Expr = pl.lit(RENEWAL_NO_CHANNEL)
    for ch in reversed(rp.channel_preference):
        cp = policy.channel(ch)
        ok = _check_contact(cp.contact)
        if cp.uses_address or any(code in rp.channel_blocked_by for code in cp.exclusions):
            blocked = [
                {
                    "asml_mail": pl.col("_on_asml_mail"),
                    "asml_phone": pl.col("_on_asml_phone"),
                    "vtj_marketing_ban": pl.col("_vtj_ban"),
                    "safety_ban": pl.col("_safety"),
                }[code]
                for code in cp.exclusions
                if code in rp.channel_blocked_by
            ]
            if blocked:
                ok = ok & ~pl.any_horizontal(blocked)
        expected = pl.when(ok).then(pl.lit(ch)).otherwise(expected)
    add(~pl.col("channel").eq_missing(expected), "renewal_channel", "not the first usable channel in the preference")
    if inputs.contracts is not None:
        due = (
            inputs.contracts.lazy()
            .select(
                pl.col("contract_id").cast(pl.String),
                pl.col("customer_id").cast(pl.String),
                pl.col("contract_type").cast(pl.String),
                pl.col("end_date").cast(pl.Date),
            )
            .filter(
                (pl.col("contract_type") == rp.contract_type)
                & pl.col("end_date").is_between(as_of + dt.timedelta(days=1), as_of + dt.timedelta(days=rp.window_days))
            )
            .collect()
            .join(
                ref.filter(
                    pl.col("customer_type").is_in(list(rp.customer_types))
                    & ~(pl.col("_dead") & pl.lit("deceased" in rp.no_row_for))
                ).select("customer_id"),
                on="customer_id",
                how="semi",
            )
            .join(ro.select(pl.col("contract_id").cast(pl.String)), on="contract_id", how="anti")
        )
        add(pl.lit(True), "renewal_missing", "a due household contract has no renewal row", due)
    add(
        (pl.col("channel") == RENEWAL_NO_CHANNEL)
        & pl.any_horizontal([pl.col(f"row_{f}").is_not_null() for f in all_fields]),
        "contact_leak",
        "no channel but contact fields set",
    )
    return out
