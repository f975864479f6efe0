"""Writing landing files exactly as the sources deliver them, and remembering what was written.

One place decides the file layout (`<source>/<name>_YYYYMMDD.csv[.gz]`), the CSV dialect (UTF-8,
`;`, header row, quotes only where a field needs them, `\\n` line ends), deterministic gzip
(mtime 0, no file name in the header) and the physical line of every deliberately bad row, which
goes to the ground truth so tests can check that the pipeline quarantined exactly those lines.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HEADERS = {
    "customers": [
        "customer_id",
        "customer_type",
        "personal_id",
        "business_id",
        "first_name",
        "last_name",
        "company_name",
        "language",
        "email",
        "phone",
        "street_address",
        "postal_code",
        "city",
        "customer_since",
        "ended_on",
    ],
    "contracts": [
        "contract_id",
        "customer_id",
        "metering_point_id",
        "product_code",
        "contract_type",
        "start_date",
        "end_date",
        "site_type",
        "heating",
    ],
    "billing": [
        "invoice_id",
        "customer_id",
        "contract_id",
        "issued_on",
        "due_on",
        "amount_eur",
        "paid_on",
        "reminders",
        "in_collection",
    ],
    "metering": [
        "MeteringPointGSRN",
        "Product Type",
        "Resolution",
        "Unit Type",
        "Reading Type",
        "Start Time",
        "Quantity",
        "Quality",
    ],
    "consents": [
        "event_id",
        "customer_id",
        "purpose",
        "channel",
        "action",
        "occurred_at",
        "source",
        "wording_version",
        "evidence_ref",
    ],
    "asml": [
        "register",
        "first_name",
        "last_name",
        "street_address",
        "postal_code",
        "phone",
        "registered_on",
        "expires_on",
    ],
    "population": [
        "personal_id",
        "deceased_on",
        "marketing_ban",
        "safety_ban",
        "street_address",
        "postal_code",
        "city",
        "updated_on",
    ],
    "contacts": ["customer_id", "channel", "campaign_id", "kind", "sent_at"],
    "prospects": [
        "prospect_id",
        "source",
        "collected_on",
        "updated_on",
        "first_name",
        "last_name",
        "personal_id",
        "street_address",
        "postal_code",
        "city",
        "email",
        "phone",
        "language",
        "email_consent",
        "sms_consent",
        "marketing_objection",
        "wording_version",
        "evidence_ref",
    ],
}
FILE_PREFIX = {
    "customers": "customers",
    "contracts": "contracts",
    "billing": "invoices",
    "metering": "metering",
    "consents": "consent_events",
    "asml": "asml",
    "population": "vtj",
    "contacts": "contacts",
    "prospects": "prospects",
}
SOURCES = tuple(HEADERS)


@dataclass
class BadRow:
    """A deliberately broken record. `position` indexes the good rows of the file: with replace=True
    the bad line takes that row's place, otherwise it is inserted before it (len(rows) = append)."""

    position: int
    raw: str
    kind: str
    replace: bool = False
    restricts_contact: bool = False
    detail: str = ""
    duplicates_previous_line: bool = False  # an injected copy placed right after its original


def fmt_date(d: dt.date | None) -> str:
    return "" if d is None else d.isoformat()


def csv_field(value: str) -> str:
    if any(ch in value for ch in ';"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(fields) -> str:
    line = ";".join(fields)
    if line.count(";") == len(fields) - 1 and '"' not in line and "\n" not in line and "\r" not in line:
        return line  # the common case: nothing to quote
    return ";".join(csv_field(f) for f in fields)


class LandingWriter:
    def __init__(self, out_dir: Path, gzip_sources: tuple[str, ...] = ()):
        self.out_dir = Path(out_dir)
        wanted = set(gzip_sources)
        unknown = wanted - set(SOURCES) - set(FILE_PREFIX.values())
        if unknown:
            raise ValueError(f"unknown sources for gzip: {sorted(unknown)}")
        self.gzip = {s for s in SOURCES if s in wanted or FILE_PREFIX[s] in wanted}
        self.files: list[str] = []
        self.rows: Counter = Counter()
        self.bad: list[tuple[str, int, str, int, str]] = []
        # valid rows a strict pipeline may still reject because of an injected bad row elsewhere
        self.cascade: list[tuple[str, int, str, str]] = []
        self.bytes = 0
        self.extra_pii: set[tuple[str, str, str]] = set()  # personal data that exists only in bad rows

    def relpath(self, source: str, day: dt.date) -> str:
        suffix = ".csv.gz" if source in self.gzip else ".csv"
        return f"{source}/{FILE_PREFIX[source]}_{day:%Y%m%d}{suffix}"

    def open(self, source: str, day: dt.date):
        """Binary handle for a new landing file; gzip is deterministic (mtime 0, no name)."""
        rel = self.relpath(source, day)
        path = self.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(rel)
        raw = open(path, "wb")
        if source in self.gzip:
            return rel, _GzipHandle(raw)
        return rel, raw

    def record_bad(self, rel: str, line: int, bad: BadRow) -> None:
        self.bad.append((rel, line, bad.kind, int(bad.restricts_contact), bad.detail))
        if bad.duplicates_previous_line:
            self.cascade.append((rel, line - 1, "duplicate_original", f"original of the {bad.kind} on line {line}"))

    def write_table(
        self, source: str, day: dt.date, rows: list[list[str]], bad: list[BadRow] = (), bom: bool = False
    ) -> tuple[str, list[int | None]]:
        """Write one small-source file; rows are lists of field strings, bad rows are raw lines.
        Returns the relative path and the physical line of each good row (None if replaced)."""
        lines = [csv_line(r) for r in rows]
        line_of: list[int | None] = [None] * len(lines)
        out: list[str] = []
        bad_sorted = sorted(bad, key=lambda b: (b.position, b.replace))
        bi = 0
        rel = self.relpath(source, day)
        pending: list[tuple[int, BadRow]] = []
        for i in range(len(lines) + 1):
            replaced = False
            while bi < len(bad_sorted) and bad_sorted[bi].position == i:
                b = bad_sorted[bi]
                out.append(b.raw)
                pending.append((len(out) + 1, b))  # +1: header is line 1
                replaced = replaced or b.replace
                bi += 1
            if i < len(lines) and not replaced:
                out.append(lines[i])
                line_of[i] = len(out) + 1
        assert bi == len(bad_sorted), "bad row position out of range"
        text = ("\ufeff" if bom else "") + csv_line(HEADERS[source]) + "\n" + "".join(x + "\n" for x in out)
        data = text.encode("utf-8")
        rel, fh = self.open(source, day)
        with fh:
            fh.write(data)
        self.bytes += len(data)
        self.rows[source] += len(out)
        for line, b in pending:
            self.record_bad(rel, line, b)
        return rel, line_of

    def cascade_rows_csv(self) -> str:
        buf = io.StringIO()
        buf.write("file;line;kind;detail\n")
        for row in sorted(set(self.cascade)):
            buf.write(csv_line([row[0], str(row[1]), row[2], row[3]]) + "\n")
        return buf.getvalue()

    def bad_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(b[2] for b in self.bad).items()))

    def bad_rows_csv(self) -> str:
        buf = io.StringIO()
        buf.write("file;line;kind;restricts_contact;detail\n")
        for rel, line, kind, restricts, detail in sorted(self.bad):
            buf.write(csv_line([rel, str(line), kind, str(restricts), detail]) + "\n")
        return buf.getvalue()


class _GzipHandle:
    """A gzip writer that closes its underlying file as well."""

    def __init__(self, raw):
        self.raw = raw
        self.gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)

    def write(self, data):
        return self.gz.write(data)

    def close(self):
        self.gz.close()
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
