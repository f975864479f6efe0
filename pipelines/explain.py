"""`lupa explain CUSTOMER_ID`: why a customer is (not) in each audience, from the published mart only.

Per channel: IN with the admission rule, the legal basis and, for a consent-based row, the deciding
consent event (id, time, source, wording, evidence); or OUT with every exclusion reason, and for a
consent withdrawal the deciding withdrawal event (`audience_exclusions.consent_event_id`). Then the
segment and the policy version. Nothing but `marketing.duckdb` is opened (read-only), so it works
where only the mart is shared, and never blocks the pipeline.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from data_contracts.audiences import AUDIENCE_TABLES
from data_contracts.vocabulary import CHANNELS

NO_MART = "no marketing mart has been published yet (run `make run` or `lupa daily`)"


def unknown(customer_id: str) -> str:
    return f"customer {customer_id} is not in the published mart (unknown id, or not a current customer)"


def explain(mart: Path, customer_id: str) -> str:
    if not mart.exists():
        return NO_MART
    conn = duckdb.connect(str(mart), read_only=True)
    try:

        def rows(sql: str, **params) -> list[dict]:
            return conn.sql(sql, params={"c": customer_id, **params}).pl().to_dicts()

        tables = {name for (name,) in conn.sql("select table_name from duckdb_tables()").fetchall()}
        exclusion_columns = (
            set(conn.sql("select * from audience_exclusions limit 0").columns)
            if "audience_exclusions" in tables
            else set()
        )
        # a mart published before exclusions carried their deciding event has no such column
        event = "consent_event_id" if "consent_event_id" in exclusion_columns else "null as consent_event_id"
        segment = (
            rows(
                "select s.segment_id, c.name_en, c.name_fi, c.name_sv, s.model_version from customer_segments s "
                "join segment_catalogue c using (segment_id) where s.customer_id = $c"
            )
            if {"customer_segments", "segment_catalogue"} <= tables
            else []
        )
        lines, known, versions = [f"customer {customer_id}"], bool(segment), set()
        for ch in CHANNELS:
            member = (
                rows(f'select * from "{AUDIENCE_TABLES[ch]}" where customer_id = $c')
                if AUDIENCE_TABLES[ch] in tables
                else []
            )
            reasons = (
                rows(
                    f"select reason, {event}, policy_version, as_of from audience_exclusions "
                    "where customer_id = $c and channel = $ch order by reason",
                    ch=ch,
                )
                if exclusion_columns
                else []
            )
            known |= bool(member or reasons)
            if member:
                r = member[0]
                versions.add(r["policy_version"])
                evidence = (
                    (
                        f"; deciding consent event {r['consent_event_id']} at {r['consent_occurred_at']} "
                        f"via {r['consent_source']} "
                        f"(wording {r['consent_wording_version']}, evidence {r['consent_evidence_ref']})"
                    )
                    if r.get("consent_event_id")
                    else "; no consent event decides it (opt-out channel: in unless a reason excludes)"
                )
                lines.append(
                    f"  {ch:<7} IN   rule {r['rule']}, legal basis {r['legal_basis']}{evidence}; "
                    f"policy {r['policy_version']}, as of {r['as_of']}"
                )
            elif reasons:
                versions |= {r["policy_version"] for r in reasons}
                shown = [
                    f"{r['reason']} (deciding consent event {r['consent_event_id']})"
                    if r["consent_event_id"]
                    else r["reason"]
                    for r in reasons
                ]
                lines.append(
                    f"  {ch:<7} OUT  {', '.join(shown)}; "
                    f"policy {reasons[0]['policy_version']}, as of {reasons[0]['as_of']}"
                )
            else:
                lines.append(f"  {ch:<7} -    not in the published {ch} audience or its exclusions")
        renewal = (
            rows("select contract_id, end_date, channel, reason from renewal_offers where customer_id = $c")
            if "renewal_offers" in tables
            else []
        )
        if not versions and exclusion_columns:
            versions.add(conn.sql("select any_value(policy_version) from audience_exclusions").fetchall()[0][0])
    finally:
        conn.close()
    if not known and not renewal:
        return unknown(customer_id)
    if segment:
        s = segment[0]
        lines.append(
            f"  segment {s['segment_id']}: {s['name_en']} / {s['name_fi']} / {s['name_sv']} "
            f"(model {s['model_version']})"
        )
    else:
        lines.append("  segment: none (not profiled: objected, not eligible, or too little history)")
    for r in renewal:
        lines.append(
            f"  renewal offer for contract {r['contract_id']} ending {r['end_date']}: "
            f"channel {r['channel']} ({r['reason']})"
        )
    lines.append(f"  policy version {', '.join(sorted(v for v in versions if v)) or 'unknown'}")
    return "\n".join(lines)
