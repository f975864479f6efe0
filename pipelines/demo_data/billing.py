"""Billing export: monthly invoices per contract, re-delivered whenever their state changes.

Each contract is invoiced once a month (on the customer's billing day, moved to the next weekday)
for the previous calendar month, priced from the consumption the metering model produced (or, for
months before the window, from the archetype's typical monthly share). An invoice is delivered the
morning after it is issued and again after each change (paid, reminder, collection), because the
source upserts by invoice_id. Payment behaviour is a property of the customer: most pay on time or
by direct debit, some are habitually late, a few end up in collection. Finance exports use a decimal
comma and, being produced by a Windows tool, start with a UTF-8 BOM.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np

from .households import MONTH_WEIGHTS, TYPICAL_ANNUAL_KWH
from .randomness import rng_for
from .world import World
from .writer import BadRow, LandingWriter, csv_line, fmt_date

DAY = dt.timedelta(days=1)
SPOT_BY_MONTH = [11.5, 12.0, 8.0, 6.0, 4.5, 3.5, 3.5, 4.5, 5.5, 7.0, 9.0, 10.5]  # c/kWh incl. VAT and margin
FIXED_PRICE = {"FIXED12": 9.4, "FIXED24": 9.9, "GREEN_FIXED24": 10.4, "BASIC": 12.9, "TIME_OF_USE": 10.9}
MONTHLY_FEE = {"SPOT": 3.95, "GREEN_SPOT": 4.45, "BASIC": 5.90, "TIME_OF_USE": 4.95}
BILLING_BAD_KINDS = ("due_before_issued", "unparsable_date", "malformed_row", "unparsable_amount")


def weekday_on_or_after(d: dt.date) -> dt.date:
    while d.weekday() >= 5:
        d += DAY
    return d


def fmt_eur(x: float) -> str:
    return f"{x:.2f}".replace(".", ",")


def _month_starts(first: dt.date, last: dt.date):
    d = dt.date(first.year, first.month, 1)
    while d <= last:
        yield d
        d = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)


class Billing:
    def __init__(self, world: World, daily_kwh: np.ndarray, seed: int):
        self.w = world
        self.daily = daily_kwh
        self.seed = seed
        self.rng = rng_for(seed, "billing")
        self.seg_by = defaultdict(list)
        for i, s in enumerate(world.segments):
            if s.customer >= 0:
                self.seg_by[(s.point, s.customer)].append(i)
        n = len(world.customers)
        self.billing_day = self.rng.integers(1, 21, n)
        self.payer = self.rng.choice(4, size=n, p=[0.62, 0.23, 0.11, 0.04])  # on time, direct debit, late, bad
        self.spot_year = {y: 1.0 + 0.15 * self.rng.normal() for y in range(1990, 2100)}

    def kwh(self, k, a: dt.date, b: dt.date) -> float:
        win = self.w.window
        total = 0.0
        covered = 0
        for si in self.seg_by.get((k.point, k.customer), ()):
            s = self.w.segments[si]
            lo, hi = max(a, s.start), min(b, s.end)
            if lo <= hi:
                total += float(self.daily[si, (lo - win.first_day).days : (hi - win.first_day).days + 1].sum())
                covered += (hi - lo).days + 1
        missing = (b - a).days + 1 - covered
        if missing > 0:  # before the window: bill an estimate from the archetype's typical month
            per_day = TYPICAL_ANNUAL_KWH[k.profile] / 365.0 * MONTH_WEIGHTS[k.profile][a.month - 1]
            total += per_day * missing * float(self.rng.lognormal(0, 0.25))
        return total

    def price(self, product: str, month: dt.date) -> float:
        if product in FIXED_PRICE:
            return FIXED_PRICE[product]
        p = SPOT_BY_MONTH[month.month - 1] * self.spot_year[month.year]
        return p + (0.6 if product == "GREEN_SPOT" else 0.0)

    def invoices(self) -> list[dict]:
        win = self.w.window
        first_issue = win.first_day - dt.timedelta(days=90)
        out = []
        for k in self.w.contracts:
            cust = self.w.customers[k.customer]
            fee = MONTHLY_FEE.get(k.product_code, 4.95) * (2.0 if cust.customer_type == "company" else 1.0)
            for m in _month_starts(max(k.start, first_issue - dt.timedelta(days=40)), win.end):
                issued = weekday_on_or_after(dt.date(m.year, m.month, int(self.billing_day[k.customer])))
                if issued < first_issue or issued > win.end:
                    continue
                p1 = m - DAY
                p0 = dt.date(p1.year, p1.month, 1)
                a, b = max(p0, k.start), min(p1, k.supply_end or p1)
                if a > b:
                    continue
                kwh = self.kwh(k, a, b)
                amount = round(kwh * self.price(k.product_code, p0) / 100 + fee * ((b - a).days + 1) / p1.day, 2)
                out.append(self._invoice(k, issued, amount, credit=False))
                if self.rng.random() < 0.012:
                    ci = weekday_on_or_after(issued + dt.timedelta(days=int(self.rng.integers(3, 20))))
                    if ci <= win.end:
                        credit = -round(amount * float(self.rng.uniform(0.05, 0.4)), 2)
                        out.append(self._invoice(k, ci, credit, credit=True))
        out.sort(key=lambda v: (v["issued"], v["customer_id"], v["contract_id"], v["credit"]))
        seq = 55_000_000 + int(self.rng.integers(0, 900_000))
        for v in out:
            seq += 1
            v["invoice_id"] = f"I{seq:08d}"
        return out

    def _invoice(self, k, issued: dt.date, amount: float, credit: bool) -> dict:
        r = self.rng
        cust = self.w.customers[k.customer]
        due = issued + dt.timedelta(days=int(r.choice([14, 14, 14, 14, 21, 10])))
        states = [(issued, "", 0, 0)]  # (when, paid_on, reminders, in_collection)
        if not credit:
            kind = int(self.payer[k.customer])
            if kind in (0, 1) and r.random() < 0.05:
                kind = 2  # even good payers forget sometimes
            if kind == 0:
                paid = weekday_on_or_after(max(issued + DAY, due - dt.timedelta(days=int(r.integers(0, 12)))))
            elif kind == 1:
                paid = weekday_on_or_after(due)
            elif kind == 2:
                paid = weekday_on_or_after(due + dt.timedelta(days=int(r.integers(3, 46))))
            else:
                paid = (
                    weekday_on_or_after(due + dt.timedelta(days=int(r.integers(30, 91)))) if r.random() < 0.5 else None
                )
            reminders = 0
            for after, coll in ((10, 0), (24, 0), (40, 1)):
                when = weekday_on_or_after(due + dt.timedelta(days=after))
                if paid is None or paid > when:
                    if coll:
                        if kind == 3:
                            states.append((when, "", reminders, 1))
                    else:
                        reminders += 1
                        states.append((when, "", reminders, 0))
            if paid is not None:
                last = states[-1]
                states.append((paid, fmt_date(paid), last[2], last[3]))
        return {
            "customer_id": cust.customer_id,
            "contract_id": k.contract_id,
            "issued": issued,
            "due": due,
            "amount": amount,
            "states": states,
            "credit": credit,
        }


def write_billing(world: World, writer: LandingWriter, daily_kwh: np.ndarray, seed: int, bad_rate: float) -> int:
    win = world.window
    invoices = Billing(world, daily_kwh, seed).invoices()
    deliveries: dict[dt.date, dict[str, list[str]]] = defaultdict(dict)
    for v in invoices:
        for when, paid_on, reminders, coll in v["states"]:
            delivery = max(when + DAY, win.first_delivery)  # before the window: in the initial load
            if delivery > win.last_delivery:
                break
            deliveries[delivery][v["invoice_id"]] = [
                v["invoice_id"],
                v["customer_id"],
                v["contract_id"],
                fmt_date(v["issued"]),
                fmt_date(v["due"]),
                fmt_eur(v["amount"]),
                paid_on,
                str(reminders),
                str(coll),
            ]
    rng = rng_for(seed, "billing-bad")
    for day in sorted(deliveries):
        rows = [deliveries[day][i] for i in sorted(deliveries[day])]
        writer.write_table("billing", day, rows, _bad(rows, rng, bad_rate), bom=True)
    return len(invoices)


def _bad(rows: list[list[str]], rng: np.random.Generator, bad_rate: float) -> list[BadRow]:
    n = int(rng.poisson(bad_rate * len(rows))) if bad_rate > 0 else 0
    out = []
    for i in sorted(rng.choice(len(rows), size=min(n, len(rows)), replace=False)) if n else ():
        row = list(rows[int(i)])
        kind = BILLING_BAD_KINDS[int(rng.integers(0, len(BILLING_BAD_KINDS)))]
        issued = dt.date.fromisoformat(row[3])
        if kind == "due_before_issued":
            row[4] = fmt_date(issued - dt.timedelta(days=int(rng.integers(1, 20))))
        elif kind == "unparsable_date":
            row[3] = f"{issued.day}.{issued.month}.{issued.year}"
        elif kind == "malformed_row":
            row = row[:6] + row[7:]
        else:
            row[5] = row[5] + " EUR" if rng.random() < 0.5 else "€ " + row[5]
        out.append(BadRow(int(i), csv_line(row), kind, replace=True))
    return out
