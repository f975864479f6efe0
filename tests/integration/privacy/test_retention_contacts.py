"""Contacts leave both `contact_history` and its ingest copy `contacts_valid` the day after the last
day they are kept, and a contact delivery re-read by a later run (or a backfill of an earlier day)
never brings them back; nor does a backfill store again quarantined records retention removed.

On 2026-11-22 a contact sent on 2023-11-22 (Helsinki time) is kept, from 2026-11-23 it is not.
"""

import datetime as dt

from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import make_hetu, person, write

LAST_KEPT = dt.date(2026, 11, 22)
GONE_FROM = LAST_KEPT + dt.timedelta(days=1)
C = "C0000001"


def landing(storage) -> None:
    write(storage.landing, "customers", "20261120", [person(C, make_hetu("150380", "-", 201))])
    # sent on 2023-11-22 in Helsinki, still 2023-11-21 in UTC: the Helsinki date decides
    write(
        storage.landing,
        "contacts",
        "20231123",
        [f"{C};email;OLD;marketing;2023-11-22T00:30:00+02:00", f"{C};email;OLDER;marketing;2023-11-19T09:00:00+02:00"],
    )
    # the old contact delivered again, with a new one
    write(
        storage.landing,
        "contacts",
        "20261120",
        [f"{C};email;OLD;marketing;2023-11-22T00:30:00+02:00", f"{C};email;NEW;marketing;2026-11-19T09:00:00+02:00"],
    )


def contacts(storage) -> dict[str, list[str]]:
    with storage.warehouse(read_only=True) as conn:
        return {
            t: [c for (c,) in conn.sql(f"select campaign_id from {t} order by 1").fetchall()]
            for t in ("contact_history", "contacts_valid")
        }


def removed(result) -> str:
    return result.asset_materializations_for_node("retention")[0].metadata["removed"].value


def ingest_check(result, asset: str) -> tuple[bool, dict]:
    check = next(
        c
        for c in result.get_asset_check_evaluations()
        if c.asset_key.path[-1] == asset and c.check_name == "conservation"
    )
    return check.passed, {k: v.value for k, v in check.metadata.items()}


def test_an_old_contact_leaves_both_tables_on_the_right_day_and_never_comes_back(tmp_path):
    storage = storage_for(tmp_path)
    landing(storage)

    last_day = run_day(storage, LAST_KEPT)  # not a day earlier
    assert contacts(storage) == {"contact_history": ["NEW", "OLD"], "contacts_valid": ["NEW", "OLD", "OLD"]}
    assert "| `contact history rows` | 1 |" in removed(last_day) and "| `contacts_valid rows` | 1 |" in removed(
        last_day
    )  # OLDER

    first_day = run_day(storage, GONE_FROM)
    assert "| `contact history rows` | 1 |" in removed(first_day) and "| `contacts_valid rows` | 2 |" in removed(
        first_day
    )
    assert contacts(storage) == {"contact_history": ["NEW"], "contacts_valid": ["NEW"]}

    # every later run re-reads every contact delivery; so does a backfill of a day they were still kept
    for day in (GONE_FROM + dt.timedelta(days=1), LAST_KEPT):
        result = run_day(storage, day)
        assert contacts(storage) == {"contact_history": ["NEW"], "contacts_valid": ["NEW"]}, day
        assert "| `contact history rows` | 0 |" in removed(result) and "| `contacts_valid rows` | 0 |" in removed(
            result
        )
        passed, counts = ingest_check(result, "ingest_contacts")
        assert passed and counts["rows_past_retention"] == 3 and counts["rows_read"] == counts["rows_valid"] + 3
    with storage.warehouse(read_only=True) as conn:
        per_file = dict(
            conn.sql("select file_name, rows_past_retention from file_registry where source = 'contacts'").fetchall()
        )
        assert per_file == {"contacts_20231123.csv": 2, "contacts_20261120.csv": 1}
        assert conn.sql("select count(*) from contact_pruning_log").fetchall() == [(4,)]


def test_a_backfill_does_not_store_again_the_quarantine_retention_removed(tmp_path):
    storage = storage_for(tmp_path)
    write(storage.landing, "customers", "20261120", [person(C, make_hetu("150380", "-", 201))])
    # delivered 90 days before LAST_KEPT: kept on LAST_KEPT, past the quarantine period from GONE_FROM
    write(storage.landing, "contacts", "20260824", [f"{C};fax;BAD;customer_communication;2026-08-23T09:00:00+03:00"])

    def quarantined() -> list[str]:
        with storage.warehouse(read_only=True) as conn:
            return [f for (f,) in conn.sql("select file from quarantine where source = 'contacts'").fetchall()]

    run_day(storage, LAST_KEPT)
    assert quarantined() == ["contacts_20260824.csv"]
    run_day(storage, GONE_FROM)  # the day's own ingestion leaves it out, and retention records the day
    assert quarantined() == []

    backfill = run_day(storage, LAST_KEPT)
    assert quarantined() == []
    passed, counts = ingest_check(backfill, "ingest_contacts")
    assert passed and counts["rows_quarantined"] == 1  # counted, not stored
