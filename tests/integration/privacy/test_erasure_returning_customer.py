"""An erasure keeps the erased relationship out, not the person: a customer who comes back is served.

The landing zone is the one of test_erasure.py. GONE is erased on 2026-11-24; the same person (the same
identity code) signs a new contract under a new customer id, RETURNED, on 2026-11-25. The next runs
must put RETURNED into the audiences and the renewal offers with their contract, and must still keep
out everything of GONE: the old CRM row (even in a new snapshot), its contract, consent, invoice, the
register row delivered before the erasure, and a backfill of the old day.
"""

import datetime as dt

import duckdb

from assets.privacy.erasure import erase
from assets.storage import suppression
from assets.storage.mart import read_published
from tests.dagster_helpers import run_day, storage_for
from tests.integration.privacy.test_erasure import (
    ERASED_ON,
    GONE,
    GONE_HETU,
    KEEP,
    RETENTION_PERIODS,
    D,
    everything_text,
    landing,
)
from tests.landing_builder import GSRN1, GSRN2, make_hetu, metering_row, person, write

RETURNED = "C0000009"
GSRN3 = "643550123456789035"
BACK = dt.date(2026, 11, 26)  # the run day after the return
#: what the old relationship held that the new one does not: the old CRM and register addresses, email
OLD_ONLY = ("Poistotie 9", "Uusitie 1", "gone@example.fi")


def return_delivery(storage, delivery: str = "20261127", day: dt.date = BACK) -> None:
    """The CRM lists KEEP, the erased GONE again (an old row re-sent) and RETURNED; RETURNED has a
    fixed-term contract ending within the renewal window, an email consent, and a register row."""
    write(
        storage.landing,
        "customers",
        delivery,
        [
            person(KEEP, make_hetu("150380", "-", 201), first_name="Pysyvä", email="keep@example.fi"),
            person(GONE, GONE_HETU, first_name="Poistuva", email="gone@example.fi", street_address="Poistotie 9"),
            person(
                RETURNED,
                GONE_HETU,
                first_name="Palaava",
                email="back@example.fi",
                street_address="Paluukatu 5",
                customer_since="2026-11-25",
            ),
        ],
    )
    write(
        storage.landing,
        "contracts",
        delivery,
        [
            f"K1;{KEEP};{GSRN1};SPOT;open_ended;2024-01-01;;apartment;district",
            f"K2;{GONE};{GSRN2};FIXED24;fixed_term;2024-01-01;2026-12-31;apartment;district",
            f"K9;{RETURNED};{GSRN3};FIXED24;fixed_term;2026-11-25;2026-12-31;apartment;district",
        ],
    )
    write(
        storage.landing,
        "consents",
        delivery,
        [f"E9;{RETURNED};marketing;email;granted;2026-11-25T10:00:00Z;web_form;v3;f-{RETURNED}"],
    )
    write(storage.landing, "population", delivery, [f"{GONE_HETU};;0;0;Paluukatu 5;00100;Helsinki;2026-11-25"])
    start = dt.datetime.combine(day, dt.time(), dt.timezone.utc) - dt.timedelta(hours=2)
    write(
        storage.landing,
        "metering",
        delivery,
        [
            metering_row(g, (start + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            for g in (GSRN1, GSRN2, GSRN3)
            for h in range(24)
        ],
    )


def warehouse_rows(storage, sql: str) -> list[tuple]:
    conn = duckdb.connect(str(storage.warehouse_path), read_only=True)
    try:
        return conn.sql(sql).fetchall()
    finally:
        conn.close()


def published_ids(storage, table: str) -> list[str]:
    frame = read_published(storage.root, table)
    return [] if frame is None else frame["customer_id"].to_list()


def test_a_customer_who_returns_after_an_erasure_is_served_and_the_erased_id_stays_out(tmp_path):
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    erase(storage, GONE, ERASED_ON, RETENTION_PERIODS)
    return_delivery(storage)
    assert run_day(storage, BACK).success

    # the new relationship: customer, contract (not an unknown_customer), register row, audiences, renewal
    assert warehouse_rows(storage, "select customer_id from customers order by 1") == [(KEEP,), (RETURNED,)]
    assert warehouse_rows(storage, f"select contract_id from contracts where customer_id = '{RETURNED}'") == [("K9",)]
    assert warehouse_rows(storage, "select rule from quarantine where rule like '%unknown_customer%'") == []
    assert warehouse_rows(
        storage, f"select street_address from population_register where personal_id = '{GONE_HETU}'"
    ) == [("Paluukatu 5",)]
    assert RETURNED in published_ids(storage, "audience_email")
    assert RETURNED in published_ids(storage, "renewal_offers")

    # the erased relationship: nothing of it, although its files are still read and its row re-sent
    def erased_relationship_is_out() -> None:
        text = everything_text(storage)
        for value in OLD_ONLY:
            assert value not in text
        for table in ("audience_email", "audience_letter", "audience_phone", "renewal_offers", "audience_exclusions"):
            assert GONE not in published_ids(storage, table)
        assert warehouse_rows(storage, f"select count(*) from contracts where customer_id = '{GONE}'") == [(0,)]
        assert warehouse_rows(storage, f"select count(*) from customers_valid where customer_id = '{GONE}'") == [(0,)]

    erased_relationship_is_out()
    counts = dict(warehouse_rows(storage, "select file_name, rows_suppressed from file_registry"))
    assert counts["customers_20261127.csv"] == 1  # the re-sent row of GONE, not RETURNED's
    assert counts["vtj_20261124.csv"] == 1  # the register row delivered before the erasure

    # a backfill of the old day, whose files hold only the erased relationship, brings nothing back
    assert run_day(storage, D).success
    erased_relationship_is_out()


def test_a_customer_who_returned_before_the_old_relationship_is_erased_keeps_the_identity_code(tmp_path):
    """Retention erases a former customer years after the relationship ended; by then the person may
    be a customer again under another id. The erasure takes the old customer id and leaves the
    identity code (and the register rows keyed by it) to the relationship that goes on."""
    storage = storage_for(tmp_path)
    landing(storage)
    # RETURNED is listed beside GONE, with the same identity code
    write(
        storage.landing,
        "customers",
        "20261124",
        [
            person(KEEP, make_hetu("150380", "-", 201), first_name="Pysyvä", email="keep@example.fi"),
            person(GONE, GONE_HETU, first_name="Poistuva", email="gone@example.fi", street_address="Poistotie 9"),
            person(RETURNED, GONE_HETU, first_name="Palaava", email="back@example.fi", customer_since="2025-06-01"),
        ],
    )
    write(
        storage.landing,
        "consents",
        "20261125",
        [f"E9;{RETURNED};marketing;email;granted;2026-11-20T10:00:00Z;web_form;v3;f-{RETURNED}"],
    )
    assert run_day(storage, D).success
    erase(storage, GONE, ERASED_ON, RETENTION_PERIODS)
    erased = suppression.load(storage.warehouse_dir)
    assert suppression.pseudonym(GONE) in erased.subjects
    assert suppression.pseudonym(GONE_HETU) not in erased.subjects
    # the register row is the person's, who is still a customer: kept
    assert warehouse_rows(storage, f"select count(*) from population_valid where personal_id = '{GONE_HETU}'") == [(1,)]
    assert run_day(storage, D + dt.timedelta(days=1)).success
    assert warehouse_rows(storage, "select customer_id from customers order by 1") == [(KEEP,), (RETURNED,)]
    assert RETURNED in published_ids(storage, "audience_email")
    assert GONE not in published_ids(storage, "audience_email")
    assert "Poistotie 9" not in everything_text(storage)
