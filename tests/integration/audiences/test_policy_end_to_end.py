"""Every exclusion code, the fail-safe and the anomaly hold, end to end from a hand-made landing zone."""

import datetime as dt

import duckdb
import pytest

from assets.storage.mart import read_published
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import make_hetu, person, write

D = dt.date(2026, 11, 23)
DELIVERY = "20261124"
CHANNELS = ("email", "sms", "letter", "phone")


def adult(n: int) -> str:
    return make_hetu("150380", "-", 100 + n)


def phone(n: int) -> str:
    return f"040 {n:03d} 4567"


def consent(
    event: str, cid: str, channel: str, action: str, when: str = "2026-06-01T10:00:00+03:00", purpose: str = "marketing"
) -> str:
    return f"{event};{cid};{purpose};{channel};{action};{when};web_form;v3;form-{event}"


def customer(n: int, **overrides) -> str:
    cid = f"C{n:07d}"
    fields = dict(
        first_name=f"Etu{n}", last_name=f"Suku{n}", email=f"c{n}@example.fi", phone=phone(n), street_address=f"Katu {n}"
    )
    fields.update(overrides)
    return person(
        cid, overrides.pop("personal_id", adult(n)), **{k: v for k, v in fields.items() if k != "personal_id"}
    )


def landing_zone(storage, extra_asml: list[str] = ()):
    customers = [customer(n) for n in range(1, 15) if n not in (6, 7, 8)]
    customers += [
        customer(6, personal_id=make_hetu("150310", "A", 106)),  # minor
        "C0000007;company;;2077474-0;;;Yritys Oy;fi;info@example.fi;09 555 0100;Katu 7;00100;Helsinki;2019-01-01;",
        customer(8, ended_on="2025-06-01"),  # former customer
    ]
    customers[3] = customer(4, email="not-an-address@")  # invalid contact
    write(storage.landing, "customers", DELIVERY, customers)
    everyone = [f"C{n:07d}" for n in range(1, 15)]
    grants = [consent(f"G{cid}", cid, "email", "granted") for cid in everyone if cid != "C0000001"]
    grants += [consent(f"S{cid}", cid, "sms", "granted") for cid in everyone]
    write(storage.landing, "consents", "20260602", grants)
    write(
        storage.landing,
        "consents",
        "20261101",
        [
            consent("W2", "C0000002", "email", "withdrawn", "2026-10-30T10:00:00+02:00"),
            consent("W3", "C0000003", "", "withdrawn", "2026-10-30T10:00:00+02:00"),  # every channel
        ],
    )
    write(
        storage.landing,
        "population",
        "20261110",
        [
            f"{adult(5)};2026-11-01;0;0;;;;2026-11-05",
            f"{adult(12)};;1;0;;;;2026-11-05",
            f"{adult(13)};;0;1;;;;2026-11-05",
        ],
    )
    asml = [
        # the same person as C0000010, typed differently (case, spacing, NFD)
        "mail;ETU10;suku10;katu  10;00100;;2024-01-01;",
        "phone;;;;;+358400114567;2024-01-01;2026-11-23",  # C0000011, expires on D: still applies
        "phone;;;;;+358400094567;2020-01-01;2026-11-22",  # C0000009, expired
        *extra_asml,
    ]
    write(storage.landing, "asml", DELIVERY, asml)
    write(
        storage.landing,
        "contacts",
        "20261120",
        [f"C0000009;email;CAMP{i};marketing;2026-0{i + 1}-10T09:00:00+03:00" for i in range(4)],
    )
    write(
        storage.landing,
        "contracts",
        DELIVERY,
        [
            "K14;C0000014;643550123456789011;FIXED24;fixed_term;2024-12-24;2026-12-23;apartment;district",
            "K13;C0000013;643550123456789028;FIXED24;fixed_term;2024-12-03;2026-12-03;apartment;district",
            "K05;C0000005;643550123456789035;FIXED24;fixed_term;2024-12-03;2026-12-03;apartment;district",
        ],
    )


def exclusions(storage) -> set[tuple[str, str, str]]:
    frame = read_published(storage.root, "audience_exclusions")
    return {tuple(r) for r in frame.select("customer_id", "channel", "reason").rows()}


def members(storage, channel: str) -> set[str]:
    return set(read_published(storage.root, f"audience_{channel}")["customer_id"].to_list())


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    storage = storage_for(tmp_path_factory.mktemp("policy"))
    landing_zone(storage)
    result = run_day(storage, D)
    assert result.success
    return storage


@pytest.mark.parametrize(
    "customer, channels, reason",
    [
        ("C0000001", ["email"], "consent_missing"),
        ("C0000002", ["email"], "consent_withdrawn"),
        ("C0000003", list(CHANNELS), "consent_withdrawn"),
        ("C0000004", ["email"], "invalid_contact"),
        ("C0000005", list(CHANNELS), "deceased"),
        ("C0000006", list(CHANNELS), "minor"),
        ("C0000007", list(CHANNELS), "company"),
        ("C0000008", list(CHANNELS), "former_customer"),
        ("C0000009", list(CHANNELS), "frequency_cap"),
        ("C0000010", ["letter"], "asml_mail"),
        ("C0000011", ["phone"], "asml_phone"),
        ("C0000012", ["letter"], "vtj_marketing_ban"),
        ("C0000013", ["letter"], "safety_ban"),
    ],
)
def test_each_exclusion_code_from_a_landing_zone(published, customer, channels, reason):
    found = exclusions(published)
    for channel in CHANNELS:
        if channel in channels:
            assert (customer, channel, reason) in found
            assert customer not in members(published, channel)
        else:
            assert (customer, channel, reason) not in found


def test_a_clean_customer_is_in_every_audience_with_evidence(published):
    for channel in CHANNELS:
        assert "C0000014" in members(published, channel)
    email = read_published(published.root, "audience_email").filter(customer_id="C0000014").to_dicts()[0]
    assert (email["legal_basis"], email["consent_event_id"], email["consent_evidence_ref"]) == (
        "consent",
        "GC0000014",
        "form-GC0000014",
    )
    assert email["policy_version"] and email["as_of"] == D


def test_every_customer_channel_pair_is_in_or_has_a_reason(published):
    found = exclusions(published)
    for n in range(1, 15):
        cid = f"C{n:07d}"
        for channel in CHANNELS:
            inside = cid in members(published, channel)
            reasons = {r for c, ch, r in found if c == cid and ch == channel}
            assert inside != bool(reasons), (cid, channel)


def test_safety_ban_customer_has_no_address_anywhere_in_the_mart(published):
    conn = duckdb.connect(str(published.root / "marketing.duckdb"), read_only=True)
    try:
        for (table,) in conn.sql("select table_name from duckdb_tables()").fetchall():
            present = conn.sql(f'select * from "{table}" limit 0').columns
            if "customer_id" not in present:  # the prospects' own tables hold no customer
                continue
            columns = [c for c in ("street_address", "postal_code", "city") if c in present]
            for column in columns:
                values = conn.sql(f'select "{column}" from "{table}" where customer_id = \'C0000013\'').fetchall()
                assert all(v is None for (v,) in values), (table, column)
    finally:
        conn.close()


def test_renewal_offers_are_customer_communication(published):
    offers = {r["customer_id"]: r for r in read_published(published.root, "renewal_offers").to_dicts()}
    assert offers["C0000014"]["channel"] == "email"
    assert "C0000005" not in offers  # deceased: no row at all
    assert offers["C0000013"]["channel"] == "email" and offers["C0000013"].get("street_address") is None


def test_an_unreadable_restricting_row_blocks_publication_until_resolved(tmp_path):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    assert run_day(storage, D).success
    before = members(storage, "letter")
    # the next extract carries an unreadable mail opt-out: the letter audience must not be published
    write(
        storage.landing,
        "asml",
        "20261125",
        ["mail;ETU1;SUKU1;Katu 1;00100;;2024-13-45;"] + ["mail;ETU10;suku10;katu  10;00100;;2024-01-01;"],
    )
    result = run_day(storage, D + dt.timedelta(days=1), raise_on_error=False)
    checks = {(c.asset_key.path[-1], c.check_name): c for c in result.get_asset_check_evaluations()}
    assert not checks[("audience_letter", "fail_safe")].passed
    assert "asml/asml_20261125.csv`, line 2" in checks[("audience_letter", "fail_safe")].metadata["rows"].value
    assert checks[("audience_phone", "fail_safe")].passed  # legibly a mail-register entry: letter only
    assert checks[("audience_email", "fail_safe")].passed
    assert "marketing_mart" not in {
        m.asset_key.path[-1] for m in result.get_asset_materialization_events() if m.asset_key
    }
    assert read_published(storage.root, "audience_letter")["as_of"][0] == D  # yesterday's mart stays
    assert members(storage, "letter") == before

    import os

    from pipelines.cli import main

    os.environ["LUPA_LANDING_DIR"], os.environ["LUPA_DATA_DIR"] = storage.landing_dir, storage.data_dir
    try:
        assert main(["resolve-quarantine", "asml/asml_20261125.csv", "2", "--note", "checked with the register"]) == 0
    finally:
        del os.environ["LUPA_LANDING_DIR"], os.environ["LUPA_DATA_DIR"]
    assert run_day(storage, D + dt.timedelta(days=1)).success
    assert read_published(storage.root, "audience_letter")["as_of"][0] == D + dt.timedelta(days=1)


def test_an_audience_that_jumps_is_held_until_a_person_confirms(tmp_path):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    assert run_day(storage, D).success
    email_before = len(members(storage, "email"))
    more = [customer(n) for n in range(20, 60)]
    write(storage.landing, "customers", "20261125", [customer(n) for n in range(1, 15)] + more)
    write(
        storage.landing,
        "consents",
        "20261125",
        [consent(f"N{n}", f"C{n:07d}", "email", "granted", "2026-11-24T10:00:00+02:00") for n in range(20, 60)],
    )
    day2 = D + dt.timedelta(days=1)
    result = run_day(storage, day2, raise_on_error=False)
    check = {(c.asset_key.path[-1], c.check_name): c for c in result.get_asset_check_evaluations()}[
        ("audience_email", "size_anomaly")
    ]
    assert not check.passed and check.metadata["published_size"].value == email_before
    assert len(members(storage, "email")) == email_before  # not published

    import os

    from pipelines.cli import main

    os.environ["LUPA_LANDING_DIR"], os.environ["LUPA_DATA_DIR"] = storage.landing_dir, storage.data_dir
    try:
        for channel in CHANNELS:
            assert (
                main(
                    [
                        "confirm-audience",
                        "--date",
                        day2.isoformat(),
                        "--channel",
                        channel,
                        "--note",
                        "new customer campaign",
                    ]
                )
                == 0
            )
    finally:
        del os.environ["LUPA_LANDING_DIR"], os.environ["LUPA_DATA_DIR"]
    assert run_day(storage, day2).success
    assert len(members(storage, "email")) > email_before * 1.3
