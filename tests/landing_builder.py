"""Hand-made landing zones for tests: exact headers, rows as text, physical lines known."""

from __future__ import annotations

import gzip
from pathlib import Path

from data_contracts.sources import ALL_SOURCES

HEADERS = {c.source: ";".join(c.header) for c in ALL_SOURCES.values()}
PREFIX = {c.source: c.file_prefix for c in ALL_SOURCES.values()}


def write(
    landing: Path,
    source: str,
    day: str,
    rows: list[str],
    header: str | None = None,
    gz: bool = False,
    raw: bytes | None = None,
) -> Path:
    """Write `<landing>/<source>/<prefix>_<day>.csv[.gz]`; `day` is YYYYMMDD."""
    folder = landing / source
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{PREFIX[source]}_{day}.csv{'.gz' if gz else ''}"
    data = raw if raw is not None else ("\n".join([header or HEADERS[source], *rows]) + "\n").encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


# A few valid rows to build on (henkilötunnus and GSRN check characters are correct).
PERSON = (
    "C0000001;person;131052-308T;;Kaarina;Laaksonen;;fi;kaarina@example.fi;040 123 4567;"
    "Vuorikatu 3 A 7;00100;Helsinki;2012-09-01;"
)
PERSON2 = (
    "C0000002;person;020701B233P;;Emil;Lindqvist;;sv;emil@example.fi;+358 45 555 0199;"
    "Runebergsgatan 8;00100;Helsingfors;2024-02-15;"
)
COMPANY = (
    "C0000003;company;;2077474-0;;;Esimerkki Oy;fi;info@example.fi;09 555 0100;"
    "Teollisuuskatu 21;00510;Helsinki;2019-01-01;"
)
GSRN1 = "643550123456789011"
GSRN2 = "643550123456789028"


def make_hetu(ddmmyy: str, sign: str, individual: int) -> str:
    """A henkilötunnus with a correct check character (python-stdnum's own checksum)."""
    from stdnum.fi import hetu

    return f"{ddmmyy}{sign}{individual:03d}{hetu._calc_checksum(f'{ddmmyy}{individual:03d}')}"


def person(customer_id: str, personal_id: str, **overrides: str) -> str:
    fields = {
        "customer_id": customer_id,
        "customer_type": "person",
        "personal_id": personal_id,
        "business_id": "",
        "first_name": "Aino",
        "last_name": "Virtanen",
        "company_name": "",
        "language": "fi",
        "email": "aino@example.fi",
        "phone": "040 123 4567",
        "street_address": "Mannerheimintie 1",
        "postal_code": "00100",
        "city": "Helsinki",
        "customer_since": "2020-01-01",
        "ended_on": "",
    }
    fields.update(overrides)
    return ";".join(fields.values())


def metering_row(gsrn: str, start: str, quantity: str = "0,500", quality: str = "OK", resolution: str = "PT1H") -> str:
    return f"{gsrn};8716867000030;{resolution};kWh;BN01;{start};{quantity};{quality}"
