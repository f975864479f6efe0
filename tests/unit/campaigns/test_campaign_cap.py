"""The cap over every window: a property test against a brute-force count of every 365-day window.

Hypothesis draws contact histories (marketing and customer communication, around the Helsinki day
edges) and a sequence of campaigns planned and released one after another, on send_on days before
and after each other. Whatever the order, no window holding a campaign contact ever holds more than
4 marketing contacts, and when the history alone keeps the cap, no window at all does.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.campaign_cap import committed_contacts, over_cap, sent_contacts

CAP, WINDOW = 4, 365
START = dt.date(2026, 1, 1)
PEOPLE = ["C0000001", "C0000002", "C0000003", "P000000001"]
UTC = dt.UTC


def _history_frame(rows: list[tuple[str, dt.datetime, str, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "channel": ["email"] * len(rows),
            "campaign_id": [r[3] for r in rows],
            "kind": [r[2] for r in rows],
            "sent_at": [r[1] for r in rows],
        },
        schema={
            "customer_id": pl.String,
            "channel": pl.String,
            "campaign_id": pl.String,
            "kind": pl.String,
            "sent_at": pl.Datetime("us", "UTC"),
        },
    )


def _max_in_any_window(days: list[dt.date]) -> int:
    """Brute force: every window [s, s+364] that starts on a contact day (a window's count can only be
    highest when it starts on one)."""
    return max((sum(1 for d in days if s <= d <= s + dt.timedelta(days=WINDOW - 1)) for s in days), default=0)


@st.composite
def scenario(draw):
    history = []
    for person in PEOPLE:
        for _ in range(draw(st.integers(0, 6))):
            offset = draw(st.integers(0, 900))
            # 21:00-23:59 UTC is already the next day in Helsinki: the day edge is exercised
            at = dt.datetime.combine(
                START + dt.timedelta(days=offset), dt.time(draw(st.sampled_from([0, 12, 21, 23]))), UTC
            )
            kind = draw(st.sampled_from(["marketing", "marketing", "customer_communication"]))
            history.append((person, at, kind, None))
    campaigns = [
        (
            f"K{i}",
            START + dt.timedelta(days=draw(st.integers(0, 900))),
            draw(st.lists(st.sampled_from(PEOPLE), unique=True)),
        )
        for i in range(draw(st.integers(1, 8)))
    ]
    return history, campaigns


def _helsinki_day(at: dt.datetime) -> dt.date:
    from data_contracts.vocabulary import HELSINKI

    return at.astimezone(HELSINKI).date()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_released_campaigns_never_put_more_than_four_contacts_in_any_window(case):
    history, campaigns = case
    history = list(dict.fromkeys(history))  # the same contact delivered twice is one contact (landing zone)
    sent = sent_contacts(_history_frame(history))
    released = pl.DataFrame(schema={"recipient_id": pl.String, "campaign_id": pl.String, "send_on": pl.Date})
    for campaign_id, send_on, people in campaigns:
        committed = committed_contacts(sent, released)
        capped = over_cap(people, send_on, committed, cap=CAP, window_days=WINDOW)
        kept = [p for p in people if p not in capped]
        released = pl.concat(
            [
                released,
                pl.DataFrame(
                    {"recipient_id": kept, "campaign_id": [campaign_id] * len(kept), "send_on": [send_on] * len(kept)},
                    schema=released.schema,
                ),
            ]
        )
        # nobody was left out who had room: with this one contact every window still keeps the cap
        for p in capped:
            days = [_helsinki_day(at) for who, at, kind, _ in history if who == p and kind == "marketing"]
            days += [r["send_on"] for r in released.filter(pl.col("recipient_id") == p).to_dicts()]
            assert _max_in_any_window([*days, send_on]) > CAP
    for person in PEOPLE:
        marketing = [_helsinki_day(at) for who, at, kind, _ in history if who == person and kind == "marketing"]
        sends = released.filter(pl.col("recipient_id") == person)["send_on"].to_list()
        days = marketing + sends
        for s in sends:  # every window that holds a campaign contact
            for start in (d for d in days if s - dt.timedelta(days=WINDOW - 1) <= d <= s):
                n = sum(1 for d in days if start <= d <= start + dt.timedelta(days=WINDOW - 1))
                assert n <= CAP, (person, s, start)
        if _max_in_any_window(marketing) <= CAP:
            assert _max_in_any_window(days) <= CAP


def test_a_released_contact_counts_until_the_history_shows_it_then_once():
    send_on = dt.date(2026, 6, 1)
    released = pl.DataFrame({"recipient_id": ["C0000001"], "campaign_id": ["K1"], "send_on": [send_on]})
    pending = committed_contacts(sent_contacts(_history_frame([])), released)
    assert pending.height == 1
    shown = _history_frame([("C0000001", dt.datetime(2026, 6, 1, 8, tzinfo=UTC), "marketing", "K1")])
    both = committed_contacts(sent_contacts(shown), released)
    assert both.height == 1 and both["campaign_id"].to_list() == ["K1"]


def test_a_later_release_is_counted_in_the_windows_reaching_forward():
    # four contacts in the 364 days after send_on leave no room, although nothing precedes send_on
    send_on = dt.date(2026, 1, 10)
    later = [send_on + dt.timedelta(days=d) for d in (10, 100, 200, 364)]
    committed = pl.DataFrame(
        {"recipient_id": ["C0000001"] * 4, "contact_on": later, "campaign_id": ["A", "B", "C", "D"]},
        schema={"recipient_id": pl.String, "contact_on": pl.Date, "campaign_id": pl.String},
    )
    assert over_cap(["C0000001"], send_on, committed, cap=CAP, window_days=WINDOW) == {"C0000001"}
    # a day later the fourth is out of every window that holds send_on
    committed = committed.with_columns(
        pl.col("contact_on") + pl.duration(days=pl.when(pl.col("campaign_id") == "D").then(1).otherwise(0))
    )
    assert over_cap(["C0000001"], send_on, committed, cap=CAP, window_days=WINDOW) == set()


def test_customer_communication_never_counts():
    history = _history_frame(
        [("C0000001", dt.datetime(2026, 5, d, 8, tzinfo=UTC), "customer_communication", None) for d in range(1, 10)]
    )
    committed = committed_contacts(
        sent_contacts(history),
        pl.DataFrame(schema={"recipient_id": pl.String, "campaign_id": pl.String, "send_on": pl.Date}),
    )
    assert over_cap(["C0000001"], dt.date(2026, 5, 20), committed, cap=CAP, window_days=WINDOW) == set()
