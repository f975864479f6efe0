"""Clustering: quality against the synthetic archetypes, choice of k, determinism."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from models_synthetic import generate
from sklearn.metrics import adjusted_rand_score

from models.features import compute_customer_features, feature_window
from models.segmentation import (
    KCandidate,
    SegmentationConfig,
    choose_k,
    feature_matrix,
    fit_segmentation,
    segment_customers,
)

AS_OF = date(2026, 11, 24)


def test_segments_recover_the_archetypes(first_result, synthetic):
    joined = first_result.customer_segments.join(synthetic.truth, on="customer_id")
    ari = adjusted_rand_score(joined["archetype"], joined["segment_id"])
    assert ari >= 0.8, f"ARI {ari:.3f}"
    assert first_result.fit.k == 6


def test_archetypes_are_recovered_with_movers_and_gaps():
    s = generate(
        n_per_archetype=40, end=AS_OF, seed=29, multi_point_fraction=0.1, mover_fraction=0.2, missing_rate=0.01
    )
    f = compute_customer_features(s.daily.lazy(), s.attribution, s.contracts, s.invoices, s.population, AS_OF)
    r = segment_customers(f, AS_OF, feature_window(AS_OF))
    joined = r.customer_segments.join(s.truth, on="customer_id")
    assert adjusted_rand_score(joined["archetype"], joined["segment_id"]) >= 0.8


def test_every_candidate_k_is_scored(first_result):
    cands = first_result.fit.candidates
    assert [c.k for c in cands] == list(range(4, 11))
    assert sum(c.chosen for c in cands) == 1
    for c in cands:
        assert -1.0 <= c.silhouette <= 1.0 and -1.0 <= c.stability <= 1.0
        assert c.stable == (c.stability >= 0.9)


def test_outputs_hold_exactly_the_population(first_result, synthetic_features):
    cs = first_result.customer_segments
    assert cs.columns == ["customer_id", "segment_id", "model_version", "as_of"]
    assert cs["customer_id"].to_list() == synthetic_features["customer_id"].sort().to_list()
    assert cs["as_of"].unique().to_list() == [AS_OF]
    cat = first_result.segment_catalogue
    assert cat["size"].sum() == cs.height
    assert set(cat["segment_id"]) == set(cs["segment_id"])
    for lang in ("fi", "sv", "en"):
        assert cat[f"name_{lang}"].null_count() == 0 and cat[f"name_{lang}"].n_unique() == cat.height
        assert cat[f"description_{lang}"].null_count() == 0


def test_fit_is_deterministic(synthetic_features, first_result):
    again = segment_customers(synthetic_features, AS_OF, feature_window(AS_OF))
    assert again.model_version == first_result.model_version
    assert again.customer_segments.equals(first_result.customer_segments)
    assert again.segment_catalogue.equals(first_result.segment_catalogue)
    np.testing.assert_array_equal(again.fit.centroids_scaled, first_result.fit.centroids_scaled)
    # row order of the input does not matter either
    shuffled = synthetic_features.sample(fraction=1.0, shuffle=True, seed=3)
    assert segment_customers(shuffled, AS_OF, feature_window(AS_OF)).customer_segments.equals(
        first_result.customer_segments
    )


def test_a_different_seed_changes_the_version_not_the_structure(synthetic_features, first_result):
    other = segment_customers(synthetic_features, AS_OF, feature_window(AS_OF), config=SegmentationConfig(seed=7))
    assert other.model_version != first_result.model_version
    assert adjusted_rand_score(other.fit.labels, first_result.fit.labels) > 0.95


def test_pipeline_predicts_its_own_labels(first_result, synthetic_features):
    fit = first_result.fit
    np.testing.assert_array_equal(fit.predict(synthetic_features.sort("customer_id")), fit.labels)


def test_missing_values_are_imputed_not_fatal(synthetic_features):
    holes = synthetic_features.with_columns(
        pl.when(pl.int_range(pl.len()) % 17 == 0)
        .then(None)
        .otherwise(pl.col("winter_summer_ratio"))
        .alias("winter_summer_ratio")
    )
    fit = fit_segmentation(holes, SegmentationConfig(k_min=5, k_max=7))
    assert len(fit.labels) == holes.height
    assert not np.isnan(fit.centroids_scaled).any()


def test_minibatch_path_for_large_inputs(synthetic_features):
    cfg = SegmentationConfig(k_min=5, k_max=7, minibatch_threshold=100, n_bootstrap=3)
    fit = fit_segmentation(synthetic_features, cfg)
    assert type(fit.pipeline.named_steps["cluster"]).__name__ == "MiniBatchKMeans"
    assert fit.k == 6


def _cand(k, sil, stab):
    return KCandidate(k=k, silhouette=sil, stability=stab, inertia=0.0)


def test_choose_k_takes_best_silhouette_among_stable():
    cfg = SegmentationConfig()
    cands = [_cand(4, 0.70, 0.80), _cand(5, 0.60, 0.95), _cand(6, 0.65, 0.99), _cand(7, 0.62, 0.93)]
    assert choose_k(cands, cfg) == 6  # k=4 has the best silhouette but is not stable
    assert [c.chosen for c in cands] == [False, False, True, False]


def test_choose_k_prefers_larger_k_on_a_silhouette_tie():
    cands = [_cand(5, 0.600, 0.99), _cand(6, 0.595, 0.99)]
    assert choose_k(cands, SegmentationConfig(silhouette_tolerance=0.01)) == 6
    assert choose_k(cands, SegmentationConfig(silhouette_tolerance=0.0)) == 5


def test_choose_k_falls_back_to_most_stable():
    cands = [_cand(4, 0.5, 0.7), _cand(5, 0.4, 0.85), _cand(6, 0.6, 0.8)]
    assert choose_k(cands, SegmentationConfig()) == 5


def test_feature_matrix_uses_only_clustering_columns(synthetic_features):
    x = feature_matrix(synthetic_features, ["annual_kwh", "night_share"])
    assert x.shape == (synthetic_features.height, 2)
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        feature_matrix(synthetic_features, ["personal_id"])
