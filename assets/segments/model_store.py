"""Model versions on disk, under a directory the caller gives (the analytics zone of the data
directory, e.g. `$LUPA_DATA_DIR/analytics/models/`; never the git work tree).

Layout: `<base_dir>/<model_version>/`
  * `pipeline.joblib`  the fitted sklearn pipeline (transform, impute, scaler, k-means)
  * `scaler.joblib`    the fitted scaler alone, for matching centroids in a common space
  * `model.json`       feature list, params, k scores and rule, input window, segments (ids, names,
                       descriptions, sizes, centroids), size movement, and the state the next
                       refit's stable ids are matched against

`model_version` is a content hash of the input window, the parameters, the feature data and the
previous model's version (segment ids depend on it): no wall clock, so a re-run of the same day on
the same data gives the same version and rewrites nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib

from models.model_version import CODE_VERSION, _canonical
from models.stable_ids import PreviousModel

if TYPE_CHECKING:
    from models.segmentation import SegmentationResult

PIPELINE_FILE = "pipeline.joblib"
SCALER_FILE = "scaler.joblib"
METADATA_FILE = "model.json"


@dataclass
class StoredModel:
    model_version: str
    path: Path
    metadata: dict[str, Any]

    @property
    def as_of(self) -> date:
        return date.fromisoformat(self.metadata["as_of"])

    @property
    def state(self) -> PreviousModel:
        return PreviousModel.from_dict(self.metadata["state"])

    def pipeline(self):
        return joblib.load(self.path / PIPELINE_FILE)

    def scaler(self):
        return joblib.load(self.path / SCALER_FILE)


def build_metadata(result: SegmentationResult, seq: int) -> dict[str, Any]:
    fit = result.fit
    return _canonical(
        {
            "model_version": result.model_version,
            "code_version": CODE_VERSION,
            "seq": seq,
            "as_of": result.as_of,
            "window": {"start": result.window[0], "end": result.window[1]},
            "n_customers": int(len(fit.labels)),
            "feature_columns": fit.feature_columns,
            "params": result.params,
            "k": fit.k,
            "selection_rule": fit.selection_rule,
            "candidates": [c.as_dict() for c in fit.candidates],
            "segments": result.segment_catalogue.to_dicts(),
            "size_movement": result.size_movement.to_dicts(),
            "previous_version": result.previous_version,
            "state": result.state.to_dict(),
        }
    )


def list_models(base_dir: Path | str) -> list[StoredModel]:
    base = Path(base_dir)
    if not base.is_dir():
        return []
    out = []
    for d in sorted(base.iterdir()):
        meta = d / METADATA_FILE
        if d.is_dir() and meta.is_file():
            out.append(StoredModel(d.name, d, json.loads(meta.read_text(encoding="utf-8"))))
    return out


def save_model(base_dir: Path | str, result: SegmentationResult) -> StoredModel:
    """Write the model version (atomically: a temp dir renamed into place). Saving a version that
    already exists is a no-op, so re-runs are idempotent."""
    base = Path(base_dir)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = base / result.model_version
    if (target / METADATA_FILE).is_file():
        return StoredModel(result.model_version, target, json.loads((target / METADATA_FILE).read_text("utf-8")))
    seq = 1 + max((m.metadata.get("seq", 0) for m in list_models(base)), default=0)
    metadata = build_metadata(result, seq)
    tmp = Path(tempfile.mkdtemp(prefix=f".{result.model_version}.", dir=base))
    try:
        joblib.dump(result.fit.pipeline, tmp / PIPELINE_FILE)
        joblib.dump(result.fit.scaler, tmp / SCALER_FILE)
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / METADATA_FILE).is_file():
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return StoredModel(result.model_version, target, metadata)


def load_model(base_dir: Path | str, model_version: str) -> StoredModel:
    path = Path(base_dir) / model_version
    return StoredModel(model_version, path, json.loads((path / METADATA_FILE).read_text(encoding="utf-8")))


def load_latest_model(base_dir: Path | str, before: date | None = None) -> StoredModel | None:
    """The latest stored model (by as_of, then save order); with `before`, the latest whose as_of
    is strictly earlier, i.e. the previous model for a run on day `before` (a re-run of a day
    therefore matches against the same predecessor and is reproducible)."""
    models = [m for m in list_models(base_dir) if before is None or m.as_of < before]
    if not models:
        return None
    return max(models, key=lambda m: (m.as_of, m.metadata.get("seq", 0), m.model_version))


def load_previous_state(base_dir: Path | str, before: date) -> PreviousModel | None:
    m = load_latest_model(base_dir, before=before)
    return m.state if m is not None else None
