"""Fixtures for the orchestration tests (helpers live in tests/orchestration/helpers.py)."""

import pytest

from tests.integration.orchestration.helpers import REPO, Installation


@pytest.fixture
def installation(tmp_path, monkeypatch) -> Installation:
    """A persistent instance configured by a copy of the repository's dagster.yaml (SQLite)."""
    inst = Installation(tmp_path, REPO / "dagster.yaml")
    for key, value in inst.env.items():
        monkeypatch.setenv(key, value)
    return inst
