"""Contract of `customer_features`: one row per customer of the profiling population.

The table is strict: a column that is not declared here is rejected, and the personal columns
below are rejected by name with a clear message, so an identity code, a name, an address or a
contact detail can never slip into the clustering input.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

SHARE_COLUMNS = [f"share_h{h:02d}" for h in range(24)]

#: Columns that must never appear in a feature table (GDPR: identifiers and contact data are not
#: features; `customer_id` is only the key).
FORBIDDEN_COLUMNS = frozenset(
    {
        "personal_id",
        "business_id",
        "first_name",
        "last_name",
        "company_name",
        "email",
        "phone",
        "phone_e164",
        "street_address",
        "postal_code",
        "city",
        "birth_date",
        "pseudonym",
    }
)

#: Numeric columns the clustering uses, in this order: one signal per household trait, so no trait
#: is counted twice (load factor and day-to-day variability mostly restate the summer-cottage
#: signal and were left out after measuring; see models/segmentation.py):
#:   level (annual kWh), seasonality (winter/summer), night use (EV charging, storage heating),
#:   weekday daytime use (home office), weekly rhythm (weekday/weekend).
#: Payment and contract facts describe segments but do not drive them.
FEATURE_COLUMNS = [
    "annual_kwh",
    "winter_summer_ratio",
    "night_share",
    "weekday_daytime_share",
    "weekday_weekend_ratio",
]

#: Where in the rows the key centroid features come from; used by the segment catalogue.
KEY_CENTROID_COLUMNS = [
    "annual_kwh",
    "winter_summer_ratio",
    "night_share",
    "weekday_daytime_share",
    "evening_share",
    "weekday_weekend_ratio",
    "load_factor",
    "base_load_kwh",
    "peak_hour",
]


def _share(nullable: bool = True) -> pa.Column:
    return pa.Column(pl.Float64, pa.Check.in_range(0.0, 1.0), nullable=nullable)


def _nonneg_float(nullable: bool = True, le: float | None = None) -> pa.Column:
    checks = [pa.Check.ge(0.0)] + ([pa.Check.le(le)] if le is not None else [])
    return pa.Column(pl.Float64, checks, nullable=nullable)


def _nonneg_int(nullable: bool = False, le: int | None = None) -> pa.Column:
    checks = [pa.Check.ge(0)] + ([pa.Check.le(le)] if le is not None else [])
    return pa.Column(pl.Int32, checks, nullable=nullable)


_COLUMNS: dict[str, pa.Column] = {
    "customer_id": pa.Column(pl.String, nullable=False, unique=True),
    "annual_kwh": _nonneg_float(),
    "winter_summer_ratio": _nonneg_float(le=100.0),
    "night_share": _share(),
    "day_share": _share(),
    "evening_share": _share(),
    "weekday_daytime_share": _share(),
    "weekday_weekend_ratio": _nonneg_float(le=10.0),
    "peak_hour": pa.Column(pl.Int32, pa.Check.in_range(0, 23), nullable=True),
    **{c: _share() for c in SHARE_COLUMNS},
    "base_load_kwh": _nonneg_float(),
    "load_factor": _share(),
    "daily_variability": _nonneg_float(),
    "estimated_share": _share(),
    "missing_share": _share(),
    "days_with_readings": _nonneg_int(le=366),
    "metering_points": _nonneg_int(),
    "invoices_12m": _nonneg_int(),
    "late_share": _share(),
    "mean_days_late": _nonneg_float(),
    "reminders_12m": _nonneg_int(),
    "collections_12m": _nonneg_int(),
    "product_code": pa.Column(pl.String, nullable=True),
    "contract_type": pa.Column(pl.String, pa.Check.isin(["fixed_term", "open_ended"]), nullable=True),
    "site_type": pa.Column(pl.String, nullable=True),
    "heating": pa.Column(pl.String, nullable=True),
    "active_contracts": _nonneg_int(),
    "tenure_days": _nonneg_int(nullable=True),
    "days_to_fixed_term_end": _nonneg_int(nullable=True),
}

CustomerFeatures = pa.DataFrameSchema(
    columns=_COLUMNS,
    strict=True,  # rejects any undeclared column, personal ones included
    ordered=False,
    unique=["customer_id"],
    name="CustomerFeatures",
    description="customer_features: consumption, payment and contract features per profiled customer",
)

CUSTOMER_FEATURE_COLUMNS = list(_COLUMNS)


def validate_customer_features(df: pl.DataFrame) -> pl.DataFrame:
    """Validate the whole table at once, reporting every failure (lazy=True)."""
    forbidden = sorted(FORBIDDEN_COLUMNS & set(df.columns))
    if forbidden:
        # name the columns only; never echo their values
        raise pa.errors.SchemaError(
            CustomerFeatures, df, f"forbidden personal columns in customer_features: {forbidden}"
        )
    return CustomerFeatures.validate(df, lazy=True)
