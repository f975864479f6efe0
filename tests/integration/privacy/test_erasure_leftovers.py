"""What erasure used to leave behind: stored access reports, quarantined metering records of the
customer's point periods, and audience history. Erasure removes them, and says how many."""

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.privacy import report_files
from assets.privacy.erasure import erase
from assets.storage.metering import ingest_delivery, quarantine_root
from pipelines.commands import sar
from tests.dagster_helpers import run_day, storage_for
from tests.integration.privacy.test_erasure import RETENTION_PERIODS
from tests.landing_builder import GSRN1, GSRN2, make_hetu, metering_row, person, write

D = dt.date(2026, 11, 23)
KEEP, GONE = "C0000001", "C0000002"
GONE_HETU = make_hetu("150380", "-", 202)
REPO = Path(__file__).resolve().parents[3]


def landing(storage) -> None:
    delivery = "20261124"
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
    start = dt.datetime.combine(D, dt.time(), dt.timezone.utc) - dt.timedelta(hours=2)
    hours = [
        metering_row(g, (start + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        for g in (GSRN1, GSRN2)
        for h in range(24)
    ]
    write(
        storage.landing,
        "metering",
        delivery,
        hours
        + [
            metering_row(
                GSRN2, "2026-11-23T05:00:00Z", quantity="paljon"
            ),  # the erased customer's point, in their contract period
            metering_row(GSRN2, "eilen", quantity="paljon"),  # no readable time: dated by its delivery, in the period
            metering_row(GSRN2, "2023-06-01T05:00:00Z", quantity="paljon"),  # before their contract: not theirs
            metering_row(GSRN1, "2026-11-23T05:00:00Z", quantity="paljon"),  # another customer's point
        ],
    )


def quarantined_metering(storage) -> list[str]:
    return sorted(
        r for p in quarantine_root(storage).glob("delivery=*.parquet") for r in pl.read_parquet(p)["raw"].to_list()
    )


@pytest.fixture
def day_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LUPA_VAR_DIR", str(tmp_path / "var"))
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    return storage


def test_erasure_deletes_the_customers_stored_access_reports_and_counts_them(day_run, tmp_path):
    storage = day_run
    reports = report_files.default_reports_dir()
    assert reports == tmp_path / "var" / "access_reports"
    for cid in (GONE, KEEP):
        code, lines = sar.run_sar(storage, reports, customer_id=cid, default_out=True)
        assert code == 0, lines
    code, lines = sar.run_sar(storage, reports, personal_id=GONE_HETU, default_out=True)  # asked by identity code
    assert code == 0, lines
    # written before reports were named by pseudonym: the customer id in the name
    (reports / f"access_report_{GONE}_20261101T090000Z.json").write_text("{}")
    names = sorted(p.name for p in reports.iterdir())
    assert len(names) == 7
    assert not any(v in n for n in names if not n.startswith(f"access_report_{GONE}_") for v in (GONE, KEEP, GONE_HETU))
    assert "Poistuva" in "".join(p.read_text("utf-8") for p in reports.iterdir())

    record = erase(storage, GONE, D + dt.timedelta(days=1), RETENTION_PERIODS)
    assert record["rows_removed"]["access_report_files"] == 5  # two reports (json + html each) and the old one
    left = list(reports.iterdir())
    assert len(left) == 2 and all(report_files.report_key(KEEP) in p.name for p in left)
    assert "Poistuva" not in "".join(p.read_text("utf-8") for p in left)


def test_lupa_erase_prints_how_many_access_reports_it_deleted(day_run, tmp_path):
    storage = day_run
    env = os.environ | {
        "LUPA_LANDING_DIR": str(storage.landing),
        "LUPA_DATA_DIR": str(storage.root),
        "LUPA_VAR_DIR": str(tmp_path / "var"),
        "LUPA_ENV": "demo",
    }
    lupa = str(REPO / ".venv/bin/lupa")
    made = subprocess.run(
        [lupa, "sar", "--customer-id", GONE], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert made.returncode == 0, made.stderr
    done = subprocess.run(
        [lupa, "erase", "--customer-id", GONE], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    counts = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines() if line.startswith("  ")}
    assert counts["access_report_files"] == "2" and counts["metering_quarantine_rows"] == "2"
    assert list((tmp_path / "var" / "access_reports").iterdir()) == []


def test_erasure_compacts_the_customers_quarantined_metering_records_within_their_contract_period(day_run):
    storage = day_run
    before = quarantined_metering(storage)
    assert len(before) == 4 and sum(GSRN2 in r for r in before) == 3

    record = erase(storage, GONE, D + dt.timedelta(days=1), RETENTION_PERIODS)
    assert record["rows_removed"]["metering_quarantine_rows"] == 2
    after = quarantined_metering(storage)
    assert [r for r in after if GSRN2 in r] == [metering_row(GSRN2, "2023-06-01T05:00:00Z", quantity="paljon")]
    assert [r for r in after if GSRN1 in r] == [metering_row(GSRN1, "2026-11-23T05:00:00Z", quantity="paljon")]
    for path in quarantine_root(storage).glob("delivery=*.parquet"):
        assert oct(path.stat().st_mode & 0o777) == "0o600"

    # a backfill of the day ingests the delivery again, quarantine included: ingestion itself keeps
    # the erased point periods out (a metering-only run has no retention step), and so does the daily run
    outcome = ingest_delivery(storage, D)
    assert quarantined_metering(storage) == after
    assert outcome.rows_read == outcome.rows_valid + outcome.rows_quarantined + outcome.rows_suppressed
    assert run_day(storage, D).success
    assert quarantined_metering(storage) == after


def test_erased_customers_rows_are_gone_from_audience_history(day_run):
    storage = day_run
    sql = "select count(*) from audience_history where customer_id = $c"
    with storage.warehouse(read_only=True) as conn:
        assert conn.sql(sql, params={"c": GONE}).fetchall()[0][0] > 0
    record = erase(storage, GONE, D + dt.timedelta(days=1), RETENTION_PERIODS)
    assert record["rows_removed"]["audience_history"] > 0
    conn = duckdb.connect(str(storage.warehouse_path), read_only=True)
    try:
        assert conn.sql(sql, params={"c": GONE}).fetchall()[0][0] == 0
        assert conn.sql(sql, params={"c": KEEP}).fetchall()[0][0] > 0
    finally:
        conn.close()
    # and the next day's run does not bring them back into it
    assert run_day(storage, D + dt.timedelta(days=1)).success
    with storage.warehouse(read_only=True) as conn:
        assert conn.sql(sql, params={"c": GONE}).fetchall()[0][0] == 0
        assert (
            conn.sql(sql.replace("count(*)", "count(distinct business_day)"), params={"c": KEEP}).fetchall()[0][0] == 2
        )


def test_stored_reports_are_found_by_pseudonym_only_in_the_given_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("LUPA_PSEUDONYM_KEY", "test-key")
    folder = tmp_path / "reports"
    folder.mkdir()
    from assets.storage import suppression

    mine = folder / f"access_report_{report_files.report_key(GONE)}_20261124T100000Z.json"
    theirs = folder / f"access_report_{report_files.report_key(KEEP)}_20261124T100000Z.json"
    for p in (mine, theirs, folder / "notes.txt"):
        p.write_text("x")
    assert report_files.stored_reports(folder, [suppression.pseudonym(GONE)], [GONE]) == [mine]
    assert report_files.delete_stored_reports([suppression.pseudonym(GONE)], [GONE], out_dir=folder) == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted([theirs.name, "notes.txt"])
    shutil.rmtree(folder)
    assert report_files.delete_stored_reports([suppression.pseudonym(GONE)], out_dir=folder) == 0
