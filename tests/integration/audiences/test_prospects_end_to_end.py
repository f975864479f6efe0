"""Prospects end to end through `daily_job` on a hand-made landing zone, over two business days.

D1 publishes the prospect audiences beside the customer ones, with evidence and every reason; a lead
past `retention.prospects` is erased before the audiences see it. On D2 the prospect who matched a
customer on D1 is erased (the customer record takes over), a re-delivered old list cannot bring the
erased lead back, a new lead from the same person with a new consent is lawful again, and a
quarantined objection holds the mart back (the fail safe) until a person resolves it.
"""

import datetime as dt

import polars as pl
import pytest

from assets.privacy.prospect_erasure import erased_prospects
from assets.storage import prospect_suppression
from assets.storage.mart import published_as_of, read_published
from assets.storage.zones import query
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import make_hetu, person, write
from tests.unit.prospects.test_prospect_rules import prospect

D1, D2 = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
CUSTOMER = person("C0000001", make_hetu("020290", "-", 345))  # aino@example.fi


def members(storage, channel: str) -> set[str]:
    return set(read_published(storage.root, f"prospect_audience_{channel}")["prospect_id"])


def reasons(storage) -> set[tuple[str, str, str]]:
    frame = read_published(storage.root, "prospect_audience_exclusions")
    return {tuple(r) for r in frame.select("prospect_id", "channel", "reason").rows()}


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    storage = storage_for(tmp_path_factory.mktemp("prospects"))
    write(storage.landing, "customers", "20261124", [CUSTOMER])
    write(storage.landing, "asml", "20261124", ["phone;;;;;+358409994567;2024-01-01;"])
    write(
        storage.landing,
        "prospects",
        "20261124",
        [
            prospect("P000000001"),
            prospect("P000000002", email="Aino@example.fi"),  # the customer
            prospect("P000000003", marketing_objection="1"),
            prospect("P000000004", source="address_list"),  # a bought list granting consent: quarantined
            # last updated more than 12 months before D1: erased by retention on D1
            prospect("P000000005", email="old@example.fi", collected_on="2025-10-01", updated_on="2025-11-01"),
        ],
    )
    write(storage.landing, "contacts", "20261124", ["P000000001;letter;CAMP-1;marketing;2026-09-10T09:00:00+03:00"])
    first = run_day(storage, D1)
    with storage.warehouse(read_only=True) as conn:
        d1 = {
            "prospects": query(conn, "select prospect_id from prospects")["prospect_id"].to_list(),
            "quarantine": query(conn, "select line, rule from quarantine where source = 'prospects'").rows(),
        }
    d1 |= {
        "members": {ch: members(storage, ch) for ch in ("email", "sms", "letter", "phone")},
        "reasons": reasons(storage),
    }
    d1["email"] = read_published(storage.root, "prospect_audience_email")
    d1["customer_letter"] = read_published(storage.root, "audience_letter")

    write(
        storage.landing,
        "prospects",
        "20261125",
        [
            # the erased lead's old list again, under a new id: collected before the erasure
            prospect("P000000006", email="old@example.fi", collected_on="2025-10-01", updated_on="2025-11-01"),
            # the same person, a new competition entry after the erasure, with a new consent
            prospect(
                "P000000007",
                email="old@example.fi",
                collected_on="2026-11-24",
                updated_on="2026-11-24",
                evidence_ref="form:new",
            ),
            # an objection whose date cannot be read: it could restrict every channel
            prospect("P000000001", updated_on="24.11.2026", marketing_objection="1"),
        ],
    )
    held = run_day(storage, D2, raise_on_error=False)
    held_as_of = published_as_of(storage.root)
    with storage.warehouse(read_only=True) as conn:
        staged_email = set(query(conn, "select prospect_id from prospect_audience_email")["prospect_id"])
        line = query(conn, "select file, line from quarantine where source = 'prospects' and file like '%1125%'")
        conn_prospects = set(query(conn, "select prospect_id from prospects")["prospect_id"])
        suppressed = query(conn, "select rows_suppressed from file_registry where file_name = 'prospects_20261125.csv'")
    with storage.warehouse() as conn:
        conn.execute(
            "create table if not exists quarantine_resolutions (source varchar, file varchar, line bigint, "
            "note varchar, decided_by varchar, decided_at timestamptz)"
        )
        for file, ln in line.rows():
            conn.execute(
                "insert into quarantine_resolutions values ('prospects', $f, $l, 'checked', 'test', now())",
                {"f": file, "l": ln},
            )
    second = run_day(storage, D2)
    return {
        "storage": storage,
        "first": first,
        "d1": d1,
        "held": held,
        "held_as_of": held_as_of,
        "staged_email": staged_email,
        "prospects_after_d2": conn_prospects,
        "suppressed_on_d2": suppressed["rows_suppressed"].to_list(),
        "second": second,
    }


def test_d1_publishes_the_prospect_audiences_with_evidence_and_every_reason(days):
    d1 = days["d1"]
    assert days["first"].success
    assert d1["members"] == {ch: {"P000000001"} for ch in ("email", "sms", "letter", "phone")}
    assert {(p, c, r) for p, c, r in d1["reasons"] if p == "P000000002"} == {
        ("P000000002", ch, "is_customer") for ch in ("email", "sms", "letter", "phone")
    }
    assert {("P000000003", ch, "objected") for ch in ("email", "sms", "letter", "phone")} <= d1["reasons"]
    row = d1["email"].row(0, named=True)
    assert (row["consent_source"], row["consent_collected_on"], row["consent_evidence_ref"]) == (
        "competition",
        dt.date(2026, 10, 1),
        "form:P000000001",
    )
    assert row["as_of"] == D1 and row["asml_checked_on"] == dt.date(2026, 11, 24)
    # the bought list's grant is quarantined, the stale lead erased before the audiences ran
    assert d1["quarantine"] == [(5, "consent_on_purchased_list")]
    assert not {p for p, *_ in d1["reasons"]} & {"P000000004", "P000000005"}
    assert set(d1["prospects"]) == {"P000000001", "P000000002", "P000000003"}
    # the customer is marketed under the customer rules: in the customer letter audience, which no prospect is in
    assert d1["customer_letter"]["customer_id"].to_list() == ["C0000001"]


def test_a_quarantined_objection_holds_the_mart_back_until_resolved(days):
    held = days["held"]
    assert not held.success
    failed = {
        (e.asset_check_evaluation_data.asset_key.to_user_string(), e.asset_check_evaluation_data.check_name)
        for e in held.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and not e.asset_check_evaluation_data.passed
        and e.asset_check_evaluation_data.check_name in ("policy", "fail_safe", "size_anomaly")
    }
    assert failed == {(f"prospect_audience_{ch}", "fail_safe") for ch in ("email", "sms", "letter", "phone")}
    assert days["held_as_of"] == D1  # yesterday's mart stays
    assert days["second"].success and published_as_of(days["storage"].root) == D2


def test_d2_erases_the_converted_prospect_keeps_the_old_list_out_and_lets_the_new_lead_in(days):
    storage = days["storage"]
    assert "P000000002" not in days["prospects_after_d2"]  # became a customer on D1: erased on D2
    assert "P000000006" not in days["prospects_after_d2"]  # the re-delivered old list
    assert days["suppressed_on_d2"] == [1]  # counted by the conservation check, never stored
    assert "P000000007" in days["staged_email"] and "P000000007" in members(storage, "email")
    assert not {p for p, *_ in reasons(storage)} & {"P000000002", "P000000005", "P000000006"}
    reasons_by = [e["reason"] for e in erased_prospects(storage)]
    assert sorted(reasons_by) == ["became_customer", "retention"]
    records = prospect_suppression.load(storage.warehouse_dir)
    assert set(records["reason"]) == {"became_customer", "retention"}
    assert "old@example.fi" not in records.write_csv() and "P000000005" not in records.write_csv()
    # the customer record took over: the customer is still in the customer tables
    with storage.warehouse(read_only=True) as conn:
        assert query(conn, "select count(*) as n from customers")["n"][0] == 1
    # P000000001's resolved (unreadable) objection was quarantined; its readable state still stands
    assert "P000000001" in members(storage, "email")
    assert read_published(storage.root, "prospect_audience_email").filter(pl.col("prospect_id") == "P000000007")[
        "consent_evidence_ref"
    ].to_list() == ["form:new"]


def test_lupa_explain_says_why_a_prospect_is_in_or_out(days):
    from pipelines.prospect_explain import explain_prospect

    mart = days["storage"].root / "marketing.duckdb"
    text = explain_prospect(mart, "P000000007")
    assert "email   IN   rule prospect_consent:email_consent" in text and "evidence form:new" in text
    assert "objected" in explain_prospect(mart, "P000000003")
    assert "not in the published mart" in explain_prospect(mart, "P000000002")  # erased: the customer took over
