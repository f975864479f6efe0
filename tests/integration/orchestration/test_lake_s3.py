"""The Parquet lake on object storage: the daily run with `LUPA_LAKE_URL=s3://…` on a real S3 server.

moto's standalone S3 server runs on loopback for this module (tests/servers.py). The same tiny
landing zone runs once with the lake under the data directory and once with the lake on the
server; the marts must match table for table and export for export, every Parquet file must be on
the server (none left under the data directory), and the credentials must appear nowhere in the
run's events, config or logs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging

import boto3
import duckdb
import polars as pl
import pytest
from dagster import DagsterInstance
from dagster._serdes import serialize_value

from assets.storage import lake
from assets.storage.mart import exports_link, lake_exports_of
from assets.storage.metering import daily_aggregates, ingest_delivery
from assets.storage.zones import LupaStorage
from pipelines.settings import ConfigurationError, load_settings
from tests.dagster_helpers import run_day
from tests.integration.orchestration.helpers import write_metering_day, write_tiny_landing_zone
from tests.servers import s3_server

DAY = dt.date(2026, 11, 23)

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


@pytest.fixture
def s3_env(s3, monkeypatch):
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return s3


def mart_tables(data_dir) -> dict[str, list[str]]:
    conn = duckdb.connect(str(data_dir / "marketing.duckdb"), read_only=True)
    try:
        names = [n for (n,) in conn.sql("select table_name from information_schema.tables order by 1").fetchall()]
        return {t: sorted(map(repr, conn.sql(f'select * from "{t}"').fetchall())) for t in names}
    finally:
        conn.close()


def export_digests(files: dict) -> dict[str, str]:
    """CSV bytes, and Parquet as rows (the writer's metadata may differ between two writes)."""
    digests = {}
    for name, path in files.items():
        data = path.read_bytes()
        if name.endswith(".parquet"):
            frame = pl.read_parquet(io.BytesIO(data))
            digests[name] = repr(sorted(map(repr, frame.rows())))
        else:
            digests[name] = hashlib.sha256(data).hexdigest()
    return digests


def test_a_daily_run_with_the_lake_on_s3_publishes_the_same_mart_as_with_the_local_lake(tmp_path, s3_env, caplog):
    # every log record at INFO, Dagster's at DEBUG too. (botocore's own DEBUG wire log, off unless an
    # operator turns it on, prints the access key id in request headers; never the secret key.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="dagster")
    local = LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "local"))
    remote = LupaStorage(
        landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "remote"), lake_url=s3_env.lake_url("daily")
    )
    write_tiny_landing_zone(local.landing, DAY)

    assert run_day(local, DAY).success
    with DagsterInstance.ephemeral() as instance:
        result = run_day(remote, DAY, instance=instance)
        assert result.success
        events = serialize_value(instance.all_logs(result.run_id))
        run = instance.get_run_by_id(result.run_id)

    # the same mart: every table row for row, every export
    assert mart_tables(remote.root) == mart_tables(local.root)
    local_exports = {p.name: p for p in exports_link(local.root).resolve().iterdir()}
    remote_exports = lake_exports_of(remote.lake_exports)
    assert sorted(remote_exports) == sorted(local_exports) and any(n.endswith(".parquet") for n in local_exports)
    assert export_digests(remote_exports) == export_digests(local_exports)
    assert (
        daily_aggregates(remote)
        .collect()
        .sort("metering_point_id")
        .equals(daily_aggregates(local).collect().sort("metering_point_id"))
    )

    # every Parquet file is on the server, in the documented layout; none under the data directory
    keys = s3_env.keys("daily/")
    tag = f"{DAY + dt.timedelta(days=1):%Y%m%d}"
    assert f"daily/metering/daily/business_day={DAY}/part.parquet" in keys
    assert f"daily/metering/quarantine/delivery={tag}.parquet" in keys
    assert f"daily/metering/deliveries/delivery={tag}.json" in keys
    assert any(k.startswith(f"daily/metering/readings/business_day={DAY}/delivery={tag}-g") for k in keys)
    assert "daily/mart/exports/CURRENT.json" in keys and f"daily/mart/exports/{DAY}/audience_email.parquet" in keys
    assert not list(remote.root.rglob("*.parquet")), "the lake on S3 leaves no Parquet under the data directory"
    assert (remote.root / "marketing.duckdb").exists() and remote.warehouse_path.exists()

    # the credentials never reach events, metadata, run config or logs (the URL does, and holds none)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (s3_env.secret_key, s3_env.access_key):
        assert secret not in events and secret not in repr(run.run_config) and secret not in logged
    assert s3_env.lake_url("daily") in events  # metadata names the lake (so the check above looked in the right place)


def test_an_uncommitted_generation_is_never_read_and_a_rerun_replaces_the_committed_one(tmp_path, s3_env):
    """Write-then-commit: parts under a generation the manifest does not name (a writer killed
    between upload and commit) are invisible; a re-run commits a new set and removes the old one."""
    storage = LupaStorage(
        landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"), lake_url=s3_env.lake_url("commit")
    )
    write_metering_day(storage.landing, DAY)
    first = ingest_delivery(storage, DAY)
    tag = f"{first.delivered_on:%Y%m%d}"
    folder = storage.metering_dir / "readings" / f"business_day={DAY}"
    committed = sorted(p.name for p in folder.glob("*.parquet"))
    # a killed writer's upload: a whole extra set of rows under a generation nobody committed
    stray = folder / f"delivery={tag}-g9999999999999dead00-0000.parquet"
    lake.write_parquet(lake.read_parquet(folder / committed[0]), stray)

    from assets.storage.metering import aggregate_day, stored_rows

    assert stored_rows(storage, first.delivered_on) == (first.rows_valid, 0)
    rows = aggregate_day(storage, DAY, DAY + dt.timedelta(days=1))
    assert rows == 2
    daily = daily_aggregates(storage).collect()
    assert daily["kwh_total"].to_list() == [12.0, 12.0]  # 24 hours × 0.5 kWh, counted once

    second = ingest_delivery(storage, DAY)
    assert second.rows_valid == first.rows_valid
    now = sorted(p.name for p in folder.glob("*.parquet"))
    assert len(now) == len(committed) and set(now).isdisjoint(committed) and stray.name not in now


def test_the_lake_url_is_a_bucket_and_prefix_without_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("LUPA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LUPA_LAKE_URL", "s3://lupa-lake/prod/")
    assert load_settings().lake_url == "s3://lupa-lake/prod"
    for bad in ("s3://KEY:SECRET@lupa-lake/prod", "s3://lupa-lake/prod?secret=x", "gs://lupa-lake", "s3://"):
        monkeypatch.setenv("LUPA_LAKE_URL", bad)
        with pytest.raises(ConfigurationError, match="LUPA_LAKE_URL"):
            load_settings()


def test_the_server_is_a_real_http_endpoint(s3):
    """Not an in-process mock: a plain boto3 client with its own session talks to the process over HTTP."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name="eu-north-1",
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
    )
    assert s3.bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_erasure_and_retention_reach_the_lake_on_s3(tmp_path, s3_env):
    """The privacy rewrites list, read and replace objects on S3 as they do files: an erased point
    leaves the daily aggregates and the metering quarantine, and retention drops old day partitions."""
    from assets.privacy.erasure import _rewrite_daily, compact_metering_quarantine
    from assets.privacy.retention import drop_partitions, partition_days
    from assets.storage.metering import aggregate_day, daily_root, quarantine_root, readings_root
    from tests.integration.orchestration.helpers import metering_rows
    from tests.landing_builder import GSRN1, GSRN2, write

    storage = LupaStorage(
        landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"), lake_url=s3_env.lake_url("privacy")
    )
    bad = metering_rows(GSRN1, DAY)[0].replace("0,500", "lots")  # quarantined; its raw line names GSRN1
    rows = metering_rows(GSRN1, DAY) + metering_rows(GSRN2, DAY) + [bad]
    write(storage.landing, "metering", f"{DAY + dt.timedelta(days=1):%Y%m%d}", rows)
    outcome = ingest_delivery(storage, DAY)
    assert outcome.rows_quarantined == 1
    aggregate_day(storage, DAY, DAY + dt.timedelta(days=1))

    points = pl.DataFrame(
        {"metering_point_id": [GSRN1], "valid_from": [DAY], "valid_to": [None], "erased_on": [DAY]},
        schema={"metering_point_id": pl.String, "valid_from": pl.Date, "valid_to": pl.Date, "erased_on": pl.Date},
    )
    assert _rewrite_daily(storage, points) == 1
    assert compact_metering_quarantine(storage, points) == 1
    daily = lake.read_parquet(daily_root(storage) / f"business_day={DAY}" / "part.parquet")
    assert daily["metering_point_id"].to_list() == [GSRN2]
    (quarantined,) = sorted(quarantine_root(storage).glob("delivery=*.parquet"))
    assert GSRN1 not in " ".join(lake.read_parquet(quarantined)["raw"].to_list())

    assert partition_days(readings_root(storage)) == [DAY]
    assert drop_partitions(readings_root(storage), [DAY]) == 1
    assert partition_days(readings_root(storage)) == [] and not s3_env.keys("privacy/metering/readings/")


def test_the_lake_follows_the_environment_not_a_filesystem_cached_for_another(tmp_path, s3, monkeypatch):
    """Two servers with their own keys in one process: each write lands where the environment says."""
    with s3_server() as other:
        for server in (s3, other):
            for key, value in server.env.items():
                monkeypatch.setenv(key, value)
            storage = LupaStorage(landing_dir=str(tmp_path), data_dir=str(tmp_path), lake_url=server.lake_url("env"))
            lake.write_text(server.endpoint, storage.lake / "probe.txt")
        assert s3.keys("env/") == other.keys("env/") == ["env/probe.txt"]
