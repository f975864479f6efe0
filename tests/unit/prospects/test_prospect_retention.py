"""When a prospect is erased (models/prospect_retention.py), and how a suppression record tells a
re-delivered list from a new lead (assets/storage/prospect_suppression.py)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from assets.storage import prospect_suppression
from data_contracts.policy import load_policy
from models.prospect_retention import prospects_due

PERIODS = load_policy().retention


def test_a_prospect_is_erased_the_day_after_twelve_months_since_its_latest_update():
    latest = pl.DataFrame(
        {"prospect_id": ["P1", "P2", "P3"], "updated_on": [dt.date(2025, 11, 22), dt.date(2025, 11, 23), None]},
        schema={"prospect_id": pl.String, "updated_on": pl.Date},
    )
    conversions = pl.DataFrame(
        {"prospect_id": ["P2", "P4"], "first_matched_on": [dt.date(2026, 11, 22), dt.date(2026, 11, 23)]},
        schema={"prospect_id": pl.String, "first_matched_on": pl.Date},
    )
    due = prospects_due(latest, conversions, PERIODS, dt.date(2026, 11, 23))
    # P1: last updated 2025-11-22, past on 2026-11-23; P2 converted the day before; P4 matched today:
    # its is_customer exclusion is published today, the erasure follows tomorrow
    assert due.rows() == [("P1", "retention"), ("P2", "became_customer")]


def test_a_suppression_record_keeps_old_rows_out_and_lets_a_later_collection_in(tmp_path, monkeypatch):
    monkeypatch.setenv("LUPA_PSEUDONYM_KEY", "test-key")
    prospect_suppression.add(tmp_path, ["P000000005", "old@example.fi"], dt.date(2026, 11, 23), "data_subject_request")
    records = prospect_suppression.load(tmp_path)
    rows = pl.DataFrame(
        {
            "prospect_id": ["P000000005", "P000000006", "P000000007", "P000000008"],
            "personal_id": [None, None, None, None],
            "email": ["a@example.fi", "old@example.fi", "old@example.fi", "new@example.fi"],
            "collected_on": [dt.date(2026, 11, 1), dt.date(2025, 10, 1), dt.date(2026, 11, 24), dt.date(2025, 1, 1)],
        },
        schema={"prospect_id": pl.String, "personal_id": pl.String, "email": pl.String, "collected_on": pl.Date},
    )
    kept = prospect_suppression.keep_prospects(rows, records)["prospect_id"].to_list()
    # by id or by email, collected on or before the erasure: out; collected after it: a new lead
    assert kept == ["P000000007", "P000000008"]
    contacts = pl.DataFrame(
        {
            "customer_id": ["P000000005", "P000000005", "C0000005"],
            "sent_at": [
                dt.datetime(2026, 11, 23, 21, 0, tzinfo=dt.UTC),  # 23:00 Helsinki on the erasure day
                dt.datetime(2026, 11, 23, 22, 30, tzinfo=dt.UTC),  # 00:30 on the next day
                dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            ],
        }
    )
    assert prospect_suppression.keep_contacts(contacts, records)["customer_id"].to_list() == ["P000000005", "C0000005"]
    assert "old@example.fi" not in records.write_csv()


def test_a_publisher_that_read_before_an_erasure_does_not_publish_the_erased_prospect(tmp_path, monkeypatch):
    from assets.storage.mart import without_erased

    monkeypatch.setenv("LUPA_PSEUDONYM_KEY", "test-key")
    day = dt.date(2026, 11, 23)
    tables = {
        "prospect_audience_email": pl.DataFrame({"prospect_id": ["P000000001", "P000000002"], "as_of": [day, day]}),
        "audience_email": pl.DataFrame({"customer_id": ["C0000001"], "as_of": [day]}),
    }
    warehouse = tmp_path / "warehouse"
    # P2 was erased long ago and came back as a new lead: it stays; P1 is erased now: it goes
    prospect_suppression.add(warehouse, ["P000000002"], dt.date(2026, 1, 5), "retention")
    prospect_suppression.add(warehouse, ["P000000001"], dt.date(2026, 11, 24), "data_subject_request")
    kept, dropped = without_erased(tmp_path, tables)
    assert kept["prospect_audience_email"]["prospect_id"].to_list() == ["P000000002"] and dropped == 1
    assert kept["audience_email"].height == 1
