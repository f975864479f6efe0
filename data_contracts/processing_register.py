"""The processing register: what an access report (`lupa sar`, GDPR Art. 15) tells a customer about how
their data is processed (purposes, recipients, sources, retention periods, rights).

`processing_register.yaml` is maintained text in Finnish, Swedish and English. Loading it refuses a
missing section or a text without all three languages, and resolves every `policy_key` retention to
the policy's own period, so that the register can never tell a customer a period the `retention`
asset does not enforce.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from data_contracts.policy import MarketingPolicy, RetentionPeriod, load_policy
from data_contracts.vocabulary import LANGUAGES

REGISTER_FILE = "processing_register.yaml"


class AccessReportError(Exception):
    """The report cannot be made (no warehouse, malformed input); the message holds no personal data."""


def default_register_path() -> Path:
    return Path(str(resources.files("data_contracts").joinpath(REGISTER_FILE)))


def require_languages(value: Any, where: str) -> dict[str, str]:
    """The fi/sv/en texts of `value`; `where` (file and key) names what lacks one."""
    if not isinstance(value, dict) or any(
        not isinstance(value.get(lang), str) or not value[lang].strip() for lang in LANGUAGES
    ):
        raise AccessReportError(f"{where} needs non-empty text in {', '.join(LANGUAGES)}")
    return {lang: value[lang] for lang in LANGUAGES}


def load_processing_register(path: str | Path | None = None, policy: MarketingPolicy | None = None) -> dict[str, Any]:
    """Load and check the register; resolve every `policy_key` retention to the policy's period.

    Returns the register with each retention entry carrying `period` (a dict with one of
    years/months/days) and `period_source` (`marketing_policy.yaml` or the register itself).
    """
    p = Path(path) if path is not None else default_register_path()
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    policy = policy or load_policy()
    if not isinstance(data, dict):
        raise AccessReportError(f"{REGISTER_FILE}: the top level must be a mapping")
    for key in ("version", "controller", "purposes", "recipients", "sources", "retention", "rights"):
        if key not in data:
            raise AccessReportError(f"{REGISTER_FILE}: missing section {key!r}")
    require_languages(data["controller"].get("name"), f"{REGISTER_FILE}: controller.name")
    for section, fields in (
        ("purposes", ("name", "legal_basis", "description")),
        ("recipients", ("name", "description")),
        ("sources", ("name",)),
    ):
        for i, item in enumerate(data[section]):
            if not item.get("id"):
                raise AccessReportError(f"{REGISTER_FILE}: {section}[{i}] has no id")
            for f in fields:
                item[f] = require_languages(item.get(f), f"{REGISTER_FILE}: {section}.{item['id']}.{f}")
    policy_retention = policy.retention.model_dump(exclude_none=True)
    for item in data["retention"]:
        _resolve_retention(item, policy, policy_retention)
    rights = data["rights"]
    if not isinstance(rights, dict) or any(not rights.get(lang) for lang in LANGUAGES):
        raise AccessReportError(f"{REGISTER_FILE}: rights needs a list in {', '.join(LANGUAGES)}")
    return data


def _resolve_retention(item: dict[str, Any], policy: MarketingPolicy, policy_retention: dict[str, Any]) -> None:
    """Check one retention entry and give it its `period` and `period_source`."""
    rid = item.get("id", "?")
    item["name"] = require_languages(item.get("name"), f"{REGISTER_FILE}: retention.{rid}.name")
    if "after" in item:
        item["after"] = require_languages(item["after"], f"{REGISTER_FILE}: retention.{rid}.after")
    if ("policy_key" in item) == ("period" in item):
        raise AccessReportError(f"{REGISTER_FILE}: retention.{rid} needs exactly one of policy_key or period")
    if "policy_key" in item:
        if item["policy_key"] not in policy_retention:
            raise AccessReportError(
                f"{REGISTER_FILE}: retention.{rid}.policy_key {item['policy_key']!r} "
                "is not in the policy's retention section"
            )
        period = getattr(policy.retention, item["policy_key"])
        item["period_source"] = f"marketing_policy.yaml retention.{item['policy_key']} (policy {policy.version})"
    else:
        period = RetentionPeriod.model_validate(item["period"])
        item["period_source"] = REGISTER_FILE
    item["period"] = period.model_dump(exclude_none=True)
