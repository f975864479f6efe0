"""The pandera contract of customer_features."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pytest

from data_contracts.features import (
    CUSTOMER_FEATURE_COLUMNS,
    FEATURE_COLUMNS,
    FORBIDDEN_COLUMNS,
    CustomerFeatures,
    validate_customer_features,
)
from models.features import FEATURE_TABLE_COLUMNS


@pytest.fixture()
def table(synthetic_features) -> pl.DataFrame:
    return synthetic_features.head(20)


def test_contract_matches_the_feature_table(table):
    assert CUSTOMER_FEATURE_COLUMNS == FEATURE_TABLE_COLUMNS
    CustomerFeatures.validate(table)
    validate_customer_features(table)


def test_clustering_features_are_numeric_and_never_identifiers():
    assert set(FEATURE_COLUMNS) <= set(CUSTOMER_FEATURE_COLUMNS)
    assert not set(FEATURE_COLUMNS) & (FORBIDDEN_COLUMNS | {"customer_id"})


@pytest.mark.parametrize("column", ["personal_id", "email", "phone", "street_address", "first_name", "last_name"])
def test_rejects_personal_columns(table, column):
    bad = table.with_columns(pl.lit("x").alias(column))
    with pytest.raises((pa.errors.SchemaError, pa.errors.SchemaErrors)):
        CustomerFeatures.validate(bad, lazy=True)
    with pytest.raises(pa.errors.SchemaError, match=column):
        validate_customer_features(bad)


def test_rejects_a_personal_id_without_echoing_it(table):
    code = "131052-308T"
    bad = table.with_columns(pl.lit(code).alias("personal_id"))
    with pytest.raises(pa.errors.SchemaError) as err:
        validate_customer_features(bad)
    assert code not in str(err.value)


def test_rejects_shares_out_of_range_and_duplicate_customers(table):
    with pytest.raises(pa.errors.SchemaErrors):
        CustomerFeatures.validate(table.with_columns(pl.lit(1.2).alias("night_share")), lazy=True)
    with pytest.raises(pa.errors.SchemaErrors):
        CustomerFeatures.validate(table.with_columns(pl.lit(-1.0).alias("annual_kwh")), lazy=True)
    with pytest.raises(pa.errors.SchemaErrors):
        CustomerFeatures.validate(pl.concat([table, table.head(1)]), lazy=True)
    with pytest.raises(pa.errors.SchemaErrors):
        CustomerFeatures.validate(table.with_columns(pl.lit(24, dtype=pl.Int32).alias("peak_hour")), lazy=True)
