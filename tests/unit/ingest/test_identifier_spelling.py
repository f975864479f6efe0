"""Every identifier is stored in one canonical spelling, so every join and pseudonym sees one string.

The bug: `010190-123a` passes the henkilötunnus validator (python-stdnum upper-cases before it
checks), but the population register join compared the raw strings, so a customer VTJ records as
deceased, typed in lower case in the CRM, was published in the letter and phone audiences.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from assets.core import tables as core_tables
from assets.storage import suppression
from assets.storage.ingestion import read_source
from assets.storage.zones import LupaStorage
from data_contracts import sources
from data_contracts.identifiers import business_id_problem, personal_id_canonical, personal_id_problem
from tests.landing_builder import make_hetu, person, write

DAY = dt.date(2026, 11, 23)
DELIVERY = "20261124"
HETU = make_hetu("010190", "-", 123)  # 010190-123M
HETU_2000 = make_hetu("010105", "A", 456)

#: every spelling of a henkilötunnus the validator accepts, and the one it is stored as (the reader
#: strips the space around a field, quoted or not)
PERSONAL_ID_SPELLINGS = [
    pytest.param(HETU.lower(), HETU, id="lower-case check character"),
    pytest.param(f'" {HETU.lower()} "', HETU, id="quoted with spaces"),
    pytest.param(HETU_2000.lower(), HETU_2000, id="lower-case century sign"),
    pytest.param(HETU_2000[:6] + "b" + HETU_2000[7:], HETU_2000[:6] + "B" + HETU_2000[7:], id="new century sign"),
    pytest.param(HETU, HETU, id="canonical"),
]


@pytest.fixture
def storage(tmp_path):
    return LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))


def test_the_validators_accept_the_spellings_this_test_uses():
    for spelling in (HETU.lower(), HETU_2000.lower(), f"{HETU_2000[:6]}b{HETU_2000[7:]}"):
        assert personal_id_problem(spelling) is None
    for spelling in ("2077474-0", "20774740", "2077474 0", "FI20774740", "fi2077474-0"):
        assert business_id_problem(spelling) is None


def test_the_century_sign_is_kept_in_upper_case_not_mapped():
    """`-` and `Y` are two codes (the 2023 signs were added for new individual numbers), not two spellings."""
    assert personal_id_canonical(HETU[:6] + "y" + HETU[7:]) == HETU[:6] + "Y" + HETU[7:]
    assert personal_id_canonical("not-a-code") == "not-a-code"


@pytest.mark.parametrize("spelling, canonical", PERSONAL_ID_SPELLINGS)
def test_a_personal_id_is_stored_canonical_in_customers_and_population(storage, spelling, canonical):
    write(storage.landing, "customers", DELIVERY, [person("C0000001", spelling)])
    write(storage.landing, "population", DELIVERY, [f"{spelling};2026-11-01;0;0;;;;2026-11-05"])
    customers = read_source(storage, sources.customers, DAY).valid
    population = read_source(storage, sources.population, DAY).valid
    assert customers["personal_id"].to_list() == [canonical]
    assert population["personal_id"].to_list() == [canonical]


@pytest.mark.parametrize("crm", [HETU.lower(), f'" {HETU.lower()} "', HETU])
@pytest.mark.parametrize("vtj", [HETU.lower(), f'" {HETU.lower()} "', HETU])
def test_the_population_register_join_matches_every_spelling(storage, crm, vtj):
    write(storage.landing, "customers", DELIVERY, [person("C0000001", crm)])
    write(storage.landing, "population", DELIVERY, [f"{vtj};2026-11-01;1;0;;;;2026-11-05"])
    register = core_tables.population_register(read_source(storage, sources.population, DAY).valid)
    merged = core_tables.customers(read_source(storage, sources.customers, DAY).valid, register)
    assert merged.select("personal_id", "deceased_on", "marketing_ban").rows() == [(HETU, dt.date(2026, 11, 1), True)]


def test_two_spellings_of_one_code_are_one_person_in_the_population_register(storage):
    write(
        storage.landing,
        "population",
        DELIVERY,
        [f"{HETU.lower()};2026-11-01;0;0;;;;2026-11-05", f"{HETU};;1;0;;;;2026-11-06"],
    )
    register = core_tables.population_register(read_source(storage, sources.population, DAY).valid)
    assert register.select("personal_id", "deceased_on", "marketing_ban").rows() == [(HETU, dt.date(2026, 11, 1), True)]


@pytest.mark.parametrize("spelling", ["2077474-0", "20774740", "2077474 0", "FI20774740", "fi2077474-0"])
def test_a_business_id_is_stored_as_seven_digits_hyphen_check_digit(storage, spelling):
    company = (
        f"C0000003;company;;{spelling};;;Esimerkki Oy;fi;info@example.fi;09 555 0100;Katu 1;00510;Helsinki;2019-01-01;"
    )
    write(storage.landing, "customers", DELIVERY, [company])
    assert read_source(storage, sources.customers, DAY).valid["business_id"].to_list() == ["2077474-0"]


def test_phone_and_email_are_stored_normalised_and_an_invalid_one_as_typed(storage):
    rows = [
        person("C0000001", HETU, phone="040 123 4567", email="Aino.Virtanen@EXAMPLE.fi"),
        person("C0000002", HETU_2000, phone="12", email="not-an-address@"),
    ]
    write(storage.landing, "customers", DELIVERY, rows)
    valid = read_source(storage, sources.customers, DAY).valid
    assert valid.select("phone", "email").rows() == [
        ("+358401234567", "Aino.Virtanen@example.fi"),
        ("12", "not-an-address@"),
    ]
    # the core table says the same as before: the invalid ones are unusable
    no_population = core_tables.population_register(read_source(storage, sources.population, DAY).valid)
    merged = core_tables.customers(valid, no_population)
    assert merged.select("phone_status", "email_status").rows() == [("valid", "valid"), ("invalid", "invalid")]


@pytest.fixture
def erased_upper_case(storage, monkeypatch):
    """An erasure recorded from the canonical (upper-case) code, as erasure reads it from the tables."""
    monkeypatch.setenv("LUPA_PSEUDONYM_KEY", "test-key-" + "0" * 32)
    suppression.add(storage.warehouse_dir, ["C0000009", HETU], pl.DataFrame(schema=suppression.POINTS_SCHEMA), DAY)
    return storage


@pytest.mark.parametrize("spelling", [HETU.lower(), HETU, f" {HETU.lower()} "])
def test_an_erased_code_is_suppressed_in_every_spelling_in_valid_and_quarantined_rows(erased_upper_case, spelling):
    storage = erased_upper_case
    write(
        storage.landing,
        "customers",
        DELIVERY,
        [
            person("C0000001", spelling),  # valid: a new customer id, the erased code
            person("C0000002", spelling, language="de"),  # quarantined, the code in `raw` as delivered
            person("C0000003", HETU_2000),  # someone else
        ],
    )
    write(storage.landing, "population", DELIVERY, [f"{spelling};2026-11-01;0;0;;;;2026-11-05"])
    customers = read_source(storage, sources.customers, DAY)
    assert customers.valid["customer_id"].to_list() == ["C0000003"]
    assert customers.quarantine.is_empty()
    assert customers.rows_suppressed == 2
    assert read_source(storage, sources.population, DAY).valid.is_empty()


def test_raw_field_pseudonyms_match_the_canonical_code(monkeypatch):
    monkeypatch.setenv("LUPA_PSEUDONYM_KEY", "test-key-" + "0" * 32)
    raw = f"C0000002;person;{HETU.lower()};;Aino"
    assert suppression.pseudonym(HETU) in suppression.raw_field_pseudonyms(raw)
    assert suppression.pseudonym("C0000002") in suppression.raw_field_pseudonyms(raw)
