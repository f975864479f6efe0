"""Every quarantine rule fires on a crafted file, at the physical line of the record."""

import datetime as dt

import pytest

from assets.storage.ingestion import read_source
from assets.storage.metering import ingest_delivery
from assets.storage.zones import LupaStorage
from data_contracts import sources
from tests.landing_builder import COMPANY, GSRN1, GSRN2, make_hetu, metering_row, person, write

DAY = dt.date(2026, 11, 23)
DELIVERY = "20261124"


@pytest.fixture
def storage(tmp_path):
    return LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))


def quarantined(outcome) -> dict[int, str]:
    return dict(outcome.quarantine.select("line", "rule").rows())


def test_customer_rules_fire_with_their_line_numbers(storage):
    rows = [
        person("C0000001", make_hetu("131052", "-", 308)),  # line 2: valid
        person("C0000002", "131052-308U"),  # 3: wrong check character
        person("C0000003", make_hetu("131052", "-", 950)),  # 4: temporary (test) code
        person("C0000004", make_hetu("131052", "-", 309)).replace("person", "personn", 1),  # 5: unknown code
        "C0000005;person;only;three",  # 6: malformed record
        person("C0000006", make_hetu("010101", "A", 123)),  # 7: valid
        person("C0000006", make_hetu("020202", "A", 124)),  # 8: duplicate of 7
        person("C0000008", make_hetu("030303", "A", 125), postal_code="0010"),  # 9: postal code
        person("C0000009", make_hetu("040404", "A", 126), customer_since="2020-02-30"),  # 10: bad date
        person("C00000010", make_hetu("050505", "A", 127)),  # 11: id format
        person("C0000011", ""),  # 12: person without personal_id
        COMPANY.replace("2077474-0", "2077474-1").replace("C0000003", "C0000013"),  # 13: bad Y-tunnus
        person("C0000012", make_hetu("060606", "A", 128), language="de", ended_on="2019-01-01"),  # 14: two rules
    ]
    write(storage.landing, "customers", DELIVERY, rows)
    outcome = read_source(storage, sources.customers, DAY)
    assert quarantined(outcome) == {
        3: "personal_id_checksum",
        4: "personal_id_test_code",
        5: "customer_type_unknown_code",
        6: "malformed_record",
        7: "duplicate_customer_id",
        8: "duplicate_customer_id",
        9: "postal_code_format",
        10: "customer_since_unparsable",
        11: "customer_id_format",
        12: "person_without_personal_id",
        13: "business_id_invalid",
        14: "ended_before_start,language_unknown_code",
    }
    assert outcome.rows_read == 13 == outcome.rows_valid + outcome.rows_quarantined
    assert outcome.valid["customer_id"].to_list() == ["C0000001"]


def test_quarantine_details_never_quote_personal_values(storage):
    bad_hetu = "131052-308U"
    write(storage.landing, "customers", DELIVERY, [person("C0000002", bad_hetu, email="x@y.fi")])
    outcome = read_source(storage, sources.customers, DAY)
    detail = outcome.quarantine["detail"][0]
    assert bad_hetu not in detail and "x@y.fi" not in detail
    assert outcome.quarantine["raw"][0].startswith("C0000002;person;131052-308U")  # raw stays, restricted


def test_a_quoted_field_with_an_embedded_newline_keeps_line_numbers_physical(storage):
    rows = [
        person("C0000001", make_hetu("131052", "-", 308), street_address='"Katu 1\nrappu B"'),  # lines 2–3
        person("C0000002", "131052-308U"),  # line 4
    ]
    write(storage.landing, "customers", DELIVERY, rows)
    outcome = read_source(storage, sources.customers, DAY)
    assert quarantined(outcome) == {4: "personal_id_checksum"}
    assert outcome.valid["line"].to_list() == [2]


def test_contract_rules_including_orphans(storage):
    rows = [
        f"K1;C0000001;{GSRN1};SPOT;open_ended;2024-01-01;;apartment;district",  # 2 valid
        f"K2;C0000099;{GSRN2};SPOT;open_ended;2024-01-01;;apartment;district",  # 3 orphan
        "K3;C0000001;643550123456789012;SPOT;open_ended;2024-01-01;;apartment;",  # 4 bad GSRN check digit
        f"K4;C0000001;{GSRN1};FIXED24;fixed_term;2024-01-01;;detached_house;electric",  # 5 fixed term without end
        f"K5;C0000001;{GSRN1};FIXED24;fixed_term;2024-01-01;2023-01-01;castle;solar",  # 6 three rules
    ]
    write(storage.landing, "contracts", DELIVERY, rows)
    outcome = read_source(storage, sources.contracts, DAY, {"known_customer_ids": ["C0000001"]})
    assert quarantined(outcome) == {
        3: "unknown_customer",
        4: "gsrn_check_digit",
        5: "fixed_term_without_end",
        6: "end_before_start,heating_unknown_code,site_type_unknown_code",
    }


def test_billing_consents_population_asml_contacts_rules(storage):
    write(
        storage.landing,
        "billing",
        DELIVERY,
        [
            "I1;C0000001;K1;2026-01-05;2026-01-19;312,48;;0;0",
            "I2;C0000001;K1;2026-01-05;2026-01-01;12.50;;-1;2",
        ],
    )
    write(
        storage.landing,
        "consents",
        DELIVERY,
        [
            "E1;C0000001;marketing;email;granted;2026-03-01T10:12:00+02:00;web_form;v3;form-1",
            "E2;C0000001;spam;email;granted;2026-03-01T10:12:00;web_form;v3;form-2",
            "E3;C0000001;profiling;email;withdrawn;2026-03-01T10:12:00Z;web_form;v3;form-3",
        ],
    )
    write(
        storage.landing,
        "population",
        DELIVERY,
        [
            f"{make_hetu('131052', '-', 308)};;0;1;Katu 1;00100;Helsinki;2026-11-20",
            "131052-308T;;2;0;;;;2026-11-20",
        ],
    )
    write(
        storage.landing,
        "asml",
        DELIVERY,
        [
            "mail;Kaarina;;Vuorikatu 3;00100;;2023-05-02;",
            "phone;;;;;0401234567;2025-02-10;2024-02-10",
        ],
    )
    write(storage.landing, "contacts", DELIVERY, ["C0000001;fax;CAMP1;marketing;2026-10-14T09:00:00+03:00"])
    rules = {
        c.source: quarantined(read_source(storage, c, DAY))
        for c in sources.SMALL_SOURCES.values()
        if c.source != "customers" and c.source != "contracts"
    }
    assert rules["billing"] == {
        3: "amount_eur_unparsable,due_before_issue,in_collection_unknown_code,reminders_out_of_range"
    }  # -1 reminders: a number, below 0
    assert rules["consents"] == {3: "occurred_at_unparsable,purpose_unknown_code", 4: "profiling_with_channel"}
    assert rules["population"] == {2: "safety_ban_with_address", 3: "marketing_ban_unknown_code"}
    assert rules["asml"] == {2: "mail_entry_incomplete", 3: "expires_before_registered,phone_format"}
    assert rules["contacts"] == {2: "channel_unknown_code"}


def test_metering_rules_fire_with_their_line_numbers(storage):
    rows = [
        metering_row(GSRN1, "2026-11-22T22:00:00Z"),  # 2 valid
        metering_row(GSRN1, "2026-11-22T22:00:00Z", "0,600"),  # 3 duplicate interval
        metering_row(GSRN1, "2026-11-22T23:00:00Z", "-0,100"),  # 4 negative
        metering_row(GSRN1, "2026-11-23T00:00:00Z", "", "OK"),  # 5 quantity missing
        metering_row(GSRN1, "2026-11-23T01:00:00Z", "0,1", "BAD"),  # 6 unknown quality
        metering_row("643550123456789012", "2026-11-23T02:00:00Z"),  # 7 GSRN check digit
        metering_row(GSRN1, "2026-11-23T03:30:00Z"),  # 8 not on the hour
        metering_row(GSRN1, "2026-11-23 04:00"),  # 9 timestamp
        "643550123456789011;8716867000030;PT1H;kWh",  # 10 malformed
        metering_row(GSRN2, "2026-11-22T22:15:00Z", "", "MISSING", "PT15M"),  # 11 valid MISSING
        metering_row(GSRN2, "2026-11-22T22:30:00Z", "1,5", "MISSING", "PT15M"),  # 12 quantity with MISSING
    ]
    write(storage.landing, "metering", DELIVERY, rows)
    outcome = ingest_delivery(storage, DAY)
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_quarantined) == (11, 2, 9)
    import polars as pl

    q = pl.read_parquet(storage.metering_dir / "quarantine" / f"delivery={DELIVERY}.parquet")
    assert dict(q.select("line", "rule").rows()) == {
        3: "duplicate_interval",
        4: "Quantity_out_of_range",
        5: "quantity_missing",
        6: "Quality_unknown_code",
        7: "gsrn_check_digit",
        8: "start_not_on_interval",
        9: "Start Time_format,Start Time_unparsable",
        10: "malformed_record",
        12: "quantity_with_missing",
    }
