"""The fail safe outlives the quarantine period: an unresolved quarantined row that could restrict
contact (models/fail_safe.py, RESTRICTING_ROWS) keeps blocking its channels however old it
is, neither deleted by `retention` nor left out by ingestion (a backfill, a fresh install loading old
deliveries); once resolved it ages out like the rest of the quarantine. And, end to end, a
quarantined VTJ row and a quarantined consent withdrawal each block the channels the per-channel
mapping names.
"""

import datetime as dt

import pytest
from dagster import AssetKey

from assets.common.calendar import BUSINESS_DAY_TAG
from assets.storage.mart import read_published
from pipelines.definitions import build_defs
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import make_hetu, person, write

D = dt.date(2026, 11, 23)
#: the runs are in the past (daily partitions end today): a first run in August, a late one in November
EARLY, LATE = dt.date(2026, 8, 10), dt.date(2026, 11, 16)
CHANNELS = ("email", "sms", "letter", "phone")
PEOPLE = [f"C{n:07d}" for n in range(1, 6)]


def hetu(n: int) -> str:
    return make_hetu("150380", "-", 200 + n)


def consent(event: str, cid: str, channel: str, action: str, when: str = "2026-06-01T10:00:00+03:00") -> str:
    return f"{event};{cid};marketing;{channel};{action};{when};web_form;v3;form-{event}"


def landing_zone(storage) -> None:
    """Five adults in every audience: email and sms granted, no opt-out, no ban."""
    write(storage.landing, "customers", "20260701", [person(cid, hetu(n)) for n, cid in enumerate(PEOPLE, 1)])
    write(
        storage.landing,
        "consents",
        "20260602",
        [consent(f"{ch[0].upper()}{cid}", cid, ch, "granted") for cid in PEOPLE for ch in ("email", "sms")],
    )
    write(storage.landing, "population", "20260701", [f"{hetu(n)};;0;0;;;;2026-06-30" for n in range(1, 6)])
    write(storage.landing, "asml", "20260701", ["phone;;;;;+358401110000;2024-01-01;"])


def fail_safe(result) -> dict[str, bool]:
    """channel → did its (customer audience's) fail_safe check pass"""
    return {
        c.asset_key.path[-1].removeprefix("audience_"): c.passed
        for c in result.get_asset_check_evaluations()
        if c.check_name == "fail_safe" and c.asset_key.path[-1].startswith("audience_")
    }


def fail_safe_rows(result, channel: str) -> str:
    check = next(
        c
        for c in result.get_asset_check_evaluations()
        if c.check_name == "fail_safe" and c.asset_key.path[-1] == f"audience_{channel}"
    )
    return check.metadata["rows"].value


def published(result) -> bool:
    return "marketing_mart" in {m.asset_key.path[-1] for m in result.get_asset_materialization_events() if m.asset_key}


def quarantined(storage, source: str) -> list[tuple[str, int]]:
    with storage.warehouse(read_only=True) as conn:
        return conn.sql(
            "select file, line from quarantine where source = $s order by 1, 2", params={"s": source}
        ).fetchall()


def retention_metadata(result) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node("retention")[0].metadata.items()}


def resolve(storage, monkeypatch, file: str, line: int) -> None:
    from pipelines.cli import main

    monkeypatch.setenv("LUPA_LANDING_DIR", str(storage.landing_dir))
    monkeypatch.setenv("LUPA_DATA_DIR", str(storage.data_dir))
    assert main(["resolve-quarantine", file, str(line), "--note", "the source re-delivered it"]) == 0


# ---- (a) retention keeps an unresolved restricting row until it is resolved ----------------------
def test_an_unresolved_restricting_row_past_the_quarantine_period_still_blocks_until_resolved_then_ages_out(
    tmp_path, monkeypatch
):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    # an email withdrawal whose time cannot be read, and a quarantined grant (restricts nothing)
    bad = write(
        storage.landing,
        "consents",
        "20260805",
        [
            consent("W1", "C0000001", "email", "withdrawn", "yesterday"),
            consent("G9", "C0000002", "sms", "granted", "yesterday"),
        ],
    )
    first = run_day(storage, EARLY, raise_on_error=False)
    assert fail_safe(first) == {"email": False, "sms": True, "letter": True, "phone": True}
    assert quarantined(storage, "consents") == [("consent_events_20260805.csv", 2), ("consent_events_20260805.csv", 3)]

    # the landing zone owner archives the delivery: from now on only the warehouse holds the row,
    # and the day comes when it is older than the quarantine period (90 days). In the daily job a
    # Retention runs here on its own, as from the UI.
    bad.unlink()
    late = LATE
    assert load_cutoff(late) > dt.date(2026, 8, 5)
    kept = retention_metadata(run_retention(storage, late))
    assert quarantined(storage, "consents") == [("consent_events_20260805.csv", 2)]
    assert "| `quarantine rows` | 1 |" in kept["removed"]  # the quarantined grant ages out as before
    assert kept["quarantine_kept_until_resolved_total"] == 1
    assert "| `consents` | 1 |" in kept["quarantine_kept_until_resolved"]

    # after retention ran, the daily run still sees it and still holds the email audience back
    after = run_day(storage, late + dt.timedelta(days=1), raise_on_error=False)
    assert not fail_safe(after)["email"] and not published(after)
    # a blocked audience does not hold back retention: it runs before the audiences
    assert retention_metadata(after)["quarantine_kept_until_resolved_total"] == 1
    assert "`consents/consent_events_20260805.csv`, line 2" in fail_safe_rows(after, "email")
    assert quarantined(storage, "consents") == [("consent_events_20260805.csv", 2)]

    # resolved: the block lifts, and being past the period, the row is deleted that very run
    resolve(storage, monkeypatch, "consents/consent_events_20260805.csv", 2)
    released = run_day(storage, late + dt.timedelta(days=2))
    assert all(fail_safe(released).values()) and published(released)
    metadata = retention_metadata(released)
    assert "| `quarantine rows` | 1 |" in metadata["removed"] and metadata["quarantine_kept_until_resolved_total"] == 0
    assert quarantined(storage, "consents") == []
    assert read_published(storage.root, "audience_email")["as_of"][0] == late + dt.timedelta(days=2)


def run_retention(storage, day: dt.date):
    defs = build_defs(resource_overrides={"storage": storage})
    return defs.resolve_job_def("daily_job").execute_in_process(
        asset_selection=[AssetKey("retention")], tags={BUSINESS_DAY_TAG: day.isoformat()}
    )


def load_cutoff(day: dt.date) -> dt.date:
    from data_contracts.policy import load_policy

    return load_policy().retention.quarantine.cutoff(day)


def test_an_unreadable_row_of_a_superseded_asml_extract_ages_out(tmp_path):
    """Only what still blocks publication outlives the period: an ASML extract that a later one replaced
    no longer counts (snapshot sources count only the extract in force), so its rows age out."""
    storage = storage_for(tmp_path)
    landing_zone(storage)
    write(
        storage.landing, "asml", "20260801", ["mail;Aino;Virtanen;Mannerheimintie 1;001;;2024-01-01;"]
    )  # unreadable postal code
    first = run_day(storage, EARLY, raise_on_error=False)
    assert fail_safe(first) == {"email": True, "sms": True, "letter": False, "phone": True}
    write(storage.landing, "asml", "20260901", ["phone;;;;;+358401110000;2024-01-01;"])  # the next extract replaces it
    assert load_cutoff(LATE) > dt.date(2026, 8, 1)
    aged = run_day(storage, LATE)
    assert all(fail_safe(aged).values()) and published(aged)
    metadata = retention_metadata(aged)
    assert metadata["quarantine_kept_until_resolved_total"] == 0 and "| `quarantine rows` | 1 |" in metadata["removed"]
    assert quarantined(storage, "asml") == []


# ---- (b) ingestion of an old delivery still stores such a row ----------------------------------
def test_a_fresh_install_loading_old_deliveries_stores_and_blocks_on_an_old_unresolved_restricting_row(
    tmp_path, monkeypatch
):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    # delivered long before the quarantine period of D: an unreadable VTJ row (could be a death) and
    # an unreadable sms withdrawal, beside a quarantined grant and an unreadable customer-communication contact
    write(storage.landing, "population", "20260302", [f"{hetu(3)};someday;0;0;;;;2026-03-01"])
    write(
        storage.landing,
        "consents",
        "20260401",
        [
            consent("W3", "C0000003", "sms", "withdrawn", "yesterday"),
            consent("G4", "C0000004", "email", "granted", "yesterday"),
        ],
    )
    write(
        storage.landing,
        "contacts",
        "20260401",
        ["C0000004;fax;LETTER1;customer_communication;2026-03-31T09:00:00+03:00"],
    )
    assert load_cutoff(D) > dt.date(2026, 4, 1)

    first = run_day(storage, D, raise_on_error=False)
    assert fail_safe(first) == {ch: False for ch in CHANNELS} and not published(first)
    assert quarantined(storage, "population") == [("vtj_20260302.csv", 2)]
    assert quarantined(storage, "consents") == [("consent_events_20260401.csv", 2)]  # not the grant
    assert quarantined(storage, "contacts") == []
    checks = {(c.asset_key.path[-1], c.check_name): c for c in first.get_asset_check_evaluations()}
    for asset in ("ingest_population", "ingest_consents", "ingest_contacts"):
        assert checks[(asset, "conservation")].passed, asset  # kept rows are stored, aged ones counted
    assert "`population/vtj_20260302.csv`, line 2" in fail_safe_rows(first, "phone")

    # the VTJ row resolved: retention deletes it (past the period) and keeps the withdrawal; a backfill
    # of an earlier day after that (the latest enforcement's cutoff applies) still stores the
    # unresolved withdrawal, and not the resolved VTJ row
    resolve(storage, monkeypatch, "population/vtj_20260302.csv", 2)
    metadata = retention_metadata(run_retention(storage, D))
    assert quarantined(storage, "population") == [] and quarantined(storage, "consents") == [
        ("consent_events_20260401.csv", 2)
    ]
    assert (
        "| `quarantine rows` | 1 |" in metadata["removed"]
        and "| `consents` | 1 |" in metadata["quarantine_kept_until_resolved"]
    )
    backfill = run_day(storage, D - dt.timedelta(days=30), raise_on_error=False)
    assert fail_safe(backfill) == {"email": True, "sms": False, "letter": True, "phone": True}
    assert quarantined(storage, "consents") == [("consent_events_20260401.csv", 2)]
    assert quarantined(storage, "population") == []
    checks = {(c.asset_key.path[-1], c.check_name): c.passed for c in backfill.get_asset_check_evaluations()}
    assert checks[("ingest_consents", "conservation")] and checks[("ingest_population", "conservation")]


# ---- (c) per-channel mapping, end to end ---------------------------------------------------------
@pytest.mark.parametrize(
    "source, day, row, blocked",
    [
        # a VTJ row may carry a death: every channel
        ("population", "20261120", f"{hetu(2)};2026-13-01;0;0;;;;2026-11-19", set(CHANNELS)),
        # a consent withdrawal: its channel when legible
        ("consents", "20261120", consent("W5", "C0000005", "sms", "withdrawn", "yesterday"), {"sms"}),
        ("consents", "20261120", consent("W5", "C0000005", "letter", "withdrawn", "yesterday"), {"letter"}),
        # a withdrawal of every channel (no channel), or one whose channel cannot be read: every channel
        ("consents", "20261120", consent("W5", "C0000005", "", "withdrawn", "yesterday"), set(CHANNELS)),
        (
            "consents",
            "20261120",
            consent("W5", "C0000005", "fax", "withdrawn", "2026-11-19T10:00:00+02:00"),
            set(CHANNELS),
        ),
        # legibly a grant: restricts nothing
        ("consents", "20261120", consent("G5", "C0000005", "email", "granted", "yesterday"), set()),
    ],
)
def test_a_quarantined_population_row_or_consent_withdrawal_blocks_the_channels_it_could_restrict(
    tmp_path, source, day, row, blocked
):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    path = write(storage.landing, source, day, [row])
    result = run_day(storage, D, raise_on_error=False)
    assert quarantined(storage, source)[-1] == (path.name, 2)
    assert {ch for ch, passed in fail_safe(result).items() if not passed} == blocked
    for ch in blocked:
        assert f"`{source}/{path.name}`, line 2" in fail_safe_rows(result, ch)
    assert published(result) == (not blocked)


def test_a_lost_marketing_contact_blocks_only_while_its_delivery_is_inside_the_frequency_cap_window(tmp_path):
    """An unreadable marketing contact could only have counted toward the frequency cap (the 365 days
    up to D). A contact is delivered after it was sent, so a file delivered before the window holds
    no contact inside it: the row stops blocking then, and ages out like other quarantine."""
    from assets.storage.quarantine import unresolved_blocking_rows
    from data_contracts.policy import load_policy

    policy = load_policy()

    storage = storage_for(tmp_path)
    write(storage.landing, "contacts", "20251001", ["C0000001;email;CAMP1;marketing;yesterday"])
    defs = build_defs(resource_overrides={"storage": storage})
    day = dt.date(2026, 9, 1)
    assert (
        defs.resolve_job_def("daily_job")
        .execute_in_process(asset_selection=[AssetKey("ingest_contacts")], tags={BUSINESS_DAY_TAG: day.isoformat()})
        .success
    )
    assert set(unresolved_blocking_rows(storage, day, policy)["channel"]) == set(
        CHANNELS
    )  # delivered 2025-10-01, window from 2025-09-02
    assert (
        unresolved_blocking_rows(storage, dt.date(2026, 9, 30), policy).height == 4
    )  # the window's first day is the delivery day
    assert unresolved_blocking_rows(storage, dt.date(2026, 10, 1), policy).is_empty()  # the window starts 2025-10-02
