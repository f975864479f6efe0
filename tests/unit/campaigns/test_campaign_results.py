"""Lift and its 95 % interval: Newcombe's hybrid score interval against the published worked examples."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from data_contracts.campaigns import parse_brief
from models.campaign_results import conversions, lift, lift_with_ci, plot_lift, prospects_not_measured


@pytest.mark.parametrize(
    ("k1", "n1", "k0", "n0", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
    ],
)
def test_newcombe_interval_matches_the_paper(k1, n1, k0, n0, low, high):
    d, lo, hi = lift_with_ci(k1, n1, k0, n0)
    assert d == pytest.approx(k1 / n1 - k0 / n0)
    assert lo == pytest.approx(low, abs=6e-4) and hi == pytest.approx(high, abs=6e-4)


def test_conversions_count_the_offer_product_started_in_the_response_window():
    brief = parse_brief(
        {
            "campaign_id": "K",
            "name": {"fi": "a", "sv": "b", "en": "c"},
            "audience": "customers",
            "channels": ["email"],
            "send_on": dt.date(2026, 12, 1),
            "control_share": 0.5,
            "offer_product": "GREEN",
            "response_days": 10,
        }
    )
    groups = pl.DataFrame(
        {"recipient_id": ["A", "B", "C", "D"], "status": ["treated", "treated", "control", "control"]}
    )
    contracts = pl.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "product_code": ["GREEN", "GREEN", "SPOT", "GREEN"],
            "start_date": [dt.date(2026, 12, 1), dt.date(2026, 12, 12), dt.date(2026, 12, 2), dt.date(2026, 11, 30)],
        }
    )
    per_group = conversions(brief, groups, contracts)
    assert dict(zip(per_group["group"], per_group["conversions"], strict=True)) == {"treated": 1, "control": 0}
    result = lift(per_group)
    assert result.lift == pytest.approx(0.5) and result.ci_low < 0.5 < result.ci_high
    assert plot_lift("K", per_group, result)[:4] == b"\x89PNG"


def test_prospect_recipients_are_left_out_of_the_measure_not_counted_as_never_converting():
    brief = parse_brief(
        {
            "campaign_id": "K",
            "name": {"fi": "K", "sv": "K", "en": "K"},
            "audience": "both",
            "channels": ["email"],
            "send_on": dt.date(2026, 12, 1),
            "control_share": 0.5,
            "offer_product": "GREEN",
            "response_days": 10,
        }
    )
    groups = pl.DataFrame(
        {
            "recipient_id": ["A", "P000000001", "C", "P000000002", "P000000003"],
            "recipient_type": ["customer", "prospect", "customer", "prospect", "prospect"],
            "status": ["treated", "treated", "control", "control", "not_in_audience"],
        }
    )
    contracts = pl.DataFrame({"customer_id": ["A"], "product_code": ["GREEN"], "start_date": [dt.date(2026, 12, 2)]})
    per_group = conversions(brief, groups, contracts)
    assert dict(zip(per_group["group"], per_group["recipients"], strict=True)) == {"treated": 1, "control": 1}
    assert prospects_not_measured(groups) == 2
