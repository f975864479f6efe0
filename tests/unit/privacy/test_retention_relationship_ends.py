"""The retention plan's rule for when a relationship ended (models/retention.py)."""

import datetime as dt

import polars as pl

from assets.privacy.former_customers import FACTS_SCHEMA
from models.retention import former_customers_past, relationship_ends

d = dt.date


def facts(*rows) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=FACTS_SCHEMA, orient="row")


def test_absent_from_the_snapshot_ends_on_the_last_listing_and_the_latest_date_wins():
    frame = facts(
        ("C1", None, d(2023, 6, 1), d(2023, 5, 31), 0),  # vanished: the last listing
        ("C2", d(2023, 8, 1), d(2023, 6, 1), None, 0),  # vanished, ended_on later: ended_on
        ("C3", None, d(2023, 6, 1), d(2024, 1, 31), 0),  # a contract ran on: its end
        ("C4", None, d(2023, 6, 1), None, 1),  # a contract still open: not ended
        ("C5", d(2020, 1, 1), None, d(2019, 12, 31), 0),  # listed with ended_on: as before
    )
    ends = dict(relationship_ends(frame).rows())
    assert ends == {"C1": d(2023, 6, 1), "C2": d(2023, 8, 1), "C3": d(2024, 1, 31), "C5": d(2020, 1, 1)}


def test_erased_the_day_after_the_cutoff_day_never_on_it():
    from models.retention import RetentionPlan

    frame = facts(("C1", None, d(2023, 6, 1), None, 0))
    plan = lambda cutoff: RetentionPlan(cutoff, cutoff, cutoff, cutoff, cutoff, cutoff)  # noqa: E731
    assert former_customers_past(frame, plan(d(2023, 6, 1))) == []
    assert former_customers_past(frame, plan(d(2023, 6, 2))) == ["C1"]
