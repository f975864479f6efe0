"""Dagster metadata helpers: counts, coverage and links only — never a personal value."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

from dagster import AssetCheckResult, MetadataValue


def counts_table(counts: Mapping[str, int], key: str = "rule", value: str = "records") -> MetadataValue:
    if not counts:
        return MetadataValue.md(f"_no {value}_")
    lines = [f"| {key} | {value} |", "|---|---:|"] + [f"| `{k}` | {v:,} |" for k, v in counts.items()]
    return MetadataValue.md("\n".join(lines))


def files_table(rows: Iterable[tuple[str, int, int, int]], landing_dir: Path, source: str) -> MetadataValue:
    """Markdown list of the files a materialisation read, each a link, with its counts."""
    rows = list(rows)
    if not rows:
        return MetadataValue.md("_no files delivered in scope_")
    lines = ["| file | read | valid | quarantined |", "|---|---:|---:|---:|"]
    shown = rows if len(rows) <= 40 else rows[:5] + [("…", 0, 0, 0)] + rows[-30:]
    for name, read, valid, quarantined in shown:
        if name == "…":
            lines.append(f"| … {len(rows) - 35} more | | | |")
        else:
            lines.append(f"| [{name}](file://{landing_dir / source / name}) | {read:,} | {valid:,} | {quarantined:,} |")
    return MetadataValue.md("\n".join(lines))


def coverage(first: dt.date | None, last: dt.date | None) -> MetadataValue:
    return MetadataValue.text(f"{first} … {last}" if first else "empty")


def conservation_result(
    asset_key,
    read: int,
    valid: int,
    quarantined: int,
    per_file_ok: bool = True,
    suppressed: int = 0,
    past_retention: int = 0,
) -> AssetCheckResult:
    """rows read = valid + quarantined + suppressed + past retention, the last two dropped on purpose:
    rows of erased customers, and rows the `retention` asset has already removed for good."""
    return AssetCheckResult(
        asset_key=asset_key,
        check_name="conservation",
        passed=bool(read == valid + quarantined + suppressed + past_retention and per_file_ok),
        metadata={
            "rows_read": read,
            "rows_valid": valid,
            "rows_quarantined": quarantined,
            "rows_suppressed_after_erasure": suppressed,
            "rows_past_retention": past_retention,
        },
    )


def read_from(**paths: Path) -> dict[str, MetadataValue]:
    """`read_from/<name>` links to the files a materialisation read (DuckDB files, Parquet folders)."""
    return {f"read_from/{name}": MetadataValue.path(str(path)) for name, path in paths.items()}


def quarantine_rate_result(asset_key, files: list[tuple[str, int, int]], threshold: float) -> AssetCheckResult:
    """Fails when any file of the run's own deliveries, `(file, rows read, rows quarantined)`,
    quarantined more than `threshold` of its records.

    Per file, not over the history a run re-reads: a bad delivery must not hide among hundreds of
    good ones. A run without a delivery of its own has nothing to rate and passes."""
    rates = {name: (quarantined / read if read else 0.0) for name, read, quarantined in files}
    over = sorted(name for name, rate in rates.items() if rate > threshold)
    read, quarantined = sum(f[1] for f in files), sum(f[2] for f in files)
    return AssetCheckResult(
        asset_key=asset_key,
        check_name="quarantine_rate",
        passed=not over,
        metadata={
            "quarantine_rate": round(quarantined / read, 6) if read else 0.0,
            "highest_file_rate": round(max(rates.values(), default=0.0), 6),
            "threshold": threshold,
            "files_rated": len(files),
            "files_over_threshold": MetadataValue.json(over),
            "rows_quarantined": quarantined,
        },
    )
