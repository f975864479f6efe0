"""What a send list for the email tool, the print house or the call centre holds, and nothing more.

A marketer's export carries the person's key (customer or prospect id, never an identity code), the
language to write in, the segment's name in that language (a segment id means nothing to a
copywriter), and only the contact data the channel needs: an email list has no address, a letter
list no phone. An address under a safety ban never reaches a list: the letter audiences already keep
such people out, and `send_list` drops any that a caller would still pass, as a second lock.
"""

from __future__ import annotations

import polars as pl

from data_contracts.audiences import ADDRESS_FIELDS
from data_contracts.vocabulary import LANGUAGES


def with_segment_names(frame: pl.DataFrame, catalogue: pl.DataFrame | None) -> pl.DataFrame:
    """Add `segment_name`, the segment's name in the row's `language` (Finnish when the language is
    unknown); null for a row without a segment. The frame's own columns are unchanged."""
    if "segment_id" not in frame.columns:
        return frame.with_columns(pl.lit(None, pl.String).alias("segment_name"))
    if catalogue is None or catalogue.height == 0:
        return frame.with_columns(pl.lit(None, pl.String).alias("segment_name"))
    names = catalogue.select(
        pl.col("segment_id").cast(frame.schema["segment_id"]).alias("_sid"),
        *[pl.col(f"name_{lang}").alias(f"_name_{lang}") for lang in LANGUAGES],
    )
    lang = pl.col("language") if "language" in frame.columns else pl.lit("fi")
    chosen = pl.coalesce(
        *[pl.when(lang == code).then(pl.col(f"_name_{code}")) for code in LANGUAGES], pl.col("_name_fi")
    )
    out = frame.join(names, left_on="segment_id", right_on="_sid", how="left", maintain_order="left")
    out = out.with_columns(chosen.alias("segment_name")).drop([f"_name_{lang}" for lang in LANGUAGES])
    order = list(frame.columns)
    order.insert(order.index("segment_id") + 1, "segment_name")
    return out.select(order)


def send_list(
    recipients: pl.DataFrame,
    contacts: pl.DataFrame,
    contact_fields: tuple[str, ...],
    *,
    campaign_name: dict[str, str],
    catalogue: pl.DataFrame | None,
    safety_ban_ids: set[str] | frozenset[str] = frozenset(),
) -> pl.DataFrame:
    """One row per recipient of one channel: recipient_id, recipient_type, language, segment_name,
    campaign_name (in the recipient's language), then `contact_fields` from `contacts` (the day's
    audience rows of that channel, keyed by recipient_id). A recipient the audience no longer holds
    gets no row (it cannot be contacted on D)."""
    keep = [c for c in ("recipient_id", "language", "segment_id", *contact_fields) if c in contacts.columns]
    rows = recipients.select("recipient_id", "recipient_type").join(
        contacts.select(keep), on="recipient_id", how="inner"
    )
    if "language" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.String).alias("language"))
    if any(f in ADDRESS_FIELDS for f in contact_fields):
        rows = rows.filter(~pl.col("recipient_id").is_in(list(safety_ban_ids)))
    rows = with_segment_names(rows, catalogue)
    names = pl.coalesce(
        *[pl.when(pl.col("language") == code).then(pl.lit(campaign_name[code])) for code in LANGUAGES],
        pl.lit(campaign_name["fi"]),
    )
    missing = [f for f in contact_fields if f not in rows.columns]
    return (
        rows.with_columns(names.alias("campaign_name"), *[pl.lit(None, pl.String).alias(f) for f in missing])
        .select("recipient_id", "recipient_type", "language", "segment_name", "campaign_name", *contact_fields)
        .sort("recipient_id")
    )
