"""Fixtures for the pure segmentation logic (models/): synthetic daily aggregates, features, a fit."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from models_synthetic import Synthetic, generate  # noqa: E402

AS_OF = date(2026, 11, 24)


@pytest.fixture(scope="session")
def synthetic() -> Synthetic:
    """Six archetypes x 60 customers, a year of days, 10 % of customers on two metering points."""
    return generate(n_per_archetype=60, end=AS_OF, seed=11, multi_point_fraction=0.1)


@pytest.fixture(scope="session")
def synthetic_features(synthetic):
    from models.features import compute_customer_features

    s = synthetic
    return compute_customer_features(s.daily.lazy(), s.attribution, s.contracts, s.invoices, s.population, AS_OF)


@pytest.fixture(scope="session")
def first_result(synthetic_features):
    from models.features import feature_window
    from models.segmentation import segment_customers

    return segment_customers(synthetic_features, AS_OF, feature_window(AS_OF))
