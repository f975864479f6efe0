"""Prospect deliveries (`prospects/prospects_YYYYMMDD.csv`): leads from competitions, events, offer
requests and bought new-mover address lists, delivered weekly as an append-only state log.

Its own random streams (`rng_for(seed, "prospects", ...)`, a Faker seeded for prospects only), so
that adding prospects changes no byte of any other source the generator writes. What it produces,
with realistic shares:
- competition and event leads with and without email/sms consent, each grant with its wording
  version and evidence reference; offer requests (mostly with email consent and a phone);
- new-mover address lists: an address and sometimes a phone, never a consent;
- prospects who already are customers (the same identity code, email, or name and address);
- prospects on the ASML registers (people the registers list who are not customers);
- withdrawals and objections arriving later as new rows for the same prospect;
- a few old leads past the 12-month retention period, a few minors with an identity code;
- quarterly marketing campaigns to prospects, in the contacts files with the prospect id as the
  recipient (`prospect_contacts`), so some leads reach the frequency cap;
- a few bad rows of each kind, none of which could restrict contact (objection legibly 0, no
  withdrawal), so the default demo still publishes; they go to the ground truth as usual.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from .addresses import AddressMaker
from .identities import make_hetu, make_person_email, make_phone, pick_century_sign
from .randomness import faker_for, rng_for
from .registers import asml_entries
from .world import World
from .writer import BadRow, LandingWriter, csv_line, fmt_date

WEEK = dt.timedelta(days=7)
#: (lead source, share, P(email consent), P(sms consent))
SOURCES = (
    ("competition", 0.32, 0.55, 0.25),
    ("event", 0.18, 0.45, 0.35),
    ("offer_request", 0.15, 0.80, 0.20),
    ("address_list", 0.35, 0.0, 0.0),
)
WORDING = {"competition": "KILPA-2026-1", "event": "MESSU-2026-2", "offer_request": "TARJOUS-3"}


@dataclass
class Lead:
    prospect_id: str
    source: str
    collected_on: dt.date
    first_name: str
    last_name: str
    personal_id: str = ""
    street: str = ""
    postal_code: str = ""
    city: str = ""
    email: str = ""
    phone: str = ""
    language: str = "fi"
    email_consent: str = ""
    sms_consent: str = ""
    kind: str = "lead"  # lead, customer, asml, minor, old
    #: later states: (updated_on, field overrides)
    updates: list[tuple[dt.date, dict]] = field(default_factory=list)

    def row(self, updated_on: dt.date, **overrides: str) -> list[str]:
        values = {
            "prospect_id": self.prospect_id,
            "source": self.source,
            "collected_on": fmt_date(self.collected_on),
            "updated_on": fmt_date(updated_on),
            "first_name": self.first_name,
            "last_name": self.last_name,
            "personal_id": self.personal_id,
            "street_address": self.street,
            "postal_code": self.postal_code,
            "city": self.city,
            "email": self.email,
            "phone": self.phone,
            "language": self.language,
            "email_consent": self.email_consent,
            "sms_consent": self.sms_consent,
            "marketing_objection": "0",
            "wording_version": "",
            "evidence_ref": "",
        }
        values |= overrides
        if "granted" in (values["email_consent"], values["sms_consent"]):
            values["wording_version"] = WORDING.get(self.source, "LISTA-1")
            values["evidence_ref"] = f"{self.source}:{self.prospect_id[-6:]}:{self.collected_on:%Y%m%d}"
        return list(values.values())


def _deliveries(world: World) -> list[dt.date]:
    win = world.window
    days, d = [], win.last_delivery
    while d >= win.first_delivery:
        days.append(d)
        d -= WEEK
    return sorted(days)


def _source(rng) -> tuple[str, float, float]:
    r, cum = rng.random(), 0.0
    for name, share, p_email, p_sms in SOURCES:
        cum += share
        if r < cum:
            return name, p_email, p_sms
    return SOURCES[-1][0], SOURCES[-1][2], SOURCES[-1][3]


def _person_code(rng, birth: dt.date, female: bool, sign: str) -> str:
    return make_hetu(birth, sign, 2 * int(rng.integers(1, 440)) + (0 if female else 1))


def _special(rng, lead: Lead, world: World, persons: list, outsiders: list, female: bool, year: int) -> None:
    """Make a share of the leads a customer already, a person on an ASML register, or a lead who
    gave an identity code (a few of them minors)."""
    roll = rng.random()
    if roll < 0.06 and persons:  # already a customer: by email, identity code or name and address
        c = persons[int(rng.integers(0, len(persons)))]
        how = int(rng.integers(0, 3))
        lead.kind = "customer"
        if how == 0 and c.email:
            lead.email = c.email
        elif how == 1:
            lead.personal_id = c.personal_id
        else:
            a = c.address_on(world.window.end)
            lead.first_name, lead.last_name = c.first_name, c.last_name
            lead.street, lead.postal_code, lead.city = a.street, a.postal_code, a.city
    elif roll < 0.10 and outsiders:  # on an ASML register, not a customer
        e = outsiders[int(rng.integers(0, len(outsiders)))]
        lead.kind = "asml"
        if e.register == "mail":
            lead.first_name, lead.last_name = e.first_name, e.last_name
            lead.street, lead.postal_code, lead.city = e.street, e.postal_code, lead.city or "Helsinki"
        else:
            lead.phone = e.phone
    elif roll < 0.12:  # a minor who gave an identity code
        lead.kind = "minor"
        birth = dt.date(world.window.end.year - 16, int(rng.integers(1, 13)), int(rng.integers(1, 29)))
        lead.personal_id = _person_code(rng, birth, female, pick_century_sign(rng, birth.year))
    elif roll < 0.15:  # an adult who gave an identity code
        birth = dt.date(year, int(rng.integers(1, 13)), int(rng.integers(1, 29)))
        lead.personal_id = _person_code(rng, birth, female, pick_century_sign(rng, year))


def _later(rng, lead: Lead, delivery: dt.date, deliveries: list[dt.date]) -> None:
    """A withdrawal or an objection arriving in a later delivery, as a new row for the prospect."""
    later = [d for d in deliveries if d > delivery]
    if not later or not (lead.email_consent or lead.sms_consent or lead.source == "address_list"):
        return
    u, when = rng.random(), later[int(rng.integers(0, len(later)))] - dt.timedelta(days=1)
    if u < 0.08 and lead.email_consent:
        lead.updates.append((when, {"email_consent": "withdrawn"}))
    elif u < 0.12:  # "no direct marketing at all"
        lead.updates.append((when, {"marketing_objection": "1"}))


def _leads(world: World, seed: int, deliveries: list[dt.date]) -> list[Lead]:
    rng = rng_for(seed, "prospects")
    fake = faker_for("fi_FI", seed, "prospects")
    addresses = AddressMaker(rng_for(seed, "prospects", "addresses"), fake)
    persons = [c for c in world.customers if c.is_person and c.active_on(world.window.end)]
    outsiders = [e for e in asml_entries(world, seed) if e.customer == -1]
    leads: list[Lead] = []
    for i in range(max(20, len(world.customers) * 3 // 10)):
        delivery = deliveries[int(rng.integers(0, len(deliveries)))]
        collected = delivery - dt.timedelta(days=int(rng.integers(1, 8)))
        source, p_email, p_sms = _source(rng)
        female = bool(rng.random() < 0.5)
        first = fake.first_name_female() if female else fake.first_name_male()
        lead = Lead(f"P{100000000 + i * 7 + int(rng.integers(0, 7)):09d}", source, collected, first, fake.last_name())
        if source != "competition" or rng.random() < 0.5:
            a = addresses.make("apartment")
            lead.street, lead.postal_code, lead.city = a.street, a.postal_code, a.city
        year = int(rng.integers(1950, 2004))
        if source != "address_list":
            lead.email = make_person_email(
                rng, first, lead.last_name, year, "invalid" if rng.random() < 0.03 else "valid"
            )
            lead.email_consent = "granted" if rng.random() < p_email else ""
        if source in ("offer_request", "event") or rng.random() < 0.3:
            lead.phone = make_phone(rng, lead.city or "Helsinki", "mobile" if rng.random() < 0.85 else "landline")[0]
            lead.sms_consent = "granted" if source != "address_list" and rng.random() < p_sms else ""
        if rng.random() < 0.3:
            lead.language = ("sv", "en", "")[int(rng.integers(0, 3))]
        _special(rng, lead, world, persons, outsiders, female, year)
        _later(rng, lead, delivery, deliveries)
        leads.append(lead)
    return leads


BAD_KINDS = (
    ("consent_on_purchased_list", lambda lead, day: lead.row(day, source="address_list", email_consent="granted")),
    (
        "bad_postal_code",
        lambda lead, day: lead.row(
            day,
            postal_code=(lead.postal_code or "00100")[:4],
            street_address=lead.street or "Katu 1",
            city=lead.city or "Helsinki",
        ),
    ),
    ("missing_last_name", lambda lead, day: lead.row(day, last_name="")),
    ("bad_prospect_id", lambda lead, day: lead.row(day, prospect_id=lead.prospect_id[:-1])),
    ("collected_after_delivery", lambda lead, day: lead.row(day + WEEK, collected_on=fmt_date(day + WEEK))),
)


def prospect_leads(world: World, seed: int) -> list[Lead]:
    """Every generated lead (the same for the same world and seed)."""
    return _leads(world, seed, _deliveries(world))


#: marketing campaigns to prospects, every 91 days back from the window's end: a lead reached by
#: four of them within 365 days is over the frequency cap
CAMPAIGN_EVERY = dt.timedelta(days=91)


def prospect_contacts(world: World, seed: int, leads: list[Lead]) -> dict[dt.date, list[list[str]]]:
    """Marketing contacts sent to prospects (their id as the recipient), by delivery day (sent + 1)."""
    win = world.window
    rng = rng_for(seed, "prospects", "contacts")
    out: dict[dt.date, list[list[str]]] = {}
    sent_on = win.end - dt.timedelta(days=3)
    while sent_on >= win.first_delivery:
        campaign = f"PROSPECT-{sent_on:%Y%m%d}"
        for lead in leads:
            if lead.kind == "customer" or lead.collected_on >= sent_on or rng.random() >= 0.55:
                continue
            channel = "email" if lead.email_consent == "granted" else "letter" if lead.street else None
            if channel is not None:
                at = dt.datetime.combine(sent_on, dt.time(9, 30), tzinfo=dt.UTC)
                out.setdefault(sent_on + dt.timedelta(days=1), []).append(
                    [lead.prospect_id, channel, campaign, "marketing", at.strftime("%Y-%m-%dT%H:%M:%SZ")]
                )
        sent_on -= CAMPAIGN_EVERY
    return {day: rows for day, rows in out.items() if day <= win.last_delivery}


def write_prospects(
    world: World, writer: LandingWriter, seed: int, bad_rate: float, leads: list[Lead] | None = None
) -> dict[str, int]:
    """Write every weekly prospects delivery; returns counts for the summary."""
    deliveries = _deliveries(world)
    leads = leads if leads is not None else _leads(world, seed, deliveries)
    by_day: dict[dt.date, list[list[str]]] = {d: [] for d in deliveries}
    for lead in leads:
        first = min(d for d in deliveries if d > lead.collected_on)
        by_day[first].append(lead.row(lead.collected_on))
        for updated_on, overrides in lead.updates:
            delivery = min(d for d in deliveries if d > updated_on)
            by_day[delivery].append(lead.row(updated_on, **overrides))
        for kind, value in (
            ("personal_id", lead.personal_id),
            ("email", lead.email),
            ("phone", lead.phone),
            ("street_address", lead.street),
        ):
            if value:
                writer.extra_pii.add((lead.prospect_id, kind, value))
    rng = rng_for(seed, "prospects", "bad")
    bad_days: dict[dt.date, list[tuple[str, str]]] = {}
    if bad_rate > 0:
        for k, (kind, make) in enumerate(BAD_KINDS):
            for j in range(2):  # a few of each kind
                day = deliveries[int(rng.integers(0, len(deliveries)))]
                base = leads[int(rng.integers(0, len(leads)))]
                # a prospect id of its own, so that no valid row shares its (prospect_id, updated_on)
                lead = replace(
                    base, prospect_id=f"P9{k:04d}{j:04d}", updates=[], collected_on=day - dt.timedelta(days=2)
                )
                bad_days.setdefault(day, []).append((kind, csv_line(make(lead, day - dt.timedelta(days=1)))))
    for day in deliveries:
        rows = sorted(by_day[day], key=lambda r: (r[3], r[0]))
        bad = [
            BadRow(int(rng.integers(0, len(rows) + 1)), raw, kind, detail="prospect row, restricts nothing")
            for kind, raw in bad_days.get(day, [])
        ]
        writer.write_table("prospects", day, rows, bad)
    kinds: dict[str, int] = {}
    for lead in leads:
        kinds[lead.kind] = kinds.get(lead.kind, 0) + 1
    return {
        "prospects": len(leads),
        "prospect_deliveries": len(deliveries),
        "prospect_updates": sum(len(lead.updates) for lead in leads),
        **{f"prospects_{k}": v for k, v in sorted(kinds.items())},
    }
