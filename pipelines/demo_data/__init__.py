"""Synthetic demo landing zone: every source file the pipeline reads, plus the ground truth.

    from pipelines.demo_data import generate_landing_zone
    summary = generate_landing_zone(Path("var/landing"), customers=2000, days=400)

The generator first builds one consistent world (world.py: customers, metering points, contracts,
moves), then renders each source as its system would deliver it (crm.py, metering.py, billing.py,
consents.py, registers.py, contacts.py, prospects.py) through one writer (writer.py) that knows the file layout
of docs/landing-zone.md and the physical line of every deliberately bad row. The ground truth
(archetypes, injected bad rows, every piece of generated PII, ...) goes to a directory *outside*
the landing zone, because the pipeline must never see it.

Same arguments, same bytes: all randomness comes from named streams of `seed`, Faker is seeded per
instance, and nothing reads the clock.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

from .billing import write_billing
from .consents import write_consents
from .contacts import write_contacts
from .crm import write_crm
from .metering import write_metering
from .prospects import prospect_contacts, prospect_leads, write_prospects
from .registers import write_asml, write_population
from .truth import write_truth
from .world import Window, build_world
from .writer import FILE_PREFIX, LandingWriter

__all__ = ["generate_landing_zone"]

_OWN_FILE = re.compile(r"^[a-z_]+_\d{8}\.csv(\.gz)?$")


def _clean(out_dir: Path) -> None:
    """Remove files a previous run of this generator wrote (same naming pattern only), so that a
    smaller re-run does not leave stale deliveries behind. Nothing else is touched."""
    for source, prefix in FILE_PREFIX.items():
        d = out_dir / source
        if d.is_dir():
            for f in d.iterdir():
                if f.is_file() and _OWN_FILE.match(f.name) and f.name.startswith(prefix + "_"):
                    f.unlink()


def generate_landing_zone(
    out_dir: Path,
    customers: int = 2000,
    days: int = 400,
    end: dt.date = dt.date(2026, 11, 24),
    seed: int = 42,
    bad_rate: float = 0.005,
    truth_dir: Path | None = None,
    restrictive_bad_rows: bool = False,
    gzip_sources: tuple[str, ...] = (),
) -> dict:
    """Write a complete landing zone for business days end-days+1 .. end (deliveries up to end+1).

    restrictive_bad_rows adds a few unreadable rows that restrict contact (an ASML entry, a VTJ ban,
    a consent withdrawal); a fail-safe pipeline must then refuse to publish the affected audiences,
    so the default demo leaves them out. gzip_sources names sources (directory or file prefix, e.g.
    "metering") to write as deterministic .csv.gz.
    """
    out_dir = Path(out_dir)
    if customers < 20:
        raise ValueError("customers must be at least 20")
    if days < 1:
        raise ValueError("days must be at least 1")
    if not 0.0 <= bad_rate < 0.5:
        raise ValueError("bad_rate must be in [0, 0.5)")
    truth = Path(truth_dir) if truth_dir is not None else out_dir.parent / "demo_truth"
    o, t = out_dir.resolve(), truth.resolve()
    if t == o or o in t.parents:
        raise ValueError(f"truth_dir {truth} must be outside the landing zone {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    _clean(out_dir)

    window = Window(end, days)
    world = build_world(customers, window, seed)
    writer = LandingWriter(out_dir, tuple(gzip_sources))

    snapshots = write_crm(world, writer, seed, bad_rate)
    met = write_metering(world, writer, seed, bad_rate)
    n_invoices = write_billing(world, writer, met.daily_kwh, seed, bad_rate)
    events = write_consents(world, writer, seed, bad_rate, restrictive_bad_rows)
    asml = write_asml(world, writer, seed, restrictive_bad_rows)
    population = write_population(world, writer, seed, restrictive_bad_rows)
    # prospects come from their own random streams: no other source's bytes depend on them, except
    # the contacts files, which also carry the marketing contacts sent to prospects
    leads = prospect_leads(world, seed)
    sent_to_prospects = prospect_contacts(world, seed, leads)
    contacts = write_contacts(world, writer, seed, events, sent_to_prospects)
    prospects = write_prospects(world, writer, seed, bad_rate, leads)
    prospects["prospect_contacts"] = sum(len(rows) for rows in sent_to_prospects.values())

    files_by_source = Counter(f.split("/")[0] for f in writer.files)
    size = sum((out_dir / f).stat().st_size for f in writer.files)
    summary = {
        "out_dir": str(out_dir),
        "truth_dir": str(truth),
        "seed": seed,
        "customers": customers,
        "days": days,
        "first_business_day": window.first_day.isoformat(),
        "end": end.isoformat(),
        "first_delivery": window.first_delivery.isoformat(),
        "last_delivery": window.last_delivery.isoformat(),
        "snapshot_deliveries": len(snapshots),
        "files_written": len(writer.files),
        "files_by_source": dict(sorted(files_by_source.items())),
        "bytes_written": size,
        "rows_per_source": dict(sorted(writer.rows.items())),
        "readings": met.readings,
        "correction_readings": met.correction_readings,
        "estimated_readings": met.estimated,
        "missing_readings": met.missing,
        "metering_points": len(world.points),
        "contracts": len(world.contracts),
        "invoices": n_invoices,
        "consent_events": len(events),
        "asml_entries": len(asml),
        "population_rows": len(population),
        "contact_duplicates": contacts["duplicates"],
        **prospects,
        "bad_rows_total": len(writer.bad),
        "bad_rows": writer.bad_counts(),
        "restrictive_bad_rows": sum(1 for b in writer.bad if b[3]),
        "gzip_sources": sorted(writer.gzip),
    }
    write_truth(truth, world, writer, events, asml, population)
    (truth / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary
