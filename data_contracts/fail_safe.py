"""Fail safe: which quarantined rows could have restricted contact, and on which channels.

A row we could not read may have been an opt-out, a withdrawal, a ban or a death. While such a
row is unresolved, the channels it could restrict are not published. The table below is the
whole rule; `raw` is the delivered text, split on `;` (field positions from the contracts).
A person resolves a row (after the source re-delivers it, or after checking it) with
`lupa resolve-quarantine`, which records who decided what, and the block lifts.
"""

from __future__ import annotations

import polars as pl

ALL = ["email", "sms", "letter", "phone"]


def _field(i: int) -> pl.Expr:
    return pl.col("raw").str.split(";").list.get(i, null_on_oob=True)


#: source → (does this quarantined row possibly restrict contact?, which channels it could restrict)
RESTRICTING_ROWS: dict[str, tuple[pl.Expr, pl.Expr]] = {
    # an ASML entry opts out of addressed mail or telemarketing; unreadable register → both
    "asml": (
        pl.lit(True),
        pl.when(_field(0) == "mail").then(pl.lit(["letter"])).when(_field(0) == "phone").then(pl.lit(["phone"])).otherwise(pl.lit(["letter", "phone"])),
    ),
    # a VTJ row may carry a death (every channel) or a ban
    "population": (pl.lit(True), pl.lit(ALL)),
    # a consent row restricts unless it is legibly a grant; its channel if legible, else all
    "consents": (
        _field(4).fill_null("") != "granted",
        pl.when(_field(3).is_in(ALL)).then(pl.concat_list(_field(3))).otherwise(pl.lit(ALL)),
    ),
    # a lost marketing contact could let the frequency cap be exceeded on any channel
    "contacts": (_field(3).fill_null("") != "customer_communication", pl.lit(ALL)),
}


def blocking_rows(quarantine: pl.DataFrame) -> pl.DataFrame:
    """Unresolved quarantined rows that could restrict contact: source, file, line, rule, channel."""
    parts = []
    for source, (restricts, channels) in RESTRICTING_ROWS.items():
        rows = quarantine.filter(pl.col("source") == source).filter(restricts)
        parts.append(rows.select("source", "file", "line", "rule", channels.alias("channel")).explode("channel"))
    return pl.concat(parts).sort("channel", "source", "file", "line") if parts else pl.DataFrame()
