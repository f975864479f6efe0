"""External registers: ASML opt-out extracts and VTJ (population register) updates.

Both refer to the same people as the CRM, which is the point: an ASML mail entry only matters if the
pipeline can match it to a customer by name and address despite the register typing it differently
(capitals, no accents, other spacing, decomposed Unicode), and a VTJ address change only matters
because the customer really moved. The registers also hold people who are not our customers.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .addresses import Address, AddressMaker
from .identities import ascii_fold, make_phone
from .randomness import faker_for, rng_for
from .timeutil import snapshot_dates
from .world import Customer, Window, World
from .writer import BadRow, LandingWriter, csv_line, fmt_date

DAY = dt.timedelta(days=1)
ASML_MAIL_SINCE = dt.date(2008, 1, 1)  # first registration day of a mail entry
ASML_PHONE_SINCE = dt.date(2015, 1, 1)  # ... of a phone entry


# ---------------------------------------------------------------------------------------- ASML
@dataclass
class AsmlEntry:
    register: str
    first_name: str
    last_name: str
    street: str
    postal_code: str
    phone: str
    registered_on: dt.date
    expires_on: dt.date | None
    customer: int  # -1 for a non-customer
    variant: str = "exact"

    def row(self) -> list[str]:
        return [
            self.register,
            self.first_name,
            self.last_name,
            self.street,
            self.postal_code,
            self.phone,
            fmt_date(self.registered_on),
            fmt_date(self.expires_on),
        ]


def _vary(rng: np.random.Generator, first: str, last: str, street: str) -> tuple[str, str, str, str]:
    """The register's own spelling of a name and address: same person, different bytes."""
    tags = []
    u = rng.random()
    if u < 0.25:
        first, last, street = first.upper(), last.upper(), street.upper()
        tags.append("upper")
    elif u < 0.35:
        first, last, street = first.lower(), last.lower(), street.lower()
        tags.append("lower")
    if rng.random() < 0.15:
        first, last, street = ascii_fold(first), ascii_fold(last), ascii_fold(street)
        tags.append("no_accents")
    v = rng.random()
    if v < 0.08:
        parts = street.split(" ")
        if len(parts) >= 3 and parts[-2].isalpha() and len(parts[-2]) == 1:
            street = " ".join(parts[:-3] + [parts[-3] + parts[-2], parts[-1]])  # "3 A 7" -> "3A 7"
            tags.append("joined_staircase")
    elif v < 0.14:
        street = street.replace(" ", "  ", 1)
        tags.append("double_space")
    elif v < 0.18:
        last = last + " "
        tags.append("trailing_space")
    if rng.random() < 0.2:
        first, last, street = (unicodedata.normalize("NFD", x) for x in (first, last, street))
        tags.append("nfd")
    return first, last, street, "+".join(tags) or "exact"


def _asml_expiry(rng: np.random.Generator, window_end: dt.date, reg: dt.date, register: str) -> dt.date | None:
    """When an entry lapses: mail opt-outs mostly never do, phone ones mostly after three years; some
    have already expired before the window ends, so that matching must look at the dates."""
    u = rng.random()
    if register == "mail":
        if u < 0.7:
            return None
        if u < 0.85:
            return reg + dt.timedelta(days=int(rng.integers(365 * 3, 365 * 6)))
        return min(
            window_end - dt.timedelta(days=int(rng.integers(1, 400))),
            reg + dt.timedelta(days=int(rng.integers(365, 365 * 3))),
        )
    if u < 0.3:
        return None
    if u < 0.8:
        return reg + dt.timedelta(days=365 * 3)
    return window_end - dt.timedelta(days=int(rng.integers(1, 700)))  # already expired


def _registered_on(rng: np.random.Generator, since: dt.date, window_end: dt.date) -> dt.date:
    """A registration day between the register's start (`since`) and the end of the window."""
    return since + dt.timedelta(days=int(rng.integers(0, (window_end - since).days)))


def _customer_asml_entries(rng: np.random.Generator, persons: list[Customer], window_end: dt.date) -> list[AsmlEntry]:
    """Our own customers in the registers: a mail entry spelt the register's way (see _vary), a phone
    entry for some mobile numbers. One person at a time, mail before phone, so the draws keep their
    order."""
    out: list[AsmlEntry] = []
    for c in persons:
        if rng.random() < 0.035:
            reg = _registered_on(rng, ASML_MAIL_SINCE, window_end)
            reg = max(reg, c.customer_since - dt.timedelta(days=3000))
            a = c.address_on(reg)
            first, last, street, variant = _vary(rng, c.first_name, c.last_name, a.street)
            exp = _asml_expiry(rng, window_end, reg, "mail")
            if exp is not None and exp < reg:
                exp = None
            out.append(AsmlEntry("mail", first, last, street, a.postal_code, "", reg, exp, c.idx, variant))
        if c.phone_kind == "mobile" and rng.random() < 0.04:
            reg = _registered_on(rng, ASML_PHONE_SINCE, window_end)
            exp = _asml_expiry(rng, window_end, reg, "phone")
            if exp is not None and exp < reg:
                exp = reg + dt.timedelta(days=365 * 3)
            out.append(AsmlEntry("phone", "", "", "", "", c.phone_e164, reg, exp, c.idx))
    return out


def _other_asml_entries(
    rng: np.random.Generator, seed: int, window_end: dt.date, n_mail: int, n_phone: int
) -> list[AsmlEntry]:
    """People who are not our customers: most of a national register is, so most entries must match
    no one. Drawn after the customers' entries, from the same stream."""
    out: list[AsmlEntry] = []
    fake = faker_for("fi_FI", seed, "asml")
    addr = AddressMaker(rng_for(seed, "asml-addr"), fake)
    for _ in range(2 * n_mail + 3):
        female = rng.random() < 0.5
        first = fake.first_name_female() if female else fake.first_name_male()
        a = addr.make("apartment" if rng.random() < 0.6 else "detached_house")
        reg = _registered_on(rng, ASML_MAIL_SINCE, window_end)
        exp = _asml_expiry(rng, window_end, reg, "mail")
        out.append(
            AsmlEntry(
                "mail",
                first,
                fake.last_name(),
                a.street,
                a.postal_code,
                "",
                reg,
                exp if exp is None or exp >= reg else None,
                -1,
            )
        )
    for _ in range(2 * n_phone + 3):
        _, e164 = make_phone(rng, "", "mobile")
        reg = _registered_on(rng, ASML_PHONE_SINCE, window_end)
        exp = _asml_expiry(rng, window_end, reg, "phone")
        out.append(AsmlEntry("phone", "", "", "", "", e164, reg, exp if exp is None or exp >= reg else None, -1))
    return out


def asml_entries(world: World, seed: int) -> list[AsmlEntry]:
    rng = rng_for(seed, "asml")
    window_end = world.window.end
    persons = [c for c in world.customers if c.is_person]
    out = _customer_asml_entries(rng, persons, window_end)
    n_mail = sum(1 for e in out if e.register == "mail")
    n_phone = len(out) - n_mail
    out += _other_asml_entries(rng, seed, window_end, n_mail, n_phone)
    out.sort(
        key=lambda e: (
            e.register,
            ascii_fold(e.last_name).lower().strip(),
            ascii_fold(e.first_name).lower(),
            e.postal_code,
            e.phone,
            e.registered_on,
        )
    )
    return out


def write_asml(world: World, writer: LandingWriter, seed: int, restrictive_bad_rows: bool) -> list[AsmlEntry]:
    win = world.window
    entries = asml_entries(world, seed)
    snaps = snapshot_dates(win.first_delivery, win.last_delivery)
    rng = rng_for(seed, "asml-bad")
    bad_from = snaps[-min(2, len(snaps))] if restrictive_bad_rows else None
    target = None
    if bad_from is not None:
        people = [c for c in world.customers if c.is_person and c.active_on(win.end)]
        target = people[int(rng.integers(0, len(people)))]
    for snap in snaps:
        rows = [e.row() for e in entries if e.registered_on <= snap - DAY]
        bad = []
        if bad_from is not None and snap >= bad_from:
            a = target.address_on(win.end)
            raw = csv_line(
                [
                    "mail",
                    target.first_name,
                    target.last_name,
                    a.street,
                    a.postal_code[:4],
                    "",
                    f"{win.end.year}-13-0{1 + target.idx % 9}",
                ]
            )  # 7 fields, bad date, 4-digit code
            bad.append(
                BadRow(
                    int(rng.integers(0, len(rows) + 1)),
                    raw,
                    "unreadable_asml_row",
                    restricts_contact=True,
                    detail=f"{target.customer_id} registered for no addressed mail",
                )
            )
        writer.write_table("asml", snap, rows, bad)
    return entries


# ----------------------------------------------------------------------------------------- VTJ
@dataclass
class PopulationRow:
    person: int
    updated_on: dt.date
    delivery: dt.date
    deceased_on: dt.date | None
    marketing_ban: int
    safety_ban: int
    street: str = ""
    postal_code: str = ""
    city: str = ""
    tag: str = ""

    def row(self, world: World) -> list[str]:
        return [
            world.customers[self.person].personal_id,
            fmt_date(self.deceased_on),
            str(self.marketing_ban),
            str(self.safety_ban),
            self.street,
            self.postal_code,
            self.city,
            fmt_date(self.updated_on),
        ]


def _death_probability(age: float, years: float) -> float:
    base = 0.002 if age < 60 else 0.01 if age < 75 else 0.04 if age < 85 else 0.12
    return min(1.0, base * years)


def _day_in(rng: np.random.Generator, lo: dt.date, hi: dt.date) -> dt.date:
    """A uniform day in lo..hi (lo itself when hi is before lo)."""
    return lo + dt.timedelta(days=int(rng.integers(0, max(1, (hi - lo).days + 1))))


class _PersonUpdates:
    """One person's VTJ updates, drawn from the shared "vtj" stream in a fixed order.

    mb and sb are the person's marketing and safety bans as they stand: VTJ repeats both flags on every
    update it delivers, so each emitted row takes them as they are when it is emitted. Holding them
    here (rather than in a closure over the loop) binds every row to its own person.
    """

    def __init__(self, c: Customer, rng: np.random.Generator, window: Window):
        self.c = c
        self.rng = rng
        self.window = window
        self.mb = 0
        self.sb = 0
        self.events: list[PopulationRow] = []

    def day_in(self, lo: dt.date, hi: dt.date) -> dt.date:
        return _day_in(self.rng, lo, hi)

    def deliver(self, updated: dt.date) -> dt.date:
        """VTJ delivers an update a day or two after it was made, never before the first delivery."""
        return max(updated + dt.timedelta(days=int(self.rng.integers(1, 3))), self.window.first_delivery)

    def emit(
        self, upd: dt.date, tag: str, deceased: dt.date | None = None, address: Address | None = None
    ) -> PopulationRow:
        if self.sb:
            address = None  # under a safety ban no address is disclosed
        a = address
        self.events.append(
            PopulationRow(
                self.c.idx,
                upd,
                self.deliver(upd),
                deceased,
                self.mb,
                self.sb,
                a.street if a else "",
                a.postal_code if a else "",
                a.city if a else "",
                tag,
            )
        )
        return self.events[-1]

    def initial_load(self) -> None:
        """The state before the window: bans that already exist arrive with the initial load."""
        if self.rng.random() < 0.03:
            self.mb = 1
        if self.rng.random() < 0.0025:
            self.sb = 1
        if self.mb or self.sb:
            self.emit(self.day_in(dt.date(2005, 1, 1), self.window.first_day - DAY), "initial")

    def moves(self, start: dt.date, last: dt.date, years: float, addr: AddressMaker) -> None:
        """Moves the CRM knows about, registered in VTJ a few days later; otherwise, rarely, a move only
        VTJ knows about (the customer did not tell us)."""
        c = self.c
        if c.moved_on is not None and start <= c.moved_on <= last:
            upd = min(last, c.moved_on + dt.timedelta(days=int(self.rng.integers(0, 10))))
            r = self.emit(upd, "address_change", address=c.address_on(c.moved_on))
            if self.rng.random() < 0.15 and not self.sb:
                self._typo_then_correction(r)
        elif self.rng.random() < 0.006 * max(1.0, years):  # moved without telling us
            home = c.address_on(last)
            site = "apartment" if len(home.street.split(" ")) >= 4 else "detached_house"
            self.emit(self.day_in(start, last), "address_change_vtj_only", address=addr.make(site))

    def _typo_then_correction(self, r: PopulationRow) -> None:
        """`r` is first delivered with a typo (two letters swapped), then corrected with the same
        updated_on in a later delivery: the later delivery must win."""
        fixed = PopulationRow(
            self.c.idx,
            r.updated_on,
            r.delivery + dt.timedelta(days=int(self.rng.integers(1, 4))),
            None,
            self.mb,
            self.sb,
            r.street,
            r.postal_code,
            r.city,
            "same_day_correction",
        )
        i = int(self.rng.integers(1, max(2, r.street.find(" ") - 1)))
        r.street = r.street[:i] + r.street[i + 1] + r.street[i] + r.street[i + 2 :]
        self.events.append(fixed)

    def marketing_ban(self, start: dt.date, last: dt.date, years: float) -> None:
        """A new marketing ban (sometimes lifted again within the window), or an old one lifted."""
        if self.rng.random() < 0.008 * years and not self.mb:
            upd = self.day_in(start, last)
            self.mb = 1
            self.emit(upd, "marketing_ban")
            if self.rng.random() < 0.3 and upd + dt.timedelta(days=20) < last:
                self.mb = 0
                self.emit(self.day_in(upd + dt.timedelta(days=10), last), "marketing_ban_lifted")
        elif self.mb and self.rng.random() < 0.08:
            self.mb = 0
            self.emit(self.day_in(start, last), "marketing_ban_lifted")

    def safety_ban(self, start: dt.date, last: dt.date) -> None:
        """A safety ban imposed in the window: from then on no address is disclosed."""
        if not self.sb:
            self.sb = 1
            self.emit(self.day_in(start, last), "safety_ban")

    def death(self, start: dt.date, last: dt.date, years: float) -> None:
        """Deaths, so that the pipeline stops contacting the deceased; people born in the 1800s are
        certainly dead, maybe already before the window. An estate may then ban marketing."""
        c, win = self.c, self.window
        dead = None
        if c.birth_date.year < 1900:
            dead = self.day_in(win.first_day - dt.timedelta(days=200), win.end - dt.timedelta(days=5))
        elif self.rng.random() < _death_probability((win.end - c.birth_date).days / 365.25, years):
            dead = self.day_in(start, last)
        if dead is not None:
            upd = dead + dt.timedelta(days=int(self.rng.integers(1, 8)))
            self.emit(upd, "death", deceased=dead)
            if self.rng.random() < 0.2 and upd + dt.timedelta(days=30) < win.end:
                self.mb = 1  # the estate bans marketing; deceased_on empty means "no change", not "alive"
                self.emit(self.day_in(upd + dt.timedelta(days=10), win.end), "after_death")


def _person_updates(
    c: Customer, rng: np.random.Generator, window: Window, addr: AddressMaker, safety_new: bool
) -> list[PopulationRow]:
    """Everything VTJ delivers about one person, in the order of the draws that make it; a person who
    is no customer during the window only has the initial load."""
    years = window.days / 365.0
    p = _PersonUpdates(c, rng, window)
    last = min(window.end, c.ended_on or window.end)
    start = max(window.first_day, c.customer_since)
    p.initial_load()
    if start > last:
        return p.events
    p.moves(start, last, years, addr)
    p.marketing_ban(start, last, years)
    if safety_new:
        p.safety_ban(start, last)
    p.death(start, last, years)
    p.events.sort(key=lambda r: (r.updated_on, r.delivery))
    return p.events


def population_rows(world: World, seed: int) -> list[PopulationRow]:
    rng = rng_for(seed, "vtj")
    win = world.window
    years = win.days / 365.0
    addr = AddressMaker(rng_for(seed, "vtj-addr"), faker_for("fi_FI", seed, "vtj"))
    out: list[PopulationRow] = []
    persons = [c for c in world.customers if c.is_person]
    n = len(persons)
    safety_new = set()
    if n >= 200:
        safety_new = {persons[int(i)].idx for i in rng.choice(n, size=max(1, round(0.0015 * years * n)), replace=False)}
    for c in persons:
        out += _person_updates(c, rng, win, addr, c.idx in safety_new)
    return out


def write_population(world: World, writer: LandingWriter, seed: int, restrictive_bad_rows: bool) -> list[PopulationRow]:
    win = world.window
    rows_all = [r for r in population_rows(world, seed) if r.delivery <= win.last_delivery]
    by_day: dict[dt.date, list[PopulationRow]] = defaultdict(list)
    for r in rows_all:
        by_day[r.delivery].append(r)
    rng = rng_for(seed, "vtj-bad")
    bad_day = None
    if restrictive_bad_rows and not by_day:
        by_day[win.last_delivery] = []  # no updates at all: the unreadable row comes alone
    if restrictive_bad_rows:
        days = sorted(by_day)
        bad_day = days[max(0, len(days) - 1 - int(rng.integers(0, min(5, len(days)))))]
    for day in sorted(by_day):
        rows = sorted(by_day[day], key=lambda r: (r.updated_on, world.customers[r.person].personal_id))
        lines = [r.row(world) for r in rows]
        bad = []
        if day == bad_day:
            people = [c for c in world.customers if c.is_person and c.active_on(win.end)]
            c = people[int(rng.integers(0, len(people)))]
            raw = csv_line([c.personal_id, "", "K", "0", "", "", "", f"{day.day}.{day.month}.{day.year}"])
            bad.append(
                BadRow(
                    int(rng.integers(0, len(lines) + 1)),
                    raw,
                    "unreadable_vtj_row",
                    restricts_contact=True,
                    detail=f"{c.customer_id} marketing ban (flag 'K', date d.m.yyyy)",
                )
            )
        writer.write_table("population", day, lines, bad)
    return rows_all
