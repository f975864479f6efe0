"""Stable segment ids across refits.

A new fit's centroids are matched one-to-one to the previous model's with the Hungarian algorithm
on distances in a common scaled space: both sets of centroids are kept in the transformed
(pre-scaling) feature space, and both are scaled with the NEW model's scaler, over the features the
two models share. The distance is the root-mean-square per-feature difference in standard
deviations, so the threshold does not depend on how many features there are.

* A match within `max_distance` keeps the previous segment_id and name.
* An unmatched new cluster gets a new id: one more than the largest id ever issued, so a retired
  id is never reused.
* An unmatched previous segment is retired.

The previous model is passed in as data (`PreviousModel`), never read from disk here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

#: RMS distance (in standard deviations per feature) beyond which two centroids are different
#: segments. Measured on generated data: a refit on 95 % of the customers moves a centroid by about
#: 0.01-0.05; distinct archetypes are at least about 0.8 apart.
DEFAULT_MAX_DISTANCE = 0.5

NAME_KEYS = ("name_fi", "name_sv", "name_en")


@dataclass(frozen=True)
class PreviousSegment:
    segment_id: int
    name_fi: str
    name_sv: str
    name_en: str
    centroid: dict[str, float]  # transformed, unscaled feature space
    size: int = 0

    @property
    def names(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in NAME_KEYS}


@dataclass(frozen=True)
class PreviousModel:
    model_version: str
    feature_columns: tuple[str, ...]
    segments: tuple[PreviousSegment, ...]
    max_segment_id: int  # the largest id ever issued, retired ones included
    retired_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["feature_columns"] = list(self.feature_columns)
        d["segments"] = [asdict(s) for s in self.segments]
        d["retired_ids"] = list(self.retired_ids)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreviousModel:
        return cls(
            model_version=d["model_version"],
            feature_columns=tuple(d["feature_columns"]),
            segments=tuple(
                PreviousSegment(
                    segment_id=int(s["segment_id"]),
                    name_fi=s["name_fi"],
                    name_sv=s["name_sv"],
                    name_en=s["name_en"],
                    centroid={k: float(v) for k, v in s["centroid"].items()},
                    size=int(s.get("size", 0)),
                )
                for s in d["segments"]
            ),
            max_segment_id=int(d["max_segment_id"]),
            retired_ids=tuple(int(i) for i in d.get("retired_ids", ())),
        )


@dataclass
class SegmentAssignment:
    cluster_to_segment: dict[int, int]
    matched: dict[int, int] = field(default_factory=dict)  # cluster -> kept segment_id
    kept_names: dict[int, dict[str, str]] = field(default_factory=dict)  # cluster -> names
    distances: dict[int, float] = field(default_factory=dict)  # cluster -> distance to its match
    new_segment_ids: list[int] = field(default_factory=list)
    retired_now: list[int] = field(default_factory=list)
    retired_ids: list[int] = field(default_factory=list)  # every id ever retired
    max_segment_id: int = 0
    common_features: list[str] = field(default_factory=list)


def match_segments(
    centroids_transformed: np.ndarray,
    feature_columns,
    scaler,
    previous: PreviousModel | None,
    max_distance: float = DEFAULT_MAX_DISTANCE,
) -> SegmentAssignment:
    """Assign segment ids to the clusters of a new fit (cluster i = row i of the centroids).

    `scaler` is the new model's fitted StandardScaler (mean_, scale_ over `feature_columns`).
    """
    centroids = np.asarray(centroids_transformed, dtype=float)
    k = centroids.shape[0]
    feature_columns = list(feature_columns)
    prev_segments = list(previous.segments) if previous is not None else []
    max_id = 0
    retired_before: list[int] = []
    if previous is not None:
        retired_before = list(previous.retired_ids)
        max_id = max([previous.max_segment_id, *(s.segment_id for s in prev_segments), *retired_before, 0])
    common = [c for c in feature_columns if previous is not None and c in previous.feature_columns]
    pairs: list[tuple[int, int, float]] = []
    if prev_segments and common:
        idx = [feature_columns.index(c) for c in common]
        mean = np.asarray(scaler.mean_, dtype=float)[idx]
        scale = np.asarray(scaler.scale_, dtype=float)[idx]
        scale = np.where(scale > 0, scale, 1.0)
        new_pts = (centroids[:, idx] - mean) / scale
        old_pts = (np.array([[s.centroid[c] for c in common] for s in prev_segments]) - mean) / scale
        dist = cdist(new_pts, old_pts) / math.sqrt(len(common))
        rows, cols = linear_sum_assignment(dist)
        pairs = [
            (int(r), int(c), float(dist[r, c])) for r, c in zip(rows, cols, strict=True) if dist[r, c] <= max_distance
        ]
    out = SegmentAssignment(cluster_to_segment={}, common_features=common)
    for r, c, d in pairs:
        seg = prev_segments[c]
        out.cluster_to_segment[r] = seg.segment_id
        out.matched[r] = seg.segment_id
        out.kept_names[r] = seg.names
        out.distances[r] = d
    # new clusters in canonical cluster order get fresh ids
    for r in range(k):
        if r not in out.cluster_to_segment:
            max_id += 1
            out.cluster_to_segment[r] = max_id
            out.new_segment_ids.append(max_id)
    kept = set(out.matched.values())
    out.retired_now = sorted(s.segment_id for s in prev_segments if s.segment_id not in kept)
    out.retired_ids = sorted(set(retired_before) | set(out.retired_now))
    out.max_segment_id = max_id
    return out


def next_state(
    model_version: str,
    feature_columns,
    assignment: SegmentAssignment,
    centroids_transformed: np.ndarray,
    names: dict[int, dict[str, str]],
    sizes: dict[int, int],
) -> PreviousModel:
    """The state the next refit is matched against (cluster-indexed names and sizes)."""
    feature_columns = list(feature_columns)
    segments = tuple(
        PreviousSegment(
            segment_id=int(assignment.cluster_to_segment[c]),
            **{k: names[c][k] for k in NAME_KEYS},
            centroid={f: float(centroids_transformed[c, j]) for j, f in enumerate(feature_columns)},
            size=int(sizes.get(c, 0)),
        )
        for c in sorted(assignment.cluster_to_segment)
    )
    return PreviousModel(
        model_version=model_version,
        feature_columns=tuple(feature_columns),
        segments=tuple(sorted(segments, key=lambda s: s.segment_id)),
        max_segment_id=int(assignment.max_segment_id),
        retired_ids=tuple(assignment.retired_ids),
    )


def size_movement(
    assignment: SegmentAssignment, sizes_by_segment: dict[int, int], previous: PreviousModel | None
) -> pl.DataFrame:
    """segment_id, status (kept/new/retired), size, previous_size, change: how segment sizes moved
    since the previous model."""
    prev_sizes = {s.segment_id: s.size for s in previous.segments} if previous is not None else {}
    kept = set(assignment.matched.values())
    rows = []
    for seg_id, size in sizes_by_segment.items():
        prev = prev_sizes.get(seg_id) if seg_id in kept else None
        rows.append(
            {
                "segment_id": seg_id,
                "status": "kept" if seg_id in kept else "new",
                "size": size,
                "previous_size": prev,
                "change": None if prev is None else size - prev,
            }
        )
    for seg_id in assignment.retired_now:
        prev = prev_sizes.get(seg_id, 0)
        rows.append({"segment_id": seg_id, "status": "retired", "size": 0, "previous_size": prev, "change": -prev})
    schema = {
        "segment_id": pl.Int32,
        "status": pl.String,
        "size": pl.Int64,
        "previous_size": pl.Int64,
        "change": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema).sort("segment_id")
