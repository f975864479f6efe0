"""Two review defects, end to end through `daily_job` on a hand-made landing zone.

1. A consent that occurs after D counted on D: a grant dated 2027-06-01 in D+1's delivery put the
   customer into D's email audience, and a grant made early on D+1 overrode a withdrawal made on D.
2. A lower-case identity code lost the population register: a customer VTJ records as deceased,
   typed in lower case in the CRM, was published in the letter and phone audiences.
"""

import datetime as dt

import pytest

from assets.storage.mart import read_published
from assets.storage.zones import query
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import make_hetu, person, write

D = dt.date(2026, 11, 23)
DELIVERY = "20261124"  # D+1: the morning delivery the run for D reads


def hetu(n: int) -> str:
    return make_hetu("150380", "-", 110 + n)  # check characters A…K: their case shows


HETU_2000 = make_hetu("010105", "A", 321)  # an adult born in 2005: century sign `A`


def customer(n: int, personal_id: str | None = None) -> str:
    return person(
        f"C{n:07d}",
        personal_id or hetu(n),
        first_name=f"Etu{n}",
        last_name=f"Suku{n}",
        email=f"c{n}@example.fi",
        phone=f"040 {n:03d} 4567",
        street_address=f"Katu {n}",
    )


def consent(event: str, cid: str, action: str, when: str) -> str:
    return f"{event};{cid};marketing;email;{action};{when};web_form;v3;form-{event}"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    storage = storage_for(tmp_path_factory.mktemp("consent_day_identity"))
    write(
        storage.landing,
        "customers",
        DELIVERY,
        [
            *(customer(n) for n in (1, 2, 3, 4, 8)),
            customer(5, hetu(5).lower()),  # VTJ: deceased (upper case there)
            customer(6, hetu(6)),  # VTJ: marketing ban, typed in lower case there
            customer(7, HETU_2000.lower()),  # lower-case century sign; VTJ: deceased
        ],
    )
    write(
        storage.landing,
        "consents",
        "20260602",
        [consent(f"G{n}", f"C{n:07d}", "granted", "2026-06-01T10:00:00+03:00") for n in (1, 4)],
    )
    write(
        storage.landing,
        "consents",
        DELIVERY,
        [
            consent("W1", "C0000001", "withdrawn", "2026-11-23T20:00:00+02:00"),  # on D
            consent("L1", "C0000001", "granted", "2026-11-24T05:00:00+02:00"),  # early on D+1: valid, not on D
            consent("F2", "C0000002", "granted", "2027-06-01T10:00:00+03:00"),  # impossible: quarantined
            consent("L3", "C0000003", "granted", "2026-11-24T00:30:00+02:00"),  # D+1, after midnight
        ],
    )
    write(
        storage.landing,
        "population",
        "20261110",
        [
            f"{hetu(5)};2026-11-01;0;0;;;;2026-11-05",
            f"{hetu(6).lower()};;1;0;;;;2026-11-05",
            f'" {HETU_2000} ";2026-10-01;0;0;;;;2026-11-05',
        ],
    )
    write(storage.landing, "asml", DELIVERY, ["phone;;;;;+358409994567;2024-01-01;"])
    write(
        storage.landing,
        "contacts",
        "20261120",
        ["C0000008;letter;MAG;customer_communication;2026-11-02T08:00:00+02:00"],
    )
    write(
        storage.landing,
        "contracts",
        DELIVERY,
        ["K08;C0000008;643550123456789011;FIXED24;fixed_term;2024-12-24;2026-12-23;apartment;district"],
    )
    assert run_day(storage, D).success
    return storage


def members(storage, channel: str) -> set[str]:
    return set(read_published(storage.root, f"audience_{channel}")["customer_id"].to_list())


def reasons(storage) -> set[tuple[str, str, str]]:
    frame = read_published(storage.root, "audience_exclusions")
    return {tuple(r) for r in frame.select("customer_id", "channel", "reason").rows()}


def test_a_consent_that_occurs_after_d_does_not_count_on_d(published):
    assert members(published, "email") == {"C0000004"}  # the control: a grant made long before D
    found = reasons(published)
    assert ("C0000001", "email", "consent_withdrawn") in found  # D's withdrawal stands on D
    assert ("C0000002", "email", "consent_missing") in found  # the 2027 grant is quarantined
    assert ("C0000003", "email", "consent_missing") in found  # a grant of D+1 counts from D+1
    with published.warehouse(read_only=True) as conn:
        quarantine = query(conn, "select source, line, rule from quarantine where source = 'consents'")
        state = query(conn, "select customer_id, state, event_id from consent_state where channel = 'email'")
    assert quarantine.rows() == [("consents", 4, "occurred_in_future")]
    assert sorted(state.rows()) == [("C0000001", "withdrawn", "W1"), ("C0000004", "granted", "G4")]
    # a quarantined future grant restricts nothing, so the mart was published for D
    assert read_published(published.root, "audience_email")["as_of"].unique().to_list() == [D]


def test_every_spelling_of_an_identity_code_meets_the_population_register(published):
    for channel in ("letter", "phone"):
        assert {"C0000005", "C0000007"}.isdisjoint(members(published, channel)), channel  # deceased
        assert "C0000008" in members(published, channel)  # the control
    assert "C0000006" not in members(published, "letter")  # the VTJ ban is on addressed direct mail
    found = reasons(published)
    assert {("C0000005", c, "deceased") for c in ("letter", "phone")} <= found
    assert {("C0000007", c, "deceased") for c in ("letter", "phone")} <= found
    assert ("C0000006", "letter", "vtj_marketing_ban") in found
    with published.warehouse(read_only=True) as conn:
        customers = query(conn, "select customer_id, personal_id, deceased_on, marketing_ban from customers")
    rows = {c: (p, d, b) for c, p, d, b in customers.rows()}
    assert rows["C0000005"] == (hetu(5), dt.date(2026, 11, 1), False)
    assert rows["C0000006"] == (hetu(6), None, True)
    assert rows["C0000007"] == (HETU_2000, dt.date(2026, 10, 1), False)
