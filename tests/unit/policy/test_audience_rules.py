"""One test per rule and per exclusion code, on small hand-made core tables. D = 2026-11-24."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
import yaml
from policy_fixtures import (
    ASML_DATE,
    POPULATION_DATE,
    UTC,
    D,
    asml,
    consent,
    contact,
    contract,
    customer,
    granted_everywhere,
    make_inputs,
    members,
    reasons,
    run,
)

from data_contracts.audiences import audience_columns, renewal_columns
from data_contracts.normalise import asml_match_key
from data_contracts.policy import REASON_CODES, default_policy_path, load_policy, parse_policy
from data_contracts.published import validate_published
from data_contracts.vocabulary import CHANNELS
from models.audience_inputs import AudienceResult
from models.audience_recheck import policy_violations
from models.audience_rules import build_audiences

C1, C2, C3 = "C0000001", "C0000002", "C0000003"
T0 = dt.datetime(2025, 3, 1, 9, tzinfo=UTC)


def everything(customers, consents=None, **kw):
    """Customers who granted every channel, unless `consents` says otherwise."""
    if consents is None:
        consents = [ev for c in customers for ev in granted_everywhere(c["customer_id"])]
    inputs = make_inputs(customers, consents, **kw)
    result = run(inputs)
    assert policy_violations(result, inputs, load_policy(), D).is_empty()
    for name, df in result.tables().items():
        validate_published(
            name, df, policy=load_policy(), safety_ban_ids=[c["customer_id"] for c in customers if c.get("safety_ban")]
        )
    return result


def in_all(result: AudienceResult, cid: str) -> dict[str, bool]:
    return {ch: cid in members(result, ch) for ch in CHANNELS}


# --- admission and evidence ---------------------------------------------------------------


def test_granted_customer_is_in_every_channel_with_evidence():
    r = everything([customer(C1)])
    assert in_all(r, C1) == {ch: True for ch in CHANNELS}
    assert r.audience_exclusions.is_empty()
    email = r.audience_email.row(0, named=True)
    assert email["legal_basis"] == "consent"
    assert email["rule"] == "consent:marketing/email"
    assert email["consent_event_id"] == f"E-{C1}-marketing-email-20250101120000"
    assert email["consent_occurred_at"] == dt.datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert email["consent_source"] == "web_form"
    assert email["consent_wording_version"] == "v3"
    assert email["consent_evidence_ref"] == f"form/{C1}/20250101"
    assert (email["asml_checked_on"], email["vtj_checked_on"]) == (ASML_DATE, POPULATION_DATE)
    assert (email["policy_version"], email["as_of"]) == ("2026.2", D)
    letter = r.audience_letter.row(0, named=True)
    assert letter["legal_basis"] == "opt_out" and letter["rule"] == "opt_out:marketing/letter"
    assert letter["consent_event_id"] is None


def test_each_audience_carries_only_its_own_contact_fields():
    r = everything([customer(C1)])
    p = load_policy()
    for ch in CHANNELS:
        assert tuple(r.audience(ch).columns) == audience_columns(p, ch)
    assert "email" in r.audience_email.columns and "phone_e164" not in r.audience_email.columns
    assert "street_address" not in r.audience_email.columns
    assert "phone_e164" in r.audience_sms.columns and "email" not in r.audience_sms.columns
    assert {"first_name", "last_name", "street_address", "postal_code", "city"} <= set(r.audience_letter.columns)
    assert "email" not in r.audience_letter.columns and "phone_e164" not in r.audience_letter.columns
    assert "street_address" not in r.audience_phone.columns
    assert r.audience_sms.item(0, "phone_e164") == "+358400000001"


def test_all_channel_grant_counts_for_every_channel():
    r = everything([customer(C1)], [consent(C1, None, "granted", T0)])
    assert in_all(r, C1) == {ch: True for ch in CHANNELS}
    assert r.audience_sms.item(0, "consent_event_id") == f"E-{C1}-marketing-None-{T0:%Y%m%d%H%M%S}"


# --- consent_missing / consent_withdrawn --------------------------------------------------


def test_consent_missing_only_on_consent_channels():
    r = everything([customer(C1)], [])
    assert reasons(r, C1, "email") == {"consent_missing"}
    assert reasons(r, C1, "sms") == {"consent_missing"}
    # opt-out channels: no event is fine
    assert in_all(r, C1) == {"email": False, "sms": False, "letter": True, "phone": True}


def test_newsletter_and_profiling_are_not_marketing_consent():
    r = everything(
        [customer(C1)],
        [
            consent(C1, "email", "granted", T0, purpose="newsletter"),
            consent(C1, None, "granted", T0, purpose="profiling"),
        ],
    )
    assert reasons(r, C1, "email") == {"consent_missing"}


def test_channel_withdrawal_only_excludes_its_own_channel():
    cons = granted_everywhere(C1) + [consent(C1, "sms", "withdrawn", T0)]
    r = everything([customer(C1)], cons)
    assert in_all(r, C1) == {"email": True, "sms": False, "letter": True, "phone": True}
    assert reasons(r, C1, "sms") == {"consent_withdrawn"}


@pytest.mark.parametrize("channel", ["letter", "phone"])
def test_opt_out_channel_withdrawal_excludes(channel):
    r = everything([customer(C1)], [consent(C1, channel, "withdrawn", T0)])
    assert reasons(r, C1, channel) == {"consent_withdrawn"}
    other = "phone" if channel == "letter" else "letter"
    assert C1 in members(r, other)


def test_all_channel_withdrawal_excludes_every_marketing_channel():
    cons = granted_everywhere(C1) + [consent(C1, None, "withdrawn", T0)]
    r = everything([customer(C1)], cons)
    assert in_all(r, C1) == {ch: False for ch in CHANNELS}
    for ch in CHANNELS:
        assert reasons(r, C1, ch) == {"consent_withdrawn"}


def test_later_channel_grant_overrides_earlier_all_channel_withdrawal():
    cons = [consent(C1, None, "withdrawn", T0), consent(C1, "email", "granted", T0 + dt.timedelta(days=1))]
    r = everything([customer(C1)], cons)
    assert in_all(r, C1) == {"email": True, "sms": False, "letter": False, "phone": False}
    assert reasons(r, C1, "sms") == {"consent_withdrawn"}


def test_tie_between_grant_and_withdrawal_resolves_to_withdrawn():
    # consent_state normally arrives resolved; a tie that reaches the builder still resolves safely
    cons = [consent(C1, "email", "granted", T0, event_id="E1"), consent(C1, None, "withdrawn", T0, event_id="E2")]
    r = everything([customer(C1)], cons)
    assert reasons(r, C1, "email") == {"consent_withdrawn"}


def test_late_arriving_older_event_does_not_win():
    # rows in any order: the latest occurred_at decides, never file or row order
    cons = [
        consent(C1, "email", "granted", T0 + dt.timedelta(hours=1), event_id="new"),
        consent(C1, "email", "withdrawn", T0, event_id="old"),
    ]
    r = everything([customer(C1)], cons)
    assert C1 in members(r, "email")
    assert r.audience_email.item(0, "consent_event_id") == "new"


@pytest.mark.parametrize("state", ["maybe", None])
def test_unreadable_consent_state_fails_safe(state):
    r = everything([customer(C1)], [*granted_everywhere(C1), consent(C1, "phone", state, T0)])
    assert reasons(r, C1, "phone") == {"consent_withdrawn"}
    r = everything([customer(C1)], [*granted_everywhere(C1), consent(C1, "email", state, T0)])
    assert reasons(r, C1, "email") == {"consent_withdrawn"}


# --- invalid_contact ------------------------------------------------------------------------


def test_invalid_contact_per_channel():
    cs = [
        customer(C1, email=None),
        customer(C2, phone_is_mobile=False),
        customer(C3, phone_e164=None, phone_is_mobile=None),
        customer("C0000004", postal_code="123"),
        customer("C0000005", street_address=None),
    ]
    r = everything(cs)
    assert reasons(r, C1, "email") == {"invalid_contact"}
    assert in_all(r, C1) == {"email": False, "sms": True, "letter": True, "phone": True}
    # a landline: fine for phone, not for SMS
    assert reasons(r, C2, "sms") == {"invalid_contact"}
    assert C2 in members(r, "phone")
    assert reasons(r, C3, "sms") == reasons(r, C3, "phone") == {"invalid_contact"}
    assert reasons(r, "C0000004", "letter") == {"invalid_contact"}
    assert reasons(r, "C0000005", "letter") == {"invalid_contact"}


# --- global exclusions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deceased_on", "excluded"),
    [(D, True), (D - dt.timedelta(days=400), True), (D + dt.timedelta(days=1), False), (None, False)],
)
def test_deceased(deceased_on, excluded):
    r = everything([customer(C1, deceased_on=deceased_on)])
    for ch in CHANNELS:
        assert ("deceased" in reasons(r, C1, ch)) is excluded
        assert (C1 in members(r, ch)) is not excluded


@pytest.mark.parametrize(
    ("birth_date", "minor"),
    [
        (dt.date(2008, 11, 24), False),  # 18th birthday on D: adult
        (dt.date(2008, 11, 25), True),  # 18 tomorrow
        (dt.date(1990, 1, 1), False),
        (dt.date(2020, 1, 1), True),
        (None, True),  # age cannot be shown: not an adult
    ],
)
def test_minor_boundary_on_18th_birthday(birth_date, minor):
    r = everything([customer(C1, birth_date=birth_date)])
    for ch in CHANNELS:
        assert ("minor" in reasons(r, C1, ch)) is minor
        assert (C1 in members(r, ch)) is not minor


def test_leap_day_birthday_turns_18_on_first_of_march():
    cs = [customer(C1, birth_date=dt.date(2008, 2, 29))]
    cons = granted_everywhere(C1)
    p = load_policy()
    on_28 = build_audiences(**_kw(make_inputs(cs, cons)), policy=p, as_of=dt.date(2026, 2, 28))
    on_1 = build_audiences(**_kw(make_inputs(cs, cons)), policy=p, as_of=dt.date(2026, 3, 1))
    assert reasons(on_28, C1, "email") == {"minor"}
    assert C1 in members(on_1, "email")


def _kw(inputs):
    return dict(
        customers=inputs.customers,
        consent_state=inputs.consent_state,
        asml_register=inputs.asml_register,
        contact_history=inputs.contact_history,
        segments=inputs.segments,
        asml_date=inputs.asml_date,
        population_date=inputs.population_date,
        contracts=inputs.contracts,
    )


def test_company():
    r = everything(
        [customer(C1, customer_type="company", first_name=None, last_name=None, birth_date=None, company_name="Oy Ab")]
    )
    for ch in CHANNELS:
        assert "company" in reasons(r, C1, ch)
        assert "minor" not in reasons(r, C1, ch)
        assert C1 not in members(r, ch)


@pytest.mark.parametrize(
    ("ended_on", "former"),
    [
        (D - dt.timedelta(days=365), False),
        (D - dt.timedelta(days=366), True),
        (D - dt.timedelta(days=10), False),
        (D + dt.timedelta(days=30), False),
        (None, False),
    ],
)
def test_former_customer_window(ended_on, former):
    r = everything([customer(C1, ended_on=ended_on)])
    for ch in CHANNELS:
        assert ("former_customer" in reasons(r, C1, ch)) is former


def _helsinki(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZoneInfo("Europe/Helsinki")).astimezone(UTC)


def test_frequency_cap_fourth_contact_364_days_ago_counts():
    three_recent = [contact(C1, _helsinki(D - dt.timedelta(days=k), 10)) for k in (1, 30, 60)]
    at_364 = contact(C1, _helsinki(D - dt.timedelta(days=364), 0, 30))  # just after local midnight
    r = everything([customer(C1)], contacts=[*three_recent, at_364])
    for ch in CHANNELS:
        assert reasons(r, C1, ch) == {"frequency_cap"}


def test_frequency_cap_contact_365_days_ago_is_outside():
    three_recent = [contact(C1, _helsinki(D - dt.timedelta(days=k), 10)) for k in (1, 30, 60)]
    at_365 = contact(C1, _helsinki(D - dt.timedelta(days=365), 23, 30))  # late evening of D-365, local
    r = everything([customer(C1)], contacts=[*three_recent, at_365])
    assert in_all(r, C1) == {ch: True for ch in CHANNELS}


def test_frequency_cap_uses_helsinki_midnight_not_utc():
    # 2025-11-24T22:30Z is 2025-11-25 00:30 in Helsinki (D-364): inside, although its UTC date is D-365
    first_day = D - dt.timedelta(days=364)
    assert first_day == dt.date(2025, 11, 25)
    inside_local = dt.datetime(2025, 11, 24, 22, 30, tzinfo=UTC)
    # 2025-11-24T21:30Z is 23:30 local on D-365: outside, although only an hour earlier
    outside_local = dt.datetime(2025, 11, 24, 21, 30, tzinfo=UTC)
    # on D itself the local day ends at 21:59:59Z (22:00Z is already D+1 in Helsinki)
    end_of_d = dt.datetime(2026, 11, 24, 21, 59, 59, tzinfo=UTC)
    after_d = dt.datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
    base = [contact(C1, _helsinki(D - dt.timedelta(days=k), 10)) for k in (5, 6)]
    cases = {
        "C0000001": ([*base, contact(C1, end_of_d), contact(C1, inside_local)], True),
        "C0000002": ([*base, contact(C1, end_of_d), contact(C1, outside_local)], False),
        "C0000003": ([*base, contact(C1, after_d), contact(C1, inside_local)], False),
    }
    for cid, (rows, capped) in cases.items():
        rows = [dict(r, customer_id=cid) for r in rows]
        r = everything([customer(cid)], contacts=rows)
        assert ("frequency_cap" in reasons(r, cid, "email")) is capped, cid


def test_frequency_cap_ignores_customer_communication_and_duplicates():
    when = [_helsinki(D - dt.timedelta(days=k), 10) for k in (1, 2, 3)]
    rows = [contact(C1, t) for t in when]
    rows.append(dict(rows[0]))  # the same contact delivered twice is one contact
    rows.append(contact(C1, _helsinki(D - dt.timedelta(days=4), 10), kind="customer_communication"))
    r = everything([customer(C1)], contacts=rows)
    assert C1 in members(r, "email")
    rows.append(contact(C1, _helsinki(D - dt.timedelta(days=4), 11), channel="letter"))
    r = everything([customer(C1)], contacts=rows)
    assert reasons(r, C1, "email") == {"frequency_cap"}


def test_frequency_cap_accepts_helsinki_timestamps():
    rows = [contact(C1, _helsinki(D - dt.timedelta(days=k), 10)) for k in (1, 2, 3, 4)]
    inputs = make_inputs([customer(C1)], granted_everywhere(C1), contacts=rows)
    inputs = type(inputs)(
        **{
            **inputs.__dict__,
            "contact_history": inputs.contact_history.with_columns(
                pl.col("sent_at").dt.convert_time_zone("Europe/Helsinki")
            ),
        }
    )
    assert reasons(run(inputs), C1, "email") == {"frequency_cap"}


# --- channel exclusions ---------------------------------------------------------------------


def _mail_key(c):
    return asml_match_key(c["first_name"], c["last_name"], c["street_address"], c["postal_code"])


@pytest.mark.parametrize(
    ("registered_on", "expires_on", "applies"),
    [
        (dt.date(2020, 1, 1), None, True),
        (dt.date(2020, 1, 1), D, True),  # expires on D: still applies on D
        (dt.date(2020, 1, 1), D - dt.timedelta(days=1), False),
        (D, None, True),
        (D + dt.timedelta(days=1), None, False),  # not yet registered
    ],
)
def test_asml_mail_expiry_boundary(registered_on, expires_on, applies):
    c = customer(C1)
    reg = [asml("mail", match_key=_mail_key(c), registered_on=registered_on, expires_on=expires_on)]
    r = everything([c], registers=reg)
    assert ("asml_mail" in reasons(r, C1, "letter")) is applies
    assert (C1 in members(r, "letter")) is not applies
    assert in_all(r, C1)["phone"] and in_all(r, C1)["email"]  # mail register only touches letter


def test_asml_mail_matches_nfd_register_against_nfc_customer():
    import unicodedata

    c = customer(
        C1, first_name=unicodedata.normalize("NFC", "Sää-Äijö"), last_name="Öhman", street_address="Hämeenkatu 5 B 12"
    )
    key = asml_match_key(
        unicodedata.normalize("NFD", "SÄÄ-ÄIJÖ"), unicodedata.normalize("NFD", "öhman"), "hämeenkatu  5b12", "00100"
    )
    r = everything([c], registers=[asml("mail", match_key=key)])
    assert reasons(r, C1, "letter") == {"asml_mail"}


def test_asml_register_without_match_key_is_keyed_from_its_columns():
    import unicodedata

    c = customer(C1)
    reg = pl.DataFrame(
        {
            "register": ["mail"],
            "first_name": [c["first_name"].upper()],
            "last_name": [unicodedata.normalize("NFD", c["last_name"])],
            "street_address": [c["street_address"].replace(" ", "")],
            "postal_code": ["00100"],
            "phone_e164": [None],
            "registered_on": [dt.date(2020, 1, 1)],
            "expires_on": [None],
        },
        schema_overrides={"phone_e164": pl.String, "expires_on": pl.Date},
    )
    inputs = make_inputs([c], granted_everywhere(C1))
    r = build_audiences(**{**_kw(inputs), "asml_register": reg}, policy=load_policy(), as_of=D)
    assert reasons(r, C1, "letter") == {"asml_mail"}


@pytest.mark.parametrize(("expires_on", "applies"), [(D, True), (D - dt.timedelta(days=1), False), (None, True)])
def test_asml_phone_by_e164(expires_on, applies):
    c = customer(C1)
    r = everything([c, customer(C2)], registers=[asml("phone", phone_e164=c["phone_e164"], expires_on=expires_on)])
    assert ("asml_phone" in reasons(r, C1, "phone")) is applies
    assert C2 in members(r, "phone")
    assert C1 in members(r, "sms")  # the telemarketing register does not touch SMS


def test_vtj_marketing_ban_excludes_letter_only():
    r = everything([customer(C1, marketing_ban=True)])
    assert reasons(r, C1, "letter") == {"vtj_marketing_ban"}
    assert in_all(r, C1) == {"email": True, "sms": True, "letter": False, "phone": True}


def test_safety_ban_excludes_letter_and_hides_the_address():
    c = customer(C1, safety_ban=True, street_address=None, postal_code=None, city=None, address_source="suppressed")
    r = everything([c])
    assert reasons(r, C1, "letter") == {"safety_ban"}
    assert in_all(r, C1) == {"email": True, "sms": True, "letter": False, "phone": True}
    for ch in ("email", "sms", "phone"):
        assert not set(r.audience(ch).columns) & {"street_address", "postal_code", "city"}


def test_safety_ban_excludes_letter_even_if_an_address_leaked_upstream():
    r = everything([customer(C1, safety_ban=True)])
    assert reasons(r, C1, "letter") == {"safety_ban"}


def test_every_reason_is_listed_not_only_the_first():
    c = customer(
        C1,
        deceased_on=D - dt.timedelta(days=3),
        birth_date=dt.date(2010, 1, 1),
        ended_on=D - dt.timedelta(days=500),
        marketing_ban=True,
        email=None,
        phone_is_mobile=False,
    )
    reg = [asml("mail", match_key=_mail_key(c)), asml("phone", phone_e164=c["phone_e164"])]
    contacts = [contact(C1, _helsinki(D - dt.timedelta(days=k), 12)) for k in range(4)]
    cons = [consent(C1, "letter", "withdrawn", T0)]
    r = everything([c], cons, registers=reg, contacts=contacts)
    common = {"deceased", "minor", "former_customer", "frequency_cap"}
    assert reasons(r, C1, "email") == common | {"consent_missing", "invalid_contact"}
    assert reasons(r, C1, "sms") == common | {"consent_missing", "invalid_contact"}
    assert reasons(r, C1, "letter") == common | {"consent_withdrawn", "asml_mail", "vtj_marketing_ban"}
    assert reasons(r, C1, "phone") == common | {"asml_phone"}
    assert set(r.audience_exclusions.get_column("reason").unique()) <= set(REASON_CODES)


def test_every_exclusion_code_is_exercised():
    c1 = customer(
        C1,
        deceased_on=D,
        birth_date=dt.date(2015, 1, 1),
        ended_on=D - dt.timedelta(days=900),
        marketing_ban=True,
        email=None,
        safety_ban=True,
    )
    c2 = customer(C2, customer_type="company")
    reg = [asml("mail", match_key=_mail_key(c1)), asml("phone", phone_e164=c1["phone_e164"])]
    contacts = [contact(C1, _helsinki(D, 8, k)) for k in range(5)]
    r = everything([c1, c2], [consent(C2, None, "withdrawn", T0)], registers=reg, contacts=contacts)
    assert set(r.audience_exclusions.get_column("reason")) == set(REASON_CODES)


# --- segments and profiling -----------------------------------------------------------------


def test_segment_id_follows_profiling_state():
    cs = [customer(C1), customer(C2), customer(C3)]
    cons = [ev for c in (C1, C2, C3) for ev in granted_everywhere(c)]
    cons.append(consent(C2, None, "withdrawn", T0, purpose="profiling"))
    segs = [
        {"customer_id": C1, "segment_id": "S1", "model_version": "m1", "as_of": D},
        {"customer_id": C2, "segment_id": "S2", "model_version": "m1", "as_of": D},
    ]  # objector leaked in
    r = everything(cs, cons, segments=segs)
    seg = dict(r.audience_email.select("customer_id", "segment_id").iter_rows())
    assert seg == {C1: "S1", C2: None, C3: None}
    # objecting to profiling is not objecting to marketing
    assert in_all(r, C2) == {ch: True for ch in CHANNELS}


# --- renewal offers -------------------------------------------------------------------------


def _renewals(customers, contracts, consents=None, **kw):
    r = everything(customers, consents, contracts=contracts, **kw)
    assert tuple(r.renewal_offers.columns) == renewal_columns(load_policy())
    return {row["contract_id"]: row for row in r.renewal_offers.iter_rows(named=True)}


def test_renewal_channel_choice():
    cs = [
        customer(C1),
        customer(C2, email=None),
        customer(C3, email=None, safety_ban=True, street_address=None, postal_code=None, city=None),
        customer("C0000004", email=None, postal_code=None),
        customer("C0000005", safety_ban=True, street_address=None, postal_code=None, city=None),
    ]
    end = D + dt.timedelta(days=30)
    rows = _renewals(cs, [contract(f"K{i}", c["customer_id"], end) for i, c in enumerate(cs, 1)])
    assert {k: (v["channel"], v["reason"]) for k, v in rows.items()} == {
        "K1": ("email", "valid_email"),
        "K2": ("letter", "valid_postal_address"),
        "K3": ("none", "no_usable_contact"),
        "K4": ("none", "no_usable_contact"),
        "K5": ("email", "valid_email"),
    }
    assert rows["K1"]["email"] == "matti1@example.fi" and rows["K1"]["street_address"] is None
    assert rows["K2"]["email"] is None and rows["K2"]["street_address"] == "Mannerheimintie 2"
    assert rows["K2"]["first_name"] == "Matti"
    for k in ("K3", "K4"):
        assert all(
            rows[k][f] is None for f in ("email", "first_name", "last_name", "street_address", "postal_code", "city")
        )
    assert rows["K5"]["street_address"] is None


@pytest.mark.parametrize(
    ("end_date", "included"),
    [
        (D, False),
        (D + dt.timedelta(days=1), True),
        (D + dt.timedelta(days=60), True),
        (D + dt.timedelta(days=61), False),
        (D - dt.timedelta(days=5), False),
    ],
)
def test_renewal_window(end_date, included):
    rows = _renewals([customer(C1)], [contract("K1", C1, end_date)])
    assert ("K1" in rows) is included


def test_renewal_scope_deceased_companies_open_ended():
    cs = [customer(C1, deceased_on=D - dt.timedelta(days=1)), customer(C2, customer_type="company"), customer(C3)]
    end = D + dt.timedelta(days=10)
    rows = _renewals(
        cs,
        [
            contract("K1", C1, end),
            contract("K2", C2, end),
            contract("K3", C3, end, contract_type="open_ended"),
            contract("K4", C3, end),
            contract("K5", "C0000099", end),
        ],
    )
    assert set(rows) == {"K4"}


def test_renewal_is_not_marketing():
    # no marketing consent at all, capped, on both ASML registers, VTJ marketing ban: still gets the offer
    c = customer(C1, email=None, marketing_ban=True)
    contacts = [contact(C1, _helsinki(D - dt.timedelta(days=k), 12)) for k in range(6)]
    reg = [asml("mail", match_key=_mail_key(c)), asml("phone", phone_e164=c["phone_e164"])]
    rows = _renewals(
        [c],
        [contract("K1", C1, D + dt.timedelta(days=3))],
        [consent(C1, None, "withdrawn", T0)],
        contacts=contacts,
        registers=reg,
    )
    assert rows["K1"]["channel"] == "letter"


def test_no_contracts_gives_empty_renewals_with_the_right_columns():
    inputs = make_inputs([customer(C1)])
    r = build_audiences(**{**_kw(inputs), "contracts": None}, policy=load_policy(), as_of=D)
    assert r.renewal_offers.is_empty()
    assert tuple(r.renewal_offers.columns) == renewal_columns(load_policy())


# --- the policy as data ---------------------------------------------------------------------


def test_editing_the_yaml_moves_phone_to_consent(tmp_path):
    text = default_policy_path().read_text(encoding="utf-8")
    edited = text.replace("  phone:\n    legal_basis: opt_out", "  phone:\n    legal_basis: consent")
    edited = edited.replace('version: "2026.2"', 'version: "2026.3"')
    assert edited != text
    path = tmp_path / "policy.yaml"
    path.write_text(edited, encoding="utf-8")
    strict = load_policy(path)

    cs = [customer(C1), customer(C2)]
    cons = [consent(C2, "phone", "granted", T0)]
    inputs = make_inputs(cs, cons)
    default = run(inputs)
    assert members(default, "phone") == {C1, C2}

    r = run(inputs, strict)
    assert members(r, "phone") == {C2}
    assert reasons(r, C1, "phone") == {"consent_missing"}
    row = r.audience_phone.row(0, named=True)
    assert (row["legal_basis"], row["rule"], row["policy_version"]) == ("consent", "consent:marketing/phone", "2026.3")
    assert row["consent_event_id"] == f"E-{C2}-marketing-phone-{T0:%Y%m%d%H%M%S}"
    assert policy_violations(r, inputs, strict, D).is_empty()
    # the default policy's re-check sees the same result as wrong (it expects opt_out rows)
    assert not policy_violations(r, inputs, load_policy(), D).is_empty()


def test_editing_the_yaml_changes_the_cap_and_age():
    data = yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))
    data["global_exclusions"]["frequency_cap"]["cap"] = 2
    data["global_exclusions"]["minor"]["age_limit"] = 21
    p = parse_policy(data)
    contacts = [contact(C1, _helsinki(D - dt.timedelta(days=k), 12)) for k in (1, 2)]
    inputs = make_inputs(
        [customer(C1), customer(C2, birth_date=dt.date(2006, 1, 1))],
        [*granted_everywhere(C1), *granted_everywhere(C2)],
        contacts=contacts,
    )
    r = run(inputs, p)
    assert reasons(r, C1, "email") == {"frequency_cap"}
    assert reasons(r, C2, "email") == {"minor"}


def test_soft_opt_in_when_switched_on():
    data = yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))
    data["channels"]["email"]["soft_opt_in"] = True
    p = parse_policy(data)
    cs = [customer(C1), customer(C2, ended_on=D - dt.timedelta(days=10)), customer(C3)]
    inputs = make_inputs(cs, [consent(C3, "email", "withdrawn", T0)])
    r = run(inputs, p)
    assert members(r, "email") == {C1}
    assert r.audience_email.row(0, named=True)["rule"] == "soft_opt_in:marketing/email"
    assert r.audience_email.row(0, named=True)["legal_basis"] == "opt_out"
    assert reasons(r, C2, "email") == {"consent_missing"}
    assert reasons(r, C3, "email") == {"consent_withdrawn"}
    assert policy_violations(r, inputs, p, D).is_empty()


# --- the blocking re-check and input handling -----------------------------------------------


def test_policy_violations_catches_a_tampered_audience():
    cs = [customer(C1), customer(C2)]
    cons = granted_everywhere(C1) + [consent(C2, "email", "withdrawn", T0)]
    inputs = make_inputs(cs, cons)
    r = run(inputs)
    assert policy_violations(r, inputs, load_policy(), D).is_empty()

    smuggled = r.audience_email.vstack(
        r.audience_email.with_columns(pl.lit(C2).alias("customer_id"), pl.lit("matti2@example.fi").alias("email"))
    )
    bad = AudienceResult(**{**r.__dict__, "audience_email": smuggled})
    v = policy_violations(bad, inputs, load_policy(), D)
    got = set(v.select("customer_id", "check").iter_rows())
    assert (C2, "consent_withdrawn") in got
    assert (C2, "consent_missing") in got
    assert ("C0000002", "in_audience_and_excluded") in got

    lost = AudienceResult(**{**r.__dict__, "audience_exclusions": r.audience_exclusions.clear()})
    v = policy_violations(lost, inputs, load_policy(), D)
    assert set(v.get_column("check")) == {"unaccounted"}

    wrong_contact = AudienceResult(
        **{**r.__dict__, "audience_email": r.audience_email.with_columns(pl.lit("someone@else.fi").alias("email"))}
    )
    assert "contact_mismatch" in set(policy_violations(wrong_contact, inputs, load_policy(), D).get_column("check"))


def test_policy_violations_catches_segments():
    cs = [customer(C1), customer(C2)]
    cons = [*granted_everywhere(C1), *granted_everywhere(C2), consent(C2, None, "withdrawn", T0, purpose="profiling")]
    segs = [{"customer_id": C1, "segment_id": "S1", "model_version": "m1", "as_of": D}]
    inputs = make_inputs(cs, cons, segments=segs)
    r = run(inputs)
    assert policy_violations(r, inputs, load_policy(), D).is_empty()
    tampered = r.audience_email.with_columns(pl.lit("S9").alias("segment_id"))
    v = policy_violations(AudienceResult(**{**r.__dict__, "audience_email": tampered}), inputs, load_policy(), D)
    assert set(v.select("customer_id", "check").iter_rows()) == {
        (C1, "segment_mismatch"),
        (C2, "segment_after_objection"),
    }


def test_policy_violations_catches_bad_renewals():
    cs = [customer(C1, safety_ban=True), customer(C2, deceased_on=D)]
    inputs = make_inputs(cs, contracts=[contract("K1", C1, D + dt.timedelta(days=5))])
    r = run(inputs)
    extra = r.renewal_offers.with_columns(
        pl.lit("letter").alias("channel"),
        pl.lit(None, pl.String).alias("email"),
        pl.lit("Mannerheimintie 1").alias("street_address"),
    )
    dead = r.renewal_offers.with_columns(pl.lit("K2").alias("contract_id"), pl.lit(C2).alias("customer_id"))
    bad = AudienceResult(**{**r.__dict__, "renewal_offers": pl.concat([extra, dead])})
    checks = set(policy_violations(bad, inputs, load_policy(), D).get_column("check"))
    assert {"address_under_safety_ban", "renewal_channel", "deceased", "contract_type"} <= checks


def test_missing_input_column_is_named():
    inputs = make_inputs([customer(C1)])
    with pytest.raises(ValueError, match=r"customers: missing required column\(s\) safety_ban"):
        build_audiences(
            **{**_kw(inputs), "customers": inputs.customers.drop("safety_ban")}, policy=load_policy(), as_of=D
        )


def test_duplicate_customers_are_refused():
    inputs = make_inputs([customer(C1), customer(C1)])
    with pytest.raises(ValueError, match="not unique"):
        run(inputs)


def test_as_of_must_be_a_date():
    inputs = make_inputs([customer(C1)])
    with pytest.raises(TypeError):
        build_audiences(
            **_kw(inputs),
            policy=load_policy(),
            as_of=dt.datetime(2026, 11, 24, 12),
        )


def test_lazy_inputs_give_the_same_result():
    cs = [customer(C1), customer(C2, email=None)]
    inputs = make_inputs(cs, granted_everywhere(C1))
    eager = run(inputs)
    lazy = build_audiences(
        **{k: (v.lazy() if isinstance(v, pl.DataFrame) else v) for k, v in _kw(inputs).items()},
        policy=load_policy(),
        as_of=D,
    )
    for name, df in eager.tables().items():
        assert lazy.tables()[name].equals(df), name


def test_result_is_deterministic_and_summary_has_counts_only():
    cs = [customer(f"C{n:07d}", email=None if n % 3 == 0 else f"x{n}@example.fi") for n in range(1, 30)]
    cons = [ev for c in cs[::2] for ev in granted_everywhere(c["customer_id"])]
    inputs = make_inputs(cs, cons)
    a, b = run(inputs), run(inputs)
    for name in a.tables():
        assert a.tables()[name].equals(b.tables()[name])
    s = a.summary()
    assert set(s["audience_sizes"]) == set(CHANNELS)
    assert s["audience_sizes"]["letter"] == 29
    assert sum(s["exclusions_by_reason"].values()) == a.audience_exclusions.height
