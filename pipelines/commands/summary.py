"""`lupa summary`: the plain-text summary `make run` prints: rows per source, quarantine per rule,
where the data is."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from assets.storage import lake
from assets.storage.metering import manifest_root, quarantine_root
from assets.storage.metering_parts import listed
from assets.storage.zones import LupaStorage, query, table_exists
from pipelines.commands.campaign import campaign_summary
from pipelines.settings import load_settings


def ingest_summary(storage: LupaStorage) -> str:
    lines = ["", "Ingest (files in scope of the last run; rows read = valid + quarantined)", ""]
    lines.append(f"  {'source':<12}{'files':>7}{'read':>13}{'valid':>13}{'quarantined':>13}")
    rules: Counter[tuple[str, str]] = Counter()
    if not storage.warehouse_path.exists():
        return "\n".join(lines + ["  (nothing ingested yet)"])
    with storage.warehouse(read_only=True) as conn:
        if table_exists(conn, "file_registry"):
            per_source = query(
                conn,
                "select source, count(*) as files, sum(rows_read) as r, sum(rows_valid) as v, "
                "sum(rows_quarantined) as q from file_registry group by source order by source",
            )
            for source, files, r, v, q in per_source.rows():
                lines.append(f"  {source:<12}{files:>7,}{r:>13,}{v:>13,}{q:>13,}")
            for source, rule, n in query(
                conn,
                "select source, rule, count(*) as n "
                "from (select source, unnest(string_split(rule, ',')) as rule from quarantine) "
                "group by all order by all",
            ).rows():
                rules[(source, rule)] += n
    manifests = listed(manifest_root(storage), "delivery=*.json") if (storage.root / "warehouse").exists() else []
    if manifests:
        totals = Counter()
        for m in manifests:
            data = json.loads(m.read_text())
            totals.update({"r": data["rows_read"], "v": data["rows_valid"], "q": data["rows_quarantined"]})
        lines.append(f"  {'metering':<12}{len(manifests):>7,}{totals['r']:>13,}{totals['v']:>13,}{totals['q']:>13,}")
        for m in manifests:
            if json.loads(m.read_text())["rows_quarantined"]:
                q = query_parquet_rules(storage, m.stem.split("=")[1])
                for rule, n in q.items():
                    rules[("metering", rule)] += n
    lines += ["", "Quarantined records per rule (a record breaking two rules counts under both)", ""]
    lines += [f"  {source:<12}{rule:<40}{n:>8,}" for (source, rule), n in sorted(rules.items())] or ["  none"]
    lines += mart_summary(storage)
    lines += campaign_summary(storage)
    lines += [
        "",
        "Where the data is",
        f"  landing zone (read-only):     {storage.landing}",
        f"  restricted warehouse:         {storage.warehouse_path}",
        f"  metering Parquet:             {storage.metering_dir}",
        f"  analytics zone (features):    {storage.root / 'analytics'}",
        f"  marketing mart:               {storage.root / 'marketing.duckdb'}",
        f"  mart exports (Parquet, CSV):  {storage.root / 'exports'}",
        f"  segment report (HTML):        {storage.root / 'reports' / 'segment_report.html'}",
        f"  campaign briefs:              {storage.campaigns_path}",
        f"  campaign send lists:          {storage.root / 'campaign_exports'}",
    ]
    return "\n".join(lines)


def query_parquet_rules(storage: LupaStorage, tag: str) -> Counter:

    path = quarantine_root(storage) / f"delivery={tag}.parquet"
    if not path.exists():
        return Counter()
    rules = lake.read_parquet(path, columns=["rule"])["rule"].str.split(",").explode()
    return Counter(dict(rules.value_counts().rows()))


def mart_summary(storage: LupaStorage) -> list[str]:
    """Audience sizes per channel, exclusions per reason, segments: from the published mart only."""
    from assets.storage.mart import read_published
    from data_contracts.audiences import AUDIENCE_TABLES

    lines = ["", "Published marketing mart"]
    catalogue = read_published(storage.root, "segment_catalogue")
    if catalogue is None:
        return lines + ["  not published (see the failed checks in the Dagster UI: make ui)"]
    as_of = read_published(storage.root, "audience_exclusions")
    known = as_of is not None and as_of.height
    day, version = (as_of["as_of"][0], as_of["policy_version"][0]) if known else ("?", "?")
    lines.append(f"  as of {day}, policy {version}")
    lines += ["", "  audience sizes"]
    for channel, table in AUDIENCE_TABLES.items():
        lines.append(f"    {channel:<8}{read_published(storage.root, table).height:>8,}")
    lines += ["", "  exclusions per reason (a customer counts once per channel and reason)"]
    counts = as_of.group_by("channel", "reason").len().sort("channel", "reason").rows() if as_of is not None else []
    lines += [f"    {channel:<8}{reason:<22}{n:>8,}" for channel, reason, n in counts]
    renewals = read_published(storage.root, "renewal_offers")
    lines += [
        "",
        f"  renewal offers: {renewals.height:,} ("
        + ", ".join(f"{c}: {n}" for c, n in sorted(renewals.group_by("channel").len().rows()))
        + ")",
    ]
    lines += ["", "  segments"]
    lines += [
        f"    {r['segment_id']:>3}  {r['name_en']:<45}{r['size']:>7,}" for r in catalogue.sort("segment_id").to_dicts()
    ]
    return lines + prospect_summary(storage)


def prospect_summary(storage: LupaStorage) -> list[str]:
    """The prospect audiences (their own tables) and their exclusions, from the published mart."""
    from assets.storage.mart import read_published
    from data_contracts.audiences import PROSPECT_AUDIENCE_TABLES, PROSPECT_EXCLUSIONS_TABLE

    exclusions = read_published(storage.root, PROSPECT_EXCLUSIONS_TABLE)
    if exclusions is None:
        return ["", "  prospect audiences: not in this mart"]
    lines = ["", "  prospect audiences (leads who are not customers yet)"]
    for channel, table in PROSPECT_AUDIENCE_TABLES.items():
        frame = read_published(storage.root, table)
        lines.append(f"    {channel:<8}{frame.height if frame is not None else 0:>8,}")
    lines += ["", "  prospect exclusions per reason (a prospect counts once per channel and reason)"]
    counts = exclusions.group_by("channel", "reason").len().sort("channel", "reason").rows()
    lines += [f"    {channel:<8}{reason:<22}{n:>8,}" for channel, reason, n in counts] or ["    none"]
    return lines


def cmd_summary(args: argparse.Namespace) -> int:
    from pipelines.definitions import storage_resource

    print(ingest_summary(storage_resource(load_settings())))
    return 0


def add_parser(subparsers) -> None:
    summary = subparsers.add_parser("summary", help="print rows per source, quarantine per rule and where the data is")
    summary.set_defaults(fn=cmd_summary)
