"""The shape of the code location, pinned in a reviewed snapshot.

Renaming an asset key, moving an asset to another group, dropping a dependency, changing the partitions,
losing a backfill policy or turning a blocking check into a non-blocking one are all silent in a code
review of Python: each is one argument in a decorator, and Dagster loads the result without complaint.
Yet each changes what operators see, what the daily job runs and which materialisations survive
(a renamed key starts a new, empty history). This test turns those changes into a diff of
`definitions_snapshot.json` that must be committed on purpose.

It only builds the `Definitions` (default resources, nothing executed), so it takes a few seconds.
Regenerate after an intended change with:

    LUPA_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/unit/test_definitions_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

from dagster import AssetKey, BackfillPolicy, Definitions, PartitionsDefinition, TimeWindowPartitionsDefinition

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")
REGENERATE = "LUPA_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/unit/test_definitions_snapshot.py"


def _key(key: AssetKey) -> str:
    return key.to_user_string()


def describe_partitions(partitions_def: PartitionsDefinition | None) -> dict[str, Any] | None:
    """Time windows by their parameters (start as a partition key, so it reads like one); others by `str`."""
    if partitions_def is None:
        return None
    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return {
            "type": type(partitions_def).__name__,
            "cron_schedule": partitions_def.cron_schedule,
            "start": partitions_def.start.strftime(partitions_def.fmt),
            "end": partitions_def.end.strftime(partitions_def.fmt) if partitions_def.end else None,
            "end_offset": partitions_def.end_offset,
            "timezone": partitions_def.timezone,
            "fmt": partitions_def.fmt,
        }
    return {"type": type(partitions_def).__name__, "description": str(partitions_def)}


def describe_backfill_policy(policy: BackfillPolicy | None) -> str | None:
    """`single_run`, `multi_run(N)` or None (Dagster then runs one partition per run)."""
    if policy is None:
        return None
    if policy.max_partitions_per_run is None:
        return "single_run"
    return f"multi_run({policy.max_partitions_per_run})"


def describe(defs: Definitions) -> dict[str, Any]:
    """Everything the snapshot pins, with every collection sorted so that the JSON is deterministic."""
    graph = defs.resolve_asset_graph()
    assets = {
        _key(node.key): {
            "group": node.group_name,
            # an AssetSpec is UNEXECUTABLE: in the graph, but no job materialises it
            "execution_type": node.execution_type.value,
            "deps": sorted(_key(parent) for parent in node.parent_entity_keys),
            "partitions": describe_partitions(node.partitions_def),
            "backfill_policy": describe_backfill_policy(node.backfill_policy),
        }
        for node in graph.asset_nodes
    }
    checks = {
        f"{_key(node.key.asset_key)}:{node.key.name}": {"blocking": node.blocking} for node in graph.asset_check_nodes
    }
    jobs = {}
    for job in defs.jobs or []:
        # define_asset_job gives an unresolved job: its selection, resolved against this graph
        selection = job.selection
        jobs[job.name] = {
            "selection": str(selection),
            "partitions": describe_partitions(job.partitions_def),
            "assets": sorted(_key(key) for key in selection.resolve(graph)),
            "checks": sorted(f"{_key(k.asset_key)}:{k.name}" for k in selection.resolve_checks(graph)),
        }
    schedules = {
        schedule.name: {
            "job": schedule.job_name,
            "cron_schedule": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
        }
        for schedule in defs.schedules or []
    }
    sensors = {
        sensor.name: {
            "type": sensor.sensor_type.value,
            "jobs": sorted(target.job_name for target in sensor.targets),
        }
        for sensor in defs.sensors or []
    }
    sections = {"assets": assets, "asset_checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}
    return {name: dict(sorted(section.items())) for name, section in sections.items()}


def _dump(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _change(field: str, old: Any, new: Any) -> str:
    """A list field by what left and what came (job selections are long); anything else as old -> new."""
    if isinstance(old, list) and isinstance(new, list):
        gone, came = [x for x in old if x not in new], [x for x in new if x not in old]
        return f"{field} " + " ".join([*(f"-{x}" for x in gone), *(f"+{x}" for x in came)] or ["reordered"])
    return f"{field} {old!r} -> {new!r}"


def summarise(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """One line per added, removed or changed entry, before the full diff (which can be long)."""
    lines = []
    for section in sorted(set(expected) | set(actual)):
        old, new = expected.get(section, {}), actual.get(section, {})
        for name in sorted(set(old) | set(new)):
            if name not in new:
                lines.append(f"- {section} {name}: removed")
            elif name not in old:
                lines.append(f"+ {section} {name}: added")
            else:
                for field in sorted(set(old[name]) | set(new[name])):
                    before, after = old[name].get(field), new[name].get(field)
                    if before != after:
                        lines.append(f"~ {section} {name}: {_change(field, before, after)}")
    return lines


def test_definitions_match_the_snapshot():
    from pipelines.definitions import build_defs

    actual = describe(build_defs())
    if os.environ.get("LUPA_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(_dump(actual), encoding="utf-8")
        return
    assert SNAPSHOT.exists(), f"{SNAPSHOT.name} is missing; create it with:\n  {REGENERATE}"
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    if actual == expected:
        return
    diff = difflib.unified_diff(
        _dump(expected).splitlines(), _dump(actual).splitlines(), "committed snapshot", "build_defs()", lineterm=""
    )
    note = ""
    if os.environ.get("LUPA_HISTORY_START"):
        note = f"\n(LUPA_HISTORY_START={os.environ['LUPA_HISTORY_START']} moves the partitions' start date.)"
    raise AssertionError(
        "The code location differs from tests/unit/definitions_snapshot.json:\n"
        + "\n".join(summarise(expected, actual))
        + "\n\n"
        + "\n".join(diff)
        + note
        + f"\n\nIf the change is intended, regenerate the snapshot and commit it:\n  {REGENERATE}"
    )


# --- the comparison itself -----------------------------------------------------------------------


def test_summary_names_added_removed_and_changed_entries():
    expected = {"assets": {"a": {"group": "g", "deps": []}, "b": {"group": "g", "deps": []}}, "jobs": {}}
    actual = {"assets": {"a": {"group": "h", "deps": []}, "c": {"group": "g", "deps": ["a"]}}, "jobs": {}}
    expected["jobs"] = {"j": {"assets": ["a", "b"], "partitions": None}}
    actual["jobs"] = {"j": {"assets": ["a", "c"], "partitions": None}}
    assert summarise(expected, actual) == [
        "~ assets a: group 'g' -> 'h'",
        "- assets b: removed",
        "+ assets c: added",
        "~ jobs j: assets -b +c",
    ]


def test_partitions_are_described_by_their_parameters():
    from dagster import DailyPartitionsDefinition, StaticPartitionsDefinition

    daily = DailyPartitionsDefinition(start_date="2025-01-01", timezone="Europe/Helsinki", fmt="%Y-%m-%d")
    assert describe_partitions(daily) == {
        "type": "DailyPartitionsDefinition",
        "cron_schedule": "0 0 * * *",
        "start": "2025-01-01",
        "end": None,
        "end_offset": 0,
        "timezone": "Europe/Helsinki",
        "fmt": "%Y-%m-%d",
    }
    assert describe_partitions(StaticPartitionsDefinition(["b", "a"]))["type"] == "StaticPartitionsDefinition"
    assert describe_partitions(None) is None
    assert describe_backfill_policy(BackfillPolicy.single_run()) == "single_run"
    assert describe_backfill_policy(BackfillPolicy.multi_run(5)) == "multi_run(5)"
