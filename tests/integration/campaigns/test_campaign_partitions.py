"""Through Dagster: the daily run adds each campaign as a partition of `campaign`, with its list size per
channel, left-out people per reason and control-group size; a bad brief is named, never a traceback."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from dagster import AssetKey

from assets.common.calendar import BUSINESS_DAY_TAG
from pipelines.definitions import build_defs
from tests.conftest import GENERATED_END

pytestmark = pytest.mark.slow


def test_each_campaign_is_a_partition_with_its_sizes(generated_pipeline):
    storage, instance = generated_pipeline.storage, generated_pipeline.instance
    folder = storage.campaigns_path
    folder.mkdir(parents=True, exist_ok=True)
    brief = {
        "campaign_id": "IT-SPRING",
        "name": {"fi": "Kevät", "sv": "Vår", "en": "Spring"},
        "audience": "customers",
        "channels": ["email", "sms", "letter", "phone"],
        "send_on": GENERATED_END + dt.timedelta(days=20),
        "control_share": 0.2,
        "response_days": 30,
    }
    (folder / "spring.yaml").write_text(yaml.safe_dump(brief), encoding="utf-8")
    (folder / "typo.yaml").write_text(yaml.safe_dump({**brief, "campaign_id": "IT-TYPO", "chanels": ["email"]}))
    defs = build_defs(resource_overrides={"storage": storage})
    result = defs.resolve_job_def("daily_job").execute_in_process(
        instance=instance,
        partition_key=GENERATED_END.isoformat(),
        tags={BUSINESS_DAY_TAG: GENERATED_END.isoformat()},
        asset_selection=[AssetKey("campaigns")],
    )
    assert result.success
    assert instance.get_dynamic_partitions("campaigns") == ["IT-SPRING"]
    record = instance.fetch_materializations(AssetKey("campaign"), limit=1).records[0]
    meta = record.asset_materialization.metadata
    assert record.asset_materialization.partition == "IT-SPRING"
    sizes = meta["list_size_per_channel"].value
    assert sizes and set(sizes) <= {"email", "sms", "letter", "phone"} and meta["control_group"].value > 0
    assert "not_in_audience" in meta["left_out_per_reason"].value
    overview = instance.fetch_materializations(AssetKey("campaigns"), limit=1).records[0].asset_materialization
    invalid = overview.metadata["invalid_briefs"].value
    assert "typo.yaml" in invalid and "key chanels" in invalid and "Traceback" not in invalid
