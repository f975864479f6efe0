"""Features + segmentation for 500,000 customers x 365 days of daily aggregates, out of core; vs pandas.

Also a plain pandas implementation of the same consumption features, at a tier pandas can hold.

What it does
  1. Synthesises the `metering_daily` table directly (raw readings at this scale would be 17.5
     billion rows): `daily/business_day=YYYY-MM-DD/part.parquet`, one file per day in exactly the
     layout `assets.storage.metering_aggregate` writes (business_day, metering_point_id, resolution,
     kwh_total, kwh_h00..kwh_h23, night_kwh, n_ok, n_estimated, n_missing, n_expected; polars'
     default Parquet settings), one day at a time, so the table is never in memory. Plus
     `metering_point_attribution`, `contracts`, `invoices` and the population as Parquet.
     Households follow six archetypes (district-heated apartment, electric-heated house,
     heat-pump house, EV night charger, summer cottage, home office) under one shared weather
     series, vectorised with numpy. The awkward parts are in on purpose: 2 % of customers have two
     metering points, 3 % of points changed tenant inside the window (the earlier readings, at 1.7x
     the level, belong to someone outside the population), 5 % of contracts changed mid-window
     (adjacent or overlapping attribution periods), 1.5 % of points have an outage of 2-30 days
     (no rows), missing (0.2 %) and estimated (1 %) hours, 30 % PT15M points, and both DST days.
     The data is reused by later runs with the same parameters (`--regenerate` forces new data).
  2. Measures, each phase in its own subprocess (peak RSS = that child's own ru_maxrss via wait4):
       features       models.features.compute_customer_features over a lazy scan of the daily
                      files (as assets.features.assets.daily_aggregates scans them), attribution,
                      contracts, invoices and the population, with default arguments;
       segmentation   models.segmentation.segment_customers on that feature table (default config);
       history_days, monthly_shares (unless --no-extras)
                      the two other full scans of the daily table the pipeline makes
                      (profiling_population and the segment plots); reported, not in the target.
     The target is features + segmentation: wall time < 5 min and peak RSS < 8 GiB.
  3. At the comparison tier (`--pandas-customers`, default 50,000 customers, about 18M daily rows,
     written the same way): `models.features.consumption_features` against `pandas_consumption`
     below, a plain pandas implementation of the same consumption features that loads the window
     into one DataFrame. Target: lupa >= 5x faster. Both outputs are compared for every customer
     (assert close: 1e-5 relative; the base load within one histogram bucket, because lupa
     interpolates it from a 64-bucket histogram while pandas takes the exact nearest-rank
     percentile). pandas is pinned in requirements.lock (the `bench` extra of pyproject.toml);
     without it the pandas side is reported as not run.

Measurements, not tests: the run exits 0 whether or not a target is met; it fails only when a
measurement fails or the two implementations disagree.

    python -m benchmarks.run profiling_scale                         # full size
    python -m benchmarks.profiling_scale --customers 20000 --pandas-customers 5000 --no-extras   # a quick tier
    python -m benchmarks.profiling_scale --keep                      # keep the synthetic data for the next run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks import _harness as h

MODULE = "benchmarks.profiling_scale"
AS_OF = date(2026, 11, 24)
WINDOW_DAYS = 365
GENERATOR_VERSION = 3

TARGET_SECONDS = 300.0
TARGET_RSS_BYTES = 8 * h.GIB
TARGET_SPEEDUP = 5.0
#: assert-close tolerances of the pandas comparison
RTOL = 1e-5
ATOL = 1e-9
BASE_LOAD_RTOL = 0.17  # one histogram bucket is (50 / 0.005) ** (1 / 62) = 1.16 wide

HOUR_COLS = [f"kwh_h{x:02d}" for x in range(24)]
NIGHT_HOURS = (22, 23, 0, 1, 2, 3, 4, 5, 6)
DAILY_COLUMNS = [
    "business_day",
    "metering_point_id",
    "resolution",
    "kwh_total",
    *HOUR_COLS,
    "night_kwh",
    "n_ok",
    "n_estimated",
    "n_missing",
    "n_expected",
]
ARCHETYPES = (
    "district_apartment",
    "electric_house",
    "heat_pump_house",
    "ev_night_charger",
    "summer_cottage",
    "home_office",
)
ARCHETYPE_P = (0.34, 0.14, 0.16, 0.10, 0.10, 0.16)


# ---- the synthetic data ------------------------------------------------------------------------
def _window(as_of: date = AS_OF, days: int = WINDOW_DAYS) -> list[date]:
    return [as_of - timedelta(days=days - 1 - i) for i in range(days)]


def _dst(d: date) -> int:
    """-1 on the spring change (23 local hours), +1 on the autumn change (25), else 0 (Helsinki)."""
    if d.weekday() == 6 and d.day >= 25 and d.month in (3, 10):
        return -1 if d.month == 3 else 1
    return 0


def _bump(hours, centre, width, height):
    """Per-row gaussian bumps on the 24-hour circle: centre/width/height are (n, 1) or scalars."""
    import numpy as np

    d = np.abs(hours[None, :] - centre)
    d = np.minimum(d, 24 - d)
    return (height * np.exp(-0.5 * (d / width) ** 2)).astype(np.float32)


class _Population:
    """Customers, their metering points and every per-point parameter of the load model."""

    def __init__(self, customers: int, seed: int, days: list[date]):
        import numpy as np
        import polars as pl

        rng = np.random.default_rng(seed)
        self.days = days
        n = customers
        self.n_customers = n
        self.customer_ids = np.array([f"C{1_000_000 + i:07d}" for i in range(n)])
        arche = rng.choice(len(ARCHETYPES), size=n, p=ARCHETYPE_P)
        self.archetype = arche
        multi = rng.random(n) < 0.02
        # points: every customer's main point, then the second points of the multi-point customers
        owner = np.concatenate([np.arange(n), np.flatnonzero(multi)])
        factor = np.concatenate([np.where(multi, 0.7, 1.0), np.full(int(multi.sum()), 0.3)]).astype(np.float32)
        main_point = np.arange(len(owner)) < n
        # points are kept in the order of their (sorted) ids, which is random relative to customers
        perm = rng.permutation(len(owner))
        owner, factor, main_point = owner[perm], factor[perm], main_point[perm]
        p = len(owner)
        self.n_points = p
        # 18-digit GSRN-like ids, ascending
        self.point_ids = np.array([f"643007{7 * k + 1_000:012d}" for k in range(p)])
        self.owner = owner
        self.factor = factor
        a = arche[owner]
        s = rng.lognormal(0.0, 0.25, size=n).astype(np.float32)[owner][:, None] * factor[:, None]
        hours = np.arange(24, dtype=np.float32)

        def u(lo, hi):
            return rng.uniform(lo, hi, size=(p, 1)).astype(np.float32)

        evening_scale = np.where(np.isin(a, (1, 2)), 1.8, 1.0).astype(np.float32)[:, None]
        household = (
            u(0.08, 0.18)
            + _bump(hours, u(6.5, 8.5), u(0.7, 1.3), u(0.05, 0.2))
            + _bump(hours, u(17.5, 20.5), u(1.3, 2.5), u(0.2, 0.45) * evening_scale)
        )
        level = np.choose(a, [1.0, 2.2, 2.2, 1.5, 0.0, 1.2]).astype(np.float32)[:, None]
        self.profile = household * level * s  # lit by the season; zero for cottages
        self.weekend_bump = np.where((a == 0)[:, None], _bump(hours, 13.0, 3.0, 0.08) * s, 0).astype(np.float32)
        jit = u(0.65, 1.35)
        night = np.isin(np.arange(24), NIGHT_HOURS).astype(np.float32) / len(NIGHT_HOURS)
        flat = np.full(24, 1 / 24, dtype=np.float32)
        heat_shape = np.where((a == 1)[:, None], 0.55 * night + 0.45 * flat, flat)
        heat_coef = np.choose(a, [0.0, 0.13, 0.045, 0.0, 0.0, 0.0]).astype(np.float32)[:, None]
        self.heat = (heat_coef * jit * s * 24 * heat_shape).astype(np.float32)  # x heating degree days
        self.is_ev = a == 3
        self.ev_kw = (2.2 * jit[:, 0]).astype(np.float32)
        self.is_cottage = a == 4
        self.cottage_use = np.where(
            self.is_cottage[:, None], household * 1.6 * s + _bump(hours, 19.0, 1.0, 1.5) * s, 0
        ).astype(np.float32)
        self.cottage_frost = np.where(self.is_cottage, s[:, 0], 0).astype(np.float32)
        self.office = np.where((a == 5)[:, None], _bump(hours, 12.0, 2.8, 0.45 * jit) * s, 0).astype(np.float32)
        self.pt15m = rng.random(p) < 0.30
        # data gaps: an outage of 2-30 days (no rows) on 1.5 % of the points
        outage = rng.random(p) < 0.015
        self.outage_from = np.where(outage, rng.integers(0, len(days) - 2, size=p), len(days) + 1)
        self.outage_to = self.outage_from + rng.integers(2, 31, size=p)
        # tenant changes: 3 % of single-point customers moved in 30-170 days into the window; the
        # point's earlier readings belong to a previous tenant (not in the population)
        mover = main_point & ~multi[owner] & (rng.random(p) < 0.03)
        self.move_in = np.where(mover, rng.integers(30, 171, size=p), 0)  # day index; 0 = no move
        # weather shared by everyone: a seasonal curve plus an AR(1) anomaly
        doy = np.array([d.timetuple().tm_yday for d in days])
        anomaly = np.zeros(len(days))
        for i in range(1, len(days)):
            anomaly[i] = 0.8 * anomaly[i - 1] + rng.normal(0, 2.0)
        temp = 4.5 - 12.5 * np.cos(2 * np.pi * (doy - 20) / 365.25) + anomaly
        self.hdd = np.clip(17.0 - temp, 0, None).astype(np.float32)
        self.darkness = (0.5 + 0.5 * np.cos(2 * np.pi * (doy - 355) / 365.25)).astype(np.float32)
        self.seed = seed
        self._ids = pl.Series("metering_point_id", self.point_ids, dtype=pl.String)
        self._resolution = pl.Series("resolution", np.where(self.pt15m, "PT15M", "PT1H"), dtype=pl.String)

    def day_frame(self, i: int, rng):
        """The daily rows of day index i (a polars DataFrame in the metering_daily layout)."""
        import numpy as np
        import polars as pl

        d = self.days[i]
        p = self.n_points
        weekend = d.weekday() >= 5
        vals = self.profile * (1.0 + 0.3 * self.darkness[i]) + self.heat * self.hdd[i]
        if weekend:
            vals += self.weekend_bump
        vals += self.office * (0.45 if weekend else 1.0)
        charge = self.is_ev & (rng.random(p) < (0.45 if weekend else 0.8))
        ev = (charge * self.ev_kw * (1 + 0.25 * self.darkness[i])).astype(np.float32)
        vals[:, [23, 0, 1, 2, 3, 4]] += ev[:, None]
        summer = d.month in (6, 7, 8)
        p_occ = 0.85 if d.month == 7 else (0.9 if weekend else 0.35) if summer else (0.25 if weekend else 0.03)
        occupied = self.is_cottage & (rng.random(p) < p_occ)
        vals += (0.03 + 0.004 * self.hdd[i]) * self.cottage_frost[:, None]
        vals += occupied[:, None] * self.cottage_use
        vals *= rng.lognormal(0.0, 0.18, size=(p, 24)).astype(np.float32)
        vals *= rng.lognormal(0.0, 0.12, size=(p, 1)).astype(np.float32)
        vals[(self.move_in > i)] *= 1.7  # the previous tenant
        kwh = np.round(vals.astype(np.float64), 3)
        del vals

        # quality: missing (null) and estimated hours, sampled by position
        flat_n = p * 24
        missing_pos = np.unique(rng.integers(0, flat_n, size=rng.binomial(flat_n, 0.002)))
        est_pos = np.setdiff1d(np.unique(rng.integers(0, flat_n, size=rng.binomial(flat_n, 0.01))), missing_pos)
        dst = _dst(d)
        flat_kwh = kwh.reshape(-1)
        flat_kwh[missing_pos] = np.nan
        n_missing_h = np.bincount(missing_pos // 24, minlength=p)
        n_est_h = np.bincount(est_pos // 24, minlength=p)
        if dst == -1:  # 03:00-03:59 does not exist
            kwh[:, 3] = np.nan
            n_missing_h -= np.bincount(missing_pos[missing_pos % 24 == 3] // 24, minlength=p)
            n_est_h -= np.bincount(est_pos[est_pos % 24 == 3] // 24, minlength=p)
        elif dst == 1:  # 03:00-03:59 happens twice: the hour holds both
            kwh[:, 3] = np.round(kwh[:, 3] * 2, 3)
        hours_expected = 24 + dst
        per = np.where(self.pt15m, 4, 1)
        n_expected = hours_expected * per
        n_missing = n_missing_h * per
        n_estimated = n_est_h * per
        n_ok = n_expected - n_missing - n_estimated

        keep = (i < self.outage_from) | (i > self.outage_to)
        kwh_total = np.round(np.nansum(kwh, axis=1), 3)
        night = np.round(np.nansum(kwh[:, list(NIGHT_HOURS)], axis=1), 3)
        by_hour = np.ascontiguousarray(kwh.T)
        hours = [pl.Series(c, by_hour[j], nan_to_null=True) for j, c in enumerate(HOUR_COLS)]
        frame = pl.DataFrame(
            [
                pl.Series("business_day", [d], dtype=pl.Date).new_from_index(0, p),
                self._ids,
                self._resolution,
                pl.Series("kwh_total", kwh_total),
                *hours,
                pl.Series("night_kwh", night),
                pl.Series("n_ok", n_ok, dtype=pl.Int64),
                pl.Series("n_estimated", n_estimated, dtype=pl.Int64),
                pl.Series("n_missing", n_missing, dtype=pl.Int64),
                pl.Series("n_expected", n_expected, dtype=pl.Int64),
            ]
        )
        if not keep.all():
            frame = frame.filter(pl.Series(keep))
        return frame  # already in metering_point_id order

    def side_tables(self):
        """metering_point_attribution, contracts, invoices, population (polars DataFrames)."""
        import numpy as np
        import polars as pl

        rng = np.random.default_rng(self.seed + 7)
        p, n = self.n_points, self.n_customers
        start = self.days[0]
        as_of = self.days[-1]
        cust = self.customer_ids[self.owner]
        since = np.array(
            [start - timedelta(days=int(x)) for x in rng.integers(30, 3000, size=p)], dtype="datetime64[D]"
        )
        move_day = np.array([start + timedelta(days=int(x)) for x in self.move_in], dtype="datetime64[D]")
        mover = self.move_in > 0
        valid_from = np.where(mover, move_day, since)
        # contract changes mid-window on 5 % of the points: adjacent periods, 1 in 10 overlapping
        change = (rng.random(p) < 0.05) & ~mover
        change_day = np.datetime64(start) + rng.integers(20, 340, size=p).astype("timedelta64[D]")
        change &= change_day > valid_from + np.timedelta64(10, "D")
        overlap = change & (rng.random(p) < 0.1)
        first_to = np.where(overlap, change_day + np.timedelta64(5, "D"), change_day - np.timedelta64(1, "D"))
        a = self.archetype[self.owner]
        fixed = rng.random(p) < 0.35
        fixed_end = np.datetime64(as_of) + rng.integers(1, 700, size=p).astype("timedelta64[D]")
        idx = np.arange(p)
        rows = {
            "metering_point_id": [self.point_ids, self.point_ids[change], self.point_ids[mover]],
            "customer_id": [cust, cust[change], np.array([f"C{5_000_000 + i:07d}" for i in idx[mover]])],
            "contract_id": [
                np.char.add("K", idx.astype(str)),
                np.char.add(np.char.add("K", idx[change].astype(str)), "-2"),
                np.char.add(np.char.add("K", idx[mover].astype(str)), "-prev"),
            ],
            "valid_from": [valid_from, change_day[change], since[mover] - np.timedelta64(400, "D")],
            "valid_to": [
                np.where(change, first_to, np.datetime64("NaT")),
                np.full(int(change.sum()), np.datetime64("NaT"), dtype="datetime64[D]"),
                move_day[mover] - np.timedelta64(1, "D"),
            ],
        }
        attribution = pl.DataFrame({k: np.concatenate(v) for k, v in rows.items()}).with_columns(
            pl.col("metering_point_id", "customer_id", "contract_id").cast(pl.String),
            pl.col("valid_from", "valid_to").cast(pl.Date),
        )
        n_rows = attribution.height
        a_all = np.concatenate([a, a[change], a[mover]])
        fixed_all = np.concatenate([fixed, fixed[change], np.zeros(int(mover.sum()), dtype=bool)])
        ended = attribution["valid_to"].is_not_null().to_numpy()
        contracts = attribution.select(
            "contract_id",
            "customer_id",
            "metering_point_id",
            pl.Series(
                "product_code",
                np.where(
                    fixed_all,
                    np.where(rng.random(n_rows) < 0.5, "FIXED12", "FIXED24"),
                    np.where(rng.random(n_rows) < 0.8, "SPOT", "GREEN"),
                ),
            ),
            pl.Series("contract_type", np.where(fixed_all, "fixed_term", "open_ended")),
            pl.col("valid_from").alias("start_date"),
            pl.when(pl.Series(ended))
            .then(pl.col("valid_to"))
            .when(pl.Series(fixed_all))
            .then(pl.Series(np.concatenate([fixed_end, fixed_end[change], fixed_end[mover]])).cast(pl.Date))
            .alias("end_date"),
            pl.Series(
                "site_type", np.choose(a_all, ["apartment", "house", "house", "house", "summer_cottage", "apartment"])
            ),
            pl.Series(
                "heating", np.choose(a_all, ["district", "electric", "heat_pump", "district", "electric", "district"])
            ).replace({"district": None}),
        )
        # invoices: monthly, 12 per customer in the window
        m = 12
        ci = np.repeat(np.arange(n), m)
        month = np.tile(np.arange(m), n)
        issued = np.datetime64(as_of) - (15 + 30 * month).astype("timedelta64[D]")
        due = issued + np.timedelta64(14, "D")
        late_p = np.where(rng.random(n) < 0.2, 0.3, 0.02)[ci]
        late = rng.random(n * m) < late_p
        days_late = rng.integers(1, 40, size=n * m)
        paid = np.where(late, due + days_late.astype("timedelta64[D]"), due - np.timedelta64(2, "D"))
        unpaid = (paid > np.datetime64(as_of)) | (rng.random(n * m) < 0.002)
        invoices = pl.DataFrame(
            {
                "invoice_id": np.char.add(np.char.add("I", ci.astype(str)), np.char.add("-", month.astype(str))),
                "customer_id": self.customer_ids[ci],
                "contract_id": np.char.add("K", ci.astype(str)),
                "issued_on": issued,
                "due_on": due,
                "amount_eur": np.round(rng.lognormal(4.0, 0.6, size=n * m), 2),
                "paid_on": np.where(unpaid, np.datetime64("NaT"), paid),
                "reminders": (late & (days_late > 14)).astype(np.int32) + (late & (days_late > 28)),
                "in_collection": late & (days_late > 35),
            }
        ).with_columns(
            pl.col("invoice_id", "customer_id", "contract_id").cast(pl.String),
            pl.col("issued_on", "due_on", "paid_on").cast(pl.Date),
        )
        population = pl.DataFrame({"customer_id": self.customer_ids}).with_columns(
            pl.col("customer_id").cast(pl.String)
        )
        return attribution, contracts, invoices, population


def synthesise(root: Path, customers: int, seed: int) -> dict:
    """Write the daily partitions one day at a time, and the side tables; returns a description."""
    import numpy as np

    started = time.perf_counter()
    days = _window()
    pop = _Population(customers, seed, days)
    daily_root = root / "daily"
    shutil.rmtree(daily_root, ignore_errors=True)
    rows = 0
    rng = np.random.default_rng(seed + 1)

    def write(day: date, frame) -> None:
        target = daily_root / f"business_day={day.isoformat()}"
        target.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(target / "part.parquet")  # as assets.storage.metering_aggregate writes it

    # one writer thread: day i is written while day i+1 is computed (at most two days in memory)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for i in range(len(days)):
            frame = pop.day_frame(i, rng)
            rows += frame.height
            if pending is not None:
                pending.result()
            pending = pool.submit(write, days[i], frame)
            del frame
        if pending is not None:
            pending.result()
    attribution, contracts, invoices, population = pop.side_tables()
    for name, frame in (
        ("attribution", attribution),
        ("contracts", contracts),
        ("invoices", invoices),
        ("population", population),
    ):
        frame.write_parquet(root / f"{name}.parquet")
    return {
        "customers": customers,
        "points": pop.n_points,
        "days": len(days),
        "daily_rows": rows,
        "daily_bytes": h.dir_bytes(daily_root),
        "attribution_rows": attribution.height,
        "contracts_rows": contracts.height,
        "invoices_rows": invoices.height,
        "window": [days[0].isoformat(), days[-1].isoformat()],
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "seconds": round(time.perf_counter() - started, 1),
    }


def ensure_data(root: Path, customers: int, seed: int, regenerate: bool, log) -> dict:
    def make() -> dict:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        log(f"synthesising {customers:,} customers x {WINDOW_DAYS} days into {root} …")
        return h.measure(MODULE, "generate", [str(root), str(customers), str(seed)], root.parent)

    def intact(meta: dict) -> bool:
        return (root / "daily").is_dir() and h.dir_bytes(root / "daily") == meta.get("daily_bytes")

    wanted = {"customers": customers, "seed": seed, "generator_version": GENERATOR_VERSION}
    return h.cached_data(root / "data.json", wanted, intact, regenerate, make)


# ---- what the pipeline does (lupa) ----------------------------------------------------------------
def daily_scan(root: Path):
    """The daily table as assets.features.assets.daily_aggregates scans it (never loaded whole)."""
    import polars as pl

    files = sorted((root / "daily").glob("business_day=*/part.parquet"))
    return pl.scan_parquet(files, hive_partitioning=False)


def _read(root: Path, name: str):
    import polars as pl

    return pl.read_parquet(root / f"{name}.parquet")


def work_features(root: Path, out: Path) -> dict:
    from models.features import compute_customer_features

    attribution, contracts, invoices, population = (
        _read(root, n) for n in ("attribution", "contracts", "invoices", "population")
    )
    c0, t0 = h.cpu_seconds(), time.perf_counter()
    features = compute_customer_features(daily_scan(root), attribution, contracts, invoices, population, AS_OF)
    c1, t1 = h.cpu_seconds(), time.perf_counter()
    features.write_parquet(out)
    return {
        "seconds": t1 - t0,
        "cpu_seconds": c1 - c0,
        "rows": features.height,
        "columns": features.width,
        "customers_with_readings": int((features["days_with_readings"] > 0).sum()),
        "median_days_with_readings": float(features["days_with_readings"].median()),
        "median_annual_kwh": float(features["annual_kwh"].median()),
    }


def work_segmentation(features_path: Path) -> dict:
    import polars as pl

    from models.features import feature_window
    from models.segmentation import SegmentationConfig, segment_customers

    features = pl.read_parquet(features_path)
    c0, t0 = h.cpu_seconds(), time.perf_counter()
    result = segment_customers(features, AS_OF, feature_window(AS_OF), None, SegmentationConfig())
    c1, t1 = h.cpu_seconds(), time.perf_counter()
    return {
        "seconds": t1 - t0,
        "cpu_seconds": c1 - c0,
        "rows": features.height,
        "k": result.fit.k,
        "candidates": [c.as_dict() for c in result.fit.candidates],
        "segment_sizes": result.segment_catalogue.select("segment_id", "name_en", "size").rows(),
        "model_version": result.model_version,
    }


def work_extra(root: Path, kind: str) -> dict:
    from models.features import monthly_kwh_shares, profiling_history_days

    attribution = _read(root, "attribution")
    fn = profiling_history_days if kind == "history_days" else monthly_kwh_shares
    c0, t0 = h.cpu_seconds(), time.perf_counter()
    out = fn(daily_scan(root), attribution, AS_OF)
    c1, t1 = h.cpu_seconds(), time.perf_counter()
    return {"seconds": t1 - t0, "cpu_seconds": c1 - c0, "rows": out.height}


def _population_attribution(root: Path):
    import polars as pl

    population = _read(root, "population")
    return _read(root, "attribution").join(population.select(pl.col("customer_id")), on="customer_id", how="semi")


def work_lupa_consumption(root: Path, out: Path) -> dict:
    from models.features import consumption_features

    attribution = _population_attribution(root)
    c0, t0 = h.cpu_seconds(), time.perf_counter()
    features = consumption_features(daily_scan(root), attribution, AS_OF)
    c1, t1 = h.cpu_seconds(), time.perf_counter()
    features.write_parquet(out)
    return {"seconds": t1 - t0, "cpu_seconds": c1 - c0, "rows": features.height}


# ---- the plain pandas implementation ------------------------------------------------------------
DAY_HOURS = tuple(range(8, 17))
EVENING_HOURS = tuple(range(17, 22))
SEASONS = {
    "winter": (12, 1, 2),
    "summer": (6, 7, 8),
    "cold": (10, 11, 12, 1, 2, 3, 4),
    "warm": (5, 6, 7, 8, 9),
}
COUNT_COLS = ["n_ok", "n_estimated", "n_missing", "n_expected"]
VALUE_COLS = ["kwh_total", *HOUR_COLS, *COUNT_COLS]  # night_kwh is not needed: night = hours 22-06


def pandas_consumption(daily_dir: Path, attribution, as_of: date, window_days: int = WINDOW_DAYS):
    """The consumption features of models.features, written the way a pandas user would: load the
    window into one DataFrame, join the attribution periods, add the per-day values as columns,
    group by customer. `attribution` is a pandas DataFrame (metering_point_id, customer_id,
    valid_from, valid_to). Returns customer_id + CONSUMPTION_COLUMNS, one row per customer with an
    attribution period in the window."""
    import numpy as np
    import pandas as pd

    start, end = pd.Timestamp(as_of - timedelta(days=window_days - 1)), pd.Timestamp(as_of)
    # 1. the window: one file per business day (the partition folder names the day)
    frames = []
    for k in range(window_days):
        day = as_of - timedelta(days=window_days - 1 - k)
        path = daily_dir / f"business_day={day.isoformat()}" / "part.parquet"
        if path.exists():
            df = pd.read_parquet(path, columns=["metering_point_id", *VALUE_COLS])
            df["business_day"] = pd.Timestamp(day)
            frames.append(df)
    daily = pd.concat(frames, ignore_index=True)
    del frames

    # 2. attribution periods clipped to the window; readings count only inside them
    a = attribution[["metering_point_id", "customer_id", "valid_from", "valid_to"]].copy()
    vf = pd.to_datetime(a["valid_from"]).fillna(start)
    vt = pd.to_datetime(a["valid_to"]).fillna(end)
    a["valid_from"] = vf.where(vf > start, start)
    a["valid_to"] = vt.where(vt < end, end)
    a = a[a["valid_from"] <= a["valid_to"]]
    customers = pd.Index(a["customer_id"].unique(), name="customer_id").sort_values()
    m = daily.merge(a, on="metering_point_id", how="inner")
    del daily
    m = m[(m["business_day"] >= m["valid_from"]) & (m["business_day"] <= m["valid_to"])]
    # a (point, customer) with several (overlapping) periods must not count a day twice
    several = a.loc[a.duplicated(["metering_point_id", "customer_id"], keep=False), "metering_point_id"].unique()
    if len(several):
        on_several = m["metering_point_id"].isin(several)
        m = pd.concat(
            [m[~on_several], m[on_several].drop_duplicates(["metering_point_id", "customer_id", "business_day"])]
        )
    m = m[["customer_id", "business_day", *VALUE_COLS]]

    # 3. customers with several points: one row per (customer, day)
    key = ["customer_id", "business_day"]
    dup = m.duplicated(key, keep=False)
    if dup.any():
        summed = m[dup].groupby(key, as_index=False, sort=False)[VALUE_COLS].sum()
        m = pd.concat([m[~dup], summed], ignore_index=True)
    else:
        m = m.reset_index(drop=True)
    del dup

    # 4. per-day values, as columns of the same frame
    read = m["n_ok"].fillna(0) + m["n_estimated"].fillna(0)
    expected = m["n_expected"].fillna(0)
    complete = (m["n_missing"].fillna(0) == 0) & (expected > 0) & (read >= expected)
    day = m["business_day"]
    month = day.dt.month
    weekend = day.dt.day_of_week >= 5
    dst = month.isin([3, 10]) & (day.dt.day_of_week == 6) & (day.dt.day >= 25)
    kwh = m["kwh_total"].fillna(0.0)
    cov = (read / expected.where(expected > 0)).clip(0, 1).fillna(0.0)
    m["days"] = (read > 0).astype(np.int64)
    m["cov_days"] = cov
    m["kwh"] = kwh
    m["daytime"] = m[[HOUR_COLS[x] for x in DAY_HOURS]].sum(axis=1)
    m["evening"] = m[[HOUR_COLS[x] for x in EVENING_HOURS]].sum(axis=1)
    m["wkday_daytime"] = m["daytime"].where(~weekend, 0.0)
    for name, months in SEASONS.items():
        inside = month.isin(months)
        m[f"{name}_kwh"] = kwh.where(inside, 0.0)
        m[f"{name}_cov"] = cov.where(inside, 0.0)
    m["wkday_kwh"] = kwh.where(~weekend, 0.0)
    m["wkday_cov"] = cov.where(~weekend, 0.0)
    m["wkend_kwh"] = kwh.where(weekend, 0.0)
    m["wkend_cov"] = cov.where(weekend, 0.0)
    m["dmax"] = m[HOUR_COLS].max(axis=1).where(~dst)
    m["dmin"] = m[HOUR_COLS].min(axis=1).where(complete & ~dst)
    m["cmp_kwh"] = kwh.where(complete)  # NaN on incomplete days: mean and std skip them
    del read, expected, day, month, weekend, dst, kwh, cov

    # 5. per customer (hour sums skip missing hours, i.e. count them as 0)
    sum_cols = [
        *HOUR_COLS,
        "days",
        "cov_days",
        "kwh",
        "daytime",
        "evening",
        "wkday_daytime",
        *COUNT_COLS,
        *(f"{n}_{x}" for n in (*SEASONS, "wkday", "wkend") for x in ("kwh", "cov")),
    ]
    g = m.groupby("customer_id", sort=True)
    s = g[sum_cols].sum().reindex(customers, fill_value=0)
    max_h = g["dmax"].max().reindex(customers)
    variability = g["cmp_kwh"].agg(["mean", "std"]).reindex(customers)
    # base load: nearest-rank 10th percentile of the daily minima (the ceil(0.1 n)-th smallest)
    mins = m.loc[m["dmin"].notna(), ["customer_id", "dmin"]].sort_values(["customer_id", "dmin"])
    rank = mins.groupby("customer_id").cumcount().to_numpy()
    n_min = mins.groupby("customer_id")["dmin"].transform("size").to_numpy()
    pick = np.maximum(1, np.ceil(0.1 * n_min - 1e-9)) - 1
    base_load = mins.loc[rank == pick].set_index("customer_id")["dmin"].reindex(customers)
    del m, g, mins

    # 6. the features
    def div(num, den):
        return (num / den.where(den > 0)).where(den > 0)

    hour_total = s[HOUR_COLS].sum(axis=1)
    mean_daily = div(s["kwh"], s["cov_days"])
    eps = np.maximum(0.01 * mean_daily.fillna(0.0), 0.05)

    def ratio(a_: str, b_: str, min_days: float, cap: float):
        have = (s[f"{a_}_cov"] >= min_days) & (s[f"{b_}_cov"] >= min_days)
        r = (div(s[f"{a_}_kwh"], s[f"{a_}_cov"]) + eps) / (div(s[f"{b_}_kwh"], s[f"{b_}_cov"]) + eps)
        return r.clip(0.0, cap).where(have)

    out = pd.DataFrame(index=customers)
    out["annual_kwh"] = mean_daily * 365.0
    out["winter_summer_ratio"] = ratio("winter", "summer", 14.0, 100.0).fillna(ratio("cold", "warm", 14.0, 100.0))
    night = s[[HOUR_COLS[x] for x in NIGHT_HOURS]].sum(axis=1)
    out["night_share"] = div(night, hour_total).clip(0.0, 1.0)
    out["day_share"] = div(s["daytime"], hour_total).clip(0.0, 1.0)
    out["evening_share"] = div(s["evening"], hour_total).clip(0.0, 1.0)
    out["weekday_daytime_share"] = div(s["wkday_daytime"], s["wkday_kwh"]).clip(0.0, 1.0)
    out["weekday_weekend_ratio"] = ratio("wkday", "wkend", 4.0, 10.0)
    out["peak_hour"] = pd.Series(np.argmax(s[HOUR_COLS].to_numpy(), axis=1), index=customers).where(hour_total > 0)
    for x in range(24):
        out[f"share_h{x:02d}"] = div(s[HOUR_COLS[x]], hour_total).clip(0.0, 1.0)
    out["base_load_kwh"] = base_load
    out["load_factor"] = div(div(s["kwh"], s["cov_days"] * 24.0), max_h).clip(0.0, 1.0)
    out["daily_variability"] = (variability["std"] / variability["mean"]).where(variability["mean"] > 0)
    out["estimated_share"] = div(s["n_estimated"], s["n_expected"]).clip(0.0, 1.0)
    out["missing_share"] = div(s["n_missing"], s["n_expected"]).clip(0.0, 1.0)
    out["days_with_readings"] = s["days"].astype(np.int64)
    return out.reset_index()


def work_pandas_consumption(root: Path, out: Path) -> dict:
    import pandas as pd

    population = pd.read_parquet(root / "population.parquet")
    attribution = pd.read_parquet(root / "attribution.parquet")
    attribution = attribution[attribution["customer_id"].isin(population["customer_id"])]
    c0, t0 = h.cpu_seconds(), time.perf_counter()
    features = pandas_consumption(root / "daily", attribution, AS_OF)
    c1, t1 = h.cpu_seconds(), time.perf_counter()
    features.to_parquet(out, index=False)
    return {"seconds": t1 - t0, "cpu_seconds": c1 - c0, "rows": len(features), "pandas": pd.__version__}


def compare(lupa_path: Path, pandas_path: Path) -> dict:
    """Every customer, every consumption column: max relative difference and how many rows are out
    of tolerance (nulls must agree)."""
    import polars as pl

    from models.features import CONSUMPTION_COLUMNS

    a = pl.read_parquet(lupa_path).select("customer_id", *(pl.col(c).cast(pl.Float64) for c in CONSUMPTION_COLUMNS))
    b = pl.read_parquet(pandas_path).select(
        pl.col("customer_id").cast(pl.String), *(pl.col(c).cast(pl.Float64).fill_nan(None) for c in CONSUMPTION_COLUMNS)
    )
    j = a.join(b, on="customer_id", how="full", suffix="_pd", coalesce=True)
    columns = {}
    for c in CONSUMPTION_COLUMNS:
        x, y = pl.col(c), pl.col(f"{c}_pd")
        rtol = BASE_LOAD_RTOL if c == "base_load_kwh" else RTOL
        rel = (x - y).abs() / y.abs().clip(lower_bound=ATOL)
        stats = j.select(
            (x.is_null() != y.is_null()).sum().alias("null_mismatch"),
            ((x - y).abs() > ATOL + rtol * y.abs()).sum().alias("out_of_tolerance"),
            pl.when((x - y).abs() > ATOL).then(rel).otherwise(0.0).max().alias("max_rel_diff"),
        ).row(0, named=True)
        stats["rtol"] = rtol
        columns[c] = stats
    bad = {c: s for c, s in columns.items() if s["null_mismatch"] or s["out_of_tolerance"]}
    return {
        "rows_lupa": a.height,
        "rows_pandas": b.height,
        "customers_only_in_one": int(a.height + b.height - 2 * a.join(b, on="customer_id", how="inner").height),
        "columns": columns,
        "agree": not bad and a.height == b.height == j.height,
        "disagreeing_columns": sorted(bad),
    }


# ---- the driver -----------------------------------------------------------------------------------
def _worker(argv: list[str]) -> int:
    kind, out = argv[0], Path(argv[1])
    if kind == "generate":
        result = synthesise(Path(argv[2]), int(argv[3]), int(argv[4]))
    elif kind == "features":
        result = work_features(Path(argv[2]), Path(argv[3]))
    elif kind == "segmentation":
        result = work_segmentation(Path(argv[2]))
    elif kind in ("history_days", "monthly_shares"):
        result = work_extra(Path(argv[2]), kind)
    elif kind == "lupa_consumption":
        result = work_lupa_consumption(Path(argv[2]), Path(argv[3]))
    elif kind == "pandas_consumption":
        result = work_pandas_consumption(Path(argv[2]), Path(argv[3]))
    else:
        raise SystemExit(f"unknown worker {kind}")
    return h.write_worker_result(out, result)


def _have_pandas() -> bool:
    import importlib.util

    return importlib.util.find_spec("pandas") is not None


def summarise(result: dict) -> None:
    p = result["phases"]
    t = result["targets"]
    if "features" in p and "segmentation" in p:
        f, s = p["features"], p["segmentation"]
        total = f["seconds"] + s["seconds"]
        total_process = f["process_seconds"] + s["process_seconds"]
        rss = max(f["peak_rss_bytes"], s["peak_rss_bytes"])
        result["features_plus_segmentation"] = {
            "seconds": total,
            "process_seconds": total_process,
            "peak_rss_bytes": rss,
        }
        t["seconds_met"] = total_process < TARGET_SECONDS
        t["rss_met"] = rss < TARGET_RSS_BYTES
    c = result.get("comparison", {})
    if "lupa" in c and "pandas" in c:
        c["speedup"] = c["pandas"]["seconds"] / c["lupa"]["seconds"]
        c["speedup_cpu"] = c["pandas"]["cpu_seconds"] / c["lupa"]["cpu_seconds"]
        t["speedup_met"] = c["speedup"] >= TARGET_SPEEDUP


def report(result: dict) -> str:
    m, d = result["machine"], result["data"]
    lines = [
        f"profiling scale benchmark, {result['date']}, {m['cpu']} ({m['cores']} cores, {h.gib(m['ram_bytes'])} RAM)",
        f"data: {d['customers']:,} customers, {d['points']:,} points, "
        f"{d['daily_rows']:,} daily rows in {d['days']} files, "
        f"{d['daily_bytes'] / 1e9:.1f} GB Parquet "
        f"({'reused' if d.get('reused') else 'written in ' + str(d.get('seconds')) + ' s'})",
        "",
    ]
    rows = [("phase", "in-process s", "process s", "CPU s", "peak RSS", "load 1m")]
    for name, x in result["phases"].items():
        load = "→".join(f"{v:.1f}" for v in x["loadavg_1m_before_after"])
        rows.append(
            (
                name,
                f"{x['seconds']:.1f}",
                f"{x['process_seconds']:.1f}",
                f"{x['process_cpu_seconds']:.1f}",
                h.gib(x["peak_rss_bytes"]),
                load,
            )
        )
    lines += h.table(rows)
    t = result["targets"]
    if "features_plus_segmentation" in result:
        fs = result["features_plus_segmentation"]
        seg = result["phases"]["segmentation"]
        lines += [
            "",
            f"features + segmentation: {fs['process_seconds']:.1f} s incl. start-up "
            f"({fs['seconds']:.1f} s in the calls), "
            f"peak RSS {h.gib(fs['peak_rss_bytes'])}  "
            f"(targets < {TARGET_SECONDS:.0f} s: {'met' if t['seconds_met'] else 'MISSED'}; "
            f"< {h.gib(TARGET_RSS_BYTES)}: {'met' if t['rss_met'] else 'MISSED'})",
            f"segmentation chose k = {seg['k']}; sizes {', '.join(f'{n}' for _, _, n in seg['segment_sizes'])}",
        ]
    c = result.get("comparison")
    if c:
        lines += [
            "",
            f"pandas comparison at {c['data']['customers']:,} customers ({c['data']['daily_rows']:,} daily rows):",
        ]
        rows = [("implementation", "in-process s", "CPU s", "peak RSS")]
        for name in ("lupa", "pandas"):
            if name in c:
                x = c[name]
                rows.append((name, f"{x['seconds']:.1f}", f"{x['cpu_seconds']:.1f}", h.gib(x["peak_rss_bytes"])))
        lines += h.table(rows)
        if "speedup" in c:
            lines.append(
                f"lupa is {c['speedup']:.1f}x faster in wall time ({c['speedup_cpu']:.1f}x in CPU time)  "
                f"(target >= {TARGET_SPEEDUP:.0f}x: {'met' if t['speedup_met'] else 'MISSED'})"
            )
        elif c.get("pandas_skipped"):
            lines.append(f"pandas side NOT RUN: {c['pandas_skipped']}")
        if "agreement" in c:
            a = c["agreement"]
            worst = max((s["max_rel_diff"] or 0.0) for k, s in a["columns"].items() if k != "base_load_kwh")
            lines.append(
                f"outputs agree: {a['agree']} ({a['rows_lupa']:,} customers; "
                f"max relative difference {worst:.1e} outside the base load, "
                f"base load {a['columns']['base_load_kwh']['max_rel_diff'] or 0.0:.3f})"
                + (f"; disagreeing: {', '.join(a['disagreeing_columns'])}" if a["disagreeing_columns"] else "")
            )
    return "\n".join(lines)


def _parse_args(argv: list[str]) -> argparse.Namespace:
    """The benchmark's options. Options meant for another benchmark of the same `benchmarks.run` call
    are ignored with a note, so one command line can drive every benchmark."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500_000, help="customers at full scale (default 500000)")
    parser.add_argument(
        "--pandas-customers",
        type=int,
        default=50_000,
        help="customers of the pandas comparison tier (default 50000; 0 = skip)",
    )
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument(
        "--dir", type=Path, default=None, help="scratch dir (default $LUPA_BENCH_DIR or <tmp>/lupa-bench)"
    )
    parser.add_argument("--regenerate", action="store_true", help="write new data even if matching data exists")
    parser.add_argument(
        "--keep", action="store_true", help="keep the synthetic data for the next run (default: delete it at the end)"
    )
    parser.add_argument("--no-extras", action="store_true", help="skip the history_days and monthly_shares scans")
    parser.add_argument("--skip-full", action="store_true", help="only the pandas comparison tier")
    parser.add_argument(
        "--generate-only", action="store_true", help="write the synthetic data (both tiers) and stop; implies --keep"
    )
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON result")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"{MODULE}: ignoring options it does not know: {' '.join(unknown)}", file=sys.stderr)
    return args


def _log(msg: str) -> None:
    """Progress goes to stdout at once (flushed), so a long full-scale run shows where it is."""
    print(msg, flush=True)


def _log_measured(x: dict) -> None:
    """One line per measured phase right after it ran: in-process seconds and the child's peak RSS."""
    _log(f"  {x['seconds']:.1f} s, {h.gib(x['peak_rss_bytes'])}")


def _new_result() -> dict:
    """The result skeleton: what was measured on (machine, versions, the measured sources) and the targets."""
    return {
        "benchmark": "profiling_scale",
        "date": h.now_iso(),
        "machine": h.machine(),
        "versions": h.versions(),
        "sources": h.source_fingerprints(("models/features.py", "models/segmentation.py")),
        "loadavg_start": h.loadavg(),
        "targets": {"seconds": TARGET_SECONDS, "rss_bytes": TARGET_RSS_BYTES, "speedup": TARGET_SPEEDUP},
        "phases": {},
        "data": {},
    }


def _generate_only(args: argparse.Namespace, full_root: Path, tier_root: Path) -> int:
    """--generate-only: write (or reuse) both tiers' data and keep it, measuring nothing, so that data
    generation can be paid for once before a series of timed runs."""
    for root, n, seed in (
        (full_root, args.customers, args.seed),
        (tier_root, args.pandas_customers, args.seed + 1),
    ):
        if n and not (args.skip_full and root == full_root):
            meta = ensure_data(root, n, seed, args.regenerate, _log)
            provenance = (
                "reused" if meta["reused"] else str(meta["seconds"]) + " s, peak RSS " + h.gib(meta["peak_rss_bytes"])
            )
            _log(f"{root}: {meta['daily_rows']:,} daily rows, {meta['daily_bytes'] / 1e9:.1f} GB, {provenance}")
    return 0


def _measure_full_tier(
    args: argparse.Namespace, scratch: Path, full_root: Path, result: dict, made: list[Path]
) -> None:
    """The full-scale tier: features and segmentation (the targets), then the extra scans unless
    --no-extras. The data dir goes into `made` as soon as it exists, so a failing phase still has it
    cleaned up."""
    _log(f"scratch {full_root} (free: {h.disk_free_bytes(scratch) / 1e9:.0f} GB)")
    result["data"] = ensure_data(full_root, args.customers, args.seed, args.regenerate, _log)
    made.append(full_root)
    _log(f"data: {result['data']['daily_rows']:,} daily rows, {result['data']['daily_bytes'] / 1e9:.1f} GB")
    features_path = full_root / "features.parquet"
    _log("measuring features …")
    result["phases"]["features"] = h.measure(MODULE, "features", [str(full_root), str(features_path)], scratch)
    _log_measured(result["phases"]["features"])
    _log("measuring segmentation …")
    result["phases"]["segmentation"] = h.measure(MODULE, "segmentation", [str(features_path)], scratch)
    _log_measured(result["phases"]["segmentation"])
    features_path.unlink(missing_ok=True)
    if not args.no_extras:
        for kind in ("history_days", "monthly_shares"):
            _log(f"measuring {kind} …")
            result["phases"][kind] = h.measure(MODULE, kind, [str(full_root)], scratch)
            _log_measured(result["phases"][kind])


def _measure_comparison(
    args: argparse.Namespace, scratch: Path, tier_root: Path, result: dict, made: list[Path]
) -> None:
    """The pandas comparison tier: lupa's and a plain pandas implementation of the consumption
    features on the same (smaller) data, and whether their outputs agree. Without pandas installed the
    lupa side still runs and the result says why the other did not."""
    tier = ensure_data(tier_root, args.pandas_customers, args.seed + 1, args.regenerate, _log)
    made.append(tier_root)
    if args.skip_full:
        result["data"] = tier
    comparison: dict = {"data": tier}
    lupa_out, pandas_out = tier_root / "consumption-lupa.parquet", tier_root / "consumption-pandas.parquet"
    _log(f"measuring lupa consumption_features at {args.pandas_customers:,} customers …")
    comparison["lupa"] = h.measure(MODULE, "lupa_consumption", [str(tier_root), str(lupa_out)], scratch)
    _log_measured(comparison["lupa"])
    if _have_pandas():
        _log(f"measuring pandas at {args.pandas_customers:,} customers …")
        comparison["pandas"] = h.measure(MODULE, "pandas_consumption", [str(tier_root), str(pandas_out)], scratch)
        _log_measured(comparison["pandas"])
        comparison["agreement"] = compare(lupa_out, pandas_out)
    else:
        comparison["pandas_skipped"] = (
            "pandas is not installed in this environment (it is pinned in requirements.lock: run `make install`)"
        )
    result["comparison"] = comparison


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        return _worker(argv[1:])
    args = _parse_args(argv)

    scratch = h.scratch_root(args.dir)
    scratch.mkdir(parents=True, exist_ok=True)
    full_root = scratch / f"profiling-{args.customers}"
    tier_root = scratch / f"profiling-{args.pandas_customers}"

    result = _new_result()
    if args.generate_only:
        return _generate_only(args, full_root, tier_root)
    made: list[Path] = []
    try:
        if not args.skip_full:
            _measure_full_tier(args, scratch, full_root, result, made)
        if args.pandas_customers:
            _measure_comparison(args, scratch, tier_root, result, made)
    finally:
        result["loadavg_end"] = h.loadavg()
        if not args.keep:
            for root in made:
                shutil.rmtree(root, ignore_errors=True)

    summarise(result)
    print(report(result))
    out = args.json or scratch / f"profiling_scale-{args.customers}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"result: {out}")
    agreement = result.get("comparison", {}).get("agreement")
    if agreement is not None and not agreement["agree"]:
        print("the lupa and pandas consumption features disagree (see the JSON result)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
