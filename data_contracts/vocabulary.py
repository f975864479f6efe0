"""The words every layer shares, declared once: the contact channels, the languages a customer is
served in, and the time zone every business day is counted in."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

#: The direct-marketing channels, in the order tables and reports list them.
CHANNELS: tuple[str, ...] = ("email", "sms", "letter", "phone")
Channel = Literal["email", "sms", "letter", "phone"]

#: The languages a customer is served in (Finnish, Swedish, English), segment names and reports too.
LANGUAGES: tuple[str, ...] = ("fi", "sv", "en")

#: Business days, partitions, frequency windows and local hours are all Helsinki time.
TIME_ZONE_NAME = "Europe/Helsinki"
HELSINKI = ZoneInfo(TIME_ZONE_NAME)


def end_of_business_day(day: dt.date) -> dt.datetime:
    """The first instant after Helsinki business day `day` (its local midnight), in UTC: an event
    `occurred_at < end_of_business_day(D)` happened on or before D, on DST days too (23 or 25 hours)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), HELSINKI).astimezone(dt.UTC)
