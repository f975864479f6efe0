"""A campaign brief, declared: one YAML file per campaign, validated on load.

A marketer writes the brief by hand (see the "Campaigns" section of the marketing policy), so every
mistake must come back as one sentence naming the file, the key and what was expected, never a
traceback and never a silently ignored key: `extra="forbid"` refuses a typo such as `segmets`,
which would otherwise widen the campaign to every customer.

Which people a brief reaches is decided in `models/campaign_plan.py`; this module only says what a
valid brief is.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data_contracts.vocabulary import LANGUAGES, Channel

__all__ = [
    "AUDIENCES",
    "BriefError",
    "CampaignBrief",
    "CampaignFilters",
    "InvalidBrief",
    "load_brief",
    "load_briefs",
    "parse_brief",
]

#: who a campaign may reach: customers, prospects (not customers yet), or both
AUDIENCES: tuple[str, ...] = ("customers", "prospects", "both")
CAMPAIGN_ID_PATTERN = r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$"
BRIEF_SUFFIXES = (".yaml", ".yml")


class BriefError(ValueError):
    """A brief is unreadable or breaks its schema; the message names the file and the key."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class CampaignName(_Model):
    """The campaign's name in every language a recipient is served in."""

    fi: str = Field(min_length=1)
    sv: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def in_language(self, language: str | None) -> str:
        return getattr(self, language) if language in LANGUAGES else self.fi


class CampaignFilters(_Model):
    """Optional narrowing of the customers (never prospects: they have no contracts or invoices)."""

    language: tuple[Literal["fi", "sv", "en"], ...] | None = Field(default=None, min_length=1)
    contract_type: tuple[Literal["fixed_term", "open_ended"], ...] | None = Field(default=None, min_length=1)
    product_code: tuple[str, ...] | None = Field(default=None, min_length=1)
    site_type: tuple[str, ...] | None = Field(default=None, min_length=1)
    #: payment behaviour: no unpaid invoice that has had a reminder
    no_open_reminders: bool = False


class CampaignBrief(_Model):
    campaign_id: str = Field(pattern=CAMPAIGN_ID_PATTERN, max_length=64)
    name: CampaignName
    audience: Literal["customers", "prospects", "both"]
    segments: tuple[int, ...] | None = Field(default=None, min_length=1)
    filters: CampaignFilters = CampaignFilters()
    channels: tuple[Channel, ...] = Field(min_length=1)
    send_on: dt.date
    control_share: float = Field(ge=0.0, le=0.5)
    max_recipients: int | None = Field(default=None, gt=0)
    offer_product: str | None = Field(default=None, min_length=1)
    response_days: int = Field(gt=0, le=366)

    @field_validator("channels", "segments")
    @classmethod
    def _no_duplicates(cls, v: tuple | None) -> tuple | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("each value once")
        return v

    @field_validator("send_on", mode="before")
    @classmethod
    def _a_date(cls, v: Any) -> Any:
        # YAML reads 2027-03-10 as a date already; a datetime or a number is a mistake, not a day
        if isinstance(v, dt.datetime) or not isinstance(v, dt.date | str):
            raise ValueError("a date YYYY-MM-DD")
        return v

    @model_validator(mode="after")
    def _narrowing_needs_customers(self) -> CampaignBrief:
        # a prospect has no segment, contract or invoice: such a brief would silently reach every prospect
        if self.audience == "prospects" and (self.segments is not None or self.filters != CampaignFilters()):
            raise ValueError(
                "audience|audience customers or both when segments or filters are given (they narrow customers only)"
            )
        return self

    @property
    def reaches_customers(self) -> bool:
        return self.audience in ("customers", "both")

    @property
    def reaches_prospects(self) -> bool:
        return self.audience in ("prospects", "both")

    @property
    def targets_segments(self) -> bool:
        return self.segments is not None

    @property
    def response_ends_on(self) -> dt.date:
        """The last day of the response window: a conversion counts up to send_on + response_days."""
        return self.send_on + dt.timedelta(days=self.response_days)


@dataclass(frozen=True)
class InvalidBrief:
    """A brief file that could not be accepted, with the one-line reason (shown to the marketer)."""

    file: str
    error: str
    campaign_id: str | None = None


def _key(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<brief>"


def _expected(err: dict) -> str:
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return "an unknown key (check its spelling; see the Campaigns section of the marketing policy)"
    if err["type"] == "missing":
        return "a required key that is missing"
    if err["type"] == "string_pattern_mismatch":
        return "letters, digits and '-' only (e.g. EV-SPRING-2027)"
    if err["type"].startswith("date"):
        return "expected a date YYYY-MM-DD"
    for prefix in ("Input should be ", "Value error, "):
        msg = msg.removeprefix(prefix)
    return f"expected {msg}" if not msg.startswith("expected") else msg


def _format(exc: ValidationError, source: str) -> str:
    parts = []
    errors = exc.errors()
    locs = [tuple(e["loc"]) for e in errors]
    for err in errors:
        loc = tuple(err["loc"])
        if any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs):
            continue  # a list's own complaint after one of its items was refused says nothing more
        if not loc and "|" in err["msg"]:  # a check across keys names the key it is about: "key|expected"
            key, _, expected = err["msg"].removeprefix("Value error, ").partition("|")
            parts.append(f"key {key}: expected {expected}")
            continue
        found = err.get("input")
        shown = "" if err["type"] == "missing" or isinstance(found, dict | list) else f" (found {found!r})"
        parts.append(f"key {_key(err['loc'])}: {_expected(err)}{shown}")
    return f"campaign brief {source}: " + "; ".join(parts)


def parse_brief(data: Any, source: str = "<mapping>") -> CampaignBrief:
    if not isinstance(data, dict):
        raise BriefError(f"campaign brief {source}: expected a mapping of keys (campaign_id, name, ...) at the top")
    try:
        return CampaignBrief.model_validate(data)
    except ValidationError as exc:
        raise BriefError(_format(exc, source)) from None


def load_brief(path: str | Path) -> CampaignBrief:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BriefError(f"campaign brief {p.name}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BriefError(f"campaign brief {p.name}: not valid YAML{where}") from None
    brief = parse_brief(data, p.name)
    return brief


def brief_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in BRIEF_SUFFIXES)


def load_briefs(files: Iterable[Path]) -> tuple[list[tuple[str, CampaignBrief]], list[InvalidBrief]]:
    """Every brief of the campaigns folder: the valid ones (file name, brief) and the refused ones.

    One bad brief never hides the others; two files with the same campaign_id are both refused, as
    neither can be told to be the one the marketer meant."""
    valid: list[tuple[str, CampaignBrief]] = []
    invalid: list[InvalidBrief] = []
    for path in files:
        try:
            valid.append((path.name, load_brief(path)))
        except BriefError as exc:
            invalid.append(InvalidBrief(path.name, str(exc), _id_guess(path)))
    seen: dict[str, list[str]] = {}
    for file, brief in valid:
        seen.setdefault(brief.campaign_id, []).append(file)
    twice = {cid for cid, files_ in seen.items() if len(files_) > 1}
    for cid in sorted(twice):
        names = ", ".join(seen[cid])
        for file in seen[cid]:
            invalid.append(
                InvalidBrief(
                    file, f"campaign brief {file}: key campaign_id: {cid!r} is used by {names}; expected unique", cid
                )
            )
    return [(f, b) for f, b in valid if b.campaign_id not in twice], invalid


def _id_guess(path: Path) -> str | None:
    """The campaign id a refused brief probably meant (to show it against its campaign), if it is readable."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    cid = data.get("campaign_id") if isinstance(data, dict) else None
    return cid if isinstance(cid, str) and re.match(CAMPAIGN_ID_PATTERN, cid) else None
