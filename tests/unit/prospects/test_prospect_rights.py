"""A prospect's rights without a Dagster run: `lupa sar` finds a prospect by prospect id, email or
identity code and reports the source, the consents with their evidence and the contacts; the
erasure removes the prospect everywhere and keeps a suppression record, so a re-delivered list
cannot bring them back while a lead collected after the erasure is lawful again."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from assets.campaigns import store
from assets.core import tables as core_tables
from assets.privacy.prospect_erasure import erase_prospects
from assets.storage.ingestion import read_source, write_source
from assets.storage.zones import LupaStorage, query, replace_table
from data_contracts import sources
from pipelines.commands.sar import run_prospect_sar
from tests.landing_builder import make_hetu, write
from tests.unit.prospects.test_prospect_rules import prospect

DAY = dt.date(2026, 11, 23)
HETU = make_hetu("150385", "-", 234)


def load(storage: LupaStorage, day: dt.date = DAY) -> dict[str, object]:
    """Ingest the prospects and contacts and build their core tables, as the assets do."""
    outcomes = {s: read_source(storage, sources.SMALL_SOURCES[s], day) for s in ("prospects", "contacts")}
    with storage.warehouse() as conn:
        for outcome in outcomes.values():
            write_source(conn, outcome)
        replace_table(
            conn,
            "prospects",
            core_tables.prospects(
                outcomes["prospects"].valid,
                pl.DataFrame(
                    schema={
                        "personal_id": pl.String,
                        "deceased_on": pl.Date,
                        "marketing_ban": pl.Boolean,
                        "safety_ban": pl.Boolean,
                        "updated_on": pl.Date,
                    }
                ),
            ),
        )
        replace_table(
            conn,
            "contact_history",
            outcomes["contacts"].valid.select("customer_id", "channel", "campaign_id", "kind", "sent_at"),
        )
    return outcomes


@pytest.fixture
def storage(tmp_path, monkeypatch):
    monkeypatch.setenv("LUPA_PSEUDONYM_KEY", "test-key")
    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))
    write(
        storage.landing,
        "prospects",
        "20261020",
        [prospect("P000000001", personal_id=HETU, email="liisa@example.fi", sms_consent="")],
    )
    write(
        storage.landing,
        "prospects",
        "20261124",
        [
            prospect(
                "P000000001",
                personal_id=HETU,
                email="liisa@example.fi",
                updated_on="2026-11-20",
                email_consent="withdrawn",
                sms_consent="",
            ),
            prospect("P000000002"),
        ],
    )
    write(storage.landing, "contacts", "20261124", ["P000000001;email;CAMP-1;marketing;2026-10-15T09:00:00+03:00"])
    load(storage)
    return storage


def _report(lines: list[str]) -> dict:
    return json.loads(open(next(line for line in lines if line.endswith(".json"))).read())


@pytest.mark.parametrize("how", ["prospect_id", "email", "personal_id"])
def test_sar_finds_a_prospect_and_reports_source_consents_evidence_and_contacts(storage, tmp_path, how):
    given = {"prospect_id": "P000000001", "email": "Liisa@Example.fi", "personal_id": HETU}[how]
    code, lines = run_prospect_sar(storage, tmp_path / "reports", **{how: given})
    assert code == 0
    report = _report(lines)
    assert report["report"]["prospect_id"] == "P000000001"
    assert report["source"]["lead_sources"] == ["competition"]
    assert [(c["channel"], c["state"], c["evidence_ref"]) for c in report["consents"]] == [
        ("email", "granted", "form:P000000001"),
        ("email", "withdrawn", "form:P000000001"),
    ]
    assert [c["campaign_id"] for c in report["contacts"]] == ["CAMP-1"]
    assert report["campaigns"] == {"planned": [], "released": [], "removed": []}
    assert report["retention"]["kept_until"] == "2027-11-20"


def test_a_prospects_report_lists_the_campaigns_that_held_them_out(storage, tmp_path):
    with storage.warehouse() as conn:
        store.ensure_tables(conn)
        conn.execute(
            "insert into campaign_release_list values "
            "('WELCOME', 'P000000001', 'prospect', 'control', 'email', null, null, $d, $s)",
            {"d": DAY, "s": DAY + dt.timedelta(days=7)},
        )
    code, lines = run_prospect_sar(storage, tmp_path / "reports", prospect_id="P000000001")
    assert code == 0
    assert [(c["campaign_id"], c["status"]) for c in _report(lines)["campaigns"]["released"]] == [
        ("WELCOME", "control")
    ]
    page = open(next(line for line in lines if line.endswith(".html")), encoding="utf-8").read()
    assert "WELCOME" in page
    printed = "\n".join(lines)
    assert HETU not in printed and "liisa" not in printed.lower() and "P000000001" not in printed


def test_erasure_removes_the_prospect_keeps_a_record_and_tells_an_old_list_from_a_new_lead(storage, tmp_path):
    erase_prospects(storage, pl.DataFrame({"prospect_id": ["P000000001"], "reason": ["data_subject_request"]}), DAY)
    with storage.warehouse(read_only=True) as conn:
        for table, column in (
            ("prospects_valid", "prospect_id"),
            ("prospects", "prospect_id"),
            ("contacts_valid", "customer_id"),
            ("contact_history", "customer_id"),
        ):
            assert query(conn, f"select count(*) as n from {table} where {column} = 'P000000001'")["n"][0] == 0
        assert query(conn, "select count(*) as n from prospects")["n"][0] == 1  # the other lead stays
    code, lines = run_prospect_sar(storage, tmp_path / "reports", email="liisa@example.fi")
    assert code == 0 and _report(lines)["erased_on"] == DAY.isoformat()

    # the next run reads every delivery again: the erased lead's rows and contacts stay out ...
    write(
        storage.landing,
        "prospects",
        "20261125",
        [
            prospect("P000000009", email="liisa@example.fi", collected_on="2026-10-01"),  # the old list again
            prospect("P000000010", email="liisa@example.fi", collected_on="2026-11-24", updated_on="2026-11-24"),
        ],
    )
    outcomes = load(storage, DAY + dt.timedelta(days=1))
    assert outcomes["prospects"].rows_suppressed == 3 and outcomes["contacts"].rows_suppressed == 1
    # ... and the lead collected after the erasure, with its own consent, is lawful again
    assert sorted(outcomes["prospects"].valid["prospect_id"].unique()) == ["P000000002", "P000000010"]
    assert outcomes["prospects"].rows_read == (
        outcomes["prospects"].rows_valid
        + outcomes["prospects"].rows_quarantined
        + outcomes["prospects"].rows_suppressed
    )
