"""`lupa explain CUSTOMER_ID`: per channel in or out, the rule or every reason, the deciding consent
events, the segment and the policy version, from the published mart alone (hand-made landing zone)."""

import datetime as dt
import shutil

import pytest

from assets.storage.mart import mart_path, read_published
from data_contracts.policy import load_policy
from pipelines import cli
from pipelines.explain import NO_MART, explain
from tests.dagster_helpers import run_day, storage_for
from tests.landing_builder import make_hetu, person, write

D = dt.date(2026, 11, 23)
DELIVERY = "20261124"
IN, OUT, BOTH = "C0000001", "C0000002", "C0000003"


def consent(event: str, cid: str, channel: str, action: str, when: str = "2026-06-01T10:00:00+03:00") -> str:
    return f"{event};{cid};marketing;{channel};{action};{when};web_form;v3;form-{event}"


def landing_zone(storage) -> None:
    write(
        storage.landing,
        "customers",
        DELIVERY,
        [
            person(
                IN,
                make_hetu("150380", "-", 101),
                first_name="Inna",
                email="inna@example.fi",
                phone="040 101 4567",
                street_address="Katu 1",
            ),
            # an unusable email and a withdrawn email consent: both reasons, and the withdrawal that decided
            person(
                OUT,
                make_hetu("150380", "-", 102),
                first_name="Outi",
                email="not-an-address@",
                phone="040 102 4567",
                street_address="Katu 2",
            ),
            person(
                BOTH,
                make_hetu("150380", "-", 103),
                first_name="Kaikki",
                email="kaikki@example.fi",
                phone="040 103 4567",
                street_address="Katu 3",
            ),
        ],
    )
    write(
        storage.landing,
        "consents",
        "20260602",
        [
            consent("G1", IN, "email", "granted"),
            consent("S1", IN, "sms", "granted"),
            consent("G2", OUT, "email", "granted"),
            consent("G3", BOTH, "email", "granted"),
        ],
    )
    write(
        storage.landing,
        "consents",
        "20261101",
        [
            consent("W2", OUT, "email", "withdrawn", "2026-10-30T10:00:00+02:00"),
            consent("W3", BOTH, "", "withdrawn", "2026-10-30T10:00:00+02:00"),  # every channel
        ],
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    storage = storage_for(tmp_path_factory.mktemp("explain"))
    landing_zone(storage)
    assert run_day(storage, D).success
    return storage


def channel_line(text: str, channel: str) -> str:
    return next(line for line in text.splitlines() if line.split()[:1] == [channel])


def test_exclusions_carry_the_deciding_withdrawal_and_only_for_consent_withdrawn(published):
    rows = read_published(published.root, "audience_exclusions")
    events = {(r["customer_id"], r["channel"], r["reason"]): r["consent_event_id"] for r in rows.to_dicts()}
    assert events[(OUT, "email", "consent_withdrawn")] == "W2"
    assert events[(OUT, "email", "invalid_contact")] is None
    assert events[(OUT, "sms", "consent_missing")] is None  # never granted: no event decides it
    assert {ch: events[(BOTH, ch, "consent_withdrawn")] for ch in ("email", "sms", "letter", "phone")} == dict.fromkeys(
        ("email", "sms", "letter", "phone"), "W3"
    )


def test_an_in_channel_shows_the_rule_the_legal_basis_and_the_deciding_event(published):
    text = explain(mart_path(published.root), IN)
    policy = load_policy()
    email = channel_line(text, "email")
    assert " IN " in email
    assert f"rule {policy.admission_rule('email')}" in email and "legal basis consent" in email
    assert (
        "deciding consent event G1" in email
        and "via web_form" in email
        and "wording v3" in email
        and "evidence form-G1" in email
    )
    assert "deciding consent event S1" in channel_line(text, "sms")
    letter = channel_line(text, "letter")
    assert " IN " in letter and "legal basis opt_out" in letter and f"rule {policy.admission_rule('letter')}" in letter
    assert f"policy version {policy.version}" in text


def test_an_out_channel_shows_every_reason_and_the_withdrawal_event(published):
    text = explain(mart_path(published.root), OUT)
    email = channel_line(text, "email")
    assert " OUT " in email
    assert "consent_withdrawn (deciding consent event W2)" in email and "invalid_contact" in email
    sms = channel_line(text, "sms")
    assert " OUT " in sms and "consent_missing" in sms and "deciding" not in sms
    assert " IN " in channel_line(text, "letter")  # an email withdrawal leaves the opt-out letter channel alone
    every = explain(mart_path(published.root), BOTH)
    for channel in ("email", "sms", "letter", "phone"):
        line = channel_line(every, channel)
        assert " OUT " in line and "consent_withdrawn (deciding consent event W3)" in line, line


def test_a_customer_without_a_segment_says_so(published):
    assert read_published(published.root, "customer_segments").filter(customer_id=IN).is_empty()
    text = explain(mart_path(published.root), IN)
    assert "segment: none (not profiled" in text


def test_an_unknown_id_gets_a_clear_message(published):
    assert explain(mart_path(published.root), "C0000099") == (
        "customer C0000099 is not in the published mart (unknown id, or not a current customer)"
    )


def test_no_mart_yet_gets_a_clear_message(tmp_path, monkeypatch, capsys):
    assert explain(tmp_path / "marketing.duckdb", IN) == NO_MART
    monkeypatch.setenv("LUPA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LUPA_LANDING_DIR", str(tmp_path / "landing"))
    assert cli.main(["explain", IN]) == 0
    assert capsys.readouterr().out.strip() == NO_MART


def test_explain_reads_only_the_published_mart(published, tmp_path, monkeypatch, capsys):
    """The mart file on its own, as a marketer would have it: no warehouse, analytics zone or landing zone."""
    alone = tmp_path / "shared"
    alone.mkdir()
    shutil.copy(mart_path(published.root), alone / "marketing.duckdb")
    expected = explain(mart_path(published.root), OUT)
    assert explain(alone / "marketing.duckdb", OUT) == expected
    monkeypatch.setenv("LUPA_DATA_DIR", str(alone))
    monkeypatch.setenv("LUPA_LANDING_DIR", str(tmp_path / "no-landing"))
    assert cli.main(["explain", OUT]) == 0
    assert capsys.readouterr().out.strip() == expected
    assert sorted(p.name for p in alone.iterdir()) == ["marketing.duckdb"]  # nothing else was opened or created
