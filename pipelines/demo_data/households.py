"""Household consumption model: archetypes, weather and one vectorised day at a time.

Why a model rather than random numbers: the segmentation downstream clusters customers on annual
kWh, winter/summer ratio, night share (22-07), weekday/weekend ratio and the normalised mean daily
profile. Each archetype is built from physical components (standby, appliances with a daily shape,
temperature-driven heating, a night-time water heater, EV charging blocks, a Saturday sauna, a home
office) so that the archetypes separate on exactly those features, while per-household parameters
and weather-like noise keep every household different.

Everything is computed on the quarter-hour grid of the Helsinki business day (92/96/100 slots) for
all supply segments active that day at once, as one [rows x slots] numpy matrix; hourly points sum
four quarters. There is no Python loop per reading.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from .timeutil import DaySlots, is_weekend_like

ARCHETYPES = (
    "district_heated_apartment",
    "electric_heated_house",
    "heat_pump_house",
    "ev_night_charger",
    "summer_cottage",
    "home_office",
)
PROFILES = ARCHETYPES + ("business", "vacant")
P = {name: i for i, name in enumerate(PROFILES)}

# Relative appliance load by local hour (weekday, weekend): morning and evening peaks, a dip while
# people are at work, a later and flatter morning at weekends.
_APP_WD = [
    0.45,
    0.38,
    0.35,
    0.34,
    0.34,
    0.38,
    0.65,
    0.95,
    0.85,
    0.70,
    0.65,
    0.68,
    0.72,
    0.68,
    0.68,
    0.78,
    1.05,
    1.35,
    1.55,
    1.60,
    1.50,
    1.30,
    1.00,
    0.70,
]
_APP_WE = [
    0.55,
    0.45,
    0.38,
    0.35,
    0.34,
    0.35,
    0.40,
    0.55,
    0.80,
    1.05,
    1.20,
    1.25,
    1.25,
    1.15,
    1.05,
    1.05,
    1.15,
    1.35,
    1.50,
    1.50,
    1.40,
    1.25,
    1.00,
    0.75,
]
# Apartment evening peak is sharper (cooking, sauna-less, TV)
_APT_WD = [
    0.40,
    0.33,
    0.30,
    0.30,
    0.30,
    0.33,
    0.60,
    0.95,
    0.80,
    0.55,
    0.50,
    0.52,
    0.58,
    0.52,
    0.52,
    0.65,
    1.00,
    1.45,
    1.80,
    1.90,
    1.75,
    1.45,
    1.05,
    0.65,
]
_BIZ_WD = [
    0.30,
    0.30,
    0.30,
    0.30,
    0.30,
    0.35,
    0.60,
    1.30,
    1.85,
    1.95,
    2.00,
    1.95,
    1.90,
    1.95,
    1.95,
    1.85,
    1.50,
    1.00,
    0.60,
    0.40,
    0.35,
    0.32,
    0.30,
    0.30,
]
_BIZ_WE = [0.30] * 24
# Storage-style electric heating ("yösähkö") favours the cheap night hours
_HEAT_NIGHT = [1.6 if (h >= 22 or h < 7) else 0.72 for h in range(24)]
_HEAT_FLAT = [
    0.95,
    0.95,
    0.95,
    0.97,
    1.00,
    1.08,
    1.15,
    1.12,
    1.05,
    1.00,
    0.97,
    0.95,
    0.93,
    0.92,
    0.92,
    0.94,
    0.98,
    1.02,
    1.05,
    1.05,
    1.02,
    1.00,
    0.98,
    0.96,
]


def _norm(rows):
    a = np.asarray(rows, dtype=np.float64)
    return a / a.sum(axis=-1, keepdims=True)


# shape tables [shape_id, 24]; shape 0..2 = households, 3 = business
APP_SHAPES_WD = _norm([_APP_WD, _APT_WD, _APP_WD, _BIZ_WD])
APP_SHAPES_WE = _norm([_APP_WE, _APP_WE, _APP_WE, _BIZ_WE])
HEAT_SHAPES = _norm([_HEAT_FLAT, _HEAT_NIGHT])


@dataclass
class SegmentParams:
    """Per-segment (one supply period of one metering point) consumption parameters, as arrays."""

    profile: np.ndarray  # int8
    app_kwh: np.ndarray  # appliance energy per day
    base_kw: np.ndarray  # standby
    app_shape: np.ndarray  # int8 index into APP_SHAPES_*
    heat_k: np.ndarray  # kWh per degree-day
    t_base: np.ndarray
    heat_shape: np.ndarray
    water_kwh: np.ndarray  # nightly water heater energy (0 = none)
    water_start: np.ndarray  # local hour
    ev_kwh: np.ndarray  # mean energy per charging session (0 = none)
    ev_kw: np.ndarray
    ev_start: np.ndarray  # local hour; 24 = just after midnight
    ev_p: np.ndarray  # probability of charging on a given night
    sauna_kw: np.ndarray
    office_kw: np.ndarray
    cottage_p: np.ndarray  # probability of being at the cottage on a summer weekend day
    household: np.ndarray  # index of the owning customer (for vacations); -1 for none


def make_params(profiles: list[str], owners: list[int], rng: np.random.Generator) -> SegmentParams:
    """Draw per-segment parameters around each archetype's typical values."""
    n = len(profiles)
    prof = np.array([P[p] for p in profiles], dtype=np.int8)
    ln = lambda s: rng.lognormal(0.0, s, n)  # noqa: E731
    u = rng.random((8, n))
    app = np.zeros(n)
    base = np.zeros(n)
    shape = np.zeros(n, dtype=np.int8)
    heat_k = np.zeros(n)
    t_base = 16.5 + rng.normal(0, 0.8, n)
    heat_shape = np.zeros(n, dtype=np.int8)
    water = np.zeros(n)
    water_start = np.where(u[0] < 0.7, 22, 23).astype(np.int8)
    ev_kwh = np.zeros(n)
    ev_kw = np.choose((u[1] * 3).astype(int), [3.7, 7.4, 11.0])
    ev_start = np.choose((u[2] * 4).astype(int), [22, 22, 23, 24]).astype(np.int8)
    ev_p = 0.72 + 0.2 * u[3]
    sauna = np.zeros(n)
    office = np.zeros(n)
    cottage_p = 0.45 + 0.35 * u[4]

    def sel(name):
        return prof == P[name]

    m = sel("district_heated_apartment")
    app[m], base[m], shape[m] = 4.6 * ln(0.28)[m], 0.075 * ln(0.25)[m], 1
    m = sel("home_office")
    app[m], base[m], shape[m] = 5.0 * ln(0.25)[m], 0.09 * ln(0.25)[m], 1
    office[m] = 0.32 * ln(0.25)[m]
    m = sel("heat_pump_house")
    app[m], base[m], shape[m] = 6.5 * ln(0.22)[m], 0.13 * ln(0.2)[m], 0
    heat_k[m], heat_shape[m] = 1.15 * ln(0.15)[m], 0
    water[m] = np.where(u[5][m] < 0.75, 4.5 * ln(0.2)[m], 0.0)
    sauna[m] = 6.0 + 3.0 * u[6][m]
    m = sel("electric_heated_house")
    app[m], base[m], shape[m] = 7.5 * ln(0.2)[m], 0.15 * ln(0.2)[m], 0
    heat_k[m], heat_shape[m] = 2.5 * ln(0.13)[m], 1
    water[m] = 8.0 * ln(0.15)[m]
    sauna[m] = 6.0 + 3.0 * u[6][m]
    m = sel("ev_night_charger")
    app[m], base[m], shape[m] = 6.5 * ln(0.2)[m], 0.11 * ln(0.2)[m], 0
    heat_k[m], heat_shape[m] = 0.35 * ln(0.3)[m], 0
    ev_kwh[m] = 13.0 * ln(0.2)[m]
    sauna[m] = np.where(u[6][m] < 0.6, 6.0 + 3.0 * u[7][m], 0.0)
    m = sel("summer_cottage")
    app[m], base[m], shape[m] = 9.0 * ln(0.25)[m], 0.03 * ln(0.35)[m], 2
    heat_k[m], heat_shape[m] = 0.9 * ln(0.2)[m], 0
    sauna[m] = 7.0 + 2.0 * u[6][m]
    m = sel("business")
    app[m], base[m], shape[m] = 38.0 * ln(0.6)[m], 0.6 * ln(0.5)[m], 3
    heat_k[m], heat_shape[m] = 0.6 * ln(0.5)[m], 0
    m = sel("vacant")
    base[m] = 0.03 * ln(0.3)[m]
    return SegmentParams(
        prof,
        app,
        base,
        shape,
        heat_k,
        t_base,
        heat_shape,
        water,
        water_start,
        ev_kwh,
        ev_kw,
        ev_start,
        ev_p,
        sauna,
        office,
        cottage_p,
        np.asarray(owners, dtype=np.int64),
    )


def temperature_series(first: dt.date, n_days: int, rng: np.random.Generator) -> np.ndarray:
    """Daily mean outdoor temperature, southern Finland: a seasonal cycle (about -6 °C in early
    February, +17 °C in late July) plus a smooth AR(1) anomaly that is larger in winter (cold snaps).
    Shared by every household, so a cold week shows up in everyone's heating."""
    doy = np.array([(first + dt.timedelta(days=i)).timetuple().tm_yday for i in range(n_days)])
    seasonal = 5.5 - 11.5 * np.cos(2 * np.pi * (doy - 32) / 365.25)
    winterness = np.clip(-np.cos(2 * np.pi * (doy - 207) / 365.25), 0, 1)
    anomaly = np.zeros(n_days)
    a = rng.normal(0, 3)
    shocks = rng.normal(0, 1, n_days)
    for i in range(n_days):
        a = 0.86 * a + shocks[i] * (1.6 + 1.6 * winterness[i])
        anomaly[i] = a
    return seasonal + anomaly


def vacations(
    n_households: int, years: list[int], rng: np.random.Generator
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Summer holiday per household and year: (first day ordinal, last day ordinal). Finns take
    most of their holiday in late June and July; the cottage is occupied then."""
    out = {}
    for y in years:
        start = dt.date(y, 7, 1).toordinal() + rng.integers(-22, 25, n_households)
        length = rng.integers(7, 24, n_households)
        out[y] = (start, start + length - 1)
    return out


class DayModel:
    """Computes the quarter-hour consumption matrix of one day for a set of active segments.

    Block loads (water heater, EV charging, sauna) can run past midnight; the remainder is carried
    into the next day through per-segment carry arrays, so a 23:00 EV session appears at 00-03 of
    the next business day as it would on a real meter.
    """

    def __init__(
        self,
        params: SegmentParams,
        temps: np.ndarray,
        first_day: dt.date,
        vac: dict[int, tuple[np.ndarray, np.ndarray]],
    ):
        self.p = params
        self.temps = temps
        self.first_day = first_day
        self.vac = vac
        n = len(params.profile)
        self.carry_q = np.zeros((3, n), dtype=np.int64)  # quarters still to run: water, ev, sauna
        self.carry_kw = np.zeros((3, n))

    def day(self, d: dt.date, slots: DaySlots, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Quarter-hour kWh matrix [len(rows), slots.n] for segments `rows` on day d."""
        p = self.p
        k = rows.size
        n = slots.n
        prof = p.profile[rows]
        di = (d - self.first_day).days
        t_out = self.temps[di]
        doy = d.timetuple().tm_yday
        weekend = is_weekend_like(d)
        hours = slots.local_hour.astype(np.int64)
        t_h = t_out + rng.normal(0, 1.0, k)  # each house feels the weather a bit differently
        hdd = np.maximum(0.0, p.t_base[rows] - t_h)

        owners = p.household[rows]
        vs, ve = self.vac.get(d.year, (None, None))
        if vs is not None:
            o = np.where(owners >= 0, owners, 0)
            on_vac = (owners >= 0) & (vs[o] <= d.toordinal()) & (d.toordinal() <= ve[o])
        else:
            on_vac = np.zeros(k, dtype=bool)

        is_cottage = prof == P["summer_cottage"]
        is_biz = prof == P["business"]
        summer = 135 <= doy <= 260
        if summer:
            occ_p = np.where(weekend or d.weekday() == 4, p.cottage_p[rows], 0.04)
        else:
            occ_p = np.full(k, 0.22 if weekend and d in _winter_holidays(d.year) else 0.05 if weekend else 0.01)
        occupied = is_cottage & ((rng.random(k) < occ_p) | on_vac)
        present = np.where(is_cottage, occupied, ~on_vac)

        light = 1.0 + 0.22 * np.cos(2 * np.pi * (doy - 355) / 365.25)
        e_app = p.app_kwh[rows] * light * (1.12 if weekend else 1.0) * rng.lognormal(0, 0.18, k)
        e_app = np.where(present, e_app, np.where(is_cottage, 0.0, e_app * 0.12))
        winterness = max(0.0, float(np.cos(2 * np.pi * (doy - 20) / 365.25)))
        e_app = np.where(
            is_biz,
            p.app_kwh[rows] * (0.33 if weekend else 1.0) * (1 + 0.25 * winterness) * rng.lognormal(0, 0.08, k),
            e_app,
        )
        cop = 1.0 + 0.025 * np.maximum(0.0, -t_h)  # heat pumps lose efficiency in the cold
        e_heat = p.heat_k[rows] * hdd * cop * rng.lognormal(0, 0.1, k)
        e_heat = np.where(is_cottage, np.where(occupied, p.heat_k[rows] * np.maximum(0, 19 - t_h), 0.0), e_heat)

        shapes = APP_SHAPES_WE if weekend else APP_SHAPES_WD
        m = np.repeat(p.base_kw[rows][:, None] / 4.0, n, axis=1)
        m += e_app[:, None] * shapes[p.app_shape[rows]][:, hours] / 4.0
        m += e_heat[:, None] * HEAT_SHAPES[p.heat_shape[rows]][:, hours] / 4.0
        office_on = (p.office_kw[rows] > 0) & (not weekend) & ~on_vac & (rng.random(k) < 0.85)
        office_hours = ((hours >= 8) & (hours <= 16)).astype(np.float64)
        m += np.where(office_on, p.office_kw[rows], 0.0)[:, None] * office_hours[None, :] / 4.0
        m *= rng.gamma(7.0, 1 / 7.0, m.shape)

        slot_idx = np.arange(n)
        # carried-over blocks from yesterday evening
        for c in range(3):
            q = self.carry_q[c, rows]
            if q.any():
                m += (slot_idx[None, :] < q[:, None]) * (self.carry_kw[c, rows] / 4.0)[:, None]
            self.carry_q[c, rows] = 0
        # water heater every night
        water_q = np.where(present | ~is_cottage, np.ceil(p.water_kwh[rows] / 3.0 * 4), 0).astype(np.int64)
        self._block(m, rows, 0, slots, p.water_start[rows], water_q, np.full(k, 3.0), slot_idx)
        # EV charging most nights
        charge = (p.ev_kwh[rows] > 0) & ~on_vac & (rng.random(k) < p.ev_p[rows])
        ev_e = p.ev_kwh[rows] * rng.lognormal(0, 0.3, k)
        ev_q = np.where(charge, np.ceil(ev_e / p.ev_kw[rows] * 4), 0).astype(np.int64)
        self._block(m, rows, 1, slots, p.ev_start[rows], ev_q, p.ev_kw[rows], slot_idx)
        # sauna: Saturday evening at home, most evenings at the cottage
        sat = d.weekday() == 5
        sauna_on = (p.sauna_kw[rows] > 0) & np.where(
            is_cottage, occupied & (rng.random(k) < 0.75), present & (rng.random(k) < (0.8 if sat else 0.08))
        )
        sauna_start = np.where(rng.random(k) < 0.6, 18, 19).astype(np.int64)
        sauna_q = np.where(sauna_on, rng.integers(5, 9, k), 0)
        self._block(m, rows, 2, slots, sauna_start, sauna_q, p.sauna_kw[rows], slot_idx)
        return m

    def _block(self, m, rows, c, slots: DaySlots, start_hour, n_q, kw, slot_idx):
        active = n_q > 0
        if not active.any():
            return
        first = np.array([slots.first_slot_at_or_after_hour(h) for h in range(25)])
        start = first[np.minimum(start_hour.astype(np.int64), 24)]
        stop = start + n_q
        mask = (slot_idx[None, :] >= start[:, None]) & (slot_idx[None, :] < stop[:, None]) & active[:, None]
        m += mask * (kw / 4.0)[:, None]
        over = np.maximum(0, stop - slots.n) * active
        self.carry_q[c, rows] = over
        self.carry_kw[c, rows] = kw


def _winter_holidays(year: int) -> frozenset:
    """Christmas, the February ski week and Easter: the times a cottage gets winter visitors."""
    from .timeutil import easter

    days = {dt.date(year, 12, d) for d in range(22, 32)} | {dt.date(year, 1, d) for d in range(1, 7)}
    ski = dt.date(year, 2, 16)
    days |= {ski + dt.timedelta(days=i) for i in range(14)}
    e = easter(year)
    days |= {e + dt.timedelta(days=i) for i in range(-3, 2)}
    return frozenset(days)


# Rough monthly share of annual energy by archetype; used only to bill months before the window.
MONTH_WEIGHTS = {
    "district_heated_apartment": [1.15, 1.08, 1.03, 0.95, 0.9, 0.82, 0.75, 0.85, 0.95, 1.05, 1.15, 1.25],
    "home_office": [1.15, 1.08, 1.03, 0.97, 0.92, 0.85, 0.72, 0.88, 0.98, 1.05, 1.12, 1.2],
    "heat_pump_house": [1.65, 1.5, 1.3, 0.95, 0.7, 0.5, 0.45, 0.5, 0.7, 1.0, 1.3, 1.5],
    "electric_heated_house": [1.8, 1.65, 1.4, 0.95, 0.62, 0.42, 0.38, 0.45, 0.65, 1.0, 1.38, 1.65],
    "ev_night_charger": [1.25, 1.15, 1.08, 0.98, 0.92, 0.85, 0.7, 0.88, 0.95, 1.02, 1.1, 1.2],
    "summer_cottage": [0.35, 0.4, 0.4, 0.55, 0.9, 2.0, 3.2, 2.0, 0.8, 0.5, 0.3, 0.45],
    "business": [1.15, 1.1, 1.05, 1.0, 0.95, 0.9, 0.75, 0.9, 1.0, 1.05, 1.1, 1.1],
    "vacant": [1.0] * 12,
}
TYPICAL_ANNUAL_KWH = {
    "district_heated_apartment": 2400,
    "home_office": 4300,
    "heat_pump_house": 12000,
    "electric_heated_house": 21000,
    "ev_night_charger": 9500,
    "summer_cottage": 1400,
    "business": 22000,
    "vacant": 250,
}
