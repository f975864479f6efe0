"""Production instance storage: the real daily job on Postgres, configured by docs/deploy/dagster.production.yaml.

A throwaway PostgreSQL cluster (Debian's server binaries; CI installs them) runs on loopback for
this module. Missing binaries fail the tests with a clear message: they are not optional here.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import yaml
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
    AssetCheckExecutionRecordStatus,
)

from pipelines.definitions import build_defs
from pipelines.settings import ConfigurationError, load_settings
from tests.dagster_helpers import run_day
from tests.integration.orchestration.helpers import REPO, VENV_BIN, Installation, free_port, write_tiny_landing_zone

PRODUCTION_YAML = REPO / "docs" / "deploy" / "dagster.production.yaml"
DAY = dt.date(2026, 11, 23)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    db: str

    @property
    def env(self) -> dict[str, str]:
        """What docs/deploy/dagster.production.yaml reads (in production: a ConfigMap and a Secret)."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db,
        }

    def connect(self):
        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.db)


def postgres_bindir() -> Path:
    """Debian's server binaries (/usr/lib/postgresql/<major>/bin), newest major first."""
    candidates = [Path(os.environ["LUPA_TEST_PG_BINDIR"])] if os.environ.get("LUPA_TEST_PG_BINDIR") else []
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), key=lambda p: int(p.parent.name), reverse=True
    )
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin. "
        "Install Debian's `postgresql` package (.ci/run does: apt-get install postgresql), "
        "or point LUPA_TEST_PG_BINDIR at a directory holding initdb and pg_ctl.",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster in a temporary directory, on 127.0.0.1 and a free port, password auth."""
    bindir = postgres_bindir()
    as_root = os.geteuid() == 0  # initdb refuses to run as root: run the server as the `postgres` user
    # under /tmp, which the postgres user can traverse (TMPDIR may be a private directory), and short
    # enough for the server's unix socket path
    root = Path(tempfile.mkdtemp(prefix="lupa-pg-", dir="/tmp" if as_root and os.path.isdir("/tmp") else None))

    def pg(*command: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        return subprocess.run(prefix + list(command), capture_output=True, text=True, timeout=120, check=False)

    if as_root:
        shutil.chown(root, "postgres", "postgres")
    data, log, pwfile = root / "data", root / "server.log", root / "pwfile"
    password = secrets.token_hex(16)
    pwfile.write_text(password + "\n")
    if as_root:
        shutil.chown(pwfile, "postgres", "postgres")
    done = pg(
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-U",
        "lupa",
        f"--pwfile={pwfile}",
        "--auth=scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    )
    pwfile.unlink()
    if done.returncode:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
    port = None
    for _attempt in range(3):  # another process may take the free port before the server binds it
        candidate = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {candidate} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        done = pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start")
        if done.returncode == 0:
            port = candidate
            break
    if port is None:
        message = log.read_text()[-2000:] if log.exists() else done.stderr
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start:\n{message}", pytrace=False)
    server = PostgresServer("127.0.0.1", port, "lupa", password, "dagster")
    try:
        admin = psycopg2.connect(host=server.host, port=port, user="lupa", password=password, dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("create database dagster")
        admin.close()
        yield server
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def production(tmp_path, monkeypatch, postgres) -> Installation:
    """An installation whose DAGSTER_HOME holds docs/deploy/dagster.production.yaml, on the test cluster."""
    inst = Installation(tmp_path, PRODUCTION_YAML)
    env = inst.env | postgres.env | {"LUPA_ENV": "production", "LUPA_PSEUDONYM_KEY": secrets.token_hex(32)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return inst


# ---- configuration ---------------------------------------------------------------------------


def test_an_object_storage_url_as_data_directory_is_refused_not_made_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LUPA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LUPA_DATA_DIR", "s3://lupa-lake/data")
    with pytest.raises(ConfigurationError, match="LUPA_DATA_DIR must be a local or mounted directory"):
        load_settings()
    assert not (tmp_path / "s3:").exists() and not Path("s3:").exists()


def test_production_refuses_to_start_without_the_pseudonym_key(tmp_path, monkeypatch):
    monkeypatch.setenv("LUPA_ENV", "production")
    monkeypatch.delenv("LUPA_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("LUPA_VAR_DIR", str(tmp_path / "var"))
    with pytest.raises(ConfigurationError, match="LUPA_PSEUDONYM_KEY"):
        load_settings()
    with pytest.raises(ConfigurationError, match="LUPA_PSEUDONYM_KEY"):
        build_defs()
    assert not (tmp_path / "var" / "secrets").exists(), "production must never generate a key of its own"
    # the command an operator runs says why, and exits non-zero (not a traceback, not a run)
    env = {k: v for k, v in os.environ.items() if k != "LUPA_PSEUDONYM_KEY"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [str(VENV_BIN / "lupa"), "daily", "--date", DAY.isoformat()],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "LUPA_PSEUDONYM_KEY" in done.stderr and "Traceback" not in done.stderr


def test_definitions_load_with_production_settings(production):
    defs = build_defs()
    storage = defs.resources["storage"]
    assert storage.env == "production"
    assert (storage.landing_dir, storage.data_dir) == (str(production.landing), str(production.data))
    assert {job.name for job in defs.jobs} >= {"daily_job", "metering_job"}
    assert defs.resolve_job_def("daily_job").partitions_def is not None
    assert defs.resolve_schedule_def("daily_run").execution_timezone == "Europe/Helsinki"
    # the code location loads the way the webserver, the daemon and a code server load it, on Postgres
    done = subprocess.run(
        [str(VENV_BIN / "dagster"), "definitions", "validate", "-m", "pipelines.definitions"],
        env=production.subprocess_env(),
        cwd=production.root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert os.environ["LUPA_PSEUDONYM_KEY"] not in done.stdout + done.stderr


def test_the_production_instance_yaml_is_the_documented_one(production):
    """The file loads as an instance on Postgres; the parts this machine cannot run are named, not hidden."""
    config = yaml.safe_load(PRODUCTION_YAML.read_text())
    assert set(config["storage"]) == {"postgres"}
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert instance.event_log_storage.supports_global_concurrency_limits
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_monitoring_enabled
        launcher = instance.get_ref().run_launcher_data
        assert (launcher.module_name, launcher.class_name) == ("dagster_k8s", "K8sRunLauncher")
        # dagster-k8s is pinned (requirements.lock): the block passes the launcher's own config schema
        import dagster_k8s
        from dagster._config import process_config

        from tests.integration.orchestration.test_kubernetes_config import K8S_ENV

        with pytest.MonkeyPatch.context() as patch:
            for key, value in K8S_ENV.items():
                patch.setenv(key, value)
            outcome = process_config(dagster_k8s.K8sRunLauncher.config_type(), launcher.config_dict)
        assert outcome.success, outcome.errors
    assert "lupa-pseudonym-key" in config["run_launcher"]["config"]["env_secrets"]


# ---- the daily run on Postgres ---------------------------------------------------------------


def test_daily_job_run_is_recorded_in_postgres(production, postgres):
    write_tiny_landing_zone(production.landing, DAY)
    with DagsterInstance.get() as instance:
        defs = build_defs(resource_overrides={"storage": production.storage()})
        job = defs.resolve_job_def("daily_job")
        result = run_day(production.storage(), DAY, instance=instance)
        assert result.success

        run = instance.get_run_by_id(result.run_id)
        assert run.status == DagsterRunStatus.SUCCESS and run.job_name == "daily_job"
        assert run.tags["dagster/partition"] == DAY.isoformat()

        asset_keys = set(job.asset_layer.executable_asset_keys)
        check_keys = set(job.asset_layer.asset_graph.asset_check_keys)
        assert {AssetKey("ingest_metering"), AssetKey("customers")} <= asset_keys
        assert check_keys, "the daily job evaluates asset checks"
        for key in asset_keys:
            latest = instance.fetch_materializations(key, limit=1).records
            assert latest and latest[0].run_id == result.run_id, (
                f"{key.to_user_string()} has no materialisation from the run"
            )
        metering = instance.fetch_materializations(AssetKey("ingest_metering"), limit=1).records[0]
        assert metering.partition_key == DAY.isoformat()
        assert metering.asset_materialization.metadata["rows_read"].value == 48
        evaluations = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(check_keys))
        assert set(evaluations) == check_keys
        assert {e.run_id for e in evaluations.values()} == {result.run_id}
        assert all(e.status in COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES for e in evaluations.values())
        conservation = {k: e.status for k, e in evaluations.items() if k.name == "conservation"}
        assert conservation and set(conservation.values()) == {AssetCheckExecutionRecordStatus.SUCCEEDED}

        # the same facts, read straight from Postgres: nothing went to SQLite on the side
        with closing(postgres.connect()) as conn, conn.cursor() as cursor:
            cursor.execute("select status from runs where run_id = %s", (result.run_id,))
            assert cursor.fetchall() == [("SUCCESS",)]
            cursor.execute(
                "select dagster_event_type, count(*) from event_logs where run_id = %s group by 1", (result.run_id,)
            )
            counts = dict(cursor.fetchall())
            assert counts[DagsterEventType.ASSET_MATERIALIZATION.value] >= len(asset_keys)
            assert counts[DagsterEventType.ASSET_CHECK_EVALUATION.value] == len(check_keys)
            cursor.execute("select count(distinct asset_key) from asset_keys")
            assert cursor.fetchone()[0] >= len(asset_keys)
            cursor.execute("select count(*) from asset_check_executions where run_id = %s", (result.run_id,))
            assert cursor.fetchone()[0] == len(check_keys)
            # every DuckDB writer pool the assets declare got its one slot (pools > default_limit) in
            # Postgres, where runs in other processes and pods claim it; the run released them all
            pools = {node.pool for node in job.all_node_defs if node.pool}
            assert pools == {"duckdb_files"}
            cursor.execute("select concurrency_key, count(*), count(run_id) from concurrency_slots group by 1")
            assert {key: (slots, held) for key, slots, held in cursor.fetchall()} == {pool: (1, 0) for pool in pools}
        assert not list(production.root.rglob("*.db")), "an instance database was written outside Postgres"
