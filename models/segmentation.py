"""Clustering of customer features into segments: transform -> impute -> scale -> k-means, with k
chosen from a range by silhouette and bootstrap stability.

Choice of k (`choose_k`, the documented rule):
  1. For every k in [k_min, k_max] fit k-means on all rows and record
     * silhouette: on a fixed random sample of at most `silhouette_sample` rows;
     * stability: the mean adjusted Rand index between all pairs of `n_bootstrap` fits on bootstrap
       samples (with replacement, at most `bootstrap_size` rows), each fit labelling the same
       evaluation sample.
  2. Candidates whose stability is at least `stability_threshold` (0.9) are "stable".
  3. Among stable candidates take the highest silhouette; on a silhouette within
     `silhouette_tolerance` (0.01) of the best, prefer the larger k.
  4. If no candidate is stable, take the most stable one (ties: higher silhouette).
Why: silhouette alone can reward an arbitrary cut that happens to fall in a sparse region of one
bootstrap but not the next; requiring stability first removes those, and silhouette then picks the
cleanest of the reproducible partitions. Measured on the synthetic six-archetype data
(tests/models/models_synthetic.py): silhouette peaks at k=6 with stability 1.00 (ARI vs the
archetypes 0.98-1.00), while k=7 scores 0.93-0.97 stability at lower silhouette. Known limit: when
two archetypes form a continuum rather than separate groups (the generator's `hard=True`: electric
and heat-pump heating intensities overlap) silhouette prefers merging them and the rule picks k=5
(ARI about 0.81); "largest stable k" would split them but over-splits genuine blobs elsewhere.

Features (`data_contracts.features.FEATURE_COLUMNS`): annual kWh (log), winter/summer ratio (log),
night share, weekday daytime share, weekday/weekend ratio (log); median-imputed, standardised.
One signal per household trait: adding load factor and day-to-day variability, which mostly
restate the summer-cottage signal, made the cottage-vs-rest split dominate the geometry and, in
the hard case, dropped the choice to k=4 (ARI 0.68).

Scale: at 500,000 rows the silhouette is sampled, bootstrap fits use at most `bootstrap_size`
rows, and the full-data fits switch to MiniBatchKMeans above `minibatch_threshold` rows.
Everything is seeded and runs on one BLAS/OpenMP thread: the same input and seed give the same
model on any machine. Measured: 500,000 rows, k = 4..10, about 11 s CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from itertools import combinations
from typing import Any

import numpy as np
import polars as pl
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.impute import SimpleImputer
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from data_contracts.features import FEATURE_COLUMNS, KEY_CENTROID_COLUMNS
from models.model_version import compute_model_version as model_version_of

#: How each clustering feature is transformed before scaling. Levels and ratios are skewed and
#: multiplicative, so they are logged; shares are already bounded.
FEATURE_TRANSFORMS: dict[str, str] = {
    "annual_kwh": "log1p",
    "winter_summer_ratio": "log",
    "weekday_weekend_ratio": "log",
    "daily_variability": "log1p",
    "base_load_kwh": "log1p",
    "mean_days_late": "log1p",
    "reminders_12m": "log1p",
    "tenure_days": "log1p",
}
_LOG_FLOOR = 1e-3


def transform_matrix(x: np.ndarray, kinds: tuple[str, ...]) -> np.ndarray:
    """Apply the per-column transforms (module-level so a fitted pipeline pickles)."""
    x = np.asarray(x, dtype=float).copy()
    for j, kind in enumerate(kinds):
        if kind == "log1p":
            x[:, j] = np.log1p(np.clip(x[:, j], 0.0, None))
        elif kind == "log":
            x[:, j] = np.log(np.clip(x[:, j], _LOG_FLOOR, None))
        elif kind != "identity":
            raise ValueError(f"unknown transform {kind!r}")
    return x


@dataclass(frozen=True)
class SegmentationConfig:
    k_min: int = 4
    k_max: int = 10
    seed: int = 20261125
    feature_columns: tuple[str, ...] = tuple(FEATURE_COLUMNS)
    silhouette_sample: int = 10_000
    bootstrap_size: int = 20_000
    n_bootstrap: int = 5
    stability_threshold: float = 0.9
    silhouette_tolerance: float = 0.01
    n_init: int = 10
    minibatch_threshold: int = 200_000
    minibatch_batch_size: int = 4096
    max_iter: int = 300
    #: BLAS/OpenMP threads for the fits. 1 keeps results identical on any machine and, measured
    #: on the 2-core build host, is also faster: OpenMP start-up dominated the many small fits.
    n_threads: int = 1

    def params(self) -> dict[str, Any]:
        d = asdict(self)
        d["feature_columns"] = list(self.feature_columns)
        d["transforms"] = {c: FEATURE_TRANSFORMS.get(c, "identity") for c in self.feature_columns}
        return d


@dataclass
class KCandidate:
    k: int
    silhouette: float
    stability: float
    inertia: float
    stable: bool = False
    chosen: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SegmentationFit:
    """A fitted model. Cluster indices are canonical: ordered by the centroid's first feature."""

    pipeline: Pipeline
    feature_columns: list[str]
    k: int
    candidates: list[KCandidate]
    selection_rule: str
    customer_ids: pl.Series
    labels: np.ndarray
    centroids_scaled: np.ndarray  # (k, d) in the scaler's space
    centroids_transformed: np.ndarray  # (k, d) after transforms, before scaling

    @property
    def scaler(self) -> StandardScaler:
        return self.pipeline.named_steps["scale"]

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.k)

    def predict(self, features: pl.DataFrame) -> np.ndarray:
        return self.pipeline.predict(feature_matrix(features, self.feature_columns))


def feature_matrix(features: pl.DataFrame, columns) -> np.ndarray:
    """The numeric clustering matrix, nulls as NaN (imputed inside the pipeline)."""
    return features.select(pl.col(c).cast(pl.Float64) for c in columns).to_numpy().astype(float)


def preprocessing(feature_columns) -> list[tuple[str, Any]]:
    kinds = tuple(FEATURE_TRANSFORMS.get(c, "identity") for c in feature_columns)
    return [
        ("transform", FunctionTransformer(transform_matrix, kw_args={"kinds": kinds}, validate=False)),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", StandardScaler()),
    ]


def _kmeans(k: int, seed: int, n_rows: int, config: SegmentationConfig):
    if n_rows > config.minibatch_threshold:
        return MiniBatchKMeans(
            n_clusters=k,
            random_state=seed,
            n_init=min(config.n_init, 3),
            batch_size=config.minibatch_batch_size,
            max_iter=config.max_iter,
        )
    return KMeans(n_clusters=k, random_state=seed, n_init=config.n_init, max_iter=config.max_iter)


def evaluate_candidates(xs: np.ndarray, config: SegmentationConfig) -> tuple[list[KCandidate], dict[int, Any]]:
    """Score every k in the range; returns the candidates and the full-data fits by k."""
    n = xs.shape[0]
    rng = np.random.default_rng(config.seed)
    eval_idx = np.sort(rng.choice(n, size=min(n, config.silhouette_sample), replace=False))
    x_eval = xs[eval_idx]
    boot_size = min(n, config.bootstrap_size)
    boot_idx = [rng.choice(n, size=boot_size, replace=True) for _ in range(config.n_bootstrap)]
    candidates, fits = [], {}
    for k in range(config.k_min, config.k_max + 1):
        if k >= min(n, x_eval.shape[0]):
            break
        model = _kmeans(k, config.seed, n, config).fit(xs)
        labels_eval = model.predict(x_eval)
        sil = float(silhouette_score(x_eval, labels_eval)) if len(set(labels_eval)) > 1 else -1.0
        boot_labels = [
            _kmeans(k, config.seed + 1 + b, boot_size, config).fit(xs[idx]).predict(x_eval)
            for b, idx in enumerate(boot_idx)
        ]
        aris = [adjusted_rand_score(a, b) for a, b in combinations(boot_labels, 2)]
        stab = float(np.mean(aris)) if aris else 1.0
        candidates.append(KCandidate(k=k, silhouette=sil, stability=stab, inertia=float(model.inertia_)))
        fits[k] = model
    if not candidates:
        raise ValueError(f"too few rows ({n}) to cluster into k >= {config.k_min}")
    return candidates, fits


SELECTION_RULE = (
    "stable = stability (mean pairwise ARI of bootstrap fits) >= {thr}; among stable candidates the "
    "highest silhouette, preferring the larger k within {tol} of it; if none is stable, the most stable"
)


def choose_k(candidates: list[KCandidate], config: SegmentationConfig) -> int:
    """The documented rule; marks `stable` and `chosen` on the candidates."""
    for c in candidates:
        c.stable = c.stability >= config.stability_threshold
        c.chosen = False
    stable = [c for c in candidates if c.stable]
    if stable:
        best = max(c.silhouette for c in stable)
        chosen = max((c for c in stable if c.silhouette >= best - config.silhouette_tolerance), key=lambda c: c.k)
    else:
        chosen = max(candidates, key=lambda c: (c.stability, c.silhouette, -c.k))
    chosen.chosen = True
    return chosen.k


def fit_segmentation(features: pl.DataFrame, config: SegmentationConfig | None = None) -> SegmentationFit:
    """Fit the model on the feature table (one row per customer)."""
    config = config or SegmentationConfig()
    cols = list(config.feature_columns)
    features = features.sort("customer_id")
    x = feature_matrix(features, cols)
    prep = Pipeline(preprocessing(cols)).fit(x)
    xs = prep.transform(x)
    with threadpool_limits(limits=config.n_threads):
        candidates, fits = evaluate_candidates(xs, config)
    k = choose_k(candidates, config)
    model = fits[k]
    # canonical cluster order: by centroid, lexicographically over the scaled features
    centers = model.cluster_centers_
    order = np.lexsort(centers.T[::-1])
    _reorder_clusters(model, order)
    pipeline = Pipeline([*prep.steps, ("cluster", model)])
    with threadpool_limits(limits=config.n_threads):
        labels = model.predict(xs)
    scaler: StandardScaler = prep.named_steps["scale"]
    return SegmentationFit(
        pipeline=pipeline,
        feature_columns=cols,
        k=k,
        candidates=candidates,
        selection_rule=SELECTION_RULE.format(thr=config.stability_threshold, tol=config.silhouette_tolerance),
        customer_ids=features["customer_id"],
        labels=labels.astype(np.int64),
        centroids_scaled=model.cluster_centers_.copy(),
        centroids_transformed=scaler.inverse_transform(model.cluster_centers_),
    )


def _reorder_clusters(model, order: np.ndarray) -> None:
    model.cluster_centers_ = model.cluster_centers_[order].copy()
    if hasattr(model, "labels_"):
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        model.labels_ = inverse[model.labels_]


def segment_profiles(features: pl.DataFrame, customer_ids: pl.Series, labels: np.ndarray) -> pl.DataFrame:
    """Per cluster: size and the median of every numeric feature, in business units (kWh, shares,
    ratios). Naming rules and the catalogue read these."""
    lab = pl.DataFrame({"customer_id": customer_ids, "cluster": labels.astype(np.int64)})
    df = features.join(lab, on="customer_id", how="inner")
    numeric = [c for c, t in df.schema.items() if t.is_numeric() and c != "cluster"]
    return (
        df.group_by("cluster")
        .agg(pl.len().alias("size"), *(pl.col(c).cast(pl.Float64).median() for c in numeric))
        .sort("cluster")
    )


# ------------------------------------------------------------------------------------------------
# the whole step: fit, stable ids, names, outputs
# ------------------------------------------------------------------------------------------------
@dataclass
class SegmentationResult:
    fit: SegmentationFit
    model_version: str
    as_of: date
    window: tuple[date, date]
    customer_segments: pl.DataFrame  # customer_id, segment_id, model_version, as_of
    segment_catalogue: pl.DataFrame  # segment_id, names, descriptions, size, key centroids, version
    size_movement: pl.DataFrame  # segment_id, status, size, previous_size, change
    assignment: Any  # models.stable_ids.SegmentAssignment
    profiles: pl.DataFrame  # per segment medians of all numeric features (incl. share_hXX)
    params: dict[str, Any] = field(default_factory=dict)
    previous_version: str | None = None
    state: Any = None  # models.stable_ids.PreviousModel: what the next refit is matched against


def segment_customers(
    features: pl.DataFrame,
    as_of: date,
    window: tuple[date, date],
    previous=None,
    config: SegmentationConfig | None = None,
    *,
    max_match_distance: float | None = None,
) -> SegmentationResult:
    """Fit, keep segment ids stable against `previous` (a stable_ids.PreviousModel or None), name
    the segments, and build customer_segments, segment_catalogue and size_movement.

    `features` must already be the profiling population only: the scaler, the fit and the
    outputs see every row it holds and no other."""
    from models import naming, stable_ids

    config = config or SegmentationConfig()
    features = features.sort("customer_id")
    fit = fit_segmentation(features, config)
    kwargs = {} if max_match_distance is None else {"max_distance": max_match_distance}
    assignment = stable_ids.match_segments(
        fit.centroids_transformed, fit.feature_columns, fit.scaler, previous, **kwargs
    )
    profiles = segment_profiles(features, fit.customer_ids, fit.labels)
    names = naming.name_segments(profiles.to_dicts(), fixed_names=dict(assignment.kept_names))
    previous_version = previous.model_version if previous is not None else None
    model_version = model_version_of(
        window=window,
        params=config.params(),
        features=features.select("customer_id", *fit.feature_columns),
        previous_version=previous_version,
    )
    to_segment = assignment.cluster_to_segment
    seg_ids = np.array([to_segment[c] for c in range(fit.k)], dtype=np.int32)
    customer_segments = pl.DataFrame({"customer_id": fit.customer_ids, "segment_id": seg_ids[fit.labels]}).with_columns(
        pl.lit(model_version).alias("model_version"), pl.lit(as_of).alias("as_of")
    )
    key_cols = [c for c in KEY_CENTROID_COLUMNS if c in profiles.columns]
    sizes = {c: int(n) for c, n in enumerate(fit.sizes)}
    catalogue = (
        pl.DataFrame(
            [
                {
                    "segment_id": int(to_segment[c]),
                    **{f: names[c][f] for f in naming.NAME_FIELDS},
                    "size": sizes[c],
                    **{f"centroid_{col}": profiles[col][c] for col in key_cols},
                }
                for c in range(fit.k)
            ]
        )
        .with_columns(
            pl.col("segment_id").cast(pl.Int32),
            pl.col("size").cast(pl.Int64),
            pl.lit(model_version).alias("model_version"),
        )
        .sort("segment_id")
    )
    movement = stable_ids.size_movement(assignment, {int(to_segment[c]): sizes[c] for c in sizes}, previous)
    seg_profiles = profiles.with_columns(
        pl.col("cluster").replace_strict(to_segment, return_dtype=pl.Int32).alias("segment_id")
    )
    return SegmentationResult(
        fit=fit,
        model_version=model_version,
        as_of=as_of,
        window=window,
        customer_segments=customer_segments,
        segment_catalogue=catalogue,
        size_movement=movement,
        assignment=assignment,
        profiles=seg_profiles,
        params=config.params(),
        previous_version=previous_version,
        state=stable_ids.next_state(
            model_version, fit.feature_columns, assignment, fit.centroids_transformed, names, sizes
        ),
    )
