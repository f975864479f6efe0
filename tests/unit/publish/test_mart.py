"""The mart is replaced atomically: a failed or killed build leaves yesterday's mart readable."""

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap

import duckdb
import polars as pl
import pytest

from assets.storage.mart import NewerMartPublished, mart_path, publish, published_as_of, read_published


def tables(n: int) -> dict[str, pl.DataFrame]:
    return {
        "audience_email": pl.DataFrame(
            {"customer_id": [f"C{i:07d}" for i in range(n)], "email": [f"ä{i}@example.fi" for i in range(n)]}
        ),
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
        from assets.storage.mart import publish
        ids = [f"C{{i:07d}}" for i in range(200_000)]
        big = {{"audience_email": pl.DataFrame({{"customer_id": ids, "email": ["x@example.fi"] * 200_000}})}}
        wait = lambda: (print("ready", flush=True), time.sleep(60))
        publish(Path({str(tmp_path)!r}), big, tag="day2", before_swap=wait)
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


def test_publish_removes_what_a_killed_publish_of_another_tag_staged(tmp_path):
    publish(tmp_path, tables(3), tag="day1")
    # a killed run of another tag (or an erasure) left a full copy of the mart and its WAL behind
    for name in (
        ".marketing-day0.duckdb",
        ".marketing-day0.duckdb.wal",
        ".marketing-erasure-2026-11-24-abcd1234.duckdb",
    ):
        (tmp_path / name).write_bytes(b"staged")
    publish(tmp_path, tables(4), tag="day2")
    assert not list(tmp_path.glob(".marketing-*"))
    assert read_published(tmp_path, "audience_email").height == 4


def test_a_failed_publish_also_removes_stale_staged_files(tmp_path):
    publish(tmp_path, tables(3), tag="day1")
    (tmp_path / ".marketing-day0.duckdb").write_bytes(b"staged")

    def refuse(path):
        raise RuntimeError("policy check failed")

    with pytest.raises(RuntimeError):
        publish(tmp_path, tables(5), tag="day2", validate=refuse)
    assert not list(tmp_path.glob(".marketing-*"))
    assert read_published(tmp_path, "audience_email").height == 3


def test_the_erasure_republication_removes_stale_staged_files(tmp_path, monkeypatch):
    from assets.privacy.erasure import _republish_mart
    from assets.storage.zones import LupaStorage

    monkeypatch.setenv("LUPA_PSEUDONYM_KEY", "test-key-" + "0" * 32)
    publish(tmp_path, tables(3), tag="day1")
    (tmp_path / ".marketing-day0.duckdb").write_bytes(b"staged")
    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path))
    removed = _republish_mart(storage, ["C0000001"], dt.date(2026, 11, 25))
    assert removed == {"C0000001": {"mart.audience_email": 1}}
    assert not list(tmp_path.glob(".marketing-*"))
    assert read_published(tmp_path, "audience_email").height == 2


def dated(n: int, day: dt.date) -> dict[str, pl.DataFrame]:
    return {"audience_email": tables(n)["audience_email"].with_columns(pl.lit(day).alias("as_of"))}


def test_a_mart_of_an_older_day_never_replaces_a_later_one(tmp_path):
    later = dt.date(2026, 11, 24)
    publish(tmp_path, dated(3, later), tag=later.isoformat(), as_of=later)
    assert published_as_of(tmp_path) == later
    (tmp_path / ".marketing-stale.duckdb").write_bytes(b"staged")
    with pytest.raises(NewerMartPublished) as refused:
        publish(tmp_path, dated(5, later - dt.timedelta(days=1)), tag="2026-11-23", as_of=later - dt.timedelta(days=1))
    assert refused.value.kept_as_of == later
    assert read_published(tmp_path, "audience_email").height == 3
    assert not list(tmp_path.glob(".marketing-*"))  # stale staging is still cleaned
    assert sorted(p.name for p in (tmp_path / "mart_exports").iterdir()) == [later.isoformat()]
    # the same day, or a later one, is published
    publish(tmp_path, dated(4, later), tag=later.isoformat(), as_of=later)
    assert read_published(tmp_path, "audience_email").height == 4
    publish(tmp_path, dated(6, later + dt.timedelta(days=1)), tag="2026-11-25", as_of=later + dt.timedelta(days=1))
    assert published_as_of(tmp_path) == later + dt.timedelta(days=1)


def test_published_as_of_is_none_without_a_mart_or_dated_rows(tmp_path):
    assert published_as_of(tmp_path) is None
    publish(tmp_path, tables(2), tag="day1")
    assert published_as_of(tmp_path) is None
