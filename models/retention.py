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


def relationship_ends(facts: pl.DataFrame) -> pl.DataFrame:
    """Former customers and the day their relationship ended (customer_id, relationship_ended_on).

    `facts` (assets/privacy/former_customers.py): per customer `ended_on` (the CRM's end date),
    `last_listed_on` (the last CRM snapshot that listed them, set only when the latest one no longer
    does), `last_contract_end` and `open_contracts`.

    The relationship has ended when the CRM says so (`ended_on`) or no longer lists the customer (the
    landing-zone contract: absent from the latest snapshot is no longer a customer), and no contract
    is still open. It ended on the latest of the three dates: the CRM's date, the last snapshot that
    listed them (the CRM served them until then, whatever `ended_on` says), and the last contract's
    end (a contract that runs past the CRM's date, a move handled late, is still the relationship).
    A customer the latest snapshot lists without `ended_on` has no end here, however old their
    contracts: the CRM still serves them.
    """
    ended = facts.filter(
        (pl.col("ended_on").is_not_null() | pl.col("last_listed_on").is_not_null()) & (pl.col("open_contracts") == 0)
    )
    return ended.select(
        "customer_id",
        pl.max_horizontal("ended_on", "last_listed_on", "last_contract_end").alias("relationship_ended_on"),
    )


def former_customers_past(facts: pl.DataFrame, plan: RetentionPlan) -> list[str]:
    """Former customers kept as long as the policy allows: their relationship ended before
    `customer_data_from`, so on the day the period has passed in full, never a day earlier."""
    past = relationship_ends(facts).filter(pl.col("relationship_ended_on") < plan.customer_data_from)
    return sorted(past["customer_id"].to_list())
