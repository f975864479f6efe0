"""The marketing policy as validated, immutable data.

`marketing_policy.yaml` is the single source of the audience rules; this module only loads it and
refuses anything it does not understand, naming the offending key, so that a typo can never switch a
rule off silently. Which rule applies to which channel is decided here (`MarketingPolicy.rules_for`)
from the file, never by code paths in the audience builder.
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data_contracts.vocabulary import CHANNELS, TIME_ZONE_NAME, Channel

__all__ = [
    "CHANNEL_EXCLUSIONS",
    "CONTACT_REQUIREMENTS",
    "GLOBAL_EXCLUSIONS",
    "PROSPECT_REASON_CODES",
    "REASON_CODES",
    "RENEWAL_CHANNELS",
    "ChannelPolicy",
    "MarketingPolicy",
    "PolicyError",
    "default_policy_path",
    "load_policy",
    "parse_policy",
]


ContactRequirement = Literal["valid_email", "valid_mobile", "valid_phone", "valid_postal_address"]
CONTACT_REQUIREMENTS: tuple[str, ...] = (
    "valid_email",
    "valid_mobile",
    "valid_phone",
    "valid_postal_address",
)

ChannelExclusion = Literal["asml_mail", "asml_phone", "vtj_marketing_ban", "safety_ban"]
CHANNEL_EXCLUSIONS: tuple[str, ...] = ("asml_mail", "asml_phone", "vtj_marketing_ban", "safety_ban")

GlobalExclusion = Literal["deceased", "minor", "company", "former_customer", "frequency_cap"]
GLOBAL_EXCLUSIONS: tuple[str, ...] = ("deceased", "minor", "company", "former_customer", "frequency_cap")

#: Every code `audience_exclusions.reason` may hold, in a stable order.
REASON_CODES: tuple[str, ...] = (
    "consent_missing",
    "consent_withdrawn",
    "invalid_contact",
    "deceased",
    "minor",
    "company",
    "former_customer",
    "frequency_cap",
    "asml_mail",
    "asml_phone",
    "vtj_marketing_ban",
    "safety_ban",
)

#: Channel value of a renewal offer that has no usable contact.
RENEWAL_NO_CHANNEL = "none"
RENEWAL_CHANNELS: tuple[str, ...] = (*CHANNELS, RENEWAL_NO_CHANNEL)

_DEFAULT_FILE = "marketing_policy.yaml"


class PolicyError(ValueError):
    """The policy file is missing, unreadable or breaks its own schema."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class ConsentRef(_Model):
    """The consent_state (purpose, channel) a channel reads."""

    purpose: Literal["marketing"]
    channel: Channel


class ChannelPolicy(_Model):
    legal_basis: Literal["consent", "opt_out"]
    consent: ConsentRef
    contact: ContactRequirement
    exclusions: tuple[ChannelExclusion, ...] = ()
    soft_opt_in: bool = False

    @field_validator("exclusions")
    @classmethod
    def _no_duplicates(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("lists an exclusion twice")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> ChannelPolicy:
        if self.soft_opt_in and self.legal_basis != "consent":
            raise ValueError("soft_opt_in only makes sense for a consent channel")
        if self.contact == "valid_postal_address" and "safety_ban" not in self.exclusions:
            # Under a safety ban no address may be used at all; the policy cannot waive that.
            raise ValueError("a channel that uses the postal address must list safety_ban in exclusions")
        return self

    @property
    def uses_address(self) -> bool:
        return self.contact == "valid_postal_address"


class _Empty(_Model):
    pass


class MinorRule(_Model):
    age_limit: int = Field(ge=1, le=120)


class FormerCustomerRule(_Model):
    window_days: int = Field(ge=0)


class FrequencyCapRule(_Model):
    cap: int = Field(ge=1, description="this many or more contacts in the window excludes")
    window_days: int = Field(ge=1)
    kind: Literal["marketing"] = "marketing"


class GlobalExclusions(_Model):
    deceased: _Empty | None = None
    minor: MinorRule | None = None
    company: _Empty | None = None
    former_customer: FormerCustomerRule | None = None
    frequency_cap: FrequencyCapRule | None = None

    @field_validator("deceased", "company", mode="before")
    @classmethod
    def _flag(cls, v: Any) -> Any:
        # `deceased: {}` and `deceased: true` both switch the rule on; `false` switches it off.
        if v is True:
            return {}
        if v is False:
            return None
        return v

    def enabled(self) -> tuple[str, ...]:
        return tuple(code for code in GLOBAL_EXCLUSIONS if getattr(self, code) is not None)


class RenewalPolicy(_Model):
    window_days: int = Field(ge=1)
    contract_type: str = "fixed_term"
    customer_types: tuple[Literal["person", "company"], ...] = ("person",)
    channel_preference: tuple[Channel, ...] = Field(min_length=1)
    no_row_for: tuple[Literal["deceased"], ...] = ("deceased",)
    channel_blocked_by: tuple[ChannelExclusion, ...] = ("safety_ban",)
    no_channel_reason: str = "no_usable_contact"

    @field_validator("channel_preference")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("lists a channel twice")
        return v


class AnomalyPolicy(_Model):
    threshold: float = Field(gt=0, le=10)
    #: a change of fewer customers than this is never an anomaly (tiny audiences swing by percent)
    min_change: int = Field(default=0, ge=0)

    def holds_back(self, published: int | None, size: int) -> bool:
        """True when moving from the published size to `size` needs a person's confirmation."""
        if published is None or abs(size - published) < self.min_change:
            return False
        if published == 0:
            return size > 0
        return abs(size - published) / published > self.threshold


class RetentionPeriod(_Model):
    years: int | None = Field(default=None, ge=1)
    months: int | None = Field(default=None, ge=1)
    days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> RetentionPeriod:
        given = [k for k in ("years", "months", "days") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of years, months or days")
        return self

    def cutoff(self, as_of: date) -> date:
        """The earliest date still retained on `as_of`."""
        from dateutil.relativedelta import relativedelta

        if self.years is not None:
            return as_of - relativedelta(years=self.years)
        if self.months is not None:
            return as_of - relativedelta(months=self.months)
        from datetime import timedelta

        return as_of - timedelta(days=self.days or 0)


#: The Accounting Act (1336/1997, ch. 2 §10) keeps accounting records at least 6 years after the end
#: of the year in which their financial year ended; a shorter `invoices` period would break the law.
ACCOUNTING_ACT_MINIMUM = RetentionPeriod(years=6)


class RetentionPolicy(_Model):
    metering_readings: RetentionPeriod
    quarantine: RetentionPeriod
    contact_history: RetentionPeriod
    audience_history: RetentionPeriod
    #: counted from the end of the invoice's financial year, not back from today (`invoice_kept_until`)
    invoices: RetentionPeriod
    #: counted from the end of the customer relationship (`assets/privacy/former_customers.py` says when that is)
    customer_data: RetentionPeriod
    #: a prospect's data, counted from the prospect's latest `updated_on` (marketing-policy.md, "Prospects")
    prospects: RetentionPeriod = RetentionPeriod(months=12)

    @field_validator("invoices")
    @classmethod
    def _at_least_the_accounting_act(cls, v: RetentionPeriod) -> RetentionPeriod:
        some_year_end = date(2000, 12, 31)
        if _after(some_year_end, v) < _after(some_year_end, ACCOUNTING_ACT_MINIMUM):
            raise ValueError("is shorter than the Accounting Act's 6 years after the end of the financial year")
        return v

    def invoice_kept_until(self, issued_on: date) -> date:
        """The last day an invoice is kept: the end of its financial year plus the `invoices` period.

        The one place this date is computed, so that what erasure promises, what the access report
        tells the customer and what the `retention` asset deletes can never disagree. The financial
        year is the calendar year the invoice was issued in.
        """
        return _after(date(issued_on.year, 12, 31), self.invoices)


def _after(day: date, period: RetentionPeriod) -> date:
    from dateutil.relativedelta import relativedelta

    return day + relativedelta(**period.model_dump(exclude_none=True))


class ProfilingPolicy(_Model):
    """Who may be profiled, and when a clustering says anything at all."""

    #: the trailing window of metering days the features and the clustering read
    window_days: int = Field(ge=1)
    #: a customer with fewer days of readings in the window is not profiled (insufficient_history)
    min_history_days: int = Field(ge=1)
    #: with fewer profiled customers no model is fitted and no segments are published
    min_customers_to_fit: int = Field(ge=2)
    #: minors are never profiled; the age of majority on D
    adult_age: int = Field(ge=1, le=120)

    @model_validator(mode="after")
    def _history_fits_window(self) -> ProfilingPolicy:
        if self.min_history_days > self.window_days:
            raise ValueError("min_history_days cannot exceed window_days")
        return self


class DataQualityPolicy(_Model):
    """When a delivery counts as bad or late."""

    #: a source fails its quarantine-rate check when a delivered file quarantines more than this share
    quarantine_rate_threshold: float = Field(gt=0, le=1)
    #: local time on D+1 by which each source's delivery for D is expected (HH:MM)
    expected_delivery_time: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    #: how often each source must deliver, in days (1 = every morning); sources not listed are
    #: event-driven (a day without consent events is normal) and have no freshness expectation
    delivery_cadence_days: dict[str, int]

    @field_validator("delivery_cadence_days")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        bad = [source for source, days in v.items() if days < 1]
        if bad:
            raise ValueError(f"cadence must be at least 1 day: {', '.join(bad)}")
        return v


#: Every code `prospect_audience_exclusions.reason` may hold, in a stable order. The customer
#: codes that also apply to a prospect keep their meaning; `is_customer` and `objected` are the
#: prospects' own (marketing-policy.md, "Prospects").
PROSPECT_REASON_CODES: tuple[str, ...] = (
    "is_customer",
    "objected",
    "consent_missing",
    "consent_withdrawn",
    "invalid_contact",
    "deceased",
    "minor",
    "frequency_cap",
    "asml_mail",
    "asml_phone",
    "vtj_marketing_ban",
    "safety_ban",
)
ProspectExclusion = Literal["is_customer", "objected", "deceased", "minor", "frequency_cap"]
CustomerMatch = Literal["personal_id", "email", "name_and_address"]


class ProspectChannelPolicy(_Model):
    """One channel for prospects: consent channels read the prospect's own `<channel>_consent`."""

    legal_basis: Literal["consent", "opt_out"]
    #: the landing column holding the prospect's own consent for this channel (consent channels)
    consent: Literal["email_consent", "sms_consent"] | None = None
    contact: ContactRequirement
    exclusions: tuple[ChannelExclusion, ...] = ()

    @model_validator(mode="after")
    def _coherent(self) -> ProspectChannelPolicy:
        if self.legal_basis == "consent" and self.consent is None:
            raise ValueError("a consent channel names the prospect's consent column (consent)")
        if self.contact == "valid_postal_address" and "safety_ban" not in self.exclusions:
            raise ValueError("a channel that uses the postal address must list safety_ban in exclusions")
        return self

    @property
    def uses_address(self) -> bool:
        return self.contact == "valid_postal_address"


class ProspectPolicy(_Model):
    """Direct marketing to people who are not customers yet (marketing-policy.md, "Prospects").

    Ages and the frequency cap use `global_exclusions.minor` and `.frequency_cap`: a prospect's
    contacts count exactly as a customer's do."""

    channels: dict[Channel, ProspectChannelPolicy]
    #: exclusions on every channel
    exclusions: tuple[ProspectExclusion, ...]
    #: how a prospect is recognised as a current customer (any one of these matching is enough)
    customer_match: tuple[CustomerMatch, ...] = Field(min_length=1)

    @field_validator("channels")
    @classmethod
    def _all_channels(cls, v: dict[str, ProspectChannelPolicy]) -> dict[str, ProspectChannelPolicy]:
        missing = [c for c in CHANNELS if c not in v]
        if missing:
            raise ValueError(f"missing channel(s): {', '.join(missing)}")
        return {c: v[c] for c in CHANNELS}

    @field_validator("exclusions")
    @classmethod
    def _customers_never_prospects(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        # a customer is marketed under the customer rules; the policy cannot waive that
        if "is_customer" not in v:
            raise ValueError("must list is_customer: a customer is never marketed as a prospect")
        return v

    def rules_for(self, channel: str) -> tuple[str, ...]:
        """Every exclusion code evaluated for a prospect on `channel`, in PROSPECT_REASON_CODES order."""
        cp = self.channels[channel]  # type: ignore[index]
        codes: set[str] = {"invalid_contact", *self.exclusions, *cp.exclusions}
        if cp.legal_basis == "consent":
            codes |= {"consent_missing", "consent_withdrawn"}
        return tuple(c for c in PROSPECT_REASON_CODES if c in codes)

    def admission_rule(self, channel: str) -> str:
        cp = self.channels[channel]  # type: ignore[index]
        return f"prospect_{cp.legal_basis}:{cp.consent or channel}"


class MarketingPolicy(_Model):
    version: str = Field(min_length=1)
    timezone: str = TIME_ZONE_NAME
    channels: dict[Channel, ChannelPolicy]
    global_exclusions: GlobalExclusions
    renewal: RenewalPolicy
    anomaly: AnomalyPolicy
    retention: RetentionPolicy
    profiling: ProfilingPolicy
    data_quality: DataQualityPolicy
    prospects: ProspectPolicy | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, v: Any) -> Any:
        if not isinstance(v, str):
            raise ValueError('must be a quoted string, e.g. "2026.1" (unquoted YAML numbers lose digits)')
        return v.strip()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("channels")
    @classmethod
    def _all_channels(cls, v: dict[str, ChannelPolicy]) -> dict[str, ChannelPolicy]:
        missing = [c for c in CHANNELS if c not in v]
        if missing:
            raise ValueError(f"missing channel(s): {', '.join(missing)}")
        return {c: v[c] for c in CHANNELS}

    @model_validator(mode="after")
    def _renewal_channels_defined(self) -> MarketingPolicy:
        for ch in self.renewal.channel_preference:
            if ch not in self.channels:
                raise ValueError(f"renewal.channel_preference: channel {ch!r} is not defined in channels")
        return self

    # --- what the evaluator asks -------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def channel(self, channel: str) -> ChannelPolicy:
        try:
            return self.channels[channel]  # type: ignore[index]
        except KeyError:
            raise KeyError(f"channel {channel!r} is not in the policy") from None

    def rules_for(self, channel: str) -> tuple[str, ...]:
        """Every exclusion code evaluated for `channel`, in REASON_CODES order."""
        cp = self.channel(channel)
        codes: set[str] = {"consent_withdrawn", "invalid_contact"}
        if cp.legal_basis == "consent":
            codes.add("consent_missing")
        codes.update(cp.exclusions)
        codes.update(self.global_exclusions.enabled())
        return tuple(c for c in REASON_CODES if c in codes)

    def admission_rule(self, channel: str) -> str:
        """The `rule` value stamped on an audience row of `channel` (which rule let it in)."""
        cp = self.channel(channel)
        return f"{cp.legal_basis}:{cp.consent.purpose}/{cp.consent.channel}"

    def soft_opt_in_rule(self, channel: str) -> str:
        cp = self.channel(channel)
        return f"soft_opt_in:{cp.consent.purpose}/{cp.consent.channel}"

    def consent_refs(self) -> tuple[tuple[str, str], ...]:
        """The distinct (purpose, channel) consent states the channels read."""
        seen: dict[tuple[str, str], None] = {}
        for cp in self.channels.values():
            seen[(cp.consent.purpose, cp.consent.channel)] = None
        return tuple(seen)


def default_policy_path() -> Path:
    """The policy file packaged with data_contracts."""
    return Path(str(resources.files("data_contracts").joinpath(_DEFAULT_FILE)))


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid marketing policy {source}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<top level>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the policy schema)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def parse_policy(data: Any, source: str = "<mapping>") -> MarketingPolicy:
    """Validate an already-parsed policy mapping."""
    if not isinstance(data, dict):
        raise PolicyError(f"invalid marketing policy {source}: the top level must be a mapping")
    try:
        return MarketingPolicy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_format_errors(exc, source)) from None


def load_policy(path: str | Path | None = None) -> MarketingPolicy:
    """Load and validate the marketing policy; `path=None` reads the packaged file."""
    p = Path(path) if path is not None else default_policy_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read marketing policy {p}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"marketing policy {p} is not valid YAML: {exc}") from None
    return parse_policy(data, str(p))
