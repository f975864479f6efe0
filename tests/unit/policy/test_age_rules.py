"""One "age on D" for every age rule: profiling, the audience rules and the independent re-check agree.

The day that told them apart is a 29 February birthday: polars' `offset_by("18y")` moved it to
28 February, while the audience rules and the re-check wait for 1 March. The cases are births on
28 February, 29 February and 1 March, evaluated around the 18th birthday in a non-leap year (2026)
and a leap year (2028), and, since nobody born on 29 February turns 18 in a leap year, around the
20th birthday of a 29 February birth (2028) with an age limit of 20.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from policy_fixtures import customer, granted_everywhere, make_inputs, reasons, run

from data_contracts.policy import MarketingPolicy, load_policy
from models.audience_recheck import _ref_customer_facts
from models.profiling import split_population

BIRTHS = {
    "C0000001": dt.date(2008, 2, 28),
    "C0000002": dt.date(2008, 2, 29),
    "C0000003": dt.date(2008, 3, 1),
    "C0000004": dt.date(2010, 2, 28),
    "C0000005": dt.date(2010, 3, 1),
}
DAYS = [
    dt.date(2026, 2, 27),
    dt.date(2026, 2, 28),
    dt.date(2026, 3, 1),
    dt.date(2028, 2, 28),
    dt.date(2028, 2, 29),
    dt.date(2028, 3, 1),
]


def birthday(born: dt.date, year: int) -> dt.date:
    """The plain-language rule: the same day of the year, or 1 March when that year has no 29 February."""
    try:
        return born.replace(year=year)
    except ValueError:
        return dt.date(year, 3, 1)


def expected_minors(day: dt.date, limit: int) -> set[str]:
    return {cid for cid, born in BIRTHS.items() if day < birthday(born, born.year + limit)}


def with_age_limit(policy: MarketingPolicy, limit: int) -> MarketingPolicy:
    minor = policy.global_exclusions.minor.model_copy(update={"age_limit": limit})
    return policy.model_copy(
        update={
            "global_exclusions": policy.global_exclusions.model_copy(update={"minor": minor}),
            "profiling": policy.profiling.model_copy(update={"adult_age": limit}),
        }
    )


def profiling_minors(day: dt.date, policy: MarketingPolicy) -> set[str]:
    frame = pl.DataFrame(
        {
            "customer_id": list(BIRTHS),
            "customer_type": ["person"] * len(BIRTHS),
            "deceased_on": [None] * len(BIRTHS),
            "birth_date": list(BIRTHS.values()),
            "profiling_state": [None] * len(BIRTHS),
            "active_contracts": [1] * len(BIRTHS),
            "days_with_readings": [365] * len(BIRTHS),
        },
        schema_overrides={"deceased_on": pl.Date, "profiling_state": pl.String},
    )
    _, exclusions = split_population(frame, day, policy.profiling)
    return set(exclusions.filter(pl.col("reason") == "minor")["customer_id"])


def audience_and_recheck_minors(day: dt.date, policy: MarketingPolicy) -> tuple[set[str], set[str]]:
    customers = [customer(cid, birth_date=born) for cid, born in BIRTHS.items()]
    consents = [ev for cid in BIRTHS for ev in granted_everywhere(cid)]
    inputs = make_inputs(customers, consents)
    result = run(inputs, policy, day)
    audience = {cid for cid in BIRTHS if all("minor" in reasons(result, cid, ch) for ch in ("email", "letter"))}
    facts = _ref_customer_facts(inputs, policy, day)
    recheck = set(facts.filter(pl.col("_age") < policy.global_exclusions.minor.age_limit)["customer_id"])
    return audience, recheck


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_profiling_audiences_and_recheck_agree_on_the_18th_birthday_around_29_february(day):
    policy = load_policy()
    assert policy.profiling.adult_age == policy.global_exclusions.minor.age_limit == 18
    expected = expected_minors(day, 18)
    audience, recheck = audience_and_recheck_minors(day, policy)
    assert profiling_minors(day, policy) == expected
    assert audience == expected
    assert recheck == expected


@pytest.mark.parametrize(
    ("day", "minor"),
    [(dt.date(2026, 2, 28), True), (dt.date(2026, 3, 1), False)],
    ids=str,
)
def test_born_on_29_february_turns_18_on_1_march_in_a_non_leap_year(day, minor):
    policy = load_policy()
    audience, recheck = audience_and_recheck_minors(day, policy)
    assert ("C0000002" in profiling_minors(day, policy)) is minor
    assert ("C0000002" in audience) is minor
    assert ("C0000002" in recheck) is minor


@pytest.mark.parametrize(
    ("day", "minor"),
    [(dt.date(2028, 2, 28), True), (dt.date(2028, 2, 29), False), (dt.date(2028, 3, 1), False)],
    ids=str,
)
def test_born_on_29_february_has_the_birthday_on_29_february_in_a_leap_year(day, minor):
    policy = with_age_limit(load_policy(), 20)
    audience, recheck = audience_and_recheck_minors(day, policy)
    assert ("C0000002" in profiling_minors(day, policy)) is minor
    assert ("C0000002" in audience) is minor
    assert ("C0000002" in recheck) is minor
    assert profiling_minors(day, policy) == audience == recheck == expected_minors(day, 20)
