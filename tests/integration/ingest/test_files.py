"""Whole-file behaviour: unreadable files fail cleanly, deliveries are immutable, reads are as-of D."""

import datetime as dt
import gzip
import json
import os

import polars as pl
import pytest

from assets.storage.ingestion import read_source, write_source
from assets.storage.landing import LandingFile, LandingFileError
from assets.storage.mart import published_as_of, read_published
from assets.storage.metering import ingest_delivery, stored_rows, verify_known_deliveries
from assets.storage.zones import query
from data_contracts import sources
from tests.dagster_helpers import run_day, storage_for
from tests.integration.audiences.test_policy_end_to_end import consent, landing_zone
from tests.integration.publish.test_marketing_mart import MART_TABLES
from tests.landing_builder import GSRN1, HEADERS, make_hetu, metering_row, person, write

DAY = dt.date(2026, 11, 23)


@pytest.fixture
def storage(tmp_path):
    return storage_for(tmp_path)


@pytest.mark.parametrize(
    "raw, line, expected",
    [
        (b"", 1, "the file is empty"),
        (HEADERS["customers"].replace("language", "lang").encode() + b"\n", 1, "the header customer_id;"),
        ((HEADERS["customers"] + "\nC0000001;person;\xe4\n").encode("latin-1"), 2, "UTF-8"),
        (
            (HEADERS["customers"] + "\n" + person("C0000001", make_hetu("131052", "-", 308))[:30]).encode(),
            2,
            "truncated",
        ),
        ((HEADERS["customers"] + '\nC0000001;"person\n').encode(), 2, "unterminated quote"),
    ],
    ids=["empty", "wrong-header", "not-utf8", "truncated", "open-quote"],
)
def test_unreadable_customer_file_names_file_line_and_expectation(storage, raw, line, expected):
    write(storage.landing, "customers", "20261124", [], raw=raw)
    with pytest.raises(LandingFileError) as err:
        read_source(storage, sources.customers, DAY)
    assert err.value.file == "customers/customers_20261124.csv"
    assert err.value.line == line
    assert expected in str(err.value)


def test_unreadable_metering_file_fails_and_leaves_no_partial_state(storage):
    good = [metering_row(GSRN1, f"2026-11-22T{h:02d}:00:00Z") for h in range(22, 24)]
    write(storage.landing, "metering", "20261124", good)
    ingest_delivery(storage, DAY)
    before = sorted(p.name for p in storage.metering_dir.rglob("*.parquet"))
    # the same day re-delivered truncated under a new name is a different file; simulate a
    # truncated gzip for the next day and check nothing of it is stored
    data = gzip.compress(("\n".join([HEADERS["metering"], *good]) + "\n").encode(), mtime=0)[:-12]
    write(storage.landing, "metering", "20261125", [], gz=True, raw=b"")
    (storage.landing / "metering" / "metering_20261125.csv.gz").write_bytes(data)
    with pytest.raises(LandingFileError, match="metering/metering_20261125.csv.gz"):
        ingest_delivery(storage, DAY + dt.timedelta(days=1))
    assert sorted(p.name for p in storage.metering_dir.rglob("*.parquet")) == before


def test_gzip_files_read_like_plain_ones(storage):
    rows = [person("C0000001", make_hetu("131052", "-", 308))]
    write(storage.landing, "customers", "20261124", rows, gz=True)
    assert read_source(storage, sources.customers, DAY).rows_valid == 1


def test_redelivery_with_same_bytes_is_a_no_op_and_different_bytes_an_error(storage):
    rows = [person("C0000001", make_hetu("131052", "-", 308))]
    path = write(storage.landing, "customers", "20261124", rows)
    with storage.warehouse() as conn:
        write_source(conn, read_source(storage, sources.customers, DAY))
        first = query(conn, "select * from customers_valid")
        write_source(conn, read_source(storage, sources.customers, DAY))  # same bytes again
        assert query(conn, "select * from customers_valid").equals(first)
        assert query(conn, "select count(*) as n from file_registry")["n"][0] == 1
        path.write_text(path.read_text().replace("Aino", "Aina"))
        with pytest.raises(LandingFileError, match="customers/customers_20261124.csv: the same bytes"):
            write_source(conn, read_source(storage, sources.customers, DAY))
        assert query(conn, "select * from customers_valid").equals(first)  # nothing changed


def test_metering_redelivery_with_different_bytes_is_an_error(storage):
    path = write(storage.landing, "metering", "20261124", [metering_row(GSRN1, "2026-11-22T22:00:00Z")])
    ingest_delivery(storage, DAY)
    ingest_delivery(storage, DAY)  # same bytes: fine
    path.write_text(path.read_text().replace("0,500", "0,501"))
    with pytest.raises(LandingFileError, match="immutable"):
        ingest_delivery(storage, DAY)


def test_a_changed_metering_file_is_named_as_changed_even_when_it_is_also_unreadable(storage):
    """The file is hashed while its blocks are read: a changed and truncated file still gets the
    registry's message, and the delivery stored before stays as it was."""
    path = write(storage.landing, "metering", "20261124", [metering_row(GSRN1, "2026-11-22T22:00:00Z")])
    first = ingest_delivery(storage, DAY)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # truncated: no final newline
    with pytest.raises(LandingFileError, match="immutable") as raised:
        ingest_delivery(storage, DAY)
    assert raised.value.__suppress_context__  # one clear message, not a chain
    assert stored_rows(storage, first.delivered_on) == (1, 0)


def test_a_run_for_d_reads_only_files_delivered_up_to_d_plus_one(storage):
    write(storage.landing, "customers", "20261110", [person("C0000001", make_hetu("131052", "-", 308))])
    write(storage.landing, "customers", "20261124", [person("C0000002", make_hetu("131052", "-", 309))])
    write(
        storage.landing,
        "consents",
        "20261120",
        ["E1;C0000001;marketing;email;granted;2026-11-19T10:00:00Z;web_form;v3;f-1"],
    )
    write(
        storage.landing,
        "consents",
        "20261125",
        ["E2;C0000001;marketing;email;withdrawn;2026-11-24T10:00:00Z;web_form;v3;f-2"],
    )
    early = read_source(storage, sources.customers, dt.date(2026, 11, 22))
    assert early.valid["customer_id"].to_list() == ["C0000001"]  # the 24th's snapshot is not visible yet
    assert read_source(storage, sources.customers, DAY).valid["customer_id"].to_list() == ["C0000002"]
    assert read_source(storage, sources.consents, DAY).valid["event_id"].to_list() == ["E1"]
    assert read_source(storage, sources.consents, DAY + dt.timedelta(days=1)).valid["event_id"].to_list() == [
        "E1",
        "E2",
    ]


def test_an_unreadable_file_fails_the_asset_with_one_clear_message(storage):
    write(storage.landing, "customers", "20261124", [], raw=b"\xff\xfe not utf8\n")
    result = run_day(storage, DAY, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["ingest_customers"]
    message = failures[0].step_failure_data.error.message
    assert "customers/customers_20261124.csv, line 1: UTF-8 text" in message
    assert failures[0].step_failure_data.error.cause is None  # no chained traceback wall


def test_an_event_id_delivered_again_in_a_later_file_is_quarantined_and_the_first_stands(storage):
    """event_id is unique across all deliveries (landing-zone.md): a later copy is not dropped
    silently but quarantined with its file and line; the earlier event keeps deciding."""
    write(
        storage.landing,
        "consents",
        "20261120",
        ["E1;C0000001;marketing;email;granted;2026-11-19T10:00:00Z;web_form;v3;f-1"],
    )
    write(
        storage.landing,
        "consents",
        "20261124",
        [
            "E2;C0000001;marketing;sms;granted;2026-11-23T10:00:00Z;web_form;v3;f-2",
            "E1;C0000001;marketing;email;withdrawn;2026-11-23T11:00:00Z;web_form;v3;f-3",
        ],
    )
    outcome = read_source(storage, sources.consents, DAY)
    assert outcome.valid["event_id"].to_list() == ["E1", "E2"]
    assert outcome.valid.filter(pl.col("event_id") == "E1")["file"].to_list() == ["consent_events_20261120.csv"]
    assert outcome.quarantine.select("file", "line", "rule").rows() == [
        ("consent_events_20261124.csv", 3, "duplicate_event_id")
    ]
    assert [(f.rows_read, f.rows_valid, f.rows_quarantined) for f in outcome.files] == [(1, 1, 0), (2, 1, 1)]


def test_quarantine_all_shows_the_metering_quarantine_beside_the_other_sources(storage):
    write(
        storage.landing,
        "metering",
        "20261124",
        [metering_row(GSRN1, "2026-11-22T22:00:00Z"), metering_row(GSRN1, "2026-11-22T23:00:00Z", quantity="paljon")],
    )
    write(
        storage.landing,
        "consents",
        "20261124",
        ["E1;C0000001;marketing;fax;granted;2026-11-19T10:00:00Z;web_form;v3;f-1"],
    )
    assert run_day(storage, DAY, raise_on_error=False) is not None
    with storage.warehouse(read_only=True) as conn:
        rows = query(conn, "select source, file, line, rule from quarantine_all order by source").rows()
    assert rows == [
        ("consents", "consent_events_20261124.csv", 2, "channel_unknown_code"),
        ("metering", "metering_20261124.csv", 3, "Quantity_unparsable,quantity_missing"),
    ]


def _metering_day(storage, delivered: str, quantity: str = "0,500"):
    """One delivery dated `delivered` (YYYYMMDD) holding the first two hours of the day before."""
    day = dt.datetime.strptime(delivered, "%Y%m%d").date() - dt.timedelta(days=1)
    start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(22))
    rows = [
        metering_row(GSRN1, f"{start + dt.timedelta(hours=h):%Y-%m-%dT%H:%M:%SZ}", quantity=quantity) for h in range(2)
    ]
    return write(storage.landing, "metering", delivered, rows)


def _later_mtime(path, seconds: int = 3600) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


def test_a_changed_older_metering_delivery_fails_the_next_run_and_a_touched_one_passes(tmp_path):
    """The run for D+3 reads only its own delivery; a re-delivered older file with other bytes
    fails it anyway, naming the file, before anything of D+3 is stored or published. A file only
    touched (new mtime, same bytes) is hashed once and passes."""
    storage = storage_for(tmp_path)
    landing_zone(storage)
    first = _metering_day(storage, "20261124")
    second = _metering_day(storage, "20261125")
    _metering_day(storage, "20261126")
    _metering_day(storage, "20261127")
    assert run_day(storage, DAY).success
    assert run_day(storage, DAY + dt.timedelta(days=1)).success

    _later_mtime(first)  # touched, same bytes
    touched = run_day(storage, DAY + dt.timedelta(days=2))
    assert touched.success
    [event] = [m for m in touched.get_asset_materialization_events() if m.asset_key.path == ["ingest_metering"]]
    assert event.materialization.metadata["known_deliveries_hashed"].value == 1
    published, as_of = {t: read_published(storage.root, t) for t in MART_TABLES}, published_as_of(storage.root)
    stored = sorted(p.relative_to(storage.metering_dir) for p in storage.metering_dir.rglob("*.parquet"))

    second.write_bytes(second.read_bytes().replace(b"0,500", b"0,501", 1))  # one quantity changed
    _later_mtime(second)
    failed = run_day(storage, DAY + dt.timedelta(days=3), raise_on_error=False)
    assert not failed.success
    failures = [e for e in failed.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["ingest_metering"]
    message = failures[0].step_failure_data.error.message
    assert "metering/metering_20261125.csv: the same bytes" in message and "it changed" in message
    assert sorted(p.relative_to(storage.metering_dir) for p in storage.metering_dir.rglob("*.parquet")) == stored
    assert published_as_of(storage.root) == as_of
    assert all(read_published(storage.root, t).equals(frame) for t, frame in published.items())


def test_untouched_known_deliveries_cost_a_stat_each_and_no_read(storage, monkeypatch):
    """Verifying 400 stored deliveries hashes none of them while their size and mtime are as recorded."""
    for n in range(400):
        delivered = dt.date(2025, 10, 1) + dt.timedelta(days=n)
        _metering_day(storage, f"{delivered:%Y%m%d}")
    for n in range(3):
        ingest_delivery(storage, dt.date(2025, 9, 30) + dt.timedelta(days=n))
    for manifest in sorted((storage.metering_dir / "deliveries").glob("*.json"))[:1]:
        record = json.loads(manifest.read_text())
    # the other deliveries' manifests, as ingest_delivery writes them, without reading each file 400 times
    folder = storage.landing / "metering"
    for path in sorted(folder.iterdir())[3:]:
        stat = path.stat()
        tag = path.stem.removeprefix("metering_")
        entry = record | {"file": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        (storage.metering_dir / "deliveries" / f"delivery={tag}.json").write_text(json.dumps(entry))

    def no_hashing(self):
        raise AssertionError(f"{self.name} was read")

    monkeypatch.setattr(LandingFile, "sha256", no_hashing)
    assert verify_known_deliveries(storage, dt.date(2027, 1, 1), set()) == 0


def test_a_changed_older_file_of_an_event_source_is_refused_by_the_next_run(storage):
    """Event and upsert sources re-read every delivery up to D+1, so `check_registry` already
    compares an older file with its recorded sha256."""
    old = write(storage.landing, "consents", "20261120", [consent("E1", "C0000001", "email", "granted")])
    write(storage.landing, "consents", "20261124", [consent("E2", "C0000001", "sms", "granted")])
    with storage.warehouse() as conn:
        write_source(conn, read_source(storage, sources.consents, DAY))
        old.write_bytes(old.read_bytes().replace(b"granted", b"withdrawn"))
        with pytest.raises(LandingFileError, match="consents/consent_events_20261120.csv: the same bytes"):
            write_source(conn, read_source(storage, sources.consents, DAY + dt.timedelta(days=1)))


def test_a_changed_older_snapshot_is_refused_by_the_next_run(storage):
    old = write(storage.landing, "customers", "20261120", [person("C0000001", make_hetu("131052", "-", 308))])
    with storage.warehouse() as conn:
        write_source(conn, read_source(storage, sources.customers, dt.date(2026, 11, 19)))
        write(storage.landing, "customers", "20261124", [person("C0000002", make_hetu("131052", "-", 309))])
        write_source(conn, read_source(storage, sources.customers, DAY))
        old.write_bytes(old.read_bytes().replace(b"Aino", b"Aina"))
        with pytest.raises(LandingFileError, match="customers/customers_20261120.csv"):
            write_source(conn, read_source(storage, sources.customers, DAY + dt.timedelta(days=1)))

    with storage.warehouse() as conn:  # nothing of that run was stored
        assert query(conn, "select customer_id from customers_valid")["customer_id"].to_list() == ["C0000002"]


def test_a_touched_but_identical_older_snapshot_passes_and_is_hashed_once(storage, monkeypatch):
    old = write(storage.landing, "customers", "20261120", [person("C0000001", make_hetu("131052", "-", 308))])
    with storage.warehouse() as conn:
        write_source(conn, read_source(storage, sources.customers, dt.date(2026, 11, 19)))
        write(storage.landing, "customers", "20261124", [person("C0000002", make_hetu("131052", "-", 309))])
        os.utime(old, ns=(1, 1))  # touched: the same bytes, another mtime
        write_source(conn, read_source(storage, sources.customers, DAY))
        assert query(conn, "select mtime_ns from file_registry where file_name = 'customers_20261120.csv'")[
            "mtime_ns"
        ].to_list() == [1]
        hashed = []
        real = LandingFile.sha256
        monkeypatch.setattr(LandingFile, "sha256", lambda self: hashed.append(self.name) or real(self))
        write_source(conn, read_source(storage, sources.customers, DAY))
        assert hashed == ["customers_20261124.csv"]  # the file in scope only: the older one by its stat
