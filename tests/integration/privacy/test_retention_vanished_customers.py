"""A customer who vanishes from the CRM snapshot is a former customer (landing-zone.md): the
relationship ended on the last delivery that listed them, and the daily `retention` asset erases
them once `retention.customer_data` (3 years) has passed, as it does customers with `ended_on`.

GONE is listed in the snapshot of 2023-06-01 and absent from the one of 2023-07-01 on, so the
relationship ended on 2023-06-01: inside the period on 2026-06-01 (cutoff 2023-06-01, kept), past it
on 2026-06-02 (erased). A backfill of a day whose snapshot still listed GONE (2025-01-01, whose latest
delivery is the 2023-06-01 snapshot: partitions start in 2025) brings nothing back.
"""

import datetime as dt

import duckdb
from dagster import DagsterInstance

from assets.storage import suppression
from assets.storage.mart import read_published
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import GSRN1, GSRN2, make_hetu, person, write

STAYS, GONE = "C0000001", "C0000002"
GONE_HETU = make_hetu("150380", "-", 212)


def landing(storage) -> tuple[str, str]:
    stays = person(STAYS, make_hetu("150380", "-", 211), email="stays@example.fi")
    gone = person(GONE, GONE_HETU, email="gone@example.fi", customer_since="2019-01-01")
    stays_contract = f"K1;{STAYS};{GSRN1};SPOT;open_ended;2020-01-01;;apartment;district"
    gone_contract = f"K2;{GONE};{GSRN2};FIXED24;fixed_term;2019-01-01;2023-05-31;apartment;district"
    write(storage.landing, "customers", "20230601", [stays, gone])
    write(storage.landing, "contracts", "20230601", [stays_contract, gone_contract])
    write(
        storage.landing,
        "consents",
        "20230601",
        [f"E{c};{c};marketing;;granted;2022-01-01T10:00:00Z;web_form;v3;f-{c}" for c in (STAYS, GONE)],
    )
    write(storage.landing, "population", "20230601", [f"{GONE_HETU};;0;0;Vtj-polku 2;00100;Helsinki;2023-01-01"])
    return stays, stays_contract


def later_snapshots(storage, stays: str, stays_contract: str) -> None:
    for delivery in ("20260601", "20260602"):
        write(storage.landing, "customers", delivery, [stays])
        write(storage.landing, "contracts", delivery, [stays_contract])


def held(storage) -> dict[str, int]:
    """Rows naming GONE (by customer id or identity code) in the warehouse tables that keep them."""
    conn = duckdb.connect(str(storage.warehouse_dir / "warehouse.duckdb"), read_only=True)
    try:
        counts = {}
        for table in ("customers", "customers_valid", "customer_listings", "consent_events", "contracts"):
            counts[table] = conn.sql(
                f'select count(*) from "{table}" where customer_id = $c', params={"c": GONE}
            ).fetchall()[0][0]
        counts["population_valid"] = conn.sql(
            "select count(*) from population_valid where personal_id = $p", params={"p": GONE_HETU}
        ).fetchall()[0][0]
        return counts
    finally:
        conn.close()


def erased_count(result) -> str:
    return result.asset_materializations_for_node("retention")[0].metadata["removed"].value


def test_a_customer_absent_from_the_snapshot_is_erased_the_day_the_period_has_passed_and_stays_erased(tmp_path):
    storage = storage_for(tmp_path)
    stays, stays_contract = landing(storage)
    instance = DagsterInstance.ephemeral()
    run_day(storage, dt.date(2025, 1, 1), instance=instance)  # the 2023-06-01 snapshot lists GONE
    assert held(storage)["customers"] == 1
    later_snapshots(storage, stays, stays_contract)

    # absent since 2023-07-01, so the relationship ended 2023-06-01: on its cutoff day, still kept
    inside = run_day(storage, dt.date(2026, 6, 1), instance=instance)
    assert "| `former customers erased` | 0 |" in erased_count(inside)
    assert held(storage)["consent_events"] == 1 and held(storage)["population_valid"] == 1
    assert GONE not in read_published(storage.root, "audience_email")["customer_id"].to_list()

    past = run_day(storage, dt.date(2026, 6, 2), instance=instance)
    assert "| `former customers erased` | 1 |" in erased_count(past)
    assert set(held(storage).values()) == {0}
    assert suppression.pseudonym(GONE_HETU) in suppression.load(storage.warehouse_dir).subjects

    # a backfill of a day whose snapshot listed GONE, then the next day: nothing comes back
    run_day(storage, dt.date(2025, 1, 1), instance=instance)
    assert set(held(storage).values()) == {0}
    again = run_day(storage, dt.date(2026, 6, 2), instance=instance)
    assert "| `former customers erased` | 0 |" in erased_count(again)
    assert set(held(storage).values()) == {0}
