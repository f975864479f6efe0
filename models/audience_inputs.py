"""What an audience build reads and what it returns, and the small frame helpers both the rules
(`audience_rules`) and their independent re-check (`audience_recheck`) use."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import polars as pl

from data_contracts.audiences import (
    AUDIENCE_TABLES,
    UTC_US,
)
from data_contracts.vocabulary import CHANNELS

FrameLike = pl.DataFrame | pl.LazyFrame

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
    population_date: dt.date | None = None


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
