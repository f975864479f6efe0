"""Erasure removes a customer everywhere and keeps them out; objections take effect in the next run.

An erased customer who asks what is held about them is told when the erasure was and exactly what
it kept, and why; what `lupa erase` prints and logs holds no personal data. An erasure interrupted
half-way is recognised and finished by running `lupa erase` again, and the invoice retention period
of the policy file is the one date erasure, access report and the `retention` asset all use.
"""

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from dagster import AssetKey

from assets.common.calendar import BUSINESS_DAY_TAG
from assets.privacy import erasure
from assets.privacy.erasure import INVOICE_RETENTION_BASIS, UnknownCustomer, audit_log, erase, held_after_erasure
from assets.storage import suppression
from assets.storage.mart import read_published
from assets.storage.metering import daily_root
from data_contracts import policy as policy_file
from data_contracts.identifiers import find_personal_ids
from data_contracts.processing_register import AccessReportError
from data_contracts.vocabulary import LANGUAGES
from pipelines import cli
from pipelines.commands import sar
from pipelines.definitions import build_defs
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import GSRN1, GSRN2, make_hetu, metering_row, person, write

#: the retention periods erasure keeps invoices for (the policy file's)
RETENTION_PERIODS = policy_file.load_policy().retention

D = dt.date(2026, 11, 23)
ERASED_ON = dt.date(2026, 11, 24)
KEEP, GONE = "C0000001", "C0000002"
GONE_HETU = make_hetu("150380", "-", 202)
REPO = Path(__file__).resolve().parents[3]
#: everything personal the landing zone holds about GONE: identity code, name, email, phone as typed and
#: as used, both addresses
GONE_PERSONAL = (GONE_HETU, "Poistuva", "gone@example.fi", "050 765 4321", "+358507654321", "Poistotie 9", "Uusitie 1")


def landing(storage, delivery="20261124", day=D):
    write(
        storage.landing,
        "customers",
        delivery,
        [
            person(KEEP, make_hetu("150380", "-", 201), first_name="Pysyvä", email="keep@example.fi"),
            person(
                GONE,
                GONE_HETU,
                first_name="Poistuva",
                last_name="Asiakas",
                email="gone@example.fi",
                phone="050 765 4321",
                street_address="Poistotie 9",
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
        ],
    )
    write(
        storage.landing,
        "consents",
        delivery,
        [f"E{c};{c};marketing;email;granted;2026-01-01T10:00:00Z;web_form;v3;f-{c}" for c in (KEEP, GONE)],
    )
    write(
        storage.landing,
        "billing",
        delivery,
        [f"I{c};{c};K;2026-10-01;2026-10-15;50,00;2026-10-10;0;0" for c in (KEEP, GONE)],
    )
    write(storage.landing, "population", delivery, [f"{GONE_HETU};;0;0;Uusitie 1;00100;Helsinki;2026-11-01"])
    start = dt.datetime.combine(day, dt.time(), dt.timezone.utc) - dt.timedelta(hours=2)
    write(
        storage.landing,
        "metering",
        delivery,
        [
            metering_row(g, (start + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            for g in (GSRN1, GSRN2)
            for h in range(24)
        ],
    )


def everything_text(storage) -> str:
    """Every value in every DuckDB table and Parquet/CSV file the pipeline wrote."""
    chunks = []
    for path in storage.root.rglob("*"):
        if path.is_file() and path.suffix == ".duckdb":
            conn = duckdb.connect(str(path), read_only=True)
            try:
                for (table,) in conn.sql("select table_name from duckdb_tables()").fetchall():
                    chunks.append(conn.sql(f'select * from "{table}"').pl().write_csv())
            finally:
                conn.close()
        elif path.is_file() and path.suffix == ".parquet":
            chunks.append(pl.read_parquet(path).write_csv())
        elif path.is_file() and path.suffix in (".csv", ".jsonl", ".json", ".html"):
            chunks.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(chunks)


@pytest.fixture
def erased(tmp_path):
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    assert GONE in everything_text(storage)
    record = erase(storage, GONE, ERASED_ON, RETENTION_PERIODS)
    return storage, record


def test_erasure_removes_the_customer_from_every_zone_but_keeps_invoices_restricted(erased):
    storage, record = erased
    conn = duckdb.connect(str(storage.warehouse_path), read_only=True)
    try:
        retained = conn.sql("select customer_id, retention_basis from invoices_retained").fetchall()
        assert retained == [(GONE, INVOICE_RETENTION_BASIS)] and record["kept"]["basis"] == INVOICE_RETENTION_BASIS
        assert conn.sql("select count(*) from invoices where customer_id = $c", params={"c": GONE}).fetchall() == [(0,)]
    finally:
        conn.close()
    text = everything_text(storage)
    for value in ("Poistuva", "gone@example.fi", "Poistotie 9", "Uusitie 1", GONE_HETU):
        assert value not in text
    assert read_published(storage.root, "audience_email")["customer_id"].to_list() == [KEEP]
    daily = pl.read_parquet(daily_root(storage) / f"business_day={D}" / "part.parquet")
    assert daily["metering_point_id"].to_list() == [GSRN1]


def audit_steps(storage) -> list[dict]:
    return [json.loads(line) for line in audit_log(storage).read_text().splitlines()]


def test_audit_record_holds_no_personal_data(erased):
    storage, record = erased
    text = audit_log(storage).read_text()
    for value in (GONE, *GONE_PERSONAL):
        assert value not in text
    assert find_personal_ids(text) == []
    steps = audit_steps(storage)
    assert [s["step"] for s in steps] == ["suppressed", "warehouse_erased", "completed"]
    assert {s["subject"] for s in steps} == {suppression.pseudonym(GONE)} and {s["erased_on"] for s in steps} == {
        ERASED_ON.isoformat()
    }
    assert steps[0]["identity_code_pseudonyms"] == [suppression.pseudonym(GONE_HETU)]
    assert steps[1]["kept"] == {
        "invoices_retained": 1,
        "basis": INVOICE_RETENTION_BASIS,
        "last_kept_until": "2032-12-31",
    }
    assert record["rows_removed"] == {k: v for s in steps[1:] for k, v in s["rows_removed"].items()}
    assert oct(os.stat(audit_log(storage)).st_mode & 0o777) == "0o600"


def test_a_redelivered_old_snapshot_or_backfill_never_brings_the_customer_back(erased):
    storage, _ = erased
    landing(storage, delivery="20261125", day=D + dt.timedelta(days=1))  # the same people re-delivered
    assert run_day(storage, D + dt.timedelta(days=1)).success
    assert run_day(storage, D).success  # a backfill of the old day, whose files still hold the customer
    text = everything_text(storage)
    for value in ("Poistuva", "gone@example.fi", "Poistotie 9", GONE_HETU):
        assert value not in text
    for table in ("audience_email", "audience_letter", "audience_phone", "renewal_offers"):
        assert GONE not in read_published(storage.root, table)["customer_id"].to_list()
    for day in (D, D + dt.timedelta(days=1)):
        assert (
            GSRN2
            not in pl.read_parquet(daily_root(storage) / f"business_day={day}" / "part.parquet")[
                "metering_point_id"
            ].to_list()
        )


def test_erasing_an_unknown_customer_is_a_clear_answer(tmp_path):
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    with pytest.raises(UnknownCustomer, match="C0000099 is not held"):
        erase(storage, "C0000099", D, RETENTION_PERIODS)


def test_a_withdrawal_arriving_in_the_landing_zone_takes_effect_in_the_next_run(tmp_path):
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    assert GONE in read_published(storage.root, "audience_email")["customer_id"].to_list()
    write(
        storage.landing,
        "consents",
        "20261125",
        [f"W1;{GONE};marketing;;withdrawn;2026-11-24T09:00:00+02:00;customer_service;v3;call-1"],
    )
    assert run_day(storage, D + dt.timedelta(days=1)).success
    for channel in ("email", "sms", "letter", "phone"):
        assert GONE not in read_published(storage.root, f"audience_{channel}")["customer_id"].to_list()
    reasons = read_published(storage.root, "audience_exclusions").filter(customer_id=GONE)["reason"].unique().to_list()
    assert "consent_withdrawn" in reasons


LAW = {"fi": "kirjanpitolaki 1336/1997", "sv": "bokföringslagen 1336/1997", "en": "Accounting Act 1336/1997"}
ERASED_TEXT = {
    "fi": "Tietosi poistettiin 24.11.2026",
    "sv": "Dina uppgifter raderades 2026-11-24",
    "en": "Your data was erased on 2026-11-24",
}
KEPT_UNTIL_TEXT = {"fi": "31.12.2032", "sv": "2032-12-31", "en": "2032-12-31"}
HEADINGS = {
    "fi": ("Mitä meillä on yhä tallessa", "Poistomerkintä"),
    "sv": ("Vad vi fortfarande har", "Raderingsmarkering"),
    "en": ("What we still hold", "Suppression record"),
}


def test_an_erased_customers_access_report_says_when_and_exactly_what_is_kept_in_every_language(erased, tmp_path):
    storage, _ = erased
    for lang in LANGUAGES:
        code, lines = sar.run_sar(storage, tmp_path / lang, customer_id=GONE, language=lang)
        assert code == 0, lines
        report, page = json.loads(Path(lines[0]).read_text("utf-8")), Path(lines[1]).read_text("utf-8")
        assert set(report) == {"report", "erasure", "processing"}  # what is held, and nothing else
        assert (
            report["report"]["erased"]
            and report["report"]["customer_id"] == GONE
            and report["report"]["language"] == lang
        )
        erasure = report["erasure"]
        assert erasure["erased_on"] == ERASED_ON.isoformat()
        invoices = erasure["retained_invoices"]
        # the invoice of 2026-10-01 is kept to the end of 2032: 6 years after its financial year, the
        # register's period and what the retention asset enforces (deleted from 2033-01-01)
        assert [(i["invoice_id"], i["kept_until"], i["restricted_on"]) for i in invoices["items"]] == [
            (f"I{GONE}", "2032-12-31", ERASED_ON.isoformat())
        ]
        assert (
            invoices["restricted"]
            and invoices["retention"]["period"] == {"years": 6}
            and invoices["kept_until"] == "2032-12-31"
        )
        assert erasure["suppression_record"] == {
            "erased_on": ERASED_ON.isoformat(),
            "pseudonyms": 2,
            "metering_point_periods": 1,
            "kept_until": None,
        }
        assert (
            lines[2] == "  erased on 2026-11-24; still held: invoices kept restricted 1, suppression pseudonyms 2, "
            "suppressed metering point periods 1"
        )

        assert f"<html lang='{lang}'>" in page
        for text in (ERASED_TEXT[lang], LAW[lang], KEPT_UNTIL_TEXT[lang], f"I{GONE}", *HEADINGS[lang]):
            assert text in page, (lang, text)
        for other in set(LANGUAGES) - {lang}:
            assert not any(h in page for h in HEADINGS[other])
        for text in (page, json.dumps(report, ensure_ascii=False)):
            assert not any(v in text for v in GONE_PERSONAL)


def test_an_erased_customer_asking_by_identity_code_gets_the_same_answer_and_nothing_is_printed(erased, tmp_path):
    storage, _ = erased
    env = os.environ | {
        "LUPA_LANDING_DIR": str(storage.landing),
        "LUPA_DATA_DIR": str(storage.root),
        "LUPA_VAR_DIR": str(tmp_path / "var"),
        "LUPA_ENV": "demo",
    }
    done = subprocess.run(
        [str(REPO / ".venv/bin/lupa"), "sar", "--personal-id", "-", "--language", "sv"],
        input=f"{GONE_HETU}\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert not any(v in done.stdout + done.stderr for v in GONE_PERSONAL)
    report = json.loads(Path(done.stdout.splitlines()[0]).read_text("utf-8"))
    assert report["report"]["matched_by"] == "personal_id" and report["report"]["customer_id"] == GONE
    assert [i["invoice_id"] for i in report["erasure"]["retained_invoices"]["items"]] == [f"I{GONE}"]
    assert report["erasure"]["erased_on"] == ERASED_ON.isoformat()


def test_lupa_erase_says_what_was_kept_and_why_and_prints_nothing_personal(tmp_path):
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    env = os.environ | {
        "LUPA_LANDING_DIR": str(storage.landing),
        "LUPA_DATA_DIR": str(storage.root),
        "LUPA_VAR_DIR": str(tmp_path / "var"),
        "LUPA_ENV": "demo",
    }
    lupa = [str(REPO / ".venv/bin/lupa"), "erase", "--customer-id", GONE]
    done = subprocess.run(lupa, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert (
        "kept: 1 invoice(s), restricted to accounting in the invoices_retained table, the last until 2032-12-31" in out
    )
    assert "Accounting Act 1336/1997" in out
    assert "kept: the suppression record (2 pseudonym(s), the date, 1 metering point period(s))" in out
    again = subprocess.run(lupa, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert again.returncode == 1
    assert (
        f"was already erased on {dt.date.today()}" in again.stderr
        and "1 restricted invoice(s) and the suppression record" in again.stderr
    )
    printed = done.stdout + done.stderr + again.stdout + again.stderr
    assert not any(v in printed for v in GONE_PERSONAL) and find_personal_ids(printed) == []
    assert not any(v in audit_log(storage).read_text() for v in GONE_PERSONAL)


@pytest.fixture
def lupa_env(monkeypatch):
    """`lupa` commands run in this process on the test's storage, so a step can be made to fail."""

    def use(storage):
        monkeypatch.setenv("LUPA_LANDING_DIR", str(storage.landing))
        monkeypatch.setenv("LUPA_DATA_DIR", str(storage.root))

    return use


def test_an_erasure_interrupted_while_republishing_the_mart_is_recognised_and_finished_by_running_erase_again(
    tmp_path, monkeypatch, lupa_env, capsys
):
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    lupa_env(storage)
    today = dt.date.today()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    with monkeypatch.context() as m:
        m.setattr(erasure, "publish", disk_full)
        with pytest.raises(OSError, match="No space left"):
            cli.main(["erase", "--customer-id", GONE])
    interrupted = capsys.readouterr()
    assert "did not finish; run the same `lupa erase` again" in interrupted.err

    # the suppression record and the kept invoices exist, the warehouse no longer holds the
    # customer, the mart still does: the audit log says how far the erasure got
    erased = suppression.load(storage.warehouse_dir)
    assert {suppression.pseudonym(GONE), suppression.pseudonym(GONE_HETU)} <= erased.subjects
    with storage.warehouse(read_only=True) as conn:
        assert conn.sql("select invoice_id from invoices_retained").fetchall() == [(f"I{GONE}",)]
        assert conn.sql("select count(*) from customers where customer_id = $c", params={"c": GONE}).fetchall() == [
            (0,)
        ]
    assert GONE in read_published(storage.root, "audience_email")["customer_id"].to_list()
    assert [s["step"] for s in audit_steps(storage)] == ["suppressed", "warehouse_erased"]
    for how in ({"customer_id": GONE}, {"personal_id": GONE_HETU}):
        held = held_after_erasure(storage, **how)
        assert held is not None and held.erased_on == today and not held.complete
        # the access report does not claim that nothing else is held while the mart still holds them
        with pytest.raises(AccessReportError, match="was interrupted") as refused:
            sar.run_sar(storage, tmp_path / "sar", **how)
        assert not any(v in str(refused.value) for v in (GONE, *GONE_PERSONAL)) and not (tmp_path / "sar").exists()

    # run again (here the next day): finished under the date it began on, with what both runs removed
    record = erase(storage, GONE, today + dt.timedelta(days=1), RETENTION_PERIODS)
    assert record["erased_on"] == today.isoformat()
    assert {"customers", "invoices", "mart.audience_email"} <= set(record["rows_removed"])
    assert record["kept"]["invoices_retained"] == 1
    assert GONE not in read_published(storage.root, "audience_email")["customer_id"].to_list()
    assert [s["step"] for s in audit_steps(storage)] == ["suppressed", "warehouse_erased", "completed"]
    assert held_after_erasure(storage, customer_id=GONE).complete
    code, lines = sar.run_sar(storage, tmp_path / "sar", customer_id=GONE)
    assert code == 0 and json.loads(Path(lines[0]).read_text("utf-8"))["erasure"]["erased_on"] == today.isoformat()

    assert cli.main(["erase", "--customer-id", GONE]) == 1  # nothing is left to do
    done = capsys.readouterr()
    assert f"was already erased on {today}" in done.err
    printed = interrupted.out + interrupted.err + done.out + done.err + audit_log(storage).read_text()
    assert not any(v in printed for v in GONE_PERSONAL) and find_personal_ids(printed) == []


def run_retention(storage, day: dt.date):
    defs = build_defs(resource_overrides={"storage": storage})
    result = defs.resolve_job_def("daily_job").execute_in_process(
        asset_selection=[AssetKey("retention")], tags={BUSINESS_DAY_TAG: day.isoformat()}
    )
    return result.asset_materializations_for_node("retention")[0].metadata["removed"].value


def test_the_invoice_period_of_the_policy_file_decides_every_kept_until_date(tmp_path, monkeypatch, lupa_env, capsys):
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    lupa_env(storage)
    edited = yaml.safe_load(policy_file.default_policy_path().read_text(encoding="utf-8"))
    edited["retention"]["invoices"] = {"years": 10}
    (tmp_path / "marketing_policy.yaml").write_text(yaml.safe_dump(edited), encoding="utf-8")
    monkeypatch.setattr(policy_file, "default_policy_path", lambda: tmp_path / "marketing_policy.yaml")

    # the invoice of 2026-10-01 is now kept to the end of 2036, not 2032
    assert cli.main(["erase", "--customer-id", GONE]) == 0
    out = capsys.readouterr().out
    assert "the last until 2036-12-31" in out and "kept 10 years after the end of each invoice's financial year" in out
    assert audit_steps(storage)[1]["kept"]["last_kept_until"] == "2036-12-31"
    code, lines = sar.run_sar(storage, tmp_path / "sar", customer_id=GONE, language="en")
    assert code == 0
    invoices = json.loads(Path(lines[0]).read_text("utf-8"))["erasure"]["retained_invoices"]
    assert [i["kept_until"] for i in invoices["items"]] == ["2036-12-31"] and invoices["kept_until"] == "2036-12-31"
    assert invoices["retention"]["period"] == {"years": 10} and invoices["retention"]["period_source"].startswith(
        "marketing_policy.yaml"
    )
    assert "2036-12-31" in Path(lines[1]).read_text("utf-8")

    for day, kept in ((dt.date(2033, 1, 1), 1), (dt.date(2036, 12, 31), 1), (dt.date(2037, 1, 1), 0)):
        removed = run_retention(storage, day)
        with storage.warehouse(read_only=True) as conn:
            assert conn.sql("select count(*) from invoices_retained").fetchall() == [(kept,)], day
        assert f"| `invoices retained after erasure` | {1 - kept} |" in removed, (day, removed)
