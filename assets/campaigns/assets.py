"""Campaigns layer: every brief in the campaigns folder planned on the day's published audiences.

`campaigns` runs in the daily run after the mart is published. For each brief it
- re-plans a campaign not yet released (who, on which channel, the control group, who is left out
  and why), against the contacts already sent and those of every released campaign;
- shrinks a released list: whoever withdrew, objected, was erased or died before send_on is removed,
  with the reason;
- writes the send lists of released campaigns (CSV and XLSX per channel);
- reports results once the response window has passed, and reconciles the contact history.

Each campaign is a partition of the `campaign` asset (dynamic partitions named by campaign_id, added
by this run), whose materialization carries its list size per channel, its left-out people per
reason, its control group size and, when due, the lift with its plot. Releasing and cancelling are
`lupa campaign release|cancel ID` (`pipelines/commands/campaign.py`).
"""

import base64
import datetime as dt

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetSpec,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.campaigns import store
from assets.campaigns.exports import remove_lists, write_lists
from assets.campaigns.population import PublishedDay, contact_history, contracts, published_day
from assets.common.calendar import run_business_day
from assets.common.conventions import OWNERS, data_errors_fail_cleanly, io_retry
from assets.common.reporting import counts_table
from assets.common.resources import PolicyResource
from assets.storage.mart import published_as_of
from assets.storage.zones import DUCKDB_POOL, LupaStorage, query
from data_contracts.audiences import CONTACT_FIELDS
from data_contracts.campaigns import BriefError, CampaignBrief, brief_files, load_briefs
from data_contracts.policy import MarketingPolicy
from models.campaign_cap import committed_contacts, sent_contacts
from models.campaign_plan import exclusions_per_reason, plan_campaign, removals
from models.campaign_reconciliation import reconcile
from models.campaign_results import RESULT_SCHEMA, conversions, lift, plot_lift, prospects_not_measured
from models.report import reach_table_html, with_reach
from models.send_lists import send_list

CAMPAIGN_PARTITIONS = DynamicPartitionsDefinition(name="campaigns")

#: Declared here, in the layer that records it: one partition per campaign, materialized by `campaigns`.
campaign = AssetSpec(
    "campaign",
    group_name="campaigns",
    owners=OWNERS,
    kinds={"duckdb"},
    deps=["campaigns"],
    partitions_def=CAMPAIGN_PARTITIONS,
    description=(
        "One campaign (partition = campaign_id): its state, list size per channel, control group, who is left "
        "out per reason, removals since release and, after the response window, the lift. Recorded by `campaigns`."
    ),
)


def cap_of(policy: MarketingPolicy) -> tuple[int, int, str]:
    rule = policy.global_exclusions.frequency_cap
    if rule is None:  # the policy switched the cap off: nothing is ever left out for it
        return 10**9, 365, "marketing"
    return rule.cap, rule.window_days, rule.kind


def campaign_lists(
    policy: MarketingPolicy, brief: CampaignBrief, rows: pl.DataFrame, day_data: PublishedDay
) -> dict[str, pl.DataFrame]:
    """The send list of each of the brief's channels: the treated people on it, with the contact data the
    channel needs from the day's audience row (nobody the audience no longer holds)."""
    out = {}
    for ch in brief.channels:
        recipients = rows.filter((pl.col("status") == "treated") & (pl.col("channel") == ch))
        out[ch] = send_list(
            recipients,
            day_data.contacts[ch],
            CONTACT_FIELDS[policy.channel(ch).contact],
            campaign_name=brief.name.model_dump(),
            catalogue=day_data.catalogue,
            safety_ban_ids=day_data.safety_ban_ids,
        )
    return out


def _sizes(rows: pl.DataFrame) -> dict[str, object]:
    treated = rows.filter(pl.col("status") == "treated")
    return {
        "exclusions_per_reason": exclusions_per_reason(rows),
        "list_size_per_channel": dict(sorted(treated.group_by("channel").len().rows())),
        "control_group": rows.filter(pl.col("status") == "control").height,
        "left_out_per_reason": dict(
            sorted(rows.filter(pl.col("status") == "left_out").group_by("reason").len().rows())
        ),
    }


@asset(
    group_name="campaigns",
    owners=OWNERS,
    kinds={"duckdb", "polars"},
    pool=DUCKDB_POOL,
    deps=["marketing_mart", "contact_history", "contracts", "invoices", "consent_state"],
    retry_policy=io_retry,
    description=(
        "Every campaign brief (LUPA_CAMPAIGNS_DIR) planned on the published audiences of day D: one channel per "
        "person in the brief's order, the frequency cap over every 365-day window (sent and released contacts), a "
        "keyed-hash control group and every left-out person's reason; released lists shrink and get their send "
        "lists (CSV and XLSX); results and reconciliation once due."
    ),
)
@data_errors_fail_cleanly
def campaigns(context: AssetExecutionContext, storage: LupaStorage, policy: PolicyResource) -> MaterializeResult:
    day = run_business_day(context)
    policy = policy.load()
    published = published_as_of(storage.root)
    if published != day:
        context.log.warning(
            f"campaigns for {day.isoformat()} not planned: the published mart is as of "
            f"{published.isoformat() if published else 'nothing'}; plans are made on the day's own audiences"
        )
        return MaterializeResult(metadata={"business_day": day.isoformat(), "planned": False})
    outcome = run_campaigns(storage, policy, day, store.campaign_key())
    known = set(context.instance.get_dynamic_partitions(CAMPAIGN_PARTITIONS.name))
    new = sorted(set(outcome["per_campaign"]) - known)
    if new:
        context.instance.add_dynamic_partitions(CAMPAIGN_PARTITIONS.name, new)
    for cid, meta in outcome["per_campaign"].items():
        context.log_event(AssetMaterialization(asset_key="campaign", partition=cid, metadata=_metadata(meta)))
    invalid = outcome["invalid"]
    for item in invalid:
        context.log.warning(item["error"])
    return MaterializeResult(
        metadata={
            "business_day": day.isoformat(),
            "planned": True,
            "campaigns": MetadataValue.md(_overview(outcome["per_campaign"])),
            "invalid_briefs": MetadataValue.md("\n".join(f"- {i['error']}" for i in invalid) or "none"),
            "reconciliation": counts_table(outcome["reconciliation"], "finding", "rows"),
        }
    )


def _metadata(meta: dict) -> dict:
    out: dict = {
        "state": meta["state"],
        "send_on": meta["send_on"],
        "list_size_per_channel": MetadataValue.json(meta["list_size_per_channel"]),
        "control_group": meta["control_group"],
        "left_out_per_reason": MetadataValue.json(meta["left_out_per_reason"]),
        "exclusions_per_reason": MetadataValue.json(meta["exclusions_per_reason"]),
    }
    if "removed_per_reason" in meta:
        out["removed_per_reason"] = MetadataValue.json(meta["removed_per_reason"])
    if "exports" in meta:
        out["exports"] = MetadataValue.path(meta["exports"])
    if "lift" in meta:
        out["lift_pp"] = meta["lift"]
        out["lift_ci95_pp"] = MetadataValue.json(meta["lift_ci"])
        out["conversions"] = MetadataValue.json(meta["conversions"])
        out["lift_plot"] = MetadataValue.md(f"![lift](data:image/png;base64,{meta['plot']})")
    elif "results" in meta:
        out["results"] = meta["results"]
    return out


def _overview(per_campaign: dict[str, dict]) -> str:
    lines = ["| campaign | state | send_on | list per channel | control | left out |", "|---|---|---|---|---|---|"]
    for cid, m in sorted(per_campaign.items()):
        lists = ", ".join(f"{k} {v}" for k, v in m["list_size_per_channel"].items()) or "none"
        left = ", ".join(f"{k} {v}" for k, v in m["left_out_per_reason"].items()) or "none"
        lines.append(f"| {cid} | {m['state']} | {m['send_on']} | {lists} | {m['control_group']} | {left} |")
    return "\n".join(lines) if per_campaign else "_no campaign briefs_"


def run_campaigns(storage: LupaStorage, policy: MarketingPolicy, day: dt.date, key: bytes) -> dict:
    """Plan, shrink, export, measure and reconcile every campaign for day D (counts only come back)."""
    cap, window, kind = cap_of(policy)
    valid, invalid = load_briefs(brief_files(storage.campaigns_path))
    day_data = published_day(storage, day)
    sent = sent_contacts(contact_history(storage), kind)
    with storage.warehouse() as conn:
        released_table = store.releases(conn)
    state = dict(zip(released_table["campaign_id"], released_table["state"], strict=True))
    released_briefs = {r["campaign_id"]: store.brief_from_json(r["brief_json"]) for r in released_table.to_dicts()}
    # released lists shrink first, so what they give back is free for the plans
    lists, all_removed = _shrink(storage, released_briefs, state, day_data, day)
    committed = committed_contacts(sent, lists.filter(pl.col("status") == "treated"))
    plans, brief_rows, per_campaign, invalid_out = {}, [], {}, []
    for file, brief in valid:
        cid = brief.campaign_id
        row = {"campaign_id": cid, "file": file, "valid": True, "error": None, "brief_json": store.brief_json(brief)}
        if cid not in state:
            try:
                plans[cid] = plan_campaign(
                    brief, day_data.population, committed, cap=cap, window_days=window, key=key, day=day
                )
                per_campaign[cid] = {"state": "planned", "send_on": brief.send_on.isoformat(), **_sizes(plans[cid])}
            except BriefError as exc:
                row |= {"valid": False, "error": f"{file}: {exc}"}
        brief_rows.append(row)
    for item in invalid:
        brief_rows.append(
            {
                "campaign_id": item.campaign_id,
                "file": item.file,
                "valid": False,
                "error": item.error,
                "brief_json": None,
            }
        )
    invalid_out = [{"file": r["file"], "error": r["error"]} for r in brief_rows if not r["valid"]]
    briefs_frame = pl.DataFrame([r | {"business_day": day} for r in brief_rows], schema=store.BRIEF_SCHEMA)
    results = []
    history_contracts = contracts(storage)
    for cid, brief in released_briefs.items():
        rows = lists.filter(pl.col("campaign_id") == cid)
        per_campaign[cid] = _released(
            storage, policy, brief, state[cid], rows, day_data, day, history_contracts, results
        )
        mine = all_removed.filter(pl.col("campaign_id") == cid)
        per_campaign[cid]["removed_per_reason"] = dict(sorted(mine.group_by("reason").len().rows()))
    findings = reconcile(sent, lists, sorted({*released_briefs, *(b.campaign_id for _, b in valid)}), day)
    _fill_reach(storage, day_data, day)
    with storage.warehouse() as conn:
        store.save_plans(conn, briefs_frame, plans)
        store.replace(conn, "campaign_results", pl.concat(results) if results else pl.DataFrame(schema=RESULT_SCHEMA))
        store.replace(conn, "campaign_reconciliation", store.to_stored(findings))
    return {
        "per_campaign": per_campaign,
        "invalid": invalid_out,
        "reconciliation": dict(sorted(findings.group_by("finding").len().rows())),
    }


def _fill_reach(storage: LupaStorage, day_data: PublishedDay, day: dt.date) -> None:
    """The segment report's segment x channel table: who the published audiences of D reach, per segment."""
    path = storage.reports_dir / "segment_report.html"
    if not path.exists() or day_data.catalogue is None:
        return
    customers = {
        ch: frame.filter(pl.col("recipient_type") == "customer").select(
            pl.col("recipient_id").alias("customer_id"), "segment_id"
        )
        for ch, frame in day_data.contacts.items()
        if "segment_id" in frame.columns
    }
    page = with_reach(path.read_text(encoding="utf-8"), reach_table_html(customers, day_data.catalogue, day))
    path.write_text(page, encoding="utf-8")


def _shrink(storage, released_briefs, state, day_data: PublishedDay, day: dt.date):
    """Remove from each released list whoever may no longer be contacted; returns the lists as they now
    stand and every removal so far (campaign_id, recipient_id, reason)."""
    with storage.warehouse() as conn:
        lists = store.current_lists(conn)
        for cid, brief in released_briefs.items():
            if state[cid] == store.RELEASED:
                mine = lists.filter(pl.col("campaign_id") == cid)
                store.record_removals(
                    conn, cid, day, removals(brief, mine, day_data.population, day, day_data.objectors)
                )
        lists = store.current_lists(conn)
        removed = store.from_stored(query(conn, "select campaign_id, customer_id, reason from campaign_removals"))
    return lists, removed


def _released(storage, policy, brief, state, rows, day_data, day, history_contracts, results) -> dict:
    """A released (or cancelled) campaign's send lists before send_on, and its results once due."""
    cid = brief.campaign_id
    meta = {"state": state, "send_on": brief.send_on.isoformat(), **_sizes(rows)}
    if state == store.CANCELLED:
        remove_lists(storage.root, cid)
        return meta
    if day < brief.send_on:
        lists = campaign_lists(policy, brief, rows, day_data)
        meta["exports"] = str(write_lists(storage.root, cid, lists, day_data.safety_ban_ids))
    if not brief.offer_product:
        return meta
    if day <= brief.response_ends_on:
        meta["results"] = f"due after {brief.response_ends_on.isoformat()}"
        return meta
    per_group = conversions(brief, rows, history_contracts)
    results.append(per_group)
    est = lift(per_group)
    meta["conversions"] = {
        g["group"]: {"recipients": g["recipients"], "conversions": g["conversions"]} for g in per_group.to_dicts()
    }
    if unmeasured := prospects_not_measured(rows):
        meta["prospects_not_measured"] = unmeasured
    if est.lift is not None:
        meta["lift"] = round(100 * est.lift, 3)
        meta["lift_ci"] = [round(100 * est.ci_low, 3), round(100 * est.ci_high, 3)]
        meta["plot"] = base64.b64encode(plot_lift(cid, per_group, est)).decode()
    return meta
