"""Erasure removes a customer everywhere and keeps them out; objections take effect in the next run."""

import datetime as dt
import json
import os

import duckdb
import polars as pl
import pytest

from assets import suppression
from assets.mart import read_published
from assets.metering import daily_root
from pipelines.erasure import UnknownCustomer, audit_log, erase
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import GSRN1, GSRN2, make_hetu, metering_row, person, write

D = dt.date(2026, 11, 23)
KEEP, GONE = "C0000001", "C0000002"
GONE_HETU = make_hetu("150380", "-", 202)


def landing(storage, delivery="20261124", day=D):
    write(storage.landing, "customers", delivery, [
        person(KEEP, make_hetu("150380", "-", 201), first_name="Pysyvä", email="keep@example.fi"),
        person(GONE, GONE_HETU, first_name="Poistuva", last_name="Asiakas", email="gone@example.fi", street_address="Poistotie 9"),
    ])
    write(storage.landing, "contracts", delivery, [
        f"K1;{KEEP};{GSRN1};SPOT;open_ended;2024-01-01;;apartment;district",
        f"K2;{GONE};{GSRN2};FIXED24;fixed_term;2024-01-01;2026-12-31;apartment;district",
    ])
    write(storage.landing, "consents", delivery, [f"E{c};{c};marketing;email;granted;2026-01-01T10:00:00Z;web_form;v3;f-{c}" for c in (KEEP, GONE)])
    write(storage.landing, "billing", delivery, [f"I{c};{c};K;2026-10-01;2026-10-15;50,00;2026-10-10;0;0" for c in (KEEP, GONE)])
    write(storage.landing, "population", delivery, [f"{GONE_HETU};;0;0;Uusitie 1;00100;Helsinki;2026-11-01"])
    start = dt.datetime.combine(day, dt.time(), dt.timezone.utc) - dt.timedelta(hours=2)
    write(storage.landing, "metering", delivery, [
        metering_row(g, (start + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")) for g in (GSRN1, GSRN2) for h in range(24)
    ])


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
    record = erase(storage, GONE, dt.date(2026, 11, 24))
    return storage, record


def test_erasure_removes_the_customer_from_every_zone_but_keeps_invoices_restricted(erased):
    storage, record = erased
    conn = duckdb.connect(str(storage.warehouse_path), read_only=True)
    try:
        retained = conn.sql("select customer_id, retention_basis from invoices_retained").fetchall()
        assert retained == [(GONE, record["kept"]["basis"])]
        assert conn.sql("select count(*) from invoices where customer_id = $c", params={"c": GONE}).fetchall() == [(0,)]
    finally:
        conn.close()
    text = everything_text(storage).replace(json.dumps(record, sort_keys=True), "")
    for value in ("Poistuva", "gone@example.fi", "Poistotie 9", "Uusitie 1", GONE_HETU):
        assert value not in text
    assert read_published(storage.root, "audience_email")["customer_id"].to_list() == [KEEP]
    daily = pl.read_parquet(daily_root(storage) / f"business_day={D}" / "part.parquet")
    assert daily["metering_point_id"].to_list() == [GSRN1]


def test_audit_record_holds_no_personal_data(erased):
    storage, record = erased
    line = audit_log(storage).read_text().strip()
    for value in (GONE, GONE_HETU, "Poistuva", "gone@example.fi"):
        assert value not in line
    assert json.loads(line)["subject"] == suppression.pseudonym(GONE)
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
        assert GSRN2 not in pl.read_parquet(daily_root(storage) / f"business_day={day}" / "part.parquet")["metering_point_id"].to_list()


def test_erasing_an_unknown_customer_is_a_clear_answer(tmp_path):
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    with pytest.raises(UnknownCustomer, match="C0000099 is not held"):
        erase(storage, "C0000099", D)


def test_a_withdrawal_arriving_in_the_landing_zone_takes_effect_in_the_next_run(tmp_path):
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    assert GONE in read_published(storage.root, "audience_email")["customer_id"].to_list()
    write(storage.landing, "consents", "20261125", [f"W1;{GONE};marketing;;withdrawn;2026-11-24T09:00:00+02:00;customer_service;v3;call-1"])
    assert run_day(storage, D + dt.timedelta(days=1)).success
    for channel in ("email", "sms", "letter", "phone"):
        assert GONE not in read_published(storage.root, f"audience_{channel}")["customer_id"].to_list()
    reasons = read_published(storage.root, "audience_exclusions").filter(customer_id=GONE)["reason"].unique().to_list()
    assert "consent_withdrawn" in reasons
