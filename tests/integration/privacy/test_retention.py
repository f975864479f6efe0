"""Retention periods from the policy file are enforced daily and reported in counts."""

import datetime as dt

import polars as pl

from assets.campaigns import store
from assets.storage.metering import readings_root
from assets.storage.zones import query
from data_contracts.campaigns import parse_brief
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import GSRN1, make_hetu, metering_row, person, write

D = dt.date(2026, 11, 23)


def test_retention_removes_what_is_past_its_period_and_ingestion_keeps_it_out(tmp_path):
    storage = storage_for(tmp_path)
    write(storage.landing, "customers", "20261124", [person("C0000001", make_hetu("150380", "-", 201))])
    write(
        storage.landing, "consents", "20260101", ["E1;C0000001;spam;email;granted;2025-12-31T10:00:00Z;web_form;v3;f-1"]
    )  # 327 days old
    write(
        storage.landing, "consents", "20261120", ["E2;C0000001;spam;email;granted;2026-11-19T10:00:00Z;web_form;v3;f-2"]
    )
    write(
        storage.landing, "contacts", "20230105", ["C0000001;email;OLD;marketing;2023-01-04T09:00:00+02:00"]
    )  # > 3 years
    write(storage.landing, "contacts", "20261120", ["C0000001;email;NEW;marketing;2026-11-19T09:00:00+02:00"])
    write(storage.landing, "metering", "20261124", [metering_row(GSRN1, "2026-11-22T22:00:00Z")])
    old = readings_root(storage) / "business_day=2019-06-01"
    old.mkdir(parents=True)
    pl.DataFrame({"metering_point_id": [GSRN1]}).write_parquet(old / "delivery=20190602-0000.parquet")

    with storage.warehouse() as conn:  # a campaign list from 2022 (past audience history's 3 years) and one of 2026
        store.ensure_tables(conn)
        for cid, send_on in (("OLD-LIST", dt.date(2022, 3, 1)), ("NEW-LIST", dt.date(2026, 12, 1))):
            conn.execute(
                "insert into campaign_release_list values ($c, 'C0000001', 'customer', 'treated', 'email', null, null, "
                "$s, $s)",
                {"c": cid, "s": send_on},
            )
            brief = parse_brief(
                {
                    "campaign_id": cid,
                    "name": {"fi": "a", "sv": "b", "en": "c"},
                    "audience": "customers",
                    "channels": ["email"],
                    "send_on": send_on,
                    "control_share": 0,
                    "response_days": 30,
                }
            )
            conn.execute(
                "insert into campaign_releases values ($c, 'released', $b, $s, $s, 'x', now(), null, null)",
                {"c": cid, "s": send_on, "b": store.brief_json(brief)},
            )

    result = run_day(storage, D)
    checks = {(c.asset_key.path[-1], c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks[("ingest_consents", "conservation")]  # the expired quarantine row is counted, not stored
    with storage.warehouse(read_only=True) as conn:
        assert query(conn, "select file from quarantine where source = 'consents'")["file"].to_list() == [
            "consent_events_20261120.csv"
        ]
        assert (
            query(
                conn, "select rows_quarantined from file_registry where file_name = 'consent_events_20260101.csv'"
            ).item()
            == 1
        )
        assert query(conn, "select campaign_id from contact_history")["campaign_id"].to_list() == ["NEW"]
        assert query(conn, "select campaign_id from campaign_release_list")["campaign_id"].to_list() == ["NEW-LIST"]
        assert query(conn, "select campaign_id from campaign_releases")["campaign_id"].to_list() == ["NEW-LIST"]
    assert not old.exists()
    removed = result.asset_materializations_for_node("retention")[0].metadata["removed"].value
    assert "| `metering reading days` | 1 |" in removed and "| `contact history rows` | 1 |" in removed
