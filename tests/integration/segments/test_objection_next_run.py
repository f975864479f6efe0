"""A profiling objection (GDPR Art. 21(2)) delivered to the landing zone takes effect in the next
daily run: the customer leaves the profiling population, the features, the segments and the segment
fields of every audience.

Day D is the session's generated pipeline (150 customers, 200 days of metering), copied so that the
next day's run changes nothing other tests read; only the run for D+1 is paid for here."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import polars as pl

from assets.storage.mart import mart_path, read_published
from pipelines.explain import explain
from tests.conftest import GENERATED_END
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import write

D = GENERATED_END
NEXT = D + dt.timedelta(days=1)
CHANNELS = ("email", "sms", "letter", "phone")


def analytics_ids(storage, table: str) -> set[str]:
    conn = duckdb.connect(str(storage.analytics_path), read_only=True)
    try:
        return {c for (c,) in conn.sql(f'select customer_id from "{table}"').fetchall()}
    finally:
        conn.close()


def segmented_in_audiences(storage) -> dict[str, set[str]]:
    """Per channel, the customers whose audience row carries a segment."""
    return {
        ch: set(
            read_published(storage.root, f"audience_{ch}")
            .filter(pl.col("segment_id").is_not_null())["customer_id"]
            .to_list()
        )
        for ch in CHANNELS
    }


def test_a_profiling_objection_delivered_for_the_next_day_takes_effect_in_its_run(generated_pipeline, tmp_path):
    for part in ("landing", "data"):
        shutil.copytree(generated_pipeline.root / part, tmp_path / part, symlinks=True)
    storage = storage_for(tmp_path)

    # someone segmented on D who is also in an audience with that segment: the objection must reach both
    segmented = analytics_ids(storage, "customer_segments")
    in_audiences = set().union(*segmented_in_audiences(storage).values())
    objector = min(
        segmented & in_audiences & set(read_published(storage.root, "customer_segments")["customer_id"].to_list())
    )
    for table in ("profiling_population", "customer_features"):
        assert objector in analytics_ids(storage, table), table
    assert "  segment " in explain(mart_path(storage.root), objector)

    # the objection arrives with the deliveries for D+1 (files dated D+2)
    delivered = NEXT + dt.timedelta(days=1)
    path = write(
        storage.landing,
        "consents",
        delivered.strftime("%Y%m%d"),
        [
            f"OBJ-TEST-1;{objector};profiling;;withdrawn;{NEXT.isoformat()}T09:30:00+02:00;customer_service;v3;call-obj-1"
        ],
    )
    assert path.name.endswith(f"_{delivered:%Y%m%d}.csv")

    assert run_day(storage, NEXT).success
    for table in ("profiling_population", "customer_features", "customer_segments"):
        assert objector not in analytics_ids(storage, table), table
    assert objector not in read_published(storage.root, "customer_segments")["customer_id"].to_list()
    for channel, ids in segmented_in_audiences(storage).items():
        assert objector not in ids, channel
        assert read_published(storage.root, f"audience_{channel}")["as_of"].unique().to_list() == [NEXT], (
            channel
        )  # the D+1 mart was published
    assert "segment: none" in explain(mart_path(storage.root), objector)
    # the others keep theirs
    assert len(analytics_ids(storage, "customer_segments")) >= len(segmented) - 5
