"""Contact history: what the retailer actually sent, marketing and customer communication alike.

Marketing campaigns go out every month or so on one channel each, to a slice of the customers that
have that channel. A small group of customers lands in nearly every campaign (the "always selected"
segment of an old targeting rule), so the 4-in-365-days frequency cap has someone to stop.
Customer communication (the quarterly magazine by letter, the monthly newsletter to subscribers from
the consent log, renewal offers for expiring fixed-term contracts) never counts toward the cap.
The first delivery carries the previous year's history, so the cap works from day one. A few rows
are delivered twice, in consecutive files: the same contact, not two.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np

from .consents import Event
from .randomness import rng_for
from .timeutil import fmt_ts, helsinki_date, local_dt
from .world import Customer, World
from .writer import LandingWriter

DAY = dt.timedelta(days=1)
CHANNEL_P = (("email", 0.4), ("letter", 0.3), ("sms", 0.15), ("phone", 0.15))
THEMES = {
    "email": ("CAMP{y}Q{q}", "SPOT-{season}-{y}", "EV-CHARGING-{y}-{m:02d}", "GREEN-{y}-{m:02d}"),
    "letter": ("DM-{y}-{m:02d}", "HEATPUMP-{y}-{m:02d}", "SOLAR-{y}-{m:02d}"),
    "sms": ("SMS-{y}-{m:02d}",),
    "phone": ("TELE-{y}-{m:02d}",),
}


def _weekday(d: dt.date) -> dt.date:
    while d.weekday() >= 5:
        d += DAY
    return d


def _usable(c, channel: str) -> bool:
    if channel == "email":
        return c.email_kind == "valid"
    if channel == "sms":
        return c.phone_kind == "mobile"
    if channel == "phone":
        return c.phone_kind in ("mobile", "landline")
    return True


def _always_selected(rng: np.random.Generator, persons: list[Customer]) -> set[int]:
    """The "always selected" segment of an old targeting rule (2.5 % of persons): they land in nearly
    every campaign, so the frequency cap has someone to stop."""
    if not persons:
        return set()
    return {
        persons[int(i)].idx for i in rng.choice(len(persons), size=max(1, round(0.025 * len(persons))), replace=False)
    }


def _campaign_name(rng: np.random.Generator, channel: str, day: dt.date, used_names: set[str]) -> str:
    """A campaign id in the style of its channel, made unique with a -2, -3, ... suffix (campaign ids
    identify a campaign, so two campaigns must never share one)."""
    themes = THEMES[channel]
    season = ("WINTER", "SPRING", "SUMMER", "AUTUMN")[(day.month % 12) // 3]
    name = themes[int(rng.integers(0, len(themes)))].format(
        y=day.year, q=(day.month - 1) // 3 + 1, m=day.month, season=season
    )
    base, k = name, 1
    while name in used_names:
        k += 1
        name = f"{base}-{k}"
    used_names.add(name)
    return name


def _campaign_sends(
    rng: np.random.Generator,
    persons: list[Customer],
    heavy: set[int],
    day: dt.date,
    channel: str,
    name: str,
) -> list[tuple]:
    """One campaign's sends: a random slice of the persons active on `day` who have the channel (the
    always-selected ones at 75 %). Phone calls are spread over the working day, the rest go out at
    the channel's fixed hour."""
    share = 0.03 if channel == "phone" else float(rng.uniform(0.06, 0.18))
    style = "Z" if (channel in ("email", "sms") and rng.random() < 0.5) else "local"
    rows: list[tuple] = []
    for c in persons:
        if not c.active_on(day) or not _usable(c, channel):
            continue
        p = 0.75 if c.idx in heavy else share
        if rng.random() >= p:
            continue
        if channel == "phone":
            at = local_dt(day, int(rng.integers(9, 19)), int(rng.integers(0, 60)), int(rng.integers(0, 60)))
        else:
            at = local_dt(day, {"email": 9, "sms": 10, "letter": 8}[channel])
        rows.append((at, style, c.idx, channel, name, "marketing"))
    return rows


def _marketing_campaigns(
    rng: np.random.Generator, persons: list[Customer], heavy: set[int], start: dt.date, end: dt.date
) -> list[tuple]:
    """Marketing campaigns every 24-49 days from `start` to `end`, one channel each, on weekdays."""
    rows: list[tuple] = []
    used_names: set[str] = set()
    names = [n for n, _ in CHANNEL_P]
    t = start + dt.timedelta(days=int(rng.integers(0, 20)))
    while t <= end:
        day = _weekday(t)
        if day > end:
            break
        channel = names[int(rng.choice(len(names), p=np.array([p for _, p in CHANNEL_P])))]
        name = _campaign_name(rng, channel, day, used_names)
        rows += _campaign_sends(rng, persons, heavy, day, channel, name)
        t = day + dt.timedelta(days=int(rng.integers(24, 50)))
    return rows


def _magazine(rng: np.random.Generator, world: World, start: dt.date, end: dt.date) -> list[tuple]:
    """The customer magazine, by letter, in February, May, August and November, to every active
    customer: customer communication, so it never counts toward the cap."""
    rows: list[tuple] = []
    for year in range(start.year, end.year + 1):
        for q, month in enumerate((2, 5, 8, 11), start=1):
            day = _weekday(dt.date(year, month, 1) + dt.timedelta(days=int(rng.integers(0, 4))))
            if not (start <= day <= end):
                continue
            at = local_dt(day, 8)
            for c in world.customers:
                if c.active_on(day):
                    rows.append((at, "local", c.idx, "letter", f"MAGAZINE-{q}-{year}", "customer_communication"))
    return rows


def _newsletters(world: World, consent_events: list[Event], start: dt.date, end: dt.date) -> list[tuple]:
    """The monthly newsletter to whoever is subscribed at the moment it is sent, according to the
    newsletter events of the consent log (so contacts and consents agree). No randomness."""
    subs = defaultdict(list)
    for e in consent_events:
        if e.purpose == "newsletter":
            subs[e.customer].append((e.at, e.action, e.channel or "email"))
    rows: list[tuple] = []
    d = dt.date(start.year, start.month, 1)
    while d <= end:
        day = _weekday(d + dt.timedelta(days=14))
        if start <= day <= end:
            at = local_dt(day, 10)
            for ci in sorted(subs):
                state = None
                for when, action, channel in sorted(subs[ci]):
                    if when <= at:
                        state = (action, channel)
                c = world.customers[ci]
                if state and state[0] == "granted" and c.active_on(day) and _usable(c, state[1]):
                    rows.append((at, "Z", ci, state[1], f"NEWSLETTER-{day:%Y-%m}", "customer_communication"))
        d = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return rows


def _renewal_offers(world: World, start: dt.date, end: dt.date) -> list[tuple]:
    """Renewal offers, 45 days before a fixed term ends (unless the contract ends before its term),
    by e-mail when the address works, else by letter. No randomness."""
    rows: list[tuple] = []
    for k in world.contracts:
        if k.contract_type != "fixed_term" or k.term_end is None:
            continue
        if k.final_end is not None and k.final_end < k.term_end:
            continue
        day = _weekday(k.term_end - dt.timedelta(days=45))
        c = world.customers[k.customer]
        if start <= day <= end and c.active_on(day):
            channel = "email" if c.email_kind == "valid" else "letter"
            rows.append(
                (local_dt(day, 7, 30), "local", c.idx, channel, f"RENEWAL-{k.term_end:%Y-%m}", "customer_communication")
            )
    return rows


def contact_rows(world: World, seed: int, consent_events: list[Event]) -> list[tuple]:
    """(sent_at UTC, style, customer idx, channel, campaign_id, kind), history from a year before the window."""
    rng = rng_for(seed, "contacts")
    win = world.window
    start = win.first_day - dt.timedelta(days=365)
    persons = [c for c in world.customers if c.is_person]
    heavy = _always_selected(rng, persons)
    rows = _marketing_campaigns(rng, persons, heavy, start, win.end)
    rows += _magazine(rng, world, start, win.end)
    rows += _newsletters(world, consent_events, start, win.end)
    rows += _renewal_offers(world, start, win.end)
    return rows


def write_contacts(
    world: World,
    writer: LandingWriter,
    seed: int,
    consent_events: list[Event],
    prospect_contacts: dict[dt.date, list[list[str]]] | None = None,
) -> dict:
    """`prospect_contacts` (delivery day → rows with a prospect id as recipient) are appended after the
    customers' rows of each day, so the customers' rows keep their order and their random stream."""
    win = world.window
    rng = rng_for(seed, "contacts-deliveries")
    by_day: dict[dt.date, list[list[str]]] = defaultdict(list)
    duplicates = 0
    rows = sorted(
        contact_rows(world, seed, consent_events), key=lambda r: (r[0], world.customers[r[2]].customer_id, r[3], r[4])
    )
    for at, style, ci, channel, campaign, kind in rows:
        delivery = max(helsinki_date(at) + DAY, win.first_delivery)
        if delivery > win.last_delivery:
            continue
        line = [world.customers[ci].customer_id, channel, campaign, kind, fmt_ts(at, style)]
        by_day[delivery].append(line)
        if rng.random() < 0.003 and delivery + DAY <= win.last_delivery:
            by_day[delivery + DAY].append(line)  # re-sent by the export job
            duplicates += 1
    for day, lines in (prospect_contacts or {}).items():
        by_day[day].extend(lines)
    for day in sorted(by_day):
        writer.write_table("contacts", day, by_day[day])
    return {"rows": sum(len(v) for v in by_day.values()), "duplicates": duplicates}
