"""Re-running a business day republishes exactly the same mart (issue: orchestration, the daily run)."""

from __future__ import annotations

import hashlib
import shutil

import duckdb

from assets.storage.mart import exports_link
from tests.conftest import GENERATED_END
from tests.dagster_helpers import run_day, storage_for


def mart_contents(mart_dir) -> dict[str, object]:
    """Every table of the published mart, row for row in a stable order, plus the bytes of every CSV and XLSX export."""
    conn = duckdb.connect(str(mart_dir / "marketing.duckdb"), read_only=True)
    try:
        tables = [
            name for (name,) in conn.sql("select table_name from information_schema.tables order by 1").fetchall()
        ]
        contents: dict[str, object] = {
            t: sorted(map(repr, conn.sql(f'select * from "{t}"').fetchall())) for t in tables
        }
    finally:
        conn.close()
    exports = exports_link(mart_dir).resolve()  # the exports the link points at
    for export in [*sorted(exports.glob("*.csv")), *sorted(exports.glob("*.xlsx"))]:
        contents[f"exports/{export.name}"] = hashlib.sha256(export.read_bytes()).hexdigest()
    return contents


def test_rerunning_a_day_republishes_identical_tables(generated_pipeline, tmp_path):
    # a copy of the session's pipeline, so that the re-run does not change what other tests read
    for part in ("landing", "data"):
        shutil.copytree(generated_pipeline.root / part, tmp_path / part)
    storage = storage_for(tmp_path)
    mart_dir = (tmp_path / "data" / "marketing.duckdb").parent
    before = mart_contents(mart_dir)
    assert len([t for t in before if t.startswith("audience_")]) >= 5 and any(k.endswith(".csv") for k in before)

    assert run_day(storage, GENERATED_END).success

    after = mart_contents(mart_dir)
    assert after.keys() == before.keys()
    assert [t for t in before if after[t] != before[t]] == []
