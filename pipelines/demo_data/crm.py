"""CRM full snapshots: customers and contracts, weekly, as the CRM knew them the evening before.

A snapshot delivered on S shows every customer whose relationship started on or before S-1 (former
customers stay, with ended_on set) and every contract started by then, with end_date as known then
(a termination shows once notice was given). Broken records are injected as *persistent defects*:
a typo in a henkilötunnus stays in the CRM for a few weekly snapshots until someone fixes it, which
is how real CRM data quality behaves, and the same bad line reappears in each of those files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from .identities import GSRN_PREFIXES, HETU_CHECK_CHARS, hetu_check_char, make_gsrn
from .randomness import rng_for
from .timeutil import snapshot_dates
from .world import Contract, Customer, World
from .writer import BadRow, LandingWriter, csv_line, fmt_date

CUSTOMER_DEFECTS = (
    ("invalid_hetu_check", 0.2),
    ("hetu_test_code", 0.1),
    ("malformed_row", 0.15),
    ("unknown_customer_type", 0.1),
    ("duplicate_customer_id", 0.15),
    ("unparsable_date", 0.15),
    ("bad_postal_code", 0.15),
)
CONTRACT_DEFECTS = (
    ("bad_gsrn_check_digit", 0.2),
    ("orphan_customer", 0.2),
    ("unparsable_date", 0.15),
    ("malformed_row", 0.15),
    ("end_before_start", 0.1),
    ("unknown_contract_type", 0.1),
    ("fixed_term_without_end", 0.1),
)


def customer_row(c: Customer, known_on: dt.date) -> list[str]:
    a = c.address_on(known_on)
    ended = c.ended_on if (c.ended_on is not None and c.ended_on <= known_on) else None
    return [
        c.customer_id,
        c.customer_type,
        c.personal_id,
        c.business_id,
        c.first_name,
        c.last_name,
        c.company_name,
        c.language,
        c.email,
        c.phone,
        a.street,
        a.postal_code,
        a.city,
        fmt_date(c.customer_since),
        fmt_date(ended),
    ]


def contract_row(k: Contract, world: World, known_on: dt.date) -> list[str]:
    return [
        k.contract_id,
        world.customers[k.customer].customer_id,
        world.points[k.point].gsrn,
        k.product_code,
        k.contract_type,
        fmt_date(k.start),
        fmt_date(k.end_date_on(known_on)),
        k.site_type,
        k.heating,
    ]


@dataclass
class Defect:
    kind: str
    target: int  # customer or contract index (insert kinds: ignored unless duplicating)
    first: int  # first snapshot index where the defect is live
    last: int
    key: int  # seeds the defect's own rng, so the bad line is identical in every snapshot


def _plan(rng: np.random.Generator, kinds, n_targets: int, n_snaps: int, per_snapshot: float) -> list[Defect]:
    if per_snapshot <= 0 or n_targets == 0:
        return []
    total = int(np.ceil(per_snapshot * n_snaps / 3.0))
    names = [k for k, _ in kinds]
    p = np.array([w for _, w in kinds])
    out = []
    for i in range(total):
        life = int(rng.integers(1, 6))
        first = int(rng.integers(-life + 1, n_snaps))
        out.append(
            Defect(
                names[int(rng.choice(len(names), p=p / p.sum()))],
                int(rng.integers(0, n_targets)),
                max(0, first),
                min(n_snaps - 1, first + life - 1),
                i,
            )
        )
    return out


def _bad_customer(
    d: Defect, rows: list[list[str]], pos: dict[int, int], world: World, seed: int, pii: set
) -> BadRow | None:
    r = rng_for(seed, "crm-defect", d.key)
    c = world.customers[d.target]
    if d.kind == "hetu_test_code":
        birth = dt.date(int(r.integers(1950, 2000)), int(r.integers(1, 13)), int(r.integers(1, 29)))
        ind = int(r.integers(900, 1000))
        pid = f"{birth:%d%m}{birth.year % 100:02d}-{ind:03d}{hetu_check_char(birth, ind)}"
        cid = f"C{9_900_000 + d.key:07d}"
        first = ("Testi", "Teppo", "Tiina")[d.key % 3]
        pii.update({(cid, "personal_id", pid), (cid, "email", f"{first.lower()}.testaaja@example.fi")})
        row = [
            cid,
            "person",
            pid,
            "",
            first,
            "Testaaja",
            "",
            "fi",
            f"{first.lower()}.testaaja@example.fi",
            "",
            "Testikatu 1 A 1",
            "00100",
            "Helsinki",
            "2020-01-01",
            "",
        ]
        return BadRow(int(r.integers(0, len(rows) + 1)), csv_line(row), d.kind, detail="QA test record in production")
    if d.target not in pos:
        return None
    i = pos[d.target]
    row = list(rows[i])
    if d.kind == "invalid_hetu_check":
        if c.customer_type != "person":
            return None
        good = row[2][-1]
        row[2] = row[2][:-1] + HETU_CHECK_CHARS[(HETU_CHECK_CHARS.index(good) + 1 + int(r.integers(0, 29))) % 31]
        pii.add((c.customer_id, "personal_id", row[2]))
    elif d.kind == "malformed_row":
        row = row[:-2] if r.random() < 0.6 else row + ["", "huom"]
    elif d.kind == "unknown_customer_type":
        row[1] = ("personn", "yksityinen", "Person", "yritys")[int(r.integers(0, 4))]
    elif d.kind == "duplicate_customer_id":
        row[9] = "" if row[9] else "040 555 0199"
        if row[9]:
            pii.add((c.customer_id, "phone", row[9]))
        return BadRow(
            i + 1, csv_line(row), d.kind, detail="same customer_id as the line before", duplicates_previous_line=True
        )
    elif d.kind == "unparsable_date":
        since = c.customer_since
        row[13] = f"{since.day}.{since.month}.{since.year}" if r.random() < 0.6 else f"{since.year}-02-30"
    elif d.kind == "bad_postal_code":
        pc = row[11]
        row[11] = (pc[1:], pc[:3] + " " + pc[3:], pc + "0")[int(r.integers(0, 3))]
    return BadRow(i, csv_line(row), d.kind, replace=True)


def _bad_contract(d: Defect, rows, pos, world: World, seed: int) -> BadRow | None:
    r = rng_for(seed, "contract-defect", d.key)
    if d.kind == "orphan_customer":
        k = world.contracts[d.target]
        gsrn = make_gsrn(r, GSRN_PREFIXES[int(r.integers(0, len(GSRN_PREFIXES)))])
        row = [
            f"K{9_800_000 + d.key:07d}",
            f"C{9_700_000 + d.key:07d}",
            gsrn,
            "SPOT",
            "open_ended",
            fmt_date(k.start),
            "",
            k.site_type,
            k.heating,
        ]
        return BadRow(int(r.integers(0, len(rows) + 1)), csv_line(row), d.kind, detail="customer not in CRM")
    if d.target not in pos:
        return None
    i = pos[d.target]
    row = list(rows[i])
    k = world.contracts[d.target]
    if d.kind == "bad_gsrn_check_digit":
        row[2] = row[2][:-1] + str((int(row[2][-1]) + 1 + int(r.integers(0, 9))) % 10)
    elif d.kind == "unparsable_date":
        row[5] = f"{k.start.day}.{k.start.month}.{k.start.year}" if r.random() < 0.5 else f"{k.start.year}-13-01"
    elif d.kind == "malformed_row":
        row = row[:-1]
    elif d.kind == "end_before_start":
        row[4] = "fixed_term"
        row[6] = fmt_date(k.start - dt.timedelta(days=int(r.integers(1, 400))))
    elif d.kind == "unknown_contract_type":
        row[4] = ("määräaikainen", "fixed", "toistaiseksi")[int(r.integers(0, 3))]
    elif d.kind == "fixed_term_without_end":
        row[4], row[6] = "fixed_term", ""
    return BadRow(i, csv_line(row), d.kind, replace=True)


def write_crm(world: World, writer: LandingWriter, seed: int, bad_rate: float) -> list[dt.date]:
    win = world.window
    snaps = snapshot_dates(win.first_delivery, win.last_delivery)
    rng = rng_for(seed, "crm")
    n_cust = len(world.customers)
    c_def = _plan(rng, CUSTOMER_DEFECTS, n_cust, len(snaps), bad_rate * n_cust)
    k_def = _plan(rng, CONTRACT_DEFECTS, len(world.contracts), len(snaps), bad_rate * len(world.contracts))
    customers = sorted(world.customers, key=lambda c: c.customer_id)
    for si, snap in enumerate(snaps):
        known = snap - dt.timedelta(days=1)
        visible = [c for c in customers if c.customer_since <= known]
        rows = [customer_row(c, known) for c in visible]
        pos = {c.idx: i for i, c in enumerate(visible)}
        bad = [
            b
            for d in c_def
            if d.first <= si <= d.last
            for b in [_bad_customer(d, rows, pos, world, seed, writer.extra_pii)]
            if b is not None
        ]
        bad = _dedupe_positions(bad)
        writer.write_table("customers", snap, rows, bad)
        gone = {visible[b.position].customer_id for b in bad if b.replace}
        gone |= {visible[b.position - 1].customer_id for b in bad if b.duplicates_previous_line}

        cons = [(j, k) for j, k in enumerate(world.contracts) if k.start <= known]
        rows = [contract_row(k, world, known) for _, k in cons]
        pos = {j: i for i, (j, _) in enumerate(cons)}
        bad = [
            b
            for d in k_def
            if d.first <= si <= d.last
            for b in [_bad_contract(d, rows, pos, world, seed)]
            if b is not None
        ]
        rel, line_of = writer.write_table("contracts", snap, rows, _dedupe_positions(bad))
        for i, r in enumerate(rows):
            if r[1] in gone and line_of[i] is not None:
                writer.cascade.append(
                    (
                        rel,
                        line_of[i],
                        "contract_of_quarantined_customer",
                        f"{r[1]} is a bad row in the customers snapshot of the same day",
                    )
                )
    return snaps


def _dedupe_positions(bad: list[BadRow]) -> list[BadRow]:
    """At most one replacement per row (two defects on one record would be one bad line)."""
    seen = set()
    out = []
    for b in bad:
        if b.replace:
            if b.position in seen:
                continue
            seen.add(b.position)
        out.append(b)
    return out
