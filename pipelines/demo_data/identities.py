"""Identity codes and contact details as Finnish source systems hold them.

Codes are computed from their official rules (not copied from libraries) and then verified with
python-stdnum, so a bug here shows up as an assertion instead of as a silently invalid demo.
Phones and emails are produced "as typed": several spellings of the same valid number, a few
missing, a few broken, because that is what a CRM export looks like.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

import numpy as np
import phonenumbers
from stdnum import ean
from stdnum.fi import hetu as stdnum_hetu
from stdnum.fi import ytunnus as stdnum_ytunnus

from .randomness import weighted_index

HETU_CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
CENTURY_SIGNS = {
    1800: ("+",),
    1900: ("-", "Y", "X", "W", "V", "U"),
    2000: ("A", "B", "C", "D", "E", "F"),
}
ALL_CENTURY_SIGNS = tuple(s for signs in CENTURY_SIGNS.values() for s in signs)


# --------------------------------------------------------------------------------------- hetu
def hetu_check_char(birth: dt.date, individual: int) -> str:
    """Check character: int(DDMMYY + NNN) mod 31 looked up in the 31-character table."""
    number = int(f"{birth:%d%m}{birth.year % 100:02d}{individual:03d}")
    return HETU_CHECK_CHARS[number % 31]


def make_hetu(birth: dt.date, sign: str, individual: int) -> str:
    century = (birth.year // 100) * 100
    if sign not in CENTURY_SIGNS[century]:
        raise ValueError(f"century sign {sign!r} does not fit birth year {birth.year}")
    code = f"{birth:%d%m}{birth.year % 100:02d}{sign}{individual:03d}{hetu_check_char(birth, individual)}"
    return code


def is_valid_hetu(code: str) -> bool:
    return stdnum_hetu.is_valid(code)


def pick_century_sign(rng: np.random.Generator, birth_year: int) -> str:
    """Mostly the classic '-' / 'A'; the signs introduced in 2023 (Y X W V U, B C D E F) are rarer."""
    century = (birth_year // 100) * 100
    if century == 1800:
        return "+"
    if rng.random() < (0.96 if century == 1900 else 0.9):
        return CENTURY_SIGNS[century][0]
    return CENTURY_SIGNS[century][int(rng.integers(1, 6))]


def individual_number(rng: np.random.Generator, female: bool) -> int:
    """002-899 for real people: odd for men, even for women (900-999 are temporary/test codes)."""
    n = int(rng.integers(1, 450)) * 2  # 2..898 even
    return n if female else n + 1  # odd 3..899


# ------------------------------------------------------------------------------------ ytunnus
def ytunnus_check_digit(body: str) -> int | None:
    s = sum(w * int(c) for w, c in zip((7, 9, 10, 5, 8, 4, 2), body, strict=True)) % 11
    if s == 1:
        return None  # no valid check digit: such bodies are never issued
    return 0 if s == 0 else 11 - s


def make_ytunnus(rng: np.random.Generator) -> str:
    while True:
        body = f"{int(rng.integers(0, 3400000)):07d}"
        if body[0] not in "0123":
            continue
        check = ytunnus_check_digit(body)
        if check is None:
            continue
        code = f"{body}-{check}"
        assert stdnum_ytunnus.is_valid(code), code
        return code


# --------------------------------------------------------------------------------------- GSRN
# Finnish metering point ids start with 643 (GS1 Finland); the company prefix varies by grid operator.
GSRN_PREFIXES = ("6430070", "6430150", "6430160", "64355", "6430000", "6430190", "64300470")


def gs1_check_digit(body: str) -> str:
    """GS1 mod-10: weights 3,1,3,... from the rightmost digit of the body."""
    return ean.calc_check_digit(body)


def is_valid_gsrn(code: str) -> bool:
    return len(code) == 18 and code.isdigit() and gs1_check_digit(code[:-1]) == code[-1]


def make_gsrn(rng: np.random.Generator, prefix: str) -> str:
    body = prefix + "".join(str(d) for d in rng.integers(0, 10, 17 - len(prefix)))
    code = body + gs1_check_digit(body)
    assert len(code) == 18 and is_valid_gsrn(code)
    return code


# ------------------------------------------------------------------------------------- phones
MOBILE_PREFIXES = ("40", "40", "40", "50", "50", "44", "45", "41", "46", "44")
LANDLINE_AREAS = {
    "Helsinki": "9",
    "Espoo": "9",
    "Vantaa": "9",
    "Tampere": "3",
    "Turku": "2",
    "Oulu": "8",
    "Jyväskylä": "14",
    "Kuopio": "17",
    "Lahti": "3",
    "Vaasa": "6",
}


def _mobile_digits(rng: np.random.Generator) -> str:
    """National significant number, e.g. '401234567'."""
    while True:
        nsn = MOBILE_PREFIXES[int(rng.integers(0, len(MOBILE_PREFIXES)))] + f"{int(rng.integers(0, 10**7)):07d}"
        if phonenumbers.is_valid_number(phonenumbers.parse("+358" + nsn)):
            return nsn


def format_mobile(nsn: str, style: int) -> str:
    op, rest = nsn[:2], nsn[2:]
    return (
        f"0{op} {rest[:3]} {rest[3:]}",  # 040 123 4567
        f"0{op}{rest}",  # 0401234567
        f"+358 {op} {rest}",  # +358 40 1234567
        f"+358{op}{rest}",  # +358401234567
        f"0{op}-{rest[:3]} {rest[3:]}",  # 050-555 0123
        f"0{op}-{rest}",  # 040-1234567
        f"0{op} {rest}",  # 040 1234567
    )[style]


MOBILE_STYLE_WEIGHTS = np.array([0.34, 0.24, 0.14, 0.08, 0.08, 0.05, 0.07])
INVALID_PHONES = ("040 123", "12345", "+358 40 12", "0401234567890", "puh. ei ole", "040 12x 4567", "000")


def make_phone(rng: np.random.Generator, city: str, kind: str) -> tuple[str, str | None]:
    """Return (as typed, E.164 or None). kind: mobile, landline, invalid or missing."""
    if kind == "missing":
        return "", None
    if kind == "invalid":
        return INVALID_PHONES[int(rng.integers(0, len(INVALID_PHONES)))], None
    if kind == "landline":
        others = ("2", "3", "5", "6", "8", "13", "14", "15", "16", "17", "19")
        area = LANDLINE_AREAS.get(city) or others[int(rng.integers(0, len(others)))]
        while True:
            sub = f"{int(rng.integers(1000000, 9999999))}"
            if area == "9":
                typed = f"09 {sub[:3]} {sub[3:]}"
            elif len(area) == 1:
                typed = f"0{area} {sub[:3]} {sub[3:]}"
            else:
                sub = sub[:6]
                typed = f"0{area} {sub[:3]} {sub[3:]}"
            num = phonenumbers.parse(typed, "FI")
            if phonenumbers.is_valid_number(num):
                return typed, phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    nsn = _mobile_digits(rng)
    style = weighted_index(rng, MOBILE_STYLE_WEIGHTS)
    return format_mobile(nsn, style), "+358" + nsn


# ------------------------------------------------------------------------------------- emails
EMAIL_DOMAINS = (
    "example.fi",
    "example.fi",
    "example.com",
    "example.net",
    "example.org",
    "mail.example.fi",
    "koti.example.fi",
    "posti.example.com",
)
INVALID_EMAIL_PATTERNS = (
    "{f}.{l}@",
    "no-at-sign.fi",
    "{f}.{l}.example.fi",
    "{f} {l}@example.fi",
    "{f}..{l}@example.fi",
    "{f}.{l}@example",
    "@example.fi",
    "{f}.{l}@@example.fi",
)


def ascii_fold(text: str) -> str:
    """Strip accents the way people type addresses into forms: ä->a, ö->o, å->a, é->e."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _local_part(name: str) -> str:
    return "".join(c for c in ascii_fold(name).lower().replace(" ", "-") if c.isalnum() or c in "-")


def make_person_email(rng: np.random.Generator, first: str, last: str, birth_year: int, kind: str) -> str:
    """kind: valid, invalid or missing."""
    f, l_ = _local_part(first.split(" ")[0].split("-")[0]), _local_part(last)
    if kind == "missing":
        return ""
    if kind == "invalid":
        pat = INVALID_EMAIL_PATTERNS[int(rng.integers(0, len(INVALID_EMAIL_PATTERNS)))]
        return pat.format(f=f, l=l_)
    r = rng.random()
    if r < 0.45:
        local = f"{f}.{l_}"
    elif r < 0.60:
        local = f"{f}{l_}"
    elif r < 0.72:
        local = f"{f[0]}.{l_}"
    elif r < 0.86:
        local = f"{f}.{l_}{birth_year % 100:02d}"
    elif r < 0.94:
        local = f"{f}{int(rng.integers(1, 999))}"
    else:
        local = f"{l_}.{f}"
    domain = EMAIL_DOMAINS[int(rng.integers(0, len(EMAIL_DOMAINS)))]
    email = f"{local}@{domain}"
    if rng.random() < 0.04:  # typed with capitals; still valid
        email = f"{local.title()}@{domain.capitalize()}"
    return email


def make_company_email(rng: np.random.Generator, company: str, kind: str) -> str:
    if kind == "missing":
        return ""
    legal = {"oy", "ab", "ky", "tmi", "ry", "asunto", "kiinteistö", "&", "oyj"}
    words = [_local_part(w) for w in company.split(" ") if w.lower() not in legal]
    slug = "-".join(w for w in words if w)[:40] or "yritys"
    if kind == "invalid":
        return f"info@{slug}"
    local = ("info", "laskutus", "toimisto", "asiakaspalvelu", "isannointi")[int(rng.integers(0, 5))]
    return f"{local}@{slug}.example.fi"
