"""Segments on the generator's data: they recover the household archetypes, leave out objectors and
minors everywhere, and a re-run of the day gives the same model and the same segment ids."""

import duckdb
import polars as pl
from sklearn.metrics import adjusted_rand_score

from assets.common.calendar import BUSINESS_DAY_TAG
from assets.storage.mart import read_published
from pipelines.definitions import build_defs
from tests.conftest import GENERATED_END


def analytics(storage, table: str) -> pl.DataFrame:
    conn = duckdb.connect(str(storage.analytics_path), read_only=True)
    try:
        return conn.sql(f'select * from "{table}"').pl()
    finally:
        conn.close()


def warehouse(storage, sql: str) -> pl.DataFrame:
    conn = duckdb.connect(str(storage.warehouse_path), read_only=True)
    try:
        return conn.sql(sql).pl()
    finally:
        conn.close()


def test_segments_recover_the_household_archetypes(generated_pipeline):
    segments = read_published(generated_pipeline.storage.root, "customer_segments")
    truth = pl.read_csv(generated_pipeline.root / "truth" / "archetypes.csv", separator=";")
    joined = segments.join(truth, on="customer_id")
    assert joined.height == segments.height >= 100
    assert adjusted_rand_score(joined["archetype"], joined["segment_id"]) >= 0.8


def test_objectors_minors_companies_and_the_deceased_are_in_no_profiling_table(generated_pipeline):
    storage = generated_pipeline.storage
    d = GENERATED_END
    left_out = set(
        warehouse(
            storage,
            f"""
        select c.customer_id from customers c left join consent_state s
          on s.customer_id = c.customer_id and s.purpose = 'profiling'
        where s.state = 'withdrawn' or c.customer_type = 'company' or c.deceased_on <= date '{d}'
           or c.birth_date > date '{d}' - interval 18 year
    """,
        )["customer_id"].to_list()
    )
    objectors = set(
        warehouse(storage, "select customer_id from consent_state where purpose = 'profiling' and state = 'withdrawn'")[
            "customer_id"
        ].to_list()
    )
    assert objectors
    left_out |= objectors
    tables = {
        name: set(analytics(storage, name)["customer_id"].to_list())
        for name in ("profiling_population", "customer_features", "customer_segments")
    }
    tables["mart.customer_segments"] = set(read_published(storage.root, "customer_segments")["customer_id"].to_list())
    for channel in ("email", "sms", "letter", "phone"):
        audience = read_published(storage.root, f"audience_{channel}")
        tables[f"mart.audience_{channel} (with a segment)"] = set(
            audience.filter(pl.col("segment_id").is_not_null())["customer_id"].to_list()
        )
    for name, ids in tables.items():
        assert not ids & left_out, name


def test_a_rerun_gives_the_same_model_version_and_segment_ids(generated_pipeline):
    storage = generated_pipeline.storage
    before = analytics(storage, "customer_segments").sort("customer_id")
    defs = build_defs(resource_overrides={"storage": storage})
    job = defs.resolve_job_def("daily_job")
    result = job.execute_in_process(
        instance=generated_pipeline.instance,
        partition_key=GENERATED_END.isoformat(),
        tags={BUSINESS_DAY_TAG: GENERATED_END.isoformat()},
        asset_selection=[
            k
            for k in job.asset_layer.asset_graph.get_all_asset_keys()
            if k.path[-1]
            in ("profiling_population", "customer_features", "segment_model", "customer_segments", "segment_catalogue")
        ],
    )
    assert result.success
    after = analytics(storage, "customer_segments").sort("customer_id")
    assert after.equals(before)
