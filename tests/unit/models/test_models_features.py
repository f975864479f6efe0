"""Customer features on hand-built daily aggregates (docs/tables.md `daily`)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from data_contracts.features import CustomerFeatures
from models.features import (
    FEATURE_TABLE_COLUMNS,
    attribution_periods,
    compute_customer_features,
    contract_features,
    monthly_kwh_shares,
    payment_features,
    profiling_history_days,
)
from models.model_version import feature_data_digest

H = [f"kwh_h{h:02d}" for h in range(24)]
NIGHT = (22, 23, 0, 1, 2, 3, 4, 5, 6)
AS_OF = date(2026, 11, 24)
MP1, MP2, MP3 = "643000000000000011", "643000000000000022", "643000000000000033"


def day_row(day: date, mp: str, hours, n_estimated: int = 0, n_missing: int = 0) -> dict:
    hours = list(hours)
    vals = [None if v is None else float(v) for v in hours]
    present = [v for v in vals if v is not None]
    return {
        "business_day": day,
        "metering_point_id": mp,
        "resolution": "PT1H",
        "kwh_total": sum(present),
        **dict(zip(H, vals, strict=True)),
        "night_kwh": sum(vals[h] for h in NIGHT if vals[h] is not None),
        "n_ok": 24 - n_estimated - n_missing,
        "n_estimated": n_estimated,
        "n_missing": n_missing,
        "n_expected": 24,
    }


def daily_frame(rows: list[dict]) -> pl.DataFrame:
    schema = {
        "business_day": pl.Date,
        "metering_point_id": pl.String,
        "resolution": pl.String,
        "kwh_total": pl.Float64,
        **{h: pl.Float64 for h in H},
        "night_kwh": pl.Float64,
        "n_ok": pl.Int32,
        "n_estimated": pl.Int32,
        "n_missing": pl.Int32,
        "n_expected": pl.Int32,
    }
    return pl.DataFrame(rows, schema=schema)


def attribution(*rows) -> pl.DataFrame:
    return pl.DataFrame(
        [(mp, cust, f"K-{cust}-{mp[-2:]}", vf, vt) for mp, cust, vf, vt in rows],
        schema={
            "metering_point_id": pl.String,
            "customer_id": pl.String,
            "contract_id": pl.String,
            "valid_from": pl.Date,
            "valid_to": pl.Date,
        },
        orient="row",
    )


EMPTY_CONTRACTS = pl.DataFrame(
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
    }
)
EMPTY_INVOICES = pl.DataFrame(
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
    }
)


def features(daily: pl.DataFrame, attr: pl.DataFrame, population: list[str], **kw) -> pl.DataFrame:
    return compute_customer_features(
        daily.lazy(),
        attr,
        kw.pop("contracts", EMPTY_CONTRACTS),
        kw.pop("invoices", EMPTY_INVOICES),
        pl.DataFrame({"customer_id": population}),
        kw.pop("as_of", AS_OF),
        **kw,
    )


def days(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


OPEN = (date(2020, 1, 1), None)


# ------------------------------------------------------------------------------------------------
def test_night_share_peak_hour_and_profile_on_a_hand_computed_customer():
    # 0.5 kWh each night hour (22-07), 0.2 otherwise, 3.0 at 19:00
    hours = [0.5 if h in NIGHT else 0.2 for h in range(24)]
    hours[19] = 3.0
    daily = daily_frame([day_row(d, MP1, hours) for d in days(date(2026, 11, 1), 10)])
    f = features(daily, attribution((MP1, "C1", *OPEN)), ["C1"]).row(0, named=True)
    total = 9 * 0.5 + 14 * 0.2 + 3.0  # 10.3 kWh a day
    assert f["night_share"] == pytest.approx(4.5 / total)
    assert f["peak_hour"] == 19
    assert f["share_h19"] == pytest.approx(3.0 / total)
    assert sum(f[f"share_h{h:02d}"] for h in range(24)) == pytest.approx(1.0)
    assert f["evening_share"] == pytest.approx((3.0 + 4 * 0.2) / total)
    assert f["annual_kwh"] == pytest.approx(total * 365)
    assert f["days_with_readings"] == 10
    assert f["base_load_kwh"] == pytest.approx(0.2)  # constant daily minimum: exact
    assert f["load_factor"] == pytest.approx(total / 24 / 3.0)
    assert f["daily_variability"] == pytest.approx(0.0, abs=1e-9)


def test_winter_summer_ratio_and_annual_normalisation():
    winter = [day_row(d, MP1, [2.0] * 24) for d in days(date(2026, 1, 5), 20)]  # 48 kWh/day
    summer = [day_row(d, MP1, [0.5] * 24) for d in days(date(2026, 7, 5), 20)]  # 12 kWh/day
    f = features(daily_frame(winter + summer), attribution((MP1, "C1", *OPEN)), ["C1"]).row(0, named=True)
    mean_daily = (20 * 48 + 20 * 12) / 40
    eps = max(0.01 * mean_daily, 0.05)
    assert f["winter_summer_ratio"] == pytest.approx((48 + eps) / (12 + eps))
    # 40 days of data normalised to a year
    assert f["annual_kwh"] == pytest.approx(mean_daily * 365)
    # two flat levels: p10 of the daily minima is the summer level; the histogram estimate is
    # within one bucket (about 16 %) and never below the smallest daily minimum
    assert 0.5 <= f["base_load_kwh"] <= 0.5 * 1.16


def test_winter_summer_ratio_is_robust_when_summer_is_zero():
    winter = [day_row(d, MP1, [1.0] * 24) for d in days(date(2026, 1, 5), 20)]
    summer = [day_row(d, MP1, [0.0] * 24) for d in days(date(2026, 7, 5), 20)]
    f = features(daily_frame(winter + summer), attribution((MP1, "C1", *OPEN)), ["C1"]).row(0, named=True)
    assert f["winter_summer_ratio"] is not None
    assert 0 < f["winter_summer_ratio"] <= 100.0


def test_weekday_weekend_ratio_and_weekday_daytime_share():
    rows = []
    for d in days(date(2026, 9, 7), 28):  # 2026-09-07 is a Monday
        if d.weekday() < 5:
            hours = [0.1] * 24
            for h in range(8, 17):
                hours[h] = 1.0  # home office
        else:
            hours = [0.2] * 24
        rows.append(day_row(d, MP1, hours))
    f = features(daily_frame(rows), attribution((MP1, "C1", *OPEN)), ["C1"]).row(0, named=True)
    weekday_total, weekend_total = 9 * 1.0 + 15 * 0.1, 24 * 0.2
    mean_daily = (20 * weekday_total + 8 * weekend_total) / 28
    eps = max(0.01 * mean_daily, 0.05)
    assert f["weekday_weekend_ratio"] == pytest.approx((weekday_total + eps) / (weekend_total + eps))
    assert f["weekday_daytime_share"] == pytest.approx(9.0 / weekday_total)


def test_quality_shares_and_missing_hours():
    rows = [day_row(d, MP1, [1.0] * 24) for d in days(date(2026, 10, 1), 9)]
    rows.append(day_row(date(2026, 10, 10), MP1, [1.0] * 20 + [None] * 4, n_estimated=2, n_missing=4))
    f = features(daily_frame(rows), attribution((MP1, "C1", *OPEN)), ["C1"]).row(0, named=True)
    assert f["estimated_share"] == pytest.approx(2 / 240)
    assert f["missing_share"] == pytest.approx(4 / 240)
    assert f["days_with_readings"] == 10
    # the partial day counts as 20/24 of a day, so the annual figure is not biased down
    assert f["annual_kwh"] == pytest.approx((9 * 24 + 20) / (9 + 20 / 24) * 365)


def test_several_metering_points_are_combined_per_day_first():
    # point 1 high at night, point 2 high by day: the combined day never drops below 1.1
    a = [1.0 if h < 7 else 0.2 for h in range(24)]
    b = [0.1 if h < 7 else 1.0 for h in range(24)]
    rows = []
    for d in days(date(2026, 10, 1), 12):
        rows += [day_row(d, MP1, a), day_row(d, MP2, b)]
    attr = attribution((MP1, "C1", *OPEN), (MP2, "C1", *OPEN))
    f = features(daily_frame(rows), attr, ["C1"])
    assert f.height == 1
    r = f.row(0, named=True)
    assert r["days_with_readings"] == 12  # distinct days, not point-days
    assert r["metering_points"] == 2
    assert r["base_load_kwh"] == pytest.approx(1.1)  # min of the sum, not sum of the minima
    day_total = sum(a) + sum(b)
    assert r["annual_kwh"] == pytest.approx(day_total * 365)
    assert r["load_factor"] == pytest.approx(day_total / 24 / 1.2)
    assert r["night_share"] == pytest.approx(sum(a[h] + b[h] for h in NIGHT) / day_total)


def test_readings_count_only_inside_attribution_periods():
    # one point, two tenants: C1 until 2026-10-15, C2 from 2026-10-16; nobody before 2026-10-06
    rows = [day_row(d, MP1, [1.0] * 24) for d in days(date(2026, 10, 1), 15)]
    rows += [day_row(d, MP1, [3.0] * 24) for d in days(date(2026, 10, 16), 15)]
    attr = attribution(
        (MP1, "C1", date(2026, 10, 6), date(2026, 10, 15)),
        (MP1, "C1", date(2026, 10, 8), date(2026, 10, 12)),  # overlapping duplicate: counted once
        (MP1, "C2", date(2026, 10, 16), None),
    )
    f = features(daily_frame(rows), attr, ["C1", "C2"]).sort("customer_id")
    c1, c2 = f.row(0, named=True), f.row(1, named=True)
    assert c1["days_with_readings"] == 10
    assert c1["annual_kwh"] == pytest.approx(24 * 365)
    assert c2["days_with_readings"] == 15
    assert c2["annual_kwh"] == pytest.approx(72 * 365)
    periods = attribution_periods(attr, AS_OF)
    assert periods.filter(pl.col("customer_id") == "C1").height == 1


def test_only_the_population_is_profiled_and_everyone_in_it_gets_a_row():
    rows = [day_row(d, mp, [1.0] * 24) for d in days(date(2026, 10, 1), 5) for mp in (MP1, MP2)]
    attr = attribution((MP1, "C1", *OPEN), (MP2, "OBJECTOR", *OPEN), (MP3, "C3", *OPEN))
    f = features(daily_frame(rows), attr, ["C1", "C3", "C9"])
    assert f["customer_id"].to_list() == ["C1", "C3", "C9"]
    assert "OBJECTOR" not in f["customer_id"].to_list()
    by_id = {r["customer_id"]: r for r in f.to_dicts()}
    assert by_id["C3"]["days_with_readings"] == 0 and by_id["C3"]["annual_kwh"] is None
    assert by_id["C9"]["days_with_readings"] == 0
    assert f.columns == FEATURE_TABLE_COLUMNS
    CustomerFeatures.validate(f)


def test_window_is_trailing_365_days_including_as_of():
    rows = [day_row(d, MP1, [1.0] * 24) for d in (AS_OF - timedelta(days=365), AS_OF - timedelta(days=364), AS_OF)]
    rows.append(day_row(AS_OF + timedelta(days=1), MP1, [1.0] * 24))
    hist = profiling_history_days(daily_frame(rows).lazy(), attribution((MP1, "C1", *OPEN)), AS_OF)
    assert hist.to_dicts() == [{"customer_id": "C1", "days_with_readings": 2}]


def test_profiling_history_days_for_the_180_day_rule():
    rows = [day_row(d, MP1, [1.0] * 24) for d in days(AS_OF - timedelta(days=199), 200)]
    rows += [day_row(d, MP2, [1.0] * 24) for d in days(AS_OF - timedelta(days=99), 100)]
    rows += [day_row(d, MP3, [None] * 24, n_missing=24) for d in days(AS_OF - timedelta(days=9), 10)]
    attr = attribution((MP1, "C1", *OPEN), (MP2, "C2", *OPEN), (MP3, "C3", *OPEN))
    hist = profiling_history_days(daily_frame(rows).lazy(), attr, AS_OF)
    got = dict(zip(hist["customer_id"], hist["days_with_readings"], strict=True))
    assert got == {"C1": 200, "C2": 100, "C3": 0}
    assert {c for c, n in got.items() if n >= 180} == {"C1"}


def test_chunked_streaming_gives_identical_features(synthetic):
    s = synthetic
    pop = s.population.head(60)
    kw = dict(as_of=AS_OF)
    whole = compute_customer_features(
        s.daily.lazy(), s.attribution, s.contracts, s.invoices, pop, **kw, chunk_rows=None
    )
    chunked = compute_customer_features(
        s.daily.lazy(), s.attribution, s.contracts, s.invoices, pop, **kw, chunk_rows=2_000
    )
    assert whole.equals(chunked)
    assert feature_data_digest(whole) == feature_data_digest(chunked)


def test_hive_partitioned_parquet_with_string_partition_values(tmp_path, synthetic):
    s = synthetic
    pop = s.population.head(20)
    attr = s.attribution.join(pop, on="customer_id", how="semi")
    part = s.daily.join(attr.select("metering_point_id"), on="metering_point_id", how="semi")
    part.write_parquet(tmp_path / "daily", partition_by=["business_day"])
    scanned = pl.scan_parquet(tmp_path / "daily", hive_partitioning=True, try_parse_hive_dates=False)
    assert scanned.collect_schema()["business_day"] == pl.String
    from_disk = compute_customer_features(scanned, attr, s.contracts, s.invoices, pop, AS_OF, chunk_rows=5_000)
    in_memory = compute_customer_features(s.daily.lazy(), attr, s.contracts, s.invoices, pop, AS_OF)
    assert from_disk.equals(in_memory)


def test_features_are_reproducible_bit_for_bit(synthetic, synthetic_features):
    s = synthetic
    again = compute_customer_features(s.daily.lazy(), s.attribution, s.contracts, s.invoices, s.population, AS_OF)
    assert feature_data_digest(again) == feature_data_digest(synthetic_features)


def test_synthetic_feature_table_satisfies_its_contract(synthetic_features):
    CustomerFeatures.validate(synthetic_features, lazy=True)
    assert synthetic_features.height == 360
    assert synthetic_features["days_with_readings"].min() >= 360


def test_monthly_shares_sum_to_one(synthetic):
    s = synthetic
    m = monthly_kwh_shares(s.daily.lazy(), s.attribution, AS_OF)
    sums = m.group_by("customer_id").agg(pl.col("share").sum())
    assert sums["share"].to_numpy() == pytest.approx(1.0)
    assert set(m["month"].unique().to_list()) == set(range(1, 13))


# ------------------------------------------------------------------------------------------------
def test_payment_features_hand_computed():
    inv = pl.DataFrame(
        [
            ("I1", "C1", "K1", date(2026, 9, 1), date(2026, 9, 15), 50.0, date(2026, 9, 14), 0, False),  # on time
            ("I2", "C1", "K1", date(2026, 10, 1), date(2026, 10, 15), 50.0, date(2026, 10, 25), 1, False),  # 10 late
            ("I3", "C1", "K1", date(2026, 11, 1), date(2026, 11, 14), 50.0, None, 2, True),  # unpaid, 10 late
            ("I4", "C1", "K1", date(2026, 11, 20), date(2026, 12, 4), 50.0, None, 0, False),  # not yet due
            ("I5", "C1", "K1", date(2026, 11, 2), date(2026, 11, 2), -20.0, None, 0, False),  # credit note
            ("I6", "C1", "K1", date(2025, 1, 1), date(2025, 1, 15), 50.0, date(2025, 3, 1), 3, True),  # too old
            (
                "I7",
                "C2",
                "K2",
                date(2026, 10, 1),
                date(2026, 10, 15),
                50.0,
                date(2026, 12, 1),
                0,
                False,
            ),  # paid after as_of
        ],
        schema=EMPTY_INVOICES.schema,
        orient="row",
    )
    p = {r["customer_id"]: r for r in payment_features(inv, AS_OF).to_dicts()}
    # DuckDB hands amount_eur over as DECIMAL(12,2): same answer
    as_decimal = inv.with_columns(pl.col("amount_eur").cast(pl.Decimal(12, 2)))
    assert (
        payment_features(as_decimal, AS_OF).sort("customer_id").equals(payment_features(inv, AS_OF).sort("customer_id"))
    )
    assert p["C1"]["invoices_12m"] == 5
    assert p["C1"]["late_share"] == pytest.approx(2 / 3)
    assert p["C1"]["mean_days_late"] == pytest.approx((0 + 10 + 10) / 3)
    assert p["C1"]["reminders_12m"] == 3
    assert p["C1"]["collections_12m"] == 1
    # a payment recorded after the run day is not known yet: still unpaid and 40 days late
    assert p["C2"]["late_share"] == 1.0 and p["C2"]["mean_days_late"] == 40.0


def test_contract_features_primary_tenure_and_fixed_term():
    c = pl.DataFrame(
        [
            ("K1", "C1", MP1, "SPOT", "open_ended", date(2020, 1, 1), date(2023, 1, 1), "apartment", None),
            ("K2", "C1", MP1, "FIXED24", "fixed_term", date(2023, 1, 2), date(2027, 1, 23), "apartment", "district"),
            ("K3", "C1", MP2, "SPOT", "open_ended", date(2024, 6, 1), None, "summer_cottage", None),
            ("K4", "C2", MP3, "SPOT", "open_ended", date(2025, 1, 1), None, "detached_house", "electric"),
            ("K5", "C3", MP3, "FIXED12", "fixed_term", date(2024, 1, 1), date(2025, 1, 1), "apartment", None),
            ("K6", "C3", MP2, "GREEN_SPOT", "open_ended", date(2021, 1, 1), date(2023, 1, 1), "apartment", None),
        ],
        schema=EMPTY_CONTRACTS.schema,
        orient="row",
    )
    f = {r["customer_id"]: r for r in contract_features(c, AS_OF).to_dicts()}
    assert f["C1"]["product_code"] == "FIXED24" and f["C1"]["contract_type"] == "fixed_term"
    assert f["C1"]["days_to_fixed_term_end"] == 60
    assert f["C1"]["tenure_days"] == (AS_OF - date(2020, 1, 1)).days
    assert f["C1"]["active_contracts"] == 2
    assert f["C2"]["days_to_fixed_term_end"] is None
    assert f["C2"]["heating"] == "electric"
    # nothing active: the most recently ended contract, and no fixed-term countdown
    assert f["C3"]["active_contracts"] == 0 and f["C3"]["days_to_fixed_term_end"] is None
    assert f["C3"]["product_code"] == "FIXED12"
    assert f["C3"]["tenure_days"] == (AS_OF - date(2021, 1, 1)).days
