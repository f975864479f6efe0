"""Run the real job from the real factory, on a throwaway instance and data directory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dagster import DagsterInstance

from assets.common.calendar import BUSINESS_DAY_TAG
from assets.storage.zones import LupaStorage
from pipelines.definitions import build_defs


def storage_for(tmp_path: Path) -> LupaStorage:
    return LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))


def run_day(
    storage: LupaStorage,
    day: dt.date,
    instance: DagsterInstance | None = None,
    raise_on_error: bool = True,
    job: str = "daily_job",
):
    defs = build_defs(resource_overrides={"storage": storage})
    instance = instance or DagsterInstance.ephemeral()
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance,
        partition_key=day.isoformat(),
        tags={BUSINESS_DAY_TAG: day.isoformat()},
        raise_on_error=raise_on_error,
    )
