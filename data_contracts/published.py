"""Pandera (polars) contracts for every table the marketing mart publishes.

The mart is built as a new file and only renamed into place after every table passes these
contracts. Each schema is strict (exactly its columns), no string column anywhere may hold something
shaped like a personal identity code (henkilötunnus), and exclusion reasons are a closed set.

Validation failures must not leak personal data into logs or Dagster metadata, so use
`validate_published`: it raises `PublishedContractError` with counts per failed check only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandera.polars as pa
import polars as pl

from data_contracts.vocabulary import CHANNELS, LANGUAGES

from .audiences import (
    ADDRESS_FIELDS,
    AUDIENCE_TABLES,
    CONTACT_FIELDS,
    EVENT_REASONS,
    EXCLUSION_COLUMNS,
    PROSPECT_AUDIENCE_TABLES,
    PROSPECT_EXCLUSION_COLUMNS,
    PROSPECT_EXCLUSIONS_TABLE,
    UTC_US,
    audience_columns,
    prospect_audience_columns,
    renewal_columns,
    renewal_contact_fields,
)
from .identifiers import HETU_PATTERN
from .policy import (
    PROSPECT_REASON_CODES,
    REASON_CODES,
    RENEWAL_CHANNELS,
    RENEWAL_NO_CHANNEL,
    MarketingPolicy,
    load_policy,
)

__all__ = [
    "HETU_PATTERN",
    "PublishedContractError",
    "audience_exclusions_schema",
    "audience_schema",
    "contains_personal_id",
    "customer_segments_schema",
    "prospect_audience_schema",
    "prospect_exclusions_schema",
    "prospect_published_schemas",
    "published_schemas",
    "renewal_offers_schema",
    "segment_catalogue_schema",
    "validate_published",
]

#: DDMMYY, a century sign (+ - A-F U-Y), a 3-digit individual number and a check character.
#: Case-insensitive and unanchored: anything shaped like a henkilötunnus inside any value fails.

CUSTOMER_ID_PATTERN = r"^C[0-9]{7}$"
PROSPECT_ID_PATTERN = r"^P[0-9]{9}$"

_CONTACT_CHECKS: dict[str, list[pa.Check]] = {
    "email": [pa.Check.str_matches(r"^[^@\s]+@[^@\s]+$")],
    "phone_e164": [pa.Check.str_matches(r"^\+[1-9][0-9]{5,14}$")],
    "postal_code": [pa.Check.str_matches(r"^[0-9]{5}$")],
}


class PublishedContractError(ValueError):
    """A published table breaks its contract. The message holds counts, never values."""


# --------------------------------------------------------------------------------------------
# shared checks


def _text_columns(lf: pl.LazyFrame) -> list[str]:
    return [n for n, t in lf.collect_schema().items() if isinstance(t, (pl.String, pl.Categorical, pl.Enum))]


def _no_personal_id(data: pa.PolarsData) -> pl.LazyFrame | bool:
    cols = _text_columns(data.lazyframe)
    if not cols:
        return True
    return data.lazyframe.select(
        (
            ~pl.any_horizontal([pl.col(c).cast(pl.String).str.contains(HETU_PATTERN).fill_null(False) for c in cols])
        ).alias("no_personal_id")
    )


NO_PERSONAL_ID = pa.Check(_no_personal_id, name="no_personal_id", error="a value looks like a personal identity code")


def contains_personal_id(df: pl.DataFrame) -> bool:
    """True when any text value in `df` is shaped like a personal identity code."""
    cols = _text_columns(df.lazy())
    if not cols or df.height == 0:
        return False
    return bool(
        df.select(
            pl.any_horizontal(
                [pl.col(c).cast(pl.String).str.contains(HETU_PATTERN).fill_null(False) for c in cols]
            ).any()
        ).item()
    )


def _not_in(ids: Iterable[str] | None, name: str, error: str) -> list[pa.Check]:
    if ids is None:
        return []
    banned = sorted(set(ids))

    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((~pl.col("customer_id").is_in(banned)).alias(name))

    return [pa.Check(check, name=name, error=error)]


def _row_check(expr: pl.Expr, name: str, error: str) -> pa.Check:
    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(expr.fill_null(False).alias(name))

    return pa.Check(check, name=name, error=error)


def _version_checks(policy: MarketingPolicy | None) -> list[pa.Check]:
    return [pa.Check.equal_to(policy.version)] if policy is not None else []


def _customer_id(unique: bool = False) -> pa.Column:
    return pa.Column(pl.String, checks=[pa.Check.str_matches(CUSTOMER_ID_PATTERN)], unique=unique)


# --------------------------------------------------------------------------------------------
# the schemas


def audience_schema(
    channel: str,
    policy: MarketingPolicy | None = None,
    safety_ban_ids: Iterable[str] | None = None,
) -> pa.DataFrameSchema:
    """Contract of `audience_<channel>`. Pass `safety_ban_ids` to prove no banned address is shown."""
    policy_ = policy if policy is not None else load_policy()
    cp = policy_.channel(channel)
    fields = CONTACT_FIELDS[cp.contact]
    cols: dict[str, pa.Column] = {
        "customer_id": _customer_id(unique=True),
        "segment_id": pa.Column(None, nullable=True),
        "language": pa.Column(pl.String, checks=[pa.Check.isin(LANGUAGES)]),
    }
    for f in fields:
        cols[f] = pa.Column(pl.String, checks=list(_CONTACT_CHECKS.get(f, [pa.Check.str_length(min_value=1)])))
    cols |= {
        "legal_basis": pa.Column(pl.String, checks=[pa.Check.isin(["consent", "opt_out"])]),
        "rule": pa.Column(pl.String, checks=[pa.Check.str_length(min_value=1)]),
        "consent_event_id": pa.Column(pl.String, nullable=True),
        "consent_occurred_at": pa.Column(UTC_US, nullable=True),
        "consent_source": pa.Column(pl.String, nullable=True),
        "consent_wording_version": pa.Column(pl.String, nullable=True),
        "consent_evidence_ref": pa.Column(pl.String, nullable=True),
        "asml_checked_on": pa.Column(pl.Date, nullable=True),
        "vtj_checked_on": pa.Column(pl.Date, nullable=True),
        "policy_version": pa.Column(pl.String, checks=_version_checks(policy)),
        "as_of": pa.Column(pl.Date),
    }
    assert tuple(cols) == audience_columns(policy_, channel)
    checks = [
        NO_PERSONAL_ID,
        _row_check(
            (pl.col("legal_basis") != "consent")
            | pl.all_horizontal(
                [
                    pl.col(c).is_not_null()
                    for c in ("consent_event_id", "consent_occurred_at", "consent_source", "consent_wording_version")
                ]
            ),
            "consent_evidence",
            "a consent row must carry its deciding consent event",
        ),
    ]
    if cp.legal_basis == "opt_out":
        checks.append(_row_check(pl.col("legal_basis") == "opt_out", "legal_basis", f"{channel} is an opt-out channel"))
    if cp.uses_address:
        checks += _not_in(safety_ban_ids, "no_safety_ban_address", "a safety-banned customer's address is shown")
    return pa.DataFrameSchema(cols, checks=checks, strict=True, name=AUDIENCE_TABLES[channel])


def audience_exclusions_schema(policy: MarketingPolicy | None = None) -> pa.DataFrameSchema:
    cols = {
        "customer_id": _customer_id(),
        "channel": pa.Column(pl.String, checks=[pa.Check.isin(list(CHANNELS))]),
        "reason": pa.Column(pl.String, checks=[pa.Check.isin(list(REASON_CODES))]),
        # the deciding consent event of a consent reason (`consent_withdrawn`); null for every other reason
        "consent_event_id": pa.Column(pl.String, nullable=True),
        "policy_version": pa.Column(pl.String, checks=_version_checks(policy)),
        "as_of": pa.Column(pl.Date),
    }
    assert tuple(cols) == EXCLUSION_COLUMNS
    by_event = pl.col("reason").is_in(list(EVENT_REASONS))
    return pa.DataFrameSchema(
        cols,
        checks=[
            NO_PERSONAL_ID,
            _row_check(
                ~by_event | pl.col("consent_event_id").is_not_null(),
                "deciding_event",
                "a consent withdrawal must carry its deciding consent event",
            ),
            _row_check(
                by_event | pl.col("consent_event_id").is_null(),
                "no_event_without_consent_reason",
                "only a consent reason carries a consent event",
            ),
        ],
        strict=True,
        unique=["customer_id", "channel", "reason"],
        name="audience_exclusions",
    )


def renewal_offers_schema(
    policy: MarketingPolicy | None = None,
    safety_ban_ids: Iterable[str] | None = None,
) -> pa.DataFrameSchema:
    """Contract of `renewal_offers`: contact fields only for the chosen channel, none under a safety ban."""
    policy_ = policy if policy is not None else load_policy()
    fields = renewal_contact_fields(policy_)
    cols: dict[str, pa.Column] = {
        "contract_id": pa.Column(pl.String, unique=True),
        "customer_id": _customer_id(),
        "end_date": pa.Column(pl.Date),
        "language": pa.Column(pl.String, checks=[pa.Check.isin(LANGUAGES)]),
        "channel": pa.Column(pl.String, checks=[pa.Check.isin(list(RENEWAL_CHANNELS))]),
        "reason": pa.Column(pl.String, checks=[pa.Check.str_length(min_value=1)]),
    }
    for f in fields:
        cols[f] = pa.Column(pl.String, nullable=True, checks=list(_CONTACT_CHECKS.get(f, [])))
    cols |= {
        "policy_version": pa.Column(pl.String, checks=_version_checks(policy)),
        "as_of": pa.Column(pl.Date),
    }
    assert tuple(cols) == renewal_columns(policy_)
    checks = [
        NO_PERSONAL_ID,
        _row_check(
            (pl.col("end_date") > pl.col("as_of"))
            & (pl.col("end_date") <= pl.col("as_of") + pl.duration(days=policy_.renewal.window_days)),
            "renewal_window",
            "end_date must fall within the renewal window after as_of",
        ),
        _row_check(
            (pl.col("channel") != RENEWAL_NO_CHANNEL) | pl.all_horizontal([pl.col(f).is_null() for f in fields]),
            "no_channel_no_contact",
            "a row without a channel carries no contact fields",
        ),
    ]
    for ch in policy_.renewal.channel_preference:
        own = CONTACT_FIELDS[policy_.channel(ch).contact]
        others = [f for f in fields if f not in own]
        checks.append(
            _row_check(
                (pl.col("channel") != ch)
                | (
                    pl.all_horizontal([pl.col(f).is_not_null() for f in own])
                    & pl.all_horizontal([pl.col(f).is_null() for f in others] or [pl.lit(True)])
                ),
                f"{ch}_contact_only",
                f"a {ch} row carries exactly the {ch} contact fields",
            )
        )
    address = [f for f in fields if f in ADDRESS_FIELDS]
    if safety_ban_ids is not None and address:
        banned = sorted(set(safety_ban_ids))
        checks.append(
            _row_check(
                ~pl.col("customer_id").is_in(banned) | pl.all_horizontal([pl.col(f).is_null() for f in address]),
                "no_safety_ban_address",
                "a safety-banned customer's address is shown",
            )
        )
    return pa.DataFrameSchema(cols, checks=checks, strict=True, name="renewal_offers")


def customer_segments_schema() -> pa.DataFrameSchema:
    cols = {
        "customer_id": _customer_id(unique=True),
        "segment_id": pa.Column(None),
        "model_version": pa.Column(pl.String, checks=[pa.Check.str_length(min_value=1)]),
        "as_of": pa.Column(pl.Date),
    }
    return pa.DataFrameSchema(cols, checks=[NO_PERSONAL_ID], strict=True, name="customer_segments")


def _is_integer(data: pa.PolarsData) -> bool:
    return data.lazyframe.collect_schema()[data.key].is_integer()


def _is_numeric(data: pa.PolarsData) -> bool:
    return data.lazyframe.collect_schema()[data.key].is_numeric()


def segment_catalogue_schema() -> pa.DataFrameSchema:
    """Segment names and profiles. Centroids are any number of numeric `centroid_<feature>` columns."""
    text = {f"{kind}_{lang}": pa.Column(pl.String) for kind in ("name", "description") for lang in LANGUAGES}
    cols = {
        "segment_id": pa.Column(None, unique=True),
        **{k: text[k] for k in ("name_fi", "name_sv", "name_en", "description_fi", "description_sv", "description_en")},
        "size": pa.Column(None, checks=[pa.Check(_is_integer, name="integer"), pa.Check.ge(0)]),
        "model_version": pa.Column(pl.String, checks=[pa.Check.str_length(min_value=1)]),
        r"^centroid_.+$": pa.Column(
            None, regex=True, required=False, nullable=True, checks=[pa.Check(_is_numeric, name="numeric")]
        ),
    }
    return pa.DataFrameSchema(cols, checks=[NO_PERSONAL_ID], strict=True, name="segment_catalogue")


def published_schemas(
    policy: MarketingPolicy | None = None,
    safety_ban_ids: Iterable[str] | None = None,
) -> dict[str, pa.DataFrameSchema]:
    """Every published table's contract by table name."""
    policy_ = policy if policy is not None else load_policy()
    out = {AUDIENCE_TABLES[ch]: audience_schema(ch, policy_, safety_ban_ids) for ch in CHANNELS}
    out["audience_exclusions"] = audience_exclusions_schema(policy_)
    out["renewal_offers"] = renewal_offers_schema(policy_, safety_ban_ids)
    out["segment_catalogue"] = segment_catalogue_schema()
    out["customer_segments"] = customer_segments_schema()
    return out


# --------------------------------------------------------------------------------------------
# prospects: their own tables, read the same way as the customer audiences (decisions §24)


def prospect_audience_schema(
    channel: str, policy: MarketingPolicy | None = None, safety_ban_ids: Iterable[str] | None = None
) -> pa.DataFrameSchema:
    """Contract of `prospect_audience_<channel>`. `safety_ban_ids` are prospect ids under a safety ban."""
    policy_ = policy if policy is not None else load_policy()
    assert policy_.prospects is not None
    cp = policy_.prospects.channels[channel]  # type: ignore[index]
    cols: dict[str, pa.Column] = {
        "prospect_id": pa.Column(pl.String, checks=[pa.Check.str_matches(PROSPECT_ID_PATTERN)], unique=True),
        "lead_source": pa.Column(
            pl.String, checks=[pa.Check.isin(["competition", "event", "offer_request", "address_list"])]
        ),
        "language": pa.Column(pl.String, nullable=True, checks=[pa.Check.isin(LANGUAGES)]),
    }
    for f in CONTACT_FIELDS[cp.contact]:
        cols[f] = pa.Column(pl.String, checks=list(_CONTACT_CHECKS.get(f, [pa.Check.str_length(min_value=1)])))
    cols |= {
        "legal_basis": pa.Column(pl.String, checks=[pa.Check.isin([cp.legal_basis])]),
        "rule": pa.Column(pl.String, checks=[pa.Check.str_length(min_value=1)]),
        "consent_source": pa.Column(pl.String, nullable=True),
        "consent_collected_on": pa.Column(pl.Date, nullable=True),
        "consent_wording_version": pa.Column(pl.String, nullable=True),
        "consent_evidence_ref": pa.Column(pl.String, nullable=True),
        "asml_checked_on": pa.Column(pl.Date, nullable=True),
        "vtj_checked_on": pa.Column(pl.Date, nullable=True),
        "policy_version": pa.Column(pl.String, checks=_version_checks(policy)),
        "as_of": pa.Column(pl.Date),
    }
    assert tuple(cols) == prospect_audience_columns(policy_, channel)
    evidence = ("consent_source", "consent_collected_on", "consent_wording_version", "consent_evidence_ref")
    checks = [
        NO_PERSONAL_ID,
        _row_check(
            (pl.col("legal_basis") != "consent") | pl.all_horizontal([pl.col(c).is_not_null() for c in evidence]),
            "consent_evidence",
            "a consent row must carry the prospect's consent evidence",
        ),
        _row_check(
            (pl.col("legal_basis") != "consent") | (pl.col("lead_source") != "address_list"),
            "no_consent_from_a_purchased_list",
            "a purchased address list never gives consent",
        ),
    ]
    if cp.uses_address and safety_ban_ids is not None:
        banned = sorted(set(safety_ban_ids))
        checks.append(
            _row_check(
                ~pl.col("prospect_id").is_in(banned), "no_safety_ban_address", "a safety-banned prospect's address"
            )
        )
    return pa.DataFrameSchema(cols, checks=checks, strict=True, name=PROSPECT_AUDIENCE_TABLES[channel])


def prospect_exclusions_schema(policy: MarketingPolicy | None = None) -> pa.DataFrameSchema:
    cols = {
        "prospect_id": pa.Column(pl.String, checks=[pa.Check.str_matches(PROSPECT_ID_PATTERN)]),
        "channel": pa.Column(pl.String, checks=[pa.Check.isin(list(CHANNELS))]),
        "reason": pa.Column(pl.String, checks=[pa.Check.isin(list(PROSPECT_REASON_CODES))]),
        "detail": pa.Column(pl.String, nullable=True),
        "policy_version": pa.Column(pl.String, checks=_version_checks(policy)),
        "as_of": pa.Column(pl.Date),
    }
    assert tuple(cols) == PROSPECT_EXCLUSION_COLUMNS
    return pa.DataFrameSchema(
        cols,
        checks=[
            NO_PERSONAL_ID,
            _row_check(
                (pl.col("reason") == "is_customer") | pl.col("detail").is_null(),
                "detail_only_for_is_customer",
                "only is_customer says how it matched",
            ),
        ],
        strict=True,
        unique=["prospect_id", "channel", "reason"],
        name=PROSPECT_EXCLUSIONS_TABLE,
    )


def prospect_published_schemas(
    policy: MarketingPolicy | None = None, safety_ban_ids: Iterable[str] | None = None
) -> dict[str, pa.DataFrameSchema]:
    """Every published prospect table's contract by table name (empty when the policy has no prospects)."""
    policy_ = policy if policy is not None else load_policy()
    if policy_.prospects is None:
        return {}
    out = {PROSPECT_AUDIENCE_TABLES[ch]: prospect_audience_schema(ch, policy_, safety_ban_ids) for ch in CHANNELS}
    out[PROSPECT_EXCLUSIONS_TABLE] = prospect_exclusions_schema(policy_)
    return out


# --------------------------------------------------------------------------------------------
# validation without leaking values


_COLUMN_REASONS = {"COLUMN_NOT_IN_SCHEMA", "COLUMN_NOT_IN_DATAFRAME", "WRONG_DATATYPE", "MISMATCH_INDEX"}


def _describe(exc: pa.errors.SchemaErrors | pa.errors.SchemaError, table: str) -> str:
    errors = exc.schema_errors if isinstance(exc, pa.errors.SchemaErrors) else [exc]
    lines = [f"{table} breaks its published contract:"]
    for err in errors:
        reason = getattr(err.reason_code, "name", "ERROR")
        fc = err.failure_cases
        if isinstance(fc, pl.DataFrame):
            n = fc.height
        elif isinstance(fc, pl.Series):
            n = fc.len()
        else:
            n = 1
        check = err.check
        check_name = check if isinstance(check, str) else (getattr(check, "name", None) or reason.lower())
        where = err.column_name if isinstance(getattr(err, "column_name", None), str) else "<table>"
        if reason in _COLUMN_REASONS and isinstance(fc, str):
            # a column name or dtype, never a value: safe to show
            where = f"{where} [{fc}]"
        lines.append(f"  {where}: {check_name} ({reason}, {n} case(s))")
    return "\n".join(lines)


def validate_published(
    table: str,
    df: pl.DataFrame,
    schema: pa.DataFrameSchema | None = None,
    *,
    policy: MarketingPolicy | None = None,
    safety_ban_ids: Iterable[str] | None = None,
) -> pl.DataFrame:
    """Validate one published table, collecting every failure; raise without quoting any value."""
    if schema is None:
        schemas: Mapping[str, pa.DataFrameSchema] = published_schemas(policy, safety_ban_ids)
        if table not in schemas:
            raise KeyError(f"no published contract for table {table!r}")
        schema = schemas[table]
    try:
        return schema.validate(df, lazy=True)
    except (pa.errors.SchemaErrors, pa.errors.SchemaError) as exc:
        raise PublishedContractError(_describe(exc, table)) from None
