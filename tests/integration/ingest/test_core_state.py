"""Core current state through the real Dagster job: consent, VTJ, metering corrections and DST."""

import datetime as dt

import polars as pl
import pytest
from stdnum.fi import hetu

from assets.common.calendar import day_length_hours
from assets.storage.metering import daily_root
from assets.storage.zones import query
from data_contracts.identifiers import CENTURY_SIGNS, birth_date, personal_id_problem
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import GSRN1, GSRN2, make_hetu, metering_row, person, write

DAY = dt.date(2026, 11, 23)


@pytest.fixture
def storage(tmp_path):
    return storage_for(tmp_path)


def table(storage, sql):
    with storage.warehouse(read_only=True) as conn:
        return query(conn, sql)


def test_consent_state_orders_by_time_not_file_and_ties_resolve_to_withdrawn(storage):
    write(storage.landing, "customers", "20261124", [person("C0000001", make_hetu("131052", "-", 308))])
    # late arrival: delivered on the 24th but occurred before the event delivered on the 20th
    write(
        storage.landing,
        "consents",
        "20261120",
        [
            "E1;C0000001;marketing;email;granted;2026-11-19T10:00:00+02:00;web_form;v3;form-1",
            "E2;C0000001;marketing;sms;granted;2026-11-19T10:00:00+02:00;web_form;v3;form-2",
            "E3;C0000001;marketing;phone;granted;2026-11-10T10:00:00Z;web_form;v3;form-3",
        ],
    )
    write(
        storage.landing,
        "consents",
        "20261124",
        [
            # older: loses
            "E4;C0000001;marketing;email;withdrawn;2026-11-18T10:00:00+02:00;customer_service;v3;call-4",
            # same instant as E2: wins
            "E5;C0000001;marketing;sms;withdrawn;2026-11-19T08:00:00Z;customer_service;v3;call-5",
            "E6;C0000001;marketing;;withdrawn;2026-11-12T12:00:00+02:00;customer_service;v3;call-6",  # all channels
            "E7;C0000001;profiling;;withdrawn;2026-11-20T12:00:00+02:00;mobile_app;v3;app-7",
            "E8;C0000001;newsletter;letter;granted;2026-11-20T12:00:00+02:00;mobile_app;v3;app-8",
        ],
    )
    run_day(storage, DAY)
    state = table(
        storage, "select purpose, channel, state, event_id, all_channel_event from consent_state order by all"
    )
    rows = {(p, c): (s, e, a) for p, c, s, e, a in state.rows()}
    assert rows[("marketing", "email")] == ("granted", "E1", False)
    assert rows[("marketing", "sms")] == ("withdrawn", "E5", False)  # tie across offsets → withdrawn
    assert rows[("marketing", "phone")] == ("withdrawn", "E6", True)  # the later all-channel event
    assert rows[("marketing", "letter")] == ("withdrawn", "E6", True)
    assert rows[("profiling", None)] == ("withdrawn", "E7", True)
    assert rows[("newsletter", "letter")] == ("granted", "E8", False)
    deciding = table(
        storage, "select source, wording_version, evidence_ref, occurred_at from consent_state where event_id = 'E5'"
    )
    assert deciding.row(0)[:3] == ("customer_service", "v3", "call-5")
    assert deciding["occurred_at"][0] == dt.datetime(2026, 11, 19, 8, tzinfo=dt.UTC)


def test_population_state_carries_forward_and_a_safety_ban_suppresses_every_address(storage):
    a, b, c = make_hetu("131052", "-", 308), make_hetu("020701", "B", 233), make_hetu("150590", "-", 412)
    write(
        storage.landing, "customers", "20261124", [person("C0000001", a), person("C0000002", b), person("C0000003", c)]
    )
    write(
        storage.landing,
        "population",
        "20261101",
        [
            f"{a};;1;0;Uusikatu 5;00200;Helsinki;2026-10-30",
            f"{b};;0;0;Vanhakatu 1;00300;Helsinki;2026-10-30",
            f"{c};2026-10-01;0;0;;;;2026-10-02",
        ],
    )
    write(
        storage.landing,
        "population",
        "20261120",
        [
            f"{a};;0;0;;;;2026-11-19",  # ban lifted, address unchanged
            f"{b};;0;1;;;;2026-11-19",  # safety ban: no address anywhere
            f"{c};;0;0;;;;2026-11-19",  # a death is never undone by a row without one
        ],
    )
    run_day(storage, DAY)
    rows = {r["customer_id"]: r for r in table(storage, "select * from customers").iter_rows(named=True)}
    assert rows["C0000001"]["marketing_ban"] is False
    assert (rows["C0000001"]["street_address"], rows["C0000001"]["address_source"]) == ("Uusikatu 5", "vtj")
    assert rows["C0000002"]["safety_ban"] is True
    assert (rows["C0000002"]["street_address"], rows["C0000002"]["postal_code"], rows["C0000002"]["city"]) == (
        None,
        None,
        None,
    )
    assert rows["C0000002"]["address_source"] == "suppressed"
    assert rows["C0000003"]["deceased_on"] == dt.date(2026, 10, 1)


def test_contacts_are_normalised_and_invalid_ones_kept_but_unusable(storage):
    write(
        storage.landing,
        "customers",
        "20261124",
        [
            person("C0000001", make_hetu("131052", "-", 308), email="Aino.Virtanen@Example.FI", phone="040 123 4567"),
            person("C0000002", make_hetu("131052", "-", 309), email="aino@", phone="12"),
            person("C0000003", make_hetu("131052", "-", 310), email="", phone="09 555 0100"),
        ],
    )
    run_day(storage, DAY)
    rows = table(
        storage,
        "select customer_id, email, email_status, phone_e164, phone_status, phone_is_mobile from customers order by 1",
    ).rows()
    assert rows == [
        ("C0000001", "Aino.Virtanen@example.fi", "valid", "+358401234567", "valid", True),
        ("C0000002", None, "invalid", None, "invalid", False),
        ("C0000003", None, "absent", "+35895550100", "valid", False),
    ]


def test_invoices_upsert_latest_delivery_wins_and_contacts_deduplicate(storage):
    write(storage.landing, "billing", "20261101", ["I1;C0000001;K1;2026-10-05;2026-10-19;100,00;;0;0"])
    write(storage.landing, "billing", "20261120", ["I1;C0000001;K1;2026-10-05;2026-10-19;100,00;2026-11-02;1;0"])
    contact = "C0000001;email;CAMP1;marketing;2026-10-14T09:00:00+03:00"
    write(storage.landing, "contacts", "20261015", [contact])
    write(storage.landing, "contacts", "20261016", [contact.replace("+03:00", "+03:00")])
    run_day(storage, DAY)
    assert table(storage, "select paid_on, reminders from invoices").rows() == [(dt.date(2026, 11, 2), 1)]
    assert table(storage, "select count(*) as n from contact_history")["n"][0] == 1


def day_rows(gsrn: str, day: dt.date, resolution: str = "PT1H", quantity: str = "0,250") -> list[str]:
    start = dt.datetime.combine(day, dt.time(), dt.timezone.utc) - dt.timedelta(hours=3)
    step = dt.timedelta(minutes=15 if resolution == "PT15M" else 60)
    rows, t = [], start
    while t < start + dt.timedelta(hours=30):
        local = t.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Helsinki")).date()
        if local == day:
            rows.append(metering_row(gsrn, t.strftime("%Y-%m-%dT%H:%M:%SZ"), quantity, resolution=resolution))
        t += step
    return rows


@pytest.mark.parametrize(
    "day, hours", [(dt.date(2026, 3, 29), 23), (dt.date(2026, 10, 25), 25), (dt.date(2026, 11, 23), 24)]
)
def test_dst_days_have_23_24_25_hours_and_92_96_100_quarter_hours(storage, day, hours):
    assert day_length_hours(day) == hours
    delivery = (day + dt.timedelta(days=1)).strftime("%Y%m%d")
    write(storage.landing, "metering", delivery, day_rows(GSRN1, day) + day_rows(GSRN2, day, "PT15M", "0,0625"))
    run_day(storage, day)
    daily = pl.read_parquet(daily_root(storage) / f"business_day={day}" / "part.parquet").sort("metering_point_id")
    assert daily["n_expected"].to_list() == [hours, hours * 4]
    assert daily["n_ok"].to_list() == [hours, hours * 4]
    assert daily["kwh_total"].to_list() == pytest.approx([0.25 * hours] * 2)
    hourly = daily.select([f"kwh_h{h:02d}" for h in range(24)]).row(0)
    repeated = 3 if hours == 25 else None  # 03:00–04:00 local happens twice in October
    assert hourly[repeated or 0] == pytest.approx(0.5 if repeated else 0.25)
    if hours == 23:
        assert hourly[3] == 0.0  # 03:00–04:00 local never happens in March


def test_a_correction_delivery_rebuilds_the_old_day_latest_delivery_wins(storage):
    old, today = dt.date(2026, 11, 20), dt.date(2026, 11, 23)
    write(storage.landing, "metering", "20261121", day_rows(GSRN1, old))
    run_day(storage, old)
    first = pl.read_parquet(daily_root(storage) / f"business_day={old}" / "part.parquet")
    assert first["kwh_total"][0] == pytest.approx(6.0)
    correction = [metering_row(GSRN1, "2026-11-19T22:00:00Z", "2,250")]  # 00:00 local on the 20th
    write(storage.landing, "metering", "20261124", day_rows(GSRN1, today) + correction)
    result = run_day(storage, today)
    rebuilt = pl.read_parquet(daily_root(storage) / f"business_day={old}" / "part.parquet")
    assert rebuilt["kwh_total"][0] == pytest.approx(8.0)
    assert rebuilt["kwh_h00"][0] == pytest.approx(2.25)
    partitions = {m.partition for m in result.asset_materializations_for_node("metering_daily")}
    assert partitions == {"2026-11-20", "2026-11-23"}, "the corrected day's partition is recorded as re-materialised"
    # a re-run of the old day as of its own morning does not see the later correction
    run_day(storage, old)
    assert pl.read_parquet(daily_root(storage) / f"business_day={old}" / "part.parquet")["kwh_total"][
        0
    ] == pytest.approx(6.0)


def test_henkilotunnus_with_every_century_sign():
    assert set(CENTURY_SIGNS) == set("+-ABCDEFYXWVU")
    for sign, century in CENTURY_SIGNS.items():
        code = make_hetu("131052", sign, 308)
        assert hetu.is_valid(code), sign
        assert personal_id_problem(code) is None, sign
        assert birth_date(code) == dt.date(century + 52, 10, 13)
    assert personal_id_problem(make_hetu("131052", "A", 900)) == "personal_id_test_code"
    assert personal_id_problem("131052A308X") == "personal_id_checksum"
    assert personal_id_problem("311352-308T") == "personal_id_format"
