"""A real client: dagster-webserver on loopback after a real run, read through GraphQL and headless Chromium.

The screenshots land in test-artifacts/ (git-ignored; CI keeps them as artefacts). Chromium comes
from Debian (.ci/run installs it); without it the browser test fails, it is not skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance

from pipelines.definitions import build_defs
from tests.dagster_helpers import run_day
from tests.integration.orchestration.helpers import REPO, VENV_BIN, Installation, free_port, write_tiny_landing_zone

DAY = dt.date(2026, 11, 23)
ARTIFACTS = REPO / "test-artifacts"
LOCATION = "pipelines.definitions"  # the code location name `-m pipelines.definitions` gives

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass
class Webserver:
    url: str
    run_id: str
    installation: Installation
    log: Path

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def stop(process: subprocess.Popen) -> None:
    """Stop the webserver and its code server (its own process group, started by this test)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


UI_BRIEF = {
    "campaign_id": "UI-TEST",
    "name": {"fi": "Testi", "sv": "Test", "en": "Test"},
    "audience": "customers",
    "channels": ["email", "letter"],
    "send_on": (DAY + dt.timedelta(days=14)).isoformat(),
    "control_share": 0.1,
    "response_days": 30,
}


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    installation = Installation(tmp_path_factory.mktemp("ui"), REPO / "dagster.yaml")
    write_tiny_landing_zone(installation.landing, DAY)
    # one campaign brief, so the UI shows the `campaign` asset with a partition of its own
    briefs = installation.storage().campaigns_path
    briefs.mkdir(parents=True)
    (briefs / "ui.yaml").write_text(json.dumps(UI_BRIEF), encoding="utf-8")
    with pytest.MonkeyPatch.context() as env:
        for key, value in installation.env.items():
            env.setenv(key, value)
        with DagsterInstance.get() as instance:  # the persistent instance the webserver then reads
            result = run_day(installation.storage(), DAY, instance=instance)
    assert result.success

    port = free_port()
    log = installation.root / "webserver.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(VENV_BIN / "dagster-webserver"), "-m", LOCATION, "-h", "127.0.0.1", "-p", str(port)],
            env=installation.subprocess_env(),
            cwd=installation.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Webserver(f"http://127.0.0.1:{port}", result.run_id, installation, log)
    try:
        deadline = time.monotonic() + 150
        while True:
            if process.poll() is not None:
                pytest.fail(f"dagster-webserver exited with {process.returncode}:\n{server.log_tail()}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{server.url}/server_info", timeout=5) as response:
                    if json.loads(response.read()).get("dagster_version"):
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"dagster-webserver did not answer /server_info in 150 s:\n{server.log_tail()}", pytrace=False
                )
            time.sleep(0.5)
        yield server
    finally:
        stop(process)


def expected_graph():
    """What the UI must show: every asset and check of the definitions, and what daily_job runs."""
    defs = build_defs()
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    partitioned = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).partitions_def}
    # declared, not materialised by a step of their own: audience_history, which marketing_mart records,
    # and campaign (one partition per brief), which the campaigns step records
    recorded = {key.to_user_string() for key in graph.get_all_asset_keys() if not graph.get(key).is_executable}
    layer = defs.resolve_job_def("daily_job").asset_layer
    run_assets = {key.to_user_string() for key in layer.executable_asset_keys}
    run_checks = {(key.asset_key.to_user_string(), key.name) for key in layer.asset_graph.asset_check_keys}
    return assets, checks, groups, partitioned, run_assets, run_checks, recorded


def test_graphql_shows_every_asset_and_check_with_its_latest_materialisation(webserver):
    assets, checks, groups, partitioned, run_assets, run_checks, recorded = expected_graph()
    data = webserver.graphql("""
        {
          assetNodes {
            assetKey { path }
            groupName
            assetMaterializations(limit: 1) { runId partition }
            assetChecksOrError {
              __typename
              ... on AssetChecks { checks { name executionForLatestMaterialization { runId status } } }
            }
          }
        }
    """)
    nodes = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
    assert set(nodes) == assets, f"the UI and the definitions disagree:\n{webserver.log_tail()}"
    assert {node["groupName"] for node in nodes.values()} == groups
    seen_checks = set()
    for name, node in nodes.items():
        latest = node["assetMaterializations"]
        if name in run_assets | recorded:
            assert latest and latest[0]["runId"] == webserver.run_id, f"{name}: no materialisation from the run"
            partition = UI_BRIEF["campaign_id"] if name == "campaign" else DAY.isoformat()
            assert latest[0]["partition"] == (partition if name in partitioned else None), name
        assert node["assetChecksOrError"]["__typename"] == "AssetChecks", (name, node["assetChecksOrError"])
        for check in node["assetChecksOrError"]["checks"]:
            seen_checks.add((name, check["name"]))
            execution = check["executionForLatestMaterialization"]
            if (name, check["name"]) not in run_checks:
                continue
            assert execution and execution["runId"] == webserver.run_id, (
                f"{name}.{check['name']} was not evaluated by the run"
            )
            assert execution["status"] in {"SUCCEEDED", "FAILED"}, (name, check["name"], execution)
    assert seen_checks == checks
    assert recorded == {"audience_history", "campaign"}
    assert run_assets == assets - recorded, "daily_job is meant to cover the whole graph"

    run = webserver.graphql(
        f'{{ runOrError(runId: "{webserver.run_id}") {{ __typename ... on Run {{ status jobName }} }} }}'
    )
    assert run["runOrError"] == {"__typename": "Run", "status": "SUCCESS", "jobName": "daily_job"}


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if not path:
        pytest.fail(
            "Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)", pytrace=False
        )
    return path


def render(url: str, screenshot: Path, profile: Path) -> str:
    """Load a page in headless Chromium, save a screenshot and return the rendered DOM."""
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1600,1000",
        "--virtual-time-budget=15000",
        f"--screenshot={screenshot}",
        "--dump-dom",
        url,
    ]
    screenshot.unlink(missing_ok=True)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    screenshot.chmod(0o644)  # Chromium writes 0600; CI collects test-artifacts/ as build artefacts
    return done.stdout


def test_chromium_renders_the_asset_graph(webserver, tmp_path):
    groups = expected_graph()[2]
    ARTIFACTS.mkdir(exist_ok=True)

    # the global asset lineage: one box per group, wired ingest → core → … → publish
    lineage = ARTIFACTS / "asset-graph.png"
    dom = render(f"{webserver.url}/asset-groups", lineage, tmp_path / "profile")
    assert lineage.stat().st_size > 20_000, "the screenshot is (nearly) blank"
    assert "Global asset lineage" in dom
    missing = {group for group in groups if f">{group}<" not in dom}
    assert not missing, f"groups not rendered in the graph: {missing}"

    # one group expanded: its assets as nodes, with the run's materialisations and check results
    ingest = ARTIFACTS / "asset-graph-ingest.png"
    dom = render(f"{webserver.url}/locations/{LOCATION}/asset-groups/ingest/lineage", ingest, tmp_path / "profile")
    assert ingest.stat().st_size > 20_000
    assert "ingest_customers" in dom and "Materialized" in dom
