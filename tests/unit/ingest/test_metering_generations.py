"""Write-then-commit of a delivery's reading parts (docs/decisions.md §37), on the local lake.

A delivery's parts carry a generation; its manifest names the committed one. Readers use only
that generation, so a half-written set (a writer killed before the manifest) is never read, and a
re-run replaces the whole set. Parts from before generations stay readable.
"""

import datetime as dt
import json

import polars as pl

from assets.storage.metering import (
    aggregate_day,
    daily_aggregates,
    ingest_delivery,
    manifest_root,
    readings_root,
    stored_rows,
)
from assets.storage.metering_parts import Manifests, part_generation
from assets.storage.zones import LupaStorage
from tests.landing_builder import GSRN1, metering_row, write

DAY = dt.date(2026, 11, 23)
DELIVERY = "20261124"
HOURS = [f"2026-11-{22 + (22 + h) // 24}T{(22 + h) % 24:02d}:00:00Z" for h in range(24)]


def storage_in(tmp_path) -> LupaStorage:
    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))
    write(storage.landing, "metering", DELIVERY, [metering_row(GSRN1, t) for t in HOURS])
    return storage


def parts(storage: LupaStorage) -> list:
    return sorted((readings_root(storage) / f"business_day={DAY}").glob("*.parquet"))


def kwh(storage: LupaStorage) -> float:
    aggregate_day(storage, DAY, DAY + dt.timedelta(days=1))
    return daily_aggregates(storage).collect()["kwh_total"].sum()


def test_the_manifest_commits_the_generation_its_parts_carry(tmp_path):
    storage = storage_in(tmp_path)
    ingest_delivery(storage, DAY)
    manifest = json.loads((manifest_root(storage) / f"delivery={DELIVERY}.json").read_text())
    assert {part_generation(p) for p in parts(storage)} == {manifest["generation"]}
    assert kwh(storage) == 12.0  # 24 hours × 0.5 kWh


def test_an_uncommitted_generation_is_not_read_and_the_next_run_removes_it(tmp_path):
    storage = storage_in(tmp_path)
    ingest_delivery(storage, DAY)
    (committed,) = parts(storage)
    stray = committed.with_name(f"delivery={DELIVERY}-g0000000000000dead00-0000.parquet")
    stray.write_bytes(committed.read_bytes())  # a writer killed after its upload, before its commit
    assert kwh(storage) == 12.0 and stored_rows(storage, dt.date(2026, 11, 24))[0] == 24

    ingest_delivery(storage, DAY)
    (now,) = parts(storage)
    assert now != committed and not stray.exists() and kwh(storage) == 12.0


def test_parts_written_before_generations_are_still_read(tmp_path):
    storage = storage_in(tmp_path)
    ingest_delivery(storage, DAY)
    (part,) = parts(storage)
    legacy = part.with_name(f"delivery={DELIVERY}-0000.parquet")  # the old naming, and a manifest without generation
    part.rename(legacy)
    manifest = manifest_root(storage) / f"delivery={DELIVERY}.json"
    record = json.loads(manifest.read_text())
    del record["generation"]
    manifest.write_text(json.dumps(record))
    assert part_generation(legacy) is None
    assert kwh(storage) == 12.0
    assert pl.read_parquet(legacy).height == 24

    ingest_delivery(storage, DAY)  # re-ingesting moves the delivery onto a generation
    assert [part_generation(p) is not None for p in parts(storage)] == [True] and kwh(storage) == 12.0


def test_a_reader_that_read_the_manifest_before_a_recommit_reads_it_again(tmp_path):
    storage = storage_in(tmp_path)
    ingest_delivery(storage, DAY)
    folder = readings_root(storage) / f"business_day={DAY}"
    reader = Manifests(manifest_root(storage))
    first = reader.visible_in(folder)  # the reader now holds the first generation's manifest
    assert first == parts(storage)
    ingest_delivery(storage, DAY)  # re-committed, and the first generation removed, before it lists again
    again = reader.visible_in(folder)
    assert again == parts(storage) and again != first and again != []
