"""Calendar helpers: Helsinki business days, DST-aware day lengths, delivery schedules.

Everything time-related goes through here so that the whole generator agrees on one
definition of the business day (the local calendar day in Europe/Helsinki, 23/24/25 hours)
and on when a file "arrives" (the morning after the business day it describes).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from data_contracts.vocabulary import HELSINKI

UTC = dt.timezone.utc
QUARTER = dt.timedelta(minutes=15)


def local_midnight_utc(day: dt.date) -> dt.datetime:
    """The UTC instant at which the Helsinki calendar day `day` starts."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=HELSINKI).astimezone(UTC)


@dataclass(frozen=True)
class DaySlots:
    """The quarter-hour slots of one Helsinki business day.

    n is 92, 96 or 100 (23/24/25 hours). local_hour[i] is the local wall-clock hour of slot i:
    in autumn the repeated hour 03 appears for 8 slots, in spring hour 03 is absent.
    """

    day: dt.date
    start_utc: dt.datetime
    n: int
    local_hour: np.ndarray  # int8 [n]
    start_text_15: tuple[str, ...]  # 'YYYY-MM-DDTHH:MM:SSZ' per quarter slot
    start_text_1h: tuple[str, ...]  # per hour (every 4th slot)

    def first_slot_at_or_after_hour(self, hour: int) -> int:
        """Index of the first slot whose local hour is >= hour (n when none)."""
        idx = np.nonzero(self.local_hour >= hour)[0]
        return int(idx[0]) if idx.size else self.n


@lru_cache(maxsize=2048)
def day_slots(day: dt.date) -> DaySlots:
    start = local_midnight_utc(day)
    stop = local_midnight_utc(day + dt.timedelta(days=1))
    n = int((stop - start).total_seconds() // 900)
    hours = np.empty(n, dtype=np.int8)
    texts = []
    for i in range(n):
        t = start + i * QUARTER
        hours[i] = t.astimezone(HELSINKI).hour
        texts.append(t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return DaySlots(day, start, n, hours, tuple(texts), tuple(texts[::4]))


def fmt_ts(instant_utc: dt.datetime, style: str) -> str:
    """Format a UTC instant as ISO 8601: style 'Z' or 'local' (Helsinki offset, +02:00/+03:00)."""
    if style == "Z":
        return instant_utc.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return instant_utc.astimezone(HELSINKI).isoformat(timespec="seconds")


def local_dt(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """A Helsinki wall-clock time as a UTC instant (fold=0 on the repeated autumn hour)."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=HELSINKI).astimezone(UTC)


def helsinki_date(instant_utc: dt.datetime) -> dt.date:
    return instant_utc.astimezone(HELSINKI).date()


def daterange(first: dt.date, last: dt.date):
    d = first
    while d <= last:
        yield d
        d += dt.timedelta(days=1)


def snapshot_dates(first_delivery: dt.date, last_delivery: dt.date) -> list[dt.date]:
    """Delivery dates of the weekly full snapshots.

    Every 7 days counting back from the last delivery (end+1), plus the first delivery day of the
    window, so that a run for the very first business day already has a CRM snapshot to read.
    """
    out = []
    d = last_delivery
    while d >= first_delivery:
        out.append(d)
        d -= dt.timedelta(days=7)
    if first_delivery not in out:
        out.append(first_delivery)
    return sorted(out)


def easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def midsummer_eve(year: int) -> dt.date:
    """Juhannusaatto: the Friday between 19 and 25 June."""
    d = dt.date(year, 6, 19)
    while d.weekday() != 4:
        d += dt.timedelta(days=1)
    return d


@lru_cache(maxsize=64)
def holiday_days(year: int) -> frozenset[dt.date]:
    """Days Finns typically spend off work (and at the summer cottage): public holidays and the
    long weekends around them. Used for cottage occupancy and for the 'weekend-like' day shape."""
    e = easter(year)
    ms = midsummer_eve(year)
    days = {
        dt.date(year, 1, 1),
        dt.date(year, 1, 6),
        e - dt.timedelta(days=2),
        e,
        e + dt.timedelta(days=1),
        dt.date(year, 5, 1),
        e + dt.timedelta(days=39),
        ms,
        ms + dt.timedelta(days=1),
        ms + dt.timedelta(days=2),
        dt.date(year, 12, 6),
        dt.date(year, 12, 24),
        dt.date(year, 12, 25),
        dt.date(year, 12, 26),
        dt.date(year, 12, 31),
    }
    return frozenset(days)


def is_weekend_like(day: dt.date) -> bool:
    return day.weekday() >= 5 or day in holiday_days(day.year)


def add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))
