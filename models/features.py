"""Customer features for profiling: consumption shape from the per-day metering aggregates, payment
behaviour from invoices and contract facts, one row per customer of the profiling population.

How it scales (target: 500,000 customers x 365 days, about 182M daily rows x 30 values, which do
not fit in memory):

* Readings belong to a customer only inside `metering_point_attribution` periods. The periods are
  small: they are clipped to the window, merged per (point, customer) so that no daily row can
  join twice, and each customer gets a dense integer index.
* The window is processed in chunks of consecutive business days (`chunk_rows` daily rows each).
  A filter on `business_day` prunes the hive partitions, so each chunk reads only its own days.
  Each chunk is one streaming query (`collect(engine="streaming")`): scan -> join to the periods
  (build side forced to the small periods table) -> per-customer partial aggregates. Memory is
  bounded by the chunk, not by the table, and the partials are added into dense per-customer
  numpy accumulators (customers x ~60 numbers).
* Customers with several points are summed per (customer, day) first, in a branch of the same
  query that shares the scan (polars caches the common sub-plan), so the data is decoded once.
* Every per-customer aggregate is a streamable sum, count, min or max (no per-group quantile,
  which would make the engine fall back to in-memory execution), over exact integers: energy in
  µkWh, coverage in µdays. Integer sums do not depend on the order in which parallel streaming
  workers combine them, so the features, and the model version hashed from them, are
  bit-for-bit reproducible.
* The base load (10th percentile of the daily minimum hourly kWh) comes from a per-customer
  log-spaced histogram of the daily minima: 64 buckets about 16 % wide, counts packed 7 to an
  Int64 sum so the histogram costs 10 aggregates, not 64. The percentile is interpolated inside
  its bucket and clipped to the customer's smallest and largest daily minimum: exact when the
  minima are equal, otherwise within one bucket (measured: median error 0.8 %, max 5 %).

Measured on the 2-core build host (shared, so wall times are pessimistic): 500,000 customers x 88
days took 109 s CPU at 2.0 GiB peak RSS; CPU time grows linearly with days and memory does not.

Identity codes, names, addresses and contact details are never read here; `customer_id` is the key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
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
#: Upper edges (kWh per hour) of the daily-minimum histogram: bucket j holds (edge[j-1], edge[j]];
#: bucket 0 everything up to edge[0], the last bucket everything above edge[-1].
BASE_LOAD_EDGES = np.geomspace(0.005, 50.0, 63)
_N_BUCKETS = len(BASE_LOAD_EDGES) + 1
_PACK_BITS = 9  # a chunk holds at most 511 days, so a bucket's count in a chunk fits in 9 bits
_MAX_CHUNK_DAYS = (1 << _PACK_BITS) - 1
_PACK_PER_WORD = 63 // _PACK_BITS
_N_WORDS = math.ceil(_N_BUCKETS / _PACK_PER_WORD)
#: A season (or weekday/weekend) needs this many covered days before its mean is trusted.
MIN_SEASON_DAYS = 14.0
MIN_WEEKPART_DAYS = 4.0
WINTER_SUMMER_CAP = 100.0
WEEKDAY_WEEKEND_CAP = 10.0
#: Daily rows per streaming chunk. Measured on the 2-core build host: about 0.7 GiB peak per
#: million rows in flight.
DEFAULT_CHUNK_ROWS = 2_000_000

_COUNT_COLS = ["n_ok", "n_estimated", "n_missing", "n_expected"]
# night_kwh is not read: it is by definition the sum of the hours 22-06, derived from the hour sums
_VALUE_COLS = ["kwh_total", *HOUR_COLS, *_COUNT_COLS]
#: Integer units inside the aggregation: µkWh for energy, µdays for coverage, Wh² for squares.
MICRO = 1_000_000


# --------------------------------------------------------------------------------------------
# window, attribution, and the chunked stream of attributed customer-days
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
    a = a.sort([*keys, "f", "t"]).with_columns(pl.col("t").cum_max().shift(1).over(keys).alias("prev_t"))
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
    """Project and window the daily table. The window filter is on the raw column so that it
    prunes hive partitions whatever the partition value's type."""
    dtype = daily.collect_schema()["business_day"]
    if dtype == pl.String:
        raw = pl.col("business_day").is_between(pl.lit(start.isoformat()), pl.lit(end.isoformat()))
        day = pl.col("business_day").str.to_date("%Y-%m-%d")
    elif dtype == pl.Date:
        raw = pl.col("business_day").is_between(start, end)
        day = pl.col("business_day")
    else:
        day = pl.col("business_day").cast(pl.Date)
        raw = day.is_between(start, end)
    cols = [
        pl.col(c).cast(pl.Int64) if c in _COUNT_COLS else (pl.col(c).cast(pl.Float64) * MICRO).round().cast(pl.Int64)
        for c in value_cols
    ]
    return daily.filter(raw).select(day.alias("business_day"), pl.col("metering_point_id"), *cols)


class _CustomerDays:
    """The attributed customer-days of a window, as a sequence of lazy chunks.

    `customers` maps the dense index `cix` (UInt32) to customer_id. Each chunk is a LazyFrame of
    (cix, business_day, *value_cols) with one row per (customer, day); energy in integer µkWh.
    """

    def __init__(
        self,
        daily: pl.LazyFrame,
        attribution: pl.DataFrame,
        as_of: date,
        window_days: int,
        value_cols: Sequence[str],
        chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
    ):
        self.daily = daily
        self.value_cols = list(value_cols)
        self.start, self.end = feature_window(as_of, window_days)
        periods = attribution_periods(attribution, as_of, window_days)
        mp_dtype = daily.collect_schema()["metering_point_id"]
        self.customers = periods.select("customer_id").unique().sort("customer_id").with_row_index("cix")
        n_points = periods.group_by("customer_id").agg(pl.col("metering_point_id").n_unique().alias("_np"))
        self.periods = (
            periods.join(self.customers, on="customer_id")
            .join(n_points, on="customer_id")
            .select(
                pl.col("metering_point_id").cast(mp_dtype),
                "cix",
                "period_from",
                "period_to",
                (pl.col("_np") > 1).alias("_multi"),
            )
        )
        self.has_multi = bool(self.periods["_multi"].any()) if self.periods.height else False
        points_per_day = max(1, self.periods["metering_point_id"].n_unique())
        days = (self.end - self.start).days + 1
        per_chunk = days if not chunk_rows else max(1, chunk_rows // points_per_day)
        self.chunk_days = min(days, per_chunk, _MAX_CHUNK_DAYS)

    @property
    def n(self) -> int:
        return self.customers.height

    def chunks(self) -> Iterator[pl.LazyFrame]:
        if self.periods.height == 0:
            return
        lo = self.start
        while lo <= self.end:
            hi = min(self.end, lo + timedelta(days=self.chunk_days - 1))
            yield self._chunk(lo, hi)
            lo = hi + timedelta(days=1)

    def _chunk(self, lo: date, hi: date) -> pl.LazyFrame:
        base = (
            _daily_in_window(self.daily, lo, hi, self.value_cols)
            .join(self.periods.lazy(), on="metering_point_id", how="inner", build_side="force_right")
            .filter(pl.col("business_day").is_between(pl.col("period_from"), pl.col("period_to")))
        )
        cols = ["cix", "business_day", *self.value_cols]
        if not self.has_multi:
            return base.select(cols)
        # several points: one row per (customer, day) first; the branches share one scan
        single = base.filter(~pl.col("_multi")).select(cols)
        multi = (
            base.filter(pl.col("_multi"))
            .group_by("cix", "business_day")
            .agg(pl.col(c).sum() for c in self.value_cols)
            .select(cols)
        )
        return pl.concat([single, multi], how="vertical")


def _accumulate(
    cd: _CustomerDays,
    queries: Callable[[pl.LazyFrame], list[pl.LazyFrame]],
    sinks: list[Callable[[pl.DataFrame], None]],
) -> None:
    """Run the per-chunk queries (all keyed by cix) in one streaming collect per chunk and hand
    each result to its sink."""
    for chunk in cd.chunks():
        results = pl.collect_all(queries(chunk), engine="streaming")
        for sink, df in zip(sinks, results, strict=True):
            sink(df)


_NO_MAX = np.iinfo(np.int64).min
_NO_MIN = np.iinfo(np.int64).max


class _DenseSums:
    """Per-customer integer accumulators over chunks: sums, and maxima for `max_cols`."""

    def __init__(self, n: int, sum_cols: Sequence[str], max_cols: Sequence[str] = (), min_cols: Sequence[str] = ()):
        self.sum_cols, self.max_cols, self.min_cols = list(sum_cols), list(max_cols), list(min_cols)
        self.sums = np.zeros((n, len(self.sum_cols)), dtype=np.int64)
        self.maxs = np.full((n, len(self.max_cols)), _NO_MAX, dtype=np.int64)
        self.mins = np.full((n, len(self.min_cols)), _NO_MIN, dtype=np.int64)

    def add(self, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        idx = df["cix"].to_numpy().astype(np.int64)  # unique within one chunk's group-by
        if self.sum_cols:
            vals = df.select(pl.col(c).cast(pl.Int64).fill_null(0) for c in self.sum_cols).to_numpy()
            self.sums[idx] += vals
        if self.max_cols:
            vals = df.select(pl.col(c).cast(pl.Int64).fill_null(_NO_MAX) for c in self.max_cols).to_numpy()
            self.maxs[idx] = np.maximum(self.maxs[idx], vals)
        if self.min_cols:
            vals = df.select(pl.col(c).cast(pl.Int64).fill_null(_NO_MIN) for c in self.min_cols).to_numpy()
            self.mins[idx] = np.minimum(self.mins[idx], vals)

    def frame(self, customers: pl.DataFrame) -> pl.DataFrame:
        data = {"customer_id": customers.sort("cix")["customer_id"]}
        data |= {c: self.sums[:, j] for j, c in enumerate(self.sum_cols)}
        data |= {c: self.maxs[:, j] for j, c in enumerate(self.max_cols)}
        data |= {c: self.mins[:, j] for j, c in enumerate(self.min_cols)}
        return pl.DataFrame(data).with_columns(
            *(pl.when(pl.col(c) != _NO_MAX).then(pl.col(c)).alias(c) for c in self.max_cols),
            *(pl.when(pl.col(c) != _NO_MIN).then(pl.col(c)).alias(c) for c in self.min_cols),
        )


class _Histogram:
    """Per-customer histogram of daily minima (bucket counts), plus their min and max."""

    def __init__(self, n: int):
        self.counts = np.zeros((n, _N_BUCKETS), dtype=np.int64)

    def add(self, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        idx = df["cix"].to_numpy().astype(np.int64)
        mask = (1 << _PACK_BITS) - 1
        for w in range(_N_WORDS):
            word = df[f"_bl{w}"].fill_null(0).to_numpy().astype(np.int64)
            for k in range(_PACK_PER_WORD):
                j = w * _PACK_PER_WORD + k
                if j < _N_BUCKETS:
                    self.counts[idx, j] += (word >> (k * _PACK_BITS)) & mask

    def quantile(self, lo: np.ndarray, hi: np.ndarray, q: float = BASE_LOAD_QUANTILE) -> np.ndarray:
        """Nearest-rank percentile (the ceil(q*n)-th smallest daily minimum), interpolated
        geometrically by rank inside its bucket and clipped to [lo, hi] (the customer's smallest and
        largest daily minimum, kWh)."""
        n = self.counts.sum(axis=1)
        out = np.full(len(n), np.nan)
        ok = n > 0
        if not ok.any():
            return out
        cum = np.cumsum(self.counts, axis=1)
        target = np.maximum(1.0, np.ceil(q * n - 1e-9))
        j = np.argmax(cum >= target[:, None], axis=1)
        rows = np.arange(len(n))
        in_bucket = self.counts[rows, j].astype(float)
        below = np.where(j > 0, cum[rows, np.maximum(j - 1, 0)], 0).astype(float)
        frac = np.clip((target - below - 0.5) / np.maximum(in_bucket, 1.0), 0.0, 1.0)
        edges = BASE_LOAD_EDGES
        upper = edges[np.minimum(j, len(edges) - 1)]
        lower = np.where(j > 0, edges[np.maximum(j - 1, 0)], edges[0] / (edges[1] / edges[0]))
        with np.errstate(invalid="ignore"):
            est = lower * (upper / lower) ** frac
            out[ok] = np.clip(est, lo, hi)[ok]
        return out


# --------------------------------------------------------------------------------------------
# per-day derived columns and per-chunk partial aggregates
# --------------------------------------------------------------------------------------------
def _hsum(hours: Sequence[int]) -> pl.Expr:
    return pl.sum_horizontal(pl.col(HOUR_COLS[h]).fill_null(0) for h in hours)


def _is_dst_change_day(day: pl.Expr) -> pl.Expr:
    """Last Sunday of March or October: 23 or 25 local hours, so hourly min/max are not comparable."""
    return day.dt.month().is_in([3, 10]) & (day.dt.weekday() == 7) & (day.dt.day() >= 25)


def complete_day() -> pl.Expr:
    """A metering point's day is complete when none of its intervals is MISSING and every interval of
    the day's length (23/24/25 hours, at the resolutions read) was read, OK or ESTIMATED. One rule for
    the features and the `metering_daily` report of incomplete days."""
    read = pl.col("n_ok").fill_null(0) + pl.col("n_estimated").fill_null(0)
    expected = pl.col("n_expected").fill_null(0)
    return (pl.col("n_missing").fill_null(0) == 0) & (expected > 0) & (read >= expected)


def _with_day_columns(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Every per-day derived value as a column, computed once per row, so that the per-customer
    aggregation is nothing but plain sums, minima and maxima."""
    day = pl.col("business_day")
    read = pl.col("n_ok").fill_null(0) + pl.col("n_estimated").fill_null(0)
    expected = pl.col("n_expected").fill_null(0)
    complete = complete_day()
    lf = lf.with_columns(
        read.alias("_read"),
        _micro_coverage(read, expected).alias("_cov"),
        pl.col("kwh_total").fill_null(0).alias("_kwh"),
        complete.alias("_complete"),
        _is_dst_change_day(day).alias("_dst"),
        day.dt.month().alias("_month"),
        (day.dt.weekday() >= 6).alias("_weekend"),
    )
    lf = lf.with_columns(
        pl.when(pl.col("_complete") & ~pl.col("_dst")).then(pl.min_horizontal(HOUR_COLS)).alias("_dmin"),
        pl.when(~pl.col("_dst")).then(pl.max_horizontal(HOUR_COLS)).alias("_dmax"),
        _hsum(DAY_HOURS).alias("_day_kwh"),
        pl.when(pl.col("_complete")).then(pl.col("_kwh")).otherwise(0).alias("_cmp_kwh"),
    )
    kwh, cov = pl.col("_kwh"), pl.col("_cov")
    # the complements (summer vs rest is not one, but warm = all - cold and weekend = all - weekday
    # are) are derived from the totals after aggregation
    conds = {name: pl.col("_month").is_in(_SEASONS[name]) for name in _AGG_SEASONS}
    conds["wkday"] = ~pl.col("_weekend")
    wh = (pl.col("_cmp_kwh") + 500) // 1000  # complete-day total in Wh: squares stay within Int64
    return lf.with_columns(
        *(pl.when(c).then(kwh).otherwise(0).alias(f"_{n}_kwh") for n, c in conds.items()),
        *(pl.when(c).then(cov).otherwise(0).alias(f"_{n}_cov") for n, c in conds.items()),
        pl.when(~pl.col("_weekend")).then(pl.col("_day_kwh")).otherwise(0).alias("_wkday_daytime"),
        (wh * wh).alias("_cmp_wh2"),
        *_histogram_columns(),
    )


def _micro_coverage(read: pl.Expr, expected: pl.Expr) -> pl.Expr:
    """The day's share of expected readings present, in integer µdays."""
    return pl.when(expected > 0).then((read * MICRO / expected).round().clip(0, MICRO)).otherwise(0).cast(pl.Int64)


_SEASONS = {
    "winter": WINTER_MONTHS,
    "summer": SUMMER_MONTHS,
    "cold": COLD_MONTHS,
    "warm": WARM_MONTHS,
}
_AGG_SEASONS = ("winter", "summer", "cold")
_AGG_PARTS = (*_AGG_SEASONS, "wkday")


def _histogram_columns() -> list[pl.Expr]:
    """The daily minimum's bucket as a packed count: word w holds buckets 7w..7w+6, 9 bits each."""
    e0 = float(BASE_LOAD_EDGES[0]) * MICRO
    log_ratio = math.log(BASE_LOAD_EDGES[1] / BASE_LOAD_EDGES[0])
    dmin = pl.col("_dmin")
    bucket = (
        pl.when(dmin <= e0)
        .then(0.0)
        .otherwise((dmin.cast(pl.Float64) / e0).log() / log_ratio)
        .ceil()
        .clip(0, _N_BUCKETS - 1)
        .cast(pl.Int64)
    )
    word = bucket // _PACK_PER_WORD
    # 2**(9k) is exact in float64 for k <= 6
    packed = (pl.lit(float(1 << _PACK_BITS)) ** (bucket % _PACK_PER_WORD).cast(pl.Float64)).cast(pl.Int64)
    return [pl.when(word == w).then(packed).otherwise(0).alias(f"_bl{w}") for w in range(_N_WORDS)]


def _partial_aggs() -> list[pl.Expr]:
    """Per-customer sums of a chunk (all integers)."""
    names = _AGG_PARTS
    return [
        (pl.col("_read") > 0).sum().cast(pl.Int64).alias("days"),
        pl.col("_cov").sum().alias("cov_days"),
        pl.col("_kwh").sum().alias("kwh"),
        *(pl.col(c).fill_null(0).sum().alias(c) for c in HOUR_COLS),
        pl.col("_wkday_daytime").sum().alias("wkday_daytime"),
        *(pl.col(c).fill_null(0).sum().alias(c) for c in _COUNT_COLS),
        pl.col("_complete").sum().cast(pl.Int64).alias("cmp_n"),
        pl.col("_cmp_kwh").sum().alias("cmp_sum"),
        pl.col("_cmp_wh2").sum().alias("cmp_sumsq"),
        *(pl.col(f"_{n}_kwh").sum().alias(f"{n}_kwh") for n in names),
        *(pl.col(f"_{n}_cov").sum().alias(f"{n}_cov") for n in names),
    ]


def _histogram_aggs() -> list[pl.Expr]:
    return [pl.col(f"_bl{w}").sum() for w in range(_N_WORDS)] + [
        pl.col("_dmin").min().alias("_dmin_lo"),
        pl.col("_dmin").max().alias("_dmin_hi"),
    ]


def _safe_div(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then(num / den)


_DERIVED_SUMS = {
    "warm_kwh": pl.col("kwh") - pl.col("cold_kwh"),
    "warm_cov": pl.col("cov_days") - pl.col("cold_cov"),
    "wkend_kwh": pl.col("kwh") - pl.col("wkday_kwh"),
    "wkend_cov": pl.col("cov_days") - pl.col("wkday_cov"),
    "night": pl.sum_horizontal(HOUR_COLS[h] for h in NIGHT_HOURS),
    "daytime": pl.sum_horizontal(HOUR_COLS[h] for h in DAY_HOURS),
    "evening": pl.sum_horizontal(HOUR_COLS[h] for h in EVENING_HOURS),
    "hour_total": pl.sum_horizontal(HOUR_COLS),
}


def _finalise(df: pl.DataFrame) -> pl.DataFrame:
    """Features from the per-customer sums (already in kWh and days)."""
    hour_total = pl.col("hour_total")
    mean_daily = _safe_div(pl.col("kwh"), pl.col("cov_days"))
    eps = pl.max_horizontal(0.01 * mean_daily.fill_null(0.0), pl.lit(0.05))

    def mean_of(name: str) -> pl.Expr:
        return _safe_div(pl.col(f"{name}_kwh"), pl.col(f"{name}_cov"))

    def robust_ratio(a: str, b: str, min_days: float, cap: float) -> pl.Expr:
        have = (pl.col(f"{a}_cov") >= min_days) & (pl.col(f"{b}_cov") >= min_days)
        return pl.when(have).then(((mean_of(a) + eps) / (mean_of(b) + eps)).clip(0.0, cap))

    n = pl.col("cmp_n").cast(pl.Float64)
    mean_cmp = _safe_div(pl.col("cmp_sum"), n)
    var_cmp = pl.when(n >= 2).then(((pl.col("cmp_sumsq") - pl.col("cmp_sum") ** 2 / n) / (n - 1)).clip(lower_bound=0.0))
    peak = pl.concat_list(HOUR_COLS).list.arg_max()
    return df.select(
        "customer_id",
        (mean_daily * 365.0).alias("annual_kwh"),
        pl.coalesce(
            robust_ratio("winter", "summer", MIN_SEASON_DAYS, WINTER_SUMMER_CAP),
            robust_ratio("cold", "warm", MIN_SEASON_DAYS, WINTER_SUMMER_CAP),
        ).alias("winter_summer_ratio"),
        _safe_div(pl.col("night"), hour_total).clip(0.0, 1.0).alias("night_share"),
        _safe_div(pl.col("daytime"), hour_total).clip(0.0, 1.0).alias("day_share"),
        _safe_div(pl.col("evening"), hour_total).clip(0.0, 1.0).alias("evening_share"),
        _safe_div(pl.col("wkday_daytime"), pl.col("wkday_kwh")).clip(0.0, 1.0).alias("weekday_daytime_share"),
        robust_ratio("wkday", "wkend", MIN_WEEKPART_DAYS, WEEKDAY_WEEKEND_CAP).alias("weekday_weekend_ratio"),
        pl.when(hour_total > 0).then(peak).alias("peak_hour"),
        *(_safe_div(pl.col(c), hour_total).clip(0.0, 1.0).alias(s) for c, s in zip(HOUR_COLS, SHARE_COLS, strict=True)),
        pl.col("base_load_kwh"),
        _safe_div(_safe_div(pl.col("kwh"), pl.col("cov_days") * 24.0), pl.col("max_h"))
        .clip(0.0, 1.0)
        .alias("load_factor"),
        pl.when(mean_cmp > 0).then(var_cmp.sqrt() / mean_cmp).alias("daily_variability"),
        _safe_div(pl.col("n_estimated"), pl.col("n_expected")).clip(0.0, 1.0).alias("estimated_share"),
        _safe_div(pl.col("n_missing"), pl.col("n_expected")).clip(0.0, 1.0).alias("missing_share"),
        pl.col("days").alias("days_with_readings"),
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
_INT_CONSUMPTION = {"peak_hour", "days_with_readings"}


def _cast_consumption(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        *(pl.col(c).cast(pl.Int32 if c in _INT_CONSUMPTION else pl.Float64) for c in CONSUMPTION_COLUMNS)
    )


def consumption_features(
    daily: pl.LazyFrame,
    attribution: pl.DataFrame,
    as_of: date,
    window_days: int = 365,
    *,
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
) -> pl.DataFrame:
    """Consumption features for every customer with an attribution period in the window (those
    without any readings get nulls and days_with_readings = 0)."""
    cd = _CustomerDays(daily, attribution, as_of, window_days, _VALUE_COLS, chunk_rows)
    aggs = _partial_aggs()
    sum_names = [a.meta.output_name() for a in aggs]
    # A customer has at most one row per day, so over a window of at most _MAX_CHUNK_DAYS days no
    # bucket count can overflow its 9-bit field: the packed words are then summed over the chunks
    # like any other integer and unpacked once at the end, not once per chunk (at 500,000
    # customers the unpacking cost as much as all the other per-chunk accumulation together).
    words = [f"_bl{w}" for w in range(_N_WORDS)]
    packed = (cd.end - cd.start).days + 1 <= _MAX_CHUNK_DAYS
    sums = _DenseSums(cd.n, sum_names + (words if packed else []), ["max_h", "_dmin_hi"], ["_dmin_lo"])
    hist = _Histogram(cd.n)

    def add(df: pl.DataFrame) -> None:
        sums.add(df)
        if not packed:
            hist.add(df)

    def queries(chunk: pl.LazyFrame) -> list[pl.LazyFrame]:
        days = _with_day_columns(chunk)
        return [days.group_by("cix").agg(*aggs, pl.col("_dmax").max().alias("max_h"), *_histogram_aggs())]

    _accumulate(cd, queries, [add])
    if packed:
        j0 = len(sum_names)
        hist.add(pl.DataFrame({"cix": np.arange(cd.n), **{w: sums.sums[:, j0 + k] for k, w in enumerate(words)}}))
    counts = {"days", "cmp_n", *_COUNT_COLS}
    # sums of sums while still integers (exact in any order), then back to kWh, days and kWh²:
    # each exact integer is divided once, so the result is reproducible to the last bit
    partial = sums.frame(cd.customers).drop(words, strict=False).with_columns(**_DERIVED_SUMS)
    lo = partial["_dmin_lo"].cast(pl.Float64).to_numpy() / MICRO
    hi = partial["_dmin_hi"].cast(pl.Float64).to_numpy() / MICRO
    scaled = [c for c in [*sum_names, *_DERIVED_SUMS, "max_h"] if c not in counts and c != "cmp_sumsq"]
    partial = partial.with_columns(
        *(pl.col(c) / MICRO for c in scaled),
        pl.col("cmp_sumsq") / 1e6,
        pl.Series("base_load_kwh", hist.quantile(lo, hi)).fill_nan(None),
    )
    return _cast_consumption(_finalise(partial))


def profiling_history_days(
    daily: pl.LazyFrame,
    attribution: pl.DataFrame,
    as_of: date,
    window_days: int = 365,
    *,
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
) -> pl.DataFrame:
    """customer_id, days_with_readings: days in the window with at least one OK or ESTIMATED
    reading on any of the customer's points, counted only inside the attribution periods. Every
    customer with an attribution period in the window gets a row (0 when it has no readings);
    the population rule is `days_with_readings >= 180`."""
    cd = _CustomerDays(daily, attribution, as_of, window_days, ["n_ok", "n_estimated"], chunk_rows)
    sums = _DenseSums(cd.n, ["days_with_readings"])
    read = pl.col("n_ok").fill_null(0) + pl.col("n_estimated").fill_null(0)

    def queries(chunk: pl.LazyFrame) -> list[pl.LazyFrame]:
        return [chunk.group_by("cix").agg((read > 0).sum().alias("days_with_readings"))]

    _accumulate(cd, queries, [sums.add])
    return sums.frame(cd.customers).with_columns(pl.col("days_with_readings").cast(pl.Int32)).sort("customer_id")


def monthly_kwh_shares(
    daily: pl.LazyFrame,
    attribution: pl.DataFrame,
    as_of: date,
    window_days: int = 365,
    *,
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
) -> pl.DataFrame:
    """Per customer and calendar month with readings: kwh, coverage_days, mean_daily_kwh, and
    `share`, the month's share of the year (mean daily kWh x days in the month, normalised over the
    months with data). Feeds the monthly profile plot of each segment."""
    cd = _CustomerDays(
        daily, attribution, as_of, window_days, ["kwh_total", "n_ok", "n_estimated", "n_expected"], chunk_rows
    )
    kwh = np.zeros((cd.n, 12), dtype=np.int64)
    cov = np.zeros((cd.n, 12), dtype=np.int64)
    read = pl.col("n_ok").fill_null(0) + pl.col("n_estimated").fill_null(0)
    expected = pl.col("n_expected").fill_null(0)

    def sink(df: pl.DataFrame) -> None:
        if df.height:
            idx = (df["cix"].to_numpy().astype(np.int64), df["month"].to_numpy().astype(np.int64) - 1)
            kwh[idx] += df["kwh"].to_numpy().astype(np.int64)
            cov[idx] += df["coverage_days"].to_numpy().astype(np.int64)

    def queries(chunk: pl.LazyFrame) -> list[pl.LazyFrame]:
        return [
            chunk.group_by("cix", pl.col("business_day").dt.month().alias("month")).agg(
                pl.col("kwh_total").fill_null(0).sum().alias("kwh"),
                _micro_coverage(read, expected).sum().alias("coverage_days"),
            )
        ]

    _accumulate(cd, queries, [sink])
    schema = {
        "customer_id": cd.customers.schema["customer_id"],
        "month": pl.Int8,
        "kwh": pl.Float64,
        "coverage_days": pl.Float64,
        "mean_daily_kwh": pl.Float64,
        "share": pl.Float64,
    }
    rows, months = np.nonzero(cov > 0)
    ids = cd.customers.sort("cix")["customer_id"]
    df = pl.DataFrame(
        {
            "customer_id": ids.gather(rows) if len(rows) else ids.clear(),
            "month": (months + 1).astype(np.int8),
            "kwh": kwh[rows, months] / MICRO,
            "coverage_days": cov[rows, months] / MICRO,
        }
    )
    days_in_month = pl.col("month").replace_strict(
        {m: (date(2001 + (m == 12), m % 12 + 1, 1) - date(2001, m, 1)).days for m in range(1, 13)},
        return_dtype=pl.Float64,
    )
    df = df.with_columns((pl.col("kwh") / pl.col("coverage_days")).alias("mean_daily_kwh"))
    weight = pl.col("mean_daily_kwh") * days_in_month
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
    c = contracts.with_columns(pl.col("start_date").cast(pl.Date), pl.col("end_date").cast(pl.Date)).filter(
        pl.col("start_date") <= pl.lit(as_of)
    )
    active = pl.col("end_date").is_null() | (pl.col("end_date") >= pl.lit(as_of))
    c = c.with_columns(active.alias("_active"))
    optional = [col for col in ("site_type", "heating") if col in c.columns]
    active_first = (
        c.filter(pl.col("_active"))
        .sort("customer_id", "start_date", "contract_id")
        .group_by("customer_id", maintain_order=True)
        .first()
    )
    ended_last = (
        c.join(active_first.select("customer_id"), on="customer_id", how="anti")
        .sort(["customer_id", "end_date", "contract_id"], descending=[False, True, False])
        .group_by("customer_id", maintain_order=True)
        .first()
    )
    primary = pl.concat([active_first, ended_last], how="vertical_relaxed")
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
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
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
    consumption = consumption_features(daily, attribution, as_of, window_days, chunk_rows=chunk_rows)
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
