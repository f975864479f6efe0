"""The independent re-check that blocks publication.

`policy_violations` does not use the rule registry of `audience_rules`: it recomputes each rule by a
separately written route from the same inputs and reports every published row that breaks one. Two
routes to one answer: a bug in one shows as a violation instead of a wrong audience.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from data_contracts.audiences import (
    ADDRESS_FIELDS,
    AUDIENCE_TABLES,
    CONSENT_EVIDENCE,
    CONTACT_FIELDS,
    REQUIRED_COLUMNS,
    audience_columns,
    renewal_columns,
    renewal_contact_fields,
)
from data_contracts.normalise import asml_match_key_expr
from data_contracts.policy import (
    REASON_CODES,
    RENEWAL_NO_CHANNEL,
    MarketingPolicy,
)
from data_contracts.vocabulary import CHANNELS
from models.audience_inputs import (
    AudienceInputs,
    AudienceResult,
    _lazy,
    _utc,
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
        # floor((D - birth) / 10000) in yyyymmdd arithmetic is the age in whole years. Deliberately not
        # models/age.py: this route must stay independent of the rules it checks. It gives the same
        # answer: a 29 February birth is a year older on 1 March in a non-leap year (test_age_rules.py)
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
    policy: MarketingPolicy,
    as_of: dt.date,
) -> pl.DataFrame:
    """Every published row that breaks a rule: (table, customer_id, check, detail). Empty = pass.

    Re-derives each rule independently of the rule registry, so a bug in one is caught by the other.
    It also checks that audiences and exclusions partition customers x channels. `detail` never
    holds personal data.
    """
    ref = _ref_customer_facts(inputs, policy, as_of)
    seg_of = _segments_of(inputs)
    found: list[pl.DataFrame] = []
    for channel in CHANNELS:
        found.extend(_channel_violations(channel, result, ref, policy, as_of, seg_of))
    found.extend(_partition_violations(result, ref))
    found.extend(_renewal_violations(result, inputs, policy, as_of, ref))

    found = [f for f in found if f.height]
    if not found:
        return pl.DataFrame(schema=_VIOLATION_SCHEMA)
    return pl.concat([f.cast(_VIOLATION_SCHEMA) for f in found]).sort(
        ["table", "customer_id", "check"], nulls_last=True
    )


def _segments_of(inputs: AudienceInputs) -> pl.DataFrame | None:
    """customer_id -> the segment customer_segments gives (the lowest, were there several)."""
    if inputs.segments is None:
        return None
    return (
        inputs.segments.lazy()
        .select(pl.col("customer_id").cast(pl.String), pl.col("segment_id").alias("_segment"))
        .drop_nulls("_segment")
        .group_by("customer_id")
        .agg(pl.col("_segment").min())
        .collect()
    )


def _channel_violations(
    channel: str,
    result: AudienceResult,
    ref: pl.DataFrame,
    policy: MarketingPolicy,
    as_of: dt.date,
    seg_of: pl.DataFrame | None,
) -> list[pl.DataFrame]:
    """Every row of one channel's audience that breaks a rule of that channel."""
    table = AUDIENCE_TABLES[channel]
    cp = policy.channel(channel)
    aud = result.audience(channel)
    expected_cols = audience_columns(policy, channel)
    if tuple(aud.columns) != expected_cols:
        return [
            pl.DataFrame(
                {
                    "table": [table],
                    "customer_id": [None],
                    "check": ["columns"],
                    "detail": [f"columns differ from {list(expected_cols)}"],
                },
                schema=_VIOLATION_SCHEMA,
            )
        ]
    fields = CONTACT_FIELDS[cp.contact]
    j = (
        aud.rename({c: f"row_{c}" for c in fields})
        .with_columns(pl.col("customer_id").cast(pl.String))
        .join(ref, on="customer_id", how="left")
    )
    # the row's own contact values, checked for usability
    row_contact = j.with_columns(*[pl.col(f"row_{c}").alias(c) for c in fields])

    found: list[pl.DataFrame] = []

    def add(mask: pl.Expr, check: str, detail: str, frame: pl.DataFrame = j) -> None:
        found.append(_hits(table, frame, mask, check, detail))

    add(pl.col("_known").is_null(), "unknown_customer", "not in the customers table")
    add(pl.col("customer_id").is_duplicated(), "duplicate_row", "customer appears more than once")
    add(~pl.col("policy_version").eq_missing(pl.lit(policy.version)), "policy_version", f"expected {policy.version}")
    add(~pl.col("as_of").eq_missing(pl.lit(as_of)), "as_of", f"expected {as_of}")
    same = pl.all_horizontal([pl.col(f"row_{c}").eq_missing(pl.col(c)) for c in fields])
    add(~same, "contact_mismatch", "contact fields differ from the customer record")
    add(~_check_contact(cp.contact), "invalid_contact", f"{cp.contact} does not hold", row_contact)

    st = pl.col(f"_st_{cp.consent.channel}")
    add(st.eq_missing(pl.lit("withdrawn")), "consent_withdrawn", "latest consent event is a withdrawal")
    granted = st.eq_missing(pl.lit("granted"))
    _consent_violations(add, cp, st, granted, as_of)
    _global_violations(add, policy.global_exclusions)
    for code in cp.exclusions:
        add(_CHANNEL_EXCLUSION_FACTS[code], code, f"{code} applies on D")
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
    return found


def _consent_violations(add, cp, st: pl.Expr, granted: pl.Expr, as_of: dt.date) -> None:
    """The channel's legal basis: a consent row needs the deciding granted event and its evidence."""
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


def _global_violations(add, ge) -> None:
    """The exclusions every marketing channel applies (the policy's `global_exclusions`)."""
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


def _partition_violations(result: AudienceResult, ref: pl.DataFrame) -> list[pl.DataFrame]:
    """Audiences and exclusions partition customers x channels, with known reason codes, once each."""
    found: list[pl.DataFrame] = []
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
    return found


#: channel exclusion code -> the reference fact that says it applies
_CHANNEL_EXCLUSION_FACTS: dict[str, pl.Expr] = {
    "asml_mail": pl.col("_on_asml_mail"),
    "asml_phone": pl.col("_on_asml_phone"),
    "vtj_marketing_ban": pl.col("_vtj_ban"),
    "safety_ban": pl.col("_safety"),
}


def _with_contract_facts(rows: pl.DataFrame, contracts) -> pl.DataFrame:
    """Each renewal row with its contract's type, owner and end date (null when contracts are absent)."""
    if contracts is None:
        return rows.with_columns(
            pl.lit(None, pl.String).alias("_ctype"),
            pl.lit(None, pl.String).alias("_owner"),
            pl.lit(None, pl.Date).alias("_end"),
        )
    con = (
        contracts.lazy()
        .select(
            pl.col("contract_id").cast(pl.String),
            pl.col("contract_type").cast(pl.String).alias("_ctype"),
            pl.col("customer_id").cast(pl.String).alias("_owner"),
            pl.col("end_date").cast(pl.Date).alias("_end"),
        )
        .collect()
    )
    return rows.join(con, on="contract_id", how="left")


def _expected_renewal_channel(policy: MarketingPolicy) -> pl.Expr:
    """The first usable channel in the preference order, or `none`: what each renewal row must carry."""
    rp = policy.renewal
    expected: pl.Expr = pl.lit(RENEWAL_NO_CHANNEL)
    for ch in reversed(rp.channel_preference):
        cp = policy.channel(ch)
        ok = _check_contact(cp.contact)
        if cp.uses_address or any(code in rp.channel_blocked_by for code in cp.exclusions):
            blocked = [_CHANNEL_EXCLUSION_FACTS[code] for code in cp.exclusions if code in rp.channel_blocked_by]
            if blocked:
                ok = ok & ~pl.any_horizontal(blocked)
        expected = pl.when(ok).then(pl.lit(ch)).otherwise(expected)
    return expected


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
    j = _with_contract_facts(j, inputs.contracts)
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
    add(
        ~pl.col("channel").eq_missing(_expected_renewal_channel(policy)),
        "renewal_channel",
        "not the first usable channel in the preference",
    )
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
