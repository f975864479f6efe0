"""The words every layer shares, declared once: the contact channels, the languages a customer is
served in, and the time zone every business day is counted in."""

from __future__ import annotations

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
