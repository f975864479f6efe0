"""The plain-text summary `make run` prints: rows per source, quarantine per rule, where data is."""

from __future__ import annotations

import json
from collections import Counter

from assets.metering import manifest_root
from assets.storage import LupaStorage, query, table_exists


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
                "select source, count(*) as files, sum(rows_read) as r, sum(rows_valid) as v, sum(rows_quarantined) as q "
                "from file_registry group by source order by source",
            )
            for source, files, r, v, q in per_source.rows():
                lines.append(f"  {source:<12}{files:>7,}{r:>13,}{v:>13,}{q:>13,}")
            for source, rule, n in query(
                conn, "select source, rule, count(*) as n from (select source, unnest(string_split(rule, ',')) as rule from quarantine) "
                "group by all order by all"
            ).rows():
                rules[(source, rule)] += n
    manifests = sorted(manifest_root(storage).glob("delivery=*.json")) if (storage.root / "warehouse").exists() else []
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
    lines += [
        "",
        "Where the data is",
        f"  landing zone (read-only):     {storage.landing}",
        f"  restricted warehouse:         {storage.warehouse_path}",
        f"  metering Parquet:             {storage.root / 'warehouse' / 'metering'}",
        f"  marketing mart:               {storage.root / 'marketing.duckdb'}",
    ]
    return "\n".join(lines)


def query_parquet_rules(storage: LupaStorage, tag: str) -> Counter:
    import polars as pl

    path = storage.root / "warehouse" / "metering" / "quarantine" / f"delivery={tag}.parquet"
    if not path.exists():
        return Counter()
    rules = pl.read_parquet(path, columns=["rule"])["rule"].str.split(",").explode()
    return Counter(dict(rules.value_counts().rows()))
