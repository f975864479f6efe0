"""Erased customers stay erased: suppression records applied wherever data enters.

An erasure leaves only keyed pseudonyms (HMAC-SHA256 with LUPA_PSEUDONYM_KEY) of the customer id
and identity code, the erasure date, and the metering point periods whose readings belonged to the
customer. Ingestion drops matching rows before anything is written, so a later snapshot, a
re-delivered file or a backfill of old days can never bring the customer back. The records live
as small Parquet files, not in warehouse.duckdb, so parallel metering workers read them without
taking the warehouse lock.

What is erased is a relationship, not a person for ever (docs/privacy.md, "A returning customer"):
a row of an erased customer id never comes back, but the same person may become a customer again
under a new id. A row that carries an erased identity code is therefore let through when it belongs
to that new relationship: a CRM row whose customer id is not erased and whose `customer_since` is
after the erasure date (`RELATIONSHIP_STARTS`), or a population register row delivered after the
erasure for a person the current CRM snapshot holds again. Everything else with the code (an old
snapshot, a backfill, an old register row) stays out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl

from data_contracts.identifiers import map_distinct, personal_id_canonical
from data_contracts.vocabulary import HELSINKI

SUBJECTS_SCHEMA = {"pseudonym": pl.String, "erased_on": pl.Date}
POINTS_SCHEMA = {"metering_point_id": pl.String, "valid_from": pl.Date, "valid_to": pl.Date, "erased_on": pl.Date}

#: per source, the column dating the start of the relationship a row belongs to: a row carrying an
#: erased identity code (but no erased customer id) dated after the erasure is a new relationship
#: (for a prospect, a lead collected after the erasure)
RELATIONSHIP_STARTS = {"customers": "customer_since", "prospects": "collected_on"}
#: the column holding the identity code, and the one holding the customer id, wherever a source has them
IDENTITY_CODE, CUSTOMER_ID = "personal_id", "customer_id"
#: a suppression record without a date (none are known to exist; the schema always had one) takes the
#: date from the erasure audit log; without one there either, it lets no new relationship through (the
#: old, stricter behaviour)
NO_DATE = dt.date.max


def _key() -> bytes:
    key = os.environ.get("LUPA_PSEUDONYM_KEY")
    if not key:
        raise RuntimeError("LUPA_PSEUDONYM_KEY is not set (pipelines.settings.load_settings provides it)")
    return key.encode()


@lru_cache(maxsize=None)
def _pseudonym(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def pseudonym(value: str) -> str:
    """Keyed pseudonym of an identifier; without the key it cannot be reversed or recomputed."""
    return _pseudonym(_key(), value)


def raw_field_pseudonyms(raw: str) -> list[str]:
    """Pseudonyms of every field of a delivered (`;`-separated) record, each field as it stands and
    in its canonical identity-code spelling: a quarantined row keeps the text as delivered, and
    `010190-123a` there must match the erasure of `010190-123A` (valid rows are canonical already)."""
    fields = [f.strip() for f in raw.split(";") if f.strip()]
    return [pseudonym(v) for f in fields for v in dict.fromkeys((f, personal_id_canonical(f)))]


@dataclass(frozen=True)
class Suppressions:
    subjects: frozenset[str]
    points: pl.DataFrame
    #: per pseudonym, the date of its latest erasure (NO_DATE when the record has none)
    erased_on: Mapping[str, dt.date] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.subjects and self.points.is_empty()

    def erased_date(self, value: str | None) -> dt.date | None:
        """The date `value` (an identifier) was erased on, or None when it is not erased."""
        if value is None:
            return None
        p = pseudonym(value)
        return self.erased_on.get(p, NO_DATE) if p in self.subjects else None

    def new_relationship(
        self,
        erased_on: dt.date,
        since: dt.date | None,
        delivered_on: dt.date | None,
        held_again: bool,
    ) -> bool:
        """Does a row carrying an identity code erased on `erased_on` belong to a relationship that
        began after the erasure? A CRM row (its customer id not erased) says so by its start date
        (`since`); a row without a customer id (the population register), by a delivery after the
        erasure for a person the current CRM snapshot holds again (`held_again`)."""
        if since is not None:
            return since > erased_on
        return held_again and delivered_on is not None and delivered_on > erased_on

    def keep_rows(
        self,
        frame: pl.DataFrame,
        source: str,
        delivered_on: dt.date | None = None,
        customer_codes: pl.Series | None = None,
    ) -> pl.DataFrame:
        """Drop rows of erased customers: every row of an erased customer id, and every row of an
        erased identity code that is not part of a relationship begun after its erasure.

        `customer_codes` are the identity codes of the current CRM snapshot (valid rows, so a
        returning customer is among them only when their own row passed this rule)."""
        if not self.subjects or frame.is_empty():
            return frame
        drop = pl.lit(False)
        if CUSTOMER_ID in frame.columns:
            drop = drop | map_distinct(pl.col(CUSTOMER_ID), lambda v: pseudonym(v) in self.subjects, pl.Boolean())
        if IDENTITY_CODE in frame.columns:
            code_erased = map_distinct(pl.col(IDENTITY_CODE), self.erased_date, pl.Date())
            since_column = RELATIONSHIP_STARTS.get(source)
            if since_column is not None and since_column in frame.columns:
                new = pl.col(since_column) > code_erased
            elif CUSTOMER_ID not in frame.columns and delivered_on is not None and customer_codes is not None:
                held = pl.col(IDENTITY_CODE).is_in(customer_codes.drop_nulls().unique().implode())
                new = held & (pl.lit(delivered_on) > code_erased)
            else:
                new = pl.lit(False)
            drop = drop | (code_erased.is_not_null() & ~new.fill_null(False))
        return frame.filter(~drop.fill_null(False))

    def keep_raw(
        self,
        quarantine: pl.DataFrame,
        source: str | None = None,
        header: list[str] | None = None,
        delivered_on: dt.date | None = None,
        customer_codes: pl.Series | None = None,
    ) -> pl.DataFrame:
        """Quarantined records: drop those with any field that is an erased customer's identifier,
        unless the only such field is the identity code of a new relationship (read from the
        record's own fields by `header`, as `keep_rows` reads a valid row). A record whose fields
        cannot be told apart (a field count other than the header's) is dropped: the safe side."""
        if not self.subjects or quarantine.is_empty():
            return quarantine
        held = set(customer_codes.drop_nulls().to_list()) if customer_codes is not None else set()

        def erased(raw: str) -> bool:
            if self.subjects.isdisjoint(raw_field_pseudonyms(raw)):
                return False
            fields = [f.strip().strip('"').strip() for f in raw.split(";")]
            if header is None or len(fields) != len(header) or IDENTITY_CODE not in header:
                return True
            row = dict(zip(header, fields, strict=True))
            others = ";".join(v for k, v in row.items() if k != IDENTITY_CODE)
            if not self.subjects.isdisjoint(raw_field_pseudonyms(others)):
                return True
            code = personal_id_canonical(row[IDENTITY_CODE])
            erased_on = self.erased_date(code) or self.erased_date(row[IDENTITY_CODE])
            if erased_on is None:  # the hit was the code in another spelling still erased
                return True
            since_column = RELATIONSHIP_STARTS.get(source or "")
            if since_column is not None:
                return not self.new_relationship(erased_on, _date(row.get(since_column, "")), None, False)
            if CUSTOMER_ID in header:
                return True
            return not self.new_relationship(erased_on, None, delivered_on, code in held)

        hit = quarantine["raw"].map_elements(erased, return_dtype=pl.Boolean)
        return quarantine.filter(~hit)

    def keep_readings(self, readings: pl.DataFrame, day_column: str = "business_day") -> pl.DataFrame:
        """Drop readings of a metering point inside an erased customer's contract period."""
        if self.points.is_empty() or readings.is_empty():
            return readings
        periods = self.points.select("metering_point_id", "valid_from", "valid_to")
        flagged = (
            readings.with_row_index("_row")
            .join(periods, on="metering_point_id", how="inner")
            .filter(
                (pl.col(day_column) >= pl.col("valid_from"))
                & (pl.col("valid_to").is_null() | (pl.col(day_column) <= pl.col("valid_to")))
            )
        )
        return readings.with_row_index("_row").join(flagged.select("_row").unique(), on="_row", how="anti").drop("_row")

    def keep_quarantined_readings(self, quarantine: pl.DataFrame) -> pl.DataFrame:
        """Quarantined metering records (`raw` Datahub lines): drop those of a metering point inside
        an erased customer's contract period. A record is dated by its start time (the Helsinki
        business day, as readings are); one whose start time cannot be read, by its delivery (the
        file delivered on D+1 holds day D)."""
        if self.points.is_empty() or quarantine.is_empty():
            return quarantine
        periods: dict[str, list[tuple[dt.date, dt.date | None]]] = {}
        for point, start, end in self.points.select("metering_point_id", "valid_from", "valid_to").iter_rows():
            periods.setdefault(point, []).append((start, end))
        # a cheap pass first: only records that mention an erased point at all are parsed
        mentions = quarantine["raw"].str.contains_any(list(periods)).fill_null(False)
        if not mentions.any():
            return quarantine

        def erased(raw: str, delivered_on: dt.date | None) -> bool:
            fields = [f.strip().strip('"') for f in raw.split(";")]
            day = _reading_day(fields[5] if len(fields) > 5 else "", delivered_on)
            return any(
                day is None or (start <= day and (end is None or day <= end))
                for f in fields
                if f in periods
                for start, end in periods[f]
            )

        delivered = (
            quarantine["delivered_on"]
            if "delivered_on" in quarantine.columns
            else pl.Series([None] * quarantine.height)
        )
        hit = [bool(m) and erased(raw, d) for m, raw, d in zip(mentions, quarantine["raw"], delivered, strict=True)]
        return quarantine.filter(~pl.Series(hit, dtype=pl.Boolean))


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _reading_day(start: str, delivered_on: dt.date | None) -> dt.date | None:
    """The Helsinki business day of a raw `Start Time` (UTC unless it says otherwise); else the
    delivery's day; None when neither is known (the record is then treated as inside the period)."""
    try:
        moment = dt.datetime.fromisoformat(start)
        return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(HELSINKI).date()
    except ValueError:
        return delivered_on - dt.timedelta(days=1) if delivered_on else None


def suppression_dir(warehouse_dir: Path) -> Path:
    return warehouse_dir / "suppressions"


def load(warehouse_dir: Path) -> Suppressions:
    folder = suppression_dir(warehouse_dir)
    subjects = (
        pl.read_parquet(folder / "subjects.parquet")
        if (folder / "subjects.parquet").exists()
        else pl.DataFrame(schema=SUBJECTS_SCHEMA)
    )
    points = (
        pl.read_parquet(folder / "points.parquet")
        if (folder / "points.parquet").exists()
        else pl.DataFrame(schema=POINTS_SCHEMA)
    )
    if "erased_on" not in subjects.columns:
        subjects = subjects.with_columns(pl.lit(None, dtype=pl.Date).alias("erased_on"))
    dates = dict(subjects.group_by("pseudonym").agg(pl.col("erased_on").max()).select("pseudonym", "erased_on").rows())
    undated = [p for p, d in dates.items() if d is None]
    if undated:
        # a record without a date takes its erasure's date from the audit log, else none at all
        audited = _audited_dates(warehouse_dir)
        dates |= {p: audited.get(p, NO_DATE) for p in undated}
    return Suppressions(frozenset(subjects["pseudonym"].to_list()), points, dates)


def _audited_dates(warehouse_dir: Path) -> dict[str, dt.date]:
    """Per pseudonym (customer id and identity codes), the latest date the erasure audit log
    (`audit/erasures.jsonl`, written by assets/privacy/erasure.py) records it was suppressed on."""
    log = warehouse_dir / "audit" / "erasures.jsonl"
    found: dict[str, dt.date] = {}
    if not log.exists():
        return found
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line) if line.strip() else {}
        if entry.get("step") != "suppressed":
            continue
        day = dt.date.fromisoformat(entry["erased_on"])
        for p in (entry["subject"], *entry.get("identity_code_pseudonyms", [])):
            found[p] = max(found.get(p, day), day)
    return found


def add(warehouse_dir: Path, identifiers: list[str], points: pl.DataFrame, erased_on: dt.date) -> None:
    """Append suppression records (replacing the files atomically)."""
    folder = suppression_dir(warehouse_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    existing = folder / "subjects.parquet"
    subjects = (
        pl.concat(
            [
                pl.read_parquet(existing) if existing.exists() else pl.DataFrame(schema=SUBJECTS_SCHEMA),
                pl.DataFrame(
                    {"pseudonym": [pseudonym(i) for i in identifiers], "erased_on": [erased_on] * len(identifiers)},
                    schema=SUBJECTS_SCHEMA,
                ),
            ]
        )
        # erased twice (a returning customer erased again): the latest erasure dates the record
        .sort("pseudonym", "erased_on", nulls_last=False)
        .unique("pseudonym", keep="last")
        .sort("pseudonym")
    )
    new_points = (
        pl.concat([load(warehouse_dir).points, points.select(list(POINTS_SCHEMA)).cast(POINTS_SCHEMA)])
        .unique()
        .sort("metering_point_id", "valid_from")
    )
    for name, frame in (("subjects", subjects), ("points", new_points)):
        tmp = folder / f".{name}.parquet.tmp"
        frame.write_parquet(tmp)
        os.chmod(tmp, 0o600)
        tmp.replace(folder / f"{name}.parquet")


def drop_erased(
    tables: Mapping[str, pl.DataFrame], suppressions: Suppressions, column: str = "customer_id"
) -> tuple[dict[str, pl.DataFrame], int]:
    """The tables without the rows of customers the suppression records name (matched by `column`,
    by the same keyed pseudonym erasure records), and how many distinct customers were dropped.

    Tables without `column` are returned as they are. The count is all a caller may report: the
    customers themselves are never named."""
    if not suppressions.subjects:
        return dict(tables), 0
    present = {
        c for frame in tables.values() if column in frame.columns for c in frame[column].drop_nulls().unique().to_list()
    }
    erased = sorted(c for c in present if pseudonym(c) in suppressions.subjects)
    if not erased:
        return dict(tables), 0
    gone = pl.col(column).is_in(pl.Series(erased, dtype=pl.String).implode()).fill_null(False)
    return {name: frame.filter(~gone) if column in frame.columns else frame for name, frame in tables.items()}, len(
        erased
    )
