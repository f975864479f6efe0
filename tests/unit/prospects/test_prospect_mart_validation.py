"""The mart's own validation of the staged prospect tables (`validate_prospect_tables`): the same
three decisions as the prospect audiences' blocking checks (size, fail safe, re-check), on the rows
about to be published. A crafted landing zone, the real build, a staged DuckDB file; no Dagster run."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from assets.publish.assets import ProspectValidation, validate_prospect_tables
from data_contracts.contract import ContractViolation
from data_contracts.vocabulary import CHANNELS
from tests.unit.prospects.test_prospect_rules import DAY, POLICY, build, prospect


@pytest.fixture
def staged(tmp_path):
    result, _ = build(tmp_path, [prospect(f"P00000000{i}") for i in range(1, 4)])
    path = tmp_path / "staged.duckdb"
    conn = duckdb.connect(str(path))
    for name, frame in result.tables().items():
        conn.register("_f", frame)
        conn.execute(f'create table "{name}" as select * from _f')
        conn.unregister("_f")
    conn.close()
    return path, result


def test_a_prospect_audience_that_jumped_is_held_back_until_confirmed(staged):
    path, _ = staged
    jumped = {ch: 3 for ch in CHANNELS} | {"email": 40}
    with pytest.raises(ContractViolation, match="size_anomaly.*email: 40 → 3.*--recipients prospects"):
        validate_prospect_tables(path, ProspectValidation([], published_sizes=jumped), day=DAY, policy=POLICY)
    confirmed = ProspectValidation([], published_sizes=jumped, confirmed={"email"})
    validate_prospect_tables(path, confirmed, day=DAY, policy=POLICY)  # a person confirmed it: published


def test_a_blocking_quarantined_row_refuses_the_prospect_tables(staged):
    path, _ = staged
    blockers = pl.DataFrame(
        {
            "source": ["prospects"],
            "file": ["prospects_20261124.csv"],
            "line": [7],
            "rule": ["updated_on_unparsable"],
            "channel": ["email"],
        }
    )
    with pytest.raises(ContractViolation, match=r"fail_safe.*prospects/prospects_20261124.csv line 7"):
        validate_prospect_tables(path, ProspectValidation([], blockers=blockers), day=DAY, policy=POLICY)


def test_a_safety_banned_prospects_address_is_never_published(staged):
    path, _ = staged
    with pytest.raises(ContractViolation, match="no_safety_ban_address"):
        validate_prospect_tables(path, ProspectValidation(["P000000002"]), day=DAY, policy=POLICY)
