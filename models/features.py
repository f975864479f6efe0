"""Customer features for profiling: consumption shape from the per-day metering aggregates, payment
behaviour from invoices and contract facts, one row per customer of the profiling population.

Scaling design (target: 500,000 customers x 365 days, about 182M daily rows, not held in memory):

* Readings belong to a customer only inside `metering_point_attribution` periods. The periods are
  small, so they are clipped to the window and merged eagerly, then joined to the daily scan.
* Customers with exactly one metering point in the window (almost everyone) need no per-day
  combination: their attributed daily rows stream straight into ONE `group_by(customer_id)` whose
  aggregates are all streamable sums/maxima (no per-group quantile, which would force an in-memory
  fallback). That is one streaming pass over the daily table with memory proportional to customers.
* Customers with several points are first summed per (customer, day). That group-by holds
  customer-days in memory, so it runs in time chunks (a filter on `business_day`, which prunes hive
  partitions) sized by `max_group_rows`.
* Partial aggregates of all passes are combined (sum, or max) and turned into features on a
  customer-sized frame.
* The base load (10th percentile of the daily minimum hourly kWh) is not a streamable aggregate, so
  each customer keeps a log-spaced histogram (count and sum per bucket) of the daily minima, and the
  percentile is read from it: exact when the minima around the percentile are equal, otherwise
  within one bucket (buckets are about 22 % wide).

Identity codes, names, addresses and contact details are never read here; `customer_id` is the key.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import date, timedelta

import numpy as np
import polars as pl

HOURS = list(range(24))
HOUR_COLS = [f"kwh_h{h:02d}" for h in HOURS]
SHARE_COLS = [f"share_h{h:02d}" for h in HOURS]
NIGHT_HOURS = (22, 23, 0, 1, 2, 3, 4, 5, 6)  # 22-07 local, as `night_kwh` in the daily table
DAY_HOURS = tuple(range(8, 17))  # 08:00-16:59 local: "daytime", the home-office signal
EVENING_HOURS = tuple(range(17, 22))  # 17:00-21:59 local
WINTER_MONTHS = (12, 1, 2)
SUMMER_MONTHS = (6, 7, 8)
COLD_MONTHS = (10, 11, 12, 1, 2, 3, 4)  # fallback seasons when Dec-Feb or Jun-Aug has no data
WARM_MONTHS = (5, 6, 7, 8, 9)
BASE_LOAD_QUANTILE = 0.10
#: Bucket edges (kWh per hour) of the daily-minimum histogram; bucket j holds (edge[j-1], edge[j]].
BASE_LOAD_EDGES = np.geomspace(0.005, 50.0, 48)
#: A season (or weekday/weekend) needs this many covered days before its mean is trusted.
MIN_SEASON_DAYS = 14.0
MIN_WEEKPART_DAYS = 4.0
WINTER_SUMMER_CAP = 100.0
WEEKDAY_WEEKEND_CAP = 10.0
DEFAULT_MAX_GROUP_ROWS = 4_000_000

_VALUE_COLS = ["kwh_total", *HOUR_COLS, "night_kwh", "n_ok", "n_estimated", "n_missing", "n_expected"]
_COUNT_COLS = ["n_ok", "n_estimated", "n_missing", "n_expected"]


# --------------------------------------------------------------------------------------------
# window and attribution
# --------------------------------------------------------------------------------------------
def feature_window(as_of: date, window_days: int = 365) -> tuple[date, date]:
    """The trailing window [as_of - window_days + 1, as_of], both ends inclusive."""
    if window_days < 1:
        raise ValueError("window_days must be >= 1")
    return as_of - timedelta(days=window_days - 1), as_of


def attribution_periods(attribution: pl.DataFrame, as_of: date, window_days: int = 365) -> pl.DataFrame:
    """Attribution periods clipped to the window and merged per (point, customer).

    Merging overlapping or adjacent periods (a contract change on the same point) guarantees that a
    daily row joins at most once per customer, so nothing is double counted.
    Returns metering_point_id, customer_id, period_from, period_to (Date, inclusive).
    """
    start, end = feature_window(as_of, window_days)
    epoch = date(1970, 1, 1)
    s, e = (start - epoch).days, (end - epoch).days
    keys = ["metering_point_id", "customer_id"]
    a = attribution.select(
        *keys,
        pl.col("valid_from").cast(pl.Date).cast(pl.Int32).fill_null(s).clip(lower_bound=s).alias("f"),
        pl.col("valid_to").cast(pl.Date).cast(pl.Int32).fill_null(e).clip(upper_bound=e).alias("t"),
    ).filter(pl.col("f") <= pl.col("t"))
    a = a.sort([*keys, "f", "t"]).with_columns(
        pl.col("t").cum_max().shift(1).over(keys).alias("prev_t")
    )
    a = a.with_columns(
        (pl.col("prev_t").is_null() | (pl.col("f") > pl.col("prev_t") + 1)).cum_sum().over(keys).alias("grp")
    )
    return (
        a.group_by([*keys, "grp"])
        .agg(pl.col("f").min(), pl.col("t").max())
        .select(
            *keys,
            pl.col("f").cast(pl.Date).alias("period_from"),
            pl.col("t").cast(pl.Date).alias("period_to"),
        )
        .sort([*keys, "period_from"])
    )


def _daily_in_window(daily: pl.LazyFrame, start: date, end: date, value_cols: Sequence[str]) -> pl.LazyFrame:
    """Project and window the daily table; the window filter is on the raw column so it prunes
    hive partitions whatever the partition value's type."""
    schema = daily.collect_schema()
    dtype = schema["business_day"]
    if dtype == pl.String:
        raw = pl.col("business_day").is_between(start.isoformat(), end.isoformat())
        day = pl.col("business_day").str.to_date("%Y-%m-%d")
    elif dtype == pl.Date:
        raw = pl.col("business_day").is_between(start, end)
        day = pl.col("business_day")
    else:
        day = pl.col("business_day").cast(pl.Date)
        raw = day.is_between(start, end)
    cols = []
    for c in value_cols:
        if c in _COUNT_COLS:
            cols.append(pl.col(c).cast(pl.Int64))
        else:
            cols.append(pl.col(c).cast(pl.Float64))
    return daily.filter(raw).select(day.alias("business_day"), pl.col("metering_point_id"), *cols)


def _customer_day_batches(
    daily: pl.LazyFrame,
    attribution: pl.DataFrame,
    as_of: date,
    window_days: int,
    value_cols: Sequence[str],
    max_group_rows: int = DEFAULT_MAX_GROUP_ROWS,
) -> Iterator[pl.LazyFrame]:
    """Lazy frames of attributed customer-days (customer_id, business_day, *value_cols).

    Within a frame there is one row per (customer, day); frames are disjoint, so per-customer sums
    over all frames are exact. The first frame covers single-point customers in one pass; the others
    cover multi-point customers in time chunks.
    """
    start, end = feature_window(as_of, window_days)
    periods = attribution_periods(attribution, as_of, window_days)
    mp_dtype = daily.collect_schema()["metering_point_id"]
    periods = periods.with_columns(pl.col("metering_point_id").cast(mp_dtype))
    n_points = periods.group_by("customer_id").agg(pl.col("metering_point_id").n_unique().alias("n"))
    multi_ids = n_points.filter(pl.col("n") > 1).select("customer_id")
    single = periods.join(multi_ids, on="customer_id", how="anti")
    multi = periods.join(multi_ids, on="customer_id", how="semi")

    def attributed(p: pl.DataFrame, lo: date, hi: date) -> pl.LazyFrame:
        return (
            _daily_in_window(daily, lo, hi, value_cols)
            .join(p.lazy(), on="metering_point_id", how="inner")
            .filter(pl.col("business_day").is_between(pl.col("period_from"), pl.col("period_to")))
        )

    if single.height:
        yield attributed(single, start, end).select("customer_id", "business_day", *value_cols)
    if multi.height:
        customer_days = multi_ids.height * window_days
        n_chunks = max(1, math.ceil(customer_days / max(1, max_group_rows)))
        chunk_len = math.ceil(window_days / n_chunks)
        lo = start
        while lo <= end:
            hi = min(end, lo + timedelta(days=chunk_len - 1))
            yield (
                attributed(multi, lo, hi)
                .group_by("customer_id", "business_day")
                .agg(pl.col(c).sum() for c in value_cols)
            )
            lo = hi + timedelta(days=1)


def _collect(lf: pl.LazyFrame) -> pl.DataFrame:
    return lf.collect(engine="streaming")


# --------------------------------------------------------------------------------------------
# per-day derived columns and streamable per-customer partial aggregates
# --------------------------------------------------------------------------------------------
def _hsum(hours: Sequence[int]) -> pl.Expr:
    return pl.sum_horizontal(pl.col(HOUR_COLS[h]).fill_null(0.0) for h in hours)


def _is_dst_change_day(day: pl.Expr) -> pl.Expr:
    """Last Sunday of March or October: 23 or 25 local hours, so hourly min/max are not comparable."""
    return day.dt.month().is_in([3, 10]) & (day.dt.weekday() == 7) & (day.dt.day() >= 25)


def _with_day_columns(lf: pl.LazyFrame) -> pl.LazyFrame:
    day = pl.col("business_day")
    read = pl.col("n_ok").fill_null(0) + pl.col("n_estimated").fill_null(0)
    expected = pl.col("n_expected").fill_null(0)
    complete = (pl.col("n_missing").fill_null(0) == 0) & (expected > 0) & (read >= expected)
    month = day.dt.month()
    lf = lf.with_columns(
        read.alias("_read"),
        pl.when(expected > 0).then((read / expected).clip(0.0, 1.0)).otherwise(0.0).alias("_cov"),
        pl.col("kwh_total").fill_null(0.0).alias("_kwh"),
        complete.alias("_complete"),
        _is_dst_change_day(day).alias("_dst"),
        month.alias("_month"),
        (day.dt.weekday() >= 6).alias("_weekend"),
    )
    return lf.with_columns(
        pl.when(pl.col("_complete") & ~pl.col("_dst"))
        .then(pl.min_horizontal(HOUR_COLS))
        .alias("_dmin"),
        pl.when(~pl.col("_dst")).then(pl.max_horizontal(HOUR_COLS)).alias("_dmax"),
        _hsum(DAY_HOURS).alias("_day_kwh"),
        _hsum(EVENING_HOURS).alias("_evening_kwh"),
    )


def _cond_sum(cond: pl.Expr, value: pl.Expr, name: str) -> pl.Expr:
    return pl.when(cond).then(value).otherwise(0.0).sum().alias(name)


def _partial_aggs() -> list[pl.Expr]:
    m = pl.col("_month")
    kwh, cov = pl.col("_kwh"), pl.col("_cov")
    seasons = {
        "winter": m.is_in(WINTER_MONTHS),
        "summer": m.is_in(SUMMER_MONTHS),
        "cold": m.is_in(COLD_MONTHS),
        "warm": m.is_in(WARM_MONTHS),
        "wkday": ~pl.col("_weekend"),
        "wkend": pl.col("_weekend"),
    }
    aggs: list[pl.Expr] = [
        (pl.col("_read") > 0).sum().cast(pl.Int64).alias("days"),
        cov.sum().alias("cov_days"),
        kwh.sum().alias("kwh"),
        *(pl.col(c).fill_null(0.0).sum().alias(c) for c in HOUR_COLS),
        pl.col("night_kwh").fill_null(0.0).sum().alias("night"),
        pl.col("_evening_kwh").sum().alias("evening"),
        pl.col("_day_kwh").sum().alias("daytime"),
        _cond_sum(~pl.col("_weekend"), pl.col("_day_kwh"), "wkday_daytime"),
        *(pl.col(c).fill_null(0).sum().alias(c) for c in _COUNT_COLS),
    ]
    for name, cond in seasons.items():
        aggs.append(_cond_sum(cond, kwh, f"{name}_kwh"))
        aggs.append(_cond_sum(cond, cov, f"{name}_cov"))
    daily_total = pl.when(pl.col("_complete")).then(kwh)
    aggs += [
        pl.col("_complete").sum().cast(pl.Int64).alias("cmp_n"),
        daily_total.sum().alias("cmp_sum"),
        (daily_total * daily_total).sum().alias("cmp_sumsq"),
        pl.col("_dmax").max().alias("max_h"),
    ]
    # histogram of daily minima: bucket j = (edge[j-1], edge[j]], the last one is open-ended
    dmin = pl.col("_dmin")
    edges = BASE_LOAD_EDGES
    for j in range(len(edges) + 1):
        if j == 0:
            cond = dmin <= edges[0]
        elif j == len(edges):
            cond = dmin > edges[-1]
        else:
            cond = (dmin > edges[j - 1]) & (dmin <= edges[j])
        aggs.append(cond.fill_null(False).sum().cast(pl.Int64).alias(f"bl_n{j:02d}"))
        aggs.append(_cond_sum(cond.fill_null(False), dmin, f"bl_s{j:02d}"))
    return aggs


def _combine_partials(parts: list[pl.DataFrame]) -> pl.DataFrame:
    if len(parts) == 1:
        return parts[0]
    df = pl.concat(parts, how="vertical_relaxed")
    cols = [c for c in df.columns if c != "customer_id"]
    return df.group_by("customer_id").agg(
        *(pl.col(c).max() if c == "max_h" else pl.col(c).sum() for c in cols)
    )


def _base_load_from_histogram(df: pl.DataFrame, q: float = BASE_LOAD_QUANTILE) -> np.ndarray:
    k = len(BASE_LOAD_EDGES) + 1
    counts = df.select([f"bl_n{j:02d}" for j in range(k)]).to_numpy().astype(float)
    sums = df.select([f"bl_s{j:02d}" for j in range(k)]).to_numpy().astype(float)
    n = counts.sum(axis=1)
    out = np.full(len(df), np.nan)
    ok = n > 0
    if not ok.any():
        return out
    cum = np.cumsum(counts, axis=1)
    # nearest-rank percentile: the smallest value with at least ceil(q*n) values at or below it
    target = np.maximum(1.0, np.ceil(q * n - 1e-9))
    j = np.argmax(cum >= target[:, None], axis=1)
    rows = np.arange(len(df))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(ok, sums[rows, j] / counts[rows, j], np.nan)
    return out


def _safe_div(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then(num / den)


def _finalise(df: pl.DataFrame) -> pl.DataFrame:
    hour_total = pl.sum_horizontal(HOUR_COLS)
    mean_daily = _safe_div(pl.col("kwh"), pl.col("cov_days"))
    eps = pl.max_horizontal(0.01 * mean_daily.fill_null(0.0), pl.lit(0.05))

    def mean_of(name: str) -> pl.Expr:
        return _safe_div(pl.col(f"{name}_kwh"), pl.col(f"{name}_cov"))

    def robust_ratio(a: str, b: str, min_days: float, cap: float) -> pl.Expr:
        have = (pl.col(f"{a}_cov") >= min_days) & (pl.col(f"{b}_cov") >= min_days)
        return pl.when(have).then(((mean_of(a) + eps) / (mean_of(b) + eps)).clip(0.0, cap))

    n = pl.col("cmp_n").cast(pl.Float64)
    mean_cmp = _safe_div(pl.col("cmp_sum"), n)
    var_cmp = pl.when(n >= 2).then(
        ((pl.col("cmp_sumsq") - pl.col("cmp_sum") ** 2 / n) / (n - 1)).clip(lower_bound=0.0)
    )
    peak = pl.concat_list(HOUR_COLS).list.arg_max()
    df = df.with_columns(pl.Series("base_load_kwh", _base_load_from_histogram(df)).fill_nan(None))
    return df.select(
        "customer_id",
        (mean_daily * 365.0).alias("annual_kwh"),
        pl.coalesce(
            robust_ratio("winter", "summer", MIN_SEASON_DAYS, WINTER_SUMMER_CAP),
            robust_ratio("cold", "warm", MIN_SEASON_DAYS, WINTER_SUMMER_CAP),
        ).alias("winter_summer_ratio"),
        _safe_div(pl.col("night"), pl.col("kwh")).clip(0.0, 1.0).alias("night_share"),
        _safe_div(pl.col("daytime"), hour_total).clip(0.0, 1.0).alias("day_share"),
        _safe_div(pl.col("evening"), hour_total).clip(0.0, 1.0).alias("evening_share"),
        _safe_div(pl.col("wkday_daytime"), pl.col("wkday_kwh")).clip(0.0, 1.0).alias("weekday_daytime_share"),
        robust_ratio("wkday", "wkend", MIN_WEEKPART_DAYS, WEEKDAY_WEEKEND_CAP).alias("weekday_weekend_ratio"),
        pl.when(hour_total > 0).then(peak).cast(pl.Int32).alias("peak_hour"),
        *(_safe_div(pl.col(c), hour_total).clip(0.0, 1.0).alias(s) for c, s in zip(HOUR_COLS, SHARE_COLS)),
        pl.col("base_load_kwh"),
        _safe_div(_safe_div(pl.col("kwh"), pl.col("cov_days") * 24.0), pl.col("max_h"))
        .clip(0.0, 1.0)
        .alias("load_factor"),
        pl.when(mean_cmp > 0).then(var_cmp.sqrt() / mean_cmp).alias("daily_variability"),
        _safe_div(pl.col("n_estimated").cast(pl.Float64), pl.col("n_expected")).clip(0.0, 1.0).alias("estimated_share"),
        _safe_div(pl.col("n_missing").cast(pl.Float64), pl.col("n_expected")).clip(0.0, 1.0).alias("missing_share"),
        pl.col("days").cast(pl.Int32).alias("days_with_readings"),
    )


CONSUMPTION_COLUMNS = [
    "annual_kwh",
    "winter_summer_ratio",
    "night_share",
    "day_share",
    "evening_share",
    "weekday_daytime_share",
    "weekday_weekend_ratio",
    "peak_hour",
    *SHARE_COLS,
    "base_load_kwh",
    "load_factor",
    "daily_variability",
    "estimated_share",
    "missing_share",
    "days_with_readings",
]


def consumption_features(
    daily: pl.LazyFrame,
    attribution: pl.DataFrame,
    as_of: date,
    window_days: int = 365,
    *,
    max_group_rows: int = DEFAULT_MAX_GROUP_ROWS,
) -> pl.DataFrame:
    """Consumption features for every customer with attributed daily rows in the window."""
    parts = [
        _collect(_with_day_columns(lf).group_by("customer_id").agg(_partial_aggs()))
        for lf in _customer_day_batches(daily, attribution, as_of, window_days, _VALUE_COLS, max_group_rows)
    ]
    if not parts:
        schema = {"customer_id": attribution.schema["customer_id"]}
        schema |= {c: pl.Int32 if c in _INT_CONSUMPTION else pl.Float64 for c in CONSUMPTION_COLUMNS}
        return pl.DataFrame(schema=schema)
    return _cast_consumption(_finalise(_combine_partials(parts)))


_INT_CONSUMPTION = {"peak_hour", "days_with_readings"}


def _cast_consumption(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        *(pl.col(c).cast(pl.Int32 if c in _INT_CONSUMPTION else pl.Float64) for c in CONSUMPTION_COLUMNS)
    )


def profiling_history_days(
    daily: pl.LazyFrame,
    attribution: pl.DataFrame,
    as_of: date,
    window_days: int = 365,
    *,
    max_group_rows: int = DEFAULT_MAX_GROUP_ROWS,
) -> pl.DataFrame:
    """customer_id, days_with_readings: days in the window with at least one OK or ESTIMATED
    reading on any of the customer's points, inside the attribution periods. Customers without
    any attributed rows are absent (treat as 0)."""
    cols = ["n_ok", "n_estimated"]
    parts = [
        _collect(
            lf.group_by("customer_id").agg(
                ((pl.col("n_ok").fill_null(0) + pl.col("n_estimated").fill_null(0)) > 0)
                .sum()
                .cast(pl.Int64)
                .alias("days_with_readings")
            )
        )
        for lf in _customer_day_batches(daily, attribution, as_of, window_days, cols, max_group_rows)
    ]
    if not parts:
        return pl.DataFrame(
            schema={"customer_id": attribution.schema["customer_id"], "days_with_readings": pl.Int32}
        )
    return (
        _combine_partials(parts)
        .with_columns(pl.col("days_with_readings").cast(pl.Int32))
        .sort("customer_id")
    )


def monthly_kwh_shares(
    daily: pl.LazyFrame,
    attribution: pl.DataFrame,
    as_of: date,
    window_days: int = 365,
    *,
    max_group_rows: int = DEFAULT_MAX_GROUP_ROWS,
) -> pl.DataFrame:
    """Per customer and calendar month: kwh, covered days, mean daily kWh, and `share`, the month's
    share of the year (mean daily kWh x days in the month, normalised over the months with data).
    Feeds the monthly profile plot of each segment."""
    cols = ["kwh_total", "n_ok", "n_estimated", "n_expected"]
    parts = []
    for lf in _customer_day_batches(daily, attribution, as_of, window_days, cols, max_group_rows):
        read = pl.col("n_ok").fill_null(0) + pl.col("n_estimated").fill_null(0)
        expected = pl.col("n_expected").fill_null(0)
        cov = pl.when(expected > 0).then((read / expected).clip(0.0, 1.0)).otherwise(0.0)
        parts.append(
            _collect(
                lf.group_by("customer_id", pl.col("business_day").dt.month().alias("month")).agg(
                    pl.col("kwh_total").fill_null(0.0).sum().alias("kwh"),
                    cov.sum().alias("coverage_days"),
                )
            )
        )
    schema = {
        "customer_id": attribution.schema["customer_id"],
        "month": pl.Int8,
        "kwh": pl.Float64,
        "coverage_days": pl.Float64,
        "mean_daily_kwh": pl.Float64,
        "share": pl.Float64,
    }
    if not parts:
        return pl.DataFrame(schema=schema)
    df = pl.concat(parts).group_by("customer_id", "month").agg(pl.col("kwh").sum(), pl.col("coverage_days").sum())
    days_in_month = pl.col("month").replace_strict(
        {m: (date(2001 + (m == 12), m % 12 + 1, 1) - date(2001, m, 1)).days for m in range(1, 13)},
        return_dtype=pl.Float64,
    )
    df = df.with_columns(_safe_div(pl.col("kwh"), pl.col("coverage_days")).alias("mean_daily_kwh"))
    weight = (pl.col("mean_daily_kwh") * days_in_month).fill_null(0.0)
    df = df.with_columns(_safe_div(weight, weight.sum().over("customer_id")).alias("share"))
    return df.select(schema.keys()).cast(schema).sort("customer_id", "month")


# --------------------------------------------------------------------------------------------
# payment and contract features
# --------------------------------------------------------------------------------------------
def payment_features(invoices: pl.DataFrame, as_of: date, window_days: int = 365) -> pl.DataFrame:
    """Invoices issued in the trailing window. An invoice is late when it was paid after its due
    date, or is still unpaid past it on as_of (payments recorded after as_of are not yet known).
    late_share and mean_days_late are over matured invoices (paid, or due before as_of), credit
    notes excluded; an on-time invoice counts 0 days late."""
    start, end = feature_window(as_of, window_days)
    inv = invoices.filter(pl.col("issued_on").cast(pl.Date).is_between(start, end))
    paid_on = pl.when(pl.col("paid_on").cast(pl.Date) <= pl.lit(as_of)).then(pl.col("paid_on").cast(pl.Date))
    due = pl.col("due_on").cast(pl.Date)
    charge = pl.col("amount_eur").cast(pl.Float64).fill_null(0.0) >= 0
    inv = inv.with_columns(paid_on.alias("_paid")).with_columns(
        (charge & (pl.col("_paid").is_not_null() | (due < pl.lit(as_of)))).alias("_matured"),
    )
    settled = pl.coalesce(pl.col("_paid"), pl.lit(as_of))
    days_late = pl.when(pl.col("_matured")).then(((settled - due).dt.total_days()).clip(lower_bound=0))
    inv = inv.with_columns(days_late.alias("_days_late"))
    agg = inv.group_by("customer_id").agg(
        pl.len().cast(pl.Int32).alias("invoices_12m"),
        pl.col("_matured").sum().alias("_n_matured"),
        (pl.col("_days_late") > 0).sum().alias("_n_late"),
        pl.col("_days_late").sum().alias("_days_late_sum"),
        pl.col("reminders").cast(pl.Int64).fill_null(0).sum().cast(pl.Int32).alias("reminders_12m"),
        pl.col("in_collection").cast(pl.Boolean).fill_null(False).sum().cast(pl.Int32).alias("collections_12m"),
    )
    return agg.select(
        "customer_id",
        "invoices_12m",
        _safe_div(pl.col("_n_late").cast(pl.Float64), pl.col("_n_matured")).alias("late_share"),
        _safe_div(pl.col("_days_late_sum").cast(pl.Float64), pl.col("_n_matured")).alias("mean_days_late"),
        "reminders_12m",
        "collections_12m",
    )


def contract_features(contracts: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Facts of the customer's primary contract: among the contracts active on as_of, the
    longest-standing one (earliest start, then contract_id); when none is active, the most recently
    ended one. tenure_days counts from the first contract's start. days_to_fixed_term_end is null
    unless the primary contract is an active fixed-term contract."""
    c = contracts.with_columns(
        pl.col("start_date").cast(pl.Date), pl.col("end_date").cast(pl.Date)
    ).filter(pl.col("start_date") <= pl.lit(as_of))
    active = pl.col("end_date").is_null() | (pl.col("end_date") >= pl.lit(as_of))
    c = c.with_columns(active.alias("_active"))
    optional = [col for col in ("site_type", "heating") if col in c.columns]
    primary = (
        c.sort(
            ["customer_id", "_active", "start_date", "end_date", "contract_id"],
            descending=[False, True, False, True, False],
            nulls_last=True,
        )
        .group_by("customer_id", maintain_order=True)
        .first()
    )
    fixed_end = pl.when(
        pl.col("_active") & (pl.col("contract_type") == "fixed_term") & pl.col("end_date").is_not_null()
    ).then((pl.col("end_date") - pl.lit(as_of)).dt.total_days())
    primary = primary.select(
        "customer_id",
        pl.col("product_code").cast(pl.String),
        pl.col("contract_type").cast(pl.String),
        *(pl.col(col).cast(pl.String) for col in optional),
        fixed_end.cast(pl.Int32).alias("days_to_fixed_term_end"),
    )
    for col in ("site_type", "heating"):
        if col not in primary.columns:
            primary = primary.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    per_customer = c.group_by("customer_id").agg(
        pl.col("_active").sum().cast(pl.Int32).alias("active_contracts"),
        (pl.lit(as_of) - pl.col("start_date").min()).dt.total_days().cast(pl.Int32).alias("tenure_days"),
    )
    return primary.join(per_customer, on="customer_id", how="left").select(
        "customer_id",
        "product_code",
        "contract_type",
        "site_type",
        "heating",
        "active_contracts",
        "tenure_days",
        "days_to_fixed_term_end",
    )


# --------------------------------------------------------------------------------------------
# the feature table
# --------------------------------------------------------------------------------------------
PAYMENT_COLUMNS = ["invoices_12m", "late_share", "mean_days_late", "reminders_12m", "collections_12m"]
CONTRACT_COLUMNS = [
    "product_code",
    "contract_type",
    "site_type",
    "heating",
    "active_contracts",
    "tenure_days",
    "days_to_fixed_term_end",
]
FEATURE_TABLE_COLUMNS = ["customer_id", *CONSUMPTION_COLUMNS, "metering_points", *PAYMENT_COLUMNS, *CONTRACT_COLUMNS]


def compute_customer_features(
    daily: pl.LazyFrame,
    attribution: pl.DataFrame,
    contracts: pl.DataFrame,
    invoices: pl.DataFrame,
    population: pl.DataFrame,
    as_of: date,
    window_days: int = 365,
    *,
    max_group_rows: int = DEFAULT_MAX_GROUP_ROWS,
) -> pl.DataFrame:
    """One row per customer in `population` (which needs only customer_id), sorted by customer_id.

    Only the population's own attribution periods are used, so nobody outside it (an objector, a
    minor) is ever read into the aggregates.
    """
    pop = population.select("customer_id").unique().sort("customer_id")
    key_dtype = pop.schema["customer_id"]
    attribution = attribution.with_columns(pl.col("customer_id").cast(key_dtype)).join(
        pop, on="customer_id", how="semi"
    )
    consumption = consumption_features(daily, attribution, as_of, window_days, max_group_rows=max_group_rows)
    points = (
        attribution_periods(attribution, as_of, window_days)
        .group_by("customer_id")
        .agg(pl.col("metering_point_id").n_unique().cast(pl.Int32).alias("metering_points"))
    )
    payment = payment_features(
        invoices.with_columns(pl.col("customer_id").cast(key_dtype)).join(pop, on="customer_id", how="semi"),
        as_of,
        window_days,
    )
    contract = contract_features(
        contracts.with_columns(pl.col("customer_id").cast(key_dtype)).join(pop, on="customer_id", how="semi"),
        as_of,
    )
    out = (
        pop.join(consumption, on="customer_id", how="left")
        .join(points, on="customer_id", how="left")
        .join(payment, on="customer_id", how="left")
        .join(contract, on="customer_id", how="left")
    )
    out = out.with_columns(
        pl.col("days_with_readings").fill_null(0),
        pl.col("metering_points").fill_null(0),
        pl.col("invoices_12m").fill_null(0),
        pl.col("reminders_12m").fill_null(0),
        pl.col("collections_12m").fill_null(0),
        pl.col("active_contracts").fill_null(0),
    )
    return out.select(FEATURE_TABLE_COLUMNS).sort("customer_id")
