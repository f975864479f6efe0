"""A small generator of per-day metering aggregates (the `daily` table of docs/tables.md) for six
household archetypes, with attribution, contracts, invoices and the ground truth. Test-only: the
real demo generator lives in pipelines/demo_data/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

ARCHETYPES = [
    "district_apartment",
    "electric_house",
    "heat_pump_house",
    "ev_night_charger",
    "summer_cottage",
    "home_office",
]
HOUR_COLS = [f"kwh_h{h:02d}" for h in range(24)]
NIGHT = [22, 23, 0, 1, 2, 3, 4, 5, 6]


@dataclass
class Synthetic:
    daily: pl.DataFrame
    attribution: pl.DataFrame
    contracts: pl.DataFrame
    invoices: pl.DataFrame
    population: pl.DataFrame
    truth: pl.DataFrame  # customer_id, archetype


def _bump(hours, centre, width, height):
    d = np.minimum(np.abs(hours - centre), 24 - np.abs(hours - centre))
    return height * np.exp(-0.5 * (d / width) ** 2)


def _household(h, rng, scale_evening=1.0):
    """A household's own appliance/lighting profile (kWh per hour), varied per customer."""
    return (
        rng.uniform(0.08, 0.18)
        + _bump(h, rng.uniform(6.5, 8.5), rng.uniform(0.7, 1.3), rng.uniform(0.05, 0.2))
        + _bump(h, rng.uniform(17.5, 20.5), rng.uniform(1.3, 2.5), rng.uniform(0.2, 0.45) * scale_evening)
    )


def _is_dst(d: date) -> int:
    """+1 autumn (25 h), -1 spring (23 h), 0 otherwise; hour 3 is the odd one out in Helsinki."""
    if d.weekday() == 6 and d.day >= 25 and d.month in (3, 10):
        return -1 if d.month == 3 else 1
    return 0


@dataclass(frozen=True)
class _Year:
    """What every household's load curve is built from: hours, calendar and weather of the window."""

    h: np.ndarray
    flat: np.ndarray
    weekend: np.ndarray
    month: np.ndarray
    hdd: np.ndarray
    darkness: np.ndarray
    days: int
    hard: bool

    @property
    def light(self) -> np.ndarray:
        return 1.0 + 0.3 * self.darkness[:, None]


def _jitter(rng) -> float:
    return rng.uniform(0.65, 1.35)


def _district_apartment(y: _Year, rng, s: float) -> np.ndarray:
    prof = _household(y.h, rng) * s
    return prof[None, :] * y.light + y.weekend[:, None] * _bump(y.h, 13, 3, 0.08 * s)[None, :]


def _electric_house(y: _Year, rng, s: float) -> np.ndarray:
    prof = _household(y.h, rng, 1.8) * 2.2 * s
    storage = 0.15 if y.hard else 0.55
    heat_shape = storage * np.isin(np.arange(24), NIGHT) / len(NIGHT) + (1 - storage) * y.flat
    heat = 0.13 * _jitter(rng) * s * y.hdd[:, None] * 24 * heat_shape[None, :]
    return prof[None, :] * y.light + heat


def _heat_pump_house(y: _Year, rng, s: float) -> np.ndarray:
    prof = _household(y.h, rng, 1.8) * 2.2 * s
    heat = (0.065 if y.hard else 0.045) * _jitter(rng) * s * y.hdd[:, None] * 24 * y.flat[None, :]
    return prof[None, :] * y.light + heat


def _ev_night_charger(y: _Year, rng, s: float) -> np.ndarray:
    prof = _household(y.h, rng) * 1.5 * s
    p_charge = np.where(y.weekend, 0.25, 0.45) if y.hard else np.where(y.weekend, 0.45, 0.8)
    charge = rng.random(y.days) < p_charge
    kw = 2.2 * _jitter(rng) * (1 + 0.25 * y.darkness)
    ev = np.zeros(24)
    ev[[23, 0, 1, 2, 3, 4]] = 1.0
    return prof[None, :] * y.light + charge[:, None] * kw[:, None] * ev[None, :]


def _summer_cottage(y: _Year, rng, s: float) -> np.ndarray:
    summer = np.isin(y.month, [6, 7, 8])
    p_occ = np.where(summer, np.where(y.weekend, 0.9, 0.35), np.where(y.weekend, 0.25, 0.03))
    p_occ = np.where(y.month == 7, 0.85, p_occ)
    occ = rng.random(y.days) < p_occ
    frost = 0.03 + 0.004 * y.hdd
    use = _household(y.h, rng) * 1.6 * s + _bump(y.h, 19, 1.0, 1.5 * s)  # sauna evening
    return frost[:, None] * np.ones(24)[None, :] + occ[:, None] * use[None, :]


def _home_office(y: _Year, rng, s: float) -> np.ndarray:
    prof = _household(y.h, rng) * 1.2 * s
    office = _bump(y.h, 12, 2.8, (0.25 if y.hard else 0.45) * _jitter(rng) * s)
    return prof[None, :] * y.light + np.where(y.weekend, 0.45, 1.0)[:, None] * office[None, :]


#: archetype -> its household's load (days x 24 hours) before noise
_LOAD = {
    "district_apartment": _district_apartment,
    "electric_house": _electric_house,
    "heat_pump_house": _heat_pump_house,
    "ev_night_charger": _ev_night_charger,
    "summer_cottage": _summer_cottage,
    "home_office": _home_office,
}


def generate(
    n_per_archetype: int = 40,
    end: date = date(2026, 11, 24),
    days: int = 365,
    seed: int = 7,
    multi_point_fraction: float = 0.0,
    missing_rate: float = 0.002,
    archetypes: list[str] | None = None,
    hard: bool = False,
    mover_fraction: float = 0.0,
) -> Synthetic:
    """`mover_fraction` of customers moved in 120-180 days into the window: the point's earlier
    readings (at 1.7x the level) belong to a previous tenant who is not in the population.
    `hard=True` makes archetypes overlap more: flat (non-storage) electric heating, a less
    efficient heat pump, fewer EV charging nights, a smaller home-office bump, noisier days."""
    rng = np.random.default_rng(seed)
    archetypes = archetypes or ARCHETYPES
    arche = np.repeat(np.arange(len(archetypes)), n_per_archetype)
    n = arche.size
    rng.shuffle(arche)
    day_list = [end - timedelta(days=days - 1 - i) for i in range(days)]
    doy = np.array([d.timetuple().tm_yday for d in day_list])
    weekend = np.array([d.weekday() >= 5 for d in day_list])
    month = np.array([d.month for d in day_list])
    # weather shared by everyone: seasonal curve plus an AR(1) anomaly
    anomaly = np.zeros(days)
    for i in range(1, days):
        anomaly[i] = 0.8 * anomaly[i - 1] + rng.normal(0, 2.0)
    temp = 4.5 - 12.5 * np.cos(2 * np.pi * (doy - 20) / 365.25) + anomaly
    hdd = np.clip(17.0 - temp, 0, None)  # heating degree days
    darkness = 0.5 + 0.5 * np.cos(2 * np.pi * (doy - 355) / 365.25)  # 1 at midwinter
    h = np.arange(24, dtype=float)
    flat = np.ones(24) / 24
    kwh = np.zeros((n, days, 24))
    year = _Year(h, flat, weekend, month, hdd, darkness, days, hard)
    for i in range(n):
        a = archetypes[arche[i]]
        s = rng.lognormal(0, 0.25)  # household size
        if a not in _LOAD:
            raise ValueError(a)
        base = _LOAD[a](year, rng, s)
        sd = (0.3, 0.2) if hard else (0.18, 0.12)
        noise = rng.lognormal(0, sd[0], size=(days, 24)) * rng.lognormal(0, sd[1], size=(days, 1))
        kwh[i] = base * noise

    # metering points; optionally split a fraction of customers over two points
    cust = [f"C{1000001 + i:07d}" for i in range(n)]
    mp = [f"6430{rng.integers(10**13, 10**14 - 1):014d}" for _ in range(n)]
    multi = rng.random(n) < multi_point_fraction
    rows_mp, rows_c, rows_kwh = [], [], []
    second = {}
    for i in range(n):
        if multi[i]:
            mp2 = f"6431{rng.integers(10**13, 10**14 - 1):014d}"
            second[i] = mp2
            rows_mp += [mp[i], mp2]
            rows_c += [i, i]
            rows_kwh += [kwh[i] * 0.7, kwh[i] * 0.3]
        else:
            rows_mp.append(mp[i])
            rows_c.append(i)
            rows_kwh.append(kwh[i])
    arr = np.stack(rows_kwh)  # (points, days, 24)
    n_points = arr.shape[0]
    missing = rng.random(arr.shape) < missing_rate
    estimated = (rng.random(arr.shape) < 0.01) & ~missing
    dst = np.array([_is_dst(d) for d in day_list])
    vals = np.round(arr, 4)
    vals = np.where(missing, np.nan, vals)
    spring = dst == -1
    vals[:, spring, 3] = np.nan
    missing[:, spring, 3] = False
    estimated[:, spring, 3] = False
    n_expected = np.where(dst == -1, 23, np.where(dst == 1, 25, 24))
    flat_vals = vals.reshape(n_points * days, 24)
    frame = pl.DataFrame(
        {
            "business_day": np.tile(np.array(day_list, dtype="datetime64[D]"), n_points),
            "metering_point_id": np.repeat(np.array(rows_mp), days),
            "resolution": ["PT1H"] * (n_points * days),
        }
    ).with_columns(pl.col("business_day").cast(pl.Date))
    hours = pl.DataFrame(flat_vals, schema=HOUR_COLS, orient="row").fill_nan(None)
    frame = pl.concat([frame, hours], how="horizontal")
    n_miss = missing.reshape(n_points * days, 24).sum(axis=1)
    n_est = estimated.reshape(n_points * days, 24).sum(axis=1)
    n_exp = np.tile(n_expected, n_points)
    frame = frame.with_columns(
        pl.sum_horizontal(HOUR_COLS).alias("kwh_total"),
        pl.sum_horizontal([HOUR_COLS[x] for x in NIGHT]).alias("night_kwh"),
        pl.Series("n_ok", n_exp - n_miss - n_est, dtype=pl.Int32),
        pl.Series("n_estimated", n_est, dtype=pl.Int32),
        pl.Series("n_missing", n_miss, dtype=pl.Int32),
        pl.Series("n_expected", n_exp, dtype=pl.Int32),
    )
    daily = frame.select(
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
    )
    start = day_list[0]
    movers = rng.random(n) < mover_fraction
    move_in = {i: start + timedelta(days=int(rng.integers(120, 181))) for i in range(n) if movers[i]}
    if move_in:
        prev_points = {mp[i]: d for i, d in move_in.items()}
        prev_points |= {second[i]: d for i, d in move_in.items() if i in second}
        before = pl.col("metering_point_id").replace_strict(prev_points, default=None, return_dtype=pl.Date)
        scaled = pl.col("business_day") < before
        daily = daily.with_columns(
            *(
                pl.when(scaled).then(pl.col(c) * 1.7).otherwise(pl.col(c)).alias(c)
                for c in [*HOUR_COLS, "kwh_total", "night_kwh"]
            )
        )
    attr_rows, contract_rows = [], []
    for i in range(n):
        for k, point in enumerate([mp[i]] + ([second[i]] if i in second else [])):
            cid = f"K{i:06d}{k}"
            if i in move_in:
                attr_rows.append(
                    (point, f"P{i:07d}", f"KP{i:06d}{k}", start - timedelta(days=800), move_in[i] - timedelta(days=1))
                )
                attr_rows.append((point, cust[i], cid, move_in[i], None))
            else:
                attr_rows.append((point, cust[i], cid, start - timedelta(days=400), None))
            fixed = rng.random() < 0.4
            cstart = start - timedelta(days=int(rng.integers(400, 3000)))
            contract_rows.append(
                (
                    cid,
                    cust[i],
                    point,
                    "FIXED24" if fixed else "SPOT",
                    "fixed_term" if fixed else "open_ended",
                    cstart,
                    end + timedelta(days=int(rng.integers(1, 700))) if fixed else None,
                    "summer_cottage" if archetypes[arche[i]] == "summer_cottage" else "apartment",
                    None,
                )
            )
    attribution = pl.DataFrame(
        attr_rows,
        schema={
            "metering_point_id": pl.String,
            "customer_id": pl.String,
            "contract_id": pl.String,
            "valid_from": pl.Date,
            "valid_to": pl.Date,
        },
        orient="row",
    )
    contracts = pl.DataFrame(
        contract_rows,
        schema={
            "contract_id": pl.String,
            "customer_id": pl.String,
            "metering_point_id": pl.String,
            "product_code": pl.String,
            "contract_type": pl.String,
            "start_date": pl.Date,
            "end_date": pl.Date,
            "site_type": pl.String,
            "heating": pl.String,
        },
        orient="row",
    )
    inv_rows = []
    for i in range(n):
        late_p = rng.choice([0.02, 0.3])
        for m in range(12):
            issued = end - timedelta(days=15 + 30 * m)
            due = issued + timedelta(days=14)
            late = rng.random() < late_p
            paid = due + timedelta(days=int(rng.integers(1, 30))) if late else due - timedelta(days=2)
            inv_rows.append(
                (f"I{i:06d}{m:02d}", cust[i], f"K{i:06d}0", issued, due, 50.0, paid, 1 if late else 0, False)
            )
    invoices = pl.DataFrame(
        inv_rows,
        schema={
            "invoice_id": pl.String,
            "customer_id": pl.String,
            "contract_id": pl.String,
            "issued_on": pl.Date,
            "due_on": pl.Date,
            "amount_eur": pl.Float64,
            "paid_on": pl.Date,
            "reminders": pl.Int32,
            "in_collection": pl.Boolean,
        },
        orient="row",
    )
    truth = pl.DataFrame({"customer_id": cust, "archetype": [archetypes[a] for a in arche]})
    return Synthetic(daily, attribution, contracts, invoices, truth.select("customer_id"), truth)
