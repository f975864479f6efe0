"""The retention plan: on business day D, what is past its period and must go.

Pure dates and frames; the `retention` asset (assets/privacy/retention.py) carries the plan out on
the storage. Every period comes from the policy file's `retention` section, so what the access
report tells a person, what erasure keeps and what is deleted can never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from data_contracts.policy import RetentionPolicy


@dataclass(frozen=True)
class RetentionPlan:
    """The earliest date each kind of data is still kept on `day` (older is deleted)."""

    day: dt.date
    metering_readings_from: dt.date
    quarantine_from: dt.date
    contact_history_from: dt.date
    audience_history_from: dt.date
    #: a former customer whose relationship ended before this is erased
    customer_data_from: dt.date

    def kept_since(self) -> dict[str, str]:
        """For the asset's metadata: the cutoffs it enforced."""
        return {
            "metering_readings": str(self.metering_readings_from),
            "quarantine": str(self.quarantine_from),
            "contact_history": str(self.contact_history_from),
            "audience_history": str(self.audience_history_from),
            "customer_data": str(self.customer_data_from),
        }


def plan_retention(periods: RetentionPolicy, day: dt.date) -> RetentionPlan:
    return RetentionPlan(
        day=day,
        metering_readings_from=periods.metering_readings.cutoff(day),
        quarantine_from=periods.quarantine.cutoff(day),
        contact_history_from=periods.contact_history.cutoff(day),
        audience_history_from=periods.audience_history.cutoff(day),
        customer_data_from=periods.customer_data.cutoff(day),
    )


def days_before(days: Iterable[dt.date], cutoff: dt.date) -> list[dt.date]:
    """The days (partitions, deliveries) older than `cutoff`, in order."""
    return sorted(d for d in days if d < cutoff)


def invoice_dates_past(periods: RetentionPolicy, issued: Iterable[dt.date | None], day: dt.date) -> list[dt.date]:
    """The issue dates whose invoices are past their last day on `day`.

    Decided per distinct issue date (a few thousand at most) rather than restating the rule in SQL.
    """
    return [d for d in issued if d is not None and periods.invoice_kept_until(d) < day]


def former_customers_past(relationship_ends: pl.DataFrame, plan: RetentionPlan) -> list[str]:
    """Former customers (customer_id, relationship_ended_on) kept as long as the policy allows."""
    past = relationship_ends.filter(pl.col("relationship_ended_on") < plan.customer_data_from)
    return sorted(past["customer_id"].to_list())
