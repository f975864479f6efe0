"""After a full pipeline run on generated data, no personal data is anywhere it does not belong.

Scanned: everything Dagster stored (event log messages and metadata, run config and tags, asset
check results, captured stdout/stderr), every published file, and the zone permissions.
"""

import os
import stat
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest
from dagster import DagsterEventType, EventRecordsFilter

from data_contracts.identifiers import find_personal_ids

SCANNED_KINDS = ("personal_id", "email", "phone", "phone_e164", "street_address")


@pytest.fixture(scope="module")
def pipeline_run(generated_pipeline):
    pii = pl.read_csv(generated_pipeline.root / "truth" / "pii.csv", separator=";", infer_schema=False)
    values = sorted({v for k, v in pii.select("kind", "value").rows() if k in SCANNED_KINDS and v and len(v) >= 6})
    return generated_pipeline.storage, generated_pipeline.instance, generated_pipeline.root, values


def _hits(text: str, values: list[str]) -> list[str]:
    return [v for v in values if v in text]


def test_the_generated_people_are_really_in_the_data(pipeline_run):
    storage, _, _, values = pipeline_run
    conn = duckdb.connect(str(storage.warehouse_path), read_only=True)
    try:
        text = conn.sql("select * from customers").pl().write_csv()
    finally:
        conn.close()
    assert len(_hits(text, values)) > 100  # the scan below would catch them if they leaked


def test_the_generated_prospects_are_really_in_the_data_and_in_the_scan(pipeline_run, generated_pipeline):
    """The scans below cover prospects too: their identity codes, emails, phones and addresses are in
    the ground truth (keyed by prospect id) and in the warehouse's prospect tables."""
    storage, _, _, values = pipeline_run
    pii = pl.read_csv(generated_pipeline.root / "truth" / "pii.csv", separator=";", infer_schema=False)
    prospect_values = {
        v for who, k, v in pii.rows() if (who or "").startswith("P") and k in SCANNED_KINDS and v and len(v) >= 6
    }
    assert prospect_values and prospect_values <= set(values)
    conn = duckdb.connect(str(storage.warehouse_path), read_only=True)
    try:
        text = conn.sql("select * from prospects_valid").pl().write_csv()
    finally:
        conn.close()
    assert len(_hits(text, sorted(prospect_values))) > 20


def test_dagster_event_log_run_config_tags_and_checks_hold_no_personal_data(pipeline_run):
    _, instance, _, values = pipeline_run
    chunks = []
    for run in instance.get_runs():
        chunks += [repr(run.run_config), repr(run.tags)]
        for entry in instance.all_logs(run.run_id):
            chunks.append(entry.user_message or "")
            if entry.dagster_event is not None:
                chunks.append(repr(entry.dagster_event.event_specific_data))
    checks = instance.get_event_records(EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION))
    chunks += [repr(r.event_log_entry.dagster_event.event_specific_data) for r in checks]
    assert checks, "asset check results were recorded"
    text = "\n".join(chunks)
    assert "ASSET_MATERIALIZATION" in text or "rows_read" in text
    assert _hits(text, values) == []
    assert find_personal_ids(text) == []


def test_captured_stdout_and_stderr_hold_no_personal_data(pipeline_run):
    _, _, root, values = pipeline_run
    logs = [
        p
        for p in (root / "dagster").rglob("*")
        if p.is_file() and p.suffix in (".out", ".err", ".complete", ".log", "")
    ]
    text = "\n".join(
        p.read_text(errors="replace") for p in logs if p.stat().st_size < 50_000_000 and "storage" not in p.parts[-2:]
    )
    assert _hits(text, values) == []


def published_files(storage) -> list[Path]:
    exports = storage.root / "exports"
    campaigns = storage.root / "campaign_exports"
    return [
        storage.root / "marketing.duckdb",
        *sorted(exports.resolve().iterdir()),
        *sorted((storage.root / "reports").iterdir()),
        *(sorted(p for p in campaigns.rglob("*") if p.is_file()) if campaigns.exists() else []),
    ]


def test_every_published_file_and_column_is_free_of_identity_codes(pipeline_run):
    storage, _, _, _ = pipeline_run
    scanned = 0
    for path in published_files(storage):
        if path.suffix == ".duckdb":
            conn = duckdb.connect(str(path), read_only=True)
            try:
                frames = [
                    conn.sql(f'select * from "{t}"').pl()
                    for (t,) in conn.sql("select table_name from duckdb_tables()").fetchall()
                ]
            finally:
                conn.close()
        elif path.suffix == ".parquet":
            frames = [pl.read_parquet(path)]
        elif path.suffix == ".csv":
            frames = [pl.read_csv(path, separator=";", infer_schema=False)]
        elif path.suffix == ".xlsx":
            sheet = openpyxl.load_workbook(path, read_only=True).active
            rows = [[None if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            frames = [pl.DataFrame(rows[1:], schema=[str(h) for h in rows[0]], orient="row")]
        else:
            frames = [pl.DataFrame({"text": [path.read_text(encoding="utf-8")]})]
        for frame in frames:
            assert frame.columns == [c for c in frame.columns if "personal_id" not in c]
            for column in frame.columns:
                text = "\n".join(v for v in frame[column].cast(pl.String).to_list() if v)
                assert find_personal_ids(text) == [], (path.name, column)
                scanned += 1
    assert scanned > 50


def test_zones_are_owner_only_except_the_mart(pipeline_run):
    storage, _, _, _ = pipeline_run
    for zone in ("warehouse", "analytics"):
        root = storage.root / zone
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), (str(path.relative_to(storage.root)), oct(mode))
    assert stat.S_IMODE(os.stat(storage.root / "marketing.duckdb").st_mode) & 0o044  # the mart is shared
