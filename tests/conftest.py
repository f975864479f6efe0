"""Test isolation: every test session gets its own var/ folder, never the developer's."""

import os
import shutil
import tempfile
from pathlib import Path

_SESSION_VAR = Path(tempfile.mkdtemp(prefix="lupa-test-var-"))
os.environ["LUPA_VAR_DIR"] = str(_SESSION_VAR)
# Dagster writes telemetry ids and logs under DAGSTER_HOME for any instance that does not read our
# dagster.yaml (ephemeral test instances): point it at a session copy, never at the repository.
_HOME = _SESSION_VAR / "dagster_home"
_HOME.mkdir()
shutil.copy(Path(__file__).resolve().parent.parent / "dagster.yaml", _HOME / "dagster.yaml")
os.environ["DAGSTER_HOME"] = str(_HOME)
os.environ["LUPA_DAGSTER_STORAGE"] = str(_SESSION_VAR / "dagster")
os.environ["LUPA_DAGSTER_COMPUTE_LOGS"] = str(_SESSION_VAR / "dagster" / "compute_logs")
os.environ.setdefault("LUPA_ENV", "demo")
os.environ.pop("LUPA_LANDING_DIR", None)
os.environ.pop("LUPA_DATA_DIR", None)


import datetime as dt  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402

GENERATED_END = dt.date(2026, 11, 24)


@dataclass
class GeneratedPipeline:
    root: Path
    storage: object
    instance: object


@pytest.fixture(scope="session")
def generated_pipeline(tmp_path_factory):
    """The real pipeline on a small generated landing zone (150 customers, 200 days), run once per
    session through Dagster on a persistent instance: a metering range run, then the daily run."""
    from dagster import DagsterInstance

    from assets.common.calendar import BUSINESS_DAY_TAG
    from pipelines.definitions import build_defs
    from pipelines.demo_data import generate_landing_zone
    from tests.dagster_helpers import storage_for

    root = tmp_path_factory.mktemp("generated")
    storage = storage_for(root)
    generate_landing_zone(
        Path(storage.landing_dir), customers=150, days=200, end=GENERATED_END, seed=7, truth_dir=root / "truth"
    )
    (root / "dagster").mkdir()
    instance = DagsterInstance.local_temp(str(root / "dagster"))
    defs = build_defs(resource_overrides={"storage": storage})
    start = GENERATED_END - dt.timedelta(days=199)
    range_tags = {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": GENERATED_END.isoformat(),
        BUSINESS_DAY_TAG: GENERATED_END.isoformat(),
    }
    assert defs.resolve_job_def("metering_job").execute_in_process(instance=instance, tags=range_tags).success
    day_tags = {BUSINESS_DAY_TAG: GENERATED_END.isoformat()}
    assert (
        defs.resolve_job_def("daily_job")
        .execute_in_process(instance=instance, partition_key=GENERATED_END.isoformat(), tags=day_tags)
        .success
    )
    yield GeneratedPipeline(root, storage, instance)
    instance.dispose()
