"""The code location: one `Definitions`, assembled by one factory.

`dagster dev`, the webserver and the daemon load `defs`; tests and the `lupa` command call
`build_defs(...)` with overrides. Everything a run needs comes from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetSelection,
    Definitions,
    define_asset_job,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from assets.audiences import assets as audiences
from assets.campaigns import assets as campaigns
from assets.common.conventions import business_days
from assets.common.resources import PolicyResource
from assets.core import assets as core
from assets.features import assets as features
from assets.ingest import assets as ingest
from assets.privacy import retention
from assets.publish import assets as publish
from assets.segments import assets as segments
from assets.storage.zones import LupaStorage
from pipelines.automation import (
    failure_alerts_from_env,
    make_landing_sensor,
    make_schedule,
    run_failure_alert,
    source_freshness_alert,
)
from pipelines.executors import executor_from_env
from pipelines.serial_runs import SERIAL_TAG, SERIAL_VALUE
from pipelines.settings import Settings, load_settings

#: each layer's module of Dagster definitions, in the order data flows through them
LAYERS = [ingest, core, features, segments, audiences, publish, campaigns, retention]

#: The whole graph for one business day: partitioned metering assets on D's partition, the rest for D.
#: Its runs carry SERIAL_TAG, which dagster.yaml limits to one run at a time: two daily runs would read
#: each other's half-built warehouse tables (pipelines/serial_runs.py).
daily_job = define_asset_job(
    "daily_job",
    selection=AssetSelection.all(),
    partitions_def=business_days,
    tags={SERIAL_TAG: SERIAL_VALUE},
    description="Everything for business day D: ingest, core, features, segments, audiences, publish, campaigns.",
)

#: Only the metering partitions; used for history loads (a range in one run).
metering_job = define_asset_job(
    "metering_job",
    selection=AssetSelection.assets("ingest_metering", "metering_daily"),
    partitions_def=business_days,
    description="Metering deliveries and daily aggregates for a range of business days (one run per range).",
)


def storage_resource(settings: Settings, **overrides: Any) -> LupaStorage:
    return LupaStorage(
        landing_dir=str(settings.landing_dir),
        data_dir=str(settings.data_dir),
        env=settings.env,
        campaigns_dir=str(settings.campaigns),
        lake_url=settings.lake_url,
        **overrides,
    )


def build_defs(settings: Settings | None = None, resource_overrides: Mapping[str, Any] | None = None) -> Definitions:
    settings = settings or load_settings()
    resources: dict[str, Any] = {
        "storage": storage_resource(settings),
        "alerts": failure_alerts_from_env(settings.var_dir),
        "policy": PolicyResource(),
    }
    resources.update(resource_overrides or {})
    return Definitions(
        # audience_history is declared as a spec by the publish layer, which writes it
        assets=[*load_assets_from_modules(LAYERS), publish.audience_history, campaigns.campaign],
        asset_checks=load_asset_checks_from_modules(LAYERS),
        jobs=[daily_job, metering_job],
        schedules=[make_schedule(daily_job)],
        sensors=[make_landing_sensor(daily_job), run_failure_alert, source_freshness_alert],
        resources=resources,
        executor=executor_from_env(),
    )


defs = build_defs()
