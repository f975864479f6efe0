"""The freshness rule on its own: the delivery dates in the file names against the policy's expected time."""

import datetime as dt

from assets.ingest.freshness import judge_delivery
from data_contracts.vocabulary import HELSINKI

D = dt.date(2026, 11, 23)
FIVE = dt.time(5, 0)
LONG_AFTER = dt.datetime(2027, 6, 1, 12, tzinfo=HELSINKI)  # a backfill


def test_a_backfill_needs_the_delivery_dated_d_plus_1():
    assert judge_delivery(D, [dt.date(2026, 11, 24)], 1, FIVE, LONG_AFTER).problem is None
    assert judge_delivery(D, [dt.date(2026, 11, 23)], 1, FIVE, LONG_AFTER).problem == "missing"
    assert judge_delivery(D, [], 1, FIVE, LONG_AFTER).problem == "missing"


def test_a_weekly_source_is_on_time_within_its_cadence():
    assert judge_delivery(D, [dt.date(2026, 11, 18)], 7, FIVE, LONG_AFTER).problem is None
    verdict = judge_delivery(D, [dt.date(2026, 11, 17)], 7, FIVE, LONG_AFTER)
    assert verdict.problem == "missing" and (verdict.due_from, verdict.due_to) == (
        dt.date(2026, 11, 18),
        D.replace(day=24),
    )


def test_d_plus_1_is_not_due_before_the_expected_time():
    night = dt.datetime(2026, 11, 24, 3, 0, tzinfo=HELSINKI)
    morning = dt.datetime(2026, 11, 24, 6, 0, tzinfo=HELSINKI)
    assert judge_delivery(D, [dt.date(2026, 11, 23)], 1, FIVE, night).problem is None
    assert judge_delivery(D, [dt.date(2026, 11, 23)], 1, FIVE, morning).problem == "missing"
    assert judge_delivery(D, [], 1, FIVE, night).problem == "missing"
