"""`lupa explain P123456789`: why a prospect is (not) in each prospect audience, from the published
mart only (the prospects' own tables, decisions §24).

Per channel: IN with the admission rule, the legal basis and, for a consent row, the prospect's own
consent evidence (where and when it was collected, the wording version and evidence reference); or
OUT with every reason, and for `is_customer` which keys matched a customer.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from data_contracts.audiences import PROSPECT_AUDIENCE_TABLES, PROSPECT_EXCLUSIONS_TABLE
from data_contracts.vocabulary import CHANNELS
from pipelines.explain import NO_MART


def explain_prospect(mart: Path, prospect_id: str) -> str:
    if not mart.exists():
        return NO_MART
    conn = duckdb.connect(str(mart), read_only=True)
    try:
        tables = {name for (name,) in conn.sql("select table_name from duckdb_tables()").fetchall()}
        if PROSPECT_EXCLUSIONS_TABLE not in tables:
            return "the published mart holds no prospect audiences"

        def rows(sql: str, **params) -> list[dict]:
            return conn.sql(sql, params={"p": prospect_id, **params}).pl().to_dicts()

        lines, known = [f"prospect {prospect_id}"], False
        for ch in CHANNELS:
            member = rows(f'select * from "{PROSPECT_AUDIENCE_TABLES[ch]}" where prospect_id = $p')
            reasons = rows(
                f'select reason, detail, policy_version, as_of from "{PROSPECT_EXCLUSIONS_TABLE}" '
                "where prospect_id = $p and channel = $ch order by reason",
                ch=ch,
            )
            known |= bool(member or reasons)
            if member:
                r = member[0]
                evidence = (
                    f"; consent collected on {r['consent_collected_on']} via {r['consent_source']} "
                    f"(wording {r['consent_wording_version']}, evidence {r['consent_evidence_ref']})"
                    if r["legal_basis"] == "consent"
                    else "; opt-out channel: in unless a reason excludes"
                )
                lines.append(
                    f"  {ch:<7} IN   rule {r['rule']}, legal basis {r['legal_basis']}{evidence}; "
                    f"ASML checked {r['asml_checked_on']}, VTJ checked {r['vtj_checked_on']}; "
                    f"policy {r['policy_version']}, as of {r['as_of']}"
                )
            elif reasons:
                shown = [f"{r['reason']} (matched by {r['detail']})" if r["detail"] else r["reason"] for r in reasons]
                first = reasons[0]
                lines.append(
                    f"  {ch:<7} OUT  {', '.join(shown)}; policy {first['policy_version']}, as of {first['as_of']}"
                )
            else:
                lines.append(f"  {ch:<7} -    not in the published {ch} prospect audience or its exclusions")
    finally:
        conn.close()
    if not known:
        return f"prospect {prospect_id} is not in the published mart (unknown id, erased, or quarantined)"
    return "\n".join(lines)
