"""Every quarantine rule every source declares fires on a crafted file, at the record's physical line.

The rule codes are enumerated from the contracts themselves (field rules generated from the field
declarations, the codes the identifier validators can return, and each contract's explicit rules),
so a rule added without a crafted case here fails `test_every_declared_rule_has_a_crafted_case`.

Each case is one file: a header, valid rows (one of them spanning two physical lines where the
source has a free-text field, so that `line` is physical, not a record count), then a broken
record derived from a valid one by a declarative mutation. It is read through the real code path
(`read_source` for the small sources, `ingest_delivery` for metering).
"""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
import pytest

from assets.storage.ingestion import read_source
from assets.storage.metering import ingest_delivery, quarantine_root
from assets.storage.zones import LupaStorage
from data_contracts.contract import SourceContract
from data_contracts.sources import ALL_SOURCES
from tests.landing_builder import COMPANY, GSRN1, GSRN2, PERSON, PERSON2, make_hetu, person, write

DAY = dt.date(2026, 11, 23)
DELIVERY = "20261124"  # the file a run for DAY reads (metering: exactly this one)

#: codes produced by the file reader rather than declared by a contract (every source has them)
READER_RULES = ("malformed_record",)


# ---- enumerating what the contracts declare ----------------------------------------------------
def _returned_codes(node: ast.AST | None) -> set[str]:
    """String constants a `return` can yield (through conditional expressions), nothing else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _returned_codes(node.body) | _returned_codes(node.orelse)
    return set()


def validator_codes(validator: Callable[[str], str | None]) -> set[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(validator)))
    return {code for node in ast.walk(tree) if isinstance(node, ast.Return) for code in _returned_codes(node.value)}


def declared_codes(contract: SourceContract) -> set[str]:
    field_rules = {code for code, _, _ in contract.field_rules()}
    validators = {code for f in contract.fields if f.validator is not None for code in validator_codes(f.validator)}
    return field_rules | validators | {r.code for r in contract.rules}


# ---- the crafted files -------------------------------------------------------------------------
class _First:
    """Mutation value: take the field's value from the first valid row (a duplicate key)."""

    def __repr__(self) -> str:
        return "FIRST"


FIRST = _First()
#: mutation: the record is cut after its third field (a reader-level rule)
TRUNCATED = {"__truncate__": 3}


def row(source: str, text: str) -> dict[str, str]:
    header = ALL_SOURCES[source].header
    values = text.split(";")
    assert len(values) == len(header), (source, text)
    return dict(zip(header, values, strict=True))


@dataclass(frozen=True)
class Base:
    """Valid rows before the broken record, and the valid record each mutation starts from."""

    valid: list[dict[str, str]]
    broken: dict[str, str]
    context: dict = field(default_factory=dict)


HETU = make_hetu("150385", "-", 234)
KNOWN_CUSTOMERS = {"known_customer_ids": ["C0000001", "C0000002", "C0000003"]}

BASES: dict[str, Base] = {
    "customers": Base(
        valid=[
            row("customers", PERSON),
            row("customers", PERSON2) | {"street_address": "Runebergsgatan 8\nB 21"},
            row("customers", COMPANY),
        ],
        broken=row("customers", person("C0000010", HETU)),
    ),
    "contracts": Base(
        valid=[
            row(
                "contracts",
                f"K7000001;C0000001;{GSRN1};FIXED24;fixed_term;2025-01-01;2026-12-31;detached_house;electric",
            ),
            row("contracts", f"K7000002;C0000002;{GSRN2};GREEN\nSPOT;open_ended;2024-02-15;;apartment;district"),
        ],
        broken=row("contracts", f"K7000003;C0000003;{GSRN1};SPOT;open_ended;2024-02-15;;row_house;"),
        context=KNOWN_CUSTOMERS,
    ),
    "billing": Base(
        valid=[
            row("billing", "I55000101;C0000001;K7000001;2026-01-05;2026-01-19;312,48;;0;0"),
            row("billing", "I55000102;C0000002;K7000002;2026-01-05;2026-01-19;-15,20;2026-01-10;0;0"),
        ],
        broken=row("billing", "I55000103;C0000001;K7000001;2026-01-05;2026-01-19;99,00;;1;0"),
    ),
    "consents": Base(
        valid=[
            row(
                "consents",
                "EV5500001;C0000001;marketing;email;granted;2026-03-01T10:12:00+02:00;web_form;v3;form-88231",
            ),
            row(
                "consents",
                "EV5500002;C0000002;profiling;;withdrawn;2026-03-01T16:40:05Z;customer_service;v3;"
                "call 2026-03-01\nrecording 0441",
            ),
        ],
        broken=row(
            "consents", "EV5500003;C0000001;marketing;sms;granted;2026-03-02T08:00:00+02:00;mobile_app;v3;app-771"
        ),
    ),
    "asml": Base(
        valid=[
            row("asml", "mail;Kaarina;Laaksonen;Vuorikatu 3\nA 7;00100;;2023-05-02;"),
            row("asml", "phone;;;;;+358451234567;2025-02-10;2028-02-10"),
        ],
        broken=row("asml", "mail;Matti;Meikäläinen;Kotikatu 5;33100;;2024-06-01;"),
    ),
    "population": Base(
        valid=[
            row("population", "131052-308T;;0;0;Porvoonkatu 12\nC 40;00510;Helsinki;2026-11-20"),
            row("population", "020701B233P;;1;0;;;;2026-11-19"),
        ],
        broken=row("population", f"{HETU};;0;0;;;;2026-11-21"),
    ),
    "prospects": Base(
        valid=[
            row(
                "prospects",
                "P000000001;competition;2026-10-01;2026-10-01;Kaarina;Laaksonen;;Vuorikatu 3\nA 7;00100;Helsinki;"
                "kaarina@example.fi;040 123 4567;fi;granted;;0;KILPA-2026-1;form:8812",
            ),
            row(
                "prospects",
                "P000000002;address_list;2026-11-01;2026-11-01;Emil;Lindqvist;;Runebergsg. 8;00100;"
                "Helsingfors;;;sv;;;0;;",
            ),
        ],
        broken=row(
            "prospects",
            f"P000000003;event;2026-10-05;2026-11-20;Matti;Meikäläinen;{HETU};Kotikatu 5;33100;Tampere;"
            "matti@example.fi;0401234567;fi;granted;withdrawn;0;MESSU-3;lead:77",
        ),
    ),
    "contacts": Base(
        valid=[
            row("contacts", "C0000001;email;CAMP2026Q4;marketing;2026-10-14T09:00:00+03:00"),
            row("contacts", "C0000001;letter;MAGAZINE-4-2026;customer_communication;2026-11-02T08:00:00+02:00"),
        ],
        broken=row("contacts", "C0000002;sms;CAMP2026Q4;marketing;2026-10-14T09:05:00+03:00"),
    ),
    "metering": Base(
        valid=[
            row("metering", f"{GSRN1};8716867000030;PT1H;kWh;BN01;2026-11-22T22:00:00Z;0,412;OK"),
            row("metering", f"{GSRN1};8716867000030;PT1H;kWh;BN01;2026-11-22T23:00:00Z;0,388;OK"),
        ],
        broken=row("metering", f"{GSRN1};8716867000030;PT1H;kWh;BN01;2026-11-23T00:00:00Z;0,390;ESTIMATED"),
    ),
}


def wrong_check_character(hetu: str) -> str:
    return hetu[:-1] + ("A" if hetu[-1] != "A" else "B")


AS_COMPANY = {
    "customer_type": "company",
    "personal_id": "",
    "business_id": "2077474-0",
    "first_name": "",
    "last_name": "",
    "company_name": "Esimerkki Oy",
}

#: source -> rule code -> the mutation of that source's valid `broken` record that breaks the rule
MUTATIONS: dict[str, dict[str, dict]] = {
    "customers": {
        "customer_id_missing": {"customer_id": ""},
        "customer_id_format": {"customer_id": "C00000010"},
        "customer_type_missing": {"customer_type": ""},
        "customer_type_unknown_code": {"customer_type": "personn"},
        "language_missing": {"language": ""},
        "language_unknown_code": {"language": "de"},
        "postal_code_format": {"postal_code": "0010"},
        "customer_since_missing": {"customer_since": ""},
        "customer_since_unparsable": {"customer_since": "2020-02-30"},
        "ended_on_unparsable": {"ended_on": "31.12.2025"},
        "personal_id_checksum": {"personal_id": wrong_check_character(HETU)},
        "personal_id_format": {"personal_id": "150385-23"},
        "personal_id_test_code": {"personal_id": make_hetu("150385", "-", 950)},
        "business_id_invalid": AS_COMPANY | {"business_id": "2077474-1"},
        "duplicate_customer_id": {"customer_id": FIRST},
        "person_without_personal_id": {"personal_id": ""},
        "company_without_business_id": AS_COMPANY | {"business_id": ""},
        "person_without_name": {"last_name": ""},
        "company_without_name": AS_COMPANY | {"company_name": ""},
        "ended_before_start": {"customer_since": "2020-01-01", "ended_on": "2019-12-31"},
    },
    "contracts": {
        "contract_id_missing": {"contract_id": ""},
        "customer_id_missing": {"customer_id": ""},
        "customer_id_format": {"customer_id": "1234567"},
        "metering_point_id_missing": {"metering_point_id": ""},
        "product_code_missing": {"product_code": ""},
        "contract_type_missing": {"contract_type": ""},
        "contract_type_unknown_code": {"contract_type": "fixed"},
        "start_date_missing": {"start_date": ""},
        "start_date_unparsable": {"start_date": "2024-02-30"},
        "end_date_unparsable": {"end_date": "31.12.2026"},
        "site_type_missing": {"site_type": ""},
        "site_type_unknown_code": {"site_type": "castle"},
        "heating_unknown_code": {"heating": "solar"},
        "gsrn_check_digit": {"metering_point_id": "643550123456789012"},
        "gsrn_format": {"metering_point_id": "64355012345678901"},
        "duplicate_contract_id": {"contract_id": FIRST},
        "fixed_term_without_end": {"contract_type": "fixed_term"},
        "end_before_start": {"end_date": "2024-01-31"},
        "unknown_customer": {"customer_id": "C0000099"},
    },
    "billing": {
        "invoice_id_missing": {"invoice_id": ""},
        "customer_id_missing": {"customer_id": ""},
        "customer_id_format": {"customer_id": "c0000001"},
        "contract_id_missing": {"contract_id": ""},
        "issued_on_missing": {"issued_on": ""},
        "issued_on_unparsable": {"issued_on": "5.1.2026"},
        "due_on_missing": {"due_on": ""},
        "due_on_unparsable": {"due_on": "2026-02-29"},
        "amount_eur_missing": {"amount_eur": ""},
        "amount_eur_unparsable": {"amount_eur": "99.00"},
        "paid_on_unparsable": {"paid_on": "yesterday"},
        "reminders_missing": {"reminders": ""},
        "reminders_unparsable": {"reminders": "one"},
        "reminders_out_of_range": {"reminders": "-1"},
        "in_collection_missing": {"in_collection": ""},
        "in_collection_unknown_code": {"in_collection": "2"},
        "duplicate_invoice_id": {"invoice_id": FIRST},
        "due_before_issue": {"due_on": "2026-01-04"},
    },
    "consents": {
        "event_id_missing": {"event_id": ""},
        "customer_id_missing": {"customer_id": ""},
        "customer_id_format": {"customer_id": "C000001"},
        "purpose_missing": {"purpose": ""},
        "purpose_unknown_code": {"purpose": "spam"},
        "channel_unknown_code": {"channel": "fax"},
        "action_missing": {"action": ""},
        "action_unknown_code": {"action": "revoked"},
        "occurred_at_missing": {"occurred_at": ""},
        "occurred_at_unparsable": {"occurred_at": "2026-03-02T08:00:00"},  # no offset
        "source_missing": {"source": ""},
        "source_unknown_code": {"source": "email"},
        "wording_version_missing": {"wording_version": ""},
        "evidence_ref_missing": {"evidence_ref": ""},
        "duplicate_event_id": {"event_id": FIRST},
        "profiling_with_channel": {"purpose": "profiling"},
        # the first instant after the delivery date (Helsinki midnight at the end of 2026-11-24)
        "occurred_in_future": {"occurred_at": "2026-11-25T00:00:00+02:00"},
    },
    "asml": {
        "register_missing": {"register": ""},
        "register_unknown_code": {"register": "email"},
        "postal_code_format": {"postal_code": "3310"},
        "phone_format": {"phone": "040 123 4567"},
        "registered_on_missing": {"registered_on": ""},
        "registered_on_unparsable": {"registered_on": "2024-13-01"},
        "expires_on_unparsable": {"expires_on": "never"},
        "mail_entry_incomplete": {"street_address": ""},
        "phone_entry_incomplete": {"register": "phone"},
        "expires_before_registered": {"expires_on": "2024-05-31"},
    },
    "population": {
        "personal_id_missing": {"personal_id": ""},
        "personal_id_checksum": {"personal_id": wrong_check_character(HETU)},
        "personal_id_format": {"personal_id": "150385?234X"},
        "personal_id_test_code": {"personal_id": make_hetu("150385", "-", 999)},
        "deceased_on_unparsable": {"deceased_on": "2026-11-31"},
        "marketing_ban_missing": {"marketing_ban": ""},
        "marketing_ban_unknown_code": {"marketing_ban": "2"},
        "safety_ban_missing": {"safety_ban": ""},
        "safety_ban_unknown_code": {"safety_ban": "yes"},
        "postal_code_format": {"postal_code": "5100"},
        "updated_on_missing": {"updated_on": ""},
        "updated_on_unparsable": {"updated_on": "20261121"},
        "safety_ban_with_address": {"safety_ban": "1", "city": "Turku"},
        "updated_in_future": {"updated_on": "2026-11-25"},  # the file is delivered on 2026-11-24
    },
    "prospects": {
        "prospect_id_missing": {"prospect_id": ""},
        "prospect_id_format": {"prospect_id": "P12345678"},
        "source_missing": {"source": ""},
        "source_unknown_code": {"source": "lottery"},
        "collected_on_missing": {"collected_on": ""},
        "collected_on_unparsable": {"collected_on": "2026-02-30"},
        "updated_on_missing": {"updated_on": ""},
        "updated_on_unparsable": {"updated_on": "1.11.2026"},
        "first_name_missing": {"first_name": ""},
        "last_name_missing": {"last_name": ""},
        "personal_id_checksum": {"personal_id": wrong_check_character(HETU)},
        "personal_id_format": {"personal_id": "150385?234X"},
        "personal_id_test_code": {"personal_id": make_hetu("150385", "-", 999)},
        "postal_code_format": {"postal_code": "3310"},
        "language_unknown_code": {"language": "de"},
        "email_consent_unknown_code": {"email_consent": "yes"},
        "sms_consent_unknown_code": {"sms_consent": "maybe"},
        "marketing_objection_missing": {"marketing_objection": ""},
        "marketing_objection_unknown_code": {"marketing_objection": "2"},
        "consent_on_purchased_list": {"source": "address_list"},
        "consent_without_evidence": {"evidence_ref": ""},
        "collected_after_delivery": {"collected_on": "2026-11-25", "updated_on": "2026-11-25"},
        "updated_before_collected": {"updated_on": "2026-09-30"},
        "address_incomplete": {"city": ""},
        "duplicate_prospect_state": {"prospect_id": FIRST, "updated_on": FIRST, "collected_on": FIRST},
    },
    "contacts": {
        "customer_id_missing": {"customer_id": ""},
        "customer_id_format": {"customer_id": "K0000002"},
        "channel_missing": {"channel": ""},
        "channel_unknown_code": {"channel": "fax"},
        "campaign_id_missing": {"campaign_id": ""},
        "kind_missing": {"kind": ""},
        "kind_unknown_code": {"kind": "service"},
        "sent_at_missing": {"sent_at": ""},
        "sent_at_unparsable": {"sent_at": "14.10.2026 09:05"},
    },
    "metering": {
        "MeteringPointGSRN_missing": {"MeteringPointGSRN": ""},
        "gsrn_format": {"MeteringPointGSRN": "6435501234567890"},
        "gsrn_check_digit": {"MeteringPointGSRN": "643550123456789012"},
        "Product Type_missing": {"Product Type": ""},
        "Product Type_unknown_code": {"Product Type": "8716867000031"},
        "Resolution_missing": {"Resolution": ""},
        "Resolution_unknown_code": {"Resolution": "PT30M"},
        "Unit Type_missing": {"Unit Type": ""},
        "Unit Type_unknown_code": {"Unit Type": "MWh"},
        "Reading Type_missing": {"Reading Type": ""},
        "Start Time_missing": {"Start Time": ""},
        "Start Time_unparsable": {"Start Time": "2026-11-23T25:00:00Z"},  # the right shape, no such hour
        "Start Time_format": {"Start Time": "2026-11-23T02:00:00+02:00"},  # a valid instant, not in UTC `Z`
        "Quantity_unparsable": {"Quantity": "0.390"},
        "Quantity_out_of_range": {"Quantity": "-0,390"},
        "Quality_missing": {"Quality": ""},
        "Quality_unknown_code": {"Quality": "BAD"},
        "quantity_missing": {"Quantity": ""},
        "quantity_with_missing": {"Quality": "MISSING"},
        "start_not_on_interval": {"Start Time": "2026-11-23T00:15:00Z"},  # on a quarter, not on the hour
        "duplicate_interval": {"Start Time": FIRST},
        # the delivery of 2026-11-24 ends at 2026-11-24T22:00Z (Helsinki midnight)
        "start_after_delivery": {"Start Time": "2026-11-24T22:00:00Z"},
    },
}
for _source in MUTATIONS:
    MUTATIONS[_source]["malformed_record"] = TRUNCATED

#: duplicate rules that quarantine every copy (the first valid row too); `duplicate_interval`
#: keeps the first reading and quarantines only the repeat
EVERY_COPY = {
    "duplicate_customer_id",
    "duplicate_contract_id",
    "duplicate_invoice_id",
    "duplicate_event_id",
    "duplicate_prospect_state",
}

#: other rules the crafted record breaks as a consequence of the one under test; any rule not
#: listed here fails the case, so a rule firing where it should not shows up too
ALSO = {
    ("contracts", "customer_id_format"): {"unknown_customer"},  # a malformed id is in no snapshot either
    ("metering", "Quantity_unparsable"): {"quantity_missing"},  # the typed Quantity is null, Quality is not MISSING
}

#: rules no record can break; each is a strict xfail, so a fix shows up as an XPASS
DEAD_RULES: dict[tuple[str, str], str] = {}


def render(values: dict[str, str] | list[str]) -> str:
    fields = values.values() if isinstance(values, dict) else values
    return ";".join(f'"{v}"' if any(c in v for c in ';"\n') else v for v in fields)


def mutate(base: Base, mutation: dict) -> str:
    if "__truncate__" in mutation:
        return render(list(base.broken.values())[: mutation["__truncate__"]])
    first = base.valid[0]
    return render(base.broken | {k: first[k] if v is FIRST else v for k, v in mutation.items()})


@dataclass
class Read:
    rows_read: int
    rows_valid: int
    rows_quarantined: int
    quarantine: dict[int, list[str]]  # line -> rule codes


def read(tmp_path, source: str, rows: list[str], context: dict) -> Read:
    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))
    write(storage.landing, source, DELIVERY, rows)
    if source == "metering":
        outcome = ingest_delivery(storage, DAY)
        frame = pl.read_parquet(quarantine_root(storage) / f"delivery={DELIVERY}.parquet")
        counts = (outcome.rows_read, outcome.rows_valid, outcome.rows_quarantined)
    else:
        outcome = read_source(storage, ALL_SOURCES[source], DAY, context)
        frame = outcome.quarantine
        assert len(outcome.files) == 1
        counts = (outcome.rows_read, outcome.rows_valid, outcome.rows_quarantined)
        assert (outcome.files[0].rows_read, outcome.files[0].rows_valid, outcome.files[0].rows_quarantined) == counts
        assert outcome.valid.height == outcome.rows_valid
    assert frame.height == counts[2]
    return Read(*counts, {line: rules.split(",") for line, rules in frame.select("line", "rule").rows()})


def physical_line_after(rows: list[str]) -> int:
    """The physical line of the record written after `rows` (the header is line 1)."""
    return 2 + sum(r.count("\n") + 1 for r in rows)


# ---- the tests ---------------------------------------------------------------------------------
def test_every_declared_rule_has_a_crafted_case():
    declared = {(s, code) for s, contract in ALL_SOURCES.items() for code in declared_codes(contract)}
    crafted = {(s, code) for s, codes in MUTATIONS.items() for code in codes}
    assert set(MUTATIONS) == set(ALL_SOURCES)
    assert sorted(declared - crafted) == [], "rules without a crafted case"
    reader = {(s, code) for s in ALL_SOURCES for code in READER_RULES}
    assert sorted(crafted - declared - reader) == [], "crafted cases for rules no contract declares"
    assert set(DEAD_RULES) <= declared


def test_the_validator_codes_are_enumerated_from_the_validators():
    from data_contracts.identifiers import business_id_problem, gsrn_problem, personal_id_problem

    assert validator_codes(personal_id_problem) == {
        "personal_id_checksum",
        "personal_id_format",
        "personal_id_test_code",
    }
    assert validator_codes(business_id_problem) == {"business_id_invalid"}
    assert validator_codes(gsrn_problem) == {"gsrn_format", "gsrn_check_digit"}


@pytest.mark.parametrize("source", sorted(BASES))
def test_the_unmutated_files_are_valid(tmp_path, source):
    """Control: without a mutation nothing is quarantined, so each case fires because of its mutation."""
    base = BASES[source]
    rows = [render(r) for r in base.valid] + [render(base.broken)]
    result = read(tmp_path, source, rows, base.context)
    assert result.quarantine == {}
    assert result.rows_read == result.rows_valid == len(rows)


CASES = [
    pytest.param(
        source,
        code,
        id=f"{source}:{code}",
        marks=[pytest.mark.xfail(strict=True, reason=DEAD_RULES[source, code])] if (source, code) in DEAD_RULES else [],
    )
    for source, codes in MUTATIONS.items()
    for code in codes
]


@pytest.mark.parametrize("source, code", CASES)
def test_rule_fires_on_a_crafted_file_at_its_physical_line(tmp_path, source, code):
    base = BASES[source]
    valid = [render(r) for r in base.valid]
    line = physical_line_after(valid)
    result = read(tmp_path, source, [*valid, mutate(base, MUTATIONS[source][code])], base.context)

    expected_lines = {2, line} if code in EVERY_COPY else {line}
    assert set(result.quarantine) == expected_lines, result.quarantine
    for quarantined_line in expected_lines:
        assert code in result.quarantine[quarantined_line], result.quarantine
        assert set(result.quarantine[quarantined_line]) == {code} | ALSO.get((source, code), set())
    # conservation: every record read is either valid or quarantined, once
    assert result.rows_read == len(valid) + 1
    assert result.rows_read == result.rows_valid + result.rows_quarantined
    assert result.rows_quarantined == len(expected_lines)
