"""The campaign part of `lupa explain`: the person's campaigns and their newsletter subscription.

Per campaign: on the list (and the channel), in the control group, left out with the reason (and, for
`not_in_audience`, every exclusion reason per channel), or removed from a released list with the date
and the reason. Campaign plans live in the restricted warehouse, not the mart, so this part opens the
warehouse read-only, briefly.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from assets.storage.zones import query, table_exists

STATUS_TEXT = {"treated": "on the list", "control": "in the control group (receives nothing)", "left_out": "left out"}


def explain_campaigns(warehouse: Path, recipient_id: str) -> list[str]:
    if not warehouse.exists():
        return []
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        lines = ["  campaigns:"]
        rows = []
        if table_exists(conn, "campaign_plan"):
            rows += query(
                conn,
                "select *, 'planned' as state, null::date as send_on from campaign_plan where customer_id = $c",
                c=recipient_id,
            ).to_dicts()
        if table_exists(conn, "campaign_release_list"):
            rows += query(
                conn,
                "select l.*, r.state, m.removed_on, m.reason as removal_reason from campaign_release_list l "
                "join campaign_releases r using (campaign_id) left join campaign_removals m "
                "on m.campaign_id = l.campaign_id and m.customer_id = l.customer_id where l.customer_id = $c",
                c=recipient_id,
            ).to_dicts()
        for r in sorted(rows, key=lambda r: r["campaign_id"]):
            text = STATUS_TEXT[r["status"]]
            if r["status"] != "left_out":
                text += f", channel {r['channel']}"
            else:
                text += f": {r['reason']}" + (f" ({r['detail']})" if r.get("detail") else "")
            if r.get("removal_reason"):
                text = f"removed on {r['removed_on']}: {r['removal_reason']} (was {text})"
            lines.append(f"    {r['campaign_id']} ({r['state']}): {text}")
        if len(lines) == 1:
            lines.append("    none (in no campaign's targeted people)")
        newsletter = (
            query(
                conn,
                "select state, occurred_at from consent_state where customer_id = $c and purpose = 'newsletter' "
                "order by occurred_at desc limit 1",
                c=recipient_id,
            ).to_dicts()
            if table_exists(conn, "consent_state")
            else []
        )
    finally:
        conn.close()
    if newsletter:
        n = newsletter[0]
        lines.append(
            f"  newsletter: {'subscribed' if n['state'] == 'granted' else 'not subscribed'} "
            f"(latest event {n['state']} at {n['occurred_at']}; customer communication, outside the cap)"
        )
    else:
        lines.append("  newsletter: not subscribed (no newsletter event)")
    return lines
