"""`lupa explain CUSTOMER_ID`: why a customer is (not) in each audience, from the published mart only."""

from __future__ import annotations

from pathlib import Path

import duckdb

from data_contracts.audience_rules import AUDIENCE_TABLES
from data_contracts.policy import CHANNELS


def explain(mart: Path, customer_id: str) -> str:
    if not mart.exists():
        return "no marketing mart has been published yet (run `make run` or `lupa daily`)"
    conn = duckdb.connect(str(mart), read_only=True)
    try:
        def rows(sql: str) -> list[dict]:
            return conn.sql(sql, params={"c": customer_id}).pl().to_dicts()

        segment = rows("select s.segment_id, c.name_en, c.name_fi, c.name_sv, s.model_version from customer_segments s "
                       "join segment_catalogue c using (segment_id) where s.customer_id = $c")
        lines, known = [f"customer {customer_id}"], bool(segment)
        for ch in CHANNELS:
            member = rows(f'select * from "{AUDIENCE_TABLES[ch]}" where customer_id = $c')
            reasons = [r["reason"] for r in rows("select reason from audience_exclusions where customer_id = $c and channel = '" + ch + "' order by reason")]
            known |= bool(member or reasons)
            if member:
                r = member[0]
                evidence = (f"; deciding consent event {r['consent_event_id']} at {r['consent_occurred_at']} via {r['consent_source']} "
                            f"(wording {r['consent_wording_version']}, evidence {r['consent_evidence_ref']})") if r.get("consent_event_id") else ""
                lines.append(f"  {ch:<7} IN   rule {r['rule']} ({r['legal_basis']}){evidence}; policy {r['policy_version']}, as of {r['as_of']}")
            elif reasons:
                lines.append(f"  {ch:<7} OUT  {', '.join(reasons)}")
        renewal = rows("select contract_id, end_date, channel, reason from renewal_offers where customer_id = $c")
        policy = conn.sql("select any_value(policy_version) from audience_exclusions").fetchall()[0][0]
    finally:
        conn.close()
    if not known and not renewal:
        return f"customer {customer_id} is not in the published mart (unknown id, or not a current customer)"
    if segment:
        s = segment[0]
        lines.append(f"  segment {s['segment_id']}: {s['name_en']} / {s['name_fi']} / {s['name_sv']} (model {s['model_version']})")
    else:
        lines.append("  segment: none (not profiled: objected, not eligible, or too little history)")
    for r in renewal:
        lines.append(f"  renewal offer for contract {r['contract_id']} ending {r['end_date']}: channel {r['channel']} ({r['reason']})")
    lines.append(f"  policy version {policy}")
    return "\n".join(lines)
