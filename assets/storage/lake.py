"""The Parquet lake: metering readings, daily aggregates, the metering quarantine and the mart exports.

By default the lake is a folder under the data directory, as it always was. `LUPA_LAKE_URL`
(`s3://bucket/prefix`) moves it to object storage while the DuckDB files stay on the local volume.
A lake location is a `pathlib.Path` or, on object storage, a `upath.UPath` over fsspec (s3fs), so
listing, `exists`, `read_text` and `/` read the same either way; what differs (atomic writes,
Parquet through polars, pyarrow and DuckDB, removing a folder) goes through the functions here.

Credentials are never configured here: s3fs (botocore) takes them from the environment or the
standard AWS chain (`AWS_ACCESS_KEY_ID`…, a profile, an IAM role), and the endpoint of an
S3-compatible server from `AWS_ENDPOINT_URL`. Nothing but the lake URL reaches a resource's config,
so no key can end up in run config, metadata or logs (docs/decisions.md §36).

Every write of one object is atomic for readers: locally a temporary file renamed over the target,
on S3 a single PUT (an object, even a multipart upload, becomes visible only when complete). Sets
of objects are committed by a manifest (see `assets.storage.metering`, decisions §37).
"""

from __future__ import annotations

import functools
import io
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import duckdb

REMOTE_SCHEMES = ("s3",)
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


def lake_location(url: str) -> Path:
    """The root of a lake given as a URL (`s3://bucket/prefix`) or a local path."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme:
        return Path(url)
    if scheme not in REMOTE_SCHEMES:
        raise ValueError(f"unsupported lake URL scheme {scheme!r} (supported: {', '.join(REMOTE_SCHEMES)})")
    # one filesystem per lake and environment: fsspec would otherwise hand back the instance made for
    # another endpoint or key (its cache is keyed by arguments, and credentials are not arguments here)
    return _remote_root(url.rstrip("/"), os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_ACCESS_KEY_ID"))


@functools.lru_cache(maxsize=8)
def _remote_root(url: str, endpoint: str | None, key_id: str | None) -> Path:
    from upath import UPath

    # no listing cache: another process (a parallel partition, a worker) writes the same prefixes
    return UPath(url, use_listings_cache=False, skip_instance_cache=True)  # type: ignore[return-value]


def is_remote(path: Path) -> bool:
    """True for a UPath on object storage (which, unlike a local path, is no `pathlib.Path`)."""
    return not isinstance(path, Path)


def fs_path(path: Path) -> str:
    """The path as the filesystem object names it (without `s3://`)."""
    return path.path if is_remote(path) else str(path)  # type: ignore[attr-defined]


def make_dirs(path: Path, mode: int | None = None) -> Path:
    """A folder in the lake: a real folder locally (owner-only when `mode` says so); nothing on S3,
    where a prefix exists as soon as an object under it does."""
    if not is_remote(path):
        path.mkdir(parents=True, exist_ok=True)
        if mode is not None:
            os.chmod(path, mode)
    return path


def write_bytes(data: bytes, path: Path) -> None:
    """One object, visible whole or not at all."""
    if is_remote(path):
        with path.open("wb") as fh:
            fh.write(data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, PRIVATE_FILE)
    tmp.replace(path)


def write_text(text: str, path: Path) -> None:
    write_bytes(text.encode("utf-8"), path)


def write_parquet(frame: pl.DataFrame, path: Path, **options) -> None:
    """Write a Parquet object atomically (readers see the old object or the new one)."""
    if is_remote(path):
        buffer = io.BytesIO()
        frame.write_parquet(buffer, **options)
        write_bytes(buffer.getvalue(), path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.write_parquet(tmp, **options)
    os.chmod(tmp, PRIVATE_FILE)  # restricted data: owner-only, like the zone it is in
    tmp.replace(path)


def read_parquet(path: Path, **options) -> pl.DataFrame:
    if is_remote(path):
        with path.open("rb") as fh:
            return pl.read_parquet(fh.read(), **options)
    return pl.read_parquet(path, **options)


def scan_parquet(paths: list[Path]) -> pl.LazyFrame:
    """A lazy scan over many Parquet objects (never loaded whole)."""
    if paths and is_remote(paths[0]):
        dataset = ds.dataset([fs_path(p) for p in paths], filesystem=paths[0].fs, format="parquet")  # type: ignore[attr-defined]
        return pl.scan_pyarrow_dataset(dataset)
    return pl.scan_parquet(paths, hive_partitioning=False)


def num_rows(path: Path) -> int:
    """Rows in a Parquet object, from its footer."""
    if is_remote(path):
        with path.open("rb") as fh:
            return pq.ParquetFile(fh).metadata.num_rows
    return pq.read_metadata(path).num_rows


def remove(path: Path) -> None:
    """Remove one object; a missing one is fine."""
    if is_remote(path):
        try:
            path.fs.rm_file(fs_path(path))  # type: ignore[attr-defined]
        except FileNotFoundError:
            pass
        return
    path.unlink(missing_ok=True)


def remove_tree(path: Path) -> None:
    """Remove a folder (a prefix) and everything under it; a missing one is fine."""
    if is_remote(path):
        fs = path.fs  # type: ignore[attr-defined]
        found = fs.find(fs_path(path))
        if found:
            fs.rm(found)
        return
    shutil.rmtree(path, ignore_errors=True)


def upload(local: Path, path: Path) -> None:
    """Put a local file at a lake location (rename when the lake is local)."""
    if is_remote(path):
        path.fs.put_file(str(local), fs_path(path))  # type: ignore[attr-defined]
        local.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    local.replace(path)


def sql_path(path: Path) -> str:
    """The path as a DuckDB query names it (`s3://…` is served by the registered fsspec filesystem)."""
    return str(path).replace("'", "''")


def register(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Let DuckDB read the lake: on S3 through the lake's fsspec filesystem (DuckDB's own httpfs
    extension is a download, which these machines cannot make)."""
    if is_remote(path):
        fs = path.fs  # type: ignore[attr-defined]
        if not any(f == fs.protocol or f in fs.protocol for f in conn.list_filesystems()):
            conn.register_filesystem(fs)
