"""The frequency cap over every window: may one more marketing contact go to a person on `send_on`?

The audiences' own cap looks back from the run day only (4 or more contacts in [D-364, D] excludes).
A campaign sends on a later day, and other released campaigns send on days around it, so the
campaign's contact must fit every 365-day window that contains `send_on`: the windows reaching back
before it and those reaching forward past it, with the contacts already sent and those of every
released campaign that the contact history does not show yet.

Counting is by Helsinki calendar day, as the audiences count: a contact "on day d" is one whose
`sent_at` falls on d in Helsinki, and a released campaign's contact is on its `send_on`.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from data_contracts.vocabulary import TIME_ZONE_NAME

#: one row per marketing contact that counts toward the cap
COMMITTED_SCHEMA = {"recipient_id": pl.String, "contact_on": pl.Date, "campaign_id": pl.String}


def sent_contacts(contact_history: pl.DataFrame, kind: str = "marketing") -> pl.DataFrame:
    """The marketing contacts the history shows, one per distinct (recipient, channel, campaign, sent_at),
    on their Helsinki day. A prospect's contacts are in the same history (their `P…` id as customer_id)."""
    names = contact_history.columns
    dedupe = [c for c in ("customer_id", "channel", "campaign_id", "sent_at") if c in names]
    sent_at = pl.col("sent_at")
    if contact_history.schema["sent_at"].time_zone is None:  # type: ignore[union-attr]
        sent_at = sent_at.dt.replace_time_zone("UTC")
    campaign = pl.col("campaign_id").cast(pl.String) if "campaign_id" in names else pl.lit(None, pl.String)
    return (
        contact_history.filter(pl.col("kind") == kind)
        .unique(subset=dedupe)
        .select(
            pl.col("customer_id").cast(pl.String).alias("recipient_id"),
            sent_at.dt.convert_time_zone(TIME_ZONE_NAME).dt.date().alias("contact_on"),
            campaign.alias("campaign_id"),
            (pl.col("channel").cast(pl.String) if "channel" in names else pl.lit(None, pl.String)).alias("channel"),
        )
    )


def committed_contacts(sent: pl.DataFrame, released: pl.DataFrame) -> pl.DataFrame:
    """Every contact that counts toward the cap: the sent ones, plus each released contact (recipient_id,
    campaign_id, send_on) on its send_on until the history shows that campaign's contact to that person."""
    shown = sent.select("recipient_id", "campaign_id").drop_nulls().unique()
    pending = released.select(
        pl.col("recipient_id").cast(pl.String),
        pl.col("send_on").cast(pl.Date).alias("contact_on"),
        pl.col("campaign_id").cast(pl.String),
    ).join(shown, on=["recipient_id", "campaign_id"], how="anti")
    return pl.concat([sent.select(COMMITTED_SCHEMA.keys()).cast(COMMITTED_SCHEMA), pending.cast(COMMITTED_SCHEMA)])


def over_cap(
    recipients: pl.Series | list[str], send_on: dt.date, committed: pl.DataFrame, *, cap: int, window_days: int
) -> set[str]:
    """The recipients whom one more contact on `send_on` would give more than `cap` contacts in some
    window of `window_days` consecutive days.

    Every window containing send_on ends on a day e in [send_on, send_on + window_days - 1]. As e moves
    forward the count only rises on a day that holds a contact, so the largest count is found at e =
    send_on or at e = one of the contact days in that range: those ends are all that is checked.
    """
    span = dt.timedelta(days=window_days - 1)
    ids = pl.DataFrame({"recipient_id": list(recipients)}, schema={"recipient_id": pl.String}).unique()
    near = committed.join(ids, on="recipient_id", how="semi").filter(
        pl.col("contact_on").is_between(send_on - span, send_on + span)
    )
    if near.height == 0:
        return set() if cap >= 1 else set(ids["recipient_id"].to_list())
    ends = pl.concat(
        [
            ids.with_columns(pl.lit(send_on).alias("window_end")),
            near.filter(pl.col("contact_on") > send_on).select(
                "recipient_id", pl.col("contact_on").alias("window_end")
            ),
        ]
    ).unique()
    counts = (
        ends.join(near.select("recipient_id", "contact_on"), on="recipient_id", how="left")
        .with_columns(
            pl.col("contact_on")
            .is_between(pl.col("window_end") - span, pl.col("window_end"))
            .fill_null(False)
            .alias("_in")
        )
        .group_by("recipient_id", "window_end")
        .agg(pl.col("_in").sum().alias("n"))
        .group_by("recipient_id")
        .agg(pl.col("n").max())
    )
    return set(counts.filter(pl.col("n") + 1 > cap)["recipient_id"].to_list())
