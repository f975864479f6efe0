"""Model versions on disk, and the plots and HTML report."""

from __future__ import annotations

import base64
import json
import re
from datetime import date, timedelta

import numpy as np
import polars as pl

from assets.segments import model_store as registry
from models import report
from models.features import feature_window, monthly_kwh_shares
from models.model_version import compute_model_version
from models.segmentation import SegmentationConfig, feature_matrix, segment_customers

AS_OF = date(2026, 11, 24)


def test_model_version_is_a_content_hash(synthetic_features, first_result):
    win = feature_window(AS_OF)
    params = SegmentationConfig().params()
    cols = ["customer_id", *first_result.fit.feature_columns]
    v = compute_model_version(win, params, synthetic_features.select(cols))
    assert v == first_result.model_version
    assert re.fullmatch(r"[0-9a-f]{16}", v)
    # row order does not matter; data, window, parameters and the predecessor do
    shuffled = synthetic_features.select(cols).sample(fraction=1.0, shuffle=True, seed=1)
    assert compute_model_version(win, params, shuffled) == v
    nudged = synthetic_features.select(cols).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.col("annual_kwh") + 0.001).otherwise(pl.col("annual_kwh"))
    )
    assert compute_model_version(win, params, nudged) != v
    assert compute_model_version((win[0], win[1] + timedelta(days=1)), params, synthetic_features.select(cols)) != v
    assert compute_model_version(win, {**params, "seed": 1}, synthetic_features.select(cols)) != v
    assert compute_model_version(win, params, synthetic_features.select(cols), previous_version="x") != v


def test_save_load_round_trip(tmp_path, first_result, synthetic_features):
    stored = registry.save_model(tmp_path, first_result)
    assert stored.path == tmp_path / first_result.model_version
    assert {p.name for p in stored.path.iterdir()} == {"pipeline.joblib", "scaler.joblib", "model.json"}
    meta = json.loads((stored.path / "model.json").read_text(encoding="utf-8"))
    assert meta["feature_columns"] == first_result.fit.feature_columns
    assert meta["window"] == {"start": "2025-11-25", "end": "2026-11-24"}
    assert meta["k"] == first_result.fit.k and len(meta["candidates"]) == 7
    assert {s["segment_id"] for s in meta["segments"]} == set(first_result.segment_catalogue["segment_id"])
    assert sum(s["size"] for s in meta["segments"]) == synthetic_features.height
    assert "customer_id" not in json.dumps(meta["segments"])  # no customer-level data in the metadata
    loaded = registry.load_model(tmp_path, first_result.model_version)
    x = feature_matrix(synthetic_features.sort("customer_id"), meta["feature_columns"])
    np.testing.assert_array_equal(loaded.pipeline().predict(x), first_result.fit.labels)
    np.testing.assert_allclose(loaded.scaler().mean_, first_result.fit.scaler.mean_)
    assert loaded.state == first_result.state
    # saving the same version again is a no-op
    again = registry.save_model(tmp_path, first_result)
    assert again.metadata["seq"] == stored.metadata["seq"] == 1


def test_latest_previous_model_and_a_refit_against_it(tmp_path, first_result, synthetic_features):
    registry.save_model(tmp_path, first_result)
    assert registry.load_latest_model(tmp_path, before=AS_OF) is None  # a re-run of the same day
    nxt = AS_OF + timedelta(days=1)
    prev = registry.load_previous_state(tmp_path, before=nxt)
    assert prev == first_result.state
    r2 = segment_customers(synthetic_features.sample(fraction=0.97, seed=2), nxt, feature_window(nxt), previous=prev)
    stored2 = registry.save_model(tmp_path, r2)
    assert stored2.metadata["previous_version"] == first_result.model_version
    assert registry.load_latest_model(tmp_path).model_version == r2.model_version
    assert registry.load_latest_model(tmp_path, before=nxt).model_version == first_result.model_version
    assert len(registry.list_models(tmp_path)) == 2


def test_plots_are_png_and_report_is_self_contained(first_result, synthetic, synthetic_features):
    monthly = monthly_kwh_shares(synthetic.daily.lazy(), synthetic.attribution, AS_OF)
    out = report.build_report(first_result, synthetic_features, monthly)
    for key in ("daily_png", "monthly_png", "sizes_png"):
        assert out[key][:8] == b"\x89PNG\r\n\x1a\n"
    page = out["html"]
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page and "<script" not in page
    imgs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(imgs) == 3 and base64.b64decode(imgs[0])[:4] == b"\x89PNG"
    cat = first_result.segment_catalogue
    for lang in ("fi", "sv", "en"):
        for name in cat[f"name_{lang}"]:
            assert name in page
    assert "Chosen k = 6" in page and "silhouette" in page
    assert "new segment" in page  # the first model: every segment is new
    assert not any(cid in page for cid in synthetic_features["customer_id"].head(50))
    assert "| k | silhouette | stability | chosen |" in out["markdown"]
    assert out["markdown"].count("data:image/png;base64,") == 2


def test_segment_profiles_are_normalised(first_result, synthetic_features, synthetic):
    daily = report.segment_daily_profiles(synthetic_features, first_result.customer_segments)
    assert daily.height == first_result.fit.k
    sums = daily.select(pl.sum_horizontal(report.SHARE_COLS))
    np.testing.assert_allclose(sums.to_series().to_numpy(), 1.0)
    monthly = report.segment_monthly_profiles(
        monthly_kwh_shares(synthetic.daily.lazy(), synthetic.attribution, AS_OF), first_result.customer_segments
    )
    totals = monthly.group_by("segment_id").agg(pl.col("share").sum())["share"].to_numpy()
    np.testing.assert_allclose(totals, 1.0)


def test_report_shows_size_movement_after_a_refit(first_result, synthetic_features):
    nxt = AS_OF + timedelta(days=1)
    r2 = segment_customers(
        synthetic_features.sample(fraction=0.9, seed=4), nxt, feature_window(nxt), previous=first_result.state
    )
    out = report.build_report(r2, synthetic_features)
    assert "since the previous model" in out["html"]
    assert out["monthly_png"] is None
