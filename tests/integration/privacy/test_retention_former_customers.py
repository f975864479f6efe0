"""Former customers are erased by the daily `retention` asset once `retention.customer_data` has
passed since their relationship ended, the way `lupa erase` erases, and they stay erased.

D = 2026-11-23 and the period is 3 years, so a relationship that ended before 2023-11-23 is past it.
"""

import datetime as dt
import json

import duckdb
import polars as pl
import pytest
from dagster import DagsterInstance

from assets.privacy.erasure import INVOICE_RETENTION_BASIS, RETENTION, audit_log, held_after_erasure
from assets.storage import suppression
from assets.storage.mart import read_published
from data_contracts.identifiers import find_personal_ids
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import GSRN1, GSRN2, make_hetu, metering_row, person, write

D = dt.date(2026, 11, 23)
ACTIVE, GONE, JUST_INSIDE, CONTRACT_LATER, CRM_OPEN = "C0000001", "C0000002", "C0000003", "C0000004", "C0000005"
GONE_HETU = make_hetu("150380", "-", 202)
#: everything personal the landing zone holds about GONE
GONE_PERSONAL = (
    GONE_HETU,
    "Entinen",
    "entinen@example.fi",
    "050 765 4321",
    "+358507654321",
    "Lähtijänkatu 9",
    "Vtj-polku 1",
)


def gsrn(n: int) -> str:
    """A metering point id with a correct GS1 check digit."""
    body = f"64355012345678{n:03d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def landing(storage, delivery: str) -> None:
    """A CRM whose former customers ended on either side of D's cutoff (2023-11-23)."""
    write(
        storage.landing,
        "customers",
        delivery,
        [
            person(ACTIVE, make_hetu("150380", "-", 201), email="active@example.fi"),
            person(
                GONE,
                GONE_HETU,
                first_name="Entinen",
                email="entinen@example.fi",
                phone="050 765 4321",
                street_address="Lähtijänkatu 9",
                customer_since="2019-01-01",
                ended_on="2023-11-22",
            ),
            person(JUST_INSIDE, make_hetu("150380", "-", 203), customer_since="2019-01-01", ended_on="2023-11-23"),
            # the CRM closed the relationship in 2020, but a later contract ran until 2024
            person(CONTRACT_LATER, make_hetu("150380", "-", 204), customer_since="2018-01-01", ended_on="2020-06-30"),
            # every contract ended in 2020, but the CRM still shows the customer as active
            person(CRM_OPEN, make_hetu("150380", "-", 205), customer_since="2018-01-01"),
        ],
    )
    write(
        storage.landing,
        "contracts",
        delivery,
        [
            f"K1;{ACTIVE};{GSRN1};SPOT;open_ended;2024-01-01;;apartment;district",
            f"K2;{GONE};{GSRN2};FIXED24;fixed_term;2019-01-01;2023-11-22;apartment;district",
            f"K3;{JUST_INSIDE};{gsrn(3)};FIXED24;fixed_term;2019-01-01;2023-11-23;apartment;district",
            f"K4;{CONTRACT_LATER};{gsrn(4)};FIXED24;fixed_term;2018-01-01;2020-06-30;apartment;district",
            f"K5;{CONTRACT_LATER};{gsrn(5)};FIXED24;fixed_term;2022-07-01;2024-06-30;row_house;electric",
            f"K6;{CRM_OPEN};{gsrn(6)};FIXED24;fixed_term;2018-01-01;2020-12-31;apartment;district",
        ],
    )
    write(
        storage.landing,
        "consents",
        delivery,
        [f"E{c};{c};marketing;;granted;2022-01-01T10:00:00Z;web_form;v3;f-{c}" for c in (ACTIVE, GONE, JUST_INSIDE)],
    )
    # GONE's last invoice (2023) must still be kept under the Accounting Act, restricted, until 2029-12-31
    write(
        storage.landing,
        "billing",
        delivery,
        [f"I{c};{c};K;2023-10-01;2023-10-15;50,00;2023-10-10;0;0" for c in (ACTIVE, GONE, JUST_INSIDE)],
    )
    write(storage.landing, "population", delivery, [f"{GONE_HETU};;0;0;Vtj-polku 1;00100;Helsinki;2023-01-01"])
    start = dt.datetime(2026, 11, 21, 22, tzinfo=dt.timezone.utc)
    write(
        storage.landing,
        "metering",
        delivery,
        [metering_row(GSRN1, (start + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")) for h in range(48)],
    )


def tables_text(storage, leave_out: tuple[str, ...] = ()) -> str:
    """Every value of every table in the warehouse, analytics zone and mart, and every Parquet, CSV,
    JSON(L) and HTML file the pipeline wrote, except the tables named in `leave_out`."""
    chunks = []
    for path in sorted(storage.root.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".duckdb":
            conn = duckdb.connect(str(path), read_only=True)
            try:
                for (table,) in conn.sql("select table_name from duckdb_tables()").fetchall():
                    if table not in leave_out:
                        chunks.append(conn.sql(f'select * from "{table}"').pl().write_csv())
            finally:
                conn.close()
        elif path.suffix == ".parquet":
            chunks.append(pl.read_parquet(path).write_csv())
        elif path.suffix in (".csv", ".jsonl", ".json", ".html"):
            chunks.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(chunks)


def dagster_text(instance) -> str:
    chunks = []
    for run in instance.get_runs():
        chunks += [repr(run.run_config), repr(run.tags)]
        for entry in instance.all_logs(run.run_id):
            chunks.append(entry.user_message or "")
            if entry.dagster_event is not None:
                chunks.append(repr(entry.dagster_event.event_specific_data))
    return "\n".join(chunks)


def customers(storage) -> list[str]:
    with storage.warehouse(read_only=True) as conn:
        return [c for (c,) in conn.sql("select customer_id from customers order by 1").fetchall()]


def retention_metadata(result) -> dict:
    return result.asset_materializations_for_node("retention")[0].metadata


@pytest.fixture
def runs(tmp_path):
    """The day before D (GONE still inside the period, published as a former customer), then D."""
    storage = storage_for(tmp_path)
    landing(storage, "20261122")
    instance = DagsterInstance.ephemeral()
    before = run_day(storage, D - dt.timedelta(days=1), instance=instance)
    assert GONE in customers(storage)
    assert GONE in read_published(storage.root, "audience_exclusions")["customer_id"].to_list()
    on_d = run_day(storage, D, instance=instance)
    return storage, instance, before, on_d


def test_a_former_customer_past_the_period_is_erased_from_every_zone_and_audience_on_the_right_day(runs):
    storage, _, before, on_d = runs
    assert "| `former customers erased` | 0 |" in retention_metadata(before)["removed"].value  # not a day earlier
    removed = retention_metadata(on_d)["removed"].value
    assert "| `former customers erased` | 1 |" in removed and "| `their invoices, kept restricted` | 1 |" in removed
    assert retention_metadata(on_d)["active_in_crm_without_a_contract_since_cutoff"].value == 1

    # only GONE goes: the relationship that ended on the cutoff day, the one a later contract kept
    # going and the one the CRM still holds open all stay
    assert customers(storage) == [ACTIVE, JUST_INSIDE, CONTRACT_LATER, CRM_OPEN]
    text = tables_text(storage, leave_out=("invoices_retained",))
    for value in (GONE, *GONE_PERSONAL):
        assert value not in text, value
    with storage.warehouse(read_only=True) as conn:
        assert conn.sql("select customer_id, retention_basis from invoices_retained").fetchall() == [
            (GONE, INVOICE_RETENTION_BASIS)
        ]
    # the mart this run published, its exports, and every audience: no trace of GONE
    for table in (
        "audience_exclusions",
        "audience_email",
        "audience_sms",
        "audience_letter",
        "audience_phone",
        "renewal_offers",
    ):
        assert GONE not in read_published(storage.root, table)["customer_id"].to_list()
    exclusions = read_published(storage.root, "audience_exclusions")
    assert JUST_INSIDE in exclusions.filter(reason="former_customer")["customer_id"].to_list()

    # erased the way `lupa erase` erases, for retention, and an access request is answered from that
    held = held_after_erasure(storage, customer_id=GONE)
    assert (
        held.complete and [i["invoice_id"] for i in held.invoices] == [f"I{GONE}"] and held.metering_point_periods == 0
    )
    assert held_after_erasure(storage, personal_id=GONE_HETU).erased_on == held.erased_on
    assert {suppression.pseudonym(GONE), suppression.pseudonym(GONE_HETU)} <= suppression.load(
        storage.warehouse_dir
    ).subjects
    steps = [json.loads(line) for line in audit_log(storage).read_text().splitlines()]
    assert [(s["step"], s["reason"]) for s in steps] == [
        ("suppressed", RETENTION),
        ("warehouse_erased", RETENTION),
        ("completed", RETENTION),
    ]
    assert steps[1]["kept"]["last_kept_until"] == "2029-12-31"


def test_a_redelivered_old_snapshot_or_a_backfill_does_not_bring_the_former_customer_back(runs):
    storage, _, _, _ = runs
    landing(storage, "20261124")  # the same CRM, contracts, invoices and VTJ rows delivered again
    after = run_day(storage, D + dt.timedelta(days=1))
    # the next day, the relationship that ended on D's cutoff day is past the period too
    assert "| `former customers erased` | 1 |" in retention_metadata(after)["removed"].value
    assert customers(storage) == [ACTIVE, CONTRACT_LATER, CRM_OPEN]
    run_day(storage, D - dt.timedelta(days=1))  # a backfill of a day both were still inside the period
    assert customers(storage) == [ACTIVE, CONTRACT_LATER, CRM_OPEN]
    text = tables_text(storage, leave_out=("invoices_retained",))
    for value in (GONE, *GONE_PERSONAL):
        assert value not in text, value
    for table in ("audience_exclusions", "audience_email", "audience_letter", "audience_phone"):
        assert GONE not in read_published(storage.root, table)["customer_id"].to_list()


def test_retention_erasures_leave_no_personal_data_in_dagster_or_the_audit_log(runs):
    storage, instance, _, _ = runs
    for text in (dagster_text(instance), audit_log(storage).read_text()):
        assert not any(v in text for v in (GONE, *GONE_PERSONAL))
        assert find_personal_ids(text) == []
