"""Stable segment ids across refits."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.preprocessing import StandardScaler

from models.features import feature_window
from models.segmentation import SegmentationConfig, segment_customers
from models.stable_ids import PreviousModel, PreviousSegment, match_segments, size_movement

AS_OF = date(2026, 11, 24)
NEXT = AS_OF + timedelta(days=1)


def _changed(features: pl.DataFrame, seed: int, drop: float = 0.05) -> pl.DataFrame:
    """A day later: 5 % of customers gone, everyone's features moved a little."""
    rng = np.random.default_rng(seed)
    kept = features.sample(fraction=1 - drop, seed=seed)
    n = kept.height
    return kept.with_columns(
        pl.col("annual_kwh") * pl.Series(rng.lognormal(0, 0.03, n)),
        (pl.col("night_share") + pl.Series(rng.normal(0, 0.005, n))).clip(0, 1),
        (pl.col("weekday_daytime_share") + pl.Series(rng.normal(0, 0.005, n))).clip(0, 1),
        pl.col("winter_summer_ratio") * pl.Series(rng.lognormal(0, 0.03, n)),
    )


def test_ids_and_names_survive_a_refit_on_slightly_changed_data(first_result, synthetic_features):
    before = first_result
    after = segment_customers(_changed(synthetic_features, seed=5), NEXT, feature_window(NEXT), previous=before.state)
    assert after.model_version != before.model_version
    assert after.assignment.new_segment_ids == [] and after.assignment.retired_now == []
    cols = ["segment_id", "name_fi", "name_sv", "name_en"]
    assert after.segment_catalogue.select(cols).equals(before.segment_catalogue.select(cols))
    # the same customers keep their segment
    both = before.customer_segments.join(after.customer_segments, on="customer_id", suffix="_after")
    assert (both["segment_id"] == both["segment_id_after"]).mean() > 0.98
    moved = after.size_movement
    assert set(moved["status"]) == {"kept"}
    assert moved["change"].sum() == after.customer_segments.height - before.customer_segments.height


def test_chain_of_refits_stays_stable(first_result, synthetic_features):
    state, names = first_result.state, first_result.segment_catalogue.select("segment_id", "name_en")
    for i in range(3):
        day = NEXT + timedelta(days=i)
        r = segment_customers(_changed(synthetic_features, seed=10 + i), day, feature_window(day), previous=state)
        assert r.segment_catalogue.select("segment_id", "name_en").equals(names)
        state = r.state
    assert state.max_segment_id == 6


def test_vanished_cluster_is_retired_and_new_one_never_reuses_an_id(first_result, synthetic_features):
    cat = first_result.segment_catalogue
    cottage_id = cat.filter(pl.col("name_en") == "Summer cottage")["segment_id"].item()
    cottage_customers = first_result.customer_segments.filter(pl.col("segment_id") == cottage_id)
    # pretend id 7 was issued and retired long ago
    state = first_result.state
    state = PreviousModel(
        state.model_version, state.feature_columns, state.segments, max_segment_id=7, retired_ids=(7,)
    )
    without = synthetic_features.join(cottage_customers, on="customer_id", how="anti")
    r = segment_customers(
        without, NEXT, feature_window(NEXT), previous=state, config=SegmentationConfig(k_min=5, k_max=5)
    )
    assert r.assignment.retired_now == [cottage_id]
    assert r.assignment.retired_ids == sorted({7, cottage_id})
    assert cottage_id not in r.segment_catalogue["segment_id"].to_list()
    # bring the cottages back: they get a brand-new id, not the retired one, and not 7
    r2 = segment_customers(synthetic_features, NEXT + timedelta(days=1), feature_window(NEXT), previous=r.state)
    assert r2.assignment.new_segment_ids == [8]
    assert r2.segment_catalogue.filter(pl.col("segment_id") == 8)["name_en"].item() == "Summer cottage"
    assert cottage_id not in r2.segment_catalogue["segment_id"].to_list()
    assert r2.state.max_segment_id == 8
    status = dict(zip(r2.size_movement["segment_id"], r2.size_movement["status"], strict=True))
    assert status[8] == "new"


def _scaler(mean, scale) -> StandardScaler:
    s = StandardScaler()
    s.mean_, s.scale_ = np.asarray(mean, float), np.asarray(scale, float)
    return s


def _prev(centroids, ids, feature_columns=("a", "b"), max_id=None, retired=()):
    segs = tuple(
        PreviousSegment(i, f"fi{i}", f"sv{i}", f"en{i}", dict(zip(feature_columns, c, strict=True)), size=10 * i)
        for i, c in zip(ids, centroids, strict=True)
    )
    return PreviousModel("prev", tuple(feature_columns), segs, max_id or max(ids), tuple(retired))


def test_hungarian_matching_in_the_common_scaled_space():
    prev = _prev([(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)], [3, 5, 9], max_id=11, retired=(10, 11))
    # new clusters in a different order, slightly moved, plus one far away
    new = np.array([[0.0, 10.2], [100.0, 100.0], [0.1, 0.0], [10.0, 0.3]])
    a = match_segments(new, ["a", "b"], _scaler([0, 0], [10, 10]), prev, max_distance=0.5)
    assert a.cluster_to_segment == {0: 9, 2: 3, 3: 5, 1: 12}
    assert a.kept_names[0] == {"name_fi": "fi9", "name_sv": "sv9", "name_en": "en9"}
    assert a.new_segment_ids == [12] and a.retired_now == [] and a.max_segment_id == 12


def test_a_distant_cluster_is_not_matched():
    prev = _prev([(0.0, 0.0), (10.0, 0.0)], [1, 2])
    new = np.array([[0.0, 0.0], [10.0, 30.0]])
    a = match_segments(new, ["a", "b"], _scaler([0, 0], [10, 10]), prev, max_distance=0.5)
    assert a.cluster_to_segment == {0: 1, 1: 3}
    assert a.retired_now == [2]
    moved = size_movement(a, {1: 12, 3: 5}, prev)
    assert moved.to_dicts() == [
        {"segment_id": 1, "status": "kept", "size": 12, "previous_size": 10, "change": 2},
        {"segment_id": 2, "status": "retired", "size": 0, "previous_size": 20, "change": -20},
        {"segment_id": 3, "status": "new", "size": 5, "previous_size": None, "change": None},
    ]


def test_matching_uses_only_the_features_both_models_share():
    prev = _prev([(0.0, 0.0), (10.0, 0.0)], [1, 2], feature_columns=("a", "gone"))
    new = np.array([[10.0, 99.0], [0.0, -99.0]])  # column b is new: ignored
    a = match_segments(new, ["a", "b"], _scaler([0, 0], [10, 1]), prev, max_distance=0.5)
    assert a.common_features == ["a"]
    assert a.cluster_to_segment == {0: 2, 1: 1}


def test_first_model_numbers_from_one():
    a = match_segments(np.zeros((3, 2)), ["a", "b"], _scaler([0, 0], [1, 1]), None)
    assert a.cluster_to_segment == {0: 1, 1: 2, 2: 3}
    assert a.max_segment_id == 3 and a.retired_ids == []


def test_state_round_trips_through_json_types():
    prev = _prev([(0.0, 1.0)], [4], retired=(1, 2))
    assert PreviousModel.from_dict(prev.to_dict()) == prev


@pytest.mark.parametrize("retired", [(1, 2, 3), ()])
def test_new_ids_start_above_every_id_ever_issued(retired):
    prev = _prev([(0.0, 0.0)], [2], max_id=2, retired=retired)
    a = match_segments(np.array([[50.0, 50.0]]), ["a", "b"], _scaler([0, 0], [1, 1]), prev)
    assert a.new_segment_ids == [max((2, *retired)) + 1]
