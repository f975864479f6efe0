"""`marketing_mart` end to end: what it publishes, what it refuses, and what it records in audience_history.

- A re-run of an older day never replaces a later mart (it would bring back customers who withdrew
  since); a re-run of the same day republishes identical tables.
- The mart's own validation runs the policy check, the fail-safe and the size anomaly rule on the
  staged rows, so materialising `marketing_mart` alone (as from the UI) cannot publish what the
  audiences' blocking checks would have held back.
- audience_history holds published audiences only.
"""

import datetime as dt

import duckdb
import polars as pl
from dagster import AssetKey, DagsterInstance

from assets.common.calendar import BUSINESS_DAY_TAG
from assets.storage.mart import published_as_of, read_published
from data_contracts.audiences import CONSENT_EVIDENCE
from pipelines.definitions import build_defs
from tests.dagster_helpers import run_day, storage_for
from tests.integration.audiences.test_policy_end_to_end import CHANNELS, D, consent, customer, landing_zone
from tests.landing_builder import write

D1 = D + dt.timedelta(days=1)
EVIDENCE = [name for _, name in CONSENT_EVIDENCE]
MART_TABLES = (
    "audience_email",
    "audience_sms",
    "audience_letter",
    "audience_phone",
    "audience_exclusions",
    "renewal_offers",
    "segment_catalogue",
    "customer_segments",
)


def history(storage) -> pl.DataFrame:
    conn = duckdb.connect(str(storage.warehouse_path), read_only=True)
    try:
        return conn.sql("select * from audience_history order by business_day, channel, customer_id").pl()
    finally:
        conn.close()


def mart(storage) -> dict[str, pl.DataFrame]:
    return {t: read_published(storage.root, t) for t in MART_TABLES}


def assert_nothing_published(storage, published: dict[str, pl.DataFrame], history_before: pl.DataFrame) -> None:
    """The mart, its history and the data directory are as they were before the refused run."""
    for table, frame in mart(storage).items():
        assert frame.equals(published[table]), table
    assert history(storage).equals(history_before)
    assert not list(storage.root.glob(".marketing-*"))


def mart_metadata(result) -> dict:
    [event] = [m for m in result.get_asset_materialization_events() if m.asset_key == AssetKey("marketing_mart")]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def mart_alone(storage, day: dt.date):
    """Materialise only marketing_mart, as a data engineer can from the UI: no audience checks run."""
    job = build_defs(resource_overrides={"storage": storage}).resolve_job_def("daily_job")
    return job.execute_in_process(
        instance=DagsterInstance.ephemeral(),
        partition_key=day.isoformat(),
        tags={BUSINESS_DAY_TAG: day.isoformat()},
        asset_selection=[AssetKey("marketing_mart")],
        raise_on_error=False,
    )


def failure_message(result) -> str:
    return "\n".join(
        e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    )


def test_a_rerun_of_an_older_day_keeps_the_later_mart_and_its_history(tmp_path):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    # C0000014 withdraws email consent on D+1: visible to the run for D+1, not to the one for D
    write(
        storage.landing,
        "consents",
        "20261125",
        [consent("W14", "C0000014", "email", "withdrawn", "2026-11-24T10:00:00+02:00")],
    )
    assert run_day(storage, D).success
    assert "C0000014" in read_published(storage.root, "audience_email")["customer_id"].to_list()
    assert run_day(storage, D1).success
    later, history_before = mart(storage), history(storage)
    assert published_as_of(storage.root) == D1
    assert "C0000014" not in later["audience_email"]["customer_id"].to_list()
    assert set(history_before["business_day"].unique().to_list()) == {D, D1}

    # the landing sensor asks for D again (say, a late correction for it arrived)
    instance = DagsterInstance.ephemeral()
    rerun = run_day(storage, D, instance=instance)
    assert rerun.success
    meta = mart_metadata(rerun)
    assert (
        meta["published"] is False
        and meta["kept_mart_as_of"] == D1.isoformat()
        and meta["business_day"] == D.isoformat()
    )
    logged = [
        e.user_message for e in instance.all_logs(rerun.run_id) if e.step_key == "marketing_mart" and e.level >= 30
    ]
    assert any("not published" in m and f"as of {D1.isoformat()}" in m for m in logged), logged
    assert_nothing_published(storage, later, history_before)  # neither D's rows nor D+1's were touched
    assert "C0000014" not in read_published(storage.root, "audience_email")["customer_id"].to_list()


def test_a_rerun_of_the_same_day_republishes_identical_tables_and_replaces_its_history(tmp_path):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    assert run_day(storage, D).success
    first, history_first = mart(storage), history(storage)
    assert history_first.height == sum(first[f"audience_{ch}"].height for ch in ("email", "sms", "letter", "phone")) > 0
    rerun = run_day(storage, D)
    assert rerun.success and mart_metadata(rerun)["published"] is True
    for table, frame in mart(storage).items():
        assert frame.equals(first[table]), table
    assert history(storage).equals(history_first)  # replaced, not appended twice


def test_marketing_mart_alone_refuses_rows_that_break_a_rule(tmp_path):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    assert run_day(storage, D).success
    published, history_before = mart(storage), history(storage)
    # a bug lets a customer who withdrew email consent into the audience the mart reads
    conn = duckdb.connect(str(storage.warehouse_path))
    try:
        conn.execute(
            """insert into audience_email
               select * replace ('C0000002' as customer_id, 'c2@example.fi' as email)
               from audience_email where customer_id = 'C0000014'"""
        )
    finally:
        conn.close()
    result = mart_alone(storage, D)
    assert not result.success
    message = failure_message(result)
    assert "policy check" in message and "audience_email consent_withdrawn: 1" in message
    assert "C0000002" not in message and "c2@example.fi" not in message
    assert_nothing_published(storage, published, history_before)


def test_marketing_mart_alone_refuses_while_a_restricting_row_is_quarantined(tmp_path):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    assert run_day(storage, D).success
    published, history_before = mart(storage), history(storage)
    # the next extract carries an unreadable mail opt-out: the letter audience is held back...
    write(
        storage.landing,
        "asml",
        "20261125",
        ["mail;ETU1;SUKU1;Katu 1;00100;;2024-13-45;", "mail;ETU10;suku10;katu  10;00100;;2024-01-01;"],
    )
    held = run_day(storage, D1, raise_on_error=False)
    assert "marketing_mart" not in {m.asset_key.path[-1] for m in held.get_asset_materialization_events()}
    # ...and audiences that were never published are not in audience_history
    assert history(storage).equals(history_before)
    # materialising the mart alone (no blocking checks in that run) must not publish it either
    result = mart_alone(storage, D1)
    assert not result.success
    message = failure_message(result)
    assert "fail_safe" in message and "asml/asml_20261125.csv line 2" in message and "letter" in message
    assert "ETU1" not in message and "Katu 1" not in message
    assert published_as_of(storage.root) == D
    assert_nothing_published(storage, published, history_before)


def confirm(storage, day: dt.date, channel: str) -> None:
    import os

    from pipelines.cli import main

    os.environ["LUPA_LANDING_DIR"], os.environ["LUPA_DATA_DIR"] = storage.landing_dir, storage.data_dir
    try:
        assert main(["confirm-audience", "--date", day.isoformat(), "--channel", channel, "--note", "campaign"]) == 0
    finally:
        del os.environ["LUPA_LANDING_DIR"], os.environ["LUPA_DATA_DIR"]


def test_marketing_mart_alone_refuses_an_audience_that_jumped_until_a_person_confirms(tmp_path):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    assert run_day(storage, D).success
    published, history_before = mart(storage), history(storage)
    # overnight, 40 new customers with email consent: the email audience more than triples
    write(
        storage.landing,
        "customers",
        "20261125",
        [customer(n) for n in range(1, 15)] + [customer(n) for n in range(20, 60)],
    )
    write(
        storage.landing,
        "consents",
        "20261125",
        [consent(f"N{n}", f"C{n:07d}", "email", "granted", "2026-11-24T10:00:00+02:00") for n in range(20, 60)],
    )
    held = run_day(storage, D1, raise_on_error=False)
    checks = {(c.asset_key.path[-1], c.check_name): c.passed for c in held.get_asset_check_evaluations()}
    assert checks[("audience_email", "size_anomaly")] is False
    assert history(storage).equals(history_before)
    # materialising the mart alone (no blocking checks in that run) must not publish it either
    result = mart_alone(storage, D1)
    assert not result.success
    message = failure_message(result)
    email_before = published["audience_email"].height
    assert "size_anomaly" in message and f"email: {email_before} → " in message
    assert f"lupa confirm-audience --date {D1.isoformat()}" in message
    assert "C00000" not in message and "@example.fi" not in message and "Etu" not in message
    assert published_as_of(storage.root) == D
    assert_nothing_published(storage, published, history_before)
    # a person confirms every channel whose size moved; the mart alone now publishes
    for channel in CHANNELS:
        confirm(storage, D1, channel)
    assert mart_alone(storage, D1).success
    assert published_as_of(storage.root) == D1
    assert read_published(storage.root, "audience_email").height > email_before * 1.3


def test_history_rows_are_the_published_audiences(tmp_path):
    storage = storage_for(tmp_path)
    landing_zone(storage)
    assert run_day(storage, D).success
    rows = history(storage)
    for ch in ("email", "sms", "letter", "phone"):
        audience = read_published(storage.root, f"audience_{ch}")
        mine = rows.filter(pl.col("channel") == ch)
        assert sorted(mine["customer_id"].to_list()) == sorted(audience["customer_id"].to_list())
        assert set(mine["business_day"].to_list()) == {D}
        assert mine.columns == [
            "business_day",
            "channel",
            "customer_id",
            "segment_id",
            "legal_basis",
            "policy_version",
            "rule",
            *EVIDENCE,
        ]


def test_history_rows_carry_the_published_rows_consent_evidence(tmp_path):
    """A consent-based row proves its basis later by the deciding event; an opt-out row has none."""
    storage = storage_for(tmp_path)
    landing_zone(storage)
    assert run_day(storage, D).success
    rows = history(storage)
    kept = ["legal_basis", "rule", *EVIDENCE]
    seen = set()
    for ch in ("email", "sms", "letter", "phone"):
        audience = read_published(storage.root, f"audience_{ch}").select("customer_id", *kept)
        mine = rows.filter(pl.col("channel") == ch).select("customer_id", *kept)
        assert mine.sort("customer_id").equals(audience.sort("customer_id")), ch
        for r in mine.to_dicts():
            seen.add(r["legal_basis"])
            if r["legal_basis"] == "consent":
                assert r["consent_event_id"] and r["consent_evidence_ref"], (ch, r["customer_id"])
            else:
                assert all(r[c] is None for c in EVIDENCE), (ch, r["customer_id"])
    assert seen == {"consent", "opt_out"}
    email = rows.filter(channel="email", customer_id="C0000014").to_dicts()[0]
    assert (email["consent_event_id"], email["consent_evidence_ref"]) == ("GC0000014", "form-GC0000014")
