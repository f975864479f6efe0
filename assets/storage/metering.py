"""Metering: Datahub deliveries into hive-partitioned Parquet, and per-day aggregates per point.

Partition D of `ingest_metering` is the delivery that arrives on the morning of D+1. It mostly
holds day D, but may also re-send earlier intervals as corrections; those rows are written under
their own business day, as a separate delivery part. Reading a day means taking, per (point,
start time), the row of the latest delivery visible to the run. Each partition writes only its
own delivery's files, so partitions run in parallel without any lock.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import shutil
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from pathlib import Path

import polars as pl

from assets.storage import lake, suppression
from assets.storage.ingestion import malformed_quarantine, validate_contract
from assets.storage.landing import (
    CHANGED_FILE,
    LandingFile,
    LandingFileError,
    RawBatch,
    iter_metering_chunks,
    list_files,
)
from assets.storage.metering_aggregate import aggregate_days
from assets.storage.metering_parts import Manifests, listed, new_generation, part_generation, part_name, part_tag
from assets.storage.zones import LupaStorage
from data_contracts.core import metering_daily as METERING_DAILY
from data_contracts.sources import metering as METERING
from data_contracts.vocabulary import TIME_ZONE_NAME

BLOCK_WORKERS = 2  # blocks split and stored at once; each holds about 0.3 GB while in flight
READING_COLUMNS = [
    "metering_point_id",
    "start_utc",
    "resolution",
    "quantity_kwh",
    "quality",
    "local_hour",
    "delivery",
    "file",
    "line",
]


@dataclass
class DeliveryOutcome:
    business_day: dt.date
    file: str | None = None
    delivered_on: dt.date | None = None
    sha256: str | None = None
    rows_read: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_suppressed: int = 0
    rule_counts: dict[str, int] = field(default_factory=dict)
    days_written: dict[str, int] = field(default_factory=dict)

    @property
    def corrected_days(self) -> list[str]:
        """Business days other than D that this delivery re-sent (corrections)."""
        return sorted(d for d in self.days_written if d != self.business_day.isoformat())


class KeyOrder:
    """Whether a delivery's stored readings are in strictly increasing (point, start time) order,
    block after block. If so, no (point, start time) is stored twice, and the daily aggregate can
    skip its dedupe for days that only this delivery holds (see `metering_aggregate`)."""

    def __init__(self) -> None:
        self.in_order = True
        self.last: tuple | None = None

    def add(self, readings: pl.DataFrame) -> None:
        if not self.in_order or readings.is_empty():
            return
        point, start = pl.col("metering_point_id"), pl.col("start_utc")
        steps_up = (
            ((point > point.shift(1)) | ((point == point.shift(1)) & (start > start.shift(1)))).fill_null(True).all()
        )
        first = readings.row(0, named=True)
        first_key = (first["metering_point_id"], first["start_utc"])
        self.in_order = readings.select(steps_up).item() and (self.last is None or self.last < first_key)
        last = readings.row(-1, named=True)
        self.last = (last["metering_point_id"], last["start_utc"])


def readings_root(storage: LupaStorage) -> Path:
    return storage.metering_dir / "readings"


def daily_root(storage: LupaStorage) -> Path:
    return storage.metering_dir / "daily"


def quarantine_root(storage: LupaStorage) -> Path:
    return storage.metering_dir / "quarantine"


def manifest_root(storage: LupaStorage) -> Path:
    return storage.metering_dir / "deliveries"


def delivery_file(storage: LupaStorage, business_day: dt.date) -> LandingFile | None:
    delivered = business_day + dt.timedelta(days=1)
    matches = [f for f in list_files(storage.landing, METERING, up_to=delivered) if f.delivered_on == delivered]
    if len(matches) > 1:
        raise LandingFileError(
            f"metering/{matches[0].name}", None, "one delivery per day (found both .csv and .csv.gz)"
        )
    return matches[0] if matches else None


def to_readings(valid: pl.DataFrame, file: LandingFile) -> pl.DataFrame:
    """Typed Datahub rows → the stored reading layout with Helsinki business day and local hour."""
    local = _helsinki_local_time(valid)
    return valid.select(
        pl.col("MeteringPointGSRN").alias("metering_point_id"),
        pl.col("Start Time").alias("start_utc"),
        pl.col("Resolution").alias("resolution"),
        pl.col("Quantity").alias("quantity_kwh"),
        pl.col("Quality").alias("quality"),
        local.dt.hour().cast(pl.Int8).alias("local_hour"),
        pl.lit(file.delivered_on).alias("delivery"),
        pl.lit(file.name).alias("file"),
        pl.col("_line").alias("line"),
        local.dt.date().alias("business_day"),
    )


def _helsinki_local_time(valid: pl.DataFrame) -> pl.Expr:
    """`Start Time` as Helsinki wall-clock time, for its `.dt.hour()` and `.dt.date()`.

    A time-zone-aware hour or date looks the offset up row by row. A batch that spans less than
    a month, with the same UTC offset at its first and last instant, has no DST change inside it
    (changes are five and seven months apart), so one fixed offset gives the same wall-clock
    time, as plain arithmetic. Any other batch takes the zone-aware path.
    """
    zoned = pl.col("Start Time").dt.convert_time_zone(TIME_ZONE_NAME)
    span = valid.select(pl.col("Start Time").min().alias("first"), pl.col("Start Time").max().alias("last"))
    first, last = span.row(0)
    if first is None or last - first > dt.timedelta(days=31):
        return zoned
    offsets = span.select(
        (
            pl.col(c).dt.convert_time_zone(TIME_ZONE_NAME).dt.replace_time_zone(None)
            - pl.col(c).dt.replace_time_zone(None)
        )
        for c in ("first", "last")
    ).row(0)
    if offsets[0] != offsets[1]:
        return zoned
    return pl.col("Start Time").dt.replace_time_zone(None) + pl.lit(offsets[0])


def _by_business_day(readings: pl.DataFrame) -> dict[tuple[dt.date], pl.DataFrame]:
    """`partition_by("business_day")` with the key dropped; a batch of one day (the usual case) is
    only made contiguous, which is cheaper than partitioning and writes the same Parquet bytes."""
    days = readings.get_column("business_day")
    if readings.height and days.null_count() == 0 and days.min() == days.max():
        return {(days[0],): readings.drop("business_day").rechunk()}
    return readings.partition_by("business_day", as_dict=True, include_key=False)  # type: ignore[return-value]


def _remove_superseded(storage: LupaStorage, delivery: dt.date, generation: str, days: list[str]) -> None:
    """After the commit: remove the parts of this delivery's earlier generations (and its parts from
    before generations), under the days it wrote now or before, so a re-run leaves one set."""
    tag = delivery.strftime("%Y%m%d")
    for day in days:
        for part in listed(readings_root(storage) / f"business_day={day}", f"delivery={tag}-*.parquet"):
            if part_generation(part) != generation:
                lake.remove(part)


def ingest_delivery(
    storage: LupaStorage, business_day: dt.date, chunk_bytes: int = 1 << 26, validate: bool = True
) -> DeliveryOutcome:
    """Read, validate and store the metering delivery for business day D (file dated D+1)."""
    outcome = DeliveryOutcome(business_day)
    file = delivery_file(storage, business_day)
    if file is None:
        return outcome
    outcome.file, outcome.delivered_on = file.name, file.delivered_on
    tag = f"{file.delivered_on:%Y%m%d}"
    manifest = manifest_root(storage) / f"delivery={tag}.json"
    previous = Manifests(manifest_root(storage)).get(tag)
    seen_sha256 = previous["sha256"] if previous else None
    generation = new_generation()
    # taken before the bytes are read: a write during the read then moves the stat and is looked at again
    size, mtime_ns = file.size_and_mtime()

    def same_bytes_as_before(digest: Future) -> None:
        outcome.sha256 = digest.result()
        if seen_sha256 not in (None, outcome.sha256):
            raise LandingFileError(f"metering/{file.name}", None, CHANGED_FILE) from None

    staging = storage.staging_dir / f"delivery={tag}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    quarantined_parts = []
    counts: dict[str, int] = {}
    erased = suppression.load(storage.warehouse_dir)
    keys = KeyOrder()
    carry = None

    store_block = partial(
        _store_block, file=file, staging=staging, erased=erased, validate=validate, generation=generation
    )

    def account(block: tuple) -> None:
        """Fold one stored block into the outcome, in file order."""
        batch, quarantined, readings, suppressed, per_day = block
        keys.add(readings)
        quarantined_parts.append(quarantined)
        outcome.rows_read += batch.rows_read
        outcome.rows_valid += readings.height
        outcome.rows_quarantined += quarantined.height
        outcome.rows_suppressed += suppressed
        for day, rows in per_day.items():
            counts[day] = counts.get(day, 0) + rows

    try:
        # Two blocks are split and stored at once (polars releases the GIL) while the reader thread
        # fetches the next one, so both cores stay busy. Results are folded in file order.
        with ThreadPoolExecutor(max_workers=BLOCK_WORKERS + 1, thread_name_prefix="metering-block") as pool:
            # the file is hashed alongside the blocks; a changed file is refused before anything is swapped in
            digest = pool.submit(file.sha256)
            in_flight: deque = deque()
            for n, batch in enumerate(iter_metering_chunks(file, METERING, chunk_bytes=chunk_bytes)):
                # the previous block's last record goes along, so that a repeat across the cut is seen
                # by the duplicate rule; it was already split with its own block, so it is dropped after
                records = batch.records if carry is None else pl.concat([carry, batch.records])
                carried = None if carry is None else carry.item(0, "_line")
                carry = batch.records.tail(1) if batch.records.height else carry
                in_flight.append(pool.submit(store_block, n, batch, records, carried))
                if len(in_flight) >= BLOCK_WORKERS:
                    account(in_flight.popleft().result())
            while in_flight:
                account(in_flight.popleft().result())
            same_bytes_as_before(digest)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, LandingFileError):
            same_bytes_as_before(digest)  # a changed file is named as such, whatever else is wrong with it
        raise
    # all chunks read: publish the staged parts under this generation (nobody reads them yet; a
    # failed read above leaves the old state intact), then commit by replacing the manifest
    _publish_parts(storage, staging)
    _store_quarantine(storage, file, quarantined_parts, erased, outcome)
    outcome.days_written = dict(sorted(counts.items()))
    lake.make_dirs(manifest_root(storage), lake.PRIVATE_DIR)
    lake.write_text(
        json.dumps(
            {
                "file": file.name,
                "generation": generation,
                "sha256": outcome.sha256,
                "size": size,
                "mtime_ns": mtime_ns,
                "rows_read": outcome.rows_read,
                "rows_valid": outcome.rows_valid,
                "rows_quarantined": outcome.rows_quarantined,
                "rows_suppressed": outcome.rows_suppressed,
                "days_written": outcome.days_written,
                "keys_in_order": keys.in_order,
            },
            indent=1,
        ),
        manifest,
    )
    _remove_superseded(
        storage,
        file.delivered_on,
        generation,
        sorted(set(outcome.days_written) | set((previous or {}).get("days_written", {}))),
    )
    return outcome


def _store_block(
    n: int,
    batch: RawBatch,
    records: pl.DataFrame,
    carried: int | None,
    *,
    file: LandingFile,
    staging: Path,
    erased: suppression.Suppressions,
    validate: bool,
    generation: str,
) -> tuple:
    """Split, validate and stage one block: (batch, quarantined, readings, suppressed, rows per day)."""
    # a rule compares a reading with its own file's delivery date (`start_after_delivery`)
    valid, quarantined = METERING.split(records, {"delivered_on": file.delivered_on})
    if carried is not None:
        valid, quarantined = valid.filter(pl.col("_line") != carried), quarantined.filter(pl.col("line") != carried)
    if validate:
        validate_contract(METERING, valid, {})
    quarantined = pl.concat([quarantined, malformed_quarantine(batch.malformed, len(METERING.header))])
    readings = erased.keep_readings(to_readings(valid, file))
    per_day = {}
    for (day,), part in _by_business_day(readings).items():
        target = staging / f"business_day={day.isoformat()}"
        target.mkdir(exist_ok=True)
        part.write_parquet(target / part_name(f"{file.delivered_on:%Y%m%d}", generation, n), statistics=True)
        per_day[day.isoformat()] = part.height
    return batch, quarantined, readings, valid.height - readings.height, per_day


def _publish_parts(storage: LupaStorage, staging: Path) -> None:
    """Move (or upload) a delivery's staged reading parts into the readings, then drop the staging
    folder. They carry the new generation, so no reader uses them before the manifest commits it."""
    for part in staging.glob("business_day=*/*.parquet"):
        lake.upload(part, readings_root(storage) / part.parent.name / part.name)
    shutil.rmtree(staging, ignore_errors=True)


#: the columns of one block's quarantined records, before the file's own columns are added
_QUARANTINE_PART = {"line": pl.Int64, "rule": pl.String, "detail": pl.String, "raw": pl.String}


def _store_quarantine(
    storage: LupaStorage,
    file: LandingFile,
    parts: list[pl.DataFrame],
    erased: suppression.Suppressions,
    outcome: DeliveryOutcome,
) -> None:
    """Write the delivery's quarantined records (one file per delivery) and count them per rule."""
    quarantine = (
        # a header-only delivery has no blocks, so no parts: an empty quarantine, not a missing column
        (pl.concat(parts) if parts else pl.DataFrame(schema=_QUARANTINE_PART))
        .with_columns(
            pl.lit("metering").alias("source"),
            pl.lit(file.name).alias("file"),
            pl.lit(file.delivered_on).alias("delivered_on"),
        )
        .select("source", "file", "delivered_on", "line", "rule", "detail", "raw")
    )
    # an erased customer's records stay out of the quarantine too, as out of the readings
    kept = erased.keep_quarantined_readings(quarantine)
    outcome.rows_quarantined -= quarantine.height - kept.height
    outcome.rows_suppressed += quarantine.height - kept.height
    quarantine = kept
    lake.make_dirs(quarantine_root(storage), lake.PRIVATE_DIR)
    lake.write_parquet(quarantine, quarantine_root(storage) / f"delivery={file.delivered_on:%Y%m%d}.parquet")
    for rules in quarantine["rule"].to_list() if quarantine.height else []:
        for rule in rules.split(","):
            outcome.rule_counts[rule] = outcome.rule_counts.get(rule, 0) + 1


def verify_known_deliveries(storage: LupaStorage, up_to: dt.date, reread: set[dt.date]) -> int:
    """Refuse a known delivery whose bytes changed since it was stored; return how many were hashed.

    A run reads only its own partition's delivery, so without this a re-delivered older file would
    never be compared with its manifest (landing-zone.md: a changed file under a known name is an
    error). To keep the daily cost flat as history grows, each known file costs one stat: only a
    file whose size or mtime differs from the manifest is hashed (a different size is a change
    without hashing). A file touched but identical has its new stat recorded, so it is hashed
    once. `reread` are the deliveries the run reads anyway; `ingest_delivery` compares those.
    A known file no longer in the landing zone is left alone here: this checks bytes, not presence.
    """
    folder = storage.landing / METERING.source
    hashed = 0
    for manifest in listed(manifest_root(storage), "delivery=*.json"):
        delivered = dt.datetime.strptime(manifest.stem.removeprefix("delivery="), "%Y%m%d").date()
        if delivered > up_to or delivered in reread:
            continue
        try:  # a parallel metering range re-ingesting this delivery may have just removed its manifest
            text = manifest.read_text()
            record = json.loads(text)
            file = LandingFile(METERING.source, folder / record["file"], delivered)
            size, mtime_ns = file.size_and_mtime()
        except FileNotFoundError:
            continue
        if (record.get("size"), record.get("mtime_ns")) == (size, mtime_ns):
            continue
        hashed += 1
        if record.get("size", size) != size or file.sha256() != record["sha256"]:
            raise LandingFileError(f"metering/{file.name}", None, CHANGED_FILE)
        # the same bytes under a new stat (or a manifest from before stats were kept): remember it
        # unless that delivery was re-ingested meanwhile, which wrote its own fresh manifest
        if manifest.exists() and manifest.read_text() == text:
            lake.write_text(json.dumps(record | {"size": size, "mtime_ns": mtime_ns}, indent=1), manifest)
    return hashed


def _ingest_in_worker(landing_dir: str, data_dir: str, lake_url: str, business_day: dt.date) -> DeliveryOutcome:
    return ingest_delivery(LupaStorage(landing_dir=landing_dir, data_dir=data_dir, lake_url=lake_url), business_day)


def ingest_deliveries(storage: LupaStorage, days: list[dt.date], workers: int | None = None) -> list[DeliveryOutcome]:
    """Ingest many deliveries (a history load) on every core: each writes only its own files.

    Worker processes are spawned, not forked: polars' thread pool does not survive a fork. A daemonic
    process may not start children (a Celery prefork worker's pool process is one), so there the
    deliveries are ingested one after another, in the step's own process.
    """
    workers = min(len(days), workers or os.cpu_count() or 1)
    if multiprocessing.current_process().daemon:
        workers = 1
    if workers <= 1:
        return [ingest_delivery(storage, day) for day in days]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(
            pool.map(
                _ingest_in_worker,
                repeat(storage.landing_dir),
                repeat(storage.data_dir),
                repeat(storage.lake_url),
                days,
            )
        )


def aggregate_day(storage: LupaStorage, day: dt.date, cutoff: dt.date) -> int:
    """(Re)build one business day's per-point aggregate from every delivery up to `cutoff`."""
    return aggregate_days(
        readings_root(storage),
        daily_root(storage),
        [day],
        cutoff,
        suppression.load(storage.warehouse_dir).points,
        spill_dir=storage.spill_dir,
    )[day]


def _delivery_parts(storage: LupaStorage, delivered_on: dt.date) -> list[Path]:
    """The committed Parquet parts of a delivery: its manifest says under which days and which
    generation; without one, search (parts from before manifests)."""
    tag = delivered_on.strftime("%Y%m%d")
    manifests = Manifests(manifest_root(storage))
    manifest = manifests.get(tag)
    if manifest:
        found = [
            p
            for d in manifest["days_written"]
            for p in listed(readings_root(storage) / f"business_day={d}", f"delivery={tag}-*.parquet")
        ]
    else:
        found = listed(readings_root(storage), f"business_day=*/delivery={tag}-*.parquet")
    return [p for p in manifests.visible(found) if part_tag(p) == tag]


def stored_rows(storage: LupaStorage, delivered_on: dt.date) -> tuple[int, int]:
    """Rows actually stored for a delivery (valid, quarantined), read back from Parquet footers."""
    tag = delivered_on.strftime("%Y%m%d")
    valid = sum(lake.num_rows(p) for p in _delivery_parts(storage, delivered_on))
    q = quarantine_root(storage) / f"delivery={tag}.parquet"
    return valid, lake.num_rows(q) if q.exists() else 0


def daily_aggregate_files(storage: LupaStorage) -> list[Path]:
    return listed(daily_root(storage), "business_day=*/part.parquet")


def daily_aggregates(storage: LupaStorage) -> pl.LazyFrame:
    """Every per-day metering aggregate, scanned lazily (never loaded whole)."""
    files = daily_aggregate_files(storage)
    if not files:
        return pl.DataFrame(schema={c: col.dtype.type for c, col in METERING_DAILY.columns.items()}).lazy()
    return lake.scan_parquet(files)
