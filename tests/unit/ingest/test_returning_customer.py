"""The suppression rule at the ingest step (docs/privacy.md, "A returning customer").

A suppression record keeps the erased relationship out and lets the same person's new one in: a CRM
row with a customer id that is not erased and a `customer_since` after the erasure, valid or
quarantined, and a register row delivered after the erasure for a person the CRM holds again.
"""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from assets.storage import suppression
from assets.storage.ingestion import read_source
from assets.storage.zones import LupaStorage
from data_contracts import sources
from tests.landing_builder import make_hetu, person, write

ERASED_ON = dt.date(2026, 11, 20)
HETU = make_hetu("010190", "-", 123)
OTHER = make_hetu("010105", "A", 456)
ERASED_ID = "C0000009"


@pytest.fixture
def storage(tmp_path, monkeypatch):
    monkeypatch.setenv("LUPA_PSEUDONYM_KEY", "test-key-" + "0" * 32)
    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))
    suppression.add(storage.warehouse_dir, [ERASED_ID, HETU], pl.DataFrame(schema=suppression.POINTS_SCHEMA), ERASED_ON)
    return storage


def test_crm_rows_of_the_code_pass_only_for_a_new_customer_id_begun_after_the_erasure(storage):
    write(
        storage.landing,
        "customers",
        "20261124",
        [
            person(ERASED_ID, HETU, customer_since="2026-11-22"),  # the erased id: never, whatever its date
            person("C0000001", HETU, customer_since="2020-01-01"),  # the old relationship under another id
            person("C0000002", HETU, customer_since=ERASED_ON.isoformat()),  # the erasure's own day: old
            person("C0000003", HETU.lower(), customer_since="2026-11-21"),  # new (any spelling)
            person("C0000004", HETU, customer_since="2026-11-21", language="de"),  # new, quarantined
            person("C0000005", HETU, customer_since="2019-01-01", language="de"),  # old, quarantined
            person("C0000006", OTHER),  # someone else
        ],
    )
    outcome = read_source(storage, sources.customers, dt.date(2026, 11, 23))
    assert outcome.valid["customer_id"].to_list() == ["C0000003", "C0000006"]
    assert outcome.quarantine["line"].to_list() == [6]  # C0000004's, with its rule
    assert outcome.quarantine["rule"].to_list() == ["language_unknown_code"]
    assert outcome.rows_suppressed == 4
    assert outcome.rows_read == outcome.rows_valid + outcome.rows_quarantined + outcome.rows_suppressed


@pytest.mark.parametrize(
    "delivery, held, kept",
    [
        pytest.param("20261121", True, True, id="delivered after the erasure, a customer again"),
        pytest.param("20261120", True, False, id="delivered on the erasure's day"),
        pytest.param("20261115", True, False, id="delivered before the erasure"),
        pytest.param("20261121", False, False, id="delivered after, but not a customer again"),
    ],
)
def test_a_register_row_of_the_code_passes_only_when_delivered_after_the_erasure_for_a_customer_again(
    storage, delivery, held, kept
):
    write(storage.landing, "population", delivery, [f"{HETU};;0;0;Paluukatu 5;00100;Helsinki;2026-11-15"])
    write(storage.landing, "population", "20261110", [f"{OTHER};;0;0;;;;2026-11-01"])
    codes = pl.Series([HETU, OTHER] if held else [OTHER])
    outcome = read_source(storage, sources.population, dt.date(2026, 11, 23), customer_codes=codes)
    assert (HETU in outcome.valid["personal_id"].to_list()) is kept
    assert OTHER in outcome.valid["personal_id"].to_list()
    assert outcome.rows_suppressed == (0 if kept else 1)


def test_a_quarantined_register_row_of_a_returning_customer_is_kept(storage):
    write(storage.landing, "population", "20261121", [f"{HETU};;2;0;;;;2026-11-15"])  # marketing_ban=2
    kept = read_source(storage, sources.population, dt.date(2026, 11, 23), customer_codes=pl.Series([HETU]))
    gone = read_source(storage, sources.population, dt.date(2026, 11, 23), customer_codes=pl.Series([OTHER]))
    assert kept.quarantine.height == 1 and gone.quarantine.height == 0 and gone.rows_suppressed == 1


def test_a_suppression_record_erased_twice_is_dated_by_the_latest_erasure(storage):
    points = pl.DataFrame(schema=suppression.POINTS_SCHEMA)
    suppression.add(storage.warehouse_dir, [HETU], points, dt.date(2026, 11, 22))
    assert suppression.load(storage.warehouse_dir).erased_date(HETU) == dt.date(2026, 11, 22)


def test_a_suppression_record_without_a_date_lets_no_new_relationship_through(storage):
    """Records are always written with a date; one without (a hand-made or damaged file), and with no
    audit entry to date it, keeps the old, stricter rule: every row of the code stays out."""
    path = suppression.suppression_dir(storage.warehouse_dir) / "subjects.parquet"
    pl.read_parquet(path).with_columns(pl.lit(None, dtype=pl.Date).alias("erased_on")).write_parquet(path)
    write(storage.landing, "customers", "20261124", [person("C0000003", HETU, customer_since="2026-11-21")])
    assert read_source(storage, sources.customers, dt.date(2026, 11, 23)).valid.is_empty()


def test_a_suppression_record_without_a_date_takes_it_from_the_erasure_audit_log(storage):
    path = suppression.suppression_dir(storage.warehouse_dir) / "subjects.parquet"
    pl.read_parquet(path).with_columns(pl.lit(None, dtype=pl.Date).alias("erased_on")).write_parquet(path)
    log = storage.warehouse_dir / "audit" / "erasures.jsonl"
    log.parent.mkdir(parents=True)
    entry = {
        "step": "suppressed",
        "subject": suppression.pseudonym(ERASED_ID),
        "erased_on": ERASED_ON.isoformat(),
        "identity_code_pseudonyms": [suppression.pseudonym(HETU)],
    }
    log.write_text(json.dumps(entry) + "\n")
    assert suppression.load(storage.warehouse_dir).erased_date(HETU) == ERASED_ON
    write(storage.landing, "customers", "20261124", [person("C0000003", HETU, customer_since="2026-11-21")])
    assert read_source(storage, sources.customers, dt.date(2026, 11, 23)).valid["customer_id"].to_list() == ["C0000003"]
