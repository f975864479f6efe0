"""Does the contact history that came back match the released lists?

Two findings, each a row a person can follow up:
- `not_in_list`: the history holds a marketing contact carrying one of our campaign ids for someone
  who is not on that campaign's released list as it stands (never on it, in the control group, or
  removed before send_on). Somebody was contacted who should not have been.
- `missing_from_history`: a week after send_on, a released recipient still has no contact with the
  campaign's id in the history. The list was not sent, or the history is not delivered; either way
  the cap counts that contact on send_on until it shows up.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

#: days after send_on before a released contact missing from the history is reported
GRACE_DAYS = 7

SCHEMA = {
    "campaign_id": pl.String,
    "recipient_id": pl.String,
    "finding": pl.String,
    "channel": pl.String,
    "contact_on": pl.Date,
}


def reconcile(sent: pl.DataFrame, lists: pl.DataFrame, campaign_ids: list[str], day: dt.date) -> pl.DataFrame:
    """`sent`: recipient_id, contact_on, campaign_id, channel of the marketing history. `lists`: the
    released lists as they stand (campaign_id, recipient_id, status, channel, send_on)."""
    treated = lists.filter(pl.col("status") == "treated")
    ours = sent.filter(pl.col("campaign_id").is_in(campaign_ids))
    stray = ours.join(treated.select("campaign_id", "recipient_id"), on=["campaign_id", "recipient_id"], how="anti")
    overdue = treated.filter(pl.col("send_on") + pl.duration(days=GRACE_DAYS) < pl.lit(day)).join(
        ours.select("campaign_id", "recipient_id"), on=["campaign_id", "recipient_id"], how="anti"
    )
    return pl.concat(
        [
            stray.select(
                "campaign_id", "recipient_id", pl.lit("not_in_list").alias("finding"), "channel", "contact_on"
            ).cast(SCHEMA),
            overdue.select(
                "campaign_id",
                "recipient_id",
                pl.lit("missing_from_history").alias("finding"),
                "channel",
                pl.col("send_on").alias("contact_on"),
            ).cast(SCHEMA),
        ]
    ).sort("campaign_id", "finding", "recipient_id")
