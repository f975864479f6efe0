"""Age on a day: the one definition every age rule uses (profiling's `minor`, the audiences' `minor`).

A person is N years old on D when D is on or after their Nth birthday. Someone born on 29 February
has that birthday on 29 February in a leap year and on 1 March in every other year: until the end of
28 February they have not completed the year. This is the rule we apply, stated plainly and not
derived from a statute. The law on calculating statutory time periods (laki säädettyjen määräaikain
laskemisesta 150/1930) is not the source: it covers deadlines kept before courts and authorities
(§1), and its §3 (a period counted in years that ends in a month without the matching day ends on
that month's last day) would put the date on 28 February instead. We use 1 March, the later of the two
candidate days, because the age rules protect minors: nobody is profiled or marketed to as an adult
on a day when one reading of the rule still says they are 17.

Two rules that each did their own calendar arithmetic disagreed on that day: polars'
`dt.offset_by("18y")` moves 29 February to 28 February. So the comparison below uses month and day
numbers only and never builds a date that might not exist. The independent re-check
(`models/audience_recheck.py`) keeps its own route on purpose and is tested to agree with this one.
"""

from __future__ import annotations

import datetime as dt

import polars as pl


def age_on(birth_date: pl.Expr, as_of: dt.date) -> pl.Expr:
    """Whole years completed on `as_of` (Int32); null where the birth date is null.

    The birthday has not come yet when the birth date's (month, day) is after D's: for a 29 February
    birth date and D = 28 February of a non-leap year it has not, and on 1 March it has.
    """
    b = birth_date.cast(pl.Date)
    birthday_not_yet = (b.dt.month().cast(pl.Int32) * 100 + b.dt.day().cast(pl.Int32)) > (as_of.month * 100 + as_of.day)
    return pl.lit(as_of.year, pl.Int32) - b.dt.year().cast(pl.Int32) - birthday_not_yet.cast(pl.Int32)
