"""The marketing mart: one DuckDB file plus Parquet and CSV exports, replaced atomically.

A run builds the new mart beside the old one (`.marketing-<tag>.duckdb` and `mart_exports/<tag>/`),
validates it, and only then renames it into place: `marketing.duckdb` with `os.replace`, and the
`exports` symlink by replacing the link. A failed or killed run leaves the previous mart untouched
and readable, and readers never open the file the writer holds.

Publications are serialised by an advisory lock (`.marketing.lock`, released by the kernel when a
publisher dies), so whatever a publisher finds staged under the lock was left by a killed run: it
is removed before staging. The daily run and an erasure's republication both go through `publish`.

A publisher reads its tables before it takes the lock, so an erasure can finish in between (or
while the new mart is being staged). Under the lock, just before the swap, `without_erased` reads
the suppression records again and drops every customer they name; `after_swap` (the daily run's
audience_history) runs under the lock too, with the tables as published.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from assets.storage import lake, prospect_suppression, suppression
from assets.storage.excel import write_csv_for_excel, write_xlsx
from assets.storage.metering_parts import listed
from models.send_lists import with_segment_names

SHARED_DIR, SHARED_FILE = 0o755, 0o644

#: tables that get a CSV export for mailing houses (UTF-8 with BOM, `;`-separated: Finnish Excel) and an XLSX
#: for people (postal codes and phones as text), each with the segment's name in the customer's language
CSV_TABLES = (
    "audience_email",
    "audience_sms",
    "audience_letter",
    "audience_phone",
    "renewal_offers",
    "prospect_audience_email",
    "prospect_audience_sms",
    "prospect_audience_letter",
    "prospect_audience_phone",
)

#: tables whose `as_of` is the business day the mart was built for
AS_OF_TABLES = (
    "audience_email",
    "audience_sms",
    "audience_letter",
    "audience_phone",
    "audience_exclusions",
    "renewal_offers",
)

STAGED_PREFIX = ".marketing-"
#: the object naming the committed export set in a lake on object storage
EXPORTS_POINTER = "CURRENT.json"
LOCK_NAME = ".marketing.lock"
#: the restricted warehouse under the data directory (as `LupaStorage.warehouse_dir` lays it out),
#: where the suppression records are
WAREHOUSE_DIR = "warehouse"


class NewerMartPublished(Exception):
    """The published mart is for a later business day than the one being published; it is kept."""

    def __init__(self, kept_as_of: dt.date, as_of: dt.date):
        super().__init__(f"the published mart is as of {kept_as_of}, later than {as_of}; it is kept")
        self.kept_as_of = kept_as_of
        self.as_of = as_of


def mart_path(data_dir: Path) -> Path:
    return data_dir / "marketing.duckdb"


def exports_link(data_dir: Path) -> Path:
    return data_dir / "exports"


def read_published(data_dir: Path, table: str) -> pl.DataFrame | None:
    """Read one table of the current mart (read-only; the mart is never the file being written)."""
    path = mart_path(data_dir)
    if not path.exists():
        return None
    conn = duckdb.connect(str(path), read_only=True)
    try:
        if not conn.sql("select count(*) from duckdb_tables() where table_name = $t", params={"t": table}).fetchall()[
            0
        ][0]:
            return None
        return conn.sql(f'select * from "{table}"').pl()
    finally:
        conn.close()


def published_size(data_dir: Path, table: str) -> int | None:
    """Rows of one table of the current mart, or None when there is no mart or no such table."""
    path = mart_path(data_dir)
    if not path.exists():
        return None
    conn = duckdb.connect(str(path), read_only=True)
    try:
        present = conn.sql("select count(*) from duckdb_tables() where table_name = $t", params={"t": table})
        if not present.fetchall()[0][0]:
            return None
        return conn.sql(f'select count(*) from "{table}"').fetchall()[0][0]
    finally:
        conn.close()


def published_as_of(data_dir: Path) -> dt.date | None:
    """The business day the current mart was built for (latest `as_of` of its day tables), or None."""
    path = mart_path(data_dir)
    if not path.exists():
        return None
    conn = duckdb.connect(str(path), read_only=True)
    try:
        present = {name for (name,) in conn.sql("select table_name from duckdb_tables()").fetchall()}
        days = []
        for table in AS_OF_TABLES:
            if table in present and "as_of" in conn.sql(f'select * from "{table}" limit 0').columns:
                days.append(conn.sql(f'select max(as_of) from "{table}"').fetchall()[0][0])
    finally:
        conn.close()
    return max((d for d in days if d is not None), default=None)


def publish(
    data_dir: Path,
    tables: Mapping[str, pl.DataFrame],
    tag: str,
    validate: Callable[[Path], None] | None = None,
    before_swap: Callable[[], None] | None = None,
    keep_previous_exports: bool = True,
    as_of: dt.date | None = None,
    after_swap: Callable[[dict[str, pl.DataFrame], int], None] | None = None,
    lake_exports: Path | None = None,
) -> dict[str, int]:
    """Build a complete new mart under a temporary name, validate it, then swap it in.

    With `lake_exports` (a lake on object storage), the exports are published there instead of the
    local `exports` link: uploaded under `<tag>/`, then committed by `CURRENT.json` (`lake_exports_of`).

    `validate` gets the path of the new (closed) DuckDB file and raises to stop publication.
    `before_swap` is a test seam to simulate a run killed at the last moment. An erasure passes
    `keep_previous_exports=False`: the previous exports still hold the erased customer.
    With `as_of` (the business day the tables are for), a published mart of a later day is never
    replaced: `NewerMartPublished` is raised before anything is staged.

    Customers erased since the caller read `tables` are never published (`without_erased`, applied
    under the lock right before the swap). `after_swap` runs under the lock after the swap, with the
    tables as published and the number of customers dropped as erased (a count, never who).
    Returns the rows published per table.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with _publish_lock(data_dir):
        # under the lock no other publisher is running: anything staged was left by a killed run
        remove_stale_staging(data_dir)
        if as_of is not None:
            kept = published_as_of(data_dir)
            if kept is not None and kept > as_of:
                raise NewerMartPublished(kept, as_of)
        return _publish_locked(
            data_dir, tables, tag, validate, before_swap, keep_previous_exports, after_swap, lake_exports
        )


def without_erased(data_dir: Path, tables: Mapping[str, pl.DataFrame]) -> tuple[dict[str, pl.DataFrame], int]:
    """The tables without every customer the suppression records name now (re-read on each call),
    and without every prospect erased on or after the tables' day, and how many people that dropped.
    Call under the publish lock: an erasure records its suppression before it deletes anything, so
    whoever it names is never published again, even by a publisher that read the warehouse before
    the erasure."""
    kept, customers = suppression.drop_erased(tables, suppression.load(data_dir / WAREHOUSE_DIR))
    # and prospects erased since (their own records, assets/storage/prospect_suppression.py)
    kept, prospects = prospect_suppression.drop_erased_prospects(
        kept, prospect_suppression.load(data_dir / WAREHOUSE_DIR)
    )
    return kept, customers + prospects


def remove_stale_staging(data_dir: Path) -> list[str]:
    """Remove staged mart files (`.marketing-<tag>.duckdb` and its WAL): full copies of a mart that a
    killed run never swapped in. Call only while holding the publish lock. Returns the names removed.

    Staged export folders of a killed run are removed by the next successful publication, which
    keeps only the current exports and the previous ones (for readers that resolved the old link)."""
    removed = []
    for leftover in sorted(data_dir.glob(f"{STAGED_PREFIX}*")):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed.append(leftover.name)
    return removed


@contextmanager
def _publish_lock(data_dir: Path) -> Iterator[None]:
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, SHARED_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock; a killed publisher's lock is released by the kernel


def _publish_locked(
    data_dir: Path,
    tables: Mapping[str, pl.DataFrame],
    tag: str,
    validate: Callable[[Path], None] | None,
    before_swap: Callable[[], None] | None,
    keep_previous_exports: bool,
    after_swap: Callable[[dict[str, pl.DataFrame], int], None] | None = None,
    lake_exports: Path | None = None,
) -> dict[str, int]:
    staged_db = data_dir / f"{STAGED_PREFIX}{tag}.duckdb"
    staged_exports = data_dir / "mart_exports" / tag
    published, erased = without_erased(data_dir, tables)
    try:
        while True:
            _stage(staged_db, staged_exports, published)
            if validate is not None:
                validate(staged_db)
            if before_swap is not None:
                before_swap()
            _fsync(staged_db)
            _share(data_dir, staged_db, staged_exports)
            # the last moment before the swap: an erasure recorded while staging is honoured too
            published, late = without_erased(data_dir, published)
            if not late:
                break
            erased += late  # stage (and validate) again without them
    except BaseException:
        staged_db.unlink(missing_ok=True)
        shutil.rmtree(staged_exports, ignore_errors=True)
        raise
    link = exports_link(data_dir)
    previous = link.resolve() if link.is_symlink() else None
    os.replace(staged_db, mart_path(data_dir))
    if lake_exports is not None:
        _publish_exports_to_lake(lake_exports, staged_exports, tag, keep_previous_exports)
        shutil.rmtree(staged_exports, ignore_errors=True)
    else:
        _swap_link(link, staged_exports)
        # keep the previous exports one more run: a reader that resolved the old link may still read them
        _remove_old_exports(data_dir, keep={staged_exports.resolve(), previous if keep_previous_exports else None})
    if after_swap is not None:
        after_swap(published, erased)
    return {name: frame.height for name, frame in published.items()}


def _stage(staged_db: Path, staged_exports: Path, tables: Mapping[str, pl.DataFrame]) -> None:
    """Write the new mart under its temporary names: the DuckDB file, Parquet per table, CSV per audience."""
    for leftover in (staged_db, Path(f"{staged_db}.wal")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(staged_exports, ignore_errors=True)
    staged_exports.mkdir(parents=True)
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
            # the export, not the table: the mart's tables keep their published columns
            named = (
                with_segment_names(frame, tables.get("segment_catalogue")) if "segment_id" in frame.columns else frame
            )
            write_csv_for_excel(named, staged_exports / f"{name}.csv")
            write_xlsx(named, staged_exports / f"{name}.xlsx", sheet=name)


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


def _publish_exports_to_lake(root: Path, staged: Path, tag: str, keep_previous: bool) -> None:
    """Upload the exports under `<tag>/`, then commit them by replacing `CURRENT.json` (one PUT, so a
    reader finds the old set or the new one, complete). The previous set stays one more publication
    (for a reader that read the old pointer), unless an erasure republishes without it."""
    pointer = root / EXPORTS_POINTER
    previous = json.loads(pointer.read_text())["tag"] if pointer.exists() else None
    files = sorted(p.name for p in staged.iterdir())
    for name in files:
        lake.upload(staged / name, root / tag / name)
    lake.write_text(json.dumps({"tag": tag, "files": files}, indent=1), pointer)
    keep = {tag, previous if keep_previous else None}
    for folder in listed(root, "*"):
        if folder.name != EXPORTS_POINTER and folder.name not in keep:
            lake.remove_tree(folder)


def lake_exports_of(root: Path) -> dict[str, Path]:
    """The committed exports in the lake, by file name (empty before the first publication)."""
    pointer = root / EXPORTS_POINTER
    if not pointer.exists():
        return {}
    current = json.loads(pointer.read_text())
    return {name: root / current["tag"] / name for name in current["files"]}


def _remove_old_exports(data_dir: Path, keep: set[Path | None]) -> None:
    for old in (data_dir / "mart_exports").iterdir():
        if old.resolve() not in keep:
            shutil.rmtree(old, ignore_errors=True)
