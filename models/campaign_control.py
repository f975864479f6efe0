"""The control group: a keyed hash of (campaign, person), so the same people are held out on every re-plan.

A random draw would move people between the groups whenever a campaign is re-planned, and anyone
who knows a person's id could predict an unkeyed hash. HMAC-SHA256 under the environment's key gives
each (campaign, person) a fixed number in [0, 1): the person is held out when it is below
`control_share`. Another campaign gets independent numbers, so nobody is always in the control group.
The same number orders people for `max_recipients`, so a cut list is a random sample too.
"""

from __future__ import annotations

import hashlib
import hmac

import polars as pl

#: keeps these numbers apart from every other use of the same key (erasure pseudonyms)
_DOMAIN = b"lupa/campaign-control/v1\x1f"


def draw(key: bytes, campaign_id: str, recipient_id: str) -> float:
    """The person's fixed number in [0, 1) for this campaign."""
    digest = hmac.new(key, _DOMAIN + f"{campaign_id}\x1f{recipient_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def draws(key: bytes, campaign_id: str, recipient_ids: pl.Series) -> pl.Series:
    return pl.Series(
        "draw", [draw(key, campaign_id, r) for r in recipient_ids.cast(pl.String).to_list()], dtype=pl.Float64
    )


def in_control(key: bytes, campaign_id: str, recipient_id: str, control_share: float) -> bool:
    return draw(key, campaign_id, recipient_id) < control_share
