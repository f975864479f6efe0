"""Kubernetes, as far as it can be checked without a cluster (none runs here).

The Helm values' run launcher, the production instance's run launcher and the `k8s_job_executor`
run config are validated against dagster-k8s's own config schemas, and the definitions load with
`LUPA_EXECUTOR=k8s` and accept that run config. Nothing here creates a pod.
"""

from __future__ import annotations

import re

import dagster
import yaml
from dagster._config import process_config
from dagster._core.execution.api import create_execution_plan
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.version import __version__ as dagster_k8s_version

from tests.integration.orchestration.helpers import REPO

DEPLOY = REPO / "docs" / "deploy"


def snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def helm_launcher_config(values: dict) -> dict:
    """What the chart renders into dagster.yaml's run_launcher config from `runLauncher.config.k8sRunLauncher`
    (camelCase keys to the launcher's snake_case; `[{name: x}]` lists of Secrets/ConfigMaps to names;
    Kubernetes objects keep their own field names, which dagster-k8s accepts)."""
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {}
    for key, value in launcher.items():
        if key in ("envSecrets", "envConfigMaps"):
            value = [v["name"] for v in value]
        if key == "runK8sConfig":
            value = {snake(k): v for k, v in value.items()}
        config[snake(key)] = value
    # set by the chart itself from the release
    return config | {
        "instance_config_map": "dagster-instance",
        "postgres_password_secret": "dagster-postgresql-secret",
        "dagster_home": "/opt/dagster/dagster_home",
        "service_account_name": values["global"]["serviceAccountName"],
        "load_incluster_config": True,
    }


def test_dagster_k8s_is_pinned_on_the_release_train_of_dagster():
    lock = (REPO / "requirements.lock").read_text()
    assert f"dagster-k8s=={dagster_k8s_version}" in lock
    assert dagster_k8s_version.split(".")[1] == str(int(dagster.__version__.split(".")[1]) + 16)  # 0.29 ↔ 1.13


def test_the_helm_values_run_launcher_passes_the_k8s_run_launcher_schema():
    values = yaml.safe_load((DEPLOY / "helm-values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    outcome = process_config(K8sRunLauncher.config_type(), helm_launcher_config(values))
    assert outcome.success, outcome.errors
    assert "lupa-pseudonym-key" in outcome.value["env_secrets"]


#: what the production file reads from the environment for its run launcher (a ConfigMap in the cluster)
K8S_ENV = {
    "DAGSTER_K8S_JOB_NAMESPACE": "lupa",
    "DAGSTER_K8S_SERVICE_ACCOUNT": "lupa-dagster",
    "LUPA_IMAGE": "registry.example/lupa:1.0.0",
    "DAGSTER_HOME": "/opt/dagster/dagster_home",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
}


def test_the_production_instance_run_launcher_passes_the_schema(monkeypatch):
    for key, value in K8S_ENV.items():
        monkeypatch.setenv(key, value)
    config = yaml.safe_load((DEPLOY / "dagster.production.yaml").read_text())["run_launcher"]
    assert (config["module"], config["class"]) == ("dagster_k8s", "K8sRunLauncher")
    outcome = process_config(K8sRunLauncher.config_type(), config["config"])
    assert outcome.success, outcome.errors


def test_the_definitions_load_with_the_k8s_executor_and_accept_its_run_config(monkeypatch, tmp_path):
    monkeypatch.setenv("LUPA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LUPA_EXECUTOR", "k8s")
    from pipelines.definitions import build_defs

    run_config = yaml.safe_load((DEPLOY / "k8s-executor.yaml").read_text())
    outcome = process_config(k8s_job_executor.config_schema.config_type, run_config["execution"]["config"])
    assert outcome.success, outcome.errors

    defs = build_defs()
    job = defs.resolve_job_def("daily_job")
    assert job.executor_def.name == "k8s"
    # the job validates the whole run config (executor included) and plans every step
    plan = create_execution_plan(job, run_config=run_config)
    assert len(plan.step_keys_to_execute) >= 20
