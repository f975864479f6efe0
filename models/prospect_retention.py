"""Which prospects are erased on day D, and why (pure; `assets/privacy/prospect_erasure.py` carries it out).

- `retention`: the prospect's latest `updated_on` (over every delivered row of the prospect) is before
  D minus `retention.prospects` (12 months by default): on 2026-11-23 a prospect last updated on
  2025-11-22 is erased, one last updated on 2025-11-23 is kept until the next day.
- `became_customer`: the prospect matched a current customer on an earlier day (the prospect
  audiences recorded it in `prospect_conversions`). The match showed as `is_customer` in that day's
  prospect exclusions; from the next run the customer record takes over and the prospect record is
  erased (marketing-policy.md, "Prospects").
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from data_contracts.policy import RetentionPolicy

DUE_SCHEMA = {"prospect_id": pl.String, "reason": pl.String}


def prospects_due(
    latest_updates: pl.DataFrame, conversions: pl.DataFrame, periods: RetentionPolicy, day: dt.date
) -> pl.DataFrame:
    """(prospect_id, reason) of every prospect to erase on D. `latest_updates`: prospect_id,
    updated_on (the latest per prospect); `conversions`: prospect_id, first_matched_on."""
    cutoff = periods.prospects.cutoff(day)
    expired = latest_updates.filter(pl.col("updated_on") < cutoff).select(
        "prospect_id", pl.lit("retention").alias("reason")
    )
    converted = conversions.filter(pl.col("first_matched_on") < day).select(
        "prospect_id", pl.lit("became_customer").alias("reason")
    )
    # a converted prospect whose period also ran out is erased as converted: the customer took over first
    return (
        pl.concat([converted, expired.join(converted, on="prospect_id", how="anti")])
        .cast(DUE_SCHEMA)
        .sort("prospect_id")
    )
