"""Files a marketer opens in Excel: CSV for the tools (UTF-8 with BOM, `;`) and XLSX for people.

Excel reads a CSV by guessing: `00980` becomes 980 and `+358401234567` a number in exponent
notation. The XLSX is written by XlsxWriter through polars' `write_excel`, which stores every text
column as a string cell (never a number, never a formula, even for a value starting with `=` or `+`);
postal codes and phone numbers also get Excel's text format `@`, so an edited cell stays text.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import xlsxwriter

#: the document's "created" property: a constant, so that a re-run writes the same bytes (XlsxWriter would
#: stamp the wall-clock time, and published files carry none)
CREATED = dt.datetime(2000, 1, 1)

#: columns that look like numbers to Excel but are text
TEXT_COLUMNS = ("postal_code", "phone_e164", "phone")


def write_csv_for_excel(frame: pl.DataFrame, path: Path) -> None:
    """UTF-8 with BOM and `;` separators, so Finnish Excel opens it with ä and ö intact."""
    path.write_bytes(b"\xef\xbb\xbf" + frame.write_csv(separator=";").encode("utf-8"))


def write_xlsx(frame: pl.DataFrame, path: Path, sheet: str = "list") -> None:
    """One sheet, a header row, every text column as text. Excel has no time zones, so a timestamp
    with one (a consent event's time) is written as its ISO text with the offset, never shifted silently."""
    zoned = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone is not None]
    frame = frame.with_columns(pl.col(c).dt.to_string("%Y-%m-%dT%H:%M:%S%:z") for c in zoned)
    texts = {c: "@" for c in frame.columns if c in TEXT_COLUMNS or frame.schema[c] == pl.String}
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c in texts)
    workbook = xlsxwriter.Workbook(str(path))
    workbook.set_properties({"created": CREATED})
    try:
        frame.write_excel(
            workbook,
            worksheet=sheet[:31],
            column_formats=texts or None,
            autofit=True,
            table_style=None,
            include_header=True,
        )
    finally:
        workbook.close()
