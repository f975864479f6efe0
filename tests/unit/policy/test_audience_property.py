"""Property: no published audience row breaks the policy, whatever the customers and event logs.

Hypothesis generates customers, raw consent event logs (all-channel events, ties, out-of-order
rows), contact histories around the Helsinki window edges and ASML registers. For every example:
- policy_violations (the blocking pre-publication check) finds nothing;
- a brute-force, row-by-row Python reading of the policy agrees exactly with the audiences, the
  exclusion reasons, the deciding consent events, the segment ids and the renewal channels;
- every (customer, channel) is either in the audience or has at least one reason, never both.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_fixtures import UTC, D, make_inputs, run

from data_contracts.normalise import asml_match_key
from data_contracts.policy import MarketingPolicy, load_policy
from data_contracts.vocabulary import CHANNELS
from models.audience_recheck import policy_violations

POLICY = load_policy()
HEL = ZoneInfo("Europe/Helsinki")


def _day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


# --- strategies -------------------------------------------------------------------------------

FIRST = ["Matti", "Åsa", "Jääskö", "Ülle"]
LAST = ["Meikäläinen", "Öhman", "Virtanen"]
STREETS = ["Mannerheimintie 1", "Hämeenkatu 5 B 12", "Kötikatu 3"]


def _variant(draw, text: str) -> str:
    """The same name as a register might spell it: other case, NFD, other spacing."""
    how = draw(st.sampled_from(["same", "upper", "nfd", "spaces", "lower_nfd"]))
    if how == "upper":
        return text.upper()
    if how == "nfd":
        return unicodedata.normalize("NFD", text)
    if how == "spaces":
        return "  ".join(text.split(" ")) + " "
    if how == "lower_nfd":
        return unicodedata.normalize("NFD", text.lower())
    return text


@st.composite
def customers(draw, n: int):
    rows = []
    for i in range(1, n + 1):
        cid = f"C{i:07d}"
        ctype = draw(st.sampled_from(["person"] * 5 + ["company"]))
        safety = draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else False
        has_address = not safety and draw(st.integers(0, 5)) > 0
        phone_kind = draw(st.sampled_from(["mobile", "mobile", "landline", "none"]))
        rows.append(
            {
                "customer_id": cid,
                "customer_type": ctype,
                "first_name": draw(st.sampled_from(FIRST)) if ctype == "person" else None,
                "last_name": draw(st.sampled_from(LAST)) if ctype == "person" else None,
                "company_name": "Oy Ab" if ctype == "company" else None,
                "language": draw(st.sampled_from(["fi", "sv", "en"])),
                "email": draw(st.sampled_from([f"u{i}@example.fi", f"u{i}@example.fi", None])),
                "phone_e164": None if phone_kind == "none" else f"+3584{draw(st.integers(0, 3))}{i:07d}",
                "phone_is_mobile": {"mobile": True, "landline": False, "none": None}[phone_kind],
                "street_address": draw(st.sampled_from(STREETS)) if has_address else None,
                "postal_code": draw(st.sampled_from(["00100", "00100", "33100", "1234"])) if has_address else None,
                "city": "Helsinki" if has_address else None,
                "birth_date": None
                if ctype == "company"
                else draw(
                    st.sampled_from(
                        [
                            dt.date(2008, 11, 24),
                            dt.date(2008, 11, 25),
                            dt.date(1970, 2, 28),
                            dt.date(1988, 6, 1),
                            dt.date(2010, 1, 1),
                        ]
                    )
                ),
                "ended_on": draw(st.sampled_from([None, None, None, _day(-365), _day(-366), _day(-20), _day(40)])),
                "deceased_on": draw(st.sampled_from([None] * 6 + [D, _day(1), _day(-30)])),
                "marketing_ban": draw(st.sampled_from([False, False, False, True, None])),
                "safety_ban": safety,
            }
        )
    return rows


INSTANTS = [
    dt.datetime(2025, 6, 1, 12, tzinfo=UTC),
    dt.datetime(2025, 6, 1, 12, tzinfo=UTC),  # ties are likely
    dt.datetime(2026, 1, 1, 0, tzinfo=UTC),
    dt.datetime(2026, 11, 24, 21, 0, tzinfo=UTC),
]


@st.composite
def consent_log(draw, ids: list[str]):
    rows = []
    for k in range(draw(st.integers(0, 4 * len(ids)))):
        cid = draw(st.sampled_from(ids))
        purpose = draw(st.sampled_from(["marketing"] * 6 + ["profiling", "newsletter"]))
        channel = None if purpose == "profiling" else draw(st.sampled_from([None, *CHANNELS]))
        at = draw(st.sampled_from(INSTANTS))
        rows.append(
            {
                "customer_id": cid,
                "purpose": purpose,
                "channel": channel,
                "state": draw(st.sampled_from(["granted", "granted", "withdrawn"])),
                "event_id": f"E{k:04d}",
                "occurred_at": at,
                "source": draw(st.sampled_from(["web_form", "customer_service", "mobile_app", "paper_form"])),
                "wording_version": "v3",
                "evidence_ref": f"ref/{k}",
                "all_channel_event": channel is None,
            }
        )
    return rows


def _local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=HEL).astimezone(UTC)


SENT = [
    _local(_day(-365), 23, 30),  # outside, though its UTC date is D-365 as well
    _local(_day(-364), 0, 30),  # inside: D-364 in Helsinki, still D-365 in UTC
    _local(_day(-100), 12),
    _local(_day(-1), 9),
    _local(D, 23, 59),  # inside: the last minute of D
    _local(_day(1), 0, 1),  # outside: D+1 in Helsinki
]


@st.composite
def contacts(draw, ids: list[str]):
    rows = []
    for _ in range(draw(st.integers(0, 5 * len(ids)))):
        cid = draw(st.sampled_from(ids))
        rows.append(
            {
                "customer_id": cid,
                "channel": draw(st.sampled_from(CHANNELS)),
                "campaign_id": draw(st.sampled_from(["K1", "K2"])),
                "kind": draw(st.sampled_from(["marketing", "marketing", "customer_communication"])),
                "sent_at": draw(st.sampled_from(SENT)),
            }
        )
    return rows


@st.composite
def registers(draw, custs: list[dict]):
    rows = []
    for c in custs:
        if c["first_name"] and c["street_address"] and draw(st.integers(0, 2)) == 0:
            rows.append(
                {
                    "register": "mail",
                    "match_key": asml_match_key(
                        _variant(draw, c["first_name"]),
                        _variant(draw, c["last_name"]),
                        _variant(draw, c["street_address"]),
                        c["postal_code"],
                    ),
                    "phone_e164": None,
                    "registered_on": draw(st.sampled_from([_day(-500), D, _day(1)])),
                    "expires_on": draw(st.sampled_from([None, D, _day(-1), _day(100)])),
                    "extract_date": D,
                }
            )
        if c["phone_e164"] and draw(st.integers(0, 2)) == 0:
            rows.append(
                {
                    "register": "phone",
                    "match_key": None,
                    "phone_e164": c["phone_e164"],
                    "registered_on": draw(st.sampled_from([_day(-500), D])),
                    "expires_on": draw(st.sampled_from([None, D, _day(-1)])),
                    "extract_date": D,
                }
            )
    return rows


@st.composite
def worlds(draw):
    n = draw(st.integers(0, 8))
    custs = draw(customers(n))
    ids = [c["customer_id"] for c in custs] or ["C9999999"]
    segs = [
        {"customer_id": cid, "segment_id": f"S{draw(st.integers(1, 3))}", "model_version": "m1", "as_of": D}
        for cid in ids
        if draw(st.booleans())
    ]
    deals = [
        {
            "contract_id": f"K{cid[1:]}{j}",
            "customer_id": cid,
            "metering_point_id": "643007000000000017",
            "product_code": "FIXED24",
            "contract_type": draw(st.sampled_from(["fixed_term", "fixed_term", "open_ended"])),
            "start_date": _day(-700),
            "end_date": draw(st.sampled_from([D, _day(1), _day(30), _day(60), _day(61)])),
            "site_type": "apartment",
            "heating": None,
        }
        for cid in ids
        for j in range(draw(st.integers(0, 2)))
    ]
    return custs, draw(consent_log(ids)), draw(registers(custs)), draw(contacts(ids)), segs, deals


# --- the brute-force reading of the policy ----------------------------------------------------


def _latest(events: list[dict]) -> dict | None:
    """Latest event; among events at the same instant a withdrawal wins."""
    if not events:
        return None
    top = max(e["occurred_at"] for e in events)
    at_top = [e for e in events if e["occurred_at"] == top]
    withdrawn = [e for e in at_top if e["state"] != "granted"]
    return (withdrawn or at_top)[0]


def _age(birth: dt.date, on: dt.date) -> int:
    years = on.year - birth.year
    if (birth.month, birth.day) > (on.month, on.day):
        years -= 1
    return years


def _marketing_contacts(cid, history, first_day) -> int:
    """Distinct marketing contacts of the customer on the local days [first_day, D]."""
    seen = set()
    for h in history:
        if h["customer_id"] != cid or h["kind"] != "marketing":
            continue
        key = (h["channel"], h["campaign_id"], h["sent_at"])
        if first_day <= h["sent_at"].astimezone(HEL).date() <= D:
            seen.add(key)
    return len(seen)


def _common_reasons(c, n_marketing: int, ge) -> set[str]:
    """The global exclusions that apply to the customer on every channel."""
    person = c["customer_type"] == "person"
    common = set()
    if c["deceased_on"] is not None and c["deceased_on"] <= D:
        common.add("deceased")
    if person and (c["birth_date"] is None or _age(c["birth_date"], D) < ge.minor.age_limit):
        common.add("minor")
    if not person:
        common.add("company")
    if c["ended_on"] is not None and (D - c["ended_on"]).days > ge.former_customer.window_days:
        common.add("former_customer")
    if n_marketing >= ge.frequency_cap.cap:
        common.add("frequency_cap")
    return common


def _on_registers(c, regs) -> tuple[bool, bool]:
    """(on the ASML mail register, on the ASML phone register) on D."""
    key = asml_match_key(c["first_name"], c["last_name"], c["street_address"], c["postal_code"])

    def live(r):
        return r["registered_on"] <= D and (r["expires_on"] is None or D <= r["expires_on"])

    on_mail = key is not None and any(r["register"] == "mail" and r["match_key"] == key and live(r) for r in regs)
    on_phone = c["phone_e164"] is not None and any(
        r["register"] == "phone" and r["phone_e164"] == c["phone_e164"] and live(r) for r in regs
    )
    return on_mail, on_phone


def _contact_ok(c, contact: str) -> bool:
    return {
        "valid_email": c["email"] is not None,
        "valid_mobile": c["phone_e164"] is not None and c["phone_is_mobile"] is True,
        "valid_phone": c["phone_e164"] is not None,
        "valid_postal_address": bool(
            c["first_name"]
            and c["last_name"]
            and c["street_address"]
            and c["city"]
            and c["postal_code"]
            and len(c["postal_code"]) == 5
        ),
    }[contact]


def _channel_reasons(c, cp, ev, common: set[str], on_mail: bool, on_phone: bool) -> set[str]:
    """Every reason that keeps the customer out of one channel, given its deciding consent event."""
    reasons = set(common)
    if ev is not None and ev["state"] != "granted":
        reasons.add("consent_withdrawn")
    if cp.legal_basis == "consent" and ev is None:
        reasons.add("consent_missing")
    if not _contact_ok(c, cp.contact) and not (cp.uses_address and c["safety_ban"]):
        reasons.add("invalid_contact")
    flags = {
        "asml_mail": on_mail,
        "asml_phone": on_phone,
        "vtj_marketing_ban": c["marketing_ban"] is True,
        "safety_ban": c["safety_ban"] is True,
    }
    return reasons | {code for code in cp.exclusions if flags[code]}


def brute_force(custs, consents, regs, history, segs, policy: MarketingPolicy):
    audiences: dict[str, set[str]] = {ch: set() for ch in CHANNELS}
    exclusions: set[tuple[str, str, str]] = set()
    evidence: dict[tuple[str, str], str | None] = {}
    segment: dict[str, str | None] = {}

    seg_of = {}
    for s in segs:
        seg_of[s["customer_id"]] = min(seg_of.get(s["customer_id"], s["segment_id"]), s["segment_id"])

    ge = policy.global_exclusions
    first_day = D - dt.timedelta(days=ge.frequency_cap.window_days - 1)
    for c in custs:
        cid = c["customer_id"]
        mine = [e for e in consents if e["customer_id"] == cid]
        prof = _latest([e for e in mine if e["purpose"] == "profiling"])
        objects = prof is not None and prof["state"] != "granted"
        segment[cid] = None if objects else seg_of.get(cid)
        common = _common_reasons(c, _marketing_contacts(cid, history, first_day), ge)
        on_mail, on_phone = _on_registers(c, regs)
        for ch in CHANNELS:
            cp = policy.channel(ch)
            ev = _latest(
                [e for e in mine if e["purpose"] == cp.consent.purpose and e["channel"] in (None, cp.consent.channel)]
            )
            reasons = _channel_reasons(c, cp, ev, common, on_mail, on_phone)
            if reasons:
                exclusions |= {(cid, ch, r) for r in reasons}
            else:
                audiences[ch].add(cid)
                granted = ev is not None and ev["state"] == "granted"
                evidence[(cid, ch)] = ev["event_id"] if cp.legal_basis == "consent" and granted else None
    return audiences, exclusions, evidence, segment


def brute_force_renewals(custs, deals, policy: MarketingPolicy) -> dict[str, str]:
    rp = policy.renewal
    by_id = {c["customer_id"]: c for c in custs}
    out = {}
    for k in deals:
        c = by_id.get(k["customer_id"])
        if c is None or c["customer_type"] not in rp.customer_types or k["contract_type"] != rp.contract_type:
            continue
        if not (D < k["end_date"] <= D + dt.timedelta(days=rp.window_days)):
            continue
        if c["deceased_on"] is not None and c["deceased_on"] <= D:
            continue
        if c["email"] is not None:
            out[k["contract_id"]] = "email"
        elif (
            not c["safety_ban"]
            and c["first_name"]
            and c["street_address"]
            and c["postal_code"]
            and len(c["postal_code"]) == 5
        ):
            out[k["contract_id"]] = "letter"
        else:
            out[k["contract_id"]] = "none"
    return out


# --- the property -----------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(worlds())
def test_no_audience_row_breaks_the_policy(world):
    custs, consents, regs, history, segs, deals = world
    inputs = make_inputs(custs, consents, registers=regs, contacts=history, segments=segs, contracts=deals)
    result = run(inputs, POLICY)

    # 1. the blocking pre-publication check passes
    violations = policy_violations(result, inputs, POLICY, D)
    assert violations.is_empty(), violations.to_dicts()

    # 2. an independent brute-force reading agrees exactly
    audiences, exclusions, evidence, segment = brute_force(custs, consents, regs, history, segs, POLICY)
    for ch in CHANNELS:
        got = result.audience(ch)
        assert set(got.get_column("customer_id")) == audiences[ch], ch
        for row in got.iter_rows(named=True):
            assert row["consent_event_id"] == evidence[(row["customer_id"], ch)]
            assert row["segment_id"] == segment[row["customer_id"]]
            assert row["legal_basis"] == POLICY.channel(ch).legal_basis
    got_exc = set(result.audience_exclusions.select("customer_id", "channel", "reason").iter_rows())
    assert got_exc == exclusions
    assert result.audience_exclusions.height == len(got_exc)  # one row per (customer, channel, reason)

    renewals = dict(result.renewal_offers.select("contract_id", "channel").iter_rows())
    assert renewals == brute_force_renewals(custs, deals, POLICY)

    # 3. every (customer, channel) is in or out with a reason, never both
    excluded_pairs = {(c, ch) for c, ch, _ in got_exc}
    for c in custs:
        for ch in CHANNELS:
            inside = c["customer_id"] in audiences[ch]
            assert inside != ((c["customer_id"], ch) in excluded_pairs)
