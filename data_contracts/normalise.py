"""Match keys for the ASML `mail` register (kieltorekisteri).

The register matches a person by name and address while ignoring case, accents, spacing and Unicode
normalisation form (NFC vs NFD). `asml_match_key` (one record, plain Python) and
`asml_match_key_expr` (polars, vectorised) build the same key, so the register side and the customer
side can be computed by either and still meet in a join. A tested property keeps the two in step.

Steps for each part: NFKD (compatibility decomposition, which also folds NBSP, full-width forms and
ligatures), drop every combining mark (Unicode category M), lowercase, fold `ß` to `ss`, and drop
all whitespace. A part that is empty afterwards makes the key null: an incomplete record never
matches anything.
"""

from __future__ import annotations

import re
import unicodedata

import polars as pl

__all__ = ["KEY_SEPARATOR", "asml_match_key", "asml_match_key_expr", "normalise_part", "normalise_part_expr"]

KEY_SEPARATOR = "|"

# The Unicode White_Space property, spelled out so Python and the polars (Rust) regex agree exactly.
_WHITESPACE_CLASS = "[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_WHITESPACE_RE = re.compile(_WHITESPACE_CLASS + "+")
# The separator may not survive inside a part, or two different records could share a key.
_SEPARATOR_RE = re.compile(re.escape(KEY_SEPARATOR))


def normalise_part(value: str | None) -> str:
    """One name or address part, folded for matching ('' when absent)."""
    if value is None:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(value))
    stripped = "".join(ch for ch in decomposed if not unicodedata.category(ch).startswith("M"))
    lowered = stripped.lower().replace("ß", "ss")
    return _SEPARATOR_RE.sub("", _WHITESPACE_RE.sub("", lowered))


def asml_match_key(
    first_name: str | None,
    last_name: str | None,
    street_address: str | None,
    postal_code: str | None,
) -> str | None:
    """The ASML mail match key of one person, or None when any part is missing."""
    parts = [normalise_part(p) for p in (first_name, last_name, street_address, postal_code)]
    if any(p == "" for p in parts):
        return None
    return KEY_SEPARATOR.join(parts)


def normalise_part_expr(expr: pl.Expr | str) -> pl.Expr:
    """Vectorised `normalise_part`; null stays null."""
    e = pl.col(expr) if isinstance(expr, str) else expr
    return (
        e.cast(pl.String)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}+", "")
        .str.to_lowercase()
        .str.replace_all("ß", "ss", literal=True)
        .str.replace_all(_WHITESPACE_CLASS + "+", "")
        .str.replace_all(KEY_SEPARATOR, "", literal=True)
    )


def asml_match_key_expr(
    first_name: pl.Expr | str = "first_name",
    last_name: pl.Expr | str = "last_name",
    street_address: pl.Expr | str = "street_address",
    postal_code: pl.Expr | str = "postal_code",
) -> pl.Expr:
    """Vectorised `asml_match_key` over four columns (names or expressions)."""
    # An empty part becomes null, and concat_str is null when any part is null: every part is
    # referenced once, so the (costly) normalisation runs once per column even without CSE.
    parts = [normalise_part_expr(p).replace("", None) for p in (first_name, last_name, street_address, postal_code)]
    return pl.concat_str(parts, separator=KEY_SEPARATOR)
