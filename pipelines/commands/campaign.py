"""`lupa campaign release ID` and `lupa campaign cancel ID`: a marketer's decisions on a planned campaign.

Release freezes the list the last daily run planned, after re-checking the cap against every campaign
released since (whoever a later release filled up is left out, `frequency_cap`), and writes its send
lists at once. From then on its contacts count toward the cap, and the list only shrinks. Cancel gives
the contacts back: the list stays, marked cancelled, for the record, and its send lists are removed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from data_contracts.vocabulary import HELSINKI
from pipelines.commands import iso_date
from pipelines.settings import load_settings


def _today() -> dt.date:
    return dt.datetime.now(HELSINKI).date()


def cmd_release(args: argparse.Namespace) -> int:
    import polars as pl

    from assets.campaigns import store
    from assets.campaigns.assets import campaign_lists, cap_of
    from assets.campaigns.exports import write_lists
    from assets.campaigns.population import contact_history, published_day
    from assets.storage.mart import published_as_of
    from data_contracts.policy import load_policy
    from models.campaign_cap import committed_contacts, sent_contacts
    from models.campaign_plan import recheck_at_release
    from pipelines.definitions import storage_resource

    storage = storage_resource(load_settings())
    policy = load_policy()
    cap, window, kind = cap_of(policy)
    sent = sent_contacts(contact_history(storage), kind)

    def freeze(brief, plan, conn):
        others = store.released_contacts(conn, except_campaign=brief.campaign_id)
        return recheck_at_release(plan, brief.send_on, committed_contacts(sent, others), cap=cap, window_days=window)

    try:
        brief, frozen = store.release(storage, args.campaign_id, _today(), freeze)
    except store.CampaignError as exc:
        print(f"lupa campaign release: {exc}", file=sys.stderr)
        return 1
    counts = dict(frozen.group_by("status").len().rows())
    capped = frozen.filter(pl.col("reason") == "frequency_cap").height
    print(
        f"released {brief.campaign_id} for {brief.send_on}: {counts.get('treated', 0)} to contact, "
        f"{counts.get('control', 0)} in the control group, {counts.get('left_out', 0)} left out "
        f"({capped} for the frequency cap); its contacts now count toward the cap"
    )
    as_of = published_as_of(storage.root)
    if as_of is not None:
        day = published_day(storage, as_of)
        lists = campaign_lists(policy, brief, frozen.filter(pl.col("status") != "left_out"), day)
        folder = write_lists(storage.root, brief.campaign_id, lists, day.safety_ban_ids)
        print(f"send lists (CSV and XLSX per channel): {folder}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from assets.campaigns import store
    from assets.campaigns.exports import remove_lists
    from pipelines.definitions import storage_resource

    storage = storage_resource(load_settings())
    try:
        brief = store.cancel(storage, args.campaign_id, _today())
    except store.CampaignError as exc:
        print(f"lupa campaign cancel: {exc}", file=sys.stderr)
        return 1
    remove_lists(storage.root, brief.campaign_id)
    print(f"cancelled {brief.campaign_id}: its contacts no longer count toward the cap, and its send lists are removed")
    return 0


def cmd_demo_briefs(args: argparse.Namespace) -> int:
    from pipelines.demo_briefs import write_demo_briefs

    settings = load_settings()
    prospects = (settings.landing_dir / "prospects").is_dir()
    for path in write_demo_briefs(settings.campaigns, args.end, prospects):
        print(f"wrote example campaign brief {path}")
    if not prospects:
        print("no prospects in the landing zone: the prospect brief is written once they exist")
    return 0


def campaign_summary(storage) -> list[str]:
    """The campaigns of the last daily run: state, list size per channel, control group, who is left out."""
    import polars as pl

    from assets.campaigns import store
    from assets.storage.zones import query, table_exists
    from models.campaign_plan import exclusions_per_reason

    lines = ["", "Campaigns (briefs in the campaigns folder; release with lupa campaign release ID)"]
    if not storage.warehouse_path.exists():
        return lines + ["  none planned yet"]
    with storage.warehouse(read_only=True) as conn:
        if not table_exists(conn, "campaign_briefs"):
            return lines + ["  none planned yet"]
        briefs = query(conn, "select * from campaign_briefs order by campaign_id, file")
        plans = query(conn, "select * from campaign_plan")
        released = query(conn, "select * from campaign_releases") if table_exists(conn, "campaign_releases") else None
        lists = store.current_lists(conn) if released is not None and released.height else None
    state = dict(released.select("campaign_id", "state").rows()) if released is not None else {}
    for b in briefs.to_dicts():
        if not b["valid"]:
            lines.append(f"  {b['file']}: refused: {b['error']}")
            continue
        cid = b["campaign_id"]
        rows = (
            store.to_stored(lists.filter(pl.col("campaign_id") == cid))
            if cid in state and lists is not None
            else plans.filter(pl.col("campaign_id") == cid)
        )
        treated = rows.filter(pl.col("status") == "treated")
        per_channel = ", ".join(f"{c} {n:,}" for c, n in sorted(treated.group_by("channel").len().rows())) or "nobody"
        left = rows.filter(pl.col("status") == "left_out").group_by("reason").len().sort("reason").rows()
        lines.append(f"  {cid} ({state.get(cid, 'planned')}, send_on {store.brief_from_json(b['brief_json']).send_on})")
        lines.append(f"    list: {per_channel}; control group {rows.filter(pl.col('status') == 'control').height:,}")
        lines.append("    left out: " + (", ".join(f"{r} {n:,}" for r, n in left) or "nobody"))
        per_reason = exclusions_per_reason(store.from_stored(rows))
        if per_reason:
            lines.append("    not in the audience for: " + ", ".join(f"{r} {n:,}" for r, n in per_reason.items()))
    return lines


def add_parser(subparsers) -> None:
    campaign = subparsers.add_parser("campaign", help="release or cancel a planned campaign")
    sub = campaign.add_subparsers(dest="campaign_command", required=True)
    release = sub.add_parser("release", help="freeze the planned list; its contacts count toward the cap from now on")
    release.add_argument("campaign_id")
    release.set_defaults(fn=cmd_release)
    cancel = sub.add_parser("cancel", help="cancel a released campaign: its contacts no longer count toward the cap")
    cancel.add_argument("campaign_id")
    cancel.set_defaults(fn=cmd_cancel)
    demo = sub.add_parser("demo-briefs", help="write the demo's example briefs into the campaigns folder (if missing)")
    demo.add_argument("--end", type=iso_date, default=dt.date(2026, 11, 24), help="the demo's last business day")
    demo.set_defaults(fn=cmd_demo_briefs)
