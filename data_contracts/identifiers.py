"""Identifier validators shared by every contract.

Each validator is a real library call (python-stdnum, phonenumbers, email-validator) wrapped so
that it returns a rule code instead of raising, and never echoes the value it checked: the codes
end up in quarantine details and Dagster metadata, where personal data must not appear.

The `*_expr` helpers run a validator once per distinct value and join the result back, so a
48-million-row metering file costs one Python call per metering point, not per reading.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import lru_cache

import phonenumbers
import polars as pl
from email_validator import EmailNotValidError, validate_email
from stdnum import ean
from stdnum.exceptions import ValidationError
from stdnum.fi import hetu, ytunnus

#: Century signs of the henkilötunnus, including the 2023 additions (Y X W V U, B C D E F).
CENTURY_SIGNS = {
    "+": 1800,
    "-": 1900,
    "Y": 1900,
    "X": 1900,
    "W": 1900,
    "V": 1900,
    "U": 1900,
    "A": 2000,
    "B": 2000,
    "C": 2000,
    "D": 2000,
    "E": 2000,
    "F": 2000,
}

#: Anything shaped like a henkilötunnus (a real day and month, a century sign, a check character
#: from the official alphabet), case-insensitive: the privacy scans and published contracts use it.
HETU_PATTERN = r"(?i)(0[1-9]|[12][0-9]|3[01])(0[1-9]|1[0-2])[0-9]{2}[-+A-FU-Y][0-9]{3}[0-9A-FHJ-NPR-Y]"


def personal_id_problem(value: str) -> str | None:
    """Return None for a usable henkilötunnus, else the rule it breaks.

    Temporary individual numbers 900–999 are test codes: the checksum is right, but no real
    person carries one, so they are quarantined under their own rule.
    """
    try:
        number = hetu.validate(value, allow_temporary=True)
    except ValidationError as exc:
        return "personal_id_checksum" if exc.__class__.__name__ == "InvalidChecksum" else "personal_id_format"
    if int(number[7:10]) >= 900:
        return "personal_id_test_code"
    return None


def personal_id_canonical(value: str) -> str:
    """The one spelling of a henkilötunnus: upper case (the century sign and the check character
    too), no surrounding space. python-stdnum accepts `010190-123a`; the population register joins,
    the erasure pseudonyms and every table need the same code to be the same string.

    The century sign itself is kept: `-` and `Y` (or `A` and `B`) are different codes, possibly of
    different people, not two spellings of one. A value that is not a henkilötunnus is returned as
    it is (its row is quarantined by `personal_id_problem`).
    """
    return hetu.compact(value) if personal_id_problem(value) in (None, "personal_id_test_code") else value


def birth_date(value: str) -> dt.date | None:
    """Birth date encoded in a valid henkilötunnus (None when it is not one)."""
    try:
        number = hetu.validate(value, allow_temporary=True)
    except ValidationError:
        return None
    return dt.date(CENTURY_SIGNS[number[6]] + int(number[4:6]), int(number[2:4]), int(number[0:2]))


def business_id_problem(value: str) -> str | None:
    """Y-tunnus (Finnish business id) via python-stdnum."""
    return None if ytunnus.is_valid(value) else "business_id_invalid"


def business_id_canonical(value: str) -> str:
    """The one spelling of a Y-tunnus, `1234567-8`: python-stdnum also accepts it without the hyphen,
    with spaces or with the VAT prefix `FI` (`FI12345678`). Anything else is returned as it is."""
    return ytunnus.format(value) if ytunnus.is_valid(value) else value


def gsrn_problem(value: str) -> str | None:
    """GSRN: 18 digits with a GS1 mod-10 check digit. No prefix is assumed."""
    if len(value) != 18 or not value.isdigit():
        return "gsrn_format"
    return None if ean.calc_check_digit(value[:-1]) == value[-1] else "gsrn_check_digit"


@lru_cache(maxsize=None)
def phone_e164(value: str) -> tuple[str | None, bool]:
    """Normalise a Finnish phone number as typed to (E.164, is_mobile); (None, False) if invalid."""
    try:
        number = phonenumbers.parse(value, "FI")
    except phonenumbers.NumberParseException:
        return None, False
    if not phonenumbers.is_valid_number(number):
        return None, False
    kind = phonenumbers.number_type(number)
    mobile = kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), mobile


@lru_cache(maxsize=None)
def email_normalised(value: str) -> str | None:
    """Normalised email address, or None when it is not a valid address. Never does DNS lookups."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def phone_canonical(value: str) -> str:
    """A phone number as stored: its E.164 form when it is a valid number, else as typed (the row
    stays, the contact is unusable: `phone_e164` says so again where it is used)."""
    return phone_e164(value)[0] or value


def email_canonical(value: str) -> str:
    """An email address as stored: normalised when it is valid (the domain in lower case, Unicode
    NFC), else as typed, so that `email_normalised` can still call it invalid where it is used."""
    return email_normalised(value) or value


def _gsrn_problems(values: pl.Series) -> pl.Series:
    """`gsrn_problem` for many values at once, with exactly its results.

    A metering file holds one GSRN per metering point, so a big delivery means hundreds of
    thousands of distinct values. The common shape (18 ASCII digits) is checked with column
    arithmetic; anything else goes through `gsrn_problem` itself, one value at a time.
    """
    frame = values.rename("v").to_frame()
    digits = pl.col("v").str.contains(r"^[0-9]{18}$").fill_null(False)
    # GS1 mod-10 over the 17-digit body: weight 3 on the rightmost body digit, then 1, 3, …
    # (non-strict casts: the other values are computed too, then discarded by `when`)
    body = pl.sum_horizontal(
        [pl.col("v").str.slice(i, 1).cast(pl.Int32, strict=False) * (3 if i % 2 == 0 else 1) for i in range(17)]
    )
    check = (10 - body % 10) % 10
    fast = frame.select(
        digits.alias("digits"),
        pl.when(digits)
        .then(
            pl.when(check == pl.col("v").str.slice(17, 1).cast(pl.Int32, strict=False))
            .then(None)
            .otherwise(pl.lit("gsrn_check_digit"))
        )
        .alias("code"),
    )
    if fast["digits"].all():
        return fast["code"].cast(pl.String)
    slow = [None if d else gsrn_problem(v) for v, d in zip(values.to_list(), fast["digits"].to_list(), strict=True)]
    return fast.select(pl.coalesce("code", pl.Series(slow, dtype=pl.String))).to_series().cast(pl.String)


#: validators that have a vectorised twin returning the same codes for a whole Series
VECTORISED: dict[Callable[[str], object], Callable[[pl.Series], pl.Series]] = {gsrn_problem: _gsrn_problems}


def map_distinct(column: pl.Expr, fn: Callable[[str], object], return_dtype: pl.DataType) -> pl.Expr:
    """Apply a Python validator once per distinct non-null value of a string column."""
    vectorised = VECTORISED.get(fn)

    def apply(series: pl.Series) -> pl.Series:
        distinct = series.drop_nulls().unique()
        values = (
            vectorised(distinct).cast(return_dtype)
            if vectorised
            else pl.Series([fn(v) for v in distinct], dtype=return_dtype)
        )
        # a hash lookup per row, as the left join it replaces, without materialising a frame
        return series.replace_strict(distinct, values, default=None, return_dtype=return_dtype).rename("value")

    return column.map_batches(apply, return_dtype=return_dtype)


def find_personal_ids(text: str) -> list[str]:
    """Identity codes in free text: the pattern, confirmed by the check character.

    The check character rules out look-alikes such as a timestamp's '101126+0000'.
    """
    found = []
    for match in re.finditer(HETU_PATTERN, text):
        candidate = match.group(0).upper()
        if hetu.is_valid(candidate, allow_temporary=True):
            found.append(candidate)
    return found
