"""The mart is replaced atomically: a failed or killed build leaves yesterday's mart readable."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import polars as pl
import pytest

from assets.mart import mart_path, publish, read_published


def tables(n: int) -> dict[str, pl.DataFrame]:
    return {
        "audience_email": pl.DataFrame({"customer_id": [f"C{i:07d}" for i in range(n)], "email": [f"ä{i}@example.fi" for i in range(n)]}),
        "segment_catalogue": pl.DataFrame({"segment_id": [1], "name_fi": ["Kerrostaloasunto"]}),
    }


def test_publish_writes_duckdb_parquet_and_excel_csv(tmp_path):
    counts = publish(tmp_path, tables(3), tag="2026-11-23")
    assert counts == {"audience_email": 3, "segment_catalogue": 1}
    assert read_published(tmp_path, "audience_email").height == 3
    exports = tmp_path / "exports"
    assert exports.is_symlink()
    assert pl.read_parquet(exports / "audience_email.parquet").height == 3
    raw = (exports / "audience_email.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfcustomer_id;email\n") and "ä0@example.fi".encode() in raw
    assert not (exports / "segment_catalogue.csv").exists()  # CSVs are for mailing houses only


def test_a_failed_validation_leaves_the_previous_mart_in_place(tmp_path):
    publish(tmp_path, tables(3), tag="day1")

    def refuse(path):
        raise RuntimeError("policy check failed")

    with pytest.raises(RuntimeError):
        publish(tmp_path, tables(5), tag="day2", validate=refuse)
    assert read_published(tmp_path, "audience_email").height == 3
    assert pl.read_parquet(tmp_path / "exports" / "audience_email.parquet").height == 3
    assert not list(tmp_path.glob(".marketing-*"))


def test_a_reader_never_blocks_the_writer(tmp_path):
    publish(tmp_path, tables(3), tag="day1")
    reader = duckdb.connect(str(mart_path(tmp_path)), read_only=True)
    try:
        publish(tmp_path, tables(4), tag="day2")  # a new file is renamed over the one being read
        assert reader.sql("select count(*) from audience_email").fetchall()[0][0] == 3
    finally:
        reader.close()
    assert read_published(tmp_path, "audience_email").height == 4


def test_killing_the_build_midway_leaves_the_previous_mart_intact(tmp_path):
    publish(tmp_path, tables(3), tag="day1")
    script = textwrap.dedent(f"""
        import time, polars as pl
        from pathlib import Path
        from assets.mart import publish
        big = {{"audience_email": pl.DataFrame({{"customer_id": [f"C{{i:07d}}" for i in range(200_000)], "email": ["x@example.fi"] * 200_000}})}}
        publish(Path({str(tmp_path)!r}), big, tag="day2", before_swap=lambda: (print("ready", flush=True), time.sleep(60)))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    assert proc.stdout.readline().strip() == "ready"  # everything staged, about to swap
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert read_published(tmp_path, "audience_email").height == 3
    assert pl.read_parquet(tmp_path / "exports" / "audience_email.parquet").height == 3
    # the next successful run cleans up what the killed one staged
    publish(tmp_path, tables(4), tag="day2")
    assert read_published(tmp_path, "audience_email").height == 4
    # the previous exports stay one more run for readers that resolved the old link
    assert sorted(p.name for p in (tmp_path / "mart_exports").iterdir()) == ["day1", "day2"]
    assert not list(tmp_path.glob(".marketing-*"))
