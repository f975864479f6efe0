"""Consent event log: grants, withdrawals and re-grants, delivered late and out of order.

The log is generated per person as a small history (email consent given on a web form, withdrawn a
year later in the app, given again; an objection to all direct marketing and to profiling made in
one customer-service call; a paper form that arrives two weeks after it was signed). The first
delivery of the window is the initial load of everything that happened before it, so a run on the
first day already knows who has consented.

Edge cases the pipeline must get right are produced on purpose and kept in the ground truth:
ties at the same instant (one written with +02:00/+03:00, the other with Z) where the withdrawal
wins, late arrivals delivered after a later event of the same customer, all-channel events (empty
channel) and newsletter subscriptions (never marketing consent).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from .randomness import rng_for, weighted_index
from .timeutil import fmt_ts, helsinki_date, local_dt
from .world import Customer, World
from .writer import BadRow, LandingWriter, csv_line

DAY = dt.timedelta(days=1)
GDPR_DAY = dt.date(2018, 5, 25)
WORDING = ((dt.date(2020, 1, 1), "v1"), (dt.date(2022, 9, 1), "v2"), (dt.date(2026, 3, 15), "v3"))
SOURCES = (("web_form", 0.40), ("mobile_app", 0.25), ("customer_service", 0.25), ("paper_form", 0.10))


@dataclass
class Event:
    at: dt.datetime  # UTC
    customer: int
    purpose: str
    channel: str
    action: str
    source: str
    style: str  # 'Z' or 'local'
    evidence: str
    wording: str
    delivery: dt.date
    order: tuple = ()
    tag: str = ""  # ground-truth label: tie, late_arrival, call_objection
    event_id: str = ""


def wording_for(day: dt.date) -> str:
    for until, version in WORDING:
        if day < until:
            return version
    return "v4"


class ConsentHistory:
    def __init__(self, world: World, seed: int):
        self.w = world
        self.rng = rng_for(seed, "consents")
        self.events: list[Event] = []

    # ---------------------------------------------------------------- helpers
    def _source(self) -> str:
        return SOURCES[weighted_index(self.rng, [w for _, w in SOURCES])][0]

    def _day_between(self, lo: dt.date, hi: dt.date) -> dt.date:
        return lo + dt.timedelta(days=int(self.rng.integers(0, (hi - lo).days + 1)))

    def _instant(self, day: dt.date, source: str) -> dt.datetime:
        r = self.rng
        if source == "paper_form":
            return local_dt(day, 0)  # the date written on the form
        if source == "customer_service":
            while day.weekday() >= 5:
                day -= DAY
            return local_dt(day, int(r.integers(8, 18)), int(r.integers(0, 60)), int(r.integers(0, 60)))
        return local_dt(day, int(r.integers(6, 24)), int(r.integers(0, 60)), int(r.integers(0, 60)))

    def _style(self, source: str) -> str:
        p_z = {"web_form": 0.2, "mobile_app": 0.7, "customer_service": 0.85, "paper_form": 0.0}[source]
        return "Z" if self.rng.random() < p_z else "local"

    def _evidence(self, source: str, at: dt.datetime) -> str:
        r = self.rng
        d = helsinki_date(at)
        if source == "web_form":
            return f"form-{int(r.integers(10000, 999999))}"
        if source == "customer_service":
            return f"call-{d.isoformat()}-{int(r.integers(1, 9999)):04d}"
        if source == "mobile_app":
            return "app-" + "".join("0123456789abcdef"[int(x)] for x in r.integers(0, 16, 8))
        return f"scan-{d:%Y%m%d}-{int(r.integers(1, 999)):03d}"

    def _delivery(self, at: dt.datetime, source: str) -> dt.date:
        lag = int(self.rng.integers(4, 21)) if source == "paper_form" else 1
        return max(helsinki_date(at) + dt.timedelta(days=lag), self.w.window.first_delivery)

    def add(
        self,
        c: Customer,
        day: dt.date,
        purpose: str,
        channel: str,
        action: str,
        source: str | None = None,
        at: dt.datetime | None = None,
        style: str | None = None,
        evidence: str | None = None,
        delivery: dt.date | None = None,
        tag: str = "",
    ) -> Event:
        source = source or self._source()
        at = at or self._instant(day, source)
        wording = wording_for(helsinki_date(at))
        if source == "paper_form" and wording != "v1" and self.rng.random() < 0.3:
            wording = f"v{int(wording[1]) - 1}"  # old forms stay in circulation
        e = Event(
            at,
            c.idx,
            purpose,
            channel,
            action,
            source,
            style or self._style(source),
            evidence or self._evidence(source, at),
            wording,
            delivery or self._delivery(at, source),
            tag=tag,
        )
        e.order = (e.at, 0 if action == "withdrawn" else 1)
        self.events.append(e)
        return e

    # ---------------------------------------------------------------- per person
    def _later(self, day: dt.date, a: int, b: int, hi: dt.date) -> dt.date | None:
        """A day a..b-1 days after `day`, or None when that falls after the person's last day `hi`
        (so a follow-up event never happens after the customer left)."""
        d = day + dt.timedelta(days=int(self.rng.integers(a, b)))
        return d if d <= hi else None

    def person(self, c: Customer) -> None:
        """One person's consent history between GDPR day (or joining) and the end of the window or of
        the customership. The sections draw from one stream, so their order is part of the output."""
        w = self.w.window
        lo = max(c.customer_since, GDPR_DAY)
        hi = min(w.end, c.ended_on or w.end)
        if lo > hi:
            return
        self._email_and_sms(c, lo, hi)
        self._channel_opt_outs(c, lo, hi)
        self._newsletter(c, lo, hi)
        self._profiling_and_objections(c, lo, hi)
        if self.rng.random() < 0.012 and (hi - lo).days > 0:
            self._tie(c, self._day_between(lo, hi))
        if self.rng.random() < 0.015 and (hi - max(lo, w.first_day)).days > 25:
            self._late_arrival(c, max(lo, w.first_day), hi)

    def _email_and_sms(self, c: Customer, lo: dt.date, hi: dt.date) -> None:
        """E-mail marketing: about a third grant (some tick sms on the same form); some withdraw; some
        of those grant again. Otherwise, rarely, an sms grant alone."""
        r = self.rng
        if r.random() < 0.36:
            d = self._day_between(lo, hi)
            email_grant = self.add(c, d, "marketing", "email", "granted")
            if r.random() < 0.45:  # sms ticked on the same form
                self.add(
                    c,
                    d,
                    "marketing",
                    "sms",
                    "granted",
                    source=email_grant.source,
                    at=email_grant.at + dt.timedelta(seconds=1),
                    style=email_grant.style,
                    evidence=email_grant.evidence,
                    delivery=email_grant.delivery,
                )
            d2 = self._later(d, 10, 500, hi) if r.random() < 0.18 else None
            if d2:
                self.add(c, d2, "marketing", "email", "withdrawn")
                d3 = self._later(d2, 5, 300, hi) if r.random() < 0.35 else None
                if d3:
                    self.add(c, d3, "marketing", "email", "granted")
        elif r.random() < 0.05:
            self.add(c, self._day_between(lo, hi), "marketing", "sms", "granted")

    def _channel_opt_outs(self, c: Customer, lo: dt.date, hi: dt.date) -> None:
        """Phone and letter opt-outs, and "yes to everything" (all channels, empty channel), which is
        sometimes narrowed later by withdrawing one channel."""
        r = self.rng
        if r.random() < 0.045:
            self.add(c, self._day_between(lo, hi), "marketing", "phone", "withdrawn")
        if r.random() < 0.05:
            self.add(c, self._day_between(lo, hi), "marketing", "letter", "withdrawn")
        if r.random() < 0.025:
            d = self._day_between(lo, hi)
            self.add(c, d, "marketing", "", "granted")
            d2 = self._later(d, 20, 400, hi) if r.random() < 0.3 else None
            if d2:
                self.add(c, d2, "marketing", ("phone", "sms")[int(r.integers(0, 2))], "withdrawn")

    def _newsletter(self, c: Customer, lo: dt.date, hi: dt.date) -> None:
        """Newsletter subscriptions: customer communication, never marketing consent."""
        r = self.rng
        if r.random() < 0.22:
            d = self._day_between(lo, hi)
            self.add(c, d, "newsletter", "email" if r.random() < 0.85 else "letter", "granted")
            d2 = self._later(d, 30, 600, hi) if r.random() < 0.2 else None
            if d2:
                self.add(c, d2, "newsletter", "email", "withdrawn")

    def _profiling_and_objections(self, c: Customer, lo: dt.date, hi: dt.date) -> None:
        """Objections: one customer-service call that stops profiling and all direct marketing; else a
        profiling withdrawal (sometimes after a grant, sometimes granted again); else a grant."""
        r = self.rng
        u = r.random()
        if u < 0.015:
            d = self._day_between(lo, hi)
            e = self.add(c, d, "profiling", "", "withdrawn", source="customer_service", style="Z", tag="call_objection")
            self.add(
                c,
                d,
                "marketing",
                "",
                "withdrawn",
                source="customer_service",
                style="Z",
                at=e.at + dt.timedelta(seconds=int(r.integers(20, 120))),
                evidence=e.evidence,
                delivery=e.delivery,
                tag="call_objection",
            )
        elif u < 0.05:
            d = self._day_between(lo, hi)
            if r.random() < 0.3:
                self.add(c, self._day_between(lo, d), "profiling", "", "granted", source="mobile_app")
            self.add(c, d, "profiling", "", "withdrawn")
            d2 = self._later(d, 30, 300, hi) if r.random() < 0.15 else None
            if d2:
                self.add(c, d2, "profiling", "", "granted", source="mobile_app")
        elif u < 0.12:
            self.add(c, self._day_between(lo, hi), "profiling", "", "granted", source="mobile_app")

    def _tie(self, c: Customer, d: dt.date) -> None:
        """A tie: the app sent a grant and a withdrawal in the same second, with different offsets
        (one local, one Z). The withdrawal must win."""
        at = self._instant(d, "mobile_app")
        ev = self._evidence("mobile_app", at)
        dl = self._delivery(at, "mobile_app")
        for action, style in (("granted", "local"), ("withdrawn", "Z")):
            self.add(
                c,
                d,
                "marketing",
                "email",
                action,
                source="mobile_app",
                at=at,
                style=style,
                evidence=ev,
                delivery=dl,
                tag="tie",
            )

    def _late_arrival(self, c: Customer, lo: dt.date, hi: dt.date) -> None:
        """A late arrival: a paper form overtaken by a later web event of the same customer. The paper
        is delivered 8-17 days after it was signed, after the web event: what counts is when each
        was given, not when it arrived."""
        r = self.rng
        d = self._day_between(lo, hi - dt.timedelta(days=25))
        later_day = d + dt.timedelta(days=int(r.integers(1, 5)))
        if r.random() < 0.5:
            # signed a paper consent, then withdrew online before the paper was scanned: withdrawn
            paper = self.add(c, d, "marketing", "email", "granted", source="paper_form", tag="late_arrival")
            self.add(c, later_day, "marketing", "email", "withdrawn", source="web_form", tag="late_arrival")
        else:
            paper = self.add(c, d, "marketing", "letter", "withdrawn", source="paper_form", tag="late_arrival")
            self.add(c, later_day, "marketing", "email", "granted", source="web_form", tag="late_arrival")
        paper.delivery = helsinki_date(paper.at) + dt.timedelta(days=int(r.integers(8, 18)))

    def company(self, c: Customer) -> None:
        lo = max(c.customer_since, GDPR_DAY)
        hi = min(self.w.window.end, c.ended_on or self.w.window.end)
        if lo <= hi and self.rng.random() < 0.2:
            self.add(c, self._day_between(lo, hi), "newsletter", "email", "granted", source="web_form")

    def build(self) -> list[Event]:
        for c in self.w.customers:
            (self.person if c.is_person else self.company)(c)
        return self.events


def write_consents(
    world: World, writer: LandingWriter, seed: int, bad_rate: float, restrictive_bad_rows: bool
) -> list[Event]:
    win = world.window
    events = [e for e in ConsentHistory(world, seed).build() if e.delivery <= win.last_delivery]
    by_day: dict[dt.date, list[Event]] = defaultdict(list)
    for e in events:
        by_day[e.delivery].append(e)
    rng = rng_for(seed, "consents-bad")
    seq = 5_500_000 + int(rng.integers(0, 400_000))
    bad_seq = 0
    ids = [c.customer_id for c in world.customers]
    restrictive_day = None
    if restrictive_bad_rows and by_day:
        days = sorted(by_day)
        restrictive_day = days[max(0, len(days) - 1 - int(rng.integers(0, min(10, len(days)))))]
    for day in sorted(by_day):
        evs = sorted(by_day[day], key=lambda e: (e.order, e.customer, e.purpose, e.channel))
        # late arrivals come at the end of the file, after the day's regular events
        evs.sort(key=lambda e: helsinki_date(e.at) + DAY < day - DAY)
        rows = []
        for e in evs:
            seq += 1
            e.event_id = f"EV{seq:07d}"
            c = world.customers[e.customer]
            rows.append(
                [
                    e.event_id,
                    c.customer_id,
                    e.purpose,
                    e.channel,
                    e.action,
                    fmt_ts(e.at, e.style),
                    e.source,
                    e.wording,
                    e.evidence,
                ]
            )
        bad = []
        n_bad = int(rng.poisson(bad_rate * len(rows))) if bad_rate > 0 else 0
        for _ in range(n_bad):
            bad_seq += 1
            bad.append(_bad_grant(rng, rows, ids, bad_seq))
        if day == restrictive_day:
            bad_seq += 1
            bad.append(_bad_withdrawal(rng, rows, world, day, bad_seq))
        writer.write_table("consents", day, rows, bad)
    return events


def _bad_grant(rng, rows, ids, n) -> BadRow:
    """Broken rows that could only *add* a consent: quarantining them never contacts anyone."""
    base = list(rows[int(rng.integers(0, len(rows)))])
    base[0] = f"EV{9_000_000 + n:07d}"
    base[4] = "granted"
    if base[2] == "profiling":
        base[3] = ""
    kind = ("unknown_purpose", "orphan_customer", "malformed_row", "unparsable_timestamp")[int(rng.integers(0, 4))]
    if kind == "unknown_purpose":
        base[2] = ("spam", "marketting", "advertising")[int(rng.integers(0, 3))]
    elif kind == "orphan_customer":
        base[1] = f"C{9_600_000 + n:07d}"
    elif kind == "malformed_row":
        base = base[:5] + base[6:]
    else:
        t = base[5]
        base[5] = f"{t[8:10]}.{t[5:7]}.{t[:4]} klo {t[11:13]}.{t[14:16]}"
    return BadRow(int(rng.integers(0, len(rows) + 1)), csv_line(base), kind)


def _bad_withdrawal(rng, rows, world: World, day: dt.date, n) -> BadRow:
    """An unreadable withdrawal of all direct marketing by a real, active person (fail-safe test)."""
    people = [c for c in world.customers if c.is_person and c.active_on(day - DAY)]
    c = people[int(rng.integers(0, len(people)))]
    at = local_dt(day - DAY, 14, 5)
    row = [
        f"EV{9_000_000 + n:07d}",
        c.customer_id,
        "marketing",
        "",
        "withdrawn",
        fmt_ts(at, "local"),
        "customer_service",
    ]  # wording_version and evidence_ref lost: 7 fields
    return BadRow(
        int(rng.integers(0, len(rows) + 1)),
        csv_line(row),
        "malformed_withdrawal",
        restricts_contact=True,
        detail=f"{c.customer_id} withdrew all marketing",
    )
