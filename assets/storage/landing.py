"""Reading the landing zone: which files a run may see, and their records with physical line numbers.

The landing zone is read-only. A run for business day D sees every file delivered on or before
D+1 (deliveries arrive the next morning), so a re-run or backfill sees the zone as it stood then.

Errors about a file name the file, the line and what was expected, and never quote a value:
landing files carry personal data, and error messages end up in Dagster's event log.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import gzip
import hashlib
import io
import mmap
import os
import re
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from data_contracts.contract import SourceContract

FILE_NAME = re.compile(r"^(?P<prefix>[a-z_]+)_(?P<date>\d{8})\.csv(?P<gz>\.gz)?$")


class LandingFileError(Exception):
    """A landing file that cannot be read at all. The message names file, line and expectation."""

    def __init__(self, file: str, line: int | None, expected: str):
        self.file, self.line, self.expected = file, line, expected
        where = f"{file}, line {line}" if line is not None else file
        super().__init__(f"{where}: {expected}")

    def __reduce__(self):  # survives the trip back from a worker process
        return (LandingFileError, (self.file, self.line, self.expected))


@dataclass(frozen=True)
class LandingFile:
    source: str
    path: Path
    delivered_on: dt.date

    @property
    def name(self) -> str:
        return self.path.name

    def sha256(self) -> str:
        # one reused buffer: a fresh multi-MB bytes object per read costs more than the hashing
        digest = hashlib.sha256()
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        with self.path.open("rb", buffering=0) as fh:
            while n := fh.readinto(buffer):
                digest.update(view[:n])
        return digest.hexdigest()


def visible_cutoff(business_day: dt.date) -> dt.date:
    """The last delivery date a run for `business_day` may read: D+1."""
    return business_day + dt.timedelta(days=1)


def list_files(landing_dir: Path, contract: SourceContract, up_to: dt.date | None = None) -> list[LandingFile]:
    """Files of one source delivered on or before `up_to`, oldest first.

    A file whose name does not follow `<name>_YYYYMMDD.csv[.gz]` is an error, not something to skip:
    a silently ignored delivery is silent data loss.
    """
    folder = landing_dir / contract.source
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.name.startswith("."):
            continue
        match = FILE_NAME.match(path.name)
        if not match or match["prefix"] != contract.file_prefix:
            raise LandingFileError(
                f"{contract.source}/{path.name}",
                None,
                f"file name must be {contract.file_prefix}_YYYYMMDD.csv or .csv.gz",
            )
        try:
            delivered = dt.datetime.strptime(match["date"], "%Y%m%d").date()
        except ValueError:
            raise LandingFileError(
                f"{contract.source}/{path.name}", None, "the date in the file name is not a valid YYYYMMDD date"
            ) from None
        if up_to is None or delivered <= up_to:
            files.append(LandingFile(contract.source, path, delivered))
    return sorted(files, key=lambda f: (f.delivered_on, f.name))


def _open_bytes(file: LandingFile) -> bytes:
    label = f"{file.source}/{file.name}"
    data = file.path.read_bytes()
    if file.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise LandingFileError(label, None, "a complete gzip stream (the file is truncated or not gzip)") from None
    if not data.strip():
        raise LandingFileError(label, 1, "a header row (the file is empty)")
    return data


def _decode(data: bytes, label: str) -> str:
    try:
        return codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LandingFileError(label, line, "UTF-8 text (found bytes that are not UTF-8)") from None


def _check_header(found: list[str], contract: SourceContract, label: str) -> None:
    expected = contract.header
    if [h.strip() for h in found] != expected:
        raise LandingFileError(label, 1, f"the header {';'.join(expected)}")


@dataclass
class RawBatch:
    """Text records of one file: `records` has the contract's columns plus `_line`; `malformed`
    holds (line, field_count, raw text) for records that could not be split into columns."""

    file: LandingFile
    records: pl.DataFrame
    malformed: pl.DataFrame
    rows_read: int


MALFORMED_SCHEMA = {"line": pl.Int64, "fields": pl.Int64, "raw": pl.String}


def read_small_file(file: LandingFile, contract: SourceContract) -> RawBatch:
    """Read a small source file with the csv module, which handles quotes and embedded newlines.

    `line` is the physical line on which each record starts (header = 1).
    """
    label = f"{file.source}/{file.name}"
    text = _decode(_open_bytes(file), label)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", quotechar='"', strict=True)
    width = len(contract.header)
    columns: list[list[str]] = [[] for _ in range(width)]
    lines: list[int] = []
    malformed: list[tuple[int, int, str]] = []
    start = 1
    try:
        header = next(reader)
        _check_header(header, contract, label)
        start = reader.line_num + 1
        for record in reader:
            if not record:  # a blank line is not a record
                start = reader.line_num + 1
                continue
            if len(record) != width:
                malformed.append((start, len(record), ";".join(record)))
            else:
                for i, value in enumerate(record):
                    columns[i].append(value.strip())
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error:
        raise LandingFileError(label, start, "a well-formed ;-separated record (an unterminated quote)") from None
    last_was_malformed = bool(malformed) and (not lines or malformed[-1][0] > lines[-1])
    if not text.endswith("\n") and last_was_malformed:
        raise LandingFileError(label, malformed[-1][0], "a complete last record (the file is truncated)")
    records = pl.DataFrame(
        {name: pl.Series(name, col, dtype=pl.String) for name, col in zip(contract.header, columns, strict=True)}
    )
    records = records.with_columns(pl.Series("_line", lines, dtype=pl.Int64))
    bad = pl.DataFrame(malformed, schema=MALFORMED_SCHEMA, orient="row")
    return RawBatch(file, records, bad, rows_read=len(lines) + len(malformed))


def iter_metering_chunks(file: LandingFile, contract: SourceContract, chunk_bytes: int = 1 << 26) -> Iterator[RawBatch]:
    """Stream a (possibly multi-GB) Datahub file in line-aligned chunks.

    Every physical line is one record (Datahub values never contain newlines or separators), so
    the line number is exact. Quotes around a field are stripped. Memory stays bounded by the
    chunk size, whatever the file size.

    A chunk is the first `chunk_bytes` read after the previous chunk's last complete line, cut back
    to its own last newline, so the batches do not depend on how the bytes are read.
    """
    return _read_ahead(_metering_chunks(file, contract, chunk_bytes))


def _read_ahead(items: Iterator[RawBatch]) -> Iterator[RawBatch]:
    """Yield the same items, reading the next one in a background thread while the caller works
    on the current one (polars and pread release the GIL, so reading and validating overlap on
    two cores). An error surfaces exactly where the caller would have met it: on its `next()`."""
    done = object()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metering-read-ahead")
    try:
        future = pool.submit(next, items, done)
        while (item := future.result()) is not done:
            future = pool.submit(next, items, done)
            yield item  # type: ignore[misc]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        items.close()


def _metering_chunks(file: LandingFile, contract: SourceContract, chunk_bytes: int) -> Iterator[RawBatch]:
    label = f"{file.source}/{file.name}"
    width = len(contract.header)
    line_offset = 1
    for data, complete in _line_blocks(file, contract, label, chunk_bytes):
        if not complete:
            raise LandingFileError(
                label,
                line_offset + data.count(b"\n") + 1,
                "a complete last record ending in a newline (the file is truncated)",
            )
        _decode(data, label) if not data.isascii() else None
        batch, n = _split_lines(file, contract, data, line_offset, width)
        line_offset += n
        yield batch


def _check_first_line(first: bytes, contract: SourceContract, label: str) -> None:
    if not first.strip():
        raise LandingFileError(label, 1, "a header row (the file is empty)")
    header = _decode(first, label).rstrip("\r\n").split(";")
    _check_header([h.strip('"') for h in header], contract, label)


def _line_blocks(
    file: LandingFile, contract: SourceContract, label: str, chunk_bytes: int
) -> Iterator[tuple[bytes, bool]]:
    """(data, ends with a newline) for the lines after the header, in blocks of about `chunk_bytes`."""
    if file.name.endswith(".gz"):
        yield from _stream_blocks(gzip.open(file.path, "rb"), contract, label, chunk_bytes)  # type: ignore[arg-type]
        return
    with file.path.open("rb", buffering=0) as fh:
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        if size == 0:
            raise LandingFileError(label, 1, "a header row (the file is empty)")
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as view:
            # The map only locates newlines (a few pages near each cut); the blocks themselves are
            # read with pread into one buffer each: no copy of a copy, and the file does not stay
            # mapped into this process's memory.
            end = view.find(b"\n")
            header_end = size if end < 0 else end + 1
            _check_first_line(os.pread(fd, header_end, 0), contract, label)
            start = read_to = header_end
            while start < size:
                if read_to < size:
                    read_to = min(size, read_to + chunk_bytes)
                    cut = view.rfind(b"\n", start, read_to) + 1
                    if cut == 0:
                        continue  # no complete line yet: the next block is appended to this one
                else:
                    cut = size  # what is left after the last newline: a truncated last record
                data = os.pread(fd, cut - start, start)
                start = cut
                yield data, data.endswith(b"\n")


def _stream_blocks(
    stream: io.BufferedIOBase, contract: SourceContract, label: str, chunk_bytes: int
) -> Iterator[tuple[bytes, bool]]:
    """The same blocks as `_line_blocks`, from a stream (a gzip file cannot be mapped)."""
    try:
        _check_first_line(stream.readline(), contract, label)
        line_offset = 1
        carry = b""
        while True:
            try:
                block = stream.read(chunk_bytes)
            except (OSError, EOFError, zlib.error):
                raise LandingFileError(
                    label, line_offset + 1, "a complete gzip stream (the file is truncated)"
                ) from None
            if not block and not carry:
                break
            data = carry + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    carry = data
                    continue
                data, carry = data[:cut], data[cut:]
            else:
                carry = b""
            line_offset += data.count(b"\n")
            yield data, data.endswith(b"\n")
    finally:
        stream.close()


#: ASCII bytes that neither `str.strip_chars()` (White_Space) nor the quote strip can remove: all but
#: the control characters, space, `!` and `"` (the newline ends a line). Deleting them from an ASCII
#: block leaves nothing exactly when no field needs stripping (`!` only makes the test cautious).
_UNSTRIPPABLE = bytes(b for b in range(256) if b > 0x22 or b == 0x0A)


def _split_lines(
    file: LandingFile, contract: SourceContract, data: bytes, line_offset: int, width: int
) -> tuple[RawBatch, int]:
    """One block of whole lines → (records with their physical line numbers, lines consumed)."""
    lines = pl.read_csv(
        data, has_header=False, separator="\x1f", quote_char=None, schema={"_text": pl.String}, infer_schema=False
    )
    n = lines.height
    lines = lines.with_columns(pl.int_range(line_offset + 1, line_offset + 1 + n, dtype=pl.Int64).alias("_line"))
    lines = lines.filter(pl.col("_text").is_not_null() & (pl.col("_text") != ""))
    # count the separators once and keep the count, rather than once per filter
    lines = lines.with_columns(
        (pl.col("_text").str.count_matches(";", literal=True) + 1).cast(pl.Int64).alias("_fields")
    )
    ok_mask = pl.col("_fields") == width
    ok = lines.filter(ok_mask)
    if ok.height == lines.height:
        bad = pl.DataFrame(schema=MALFORMED_SCHEMA)
    else:
        bad = lines.filter(~ok_mask).select(
            pl.col("_line").alias("line"), pl.col("_fields").alias("fields"), pl.col("_text").alias("raw")
        )
        # A filtered string column can still point into the whole block's text, and the caller keeps
        # the malformed records until the end of the file: copy the few of them out, so that each
        # block's text is freed with the block (otherwise memory grows with the file size).
        bad = pl.DataFrame(bad.to_dict(as_series=False), schema=MALFORMED_SCHEMA)
    split = ok.select(
        pl.col("_text").str.split_exact(";", width - 1).struct.rename_fields(contract.header).alias("s"), "_line"
    ).unnest("s")
    if not data.isascii() or data.translate(None, _UNSTRIPPABLE):
        split = split.with_columns([pl.col(c).str.strip_chars().str.strip_chars('"') for c in contract.header])
    return RawBatch(file, split, bad, rows_read=lines.height), n
