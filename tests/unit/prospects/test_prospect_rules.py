"""Every prospect rule, on a crafted landing zone: files written as a source would deliver them, read
through the real ingestion (`read_source`), the real core builders and the real audience build, and
the published rows and reasons checked (marketing-policy.md, "Prospects"). No Dagster run: the
whole path through Dagster and the mart is `tests/integration/audiences/test_prospects_end_to_end.py`.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from assets.core import tables as core_tables
from assets.storage.ingestion import read_source
from assets.storage.zones import LupaStorage
from data_contracts import sources
from data_contracts.normalise import asml_match_key_expr
from data_contracts.policy import load_policy
from models.prospect_audiences import ProspectInputs, build_prospect_audiences
from models.prospect_recheck import prospect_violations
from tests.landing_builder import make_hetu, person, write

DAY = dt.date(2026, 11, 23)
DELIVERY = "20261124"
POLICY = load_policy()

ADULT = make_hetu("150385", "-", 234)
MINOR = make_hetu("010110", "A", 222)  # born 2010: 16 on DAY
CUSTOMER_HETU = make_hetu("020290", "-", 345)


def prospect(pid: str, **overrides: str) -> str:
    fields = {
        "prospect_id": pid,
        "source": "competition",
        "collected_on": "2026-10-01",
        "updated_on": "2026-10-01",
        "first_name": "Liisa",
        "last_name": "Korhonen",
        "personal_id": "",
        "street_address": "Koulukatu 4",
        "postal_code": "33200",
        "city": "Tampere",
        "email": f"{pid.lower()}@example.fi",
        "phone": "040 765 4321",
        "language": "fi",
        "email_consent": "granted",
        "sms_consent": "granted",
        "marketing_objection": "0",
        "wording_version": "KILPA-2026-1",
        "evidence_ref": f"form:{pid}",
    }
    fields.update(overrides)
    assert list(fields) == sources.prospects.header
    return ";".join(fields.values())


def build(tmp_path, prospect_rows, *, customers=(), asml=(), population=(), contacts=(), extra=()):
    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))
    write(storage.landing, "prospects", DELIVERY, list(prospect_rows))
    for day, rows in extra:
        write(storage.landing, "prospects", day, rows)
    write(storage.landing, "customers", DELIVERY, list(customers))
    write(storage.landing, "asml", DELIVERY, list(asml))
    write(storage.landing, "population", DELIVERY, list(population))
    write(storage.landing, "contacts", DELIVERY, list(contacts))
    read = {
        s: read_source(storage, sources.SMALL_SOURCES[s], DAY)
        for s in ("prospects", "customers", "asml", "population", "contacts")
    }
    register = core_tables.population_register(read["population"].valid)
    asml_valid = read["asml"].valid
    asml_register = asml_valid.select(
        "register",
        pl.when(pl.col("register") == "mail")
        .then(asml_match_key_expr("first_name", "last_name", "street_address", "postal_code"))
        .alias("match_key"),
        pl.when(pl.col("register") == "phone").then(pl.col("phone")).alias("phone_e164"),
        "registered_on",
        "expires_on",
    )
    inputs = ProspectInputs(
        prospects=core_tables.prospects(read["prospects"].valid, register),
        customers=core_tables.customers(read["customers"].valid, register),
        asml_register=asml_register,
        contact_history=read["contacts"].valid.select("customer_id", "channel", "campaign_id", "kind", "sent_at"),
        asml_date=DAY,
        population_date=DAY,
    )
    result = build_prospect_audiences(inputs, POLICY, DAY)
    violations = prospect_violations(
        result.audiences,
        result.exclusions,
        inputs.prospects,
        inputs.customers,
        inputs.asml_register,
        inputs.contact_history,
        POLICY,
        DAY,
    )
    assert violations.is_empty(), violations
    return result, read


def members(result, channel: str) -> set[str]:
    return set(result.audience(channel)["prospect_id"])


def reasons(result, pid: str) -> dict[str, set[str]]:
    rows = result.exclusions.filter(pl.col("prospect_id") == pid)
    out: dict[str, set[str]] = {}
    for channel, reason in rows.select("channel", "reason").rows():
        out.setdefault(channel, set()).add(reason)
    return out


def test_a_consenting_lead_is_in_every_channel_with_its_evidence(tmp_path):
    result, _ = build(tmp_path, [prospect("P000000001")])
    assert all(members(result, ch) == {"P000000001"} for ch in ("email", "sms", "letter", "phone"))
    email = result.audience("email").row(0, named=True)
    assert email["rule"] == "prospect_consent:email_consent" and email["legal_basis"] == "consent"
    assert (email["consent_source"], email["consent_collected_on"]) == ("competition", dt.date(2026, 10, 1))
    assert (email["consent_wording_version"], email["consent_evidence_ref"]) == ("KILPA-2026-1", "form:P000000001")
    assert (email["asml_checked_on"], email["vtj_checked_on"]) == (DAY, DAY)
    letter = result.audience("letter").row(0, named=True)
    assert letter["legal_basis"] == "opt_out" and letter["consent_evidence_ref"] is None
    assert "segment_id" not in result.audience("email").columns  # prospects are never profiled


def test_email_and_sms_need_the_prospects_own_granted_consent(tmp_path):
    result, _ = build(
        tmp_path,
        [
            prospect("P000000001", email_consent="", sms_consent="", wording_version="", evidence_ref=""),
            prospect("P000000002", email_consent="withdrawn", sms_consent="granted"),
            prospect(
                "P000000003",
                source="address_list",
                email_consent="",
                sms_consent="",
                wording_version="",
                evidence_ref="",
            ),
        ],
    )
    assert reasons(result, "P000000001") == {"email": {"consent_missing"}, "sms": {"consent_missing"}}
    assert reasons(result, "P000000002") == {"email": {"consent_withdrawn"}}
    assert members(result, "sms") == {"P000000002"}
    # a bought list: letter and phone on the opt-out basis, never email or sms
    assert "P000000003" in members(result, "letter") and "P000000003" in members(result, "phone")
    assert reasons(result, "P000000003") == {"email": {"consent_missing"}, "sms": {"consent_missing"}}


def test_a_purchased_list_granting_consent_is_quarantined_and_reaches_no_audience(tmp_path):
    result, read = build(tmp_path, [prospect("P000000001", source="address_list")])
    assert read["prospects"].quarantine["rule"].to_list() == ["consent_on_purchased_list"]
    assert result.exclusions.is_empty() and all(members(result, ch) == set() for ch in ("email", "letter"))


def test_an_objection_excludes_every_channel(tmp_path):
    result, _ = build(tmp_path, [prospect("P000000001", marketing_objection="1")])
    assert reasons(result, "P000000001") == {ch: {"objected"} for ch in ("email", "sms", "letter", "phone")}


def test_the_latest_updated_on_wins_a_later_withdrawal_arrives_as_a_new_row(tmp_path):
    first = prospect("P000000001")
    later = prospect("P000000001", updated_on="2026-11-20", email_consent="withdrawn")
    result, _ = build(tmp_path, [later], extra=[("20261020", [first])])
    assert reasons(result, "P000000001") == {"email": {"consent_withdrawn"}}
    # and an older row delivered later does not override the newer state
    result, _ = build(tmp_path / "b", [first], extra=[("20261121", [later])])
    assert reasons(result, "P000000001") == {"email": {"consent_withdrawn"}}


@pytest.mark.parametrize(
    "overrides, how",
    [
        ({"personal_id": CUSTOMER_HETU, "email": "other@example.fi"}, "personal_id"),
        ({"email": "Aino@Example.FI"}, "email"),
        # the ASML-style key: case, accents and spacing ignored
        (
            {
                "first_name": "AINO",
                "last_name": "Virtánen",
                "street_address": "Mannerheimintie  1",
                "postal_code": "00100",
                "city": "Helsinki",
                "email": "x@example.fi",
            },
            "name_and_address",
        ),
    ],
)
def test_a_prospect_who_is_a_customer_is_excluded_with_is_customer(tmp_path, overrides, how):
    customer = person("C0000001", CUSTOMER_HETU)  # Aino Virtanen, aino@example.fi, Mannerheimintie 1 00100
    result, _ = build(tmp_path, [prospect("P000000001", **overrides), prospect("P000000002")], customers=[customer])
    assert reasons(result, "P000000001") == {ch: {"is_customer"} for ch in ("email", "sms", "letter", "phone")}
    assert set(result.exclusions.filter(pl.col("reason") == "is_customer")["detail"]) == {how}
    assert result.conversions["prospect_id"].to_list() == ["P000000001"]
    assert "P000000002" in members(result, "email")


def test_letter_and_phone_respect_asml_and_vtj(tmp_path):
    result, _ = build(
        tmp_path,
        [
            prospect("P000000001", first_name="Ääpö", street_address="Koulukatu 4"),
            prospect("P000000002", phone="+358401112233", email="p2@example.fi"),
            prospect("P000000003", personal_id=ADULT),
            prospect("P000000004", personal_id=make_hetu("150385", "-", 246)),
            prospect("P000000005", street_address="", postal_code="", city=""),
        ],
        asml=[
            "mail;aapo;KORHONEN;Koulukatu 4;33200;;2024-01-01;",
            "phone;;;;;+358401112233;2024-01-01;",
            "phone;;;;;+358407654321;2020-01-01;2025-12-31",  # expired: everyone else's phone is fine
        ],
        population=[f"{ADULT};;1;0;;;;2026-05-01", f"{make_hetu('150385', '-', 246)};;0;1;;;;2026-05-01"],
    )
    assert reasons(result, "P000000001") == {"letter": {"asml_mail"}}
    assert reasons(result, "P000000002") == {"phone": {"asml_phone"}}
    assert reasons(result, "P000000003") == {"letter": {"vtj_marketing_ban"}}
    assert reasons(result, "P000000004") == {"letter": {"safety_ban"}}  # no address shown, no invalid_contact
    assert reasons(result, "P000000005") == {"letter": {"invalid_contact"}}  # an email-only lead
    assert members(result, "email") == {f"P00000000{i}" for i in range(1, 6)}


def test_minor_deceased_and_invalid_contacts(tmp_path):
    dead = make_hetu("150350", "-", 258)
    result, _ = build(
        tmp_path,
        [
            prospect("P000000001", personal_id=MINOR),
            prospect("P000000002", personal_id=dead),
            prospect("P000000003", email="not an address", phone="09 555 0100"),  # a landline: no sms
            prospect("P000000004", phone="123"),
        ],
        population=[f"{dead};2026-06-01;0;0;;;;2026-06-02"],
    )
    assert reasons(result, "P000000001") == {ch: {"minor"} for ch in ("email", "sms", "letter", "phone")}
    assert reasons(result, "P000000002") == {ch: {"deceased"} for ch in ("email", "sms", "letter", "phone")}
    assert reasons(result, "P000000003") == {"email": {"invalid_contact"}, "sms": {"invalid_contact"}}
    assert reasons(result, "P000000004") == {"sms": {"invalid_contact"}, "phone": {"invalid_contact"}}


def test_the_frequency_cap_counts_a_prospects_contacts(tmp_path):
    sent = [f"P000000001;letter;CAMP-{i};marketing;2026-0{i}-10T09:00:00+03:00" for i in range(3, 7)]
    result, read = build(
        tmp_path,
        [prospect("P000000001"), prospect("P000000002")],
        contacts=[*sent, "P000000002;email;MAG;customer_communication;2026-05-01T09:00:00+03:00"],
    )
    assert read["contacts"].quarantine.is_empty()  # a prospect id is a valid recipient
    assert reasons(result, "P000000001") == {ch: {"frequency_cap"} for ch in ("email", "sms", "letter", "phone")}
    assert reasons(result, "P000000002") == {}


def test_every_reason_is_listed_not_only_the_first(tmp_path):
    result, _ = build(
        tmp_path, [prospect("P000000001", marketing_objection="1", personal_id=MINOR, email_consent="withdrawn")]
    )
    assert reasons(result, "P000000001")["email"] == {"objected", "minor", "consent_withdrawn"}


def test_the_independent_recheck_finds_a_row_that_breaks_a_rule(tmp_path):
    """The re-check is a second route: an objector or a customer slipped into an audience is found."""
    customer = person("C0000001", CUSTOMER_HETU)
    result, read = build(
        tmp_path,
        [prospect("P000000001", marketing_objection="1"), prospect("P000000002", email="aino@example.fi")],
        customers=[customer],
    )
    register = core_tables.population_register(read["population"].valid)
    facts = core_tables.prospects(read["prospects"].valid, register)
    # the rows the builder excluded, forced into the letter audience as a buggy build would
    forced = {ch: result.audience(ch) for ch in ("email", "sms", "letter", "phone")}
    forced["letter"] = facts.select(
        "prospect_id",
        pl.col("source").alias("lead_source"),
        "language",
        "first_name",
        "last_name",
        "street_address",
        "postal_code",
        "city",
        pl.lit("opt_out").alias("legal_basis"),
        pl.lit("prospect_opt_out:letter").alias("rule"),
        pl.lit(None, pl.String).alias("consent_source"),
        pl.lit(None, pl.Date).alias("consent_collected_on"),
        pl.lit(None, pl.String).alias("consent_wording_version"),
        pl.lit(None, pl.String).alias("consent_evidence_ref"),
        pl.lit(DAY).alias("asml_checked_on"),
        pl.lit(DAY).alias("vtj_checked_on"),
        pl.lit(POLICY.version).alias("policy_version"),
        pl.lit(DAY).alias("as_of"),
    )
    found = prospect_violations(
        forced,
        pl.DataFrame(schema=result.exclusions.schema),
        facts,
        core_tables.customers(read["customers"].valid, register),
        pl.DataFrame(
            schema={"register": pl.String, "match_key": pl.String, "phone_e164": pl.String, "expires_on": pl.Date}
        ),
        pl.DataFrame(schema={"customer_id": pl.String, "kind": pl.String, "sent_at": pl.Datetime("us", "UTC")}),
        POLICY,
        DAY,
    )
    assert set(found.select("prospect_id", "check").rows()) == {
        ("P000000001", "objected"),
        ("P000000002", "is_customer"),
    }


def test_the_fail_safe_blocks_the_channels_a_quarantined_prospect_row_could_restrict(tmp_path):
    from models.fail_safe import PROSPECT_RESTRICTING_ROWS, RESTRICTING_ROWS, blocking_rows

    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))
    rows = [
        prospect("P000000001", updated_on="2026-13-01", marketing_objection="1"),  # an objection, unreadable date
        prospect("P000000002", updated_on="x", email_consent="withdrawn"),  # a withdrawal: email only
        prospect("P000000003", updated_on="x", sms_consent="withdrawn?"),  # an unreadable consent: sms only
        prospect("P000000004", updated_on="x"),  # legibly harmless: no objection, grants only
        prospect("P000000005", postal_code="3320"),  # ditto
    ]
    write(storage.landing, "prospects", DELIVERY, rows)
    quarantine = read_source(storage, sources.prospects, DAY).quarantine.with_columns(
        pl.lit("prospects").alias("source")
    )
    assert quarantine.height == 5
    blocked = blocking_rows(quarantine, PROSPECT_RESTRICTING_ROWS).select("line", "channel").rows()
    assert sorted(blocked) == [(2, "email"), (2, "letter"), (2, "phone"), (2, "sms"), (3, "email"), (4, "sms")]
    # a prospect's row never blocks a customer audience
    assert blocking_rows(quarantine, RESTRICTING_ROWS).is_empty()
