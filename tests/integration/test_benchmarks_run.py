"""The benchmarks still run, at a tiny size, and their own correctness checks hold.

These are not timed: the figures a benchmark reports go to docs/benchmarks.md, measured at full
size. This only keeps the benchmark code from rotting between those runs.
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(module: str, args: list[str], tmp_path: Path) -> dict:
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, "-m", module, *args, "--dir", str(tmp_path / "scratch"), "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def test_metering_ingest_benchmark_runs_and_its_quarantine_and_row_counts_hold(tmp_path):
    result = run_benchmark("benchmarks.metering_ingest", ["--points", "500"], tmp_path)
    ingest, delivery = result["ingest"], result["delivery"]
    assert result["quarantine_as_expected"]
    assert ingest["rows_read"] == delivery["rows"] == 48_000
    assert (
        ingest["rows_read"]
        == ingest["rows_valid"] + ingest["rows_quarantined"]
        == ingest["stored_valid"] + ingest["stored_quarantined"]
    )
    assert ingest["daily_rows"] == 500
    assert result["duckdb"]["rows_grouped"] > 0 and 0 < result["ratio"]
    # the DuckDB-only ceiling stores the same file without validating it: the broken rows (a wrong
    # check digit makes another point) may add a few point-days, never lose one
    assert 500 <= result["duckdb_store"]["daily_rows"] <= 500 + delivery["bad_rows"] and 0 < result["ceiling_ratio"]


def test_audience_benchmark_runs_on_a_small_tier(tmp_path):
    result = run_benchmark("benchmarks.audience_scale", ["--customers", "3000"], tmp_path)
    best = result["best"]
    assert result["data"]["customers"] == 3000
    assert best["violations"] == 0 and best["personal_id_in"] == []
    assert all(best["audience_sizes"][c] > 0 for c in ("email", "sms", "letter", "phone"))
    assert set(best["exclusions_by_reason"]) >= {"consent_missing", "consent_withdrawn", "company", "minor", "deceased"}
    assert not (tmp_path / "scratch").exists() or not any((tmp_path / "scratch").rglob("*.parquet"))  # cleaned up


def test_profiling_benchmark_runs_and_lupa_agrees_with_the_plain_pandas_features(tmp_path):
    result = run_benchmark(
        "benchmarks.profiling_scale", ["--customers", "600", "--pandas-customers", "400", "--no-extras"], tmp_path
    )
    agreement = result["comparison"]["agreement"]
    assert agreement["agree"] and agreement["disagreeing_columns"] == []
    assert agreement["rows_lupa"] == agreement["rows_pandas"] == 400 and agreement["customers_only_in_one"] == 0
    assert set(result["phases"]) == {"features", "segmentation"}
