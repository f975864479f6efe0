"""A model version is a content hash of its input window, its parameters, the feature data and the
previous model's version (segment ids depend on it): no wall clock, so a re-run of the same day on the
same data gives the same version."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

import numpy as np
import polars as pl

CODE_VERSION = "lupa-segmentation-1"


def _canonical(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return obj


def feature_data_digest(features: pl.DataFrame) -> str:
    """sha256 of the rows sorted by customer_id: the key bytes, then each column's values as
    little-endian float64 (nulls and NaN as one canonical NaN). Independent of polars' own row
    hashing, which is not stable across versions."""
    df = features.sort("customer_id")
    h = hashlib.sha256()
    h.update("\x1f".join(df.columns).encode())
    h.update("\x1e".join(df["customer_id"].cast(pl.String).to_list()).encode())
    for col in df.columns:
        if col == "customer_id":
            continue
        s = df[col]
        if s.dtype.is_numeric() or s.dtype == pl.Boolean:
            arr = s.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype("<f8")
            arr = np.where(np.isnan(arr), np.nan, arr)  # one NaN bit pattern
            h.update(arr.tobytes())
        else:
            h.update("\x1e".join("\x00" if v is None else str(v) for v in s.to_list()).encode())
    return h.hexdigest()


def compute_model_version(
    window: tuple[date, date],
    params: dict[str, Any],
    features: pl.DataFrame,
    previous_version: str | None = None,
) -> str:
    payload = {
        "code": CODE_VERSION,
        "window": [window[0].isoformat(), window[1].isoformat()],
        "params": _canonical(params),
        "features": feature_data_digest(features),
        "previous": previous_version,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
