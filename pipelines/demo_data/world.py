"""The simulated retailer: customers, metering points, contracts and who occupies which point when.

The world is built once, as a timeline, and every source file is a view of it on its delivery date:
a CRM snapshot shows the customers and contracts known the evening before, metering shows what the
occupant of each point consumed, VTJ and ASML refer to the same people. Building the timeline first
is what makes the sources agree with each other (a mover's new address shows in the CRM and in VTJ,
a new tenant's contract starts the day after the previous one ended, a terminated customer's
readings stop).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .addresses import Address, AddressMaker
from .identities import (
    ALL_CENTURY_SIGNS,
    CENTURY_SIGNS,
    GSRN_PREFIXES,
    individual_number,
    is_valid_hetu,
    make_company_email,
    make_gsrn,
    make_hetu,
    make_person_email,
    make_phone,
    make_ytunnus,
    pick_century_sign,
)
from .randomness import faker_for, rng_for, weighted_index
from .timeutil import add_months

DAY = dt.timedelta(days=1)

ARCHETYPE_WEIGHTS = {
    "district_heated_apartment": 0.34,
    "home_office": 0.12,
    "heat_pump_house": 0.20,
    "electric_heated_house": 0.14,
    "ev_night_charger": 0.10,
    "summer_cottage": 0.10,
}
# (site_type choices, heating choices) per archetype; heating "" = unknown in the CRM
SITE_HEATING = {
    "district_heated_apartment": ((("apartment", 1.0),), (("district", 0.85), ("", 0.15))),
    "home_office": ((("apartment", 0.55), ("row_house", 0.45)), (("district", 0.7), ("other", 0.1), ("", 0.2))),
    "heat_pump_house": (
        (("detached_house", 0.85), ("row_house", 0.15)),
        (("heat_pump", 0.85), ("other", 0.05), ("", 0.10)),
    ),
    "electric_heated_house": ((("detached_house", 0.9), ("row_house", 0.1)), (("electric", 0.88), ("", 0.12))),
    "ev_night_charger": (
        (("detached_house", 0.7), ("row_house", 0.3)),
        (("district", 0.35), ("heat_pump", 0.3), ("other", 0.15), ("", 0.2)),
    ),
    "summer_cottage": ((("summer_cottage", 1.0),), (("electric", 0.5), ("other", 0.15), ("", 0.35))),
    "business": (
        (("detached_house", 0.5), ("row_house", 0.25), ("apartment", 0.25)),
        (("district", 0.5), ("other", 0.3), ("", 0.2)),
    ),
}
OPEN_PRODUCTS = (("SPOT", 0.5), ("GREEN_SPOT", 0.18), ("BASIC", 0.17), ("TIME_OF_USE", 0.15))
FI_SWEDISH_SURNAMES = (
    "Lindqvist",
    "Lindholm",
    "Nyström",
    "Holmberg",
    "Sjöberg",
    "Forsman",
    "Westerlund",
    "Grönroos",
    "Nyman",
    "Björklund",
    "Sundström",
    "Eriksson",
    "Lindroos",
    "Blomqvist",
    "Åberg",
    "Söderholm",
    "Wikström",
    "Österberg",
    "Strandberg",
    "Backman",
    "Kronqvist",
    "Granholm",
    "Ekström",
    "Holmström",
    "Sandberg",
    "Lindström",
    "Engström",
    "Fagerström",
    "Håkans",
    "Vikman",
)


@dataclass(frozen=True)
class Window:
    """The business days with data: first_day..end. Deliveries run first_day+1..end+1."""

    end: dt.date
    days: int

    @property
    def first_day(self) -> dt.date:
        return self.end - dt.timedelta(days=self.days - 1)

    @property
    def first_delivery(self) -> dt.date:
        return self.first_day + DAY

    @property
    def last_delivery(self) -> dt.date:
        return self.end + DAY


@dataclass
class Customer:
    idx: int
    customer_type: str
    role: str  # existing, joiner, tenant, former, company
    archetype: str
    customer_since: dt.date
    language: str = "fi"
    customer_id: str = ""
    personal_id: str = ""
    business_id: str = ""
    first_name: str = ""
    last_name: str = ""
    company_name: str = ""
    email: str = ""
    email_kind: str = "missing"
    phone: str = ""
    phone_e164: str | None = None
    phone_kind: str = "missing"
    birth_date: dt.date | None = None
    female: bool = False
    ended_on: dt.date | None = None
    addresses: list[tuple[dt.date | None, Address]] = field(default_factory=list)
    moved_on: dt.date | None = None
    main_point: int = -1
    cottage_point: int = -1

    def address_on(self, day: dt.date) -> Address:
        current = self.addresses[0][1]
        for since, addr in self.addresses:
            if since is None or since <= day:
                current = addr
        return current

    def active_on(self, day: dt.date) -> bool:
        return self.customer_since <= day and (self.ended_on is None or day <= self.ended_on)

    @property
    def is_person(self) -> bool:
        return self.customer_type == "person"


@dataclass
class Point:
    idx: int
    gsrn: str
    site_type: str
    heating: str
    res15_from: int | None  # date ordinal from which the point reads PT15M; None = PT1H throughout


@dataclass
class Contract:
    idx: int
    customer: int
    point: int
    product_code: str
    contract_type: str
    start: dt.date
    term_end: dt.date | None  # fixed_term end as signed
    site_type: str
    heating: str
    profile: str
    final_end: dt.date | None = None  # termination (move, end of relationship)
    end_visible_from: dt.date | None = None
    contract_id: str = ""

    @property
    def supply_end(self) -> dt.date | None:
        ends = [e for e in (self.term_end, self.final_end) if e is not None]
        return min(ends) if ends else None

    def end_date_on(self, known_on: dt.date) -> dt.date | None:
        """end_date as the CRM shows it to a snapshot taken the evening of known_on."""
        if self.final_end is not None and self.end_visible_from is not None and known_on >= self.end_visible_from:
            return self.final_end
        return self.term_end


@dataclass
class Segment:
    """One continuous occupancy of a metering point (one household, or nobody) within the window."""

    point: int
    customer: int  # -1: vacant, readings outside every contract
    profile: str
    start: dt.date
    end: dt.date  # inclusive


@dataclass
class World:
    window: Window
    customers: list[Customer]
    points: list[Point]
    contracts: list[Contract]
    segments: list[Segment]

    def by_id(self) -> dict[str, Customer]:
        return {c.customer_id: c for c in self.customers}


def _weighted(rng: np.random.Generator, choices) -> str:
    return choices[weighted_index(rng, [c[1] for c in choices])][0]


class _Counts(NamedTuple):
    """How many customers of each kind the world gets (see WorldBuilder._counts)."""

    existing: int
    joiners: int
    companies: int
    former: int
    movers: int
    tenants: int
    enders: int


class WorldBuilder:
    def __init__(self, n_customers: int, window: Window, seed: int):
        self.n = n_customers
        self.w = window
        self.seed = seed
        self.rng = rng_for(seed, "world")
        self.fake_fi = faker_for("fi_FI", seed)
        self.fake_sv = faker_for("sv_SE", seed)
        self.fake_en = faker_for("en_GB", seed)
        self.addr = AddressMaker(rng_for(seed, "addresses"), self.fake_fi)
        self.customers: list[Customer] = []
        self.points: list[Point] = []
        self.contracts: list[Contract] = []
        self._gsrns: set[str] = set()
        self._hetus: set[str] = set()

    # ------------------------------------------------------------------ people
    def _age_years(self) -> float:
        r = self.rng.random()
        lo, hi = (
            (19, 30)
            if r < 0.10
            else (30, 45)
            if r < 0.40
            else (45, 65)
            if r < 0.70
            else (65, 85)
            if r < 0.95
            else (85, 97)
        )
        return float(self.rng.uniform(lo, hi))

    def _birth_from_age(self, age: float) -> dt.date:
        return self.w.end - dt.timedelta(days=int(age * 365.25))

    def _name(self, lang: str, female: bool) -> tuple[str, str]:
        if lang == "sv":
            first = self.fake_sv.first_name_female() if female else self.fake_sv.first_name_male()
            last = (
                FI_SWEDISH_SURNAMES[int(self.rng.integers(0, len(FI_SWEDISH_SURNAMES)))]
                if self.rng.random() < 0.7
                else self.fake_sv.last_name()
            )
        elif lang == "en":
            fk = self.fake_en if self.rng.random() < 0.7 else self.fake_fi
            first = fk.first_name_female() if female else fk.first_name_male()
            last = fk.last_name()
        else:
            first = self.fake_fi.first_name_female() if female else self.fake_fi.first_name_male()
            last = self.fake_fi.last_name()
        return first, last

    def _site_heating(self, archetype: str) -> tuple[str, str]:
        sites, heats = SITE_HEATING[archetype]
        return _weighted(self.rng, sites), _weighted(self.rng, heats)

    def _person(self, role: str, since: dt.date, archetype: str | None = None, age: float | None = None) -> Customer:
        rng = self.rng
        r = rng.random()
        lang = "fi" if r < 0.92 else "sv" if r < 0.98 else "en"
        female = bool(rng.random() < 0.5)
        archetype = archetype or _weighted(rng, tuple(ARCHETYPE_WEIGHTS.items()))
        age = self._age_years() if age is None else age
        birth = self._birth_from_age(age)
        first, last = self._name(lang, female)
        c = Customer(
            len(self.customers),
            "person",
            role,
            archetype,
            since,
            lang,
            first_name=first,
            last_name=last,
            birth_date=birth,
            female=female,
        )
        ek = rng.random()
        p_missing = 0.08 + (0.25 if age > 72 else 0.0)
        c.email_kind = "missing" if ek < p_missing else "invalid" if ek < p_missing + 0.015 else "valid"
        c.email = make_person_email(rng, first, last, birth.year, c.email_kind)
        pk = rng.random()
        p_land = 0.03 + (0.12 if age > 70 else 0.0)
        c.phone_kind = (
            "missing" if pk < 0.08 else "invalid" if pk < 0.10 else "landline" if pk < 0.10 + p_land else "mobile"
        )
        self.customers.append(c)
        return c

    def _set_address(self, c: Customer, site: str, since: dt.date | None) -> None:
        """Home address fitting the building type; the first one also fixes the phone's area code."""
        c.addresses.append((since, self.addr.make(site, swedish=c.language == "sv")))
        if since is None:
            c.phone, c.phone_e164 = make_phone(self.rng, c.addresses[0][1].city_fi, c.phone_kind)

    def _company(self, since: dt.date) -> Customer:
        rng = self.rng
        fk = self.fake_fi
        r = rng.random()
        last = fk.last_name()
        stem = self.addr.fi_stems[int(rng.integers(0, len(self.addr.fi_stems)))]
        if r < 0.25:
            name = f"{last} Oy"
        elif r < 0.38:
            name = f"{last} & {fk.last_name()} Ky"
        elif r < 0.55:
            name = f"Asunto Oy {stem}{('rinne', 'hovi', 'linna', 'kulma', 'puisto')[int(rng.integers(0, 5))]}"
        elif r < 0.65:
            name = f"Kiinteistö Oy {stem}talo"
        elif r < 0.75:
            trade = ("Rakennus", "Tilitoimisto", "Kuljetus", "Sähkö", "Parturi-Kampaamo")[int(rng.integers(0, 5))]
            name = f"{trade} {last} Oy"
        elif r < 0.85:
            name = f"{last} Tmi"
        elif r < 0.92:
            name = f"{stem} kyläyhdistys ry"
        else:
            name = f"{last} Ab" if rng.random() < 0.5 else f"Oy {last} Ab"
        lang = "sv" if name.endswith("Ab") else "fi"
        c = Customer(len(self.customers), "company", "company", "business", since, lang, company_name=name)
        c.business_id = make_ytunnus(rng)
        ek = rng.random()
        c.email_kind = "missing" if ek < 0.1 else "invalid" if ek < 0.12 else "valid"
        c.email = make_company_email(rng, name, c.email_kind)
        pk = rng.random()
        c.phone_kind = "missing" if pk < 0.05 else "landline" if pk < 0.4 else "mobile"
        self.customers.append(c)
        return c

    # ------------------------------------------------------------------ points and contracts
    def _point(self, site: str, heating: str) -> Point:
        rng = self.rng
        while True:
            g = make_gsrn(rng, GSRN_PREFIXES[int(rng.integers(0, len(GSRN_PREFIXES)))])
            if g not in self._gsrns:
                self._gsrns.add(g)
                break
        # mostly PT1H (the default demo: about 20M readings): 3 % of points read PT15M
        # throughout, 2 % switch from PT1H to PT15M inside the window (a replaced meter)
        r = rng.random()
        w = self.w
        if r < 0.03:
            res = 0
        elif r < 0.05 and w.days > 10:
            res = (w.first_day + dt.timedelta(days=int(rng.integers(3, w.days - 3)))).toordinal()
        else:
            res = None
        p = Point(len(self.points), g, site, heating, res)
        self.points.append(p)
        return p

    def _open_product(self, profile: str) -> str:
        if profile in ("electric_heated_house", "ev_night_charger") and self.rng.random() < 0.35:
            return "TIME_OF_USE"
        return _weighted(self.rng, OPEN_PRODUCTS[:3])

    def _chain(self, cust: Customer, point: Point, start: dt.date, profile: str, fixed: bool) -> list[Contract]:
        """Contracts of one customer on one point from `start` until they cover the window end:
        back-to-back fixed terms (renewals), sometimes switching to an open-ended product."""
        rng = self.rng
        w = self.w
        out = []
        t = start
        if fixed:
            if t < w.first_day - dt.timedelta(days=730):
                t = w.first_day - dt.timedelta(days=int(rng.integers(0, 700)))  # older history archived
            while t <= w.end:
                months = 12 if rng.random() < 0.45 else 24
                product = "FIXED12" if months == 12 else ("GREEN_FIXED24" if rng.random() < 0.25 else "FIXED24")
                te = add_months(t, months) - DAY
                out.append(self._contract(cust, point, product, "fixed_term", t, te, profile))
                if te >= w.end:
                    break
                t = te + DAY
                if rng.random() < 0.22:
                    out.append(self._contract(cust, point, self._open_product(profile), "open_ended", t, None, profile))
                    break
        else:
            out.append(self._contract(cust, point, self._open_product(profile), "open_ended", t, None, profile))
        return out

    def _contract(self, cust, point, product, ctype, start, term_end, profile) -> Contract:
        c = Contract(
            len(self.contracts),
            cust.idx,
            point.idx,
            product,
            ctype,
            start,
            term_end,
            point.site_type,
            point.heating,
            profile,
        )
        self.contracts.append(c)
        return c

    def _terminate(self, contracts: list[Contract], on: dt.date) -> None:
        """End supply on `on`: later contracts vanish, the one in force gets end_date = on."""
        notice = int(self.rng.integers(0, 31))
        for c in list(contracts):
            if c.start > on:
                self.contracts.remove(c)
                contracts.remove(c)
            elif c.supply_end is None or c.supply_end >= on:
                c.final_end = on
                c.end_visible_from = max(c.start, on - dt.timedelta(days=notice))

    def _home(self, cust: Customer, start: dt.date, fixed: bool, moving_in: dt.date | None = None) -> list[Contract]:
        """The customer's main metering point, its contracts, and (first time or on a move) the
        postal address of that home. A cottage-only customer lives in a flat or house elsewhere."""
        profile = cust.archetype
        site, heating = self._site_heating(profile)
        p = self._point(site, heating)
        cust.main_point = p.idx
        if profile == "summer_cottage":
            home_site = "apartment" if self.rng.random() < 0.6 else "detached_house"
        else:
            home_site = site
        if not cust.addresses or moving_in is not None:
            self._set_address(cust, home_site, moving_in)
        return self._chain(cust, p, start, profile, fixed)

    # ------------------------------------------------------------------ build
    def _counts(self) -> _Counts:
        """How many customers of each kind; the flows in the window (movers, joiners, enders) scale
        with its length, and a demo of at least 50 customers over two weeks has one of each."""
        w, n = self.w, self.n
        years = w.days / 365.0
        small_min = 1 if (n >= 50 and w.days >= 14) else 0
        n_comp = round(0.03 * n)
        n_former = round(0.02 * n)
        n_persons = n - n_comp
        n_movers = max(small_min, round(0.04 * years * n_persons))
        n_tenants = round(0.7 * n_movers)
        n_joiners = max(small_min, round(0.035 * years * n))
        n_enders = max(small_min, round(0.01 * years * n))
        n_existing = n_persons - n_former - n_tenants - n_joiners
        if n_existing < 1:
            raise ValueError("too few customers for the requested window")
        return _Counts(n_existing, n_joiners, n_comp, n_former, n_movers, n_tenants, n_enders)

    def _since_existing(self) -> dt.date:
        """Customer since, for someone already a customer before the window: exponential, 6 years on
        average, at most 30 years and never before 1996."""
        back = int(min(self.rng.exponential(6 * 365), 30 * 365)) + 1
        return max(dt.date(1996, 1, 1), self.w.first_day - dt.timedelta(days=back))

    def _in_window(self, lo: int, hi: int) -> dt.date:
        """A day of the window at least `lo` days after its first day and at least `hi` days before its
        last (just day `lo` when the window is too short for both)."""
        w = self.w
        return w.first_day + dt.timedelta(days=int(self.rng.integers(lo, max(lo + 1, w.days - hi))))

    def _fixed_plan(self) -> bool:
        """Whether a person's home contracts are fixed-term (about a third are)."""
        return bool(self.rng.random() < 0.32)

    def build(self) -> World:
        """The world in a fixed order of steps, all drawing from one stream: the order is part of the
        output, so a new step goes at the end."""
        counts = self._counts()
        chains: dict[int, list[Contract]] = {}
        existing = self._customers(counts, chains)
        self._summer_cottages(existing, chains)
        specials = self._special_ages(existing, chains)
        movers = self._moves(existing, specials, counts, chains)
        self._enders(existing, movers, specials, counts, chains)
        self._fix_century_signs()
        self._assign_ids()
        segments = self._segments()
        return World(self.w, self.customers, self.points, sorted(self.contracts, key=lambda k: k.contract_id), segments)

    def _customers(self, counts: _Counts, chains: dict[int, list[Contract]]) -> list[Customer]:
        """Existing customers, joiners, companies (some with a second point) and former customers,
        each with their home and its contracts; returns the existing ones, the pool for what follows."""
        rng = self.rng
        existing = [self._person("existing", self._since_existing()) for _ in range(counts.existing)]
        for c in existing:
            chains[c.idx] = self._home(c, c.customer_since, self._fixed_plan())
        for _ in range(counts.joiners):
            c = self._person("joiner", self._in_window(1, 1))
            chains[c.idx] = self._home(c, c.customer_since, self._fixed_plan())
        for _ in range(counts.companies):
            c = self._company(self._since_existing() if rng.random() < 0.9 else self._in_window(1, 1))
            chains[c.idx] = self._home(c, c.customer_since, bool(rng.random() < 0.4))
            if rng.random() < 0.2:
                site, heating = self._site_heating("business")
                chains[c.idx] += self._chain(c, self._point(site, heating), c.customer_since, "business", False)
        for _ in range(counts.former):
            ended = self.w.first_day - dt.timedelta(days=int(rng.integers(1, 3 * 365)))
            c = self._person("former", ended - dt.timedelta(days=int(rng.integers(200, 4000))))
            chains[c.idx] = self._home(c, c.customer_since, self._fixed_plan())
            c.ended_on = ended
            self._terminate(chains[c.idx], ended)
        return existing

    def _summer_cottages(self, existing: list[Customer], chains: dict[int, list[Contract]]) -> None:
        """Summer cottages as a second metering point, mostly of people living in houses."""
        rng = self.rng
        for c in existing:
            share = (
                0.12
                if c.archetype in ("electric_heated_house", "heat_pump_house", "ev_night_charger")
                else (0.06 if c.archetype in ("district_heated_apartment", "home_office") else 0.0)
            )
            if rng.random() < share:
                start = c.customer_since + dt.timedelta(days=int(rng.integers(0, 12 * 365)))
                if start <= self.w.end - dt.timedelta(days=30):
                    site, heating = self._site_heating("summer_cottage")
                    p = self._point(site, heating)
                    c.cottage_point = p.idx
                    chains[c.idx] += self._chain(c, p, start, "summer_cottage", False)

    def _special_ages(self, existing: list[Customer], chains: dict[int, list[Contract]]) -> list[Customer]:
        """Special ages the pipeline must handle: minors (never marketed to), the very old, and people
        born in the 1800s ('+' century sign). Returns them, minors first; they neither move nor leave."""
        rng = self.rng
        n = self.n
        n_minor = max(1 if n >= 50 else 0, round(0.004 * n))
        n_old = max(1 if n >= 50 else 0, round(0.004 * n))
        n_plus = max(1 if n >= 50 else 0, round(0.0008 * n))
        flats = [c for c in existing if c.archetype == "district_heated_apartment"]
        minors = [flats[i] for i in rng.permutation(len(flats))[:n_minor]]
        others = [c for c in existing if c.archetype != "summer_cottage" and c not in minors]
        specials = minors + [others[i] for i in rng.permutation(len(others))[: n_old + n_plus]]
        n_minor = len(minors)
        for k, c in enumerate(specials):
            if k < n_minor:
                self._make_minor(c, chains)
            elif k < n_minor + n_old:
                c.birth_date = self._birth_from_age(float(rng.uniform(98.0, 105.0)))
            else:
                c.birth_date = dt.date(
                    int(rng.integers(1896, 1900)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
                )
        return specials

    def _make_minor(self, c: Customer, chains: dict[int, list[Contract]]) -> None:
        """Turn `c` into a 16- or 17-year-old who became a customer at 16 at the earliest; the
        contracts restart from then, and the e-mail address fits the new birth year."""
        rng = self.rng
        c.birth_date = self._birth_from_age(float(rng.uniform(16.0, 17.9)))
        c.customer_since = max(
            c.birth_date + dt.timedelta(days=int(16 * 365.25)), self.w.first_day - dt.timedelta(days=300)
        )
        self._restart_chain(c, chains)
        c.email_kind = "valid"
        c.email = make_person_email(rng, c.first_name, c.last_name, c.birth_date.year, "valid")

    def _moves(
        self,
        existing: list[Customer],
        specials: list[Customer],
        counts: _Counts,
        chains: dict[int, list[Contract]],
    ) -> list[Customer]:
        """Moves: the old contract ends, a new point starts the next day, often a new tenant follows
        on the old point. When the window is too short for moves the tenants are plain joiners
        instead, so the customer count holds. Returns the movers."""
        rng = self.rng
        w = self.w
        movers = [
            c
            for c in existing
            if c not in specials and c.archetype != "summer_cottage" and c.customer_since < w.first_day and w.days >= 20
        ]
        movers = [movers[i] for i in rng.permutation(len(movers))[: counts.movers]]
        tenants_left = counts.tenants
        for c in movers:
            e = self._in_window(7, 7)
            home = [k for k in chains[c.idx] if k.point == c.main_point]
            old_point = self.points[c.main_point]
            self._terminate(home, e)
            c.moved_on = e + DAY
            chains[c.idx] += self._home(c, e + DAY, self._fixed_plan(), moving_in=e + DAY)
            if tenants_left > 0:
                tenants_left -= 1
                self._new_tenant(c, old_point, e + DAY, chains)
        for _ in range(tenants_left):
            c = self._person("joiner", self._in_window(1, 1))
            chains[c.idx] = self._home(c, c.customer_since, self._fixed_plan())
        return movers

    def _new_tenant(
        self, mover: Customer, old_point: Point, moving_in: dt.date, chains: dict[int, list[Contract]]
    ) -> None:
        """A new customer moving into the flat or house `mover` left: same point, same address, same
        kind of household."""
        t = self._person("tenant", moving_in, archetype=mover.archetype)
        t.main_point = old_point.idx
        t.addresses = [(None, mover.addresses[0][1])]
        t.phone, t.phone_e164 = make_phone(self.rng, t.addresses[0][1].city_fi, t.phone_kind)
        chains[t.idx] = self._chain(t, old_point, moving_in, mover.archetype, self._fixed_plan())

    def _enders(
        self,
        existing: list[Customer],
        movers: list[Customer],
        specials: list[Customer],
        counts: _Counts,
        chains: dict[int, list[Contract]],
    ) -> None:
        """Customers who leave during the window (neither movers nor special ages)."""
        d0 = self.w.first_day
        candidates = [c for c in existing if c not in movers and c not in specials and c.customer_since < d0]
        for i in self.rng.permutation(len(candidates))[: counts.enders]:
            c = candidates[int(i)]
            c.ended_on = self._in_window(5, 2)
            self._terminate(chains[c.idx], c.ended_on)

    def _restart_chain(self, c: Customer, chains) -> None:
        for k in chains[c.idx]:
            self.contracts.remove(k)
        c.cottage_point = -1
        chains[c.idx] = self._chain(c, self.points[c.main_point], c.customer_since, c.archetype, False)

    # ------------------------------------------------------------------ identities and ids
    def _fix_century_signs(self) -> None:
        """Give each person a henkilötunnus; make sure every century sign occurs at least once
        (when the population has people of that century to carry it)."""
        rng = rng_for(self.seed, "hetu")
        persons = [c for c in self.customers if c.is_person]
        signs = {c.idx: pick_century_sign(rng, c.birth_date.year) for c in persons}
        for century, options in CENTURY_SIGNS.items():
            pool = [c for c in persons if (c.birth_date.year // 100) * 100 == century and signs[c.idx] == options[0]]
            pool = [pool[i] for i in rng.permutation(len(pool))]
            used = set(signs[c.idx] for c in persons if (c.birth_date.year // 100) * 100 == century)
            for s in options[1:]:
                if s not in used and pool:
                    signs[pool.pop().idx] = s
        for c in persons:
            while True:
                code = make_hetu(c.birth_date, signs[c.idx], individual_number(rng, c.female))
                if code not in self._hetus:
                    break
            assert is_valid_hetu(code), code
            self._hetus.add(code)
            c.personal_id = code
        assert set(signs.values()) <= set(ALL_CENTURY_SIGNS)

    def _assign_ids(self) -> None:
        rng = rng_for(self.seed, "ids")
        gap = max(2, min(40, 8_000_000 // max(1, self.n)))
        n = 1_000_000 + int(rng.integers(0, 5000))
        for c in sorted(self.customers, key=lambda c: (c.customer_since, c.idx)):
            n += int(rng.integers(1, gap))
            c.customer_id = f"C{n:07d}"
        by_idx = {c.idx: c for c in self.customers}
        k = 7_000_000
        for con in sorted(self.contracts, key=lambda k_: (k_.start, by_idx[k_.customer].customer_id, k_.point)):
            k += int(rng.integers(1, 4))
            con.contract_id = f"K{k:07d}"

    def _segments(self) -> list[Segment]:
        """Occupancy periods per point within the window; consecutive contracts of the same customer
        on the same point (renewals) are one household, one set of consumption parameters."""
        w = self.w
        rng = rng_for(self.seed, "segments")
        by_point: dict[int, list[Contract]] = {}
        for c in self.contracts:
            by_point.setdefault(c.point, []).append(c)
        out: list[Segment] = []
        for point, cons in sorted(by_point.items()):
            cons.sort(key=lambda c: c.start)
            spans: list[list] = []
            for c in cons:
                s = max(c.start, w.first_day)
                e = min(c.supply_end or w.end, w.end)
                if s > e:
                    continue
                if spans and spans[-1][0] == c.customer and spans[-1][3] + DAY >= s:
                    spans[-1][3] = max(spans[-1][3], e)
                else:
                    spans.append([c.customer, c.profile, s, e])
            for i, (cust, profile, s, e) in enumerate(spans):
                out.append(Segment(point, cust, profile, s, e))
                followed = i + 1 < len(spans) and spans[i + 1][2] <= e + DAY
                if e < w.end and not followed and rng.random() < 0.5:
                    # the grid keeps metering an empty flat for a few days after the supply ended
                    tail_end = min(w.end, e + dt.timedelta(days=int(rng.integers(1, 5))))
                    out.append(Segment(point, -1, "vacant", e + DAY, tail_end))
        return out


def build_world(n_customers: int, window: Window, seed: int) -> World:
    return WorldBuilder(n_customers, window, seed).build()
