"""The `lupa` sub-commands, one module each (or one per family sharing a helper), each with
`add_parser(subparsers)` for `pipelines.cli` to call."""

from __future__ import annotations

import argparse
import datetime as dt


def iso_date(value: str) -> dt.date:
    """An argparse type: a date given as YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None
