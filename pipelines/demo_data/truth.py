"""Ground truth for tests and demos, written outside the landing zone.

- archetypes.csv: the consumption archetype each customer was generated from (clustering check).
- metering_points.csv, occupancy.csv: resolution per point, who occupied it when (vacant = readings
  outside every contract).
- bad_rows.csv: file;line;kind;restricts_contact;detail for every deliberately bad row (line is
  the physical line, header = 1). A duplicate lists the injected copy.
- cascade_rows.csv: valid rows that a strict pipeline may also reject because of a bad row
  elsewhere: the original of each injected duplicate, and contracts whose customer row is bad in
  the customers snapshot of the same day ("must exist in customers").
- pii.csv: every personal id, name, email, phone and street address generated (customers, register
  entries of non-customers, VTJ addresses), so privacy tests can scan outputs for any of them.
- consent_cases.csv, population_cases.csv, asml_cases.csv: the edge cases produced on purpose.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from .consents import Event
from .registers import AsmlEntry, PopulationRow
from .timeutil import fmt_ts
from .world import World
from .writer import LandingWriter, csv_line, fmt_date


def _write(path: Path, header: list[str], rows) -> None:
    lines = [csv_line(header)] + [csv_line([str(x) for x in r]) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_truth(
    truth: Path,
    world: World,
    writer: LandingWriter,
    events: list[Event],
    asml: list[AsmlEntry],
    population: list[PopulationRow],
) -> None:
    truth.mkdir(parents=True, exist_ok=True)
    pts = world.points
    custs = sorted(world.customers, key=lambda c: c.customer_id)
    _write(
        truth / "archetypes.csv",
        [
            "customer_id",
            "archetype",
            "customer_type",
            "role",
            "main_metering_point_id",
            "cottage_metering_point_id",
            "customer_since",
            "ended_on",
            "birth_date",
            "language",
        ],
        [
            [
                c.customer_id,
                c.archetype,
                c.customer_type,
                c.role,
                pts[c.main_point].gsrn if c.main_point >= 0 else "",
                pts[c.cottage_point].gsrn if c.cottage_point >= 0 else "",
                fmt_date(c.customer_since),
                fmt_date(c.ended_on),
                fmt_date(c.birth_date),
                c.language,
            ]
            for c in custs
        ],
    )
    _write(
        truth / "metering_points.csv",
        ["metering_point_id", "site_type", "heating", "resolution", "pt15m_from"],
        [
            [
                p.gsrn,
                p.site_type,
                p.heating,
                "PT1H" if p.res15_from is None else ("PT15M" if p.res15_from == 0 else "PT1H->PT15M"),
                "" if not p.res15_from else fmt_date(dt.date.fromordinal(p.res15_from)),
            ]
            for p in sorted(pts, key=lambda p: p.gsrn)
        ],
    )
    _write(
        truth / "occupancy.csv",
        ["metering_point_id", "customer_id", "profile", "start", "end"],
        sorted(
            [
                pts[s.point].gsrn,
                world.customers[s.customer].customer_id if s.customer >= 0 else "",
                s.profile,
                fmt_date(s.start),
                fmt_date(s.end),
            ]
            for s in world.segments
        ),
    )
    (truth / "bad_rows.csv").write_text(writer.bad_rows_csv(), encoding="utf-8")
    (truth / "cascade_rows.csv").write_text(writer.cascade_rows_csv(), encoding="utf-8")

    pii = set()
    for c in world.customers:
        for kind, value in (
            ("personal_id", c.personal_id),
            ("first_name", c.first_name),
            ("last_name", c.last_name),
            ("email", c.email),
            ("phone", c.phone),
            ("phone_e164", c.phone_e164 or ""),
        ):
            if value:
                pii.add((c.customer_id, kind, value))
        for _, a in c.addresses:
            pii.add((c.customer_id, "street_address", a.street))
    ids = {c.idx: c.customer_id for c in world.customers}
    for e in asml:
        cid = ids.get(e.customer, "")
        for kind, value in (
            ("first_name", e.first_name),
            ("last_name", e.last_name),
            ("street_address", e.street),
            ("phone_e164", e.phone),
        ):
            if value:
                pii.add((cid, kind, value))
    for r in population:
        if r.street:
            pii.add((ids[r.person], "street_address", r.street))
    pii |= writer.extra_pii
    _write(truth / "pii.csv", ["customer_id", "kind", "value"], sorted(pii))

    _write(
        truth / "consent_cases.csv",
        ["event_id", "customer_id", "tag", "purpose", "channel", "action", "occurred_at_utc", "delivery"],
        [
            [
                e.event_id,
                ids[e.customer],
                e.tag,
                e.purpose,
                e.channel,
                e.action,
                fmt_ts(e.at, "Z"),
                fmt_date(e.delivery),
            ]
            for e in sorted(events, key=lambda e: e.event_id)
            if e.tag
        ],
    )
    _write(
        truth / "population_cases.csv",
        ["personal_id", "customer_id", "tag", "updated_on", "delivery"],
        [
            [world.customers[r.person].personal_id, ids[r.person], r.tag, fmt_date(r.updated_on), fmt_date(r.delivery)]
            for r in population
        ],
    )
    _write(
        truth / "asml_cases.csv",
        ["register", "customer_id", "variant", "registered_on", "expires_on"],
        [
            [e.register, ids[e.customer], e.variant, fmt_date(e.registered_on), fmt_date(e.expires_on)]
            for e in asml
            if e.customer >= 0
        ],
    )
