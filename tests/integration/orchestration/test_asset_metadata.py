"""Every asset is described for the people who look at it in the UI: a description, an owner, kinds,
a group, and, for every asset that is a table, its column schema on the latest materialisation."""

from __future__ import annotations

from dagster import AssetKey

from pipelines.definitions import build_defs

#: assets that are not one table: a model version, a clean-up report, a whole published database
NOT_ONE_TABLE = {"segment_model", "retention", "marketing_mart", "campaigns", "campaign"}


def test_every_asset_has_a_description_an_owner_kinds_and_a_group():
    graph = build_defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        assert node.description, name
        assert node.owners, name
        assert node.kinds, name
        assert node.group_name in {"ingest", "core", "features", "segments", "audiences", "publish", "campaigns"}, name


def test_every_table_asset_records_its_column_schema(generated_pipeline):
    graph = build_defs().resolve_asset_graph()
    missing = []
    for key in sorted(graph.get_all_asset_keys(), key=AssetKey.to_user_string):
        name = key.to_user_string()
        if name in NOT_ONE_TABLE:
            continue
        records = generated_pipeline.instance.fetch_materializations(key, limit=1).records
        assert records, f"{name} was never materialised by the session's pipeline"
        metadata = records[0].asset_materialization.metadata
        definition = graph.get(key).metadata  # ingest assets declare theirs on the definition
        schema = metadata.get("dagster/column_schema") or definition.get("dagster/column_schema")
        schema = getattr(schema, "schema", schema)  # a metadata value wraps the TableSchema
        if schema is None or not schema.columns:
            missing.append(name)
    assert missing == []


def test_every_step_that_opens_a_duckdb_file_holds_the_one_duckdb_pool():
    """Under the multiprocess executor two steps must never have a DuckDB file open at once (DuckDB
    refuses even a read-only open while another process writes). Only the metering partitions,
    which write Parquet alone, and the source-freshness checks, which look at landing files, run
    without the pool, so that they run in parallel."""
    job = build_defs().resolve_job_def("daily_job")
    pools = {node.name: node.pool for node in job.all_node_defs}
    without_duckdb = {"ingest_metering", "metering_daily"} | {
        name for name in pools if name.endswith("_source_freshness")
    }
    assert {name for name, pool in pools.items() if pool is None} == without_duckdb
    assert {pool for name, pool in pools.items() if name not in without_duckdb} == {"duckdb_files"}


def test_downstream_materialisations_link_the_files_they_read(generated_pipeline):
    """Ingest assets link their landing files; the layers after them link the DuckDB files and
    Parquet folders they read, so an engineer can open them from the UI."""
    for name in ("profiling_population", "customer_features", "segment_model", "audience_email"):
        metadata = (
            generated_pipeline.instance.fetch_materializations(AssetKey(name), limit=1)
            .records[0]
            .asset_materialization.metadata
        )
        links = {key: value.value for key, value in metadata.items() if key.startswith("read_from/")}
        assert links, name
        assert all(str(generated_pipeline.root) in path for path in links.values()), name
