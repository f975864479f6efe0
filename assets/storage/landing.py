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
from data_contracts.vocabulary import HELSINKI

FILE_NAME = re.compile(r"^(?P<prefix>[a-z_]+)_(?P<date>\d{8})\.csv(?P<gz>\.gz)?$")


#: what a changed file under a known name is refused with (landing-zone.md: landing files are immutable)
CHANGED_FILE = (
    "the same bytes as the file delivered earlier under this name; it changed since it was read "
    "(landing files are immutable)"
)


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

    def size_and_mtime(self) -> tuple[int, int]:
        """(size in bytes, mtime in ns): recorded beside the sha256, so that a later run can tell a
        file untouched since by one stat, and hash only the files whose stat moved."""
        stat = self.path.stat()
        return stat.st_size, stat.st_mtime_ns

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


def latest_possible_delivery(today: dt.date | None = None) -> dt.date:
    """The latest delivery date a file in the landing zone can have: tomorrow in Helsinki, which
    leaves a day for a source whose clock or time zone runs ahead."""
    return (today or dt.datetime.now(HELSINKI).date()) + dt.timedelta(days=1)


def list_files(
    landing_dir: Path, contract: SourceContract, up_to: dt.date | None = None, today: dt.date | None = None
) -> list[LandingFile]:
    """Files of one source delivered on or before `up_to`, oldest first.

    A file whose name does not follow `<name>_YYYYMMDD.csv[.gz]` is an error, not something to skip:
    a silently ignored delivery is silent data loss. So is a file dated after
    `latest_possible_delivery` (the wall clock, not the run's day: a backfill legitimately sees
    later deliveries, but nobody can deliver next year's file today).
    """
    folder = landing_dir / contract.source
    if not folder.is_dir():
        return []
    latest_possible = latest_possible_delivery(today)
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
        if delivered > latest_possible:
            # never read until its date, so silently lost until then: a wrong date in the name
            raise LandingFileError(
                f"{contract.source}/{path.name}",
                None,
                f"a delivery date no later than {latest_possible:%Y%m%d} in the file name "
                "(a file cannot be delivered in the future; its date is wrong)",
            )
        if up_to is None or delivered <= up_to:
            files.append(LandingFile(contract.source, path, delivered))
    return sorted(files, key=lambda f: (f.delivered_on, f.name))


#: What a damaged `.gz` raises: not gzip at all, or a bad checksum (BadGzipFile), cut short (EOFError),
#: corrupt deflate data (zlib.error). These are data errors, never retried. A plain OSError stays out:
#: that is the file system failing (transient I/O), which the retry policy is there for.
GZIP_DATA_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def gzip_problem(error: BaseException) -> str:
    """What was expected of a `.gz` that failed with `error`; never the error's text, which may quote bytes."""
    if isinstance(error, EOFError):
        return "a complete gzip stream (the file is truncated)"
    if isinstance(error, zlib.error):
        return "valid gzip data (the compressed data is corrupt)"
    return "a gzip-compressed file (it is not gzip, or its gzip data is damaged)"


def _open_bytes(file: LandingFile) -> bytes:
    label = f"{file.source}/{file.name}"
    data = file.path.read_bytes()
    if file.name.endswith(".gz"):
        try:  # a 0-byte .gz decompresses to nothing and is refused below as an empty file
            data = gzip.decompress(data)
        except GZIP_DATA_ERRORS as error:
            raise LandingFileError(label, None, gzip_problem(error)) from None
    if not data.strip():
        raise LandingFileError(label, 1, "a header row (the file is empty)")
    return data


def _decode(data: bytes, label: str, first_line: int = 1) -> str:
    """`data` as text; `first_line` is the physical line `data` starts on (a metering block's)."""
    try:
        return codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        raise LandingFileError(label, line, "UTF-8 text (found bytes that are not UTF-8)") from None


#: UTF-16 without a BOM decodes as "UTF-8" (ASCII with a NUL after every letter): name the real problem
_UTF16 = "UTF-8 text (the header holds NUL bytes, as UTF-16 text does)"


def _check_header(found: list[str], contract: SourceContract, label: str) -> None:
    expected = contract.header
    if any("\x00" in h for h in found):
        raise LandingFileError(label, 1, _UTF16)
    if [h.strip() for h in found] != expected:
        raise LandingFileError(label, 1, f"the header {';'.join(expected)}")


@dataclass
class RawBatch:
    """Text records of one file: `records` has the contract's columns plus `_line`; `malformed`
    holds (line, field_count, raw text, detail) for records that could not be split into columns
    (`detail` is null for a wrong field count, which the quarantine words from `fields`).

    `rows_read` counts records, not lines: an empty line, or one holding only whitespace, is blank
    and is neither read nor quarantined (the conservation check counts records)."""

    file: LandingFile
    records: pl.DataFrame
    malformed: pl.DataFrame
    rows_read: int


MALFORMED_SCHEMA = {"line": pl.Int64, "fields": pl.Int64, "raw": pl.String, "detail": pl.String}

#: The longest record a small source file may have, in characters (its fields and separators). Real
#: records are far shorter: the widest contract (customers: 15 fields of names, an address, an email)
#: has records of a few hundred characters, and its longest fields (names, an address, an evidence
#: reference) are short text, never prose. 64 Ki is over a hundred times that, so no genuine record
#: comes near it, and it bounds what one bad record costs
#: in the quarantine table. A longer record is one malformed record, quarantined with its physical
#: line and its raw text cut to this length; the rest of the file is read normally.
MAX_RECORD_CHARS = 1 << 16

#: The csv module's own field limit (131,072 characters by default) is raised once, for the process,
#: so that it never decides: at that limit the module stops with an error that cannot tell an
#: over-long record from an unterminated quote, and cannot go on to the next record. Raising it costs
#: no safety here, because `read_small_file` has the whole decoded file in memory already: no field
#: can be longer than that text. An unterminated quote is buffered to the end of the file before it is
#: reported, the same order of memory as the file's parsed records. Another csv reader in the process
#: only accepts more. 2**31 - 1 is the largest value a C long holds on every platform.
CSV_FIELD_LIMIT = 2**31 - 1
csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))

_TOO_LONG = "a record of {:,} characters, longer than the " + f"{MAX_RECORD_CHARS:,}" + " a record may have"
#: a NUL character is no part of any text a source exports (a zeroed disk block, a UTF-16 file cut
#: into UTF-8): its record is malformed, quarantined on its own, never stored as a name or an id
_NUL = "a record holding a NUL character (text exports never contain one)"
_UNSPLITTABLE = "a record that cannot be split into fields (a closing quote must be followed by ; or the line end)"


def read_small_file(file: LandingFile, contract: SourceContract) -> RawBatch:
    """Read a small source file with the csv module, which handles quotes and embedded newlines.

    `line` is the physical line on which each record starts (header = 1). A record with the wrong
    number of fields, longer than `MAX_RECORD_CHARS`, or with a quote the csv module cannot read is
    malformed: quarantined on its own. The whole file is refused only when it cannot be read at all:
    a quoted field still open at the end of the file (an unterminated quote), or a last record cut short.
    """
    label = f"{file.source}/{file.name}"
    text = _decode(_open_bytes(file), label)
    complete = text.endswith("\n")
    lines = io.StringIO(text, newline="").readlines()
    del text  # the lines hold the same text; they give an unsplittable record its raw text
    reader = csv.reader(lines, delimiter=";", quotechar='"', strict=True)
    try:
        header = next(reader)
    except csv.Error:
        header = []  # refused as a wrong header below
    _check_header(header, contract, label)
    split = _SplitRecords(
        len(contract.header), longest_line=max(map(len, lines), default=0), has_nul=any("\x00" in ln for ln in lines)
    )
    for start, end, record in _records(reader, label):
        split.add(start, end, record, lines)
    if not complete and split.last_miscounted():
        raise LandingFileError(label, split.malformed[-1][0], "a complete last record (the file is truncated)")
    records = pl.DataFrame(
        {name: pl.Series(name, col, dtype=pl.String) for name, col in zip(contract.header, split.columns, strict=True)}
    )
    records = records.with_columns(pl.Series("_line", split.lines, dtype=pl.Int64))
    bad = pl.DataFrame(split.malformed, schema=MALFORMED_SCHEMA, orient="row")
    return RawBatch(file, records, bad, rows_read=len(split.lines) + len(split.malformed))


def _records(reader, label: str) -> Iterator[tuple[int, int, list[str] | None]]:
    """(first line, last line, fields) per record after the header; fields are None for a record the
    csv module could not split. Only the end of the file inside a quoted field refuses the file: an
    open quote swallows every later record, so nothing after it can be read with confidence."""
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "unexpected end of data" in str(error):
                raise LandingFileError(
                    label, start, "a closing quote (an unterminated quote: a quoted field runs to the end of the file)"
                ) from None
            record = None  # the module drops the rest of this line and starts afresh on the next
        yield start, reader.line_num, record
        start = reader.line_num + 1


class _SplitRecords:
    """The columns of the well-formed records and the malformed records, in file order.

    The length of a record is only summed when it could be too long: when it spans several lines,
    or when some line of the file is longer than the limit (a one-line record is never longer than
    its line). Typical files pay one comparison per record for the check."""

    def __init__(self, width: int, longest_line: int, has_nul: bool = False):
        self.width = width
        self.columns: list[list[str]] = [[] for _ in range(width)]
        self.lines: list[int] = []
        self.malformed: list[tuple[int, int, str, str | None]] = []
        self._lines_fit = longest_line <= MAX_RECORD_CHARS
        self._has_nul = has_nul
        self._last_miscounted = False

    def add(self, start: int, end: int, record: list[str] | None, physical: list[str]) -> None:
        fits = record is not None and ((self._lines_fit and start == end) or _length(record) <= MAX_RECORD_CHARS)
        if fits and len(record) == self.width and not (self._has_nul and any("\x00" in v for v in record)):
            for column, value in zip(self.columns, record, strict=True):
                column.append(value.strip())
            self.lines.append(start)
            self._last_miscounted = False
        elif record is not None and len(record) <= 1 and not "".join(physical[start - 1 : end]).strip():
            return  # an empty line, or one holding only whitespace, is blank: not a record
        else:
            self._add_malformed(start, end, record, physical)

    def _add_malformed(self, start: int, end: int, record: list[str] | None, physical: list[str]) -> None:
        self._last_miscounted = False
        if record is None:
            self.malformed.append((start, 0, _raw(physical, start, end), _UNSPLITTABLE))
        elif (length := _length(record)) > MAX_RECORD_CHARS:
            self.malformed.append((start, len(record), _raw(physical, start, end), _TOO_LONG.format(length)))
        elif len(record) == self.width and any("\x00" in v for v in record):
            self.malformed.append((start, len(record), _raw(physical, start, end), _NUL))
        else:
            self.malformed.append((start, len(record), ";".join(record), None))
            self._last_miscounted = True

    def last_miscounted(self) -> bool:
        """Whether the last record has the wrong number of fields: how a file cut off mid-record ends."""
        return self._last_miscounted


def _length(record: list[str]) -> int:
    """A record's length in characters: its fields and the separators between them."""
    return sum(map(len, record)) + len(record) - 1


def _raw(physical: list[str], start: int, end: int) -> str:
    """The record's physical lines as delivered, cut to `MAX_RECORD_CHARS`."""
    return "".join(physical[start - 1 : end])[:MAX_RECORD_CHARS].rstrip("\r\n")


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
        _decode(data, label, line_offset + 1) if not data.isascii() else None
        batch, n = _split_lines(file, contract, data, line_offset, width)
        line_offset += n
        yield batch


def _check_first_line(first: bytes, contract: SourceContract, label: str) -> None:
    if not first.strip():
        raise LandingFileError(label, 1, "a header row (the file is empty)")
    text = _decode(first, label).rstrip("\r\n")
    if "\r" in text:
        # the streamed reader splits lines on LF (Datahub's own line end, CRLF read too): a file whose
        # lines end in CR alone is one long line, which the header check would misname
        raise LandingFileError(label, 1, "lines ending in LF or CRLF (this file's lines end in CR alone)")
    _check_header([h.strip('"') for h in text.split(";")], contract, label)


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
    """The same blocks as `_line_blocks`, from a stream (a gzip file cannot be mapped).

    A damaged gzip (not gzip at all, truncated, corrupt) is a `LandingFileError`, so that the asset
    fails once instead of being retried as if it were an I/O error. The line named is the first one
    not read completely: the damage is in it or after it.
    """
    try:
        try:
            first = stream.readline()
        except GZIP_DATA_ERRORS as error:
            raise LandingFileError(label, None, gzip_problem(error)) from None
        _check_first_line(first, contract, label)
        line_offset = 1
        carry = b""
        while True:
            try:
                block = stream.read(chunk_bytes)
            except GZIP_DATA_ERRORS as error:
                raise LandingFileError(label, line_offset + 1, gzip_problem(error)) from None
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
    has_nul = b"\x00" in data  # one memchr per block; NUL lines are malformed (see _NUL)
    if has_nul:
        ok_mask = ok_mask & ~pl.col("_text").str.contains("\x00", literal=True)
    ok = lines.filter(ok_mask)
    blanks = 0
    if ok.height == lines.height:
        bad = pl.DataFrame(schema=MALFORMED_SCHEMA)
    else:
        bad = lines.filter(~ok_mask).select(
            pl.col("_line").alias("line"),
            pl.col("_fields").alias("fields"),
            pl.col("_text").alias("raw"),
            pl.when(pl.col("_text").str.contains("\x00", literal=True))
            .then(pl.lit(_NUL))
            .otherwise(pl.lit(None, pl.String))
            .alias("detail")
            if has_nul
            else pl.lit(None, pl.String).alias("detail"),
        )
        # a line holding only whitespace is blank, like an empty line: not a record (checked here,
        # among the few lines with the wrong field count, so that the hot path pays nothing)
        blank = bad.get_column("raw").str.strip_chars() == ""
        blanks = int(blank.sum())
        bad = bad.filter(~blank) if blanks else bad
        # A filtered string column can still point into the whole block's text, and the caller keeps
        # the malformed records until the end of the file: copy the few of them out, so that each
        # block's text is freed with the block (otherwise memory grows with the file size).
        bad = pl.DataFrame(bad.to_dict(as_series=False), schema=MALFORMED_SCHEMA)
    split = ok.select(
        pl.col("_text").str.split_exact(";", width - 1).struct.rename_fields(contract.header).alias("s"), "_line"
    ).unnest("s")
    if not data.isascii() or data.translate(None, _UNSTRIPPABLE):
        split = split.with_columns([pl.col(c).str.strip_chars().str.strip_chars('"') for c in contract.header])
    return RawBatch(file, split, bad, rows_read=lines.height - blanks), n
