"""Who a campaign will contact, on which channel, and why everyone else is left out.

The planner never decides who *may* be contacted: that is the day's audiences, whose every rule, fail
safe and evidence apply unchanged. It reads them recipient-neutrally (a customer or a prospect is a
`recipient_id` with a `recipient_type`) and decides, for one brief:

1. the people the brief targets: customers narrowed by its segments and filters (customers only: a
   prospect has no segment, contract or invoice), and every known prospect when it reaches prospects;
2. one channel per person: the first of the brief's `channels` whose audience holds them;
3. the cap: the person is left out (`frequency_cap`) if this contact would put more than the cap in
   any window (`models.campaign_cap.over_cap`), counting sent and released contacts;
4. the control group: a keyed-hash share of the rest, held out (`models.campaign_control`);
5. `max_recipients`: the treated people with the lowest draws are kept.

Every targeted person gets exactly one row: `treated` (with the channel), `control` (with the
channel they would have had) or `left_out` (with the reason and, for `not_in_audience`, every
exclusion reason per channel).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from data_contracts.campaigns import BriefError, CampaignBrief
from models.campaign_cap import over_cap
from models.campaign_control import draws

#: why a targeted person gets no contact from this campaign
LEFT_OUT_REASONS: tuple[str, ...] = ("not_in_audience", "frequency_cap", "max_recipients")
#: why a released person was removed before send_on (besides the audiences' own exclusion reasons)
REMOVAL_REASONS: tuple[str, ...] = ("erased", "profiling_objection", "no_segment", "left_audience")
STATUSES: tuple[str, ...] = ("treated", "control", "left_out")

PLAN_SCHEMA: dict[str, pl.DataType] = {
    "campaign_id": pl.String(),
    "recipient_id": pl.String(),
    "recipient_type": pl.String(),
    "status": pl.String(),
    "channel": pl.String(),
    "reason": pl.String(),
    "detail": pl.String(),
    "planned_on": pl.Date(),
}


class ProspectsUnavailable(BriefError):
    """The brief reaches prospects, but no prospect audiences are published."""


@dataclass(frozen=True)
class CampaignPopulation:
    """Who the day's audiences let in, per channel, and who they keep out and why.

    `reachable[channel]`: recipient_id, recipient_type of the channel's audience (customers and, when
    published, prospects). `exclusions`: recipient_id, channel, reason. `customers`: one profile row per
    customer (`customer_profiles`). `prospects`: prospect_id of every prospect the prospect audiences know,
    or None when they are not published."""

    reachable: dict[str, pl.DataFrame]
    exclusions: pl.DataFrame
    customers: pl.DataFrame
    prospects: pl.DataFrame | None = None


def customer_profiles(
    customers: pl.DataFrame, contracts: pl.DataFrame, invoices: pl.DataFrame, segments: pl.DataFrame, day: dt.date
) -> pl.DataFrame:
    """What a brief's segments and filters read, one row per customer: segment, language, the types,
    products and sites of the contracts in force on D, and whether an unpaid invoice was reminded."""
    active = contracts.filter(
        (pl.col("start_date") <= day) & (pl.col("end_date").is_null() | (pl.col("end_date") >= day))
    )
    per_customer = active.group_by("customer_id").agg(
        pl.col("contract_type").unique().alias("contract_types"),
        pl.col("product_code").unique().alias("product_codes"),
        pl.col("site_type").unique().alias("site_types"),
    )
    reminded = (
        invoices.filter(pl.col("paid_on").is_null() & (pl.col("reminders") > 0))
        .select("customer_id")
        .unique()
        .with_columns(pl.lit(True).alias("open_reminders"))
    )
    return (
        customers.select(pl.col("customer_id").cast(pl.String), "language")
        .join(segments.select(pl.col("customer_id").cast(pl.String), "segment_id"), on="customer_id", how="left")
        .join(per_customer, on="customer_id", how="left")
        .join(reminded, on="customer_id", how="left")
        .with_columns(pl.col("open_reminders").fill_null(False))
    )


def targeted_customers(brief: CampaignBrief, profiles: pl.DataFrame) -> pl.DataFrame:
    """The customers the brief's segments and filters select."""
    f = brief.filters
    keep = pl.lit(True)
    if brief.segments is not None:
        keep &= pl.col("segment_id").is_in(list(brief.segments))  # no segment (objected): never in
    if f.language is not None:
        keep &= pl.col("language").is_in(list(f.language))
    for column, wanted in (
        ("contract_types", f.contract_type),
        ("product_codes", f.product_code),
        ("site_types", f.site_type),
    ):
        if wanted is not None:
            keep &= pl.col(column).list.set_intersection(list(wanted)).list.len().fill_null(0) > 0
    if f.no_open_reminders:
        keep &= ~pl.col("open_reminders")
    return profiles.filter(keep).select(
        pl.col("customer_id").alias("recipient_id"), pl.lit("customer").alias("recipient_type")
    )


def targeted(brief: CampaignBrief, population: CampaignPopulation) -> pl.DataFrame:
    parts = []
    if brief.reaches_customers:
        parts.append(targeted_customers(brief, population.customers))
    if brief.reaches_prospects:
        if population.prospects is None:
            raise ProspectsUnavailable(
                f"campaign {brief.campaign_id}: key audience: {brief.audience!r} reaches prospects, but prospect "
                "audiences are not available (no prospect_audience_* tables are published); expected customers"
            )
        parts.append(
            population.prospects.select(
                pl.col("prospect_id").cast(pl.String).alias("recipient_id"), pl.lit("prospect").alias("recipient_type")
            )
        )
    return pl.concat(parts).unique("recipient_id", keep="first")


def _channel_choice(brief: CampaignBrief, people: pl.DataFrame, reachable: dict[str, pl.DataFrame]) -> pl.DataFrame:
    ranked = pl.concat(
        [
            reachable[ch]
            .select(pl.col("recipient_id").cast(pl.String))
            .unique()
            .with_columns(pl.lit(rank).alias("_rank"), pl.lit(ch).alias("channel"))
            for rank, ch in enumerate(brief.channels)
        ]
    )
    first = ranked.sort("_rank").unique("recipient_id", keep="first").drop("_rank")
    return people.join(first, on="recipient_id", how="left")


def _exclusion_detail(brief: CampaignBrief, exclusions: pl.DataFrame) -> pl.DataFrame:
    """Per person: every reason each of the brief's channels keeps them out, "email: a, b; letter: c"."""
    order = {ch: i for i, ch in enumerate(brief.channels)}
    mine = exclusions.filter(pl.col("channel").is_in(list(brief.channels))).with_columns(
        pl.col("channel").replace_strict(order, return_dtype=pl.Int64).alias("_rank")
    )
    per_channel = (
        mine.group_by("recipient_id", "channel", "_rank")
        .agg(pl.col("reason").unique().sort().str.join(", "))
        .sort("recipient_id", "_rank")
        .select("recipient_id", (pl.col("channel") + ": " + pl.col("reason")).alias("part"))
    )
    return per_channel.group_by("recipient_id", maintain_order=True).agg(pl.col("part").str.join("; ").alias("detail"))


def plan_campaign(
    brief: CampaignBrief,
    population: CampaignPopulation,
    committed: pl.DataFrame,
    *,
    cap: int,
    window_days: int,
    key: bytes,
    day: dt.date,
) -> pl.DataFrame:
    """One row per targeted person (PLAN_SCHEMA). `committed`: the contacts that count toward the cap
    (`models.campaign_cap.committed_contacts`), without this campaign's own."""
    people = _channel_choice(brief, targeted(brief, population), population.reachable)
    people = people.with_columns(draws(key, brief.campaign_id, people["recipient_id"]).alias("_draw"))
    reachable = people.filter(pl.col("channel").is_not_null())
    capped = over_cap(reachable["recipient_id"], brief.send_on, committed, cap=cap, window_days=window_days)
    status = (
        pl.when(pl.col("channel").is_null())
        .then(pl.lit("left_out"))
        .when(pl.col("recipient_id").is_in(list(capped)))
        .then(pl.lit("left_out"))
        .when(pl.col("_draw") < brief.control_share)
        .then(pl.lit("control"))
        .otherwise(pl.lit("treated"))
    )
    reason = (
        pl.when(pl.col("channel").is_null())
        .then(pl.lit("not_in_audience"))
        .when(pl.col("recipient_id").is_in(list(capped)))
        .then(pl.lit("frequency_cap"))
        .otherwise(pl.lit(None, pl.String))
    )
    people = people.with_columns(status.alias("status"), reason.alias("reason"))
    if brief.max_recipients is not None:
        rank = pl.col("_draw").rank("ordinal").over(pl.col("status"))
        over = (pl.col("status") == "treated") & (rank > brief.max_recipients)
        people = people.with_columns(
            pl.when(over).then(pl.lit("left_out")).otherwise(pl.col("status")).alias("status"),
            pl.when(over).then(pl.lit("max_recipients")).otherwise(pl.col("reason")).alias("reason"),
        )
    detail = _exclusion_detail(brief, population.exclusions)
    return (
        people.join(detail, on="recipient_id", how="left")
        .with_columns(
            pl.when(pl.col("reason") == "not_in_audience").then(pl.col("detail")).otherwise(None).alias("detail"),
            # a left-out person gets no channel: only treated and control rows name one
            pl.when(pl.col("status") == "left_out").then(None).otherwise(pl.col("channel")).alias("channel"),
            pl.lit(brief.campaign_id).alias("campaign_id"),
            pl.lit(day).alias("planned_on"),
        )
        .select(PLAN_SCHEMA.keys())
        .cast(PLAN_SCHEMA)
        .sort("recipient_id")
    )


def recheck_at_release(
    plan: pl.DataFrame, send_on: dt.date, committed: pl.DataFrame, *, cap: int, window_days: int
) -> pl.DataFrame:
    """The plan as it may be frozen now: a campaign released since the plan was made may have taken a
    treated person's last contact in some window; that person is left out (`frequency_cap`)."""
    treated = plan.filter(pl.col("status") == "treated")["recipient_id"]
    capped = list(over_cap(treated, send_on, committed, cap=cap, window_days=window_days))
    hit = (pl.col("status") == "treated") & pl.col("recipient_id").is_in(capped)
    return plan.with_columns(
        pl.when(hit).then(pl.lit("left_out")).otherwise(pl.col("status")).alias("status"),
        pl.when(hit).then(None).otherwise(pl.col("channel")).alias("channel"),
        pl.when(hit).then(pl.lit("frequency_cap")).otherwise(pl.col("reason")).alias("reason"),
    )


def removals(
    brief: CampaignBrief,
    released: pl.DataFrame,
    population: CampaignPopulation,
    day: dt.date,
    objectors: set[str] | frozenset[str] = frozenset(),
) -> pl.DataFrame:
    """The released people (treated and control alike, so the groups stay comparable) who must be
    removed on D, before send_on: their channel's audience no longer holds them. The reason is every
    exclusion reason of that channel, or `erased` when no audience knows them any more, or, for a
    segment campaign, `profiling_objection` / `no_segment`. `released`: the current list (recipient_id,
    recipient_type, status, channel) without earlier removals. Returns recipient_id, reason."""
    schema = {"recipient_id": pl.String, "reason": pl.String}
    if day >= brief.send_on or released.height == 0:
        return pl.DataFrame(schema=schema)
    reach = pl.concat(
        [
            population.reachable[ch].select(pl.col("recipient_id").cast(pl.String), pl.lit(ch).alias("channel"))
            for ch in population.reachable
        ]
    ).unique()
    active = released.filter(pl.col("status").is_in(["treated", "control"])).select(
        "recipient_id", "recipient_type", "channel"
    )
    gone = active.join(reach, on=["recipient_id", "channel"], how="anti")
    known = pl.concat(
        [reach.select("recipient_id"), population.exclusions.select(pl.col("recipient_id").cast(pl.String))]
    ).unique()
    reasons = population.exclusions.group_by("recipient_id", "channel").agg(
        pl.col("reason").unique().sort().str.join(", ").alias("reason")
    )
    out = (
        gone.join(reasons, on=["recipient_id", "channel"], how="left")
        .join(known.with_columns(pl.lit(True).alias("_known")), on="recipient_id", how="left")
        .with_columns(
            pl.when(pl.col("reason").is_not_null())
            .then(pl.col("reason"))
            .when(pl.col("_known").is_null())
            .then(pl.lit("erased"))
            .otherwise(pl.lit("left_audience"))
            .alias("reason")
        )
        .select("recipient_id", "reason")
    )
    if brief.segments is not None:
        segmented = population.customers.filter(pl.col("segment_id").is_not_null()).select(
            pl.col("customer_id").alias("recipient_id")
        )
        lost = (
            active.filter(pl.col("recipient_type") == "customer")
            .join(segmented, on="recipient_id", how="anti")
            .join(out, on="recipient_id", how="anti")
            .select(
                "recipient_id",
                pl.when(pl.col("recipient_id").is_in(list(objectors)))
                .then(pl.lit("profiling_objection"))
                .otherwise(pl.lit("no_segment"))
                .alias("reason"),
            )
        )
        out = pl.concat([out, lost])
    return out.cast(schema).sort("recipient_id")


def exclusions_per_reason(rows: pl.DataFrame) -> dict[str, int]:
    """People left out as `not_in_audience`, per audience exclusion reason on any of the brief's channels
    (a person kept out of email for consent_missing and of letter for asml_mail counts under both)."""
    detail = rows.filter(pl.col("reason") == "not_in_audience").select("recipient_id", "detail").drop_nulls()
    if detail.height == 0:
        return {}
    reasons = (
        detail.with_columns(pl.col("detail").str.split("; "))
        .explode("detail")
        .with_columns(pl.col("detail").str.split(": ").list.last().str.split(", "))
        .explode("detail")
        .unique(["recipient_id", "detail"])
    )
    return dict(sorted(reasons.group_by("detail").len().rows()))
