"""The marketing policy file: its content, and validation errors that name the key."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
import yaml
from pydantic import ValidationError

from data_contracts.policy import (
    CHANNELS,
    REASON_CODES,
    PolicyError,
    default_policy_path,
    load_policy,
    parse_policy,
)


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))


def test_default_policy_content():
    p = load_policy()
    assert p.version == "2026.2"
    assert p.timezone == "Europe/Helsinki"
    assert {c: p.channel(c).legal_basis for c in CHANNELS} == {
        "email": "consent",
        "sms": "consent",
        "letter": "opt_out",
        "phone": "opt_out",
    }
    assert {c: p.channel(c).contact for c in CHANNELS} == {
        "email": "valid_email",
        "sms": "valid_mobile",
        "letter": "valid_postal_address",
        "phone": "valid_phone",
    }
    assert p.channel("letter").exclusions == ("asml_mail", "vtj_marketing_ban", "safety_ban")
    assert p.channel("phone").exclusions == ("asml_phone",)
    assert all(p.channel(c).consent.channel == c and p.channel(c).consent.purpose == "marketing" for c in CHANNELS)
    assert not any(p.channel(c).soft_opt_in for c in CHANNELS)
    ge = p.global_exclusions
    assert ge.minor.age_limit == 18
    assert ge.former_customer.window_days == 365
    assert (ge.frequency_cap.cap, ge.frequency_cap.window_days, ge.frequency_cap.kind) == (4, 365, "marketing")
    assert ge.deceased is not None and ge.company is not None
    assert p.renewal.window_days == 60
    assert p.renewal.channel_preference == ("email", "letter")
    assert p.anomaly.threshold == pytest.approx(0.30)
    assert p.retention.metering_readings.years == 6
    assert p.retention.quarantine.days == 90
    assert p.retention.contact_history.years == 3
    assert p.retention.audience_history.years == 3
    assert p.retention.quarantine.cutoff(dt.date(2026, 11, 24)) == dt.date(2026, 8, 26)
    assert p.retention.invoices.years == 6
    assert p.retention.customer_data.years == 3
    # the end of the financial year plus 6 years, the Accounting Act's minimum
    assert (
        p.retention.invoice_kept_until(dt.date(2026, 1, 1))
        == p.retention.invoice_kept_until(dt.date(2026, 12, 31))
        == dt.date(2032, 12, 31)
    )


def test_rules_for_channels_follow_the_file():
    p = load_policy()
    globals_ = {"deceased", "minor", "company", "former_customer", "frequency_cap"}
    assert set(p.rules_for("email")) == {"consent_missing", "consent_withdrawn", "invalid_contact"} | globals_
    assert (
        set(p.rules_for("letter"))
        == {"consent_withdrawn", "invalid_contact", "asml_mail", "vtj_marketing_ban", "safety_ban"} | globals_
    )
    assert set(p.rules_for("phone")) == {"consent_withdrawn", "invalid_contact", "asml_phone"} | globals_
    for ch in CHANNELS:
        assert set(p.rules_for(ch)) <= set(REASON_CODES)


def test_load_policy_defaults_to_packaged_file():
    assert load_policy() == load_policy(default_policy_path())


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d["channels"]["phone"].__setitem__("legal_basis", "sometimes"), "channels.phone.legal_basis"),
        (lambda d: d["channels"]["sms"].__setitem__("contact", "valid_pigeon"), "channels.sms.contact"),
        (
            lambda d: d["channels"]["letter"].__setitem__("exclusions", ["asml_mail", "nope"]),
            "channels.letter.exclusions",
        ),
        (lambda d: d["channels"]["letter"].__setitem__("exclusions", ["asml_mail"]), "channels.letter"),
        (lambda d: d["channels"].pop("sms"), "channels"),
        (
            lambda d: d["global_exclusions"]["minor"].__setitem__("age_limit", "adult"),
            "global_exclusions.minor.age_limit",
        ),
        (lambda d: d["global_exclusions"]["frequency_cap"].pop("cap"), "global_exclusions.frequency_cap.cap"),
        (lambda d: d["global_exclusions"].__setitem__("left_handed", {}), "global_exclusions.left_handed"),
        (lambda d: d.__setitem__("version", 2026.1), "version"),
        (lambda d: d.__setitem__("timezone", "Europe/Atlantis"), "timezone"),
        (lambda d: d["renewal"].__setitem__("channel_preference", ["email", "fax"]), "renewal.channel_preference"),
        (lambda d: d["anomaly"].__setitem__("threshold", -1), "anomaly.threshold"),
        (lambda d: d["retention"]["quarantine"].__setitem__("years", 1), "retention.quarantine"),
        (lambda d: d.pop("retention"), "retention"),
        (lambda d: d["retention"]["invoices"].__setitem__("years", 5), "retention.invoices"),
        (lambda d: d["retention"].__setitem__("invoices", {"months": 71}), "retention.invoices"),
        (lambda d: d["channels"]["letter"].__setitem__("soft_opt_in", True), "channels.letter"),
    ],
)
def test_invalid_policy_names_the_key(raw, edit, key):
    data = copy.deepcopy(raw)
    edit(data)
    with pytest.raises(PolicyError) as err:
        parse_policy(data, "test.yaml")
    assert f"  {key}" in str(err.value), str(err.value)
    assert "test.yaml" in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="mapping"):
        load_policy(scalar)


def test_policy_is_immutable():
    p = load_policy()
    with pytest.raises(ValidationError):
        p.version = "x"  # type: ignore[misc]


def test_global_exclusion_can_be_switched_off(raw):
    data = copy.deepcopy(raw)
    data["global_exclusions"].pop("frequency_cap")
    data["global_exclusions"]["company"] = False
    p = parse_policy(data)
    assert "frequency_cap" not in p.rules_for("email")
    assert "company" not in p.rules_for("email")
