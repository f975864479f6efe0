"""The marketing mart: one DuckDB file plus Parquet and CSV exports, replaced atomically.

A run builds the new mart beside the old one (`.marketing-<tag>.duckdb` and `exports-<tag>/`),
validates it, and only then renames it into place: `marketing.duckdb` with `os.replace`, and the
`exports` symlink by replacing the link. A failed or killed run leaves the previous mart untouched
and readable, and readers never open the file the writer holds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import duckdb
import polars as pl

SHARED_DIR, SHARED_FILE = 0o755, 0o644

#: tables that get a CSV export for mailing houses (UTF-8 with BOM, `;`-separated: Finnish Excel)
CSV_TABLES = ("audience_email", "audience_sms", "audience_letter", "audience_phone", "renewal_offers")


def mart_path(data_dir: Path) -> Path:
    return data_dir / "marketing.duckdb"


def exports_link(data_dir: Path) -> Path:
    return data_dir / "exports"


def write_csv_for_excel(frame: pl.DataFrame, path: Path) -> None:
    """UTF-8 with BOM and `;` separators, so Finnish Excel opens it with ä and ö intact."""
    path.write_bytes(b"\xef\xbb\xbf" + frame.write_csv(separator=";").encode("utf-8"))


def read_published(data_dir: Path, table: str) -> pl.DataFrame | None:
    """Read one table of the current mart (read-only; the mart is never the file being written)."""
    path = mart_path(data_dir)
    if not path.exists():
        return None
    conn = duckdb.connect(str(path), read_only=True)
    try:
        if not conn.sql("select count(*) from duckdb_tables() where table_name = $t", params={"t": table}).fetchall()[0][0]:
            return None
        return conn.sql(f'select * from "{table}"').pl()
    finally:
        conn.close()


def publish(
    data_dir: Path,
    tables: Mapping[str, pl.DataFrame],
    tag: str,
    validate: Callable[[Path], None] | None = None,
    before_swap: Callable[[], None] | None = None,
    keep_previous_exports: bool = True,
) -> dict[str, int]:
    """Build a complete new mart under a temporary name, validate it, then swap it in.

    `validate` gets the path of the new (closed) DuckDB file and raises to stop publication.
    `before_swap` is a test seam to simulate a run killed at the last moment. An erasure passes
    `keep_previous_exports=False`: the previous exports still hold the erased customer.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    staged_db = data_dir / f".marketing-{tag}.duckdb"
    staged_exports = data_dir / "mart_exports" / tag
    for leftover in (staged_db, Path(f"{staged_db}.wal")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(staged_exports, ignore_errors=True)
    staged_exports.mkdir(parents=True)
    try:
        conn = duckdb.connect(str(staged_db))
        try:
            for name, frame in tables.items():
                conn.register("_frame", frame)
                conn.execute(f'create table "{name}" as select * from _frame')
                conn.unregister("_frame")
            conn.execute("checkpoint")
        finally:
            conn.close()
        for name, frame in tables.items():
            frame.write_parquet(staged_exports / f"{name}.parquet")
            if name in CSV_TABLES:
                write_csv_for_excel(frame, staged_exports / f"{name}.csv")
        if validate is not None:
            validate(staged_db)
        if before_swap is not None:
            before_swap()
    except BaseException:
        staged_db.unlink(missing_ok=True)
        shutil.rmtree(staged_exports, ignore_errors=True)
        raise
    _fsync(staged_db)
    _share(data_dir, staged_db, staged_exports)
    link = exports_link(data_dir)
    previous = link.resolve() if link.is_symlink() else None
    os.replace(staged_db, mart_path(data_dir))
    _swap_link(link, staged_exports)
    # keep the previous exports one more run: a reader that resolved the old link may still read them
    _remove_old_exports(data_dir, keep={staged_exports.resolve(), previous if keep_previous_exports else None})
    return {name: frame.height for name, frame in tables.items()}


def _share(data_dir: Path, db: Path, exports: Path) -> None:
    """The mart is meant to be read by marketers: world-readable, unlike every other zone."""
    for folder in (data_dir, exports.parent, exports):
        os.chmod(folder, SHARED_DIR)
    os.chmod(db, SHARED_FILE)
    for path in exports.iterdir():
        os.chmod(path, SHARED_FILE)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_link(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target.relative_to(link.parent), tmp)
    if link.exists() and not link.is_symlink():
        shutil.rmtree(link)
    os.replace(tmp, link)


def _remove_old_exports(data_dir: Path, keep: set[Path | None]) -> None:
    for old in (data_dir / "mart_exports").iterdir():
        if old.resolve() not in keep:
            shutil.rmtree(old, ignore_errors=True)
