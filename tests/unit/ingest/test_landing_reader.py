"""The small-file reader and the metering reader on crafted files: what one odd line may cost.

A line too long for its contract, or with a quote the csv module cannot read, is one quarantined
record and the rest of the file is read; only an actual unterminated quote refuses the file. A line
holding only whitespace is blank, as an empty line is. A damaged `.gz` is a data error naming the
file (a `LandingFileError`, which the assets never retry); a file system error stays an OSError,
which they do retry.
"""

import datetime as dt
import errno
import gzip

import pytest

from assets.storage import landing
from assets.storage.ingestion import read_source
from assets.storage.landing import MAX_RECORD_CHARS, LandingFileError, iter_metering_chunks, list_files
from assets.storage.metering import ingest_delivery
from data_contracts import sources
from tests.dagster_helpers import storage_for
from tests.landing_builder import GSRN1, HEADERS, make_hetu, metering_row, person, write

DAY = dt.date(2026, 11, 23)
DELIVERY = "20261124"
MEGABYTE = 1_000_000


def consent(n: int) -> str:
    return f"E{n:05d};C{n:07d};marketing;email;granted;2026-11-20T10:00:00+02:00;web_form;v3;form-{n}"


@pytest.fixture
def storage(tmp_path):
    return storage_for(tmp_path)


def quarantined(outcome) -> list[tuple[int, str, str]]:
    return [(r["line"], r["rule"], r["detail"]) for r in outcome.quarantine.iter_rows(named=True)]


def test_a_one_megabyte_line_in_a_consent_file_is_one_quarantined_record(storage):
    write(storage.landing, "consents", DELIVERY, [consent(1), "x" * MEGABYTE, consent(3)])
    outcome = read_source(storage, sources.consents, DAY)
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_quarantined) == (3, 2, 1)
    [(line, rule, detail)] = quarantined(outcome)
    assert (line, rule) == (3, "malformed_record")
    assert f"{MEGABYTE:,} characters" in detail and "quote" not in detail
    assert len(outcome.quarantine["raw"][0]) == MAX_RECORD_CHARS  # stored cut to the limit
    assert outcome.valid["line"].to_list() == [2, 4]


def test_a_one_megabyte_street_address_quarantines_its_record_only(storage):
    address = "Mannerheimintie " + "9" * MEGABYTE
    rows = [
        person("C0000001", make_hetu("131052", "-", 308)),
        person("C0000002", make_hetu("020701", "-", 233), street_address=address),
        person("C0000003", make_hetu("010190", "-", 123)),
    ]
    write(storage.landing, "customers", DELIVERY, rows)
    outcome = read_source(storage, sources.customers, DAY)
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_quarantined) == (3, 2, 1)
    [(line, rule, detail)] = quarantined(outcome)
    assert (line, rule) == (3, "malformed_record")
    assert "C0000002" not in detail and "Mannerheimintie" not in detail  # no personal value in the detail


def test_an_oversized_quoted_field_over_several_lines_is_one_record_and_later_lines_stay_exact(storage):
    long_quoted = (
        'E00002;C0000002;marketing;email;granted;2026-11-20T10:00:00Z;web_form;v3;"'
        + ("y" * 200_000 + "\n") * 2
        + 'end"'
    )
    write(storage.landing, "consents", DELIVERY, [consent(1), long_quoted, consent(3)])
    outcome = read_source(storage, sources.consents, DAY)
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_quarantined) == (3, 2, 1)
    assert [q[0] for q in quarantined(outcome)] == [3]
    assert outcome.valid["line"].to_list() == [2, 6]  # the record took lines 3-5


def test_a_quote_the_csv_module_cannot_read_is_one_record_not_an_unterminated_quote(storage):
    broken = 'E00002;C0000002;"marketing"x;email;granted;2026-11-20T10:00:00Z;web_form;v3;f'
    write(storage.landing, "consents", DELIVERY, [consent(1), broken, consent(3)])
    outcome = read_source(storage, sources.consents, DAY)
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_quarantined) == (3, 2, 1)
    [(line, rule, detail)] = quarantined(outcome)
    assert (line, rule) == (3, "malformed_record") and "unterminated" not in detail
    assert outcome.quarantine["raw"][0] == broken


@pytest.mark.parametrize("tail", [1, 300_000], ids=["short-tail", "tail-past-the-csv-field-limit"])
def test_an_actual_unterminated_quote_still_refuses_the_file(storage, tail):
    rows = [consent(1), 'E00002;C0000002;"marketing;email', *[consent(3)] * tail]
    write(storage.landing, "consents", DELIVERY, rows)
    with pytest.raises(LandingFileError) as error:
        read_source(storage, sources.consents, DAY)
    assert (error.value.file, error.value.line) == ("consents/consent_events_20261124.csv", 3)
    assert "unterminated quote" in str(error.value)


@pytest.mark.parametrize("blank", ["   ", "\t", " \t ", "\u00a0"], ids=["spaces", "tab", "mixed", "nbsp"])
def test_a_line_holding_only_whitespace_is_blank_like_an_empty_line(storage, blank):
    write(storage.landing, "consents", DELIVERY, [consent(1), blank, "", consent(4)])
    outcome = read_source(storage, sources.consents, DAY)
    # blank lines are not records: neither read nor quarantined, so conservation holds on records
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_quarantined) == (2, 2, 0)
    assert outcome.valid["line"].to_list() == [2, 5]


def test_a_whitespace_line_in_a_metering_file_is_blank_too(storage):
    rows = [metering_row(GSRN1, "2026-11-22T22:00:00Z"), "   ", "", metering_row(GSRN1, "2026-11-22T23:00:00Z")]
    write(storage.landing, "metering", DELIVERY, rows)
    [file] = list_files(storage.landing, sources.metering)
    [batch] = list(iter_metering_chunks(file, sources.metering))
    assert (batch.rows_read, batch.records["_line"].to_list(), batch.malformed.height) == (2, [2, 5], 0)


# ---- damaged .gz files -------------------------------------------------------------------------
def _gz_cases(header: str, row: str) -> dict[str, bytes]:
    text = (header + "\n" + "\n".join([row] * 2000) + "\n").encode()
    packed = gzip.compress(text, mtime=0)
    corrupt = bytearray(packed)
    corrupt[len(packed) // 2 : len(packed) // 2 + 64] = b"\xff" * 64
    return {"plain-csv": text, "truncated": packed[: len(packed) // 2], "corrupt": bytes(corrupt), "zero-bytes": b""}


CUSTOMER_ROW = person("C0000001", make_hetu("131052", "-", 308))
METERING_ROW = metering_row(GSRN1, "2026-11-22T22:00:00Z")


@pytest.mark.parametrize("case", ["plain-csv", "truncated", "corrupt", "zero-bytes"])
def test_a_damaged_gz_small_file_is_a_data_error_naming_the_file(storage, case):
    raw = _gz_cases(HEADERS["customers"], CUSTOMER_ROW)[case]
    (storage.landing / "customers").mkdir(parents=True)
    (storage.landing / "customers" / "customers_20261124.csv.gz").write_bytes(raw)
    with pytest.raises(LandingFileError) as error:
        read_source(storage, sources.customers, DAY)
    assert error.value.file == "customers/customers_20261124.csv.gz"
    assert "Kaarina" not in str(error.value) and "Aino" not in str(error.value) and "b'" not in str(error.value)


@pytest.mark.parametrize("case", ["plain-csv", "truncated", "corrupt", "zero-bytes"])
def test_a_damaged_gz_metering_file_is_a_data_error_and_stores_nothing(storage, case):
    raw = _gz_cases(HEADERS["metering"], METERING_ROW)[case]
    (storage.landing / "metering").mkdir(parents=True)
    (storage.landing / "metering" / "metering_20261124.csv.gz").write_bytes(raw)
    with pytest.raises(LandingFileError) as error:
        ingest_delivery(storage, DAY, chunk_bytes=4096)
    assert error.value.file == "metering/metering_20261124.csv.gz"
    assert GSRN1 not in str(error.value) and "b'" not in str(error.value)
    assert not list(storage.metering_dir.rglob("*.parquet"))


def test_a_file_system_error_reading_a_gz_stays_transient(storage, monkeypatch):
    """An EIO while reading is the disk or network failing, not the file: it must reach the retry policy."""
    write(storage.landing, "metering", DELIVERY, [METERING_ROW], gz=True)

    class FailingStream:
        def readline(self):
            return (HEADERS["metering"] + "\n").encode()

        def read(self, n):
            raise OSError(errno.EIO, "Input/output error")

        def close(self):
            pass

    monkeypatch.setattr(landing.gzip, "open", lambda *args, **kwargs: FailingStream())
    with pytest.raises(OSError) as error:
        ingest_delivery(storage, DAY)
    assert not isinstance(error.value, LandingFileError) and error.value.errno == errno.EIO
