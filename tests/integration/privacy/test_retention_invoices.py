"""Invoices leave the warehouse the day after the last day the Accounting Act keeps them, and an old
billing delivery re-read by a later run (or a backfill of an earlier day) never brings them back.

An invoice issued in 2019 is kept until 2025-12-31 (6 years after the end of its financial year).
"""

import datetime as dt

from dagster import AssetKey

from pipelines.definitions import build_defs
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import GSRN1, make_hetu, person, write

LAST_KEPT = dt.date(2025, 12, 31)
GONE_FROM = LAST_KEPT + dt.timedelta(days=1)
C = "C0000001"


def landing(storage) -> None:
    write(storage.landing, "customers", "20251201", [person(C, make_hetu("150380", "-", 201))])
    write(storage.landing, "contracts", "20251201", [f"K1;{C};{GSRN1};SPOT;open_ended;2018-01-01;;apartment;district"])
    write(storage.landing, "billing", "20190302", [f"OLD;{C};K1;2019-03-01;2019-03-15;40,00;;0;0"])
    # the old invoice again, paid (billing is an upsert log), and one issued in 2020 that a later
    # delivery corrects back to 2019: the latest version decides which year an invoice belongs to
    write(
        storage.landing,
        "billing",
        "20200105",
        [f"OLD;{C};K1;2019-03-01;2019-03-15;40,00;2019-03-20;0;0", f"MOVED;{C};K1;2020-01-04;2020-01-18;30,00;;0;0"],
    )
    write(storage.landing, "billing", "20200110", [f"MOVED;{C};K1;2019-12-30;2020-01-13;30,00;2020-01-10;0;0"])
    write(storage.landing, "billing", "20251201", [f"NEW;{C};K1;2025-10-01;2025-10-15;50,00;2025-10-10;0;0"])


def invoices(storage) -> dict[str, list[str]]:
    with storage.warehouse(read_only=True) as conn:
        return {
            t: [i for (i,) in conn.sql(f"select distinct invoice_id from {t} order by 1").fetchall()]
            for t in ("invoices", "billing_valid")
        }


def removed(result) -> str:
    return result.asset_materializations_for_node("retention")[0].metadata["removed"].value


def ingest_check(result) -> tuple[bool, dict]:
    check = next(
        c
        for c in result.get_asset_check_evaluations()
        if c.asset_key.path[-1] == "ingest_billing" and c.check_name == "conservation"
    )
    return check.passed, {k: v.value for k, v in check.metadata.items()}


def test_an_old_invoice_leaves_the_core_table_on_the_right_day_and_never_comes_back(tmp_path):
    storage = storage_for(tmp_path)
    landing(storage)

    last_day = run_day(storage, LAST_KEPT)  # not a day earlier
    assert invoices(storage) == {"invoices": ["MOVED", "NEW", "OLD"], "billing_valid": ["MOVED", "NEW", "OLD"]}
    assert "| `invoices past the Accounting Act period` | 0 |" in removed(last_day)

    first_day = run_day(storage, GONE_FROM)
    assert "| `invoices past the Accounting Act period` | 2 |" in removed(first_day)
    assert invoices(storage) == {"invoices": ["NEW"], "billing_valid": ["NEW"]}  # every version of both

    # every later run re-reads every billing delivery; so does a backfill of a day they were still kept
    for day in (GONE_FROM + dt.timedelta(days=1), LAST_KEPT):
        result = run_day(storage, day)
        assert invoices(storage) == {"invoices": ["NEW"], "billing_valid": ["NEW"]}, day
        assert "| `invoices past the Accounting Act period` | 0 |" in removed(result)
        passed, counts = ingest_check(result)
        assert passed and counts["rows_past_retention"] == 4 and counts["rows_read"] == counts["rows_valid"] + 4
    with storage.warehouse(read_only=True) as conn:
        per_file = dict(
            conn.sql("select file_name, rows_past_retention from file_registry where source = 'billing'").fetchall()
        )
    assert per_file == {
        "invoices_20190302.csv": 1,
        "invoices_20200105.csv": 2,
        "invoices_20200110.csv": 1,
        "invoices_20251201.csv": 0,
    }


def test_the_mart_is_published_after_retention_so_it_never_holds_a_customer_that_run_erased():
    graph = build_defs().resolve_asset_graph()
    assert AssetKey("retention") in graph.get(AssetKey("marketing_mart")).parent_keys
