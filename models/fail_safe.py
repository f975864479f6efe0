"""Fail safe: which quarantined rows could have restricted contact, and on which channels.

A row we could not read may have been an opt-out, a withdrawal, a ban or a death. While such a
row is unresolved, the channels it could restrict are not published. The table below is the
whole rule; `raw` is the delivered text, split on `;` (field positions from the contracts).
A person resolves a row (after the source re-delivers it, or after checking it) with
`lupa resolve-quarantine`, which records who decided what, and the block lifts.

Such a row outlives the quarantine retention period: while it is unresolved it is neither deleted
by the `retention` asset nor left out by ingestion (a backfill, a fresh install loading old
deliveries), because a block that lifted when its row aged out would let the pipeline contact a
customer who said no. `held_until_resolved` says which rows (ingestion stores them from files of any
age); the `retention` asset spares the rows the `fail_safe` check blocks on for the day, the same
rule within the extract in force for ASML (assets/storage/pruning.py). Once resolved, or if it never could
restrict, a row ages out with the rest of the quarantine.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from data_contracts.policy import MarketingPolicy
from data_contracts.vocabulary import CHANNELS

ALL = list(CHANNELS)


def _field(i: int) -> pl.Expr:
    return pl.col("raw").str.split(";").list.get(i, null_on_oob=True)


#: source → (does this quarantined row possibly restrict contact?, which channels it could restrict)
RESTRICTING_ROWS: dict[str, tuple[pl.Expr, pl.Expr]] = {
    # an ASML entry opts out of addressed mail or telemarketing; unreadable register → both
    "asml": (
        pl.lit(True),
        pl.when(_field(0) == "mail")
        .then(pl.lit(["letter"]))
        .when(_field(0) == "phone")
        .then(pl.lit(["phone"]))
        .otherwise(pl.lit(["letter", "phone"])),
    ),
    # a VTJ row may carry a death (every channel) or a ban
    "population": (pl.lit(True), pl.lit(ALL)),
    # a consent row restricts unless it is legibly a grant; its channel if legible, else all
    "consents": (
        _field(4).fill_null("") != "granted",
        pl.when(_field(3).is_in(ALL)).then(pl.concat_list(_field(3))).otherwise(pl.lit(ALL)),
    ),
    # a lost marketing contact could let the frequency cap be exceeded on any channel, while its
    # file's delivery is inside the cap window (the day-dependent part: `in_scope`)
    "contacts": (_field(3).fill_null("") != "customer_communication", pl.lit(ALL)),
}


def _prospect_consent_unsafe(i: int) -> pl.Expr:
    return ~_field(i).fill_null("").is_in(["granted", ""])


_PROSPECT_OBJECTION_UNSAFE = _field(15).fill_null("") != "0"

#: The prospect audiences' fail safe. What could restrict a customer through the registers (ASML,
#: VTJ) or the cap (a lost marketing contact, possibly with a prospect) restricts a prospect too; a
#: consents row is a customer's own and restricts no prospect. A prospects row restricts unless it
#: is legibly harmless: `marketing_objection` legibly `0` and neither consent legibly anything but
#: `granted` or empty. An objection that is not legibly `0` blocks every channel; a consent field
#: that is not legibly harmless blocks its channel. Field positions: `sources.prospects` header.
PROSPECT_RESTRICTING_ROWS: dict[str, tuple[pl.Expr, pl.Expr]] = {
    "asml": RESTRICTING_ROWS["asml"],
    "population": RESTRICTING_ROWS["population"],
    "contacts": RESTRICTING_ROWS["contacts"],
    "prospects": (
        _PROSPECT_OBJECTION_UNSAFE | _prospect_consent_unsafe(13) | _prospect_consent_unsafe(14),
        pl.when(_PROSPECT_OBJECTION_UNSAFE)
        .then(pl.lit(ALL))
        .otherwise(
            pl.concat_list(
                pl.when(_prospect_consent_unsafe(13)).then(pl.lit("email")),
                pl.when(_prospect_consent_unsafe(14)).then(pl.lit("sms")),
            ).list.drop_nulls()
        ),
    ),
}


def could_restrict() -> pl.Expr:
    """Per quarantined row: does `RESTRICTING_ROWS` (or, for a prospects row,
    `PROSPECT_RESTRICTING_ROWS`) say it could restrict contact? (false for other sources)"""
    expr = pl.lit(False)
    for source, (restricts, _) in (RESTRICTING_ROWS | {"prospects": PROSPECT_RESTRICTING_ROWS["prospects"]}).items():
        expr = pl.when(pl.col("source") == source).then(restricts).otherwise(expr)
    return expr.fill_null(False)


RESOLUTION_KEY = ["source", "file", "line"]


def held_until_resolved(quarantine: pl.DataFrame, resolved: pl.DataFrame) -> pl.Series:
    """Per quarantined row (in order): kept past the quarantine period, because it could restrict
    contact and no person has resolved it. `resolved` holds the (source, file, line) of resolutions."""
    done = resolved.select(pl.concat_str(RESOLUTION_KEY, separator="\x1f").alias("key")).to_series()
    unresolved = ~pl.concat_str(RESOLUTION_KEY, separator="\x1f").is_in(done.implode())
    return quarantine.select((could_restrict() & unresolved.fill_null(True)).alias("held")).to_series()


def blocking_rows(
    quarantine: pl.DataFrame, restricting: dict[str, tuple[pl.Expr, pl.Expr]] = RESTRICTING_ROWS
) -> pl.DataFrame:
    """Unresolved quarantined rows that could restrict contact: source, file, line, rule, channel.
    `restricting` is the customers' table by default, `PROSPECT_RESTRICTING_ROWS` for prospects."""
    parts = []
    for source, (restricts, channels) in restricting.items():
        rows = quarantine.filter(pl.col("source") == source).filter(restricts)
        parts.append(rows.select("source", "file", "line", "rule", channels.alias("channel")).explode("channel"))
    return pl.concat(parts).sort("channel", "source", "file", "line") if parts else pl.DataFrame()


BLOCKER_SCHEMA = {"source": pl.String, "file": pl.String, "line": pl.Int64, "rule": pl.String, "channel": pl.String}


def in_scope(
    quarantine: pl.DataFrame,
    resolved: pl.DataFrame,
    asml_file: str | None,
    day: dt.date,
    cutoff: dt.date,
    policy: MarketingPolicy,
) -> pl.DataFrame:
    """The quarantined rows (delivered up to `cutoff`, D+1) that matter on D: unresolved; for ASML only
    the extract in force (`asml_file`); for contacts only files delivered inside the frequency-cap window,
    because a contact is delivered after it was sent, so an older file holds only older contacts that
    the cap no longer counts. Without a cap, a lost contact restricts nothing."""
    cap = policy.global_exclusions.frequency_cap
    cap_start = day - dt.timedelta(days=cap.window_days - 1) if cap is not None else cutoff + dt.timedelta(days=1)
    done = resolved.select(pl.concat_str(RESOLUTION_KEY, separator="\x1f").alias("key")).to_series()
    unresolved = ~pl.concat_str(RESOLUTION_KEY, separator="\x1f").is_in(done.implode())
    current_asml = pl.col("file") == asml_file if asml_file is not None else pl.lit(False)
    return quarantine.filter(
        unresolved.fill_null(True)
        & (pl.col("delivered_on") <= cutoff)
        & ((pl.col("source") != "asml") | current_asml)
        & ((pl.col("source") != "contacts") | (pl.col("delivered_on") >= cap_start))
    )


def blocking_on(
    quarantine: pl.DataFrame,
    resolved: pl.DataFrame,
    asml_file: str | None,
    day: dt.date,
    cutoff: dt.date,
    policy: MarketingPolicy,
    restricting: dict[str, tuple[pl.Expr, pl.Expr]] = RESTRICTING_ROWS,
) -> pl.DataFrame:
    """The fail safe on D: every unresolved, in-scope quarantined row that could restrict a channel."""
    return blocking_rows(in_scope(quarantine, resolved, asml_file, day, cutoff, policy), restricting)
