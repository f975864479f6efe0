"""Where every layer keeps its data, and how to open it safely.

The restricted warehouse and the analytics zone are owner-only directories (0700, files 0600);
the marketing mart is meant to be shared. DuckDB 2.0 refuses a second writer and keeps a result
open until it is fully fetched, so every query here goes through `conn.sql(...)` and every step
that opens a DuckDB file holds the one Dagster pool `DUCKDB_POOL`.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from dagster import ConfigurableResource

from assets.storage.lake import lake_location, register

#: The Dagster pool (limit 1) of every step that opens a DuckDB file. One pool for all three files,
#: not one per file: a step's pool is a single name, and most steps open two files (features read the
#: warehouse and write analytics; the mart reads both and writes the mart and the audience history).
#: DuckDB refuses any open, even read-only, while another process writes the file, so a pool per file
#: would let a reader of one file collide with that file's writer in another process.
DUCKDB_POOL = "duckdb_files"

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)
    return path


class LupaStorage(ConfigurableResource):
    """Paths and settings for one installation. Built from the environment by pipelines.settings."""

    landing_dir: str
    data_dir: str
    env: str = "demo"
    #: the campaign briefs (LUPA_CAMPAIGNS_DIR); empty: `campaigns/` beside the data directory
    campaigns_dir: str = ""
    #: where the Parquet lake lives (`s3://bucket/prefix`); empty: under the data directory, as always
    lake_url: str = ""

    # ---- zones ---------------------------------------------------------------------------
    @property
    def landing(self) -> Path:
        return Path(self.landing_dir)

    @property
    def campaigns_path(self) -> Path:
        return Path(self.campaigns_dir) if self.campaigns_dir else self.root.parent / "campaigns"

    @property
    def root(self) -> Path:
        return Path(self.data_dir)

    @property
    def warehouse_dir(self) -> Path:
        return private_dir(self.root / "warehouse")

    @property
    def warehouse_path(self) -> Path:
        return self.warehouse_dir / "warehouse.duckdb"

    @property
    def lake_remote(self) -> bool:
        return bool(self.lake_url)

    @property
    def lake(self) -> Path:
        """The lake root: `LUPA_LAKE_URL` (object storage, a UPath), or the data directory."""
        return lake_location(self.lake_url) if self.lake_url else self.root

    @property
    def metering_dir(self) -> Path:
        """Readings, daily aggregates, the metering quarantine and the delivery manifests."""
        if self.lake_url:
            return self.lake / "metering"
        return private_dir(self.warehouse_dir / "metering")

    @property
    def spill_dir(self) -> Path:
        """Where DuckDB spills readings while aggregating: always local, inside the restricted zone."""
        return (self.warehouse_dir if self.lake_url else self.metering_dir) / ".duckdb_spill"

    @property
    def staging_dir(self) -> Path:
        """Local scratch for a delivery's parts before they are published into the lake."""
        if self.lake_url:
            return private_dir(self.warehouse_dir / "lake_staging")
        return self.metering_dir / "staging"  # the same filesystem as the readings: parts are renamed in

    @property
    def analytics_dir(self) -> Path:
        return private_dir(self.root / "analytics")

    @property
    def analytics_path(self) -> Path:
        return self.analytics_dir / "analytics.duckdb"

    @property
    def models_dir(self) -> Path:
        return private_dir(self.analytics_dir / "models")

    @property
    def reports_dir(self) -> Path:
        """Aggregates only (segment report): shared with marketers, like the mart."""
        path = self.root / "reports"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def mart_path(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / "marketing.duckdb"

    @property
    def lake_exports(self) -> Path | None:
        """The mart exports in a lake on object storage; None: the local `exports` link (mart.py)."""
        return self.lake / "mart" / "exports" if self.lake_url else None

    @property
    def exports_dir(self) -> Path:
        path = self.root / "exports"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ---- DuckDB --------------------------------------------------------------------------
    @contextmanager
    def warehouse(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.warehouse_path, read_only=read_only) as conn:
            # the `quarantine_all` view reads the metering quarantine from the lake
            if self.lake_url:
                register(conn, self.metering_dir)
            yield conn
        if not read_only:
            os.chmod(self.warehouse_path, PRIVATE_FILE)

    @contextmanager
    def analytics(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.analytics_path, read_only=read_only) as conn:
            yield conn
        if not read_only:
            os.chmod(self.analytics_path, PRIVATE_FILE)

    def read_table(self, database: str, sql: str, **params: object) -> pl.DataFrame:
        """Read from `warehouse` or `analytics` with a short-lived connection."""
        opener = self.warehouse if database == "warehouse" else self.analytics
        with opener() as conn:
            return query(conn, sql, **params)


@contextmanager
def connect(path: Path, read_only: bool = False, attempts: int = 20) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a DuckDB file, retrying briefly while another process holds its lock."""
    delay = 0.1
    for attempt in range(attempts):
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException:
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        yield conn
    finally:
        conn.close()


def query(conn: duckdb.DuckDBPyConnection, sql: str, **params: object) -> pl.DataFrame:
    """Run a query and return a polars frame (duckdb 2.0: connections have no .pl()).

    DuckDB hands TIMESTAMPTZ over in the session's time zone; every timestamp we store is UTC.
    """
    frame = conn.sql(sql, params=params or None).pl()
    return frame.with_columns(pl.col(pl.Datetime("us", "*")).dt.convert_time_zone("UTC"))


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, **params: object) -> object:
    rows = conn.sql(sql, params=params or None).fetchall()
    return rows[0][0] if rows else None


def table_exists(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(scalar(conn, "select count(*) from duckdb_tables() where table_name = $n", n=name))


def replace_table(conn: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> int:
    """Replace a table with a polars frame in one statement (readers never see it half-written)."""
    conn.register("_frame", frame)
    try:
        conn.execute(f'create or replace table "{name}" as select * from _frame')
    finally:
        conn.unregister("_frame")
    return frame.height


def date_range_of(frame: pl.DataFrame, column: str) -> tuple[dt.date | None, dt.date | None]:
    if frame.is_empty() or column not in frame.columns:
        return None, None
    col = frame[column]
    if col.dtype != pl.Date:
        col = col.cast(pl.Date)
    return col.min(), col.max()  # type: ignore[return-value]
