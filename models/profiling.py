"""Who may be profiled: the clustering population as one declarative table of exclusion reasons.

A customer is in the population only when no reason applies. Every reason that applies is
recorded (counts go to Dagster metadata, never ids). An objection to profiling (GDPR Art. 21(2))
keeps the customer out of the features, the scaling and the fit alike. The thresholds are the
policy file's `profiling` section.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from data_contracts.policy import ProfilingPolicy
from models.age import age_on


def exclusion_reasons(as_of: dt.date, rules: ProfilingPolicy) -> dict[str, pl.Expr]:
    """Reason code → expression that is True when the reason applies (columns from `candidates`)."""
    return {
        "company": pl.col("customer_type") == "company",
        "deceased": (pl.col("deceased_on") <= as_of).fill_null(False),
        # the same "age on D" as the audiences' minor rule (models/age.py): a person born on 29 February
        # is profiled from 1 March of the year they turn adult_age, not from 28 February
        "minor": (age_on(pl.col("birth_date"), as_of) < rules.adult_age).fill_null(True),
        "profiling_objection": (pl.col("profiling_state") == "withdrawn").fill_null(False),
        "no_active_contract": pl.col("active_contracts").fill_null(0) == 0,
        "insufficient_history": pl.col("days_with_readings").fill_null(0) < rules.min_history_days,
    }


def candidates(
    customers: pl.DataFrame, consent_state: pl.DataFrame, contracts: pl.DataFrame, history: pl.DataFrame, as_of: dt.date
) -> pl.DataFrame:
    """One row per customer with every column the exclusion reasons look at."""
    profiling = consent_state.filter(pl.col("purpose") == "profiling").select(
        "customer_id", pl.col("state").alias("profiling_state")
    )
    active = (
        contracts.filter(
            (pl.col("start_date") <= as_of) & (pl.col("end_date").is_null() | (pl.col("end_date") >= as_of))
        )
        .group_by("customer_id")
        .agg(pl.len().alias("active_contracts"))
    )
    return (
        customers.select("customer_id", "customer_type", "deceased_on", "birth_date")
        .join(profiling, on="customer_id", how="left")
        .join(active, on="customer_id", how="left")
        .join(history.select("customer_id", "days_with_readings"), on="customer_id", how="left")
    )


def split_population(frame: pl.DataFrame, as_of: dt.date, rules: ProfilingPolicy) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(population: customer_id, exclusions: customer_id + reason, one row per reason that applies)."""
    reasons = exclusion_reasons(as_of, rules)
    flagged = frame.with_columns([expr.alias(f"_x_{code}") for code, expr in reasons.items()])
    excluded = pl.any_horizontal([pl.col(f"_x_{code}") for code in reasons])
    population = flagged.filter(~excluded).select("customer_id").sort("customer_id")
    exclusions = (
        flagged.filter(excluded)
        .select(
            "customer_id",
            pl.concat_list([pl.when(pl.col(f"_x_{c}")).then(pl.lit(c)) for c in reasons])
            .list.drop_nulls()
            .alias("reason"),
        )
        .explode("reason")
        .sort("customer_id", "reason")
    )
    return population, exclusions
