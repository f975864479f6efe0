"""`lupa sar`: the right of access (GDPR Art. 15), on a landing zone the real pipeline has run.

One module-scoped fixture generates a small demo landing zone, loads its metering history in one
range run and runs the whole graph for the last day (what `lupa backfill` does), so customers are
profiled and segmented. Each test then asks for one customer's report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import stat
import subprocess
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from assets.campaigns import store
from assets.common.calendar import BUSINESS_DAY_TAG
from data_contracts.features import FEATURE_COLUMNS
from data_contracts.policy import load_policy
from data_contracts.processing_register import load_processing_register
from data_contracts.vocabulary import LANGUAGES
from models import access_report as content
from pipelines.commands import sar
from pipelines.definitions import build_defs
from pipelines.demo_data import generate_landing_zone
from pipelines.report_rendering import TEXTS, fmt_period
from tests.dagster_helpers import run_day, storage_for

pytestmark = pytest.mark.slow

END = dt.date(2026, 11, 24)
REPO = Path(__file__).resolve().parents[3]
SECTIONS = {
    "report",
    "identity",
    "population_register",
    "contracts",
    "metering_points",
    "consumption_monthly",
    "invoices",
    "consents",
    "profiling",
    "audiences",
    "contact_history",
    "campaigns",
    "rejected_records",
    "processing",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("sar")
    summary = generate_landing_zone(root / "landing", customers=150, days=200, end=END, truth_dir=root / "truth")
    storage = storage_for(root)
    defs = build_defs(resource_overrides={"storage": storage})
    history = defs.resolve_job_def("metering_job").execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": summary["first_business_day"],
            "dagster/asset_partition_range_end": END.isoformat(),
            BUSINESS_DAY_TAG: END.isoformat(),
        },
    )
    assert history.success
    assert run_day(storage, END).success
    return storage


def sql(storage, database: str, text: str, **params) -> list[tuple]:
    path = storage.warehouse_path if database == "warehouse" else storage.analytics_path
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.sql(text, params=params or None).fetchall()
    finally:
        conn.close()


def profiled(storage, language: str) -> list[str]:
    segmented = {r[0] for r in sql(storage, "analytics", "select customer_id from customer_segments")}
    return [
        c
        for (c,) in sql(
            storage, "warehouse", "select customer_id from customers where language = $l order by 1", l=language
        )
        if c in segmented
    ]


def report_for(storage, tmp_path: Path, **kwargs) -> tuple[dict, str, list[Path]]:
    code, lines = sar.run_sar(storage, tmp_path / "out", **kwargs)
    assert code == 0, lines
    paths = [Path(p) for p in lines[:2]]
    return json.loads(paths[0].read_text("utf-8")), paths[1].read_text("utf-8"), paths


def test_report_by_customer_id_has_every_section_in_the_customers_language(demo, tmp_path):
    cid = profiled(demo, "sv")[0]
    report, page, paths = report_for(demo, tmp_path, customer_id=cid)
    assert set(report) == SECTIONS
    assert report["report"]["customer_id"] == cid and report["report"]["language"] == "sv"
    fields = {i["field"]: i for i in report["identity"]}
    assert fields["personal_id"]["source"]["system"] == "crm" and fields["personal_id"]["source"]["file"].startswith(
        "customers_"
    )
    assert fields["safety_ban"]["source"]["system"] == "vtj"
    assert (
        report["contracts"]
        and report["metering_points"]
        and report["consumption_monthly"]
        and report["invoices"]["items"]
    )
    assert all(m["kwh"] >= 0 and m["days_with_data"] >= 1 for m in report["consumption_monthly"])
    assert [c["channel"] for c in report["consents"]["marketing_channels"]] == ["email", "sms", "letter", "phone"]
    retention = {r["id"]: r["period"] for r in report["processing"]["retention"]}
    assert retention["metering_readings"] == {"years": 6} and retention["quarantine"] == {"days": 90}
    # Swedish headings, not Finnish or English ones
    assert "<html lang='sv'>" in page
    for heading in (
        "Registerutdrag",
        "Identitets- och kontaktuppgifter",
        "Avtal och mätpunkter",
        "Elförbrukning per månad",
        "Samtycken och förbud",
        "Profilering och kundsegment",
        "Ändamål, mottagare och lagringstider",
        "Dina rättigheter",
    ):
        assert heading in page
    assert "Henkilö- ja yhteystiedot" not in page and "Identity and contact data" not in page
    # self-contained, owner-only
    assert "<script" not in page and "src=" not in page and "http" not in page
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in paths)
    # nothing about any other customer
    text = paths[0].read_text("utf-8") + page
    others = sql(
        demo,
        "warehouse",
        "select customer_id, personal_id, email, phone_e164 from customers where customer_id <> $c",
        c=cid,
    )
    leaked = {v for row in others for v in row if v and v in text}
    assert not leaked


def test_report_by_personal_id_reads_the_code_from_stdin_and_never_prints_it(demo, tmp_path):
    cid = profiled(demo, "fi")[1]
    (hetu,) = sql(demo, "warehouse", "select personal_id from customers where customer_id = $c", c=cid)[0]
    var = tmp_path / "var"
    env = os.environ | {
        "LUPA_LANDING_DIR": str(demo.landing),
        "LUPA_DATA_DIR": str(demo.root),
        "LUPA_VAR_DIR": str(var),
        "LUPA_ENV": "demo",
    }
    done = subprocess.run(
        [str(REPO / ".venv/bin/lupa"), "sar", "--personal-id", "-"],
        input=f"{hetu.lower()}\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert hetu not in done.stdout + done.stderr and hetu.lower() not in done.stdout + done.stderr
    paths = [Path(line) for line in done.stdout.splitlines() if line.startswith("/")]
    assert [p.suffix for p in paths] == [".json", ".html"] and all(p.parent == var / "access_reports" for p in paths)
    assert stat.S_IMODE((var / "access_reports").stat().st_mode) == 0o700
    report = json.loads(paths[0].read_text("utf-8"))
    assert report["report"]["customer_id"] == cid and report["report"]["matched_by"] == "personal_id"
    assert {i["field"]: i["value"] for i in report["identity"]}[
        "personal_id"
    ] == hetu  # the subject's own code, in the file only


def test_unknown_customer_gets_a_clear_answer_and_no_files(demo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LUPA_LANDING_DIR", str(demo.landing))
    monkeypatch.setenv("LUPA_DATA_DIR", str(demo.root))
    args = argparse.Namespace(customer_id="C0000000", personal_id=None, out=str(tmp_path / "out"), language=None)
    assert sar.cmd_sar(args) == 1
    assert "no customer found for customer id C0000000" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # an identity code on the command line is refused without being echoed back
    args = argparse.Namespace(customer_id=None, personal_id="010101-0101", out=str(tmp_path / "out"), language=None)
    assert sar.cmd_sar(args) == 2
    captured = capsys.readouterr()
    assert "standard input" in captured.err and "010101-0101" not in captured.out + captured.err


def test_a_profiled_customers_report_names_the_segment_and_the_features_that_placed_them(demo, tmp_path):
    cid = profiled(demo, "fi")[0]
    report, page, _ = report_for(demo, tmp_path, customer_id=cid)
    p = report["profiling"]
    assert p["profiled"] and not p["objected"]
    (segment_id, name_fi) = sql(
        demo,
        "analytics",
        "select s.segment_id, c.name_fi from customer_segments s join segment_catalogue c using (segment_id) "
        "where s.customer_id = $c",
        c=cid,
    )[0]
    assert p["segment"]["segment_id"] == segment_id and name_fi in page
    e = p["explanation"]
    assert e["available"] and e["feature_columns"] == FEATURE_COLUMNS
    assert len(e["top_features"]) == content.TOP_FEATURES and set(e["top_features"]) <= set(FEATURE_COLUMNS)
    for row in e["features"]:
        assert row["population_median"] is not None and row["segment_typical"] is not None
    # the top features are the largest standardised differences from the median, and the segment is the nearest centroid
    diffs = sorted(
        (abs(r["standardised_difference_from_median"]) for r in e["features"] if not r["imputed"]), reverse=True
    )
    assert [
        abs(r["standardised_difference_from_median"])
        for f in e["top_features"]
        for r in e["features"]
        if r["feature"] == f
    ] == diffs[:3]
    assert e["distance_to_segment"] <= e["next_segment"]["distance"]
    for feature in e["top_features"]:
        assert TEXTS.feature_labels[feature]["fi"] in page
    assert "Eniten sinun käyttöäsi muista erottivat" in page


def test_an_objectors_report_says_so_and_shows_no_segment(demo, tmp_path):
    objectors = [
        c
        for (c,) in sql(
            demo,
            "warehouse",
            "select customer_id from consent_state where purpose = 'profiling' and state = 'withdrawn' "
            "and customer_id in (select customer_id from customers) order by 1",
        )
    ]
    assert objectors
    report, page, _ = report_for(demo, tmp_path, customer_id=objectors[0], language="en")
    p = report["profiling"]
    assert p["objected"] and p["objection_event"]["purpose"] == "profiling"
    assert p["segment"] is None and p["explanation"] is None and p["features"] is None and not p["profiled"]
    assert all(r["segment_id"] is None for r in report["audiences"]["history"])
    assert "You objected to profiling" in page and "Your segment is" not in page


def test_past_audiences_come_from_audience_history(demo, tmp_path):
    cid = profiled(demo, "fi")[2]
    current = {
        ch
        for (ch,) in sql(
            demo,
            "warehouse",
            "select channel from audience_history where customer_id = $c and business_day = $d",
            c=cid,
            d=END,
        )
    }
    past_channel = next(ch for ch in ("sms", "email", "phone", "letter") if ch not in current)
    past_day = END - dt.timedelta(days=30)
    conn = duckdb.connect(str(demo.warehouse_path))
    try:  # an earlier run's row, as the audiences asset appends it
        conn.execute(
            "insert into audience_history (business_day, channel, customer_id, segment_id, legal_basis, "
            "policy_version, consent_event_id, consent_evidence_ref) "
            "values ($d, $ch, $c, null, 'consent', '2026.1', 'E-PAST-1', 'consent-forms/past-1.pdf')",
            {"d": past_day, "ch": past_channel, "c": cid},
        )
    finally:
        conn.close()
    try:
        report, page, _ = report_for(demo, tmp_path, customer_id=cid, language="en")
    finally:
        conn = duckdb.connect(str(demo.warehouse_path))
        conn.execute(
            "delete from audience_history where business_day = $d and customer_id = $c", {"d": past_day, "c": cid}
        )
        conn.close()
    history = {r["channel"]: r for r in report["audiences"]["history"]}
    assert history[past_channel]["first_day"] == past_day.isoformat() and history[past_channel]["current"] is False
    assert history[past_channel]["business_days"] == [past_day.isoformat()]
    # the data subject sees on what evidence the consent-based contact rested
    assert history[past_channel]["consent_evidence_refs"] == ["consent-forms/past-1.pdf"]
    assert "consent-forms/past-1.pdf" in page
    assert all(history[ch]["current"] for ch in current)
    assert "Audiences you are or were in" in page and past_day.isoformat() in page


def test_the_report_shows_the_campaigns_that_listed_held_out_or_removed_the_person(demo, tmp_path):
    cid = profiled(demo, "en")[0]
    send_on = END + dt.timedelta(days=10)
    conn = duckdb.connect(str(demo.warehouse_path))
    try:  # a released list (treated in one campaign, control in another), a removal and a plan
        store.ensure_tables(conn)
        conn.executemany(
            "insert into campaign_release_list values ($1, $2, 'customer', $3, $4, $5, null, $6, $7)",
            [
                ["SAR-SPRING", cid, "treated", "email", None, END, send_on],
                ["SAR-CONTROL", cid, "control", "letter", None, END, send_on],
            ],
        )
        conn.execute("insert into campaign_removals values ('SAR-SPRING', $1, $2, 'consent_withdrawn')", [cid, END])
        conn.execute(
            "insert into campaign_plan values "
            "('SAR-PLAN', $1, 'customer', 'left_out', null, 'frequency_cap', null, $2)",
            [cid, END],
        )
    finally:
        conn.close()
    try:
        report, page, _ = report_for(demo, tmp_path, customer_id=cid, language="en")
    finally:
        conn = duckdb.connect(str(demo.warehouse_path))
        for table in ("campaign_release_list", "campaign_removals", "campaign_plan"):
            conn.execute(f"delete from {table} where campaign_id like 'SAR-%'")
        conn.close()
    campaigns = report["campaigns"]
    assert [(r["campaign_id"], r["status"], r["channel"]) for r in campaigns["released"]] == [
        ("SAR-CONTROL", "control", "letter"),
        ("SAR-SPRING", "treated", "email"),
    ]
    assert campaigns["removed"] == [
        {"campaign_id": "SAR-SPRING", "removed_on": END.isoformat(), "reason": "consent_withdrawn"}
    ]
    assert [(r["campaign_id"], r["status"], r["reason"]) for r in campaigns["planned"]] == [
        ("SAR-PLAN", "left_out", "frequency_cap")
    ]
    assert "Marketing campaigns" in page and "control group (does not get the campaign)" in page
    assert "Campaigns you were removed from before they were sent" in page and "SAR-PLAN" in page


def test_the_processing_register_agrees_with_the_policys_retention_and_has_every_language():
    register = load_processing_register()
    policy = load_policy()
    by_key = {r.get("policy_key"): r for r in register["retention"] if r.get("policy_key")}
    for key, period in policy.retention.model_dump(exclude_none=True).items():
        assert by_key[key]["period"] == period
    for section in ("purposes", "recipients"):
        assert all(set(item["name"]) == set(LANGUAGES) for item in register[section])
    assert fmt_period({"years": 6}, "fi") == "6 vuotta" and fmt_period({"days": 1}, "sv") == "1 dag"


def test_a_safety_ban_hides_every_address():
    current = {
        "customer_id": "C1",
        "customer_type": "person",
        "language": "fi",
        "email_status": "absent",
        "phone_status": "absent",
        "address_source": "suppressed",
        "safety_ban": True,
        "birth_date": dt.date(1980, 3, 15),
        "snapshot_file": "customers_20261124.csv",
    }
    crm = {
        "customer_id": "C1",
        "customer_type": "person",
        "personal_id": "150380-123X",
        "first_name": "A",
        "last_name": "B",
        "language": "fi",
        "email": None,
        "phone": None,
        "street_address": "Salainen tie 1",
        "postal_code": "00100",
        "city": "Helsinki",
        "customer_since": dt.date(2020, 1, 1),
        "ended_on": None,
        "file": "customers_20261124.csv",
        "line": 2,
    }
    vtj = {
        "personal_id": "150380-123X",
        "deceased_on": None,
        "marketing_ban": False,
        "safety_ban": True,
        "street_address": None,
        "postal_code": None,
        "city": None,
        "updated_on": dt.date(2026, 1, 1),
    }
    items = content.identity(current, crm, vtj)
    assert "Salainen tie 1" not in json.dumps(items, default=str)
    address = next(i for i in items if i["field"] == "address")
    assert address["withheld"] and address["held_in_crm"] and address["value"] is None
