"""Planning on crafted audiences: one channel per person in the brief's order, the cap, the control group
(stable on every re-plan, its share within binomial tolerance), max_recipients, and the reasons of
everyone left out; and a released list that only shrinks."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from data_contracts.campaigns import parse_brief
from models.campaign_cap import COMMITTED_SCHEMA
from models.campaign_plan import CampaignPopulation, ProspectsUnavailable, plan_campaign, recheck_at_release, removals

KEY = b"test-key"
DAY = dt.date(2026, 11, 24)
SEND_ON = dt.date(2026, 12, 10)
NONE_COMMITTED = pl.DataFrame(schema=COMMITTED_SCHEMA)


def brief(**change):
    base = {
        "campaign_id": "WINTER-1",
        "name": {"fi": "Talvi", "sv": "Vinter", "en": "Winter"},
        "audience": "customers",
        "channels": ["email", "letter"],
        "send_on": SEND_ON,
        "control_share": 0.1,
        "response_days": 30,
    }
    return parse_brief({**base, **change})


def ids(n, prefix="C"):
    return [f"{prefix}{i:07d}" for i in range(1, n + 1)]


def profiles(customer_ids, **cols):
    n = len(customer_ids)
    return pl.DataFrame(
        {
            "customer_id": customer_ids,
            "language": cols.get("language", ["fi"] * n),
            "segment_id": cols.get("segment_id", [1] * n),
            "contract_types": cols.get("contract_types", [["open_ended"]] * n),
            "product_codes": cols.get("product_codes", [["SPOT"]] * n),
            "site_types": cols.get("site_types", [["apartment"]] * n),
            "open_reminders": cols.get("open_reminders", [False] * n),
        },
        schema_overrides={"segment_id": pl.Int32},
    )


def population(customer_ids, email, letter, exclusions=None, prospects=None, **cols):
    reach = {
        "email": pl.DataFrame(
            {"recipient_id": email, "recipient_type": "customer"},
            schema={"recipient_id": pl.String, "recipient_type": pl.String},
        ),
        "letter": pl.DataFrame(
            {"recipient_id": letter, "recipient_type": "customer"},
            schema={"recipient_id": pl.String, "recipient_type": pl.String},
        ),
        "sms": pl.DataFrame(schema={"recipient_id": pl.String, "recipient_type": pl.String}),
        "phone": pl.DataFrame(schema={"recipient_id": pl.String, "recipient_type": pl.String}),
    }
    exc = (
        exclusions
        if exclusions is not None
        else pl.DataFrame(schema={"recipient_id": pl.String, "channel": pl.String, "reason": pl.String})
    )
    return CampaignPopulation(reach, exc, profiles(customer_ids, **cols), prospects)


def plan(b, pop, committed=NONE_COMMITTED):
    return plan_campaign(b, pop, committed, cap=4, window_days=365, key=KEY, day=DAY)


def test_first_channel_in_priority_order_and_every_left_out_person_says_why():
    people = ids(4)
    exclusions = pl.DataFrame(
        {
            "recipient_id": [people[3], people[3], people[3], people[2]],
            "channel": ["email", "letter", "letter", "email"],
            "reason": ["consent_missing", "asml_mail", "safety_ban", "consent_withdrawn"],
        }
    )
    pop = population(people, email=people[:2], letter=people[1:3], exclusions=exclusions)
    rows = plan(brief(control_share=0.0), pop)
    got = {r["recipient_id"]: r for r in rows.to_dicts()}
    assert got[people[0]]["channel"] == "email" and got[people[1]]["channel"] == "email"
    assert got[people[2]]["channel"] == "letter"
    assert got[people[3]]["status"] == "left_out" and got[people[3]]["reason"] == "not_in_audience"
    assert got[people[3]]["detail"] == "email: consent_missing; letter: asml_mail, safety_ban"
    assert rows.height == 4  # one row per targeted person
    rows = plan(brief(control_share=0.0, channels=["letter", "email"]), pop)
    assert rows.filter(pl.col("recipient_id") == people[1])["channel"].item() == "letter"


def test_segments_and_filters_narrow_the_customers():
    people = ids(6)
    pop = population(
        people,
        email=people,
        letter=[],
        segment_id=[1, 2, None, 2, 2, 2],
        language=["fi", "fi", "fi", "sv", "fi", "fi"],
        contract_types=[["open_ended"], ["open_ended"], ["open_ended"], ["open_ended"], ["fixed_term"], ["open_ended"]],
        open_reminders=[False, False, False, False, False, True],
    )
    b = brief(
        segments=[2],
        filters={"language": ["fi"], "contract_type": ["open_ended"], "no_open_reminders": True},
        control_share=0,
    )
    assert plan(b, pop)["recipient_id"].to_list() == [people[1]]


def test_the_cap_leaves_out_whoever_this_contact_would_push_over():
    people = ids(2)
    committed = pl.DataFrame(
        {
            "recipient_id": [people[0]] * 4,
            "contact_on": [SEND_ON + dt.timedelta(days=d) for d in (-300, -100, 50, 60)],
            "campaign_id": list("ABCD"),
        },
        schema=COMMITTED_SCHEMA,
    )
    rows = plan(brief(control_share=0), population(people, email=people, letter=[]), committed)
    left = rows.filter(pl.col("status") == "left_out")
    assert left["recipient_id"].to_list() == [people[0]] and left["reason"].to_list() == ["frequency_cap"]
    assert left["channel"].to_list() == [None]


def test_the_control_group_is_stable_across_re_plans_and_within_binomial_tolerance():
    people = ids(5000)
    pop = population(people, email=people, letter=[])
    first = plan(brief(control_share=0.2), pop)
    control = set(first.filter(pl.col("status") == "control")["recipient_id"])
    n, p = len(people), 0.2
    assert abs(len(control) - n * p) <= 4 * math.sqrt(n * p * (1 - p))  # 4 sigma: a flaky test would be worse
    # a re-plan on another day, with half the people gone and others reachable by letter only
    pop2 = population(people, email=people[::2], letter=people[1::2])
    again = plan_campaign(
        brief(control_share=0.2), pop2, NONE_COMMITTED, cap=4, window_days=365, key=KEY, day=DAY + dt.timedelta(days=1)
    )
    assert set(again.filter(pl.col("status") == "control")["recipient_id"]) == control
    # another campaign draws independently
    other = plan(brief(control_share=0.2, campaign_id="OTHER"), pop)
    overlap = len(control & set(other.filter(pl.col("status") == "control")["recipient_id"]))
    assert overlap < len(control) * 0.4
    # another key, other people
    keyed = plan_campaign(brief(control_share=0.2), pop, NONE_COMMITTED, cap=4, window_days=365, key=b"other", day=DAY)
    assert set(keyed.filter(pl.col("status") == "control")["recipient_id"]) != control


def test_max_recipients_keeps_the_treated_with_the_lowest_draws_and_records_the_rest():
    people = ids(300)
    rows = plan(brief(control_share=0.1, max_recipients=100), population(people, email=people, letter=[]))
    counts = dict(rows.group_by("status").len().rows())
    assert counts["treated"] == 100
    assert rows.filter(pl.col("status") == "left_out")["reason"].unique().to_list() == ["max_recipients"]
    assert counts["control"] + counts["treated"] + counts["left_out"] == 300


def test_prospects_are_planned_from_their_audiences_or_refused_clearly():
    people = ids(2)
    with pytest.raises(ProspectsUnavailable, match="prospect audiences are not available"):
        plan(brief(audience="both"), population(people, email=people, letter=[]))
    prospects = pl.DataFrame({"prospect_id": ["P000000001", "P000000002"]})
    pop = population(people, email=[*people, "P000000001"], letter=[], prospects=prospects)
    rows = plan(brief(audience="both", control_share=0), pop)
    assert dict(zip(rows["recipient_id"], rows["recipient_type"], strict=True))["P000000001"] == "prospect"
    assert rows.filter(pl.col("recipient_id") == "P000000002")["reason"].item() == "not_in_audience"
    only = plan(brief(audience="prospects", control_share=0), pop)
    assert set(only["recipient_type"]) == {"prospect"}


def test_release_recheck_leaves_out_those_a_later_release_filled_up():
    people = ids(3)
    rows = plan(brief(control_share=0), population(people, email=people, letter=[]))
    committed = pl.DataFrame(
        {
            "recipient_id": [people[1]] * 4,
            "contact_on": [SEND_ON - dt.timedelta(days=d) for d in (1, 2, 3, 4)],
            "campaign_id": list("ABCD"),
        },
        schema=COMMITTED_SCHEMA,
    )
    frozen = recheck_at_release(rows, SEND_ON, committed, cap=4, window_days=365)
    assert frozen.filter(pl.col("status") == "treated")["recipient_id"].to_list() == [people[0], people[2]]
    assert frozen.filter(pl.col("recipient_id") == people[1])["reason"].item() == "frequency_cap"


def test_a_released_list_only_shrinks_and_records_why():
    people = ids(5)
    b = brief(control_share=0.4, segments=[1])
    pop = population(people, email=people, letter=[])
    released = plan(b, pop)
    assert set(released["status"]) <= {"treated", "control"}
    exclusions = pl.DataFrame(
        {
            "recipient_id": [people[0], people[0]],
            "channel": ["email", "email"],
            "reason": ["consent_withdrawn", "deceased"],
        }
    )
    # people[0] withdrew and died, people[1] was erased, people[2] objected to profiling (no segment)
    later = population(
        [p for p in people if p != people[1]],
        email=[people[2], people[3], people[4]],
        letter=[],
        exclusions=exclusions,
        segment_id=[1, None, 1, 1],
    )
    gone = removals(b, released, later, DAY + dt.timedelta(days=2), objectors={people[2]})
    assert dict(gone.rows()) == {
        people[0]: "consent_withdrawn, deceased",
        people[1]: "erased",
        people[2]: "profiling_objection",
    }
    # on or after send_on the list is history: nothing is removed
    assert removals(b, released, later, SEND_ON).height == 0
    # a person who comes back is not added again: removals only ever name people of the released list
    assert set(gone["recipient_id"]) <= set(released["recipient_id"])
