"""Shared Dagster definitions for every layer: partitions, owners, retry policy, schemas, failures."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from functools import wraps

import polars as pl
from dagster import (
    BackfillPolicy,
    Backoff,
    BetaWarning,
    DailyPartitionsDefinition,
    Failure,
    Jitter,
    RetryPolicy,
    TableColumn,
    TableSchema,
)

from assets.storage.landing import LandingFileError
from data_contracts.contract import PARSERS, ContractViolation, SourceContract
from data_contracts.vocabulary import TIME_ZONE_NAME

# BackfillPolicy is beta in dagster 1.13; we depend on it deliberately (docs/decisions.md).
warnings.filterwarnings("ignore", category=BetaWarning)

OWNERS = ["team:lupa-data"]

#: Helsinki business days. The first partition is the start of the retained history; the last is
#: yesterday (end_offset 0), because a day's deliveries arrive the next morning.
business_days = DailyPartitionsDefinition(
    start_date=os.environ.get("LUPA_HISTORY_START", "2025-01-01"),
    timezone=TIME_ZONE_NAME,
    fmt="%Y-%m-%d",
)

#: A range of days runs as one Dagster run (dagster 1.13 has no `asset backfill` command).
single_run = BackfillPolicy.single_run()

#: Transient I/O (a DuckDB file briefly locked, a network filesystem hiccup) is retried; data
#: errors are raised as Failure with allow_retries=False and are not.
io_retry = RetryPolicy(max_retries=3, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)


def polars_type_name(dtype: pl.DataType) -> str:
    return str(dtype).lower()


def schema_of_frame(frame: pl.DataFrame | pl.Schema | dict) -> TableSchema:
    schema = frame.schema if isinstance(frame, pl.DataFrame) else frame
    return TableSchema(columns=[TableColumn(name, polars_type_name(dtype)) for name, dtype in schema.items()])


def schema_of_contract(contract: SourceContract) -> TableSchema:
    return TableSchema(
        columns=[
            TableColumn(
                f.name, polars_type_name(PARSERS[f.kind][0]), description="required" if f.required else "optional"
            )
            for f in contract.fields
        ]
    )


def data_errors_fail_cleanly(fn: Callable) -> Callable:
    """Turn a data error into one clear Dagster failure, not a traceback wall, and never retry it.

    An unreadable landing file names the file, the line and what was expected; a contract
    violation names the table, the check and the count. Retrying cannot fix either.
    """

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LandingFileError as exc:
            raise Failure(
                description=str(exc), metadata={"file": exc.file, "line": exc.line or 0}, allow_retries=False
            ) from None
        except ContractViolation as exc:
            raise Failure(description=str(exc), allow_retries=False) from None

    return wrapper
