"""A consent event dated after its own delivery date is quarantined (`occurred_in_future`), and the
consent state on D counts only events that occurred by the end of D, Helsinki time.

The bug: a grant with occurred_at 2027-06-01, delivered on D+1, put the customer into D's email
audience, and another overrode a withdrawal made on D, because nothing bounded occurred_at.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from assets.core.tables import CONSENT_STATE_SQL
from assets.storage.ingestion import read_source
from assets.storage.zones import LupaStorage, query
from data_contracts import sources
from data_contracts.vocabulary import end_of_business_day
from models.fail_safe import blocking_rows
from tests.landing_builder import write


@pytest.fixture
def storage(tmp_path):
    return LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))


def event(event_id: str, action: str, when: str, channel: str = "email", customer: str = "C0000001") -> str:
    return f"{event_id};{customer};marketing;{channel};{action};{when};web_form;v3;form-{event_id}"


def test_end_of_business_day_is_helsinki_midnight_on_dst_days_too():
    assert end_of_business_day(dt.date(2026, 11, 24)) == dt.datetime(2026, 11, 24, 22, tzinfo=dt.UTC)
    assert end_of_business_day(dt.date(2026, 6, 1)) == dt.datetime(2026, 6, 1, 21, tzinfo=dt.UTC)
    # the day the clocks go forward (23 hours) ends in summer time, the day they go back (25) in winter
    assert end_of_business_day(dt.date(2026, 3, 29)) == dt.datetime(2026, 3, 29, 21, tzinfo=dt.UTC)
    assert end_of_business_day(dt.date(2026, 10, 25)) == dt.datetime(2026, 10, 25, 22, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "delivery, last_valid, first_future",
    [
        ("20261124", "2026-11-24T23:59:59+02:00", "2026-11-25T00:00:00+02:00"),
        ("20261124", "2026-11-24T21:59:59Z", "2026-11-24T22:00:00Z"),  # the same instants in UTC
        ("20260329", "2026-03-29T23:59:59+03:00", "2026-03-30T00:00:00+03:00"),  # a 23-hour day
    ],
)
def test_an_event_after_its_delivery_date_is_quarantined(storage, delivery, last_valid, first_future):
    write(
        storage.landing,
        "consents",
        delivery,
        [
            event("E1", "granted", last_valid),  # line 2: on the delivery date, valid
            event("E2", "granted", first_future),  # 3: the first instant after it
            event("E3", "granted", "2027-06-01T10:00:00+03:00"),  # 4: the reviewed case
            event("E4", "withdrawn", "2027-06-01T10:00:00+03:00", channel="sms"),  # 5
        ],
    )
    day = dt.datetime.strptime(delivery, "%Y%m%d").date() - dt.timedelta(days=1)
    outcome = read_source(storage, sources.consents, day)
    assert dict(outcome.quarantine.select("line", "rule").rows()) == {
        3: "occurred_in_future",
        4: "occurred_in_future",
        5: "occurred_in_future",
    }
    assert outcome.valid["event_id"].to_list() == ["E1"]
    assert set(outcome.quarantine["detail"]) == {"occurred_at is after the file's delivery date (Helsinki time)"}


def test_an_event_in_the_future_of_an_older_file_is_judged_by_that_files_date(storage):
    """Each file is judged by its own delivery date, not by the run's."""
    write(storage.landing, "consents", "20261110", [event("E1", "granted", "2026-11-12T10:00:00+02:00")])
    write(storage.landing, "consents", "20261124", [event("E2", "granted", "2026-11-12T10:00:00+02:00")])
    outcome = read_source(storage, sources.consents, dt.date(2026, 11, 23))
    assert outcome.quarantine.select("file", "rule").rows() == [("consent_events_20261110.csv", "occurred_in_future")]
    assert outcome.valid["event_id"].to_list() == ["E2"]


def test_a_bare_split_without_a_delivery_date_has_no_future():
    import polars as pl

    raw = pl.DataFrame(
        [event("E1", "granted", "2027-06-01T10:00:00+03:00").split(";")], schema=sources.consents.header, orient="row"
    ).with_columns(pl.lit(2, dtype=pl.Int64).alias("_line"))
    valid, quarantined = sources.consents.split(raw)
    assert valid.height == 1 and quarantined.is_empty()


def test_a_quarantined_future_withdrawal_blocks_its_channel_and_a_future_grant_does_not(storage):
    write(
        storage.landing,
        "consents",
        "20261124",
        [
            event("E1", "withdrawn", "2027-06-01T10:00:00+03:00", channel="sms"),  # line 2
            event("E2", "granted", "2027-06-01T10:00:00+03:00", channel="email"),  # 3
            event("E3", "withdrawn", "2027-06-01T10:00:00+03:00", channel=""),  # 4: every channel
        ],
    )
    quarantine = read_source(storage, sources.consents, dt.date(2026, 11, 23)).quarantine
    assert set(quarantine["rule"]) == {"occurred_in_future"}
    blocked = blocking_rows(quarantine).select("line", "channel").rows()
    assert sorted(blocked) == [(2, "sms"), (4, "email"), (4, "letter"), (4, "phone"), (4, "sms")]


def consent_state_on(storage: LupaStorage, day: dt.date) -> dict[tuple[str, str | None], tuple[str, str]]:
    """CONSENT_STATE_SQL on the consents' valid rows as the run for `day` reads them."""
    valid = read_source(storage, sources.consents, day).valid
    with duckdb.connect() as conn:
        conn.register("consents_valid", valid.to_arrow())
        state = query(conn, CONSENT_STATE_SQL, day_end=end_of_business_day(day))
    return {(c, ch): (s, e) for c, ch, s, e in state.select("customer_id", "channel", "state", "event_id").rows()}


def test_consent_state_on_d_counts_only_events_that_occurred_by_the_end_of_d(storage):
    d = dt.date(2026, 11, 23)
    write(
        storage.landing,
        "consents",
        "20261124",
        [
            # a withdrawal made on D, and a grant made early on D+1, both in D+1's delivery
            event("W1", "withdrawn", "2026-11-23T20:00:00+02:00"),
            event("G1", "granted", "2026-11-24T05:00:00+02:00"),
            # a grant made on D+1 for a customer with no earlier event
            event("G2", "granted", "2026-11-24T00:00:00+02:00", customer="C0000002"),
            # the last instant of D counts on D
            event("G3", "granted", "2026-11-23T23:59:59.999999+02:00", customer="C0000003"),
        ],
    )
    on_d = consent_state_on(storage, d)
    assert on_d[("C0000001", "email")] == ("withdrawn", "W1")
    assert ("C0000002", "email") not in on_d
    assert on_d[("C0000003", "email")] == ("granted", "G3")
    # on D+1 the grant counts
    on_next = consent_state_on(storage, d + dt.timedelta(days=1))
    assert on_next[("C0000001", "email")] == ("granted", "G1")
    assert on_next[("C0000002", "email")] == ("granted", "G2")
