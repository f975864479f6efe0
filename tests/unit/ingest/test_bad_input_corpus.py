"""A corpus of bad (and oddly shaped) deliveries, each read at the ingest step as a run would read it.

Every variant is one landing file, built from a clean one by a single change, and ends in exactly one
of the two ways the contract allows (landing-zone.md, the product guide):
- **read**: every record counted, `rows read = valid + quarantined`, each quarantined record with
  its rule, its file and the physical line it starts on (a tolerated variant, such as a BOM or CRLF,
  is read with nothing quarantined);
- **refused**: one `LandingFileError` naming the file (and the line, where one is to blame), with
  nothing of the file stored: the valid table and the quarantine hold what they held before.

Never another exception, and no personal value of the file (name, identity code, email, phone,
address) in the error or in any quarantine rule or detail: those reach Dagster's event log. The raw
record itself is kept in the restricted quarantine table, which is what it is for.

Small sources are read with `read_source` and stored with `write_source` into a warehouse that
already holds an earlier delivery; metering with `ingest_delivery`, whose Parquet must stay as it was.
No Dagster run: the whole corpus takes seconds.
"""

from __future__ import annotations

import datetime as dt
import gzip
from dataclasses import dataclass, field

import polars as pl
import pytest

from assets.storage.ingestion import read_source, write_source
from assets.storage.landing import LandingFileError
from assets.storage.metering import ingest_delivery, quarantine_root
from assets.storage.zones import LupaStorage, query, table_exists
from data_contracts.sources import ALL_SOURCES
from tests.landing_builder import GSRN1, HEADERS, PREFIX

DAY = dt.date(2026, 11, 23)
DELIVERY = "20261124"  # the delivery a run for DAY reads
EARLIER = "20261123"  # stored before the variant, so that "nothing half-stored" can be seen
MEGABYTE = 1_000_000

# ---- clean rows, with the personal values they carry -------------------------------------------
KAARINA = (
    "C0000001;person;131052-308T;;Kaarina;Laaksonen;;fi;kaarina@example.fi;040 123 4567;"
    "Vuorikatu 3 A 7;00100;Helsinki;2012-09-01;"
)
EMIL = (
    "C0000002;person;020701B233P;;Emil;Lindqvist;;sv;emil@example.fi;+358 45 555 0199;"
    "Runebergsgatan 8;00100;Helsingfors;2024-02-15;"
)
#: every personal value in the corpus; none may appear in an error, a rule or a quarantine detail
PERSONAL = (
    "131052-308T",
    "020701B233P",
    "Kaarina",
    "Laaksonen",
    "Emil",
    "Lindqvist",
    "kaarina@example.fi",
    "emil@example.fi",
    "040 123 4567",
    "+358401234567",
    "+358 45 555 0199",
    "Vuorikatu 3",
    "Runebergsgatan 8",
    "Jääskeläinen",
)
CLEAN: dict[str, list[str]] = {
    "customers": [KAARINA, EMIL],
    "contracts": [
        f"K1;C0000001;{GSRN1};SPOT;open_ended;2024-01-01;;apartment;district",
        "K2;C0000002;643550123456789028;FIXED24;fixed_term;2025-01-01;2026-12-31;row_house;",
    ],
    "billing": [
        "I1;C0000001;K1;2026-10-01;2026-10-15;50,00;2026-10-10;0;0",
        "I2;C0000002;K2;2026-10-01;2026-10-15;-12,40;;1;0",
    ],
    "consents": [
        "E1;C0000001;marketing;email;granted;2026-11-20T10:00:00+02:00;web_form;v3;form-1",
        "E2;C0000002;profiling;;withdrawn;2026-11-21T08:00:00Z;customer_service;v3;call-2",
    ],
    "asml": [
        "mail;Kaarina;Laaksonen;Vuorikatu 3 A 7;00100;;2026-01-01;",
        "phone;;;;;+358401234567;2026-02-01;2027-02-01",
    ],
    "population": [
        "131052-308T;;0;0;Vuorikatu 3 A 7;00100;Helsinki;2026-11-20",
        "020701B233P;;1;0;;;;2026-11-19",
    ],
    "contacts": [
        "C0000001;email;K-2026-11;marketing;2026-11-20T10:00:00+02:00",
        "C0000002;letter;K-2026-11;customer_communication;2026-11-21T09:00:00Z",
    ],
    "prospects": [
        "P000000001;competition;2026-10-01;2026-10-01;Kaarina;Laaksonen;;Vuorikatu 3 A 7;00100;Helsinki;"
        "kaarina@example.fi;040 123 4567;fi;granted;;0;KILPA-2026-1;form-1",
        "P000000002;address_list;2026-11-01;2026-11-01;Emil;Lindqvist;;Runebergsgatan 8;00100;Helsingfors;;;sv;;;0;;",
    ],
    "metering": [
        f"{GSRN1};8716867000030;PT1H;kWh;BN01;2026-11-22T22:00:00Z;0,412;OK",
        f"{GSRN1};8716867000030;PT1H;kWh;BN01;2026-11-22T23:00:00Z;0,388;ESTIMATED",
    ],
}
CONTEXT = {"contracts": {"known_customer_ids": ["C0000001", "C0000002"]}}


def text(source: str, rows: list[str] | None = None, header: str | None = None, nl: str = "\n", end: str = "\n") -> str:
    return (
        nl.join([header if header is not None else HEADERS[source], *(CLEAN[source] if rows is None else rows)]) + end
    )


def clean(source: str) -> bytes:
    return text(source).encode()


def replaced(source: str, old: str, new: str, row: int = 1) -> list[str]:
    """The clean rows with `old` replaced by `new` in row `row` (0-based); the row must hold `old`."""
    rows = list(CLEAN[source])
    assert old in rows[row], (source, old)
    rows[row] = rows[row].replace(old, new)
    return rows


def field_of(source: str, name: str, value: str, row: int = 1) -> list[str]:
    """The clean rows with field `name` of row `row` set to `value`."""
    rows = list(CLEAN[source])
    fields = rows[row].split(";")
    fields[ALL_SOURCES[source].header.index(name)] = value
    rows[row] = ";".join(fields)
    return rows


# ---- outcomes ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Read:
    """Every record read: `rows_read` records, these (physical line -> rules) quarantined."""

    rows_read: int
    quarantined: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Refused:
    """One LandingFileError naming the file, this line (None: the file as a whole), and saying `says`."""

    line: int | None
    says: str


@dataclass(frozen=True)
class Variant:
    id: str
    source: str
    data: bytes
    outcome: Read | Refused
    #: the file's name (default: the source's prefix, the delivery date, .csv)
    name: str | None = None
    #: bytes delivered under the same name before, and stored; the variant then replaces them
    delivered_before: bytes | None = None


def v(id, source, data, outcome, **kw) -> pytest.param:
    if isinstance(data, list):
        data = text(source, data).encode()
    elif isinstance(data, str):
        data = data.encode()
    return pytest.param(Variant(id, source, data, outcome, **kw), id=f"{source}-{id}")


def gz_cases(source: str) -> dict[str, bytes]:
    packed = gzip.compress(clean(source) * 1, mtime=0)
    corrupt = bytearray(packed)
    corrupt[len(packed) // 2 : len(packed) // 2 + 16] = b"\xff" * 16
    return {"plain-csv-named-gz": clean(source), "cut-short": packed[: len(packed) // 2], "corrupt": bytes(corrupt)}


ONE_MB = "x" * MEGABYTE
H = HEADERS


def gz_name(source: str) -> str:
    return f"{PREFIX[source]}_{DELIVERY}.csv.gz"


VARIANTS = [
    # -- encodings ------------------------------------------------------------------------------
    v("bom", "customers", b"\xef\xbb\xbf" + clean("customers"), Read(2)),
    v("utf16-with-bom", "customers", text("customers").encode("utf-16"), Refused(1, "UTF-8")),
    v("utf16-le", "customers", text("customers").encode("utf-16-le"), Refused(1, "UTF-8")),
    v(
        "latin1",
        "customers",
        text("customers", replaced("customers", "Lindqvist", "Jääskeläinen")).encode("latin-1"),
        Refused(3, "UTF-8"),
    ),
    v(
        "nul-in-a-name",
        "customers",
        replaced("customers", "Lindqvist", "Lind\x00qvist"),
        Read(2, {3: "malformed_record"}),
    ),
    v("bom", "metering", b"\xef\xbb\xbf" + clean("metering"), Read(2)),
    v("utf16", "metering", text("metering").encode("utf-16"), Refused(1, "UTF-8")),
    v("utf16-le", "metering", text("metering").encode("utf-16-le"), Refused(1, "UTF-8")),
    v(
        "latin1",
        "metering",
        text("metering", replaced("metering", "BN01", "BNä")).encode("latin-1"),
        Refused(3, "UTF-8"),
    ),
    v("nul", "metering", replaced("metering", "BN01", "BN\x0001"), Read(2, {3: "malformed_record"})),
    v("bom", "population", b"\xef\xbb\xbf" + clean("population"), Read(2)),
    v("nul", "consents", replaced("consents", "call-2", "call\x00-2"), Read(2, {3: "malformed_record"})),
    # -- line ends, blank lines, the last newline ---------------------------------------------------
    v("crlf", "customers", text("customers", nl="\r\n", end="\r\n"), Read(2)),
    v("crlf", "consents", text("consents", nl="\r\n", end="\r\n"), Read(2)),
    v("crlf", "metering", text("metering", nl="\r\n", end="\r\n"), Read(2)),
    v("blank-lines", "customers", [KAARINA, "", "   ", EMIL, ""], Read(2)),
    v("blank-lines", "metering", [CLEAN["metering"][0], "", " \t", CLEAN["metering"][1]], Read(2)),
    v("cr-only-line-ends", "customers", text("customers", nl="\r", end="\r"), Read(2)),
    v("cr-only-line-ends", "metering", text("metering", nl="\r", end="\r"), Refused(1, "CR alone")),
    v("mixed-line-ends", "contacts", text("contacts", nl="\r\n", end="\n"), Read(2)),
    v("no-final-newline", "customers", text("customers", end=""), Read(2)),
    v("no-final-newline", "billing", text("billing", end=""), Read(2)),
    # a streamed Datahub file cannot tell a last line without a newline from one cut short
    v("no-final-newline", "metering", text("metering", end=""), Refused(3, "truncated")),
    # -- headers ----------------------------------------------------------------------------------
    v("header-upper-case", "customers", text("customers", header=H["customers"].upper()), Refused(1, "the header")),
    v("header-lower-case", "metering", text("metering", header=H["metering"].lower()), Refused(1, "the header")),
    v(
        "header-extra-column",
        "customers",
        text("customers", [r + ";x" for r in CLEAN["customers"]], header=H["customers"] + ";note"),
        Refused(1, "the header"),
    ),
    v(
        "header-missing-column",
        "consents",
        text("consents", [r.rsplit(";", 1)[0] for r in CLEAN["consents"]], header=H["consents"].rsplit(";", 1)[0]),
        Refused(1, "the header"),
    ),
    v(
        "header-duplicated-column",
        "billing",
        text("billing", header=H["billing"].replace("due_on", "issued_on")),
        Refused(1, "the header"),
    ),
    v(
        "header-reordered",
        "contracts",
        text("contracts", header=";".join(reversed(H["contracts"].split(";")))),
        Refused(1, "the header"),
    ),
    v(
        "header-reordered",
        "metering",
        text("metering", header=";".join(sorted(H["metering"].split(";")))),
        Refused(1, "the header"),
    ),
    v(
        "tab-separated",
        "customers",
        text("customers", [r.replace(";", "\t") for r in CLEAN["customers"]], header=H["customers"].replace(";", "\t")),
        Refused(1, "the header"),
    ),
    v(
        "comma-separated",
        "metering",
        text("metering", header=H["metering"].replace(";", ",")),
        Refused(1, "the header"),
    ),
    v("two-boms", "customers", b"\xef\xbb\xbf\xef\xbb\xbf" + clean("customers"), Refused(1, "the header")),
    v("header-quoted", "asml", text("asml", header=";".join(f'"{c}"' for c in H["asml"].split(";"))), Read(2)),
    v("header-spaces", "population", text("population", header=H["population"].replace(";", " ; ")), Read(2)),
    # -- empty, header only, truncated, field counts ----------------------------------------------
    v("empty", "customers", b"", Refused(1, "empty")),
    v("empty", "metering", b"", Refused(1, "empty")),
    v("only-whitespace", "contacts", b" \n\n", Refused(1, "empty")),
    v("header-only", "contracts", text("contracts", []), Read(0)),
    v("header-only", "consents", text("consents", []), Read(0)),
    v("header-only", "metering", text("metering", []), Read(0)),
    v("cut-mid-line", "customers", text("customers")[:-40], Refused(3, "truncated")),
    v("cut-mid-line", "metering", text("metering")[:-12], Refused(3, "truncated")),
    v("a-field-too-many", "customers", [KAARINA + ";x", EMIL], Read(2, {2: "malformed_record"})),
    v(
        "a-trailing-separator",
        "billing",
        [CLEAN["billing"][0] + ";", CLEAN["billing"][1]],
        Read(2, {2: "malformed_record"}),
    ),
    v(
        "a-duplicated-record",
        "customers",
        [KAARINA, EMIL, KAARINA],
        Read(3, {2: "duplicate_customer_id", 4: "duplicate_customer_id"}),
    ),
    v(
        "a-field-too-few",
        "contacts",
        [CLEAN["contacts"][0].rsplit(";", 1)[0], CLEAN["contacts"][1]],
        Read(2, {2: "malformed_record"}),
    ),
    v(
        "a-field-too-many",
        "metering",
        [CLEAN["metering"][0] + ";x", CLEAN["metering"][1]],
        Read(2, {2: "malformed_record"}),
    ),
    v(
        "a-field-too-few",
        "metering",
        [CLEAN["metering"][0], CLEAN["metering"][1].rsplit(";", 1)[0]],
        Read(2, {3: "malformed_record"}),
    ),
    # -- quotes and long lines --------------------------------------------------------------------
    v(
        "quoted-separator-and-newline",
        "customers",
        [KAARINA.replace("Vuorikatu 3 A 7", '"Vuorikatu 3;\nA 7"'), EMIL],
        Read(2),  # the first record takes lines 2-3, so EMIL's is line 4 (checked below)
    ),
    v(
        "quoted-separator-and-newline",
        "consents",
        replaced("consents", "call-2", '"call;\n2"', row=1) + [CLEAN["consents"][0].replace("E1", "E3")],
        Read(3),
    ),
    v("unterminated-quote", "customers", [KAARINA, EMIL.replace("Emil", '"Emil')], Refused(3, "unterminated quote")),
    v(
        "unterminated-quote",
        "consents",
        [CLEAN["consents"][0].replace("form-1", '"form-1'), CLEAN["consents"][1]],
        Refused(2, "unterminated quote"),
    ),
    v(
        "quote-inside-a-field",
        "customers",
        [KAARINA, EMIL.replace("Emil", '"Emil"x')],
        Read(2, {3: "malformed_record"}),
    ),
    v("quoted-separator", "metering", replaced("metering", "BN01", '"BN;01"'), Read(2, {3: "malformed_record"})),
    v("one-megabyte-line", "customers", [KAARINA, ONE_MB, EMIL], Read(3, {3: "malformed_record"})),
    v(
        "one-megabyte-address",
        "customers",
        replaced("customers", "Runebergsgatan 8", "Runebergsgatan 8" + ONE_MB),
        Read(2, {3: "malformed_record"}),
    ),
    v("one-megabyte-line", "consents", [CLEAN["consents"][0], ONE_MB], Read(2, {3: "malformed_record"})),
    v(
        "one-megabyte-line",
        "metering",
        [CLEAN["metering"][0], ONE_MB, CLEAN["metering"][1]],
        Read(3, {3: "malformed_record"}),
    ),
    # -- whitespace and value formats -------------------------------------------------------------
    v(
        "spaces-around-values",
        "customers",
        [";".join(f" {f} " for f in r.split(";")) for r in CLEAN["customers"]],
        Read(2),
    ),
    v(
        "spaces-around-values",
        "metering",
        [";".join(f" {f} " for f in r.split(";")) for r in CLEAN["metering"]],
        Read(2),
    ),
    v("tab-around-a-date", "billing", field_of("billing", "issued_on", "\t2026-10-01\t"), Read(2)),
    v(
        "date-day-first",
        "customers",
        field_of("customers", "customer_since", "15.02.2024"),
        Read(2, {3: "customer_since_unparsable"}),
    ),
    v("date-with-slashes", "billing", field_of("billing", "due_on", "2026/10/15"), Read(2, {3: "due_on_unparsable"})),
    v(
        "date-without-dashes",
        "population",
        field_of("population", "updated_on", "20261119"),
        Read(2, {3: "updated_on_unparsable"}),
    ),
    v(
        "impossible-date",
        "contracts",
        field_of("contracts", "start_date", "2025-02-30"),
        Read(2, {3: "start_date_unparsable"}),
    ),
    v(
        "date-far-future",
        "population",
        field_of("population", "updated_on", "2099-11-19"),
        Read(2, {3: "updated_in_future"}),
    ),
    v(
        "timestamp-without-offset",
        "consents",
        field_of("consents", "occurred_at", "2026-11-21T08:00:00"),
        Read(2, {3: "occurred_at_unparsable"}),
    ),
    v(
        "timestamp-date-only",
        "consents",
        field_of("consents", "occurred_at", "2026-11-21"),
        Read(2, {3: "occurred_at_unparsable"}),
    ),
    v(
        "timestamp-finnish",
        "contacts",
        field_of("contacts", "sent_at", "21.11.2026 klo 9.00"),
        Read(2, {3: "sent_at_unparsable"}),
    ),
    v(
        "timestamp-far-future",
        "consents",
        field_of("consents", "occurred_at", "2099-11-21T08:00:00Z"),
        Read(2, {3: "occurred_in_future"}),
    ),
    v(
        "start-time-without-z",
        "metering",
        field_of("metering", "Start Time", "2026-11-22T23:00:00"),
        Read(2, {3: "Start Time_format,Start Time_unparsable"}),
    ),
    v(
        "start-time-with-space",
        "metering",
        field_of("metering", "Start Time", "2026-11-22 23:00:00Z"),
        Read(2, {3: "Start Time_format"}),
    ),
    v(
        "start-time-with-offset",
        "metering",
        field_of("metering", "Start Time", "2026-11-23T01:00:00+02:00"),
        Read(2, {3: "Start Time_format"}),
    ),
    v(
        "start-time-far-future",
        "metering",
        field_of("metering", "Start Time", "2099-11-22T23:00:00Z"),
        Read(2, {3: "start_after_delivery"}),
    ),
    v(
        "quantity-nan",
        "metering",
        field_of("metering", "Quantity", "NaN"),
        Read(2, {3: "Quantity_unparsable,quantity_missing"}),
    ),
    v(
        "quantity-inf",
        "metering",
        field_of("metering", "Quantity", "inf"),
        Read(2, {3: "Quantity_unparsable,quantity_missing"}),
    ),
    v(
        "quantity-1e3",
        "metering",
        field_of("metering", "Quantity", "1e3"),
        Read(2, {3: "Quantity_unparsable,quantity_missing"}),
    ),
    v(
        "quantity-plus-2",
        "metering",
        field_of("metering", "Quantity", "+2"),
        Read(2, {3: "Quantity_unparsable,quantity_missing"}),
    ),
    v(
        "quantity-decimal-point",
        "metering",
        field_of("metering", "Quantity", "0.388"),
        Read(2, {3: "Quantity_unparsable,quantity_missing"}),
    ),
    v("amount-nan", "billing", field_of("billing", "amount_eur", "NaN"), Read(2, {3: "amount_eur_unparsable"})),
    v("amount-inf", "billing", field_of("billing", "amount_eur", "-inf"), Read(2, {3: "amount_eur_unparsable"})),
    v("amount-1e3", "billing", field_of("billing", "amount_eur", "1e3"), Read(2, {3: "amount_eur_unparsable"})),
    v("amount-plus-2", "billing", field_of("billing", "amount_eur", "+2,00"), Read(2, {3: "amount_eur_unparsable"})),
    v("reminders-plus-2", "billing", field_of("billing", "reminders", "+2"), Read(2, {3: "reminders_unparsable"})),
    v("reminders-1e3", "billing", field_of("billing", "reminders", "1e3"), Read(2, {3: "reminders_unparsable"})),
    # -- compression ------------------------------------------------------------------------------
    *[
        v(case, source, data, Refused(None, "gzip"), name=gz_name(source))
        for source in ("customers", "metering")
        for case, data in gz_cases(source).items()
    ],
    v("zero-byte-gz", "consents", b"", Refused(1, "empty"), name=gz_name("consents")),
    v("zero-byte-gz", "metering", b"", Refused(1, "empty"), name=gz_name("metering")),
    # -- file names and re-delivery ---------------------------------------------------------------
    v(
        "dated-far-in-the-future",
        "customers",
        clean("customers"),
        Refused(None, "in the future"),
        name="customers_20991124.csv",
    ),
    v(
        "dated-far-in-the-future",
        "metering",
        clean("metering"),
        Refused(None, "in the future"),
        name="metering_20991124.csv",
    ),
    v("name-without-a-date", "asml", clean("asml"), Refused(None, "file name must be"), name="asml_latest.csv"),
    v(
        "redelivered-with-other-bytes",
        "customers",
        text("customers", replaced("customers", "Lindqvist", "Lindkvist")),
        Refused(None, "the same bytes"),
        delivered_before=clean("customers"),
    ),
    v(
        "redelivered-with-other-bytes",
        "consents",
        text("consents", replaced("consents", "withdrawn", "granted")),
        Refused(None, "the same bytes"),
        delivered_before=clean("consents"),
    ),
    v(
        "redelivered-with-other-bytes",
        "metering",
        text("metering", field_of("metering", "Quantity", "9,999")),
        Refused(None, "the same bytes"),
        delivered_before=clean("metering"),
    ),
    v(
        "consent-on-purchased-list",
        "prospects",
        field_of("prospects", "email_consent", "granted"),
        Read(2, {3: "consent_on_purchased_list,consent_without_evidence"}),
    ),
    v(
        "prospect-id-without-p",
        "prospects",
        replaced("prospects", "P000000002", "000000002"),
        Read(2, {3: "prospect_id_format"}),
    ),
    v(
        "collected-after-delivery",
        "prospects",
        field_of("prospects", "collected_on", "2026-12-01"),
        Read(2, {3: "collected_after_delivery,updated_before_collected"}),
    ),
    v(
        "header-missing-a-column",
        "prospects",
        text("prospects", header=H["prospects"].replace(";city", "")),
        Refused(1, "header"),
    ),
    v("unterminated-quote", "prospects", replaced("prospects", ";Emil;", ';"Emil;'), Refused(3, "unterminated quote")),
    v("redelivered-with-the-same-bytes", "billing", clean("billing"), Read(2), delivered_before=clean("billing")),
]


def test_the_corpus_is_large_and_covers_every_source():
    variants = [p.values[0] for p in VARIANTS]
    assert len(variants) >= 50
    assert {x.source for x in variants} == set(ALL_SOURCES)
    assert len({p.id for p in VARIANTS}) == len(VARIANTS)


# ---- reading a variant as a run would --------------------------------------------------------------
@dataclass
class Seen:
    rows_read: int
    rows_valid: int
    quarantine: pl.DataFrame  # file, line, rule, detail, raw


def _deliver(storage: LupaStorage, variant: Variant, data: bytes) -> None:
    folder = storage.landing / variant.source
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (variant.name or f"{PREFIX[variant.source]}_{DELIVERY}.csv")).write_bytes(data)


def earlier_rows(source: str) -> list[str]:
    """The clean rows as an earlier delivery: other event ids, readings of the day before."""
    if source == "consents":
        return [r.replace("E1;", "E91;").replace("E2;", "E92;") for r in CLEAN[source]]
    if source == "metering":
        return [r.replace("2026-11-22T2", "2026-11-21T2") for r in CLEAN[source]]
    return CLEAN[source]


def _small_state(storage: LupaStorage, source: str) -> str:
    with storage.warehouse() as conn:
        tables = [f'"{source}_valid"', "quarantine", "file_registry"]
        return "\n".join(
            query(conn, f"select * from {t} order by all").write_csv()
            for t in tables
            if table_exists(conn, t.strip('"'))
        )


def _metering_state(storage: LupaStorage) -> list:
    return sorted(
        (p.relative_to(storage.metering_dir).as_posix(), p.read_bytes())
        for p in storage.metering_dir.rglob("*.parquet")
    )


def read_variant(tmp_path, variant: Variant, state: dict) -> Seen:
    """Store an earlier delivery (and the same name's earlier bytes, for a re-delivery), then read and
    store the variant as its run would; `state` gets what was stored before and after the variant."""
    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))
    source, context = variant.source, CONTEXT.get(variant.source, {})
    (storage.landing / source).mkdir(parents=True)
    (storage.landing / source / f"{PREFIX[source]}_{EARLIER}.csv").write_text(text(source, earlier_rows(source)))
    if source == "metering":
        ingest_delivery(storage, DAY - dt.timedelta(days=1))
        if variant.delivered_before is not None:
            _deliver(storage, variant, variant.delivered_before)
            ingest_delivery(storage, DAY)
        state["before"] = _metering_state(storage)
        _deliver(storage, variant, variant.data)
        try:
            outcome = ingest_delivery(storage, DAY)
        finally:
            state["after"] = _metering_state(storage)
        frame = pl.read_parquet(quarantine_root(storage) / f"delivery={DELIVERY}.parquet")
        return Seen(outcome.rows_read, outcome.rows_valid, frame)
    contract = ALL_SOURCES[source]
    with storage.warehouse() as conn:
        write_source(conn, read_source(storage, contract, DAY - dt.timedelta(days=1), context))
        if variant.delivered_before is not None:
            _deliver(storage, variant, variant.delivered_before)
            write_source(conn, read_source(storage, contract, DAY, context))
    state["before"] = _small_state(storage, source)
    _deliver(storage, variant, variant.data)
    try:
        with storage.warehouse() as conn:
            outcome = read_source(storage, contract, DAY, context)
            write_source(conn, outcome)
    finally:
        state["after"] = _small_state(storage, source)
    # only this run's own delivery is judged: an event source re-reads the earlier one too
    mine = outcome.files[-1]
    return Seen(mine.rows_read, mine.rows_valid, outcome.quarantine)


def personal_values_in(message: str) -> list[str]:
    return [value for value in PERSONAL if value in message]


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_bad_delivery_is_read_record_by_record_or_refused_whole(tmp_path, variant: Variant):
    name = variant.name or f"{PREFIX[variant.source]}_{DELIVERY}.csv"
    state: dict = {}
    if isinstance(variant.outcome, Refused):
        with pytest.raises(LandingFileError) as error:
            read_variant(tmp_path, variant, state)
        message = str(error.value)
        assert error.value.file == f"{variant.source}/{name}" and message.startswith(error.value.file)
        assert error.value.line == variant.outcome.line, message
        assert variant.outcome.says in message
        assert personal_values_in(message) == [] and "b'" not in message and "\\x" not in message
        assert "\n" not in message  # one line
        assert state["before"] == state["after"], "a refused delivery stored something"
        return

    seen = read_variant(tmp_path, variant, state)
    q = seen.quarantine
    mine = q.filter(pl.col("file") == name)
    assert mine.height == q.height  # the earlier delivery quarantined nothing
    # conservation: every record is valid or quarantined, counted once
    assert seen.rows_read == variant.outcome.rows_read
    assert seen.rows_read == seen.rows_valid + mine.height
    assert dict(mine.select("line", "rule").rows()) == variant.outcome.quarantined
    for rule, detail in mine.select("rule", "detail").rows():
        assert rule and personal_values_in(f"{rule} {detail or ''}") == []


def test_a_quoted_newline_keeps_the_physical_line_of_every_later_record(tmp_path):
    variant = next(p.values[0] for p in VARIANTS if p.id == "customers-quoted-separator-and-newline")
    storage = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))
    _deliver(storage, variant, variant.data)
    valid = read_source(storage, ALL_SOURCES["customers"], DAY).valid
    assert valid.select("customer_id", "line").rows() == [("C0000001", 2), ("C0000002", 4)]
    assert valid["street_address"][0] == "Vuorikatu 3;\nA 7"
