"""Ingest: landing file → contract split → valid rows and quarantined rows, with counts that add up.

Nothing is written until every file of the run has been read and split, so a file that cannot be
read leaves no partial state. Counts are per file: rows read = rows valid + rows quarantined.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from assets.storage import prospect_suppression, suppression
from assets.storage.lake import register, sql_path
from assets.storage.landing import (
    CHANGED_FILE,
    LandingFile,
    LandingFileError,
    list_files,
    read_small_file,
    visible_cutoff,
)
from assets.storage.metering_parts import listed
from assets.storage.zones import LupaStorage, query, replace_table, scalar, table_exists
from data_contracts.contract import SourceContract, check_frame

QUARANTINE_SCHEMA = {
    "source": pl.String,
    "file": pl.String,
    "delivered_on": pl.Date,
    "line": pl.Int64,
    "rule": pl.String,
    "detail": pl.String,
    "raw": pl.String,
}


@dataclass
class FileOutcome:
    source: str
    file: str
    delivered_on: dt.date
    sha256: str
    rows_read: int
    rows_valid: int
    rows_quarantined: int
    #: rows of erased customers, dropped before anything is written (see assets/storage/suppression.py)
    rows_suppressed: int = 0
    #: rows the `retention` asset has already removed for good (see assets/storage/invoice_retention.py)
    rows_past_retention: int = 0
    #: the file's (size, mtime in ns) when it was read, taken before its bytes: a later run tells an
    #: older snapshot untouched since by one stat (`verify_earlier_snapshots`)
    stat: tuple[int, int] | None = None


@dataclass
class IngestOutcome:
    source: str
    business_day: dt.date
    files: list[FileOutcome] = field(default_factory=list)
    valid: pl.DataFrame = field(default_factory=pl.DataFrame)
    quarantine: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=QUARANTINE_SCHEMA))
    #: a snapshot source's deliveries up to D+1 before the one in scope: not read, but still immutable
    earlier: list[LandingFile] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_valid(self) -> int:
        return sum(f.rows_valid for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def rows_suppressed(self) -> int:
        return sum(f.rows_suppressed for f in self.files)

    @property
    def rows_past_retention(self) -> int:
        return sum(f.rows_past_retention for f in self.files)

    def rule_counts(self) -> dict[str, int]:
        """Quarantined records per broken rule (a record breaking two rules counts under both)."""
        counts: Counter[str] = Counter()
        for rules in self.quarantine["rule"].to_list():
            counts.update(rules.split(","))
        return dict(sorted(counts.items()))


#: sources whose rows may belong to an erased prospect, and how ingestion drops them
PROSPECT_SUPPRESSED = {
    "prospects": prospect_suppression.keep_prospects,
    "contacts": prospect_suppression.keep_contacts,
}


def malformed_quarantine(malformed: pl.DataFrame, width: int) -> pl.DataFrame:
    """Records that could not be split: the reader's own detail (a record too long, a quote it cannot
    read), or else the field count."""
    counted = pl.format("expected {} fields, found {}", pl.lit(width), pl.col("fields"))
    return malformed.select(
        "line",
        pl.lit("malformed_record").alias("rule"),
        pl.coalesce("detail", counted).alias("detail"),
        "raw",
    )


def with_file(frame: pl.DataFrame, file: LandingFile) -> pl.DataFrame:
    """Tag rows with the file they came from (the consent contract has its own `source` field)."""
    return frame.with_columns(
        pl.lit(file.name).alias("file"),
        pl.lit(file.delivered_on).alias("delivered_on"),
    )


def validate_contract(contract: SourceContract, valid: pl.DataFrame, context: dict) -> None:
    """Assert the pandera contract on the rows the split let through."""
    check_frame(contract.pandera_schema(context), valid)


def files_in_scope(storage: LupaStorage, contract: SourceContract, business_day: dt.date) -> list[LandingFile]:
    """Files a run for D reads: every delivery up to D+1, or only the latest one for a snapshot."""
    files = list_files(storage.landing, contract, up_to=visible_cutoff(business_day))
    return files[-1:] if contract.semantics == "snapshot" else files


def earlier_snapshots(storage: LupaStorage, contract: SourceContract, business_day: dt.date) -> list[LandingFile]:
    """A snapshot source's deliveries up to D+1 that the run does not read (all but the latest)."""
    if contract.semantics != "snapshot":
        return []
    return list_files(storage.landing, contract, up_to=visible_cutoff(business_day))[:-1]


def read_source(
    storage: LupaStorage,
    contract: SourceContract,
    business_day: dt.date,
    context: dict | None = None,
    retention_filter: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    customer_codes: pl.Series | None = None,
) -> IngestOutcome:
    """Read and split every file in scope. Pure: writes nothing.

    `retention_filter` drops valid rows that retention has already removed from the warehouse, so
    that re-reading an old delivery cannot bring them back; it sees every file's rows at once,
    because for an upsert source only the latest version of a record decides.
    `customer_codes` (the identity codes of the current CRM snapshot) lets a source keyed by
    identity code alone through for a customer who returned after an erasure (suppression.py).
    """
    context = context or {}
    erased = suppression.load(storage.warehouse_dir)
    # erased prospects: their own records, applied to the prospects and to contacts with a prospect
    erased_prospects = (
        prospect_suppression.load(storage.warehouse_dir)
        if contract.source in PROSPECT_SUPPRESSED
        else pl.DataFrame(schema=prospect_suppression.SCHEMA)
    )
    outcome = IngestOutcome(contract.source, business_day)
    valid_parts, quarantine_parts = [], []
    key = contract.unique_across_deliveries
    delivered_before = pl.Series(dtype=pl.String)  # keys of the earlier files' valid rows
    outcome.earlier = earlier_snapshots(storage, contract, business_day)
    for file in files_in_scope(storage, contract, business_day):
        stat = file.size_and_mtime()  # before the bytes: a write while reading moves it and is seen next time
        batch = read_small_file(file, contract)
        # a rule may compare a record with its own file's delivery date (`occurred_in_future`)
        file_context = {**context, "delivered_on": file.delivered_on}
        if key is not None:
            file_context["delivered_before"] = delivered_before
        valid, quarantined = contract.split(batch.records, file_context)
        quarantined = pl.concat([quarantined, malformed_quarantine(batch.malformed, len(contract.header))])
        validate_contract(contract, valid, file_context)
        if key is not None:
            delivered_before = pl.concat([delivered_before, valid.get_column(key)])
        before = valid.height + quarantined.height
        valid = erased.keep_rows(valid, contract.source, file.delivered_on, customer_codes)
        quarantined = erased.keep_raw(quarantined, contract.source, contract.header, file.delivered_on, customer_codes)
        if contract.source in PROSPECT_SUPPRESSED:
            valid = PROSPECT_SUPPRESSED[contract.source](valid, erased_prospects)
            quarantined = prospect_suppression.keep_raw(quarantined, erased_prospects, contract.source)
        suppressed = before - valid.height - quarantined.height
        valid_parts.append(with_file(valid, file).rename({"_line": "line"}))
        quarantine_parts.append(
            with_file(quarantined, file)
            .with_columns(pl.lit(file.source).alias("source"))
            .select(list(QUARANTINE_SCHEMA))
        )
        outcome.files.append(
            FileOutcome(
                contract.source,
                file.name,
                file.delivered_on,
                file.sha256(),
                batch.rows_read,
                valid.height,
                quarantined.height,
                suppressed,
                stat=stat,
            )
        )
    typed = contract.typed_schema() | {"line": pl.Int64, "file": pl.String, "delivered_on": pl.Date}
    outcome.valid = pl.concat(valid_parts, how="vertical") if valid_parts else pl.DataFrame(schema=typed)
    outcome.quarantine = (
        pl.concat(quarantine_parts, how="vertical").sort("file", "line")
        if quarantine_parts
        else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    )
    if retention_filter is not None:
        _drop_past_retention(outcome, retention_filter(outcome.valid))
    return outcome


def _drop_past_retention(outcome: IngestOutcome, kept: pl.DataFrame) -> None:
    """Keep only `kept` of the valid rows, and count what was dropped against each file."""
    before, after = (dict(frame.group_by("file").len().rows()) for frame in (outcome.valid, kept))
    for f in outcome.files:
        f.rows_past_retention = before.get(f.file, 0) - after.get(f.file, 0)
        f.rows_valid -= f.rows_past_retention
    outcome.valid = kept


# ---- the warehouse side ------------------------------------------------------------------------
REGISTRY_DDL = """
create table if not exists file_registry (
    source varchar, file_name varchar, sha256 varchar, delivered_on date,
    rows_read bigint, rows_valid bigint, rows_quarantined bigint, rows_suppressed bigint, rows_past_retention bigint,
    primary key (source, file_name))
"""
QUARANTINE_DDL = """
create table if not exists quarantine (
    source varchar, file varchar, delivered_on date, line bigint, rule varchar, detail varchar, raw varchar)
"""


def ensure_ingest_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(REGISTRY_DDL)
    # warehouses created before rows past retention were counted
    conn.execute("alter table file_registry add column if not exists rows_past_retention bigint default 0")
    # warehouses created before older snapshots were verified by their stat (rows without one are
    # hashed once by the next run that sees them, then recorded)
    conn.execute("alter table file_registry add column if not exists size_bytes bigint")
    conn.execute("alter table file_registry add column if not exists mtime_ns bigint")
    conn.execute(QUARANTINE_DDL)


def refresh_quarantine_view(conn: duckdb.DuckDBPyConnection, metering_quarantine: Path) -> None:
    """`quarantine_all`: the `quarantine` table and the metering quarantine (one Parquet file per
    delivery, written by the metering partitions, which run in parallel and so never write to this
    file) in one place to query. The Parquet files are globbed at query time; a view without them is
    made when there are none yet, because DuckDB checks the glob when the view is created."""
    columns = "source, file, delivered_on, line, rule, detail, raw"
    parts = [f"select {columns} from quarantine"]
    if listed(metering_quarantine, "delivery=*.parquet"):
        # on S3 the glob is served by the lake's fsspec filesystem, which every warehouse connection
        # registers (LupaStorage.warehouse)
        register(conn, metering_quarantine)
        glob = sql_path(metering_quarantine / "delivery=*.parquet")
        parts.append(f"select {columns} from read_parquet('{glob}')")
    ensure_ingest_tables(conn)
    conn.execute("create or replace view quarantine_all as " + " union all ".join(parts))


def check_registry(conn: duckdb.DuckDBPyConnection, files: list[FileOutcome]) -> None:
    """Same name + same bytes is a no-op; same name + different bytes is an error naming the file."""
    for f in files:
        known = scalar(
            conn, "select sha256 from file_registry where source = $s and file_name = $f", s=f.source, f=f.file
        )
        if known is not None and known != f.sha256:
            raise LandingFileError(
                f"{f.source}/{f.file}",
                None,
                CHANGED_FILE,
            )


def verify_earlier_snapshots(conn: duckdb.DuckDBPyConnection, files: list[LandingFile]) -> None:
    """Refuse an older snapshot whose bytes changed since it was read, though the run reads only the
    latest (landing-zone.md: a changed file under a known name is an error).

    One `stat` per known older delivery; only a file whose size or mtime moved is hashed (a different
    size is a change without hashing), and a touched but identical file has its new stat recorded, so
    it is hashed once. A delivery never read (a day no run saw) has nothing to compare with."""
    if not files:
        return
    known = {
        name: (sha, size, mtime)
        for name, sha, size, mtime in conn.sql(
            "select file_name, sha256, size_bytes, mtime_ns from file_registry where source = $s",
            params={"s": files[0].source},
        ).fetchall()
    }
    for file in files:
        if file.name not in known:
            continue
        sha, size, mtime = known[file.name]
        now = file.size_and_mtime()
        if (size, mtime) == now:
            continue
        if size is not None and size != now[0] or file.sha256() != sha:
            raise LandingFileError(f"{file.source}/{file.name}", None, CHANGED_FILE)
        conn.execute(
            "update file_registry set size_bytes = $b, mtime_ns = $m where source = $s and file_name = $f",
            {"b": now[0], "m": now[1], "s": file.source, "f": file.name},
        )


def write_source(conn: duckdb.DuckDBPyConnection, outcome: IngestOutcome) -> None:
    """Replace the source's valid table and its files' quarantine rows, in one transaction.

    The caller decides which quarantined records are stored (`outcome.quarantine`); the file
    registry counts every record read. A changed file is refused before anything is written: one in
    scope by its sha256, an older snapshot out of scope by its stat first (`verify_earlier_snapshots`).
    """
    ensure_ingest_tables(conn)
    check_registry(conn, outcome.files)
    verify_earlier_snapshots(conn, outcome.earlier)
    names = [f.file for f in outcome.files]
    conn.execute("begin transaction")
    try:
        replace_table(conn, f"{outcome.source}_valid", outcome.valid)
        conn.execute(
            "delete from quarantine where source = $s and list_contains($f, file)", {"s": outcome.source, "f": names}
        )
        conn.register("_q", outcome.quarantine)
        conn.execute("insert into quarantine select source, file, delivered_on, line, rule, detail, raw from _q")
        conn.unregister("_q")
        for f in outcome.files:
            conn.execute(
                "insert or replace into file_registry (source, file_name, sha256, delivered_on, rows_read, rows_valid, "
                "rows_quarantined, rows_suppressed, rows_past_retention, size_bytes, mtime_ns) "
                "values ($source, $file, $sha, $day, $r, $v, $q, $x, $p, $size, $mtime)",
                {
                    "source": f.source,
                    "file": f.file,
                    "sha": f.sha256,
                    "day": f.delivered_on,
                    "r": f.rows_read,
                    "v": f.rows_valid,
                    "q": f.rows_quarantined,
                    "x": f.rows_suppressed,
                    "p": f.rows_past_retention,
                    "size": f.stat[0] if f.stat else None,
                    "mtime": f.stat[1] if f.stat else None,
                },
            )
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise


def stored_conservation(conn: duckdb.DuckDBPyConnection, outcome: IngestOutcome) -> pl.DataFrame:
    """Per file, read back what was stored: rows read vs rows in the valid table + quarantine.

    Rows of erased customers and rows past retention were never meant to be stored, so `rows_read`
    leaves them out.
    """
    if not outcome.files:
        return pl.DataFrame(
            schema={"file": pl.String, "rows_read": pl.Int64, "stored_valid": pl.Int64, "stored_quarantined": pl.Int64}
        )
    read = pl.DataFrame(
        {
            "file": [f.file for f in outcome.files],
            "rows_read": [f.rows_read - f.rows_suppressed - f.rows_past_retention for f in outcome.files],
        }
    )
    valid = query(conn, f'select file, count(*)::bigint as stored_valid from "{outcome.source}_valid" group by file')
    quarantined = query(
        conn,
        "select file, count(*)::bigint as stored_quarantined from quarantine where source = $s group by file",
        s=outcome.source,
    )
    return (
        read.join(valid, on="file", how="left")
        .join(quarantined, on="file", how="left")
        .with_columns(pl.col("stored_valid", "stored_quarantined").fill_null(0))
    )


def known_customer_ids(conn: duckdb.DuckDBPyConnection) -> list[str]:
    if not table_exists(conn, "customers_valid"):
        return []
    return query(conn, "select distinct customer_id from customers_valid")["customer_id"].to_list()


def customer_identity_codes(conn: duckdb.DuckDBPyConnection) -> pl.Series:
    """The identity codes of the current CRM snapshot (its valid rows, after the suppression): a
    source keyed by identity code alone lets a returning customer's new rows through by them."""
    if not table_exists(conn, "customers_valid"):
        return pl.Series("personal_id", [], dtype=pl.String)
    return query(conn, "select distinct personal_id from customers_valid where personal_id is not null")["personal_id"]


def keyed_by_identity_code(contract: SourceContract) -> bool:
    """A source whose rows name a person by identity code alone (the population register)."""
    return suppression.IDENTITY_CODE in contract.header and suppression.CUSTOMER_ID not in contract.header


# ---- the CRM's listings: when each customer was last in a snapshot ------------------------------
LISTINGS_DDL = """
create table if not exists customer_listings (
    customer_id varchar primary key, last_listed_on date, ended_on date, personal_id varchar)
"""


def record_listings(conn: duckdb.DuckDBPyConnection, valid: pl.DataFrame) -> None:
    """Remember, per customer, the latest CRM snapshot that listed them (its `ended_on`, and the
    identity code, which the erasure needs to find the person's VTJ and suppress the code).

    `customers_valid` holds only the snapshot in scope, so once a customer is absent from it nothing
    else says when they were last a customer; the contract (landing-zone.md) makes that delivery the
    end of the relationship, which retention needs (assets/privacy/former_customers.py). Only moves
    forward: a backfill or an older snapshot read again never makes a listing older or brings back a
    customer an erasure removed from this table (ingestion has dropped their rows already).
    """
    conn.execute(LISTINGS_DDL)
    if valid.is_empty():
        return
    latest = (
        valid.sort("delivered_on")
        .unique("customer_id", keep="last")
        .select("customer_id", pl.col("delivered_on").alias("last_listed_on"), "ended_on", "personal_id")
    )
    conn.register("_listed", latest)
    try:
        conn.execute(
            "insert into customer_listings select customer_id, last_listed_on, ended_on, personal_id from _listed "
            "on conflict (customer_id) do update set last_listed_on = excluded.last_listed_on, "
            "ended_on = excluded.ended_on, personal_id = excluded.personal_id "
            "where excluded.last_listed_on >= customer_listings.last_listed_on"
        )
    finally:
        conn.unregister("_listed")
