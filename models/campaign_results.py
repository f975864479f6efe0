"""Did the campaign work? Conversions of the treated and the control group, the lift and its 95 % CI.

A conversion is a contract with the brief's `offer_product` that starts in the response window
[send_on, send_on + response_days]. The lift is the difference of the two conversion rates, in
percentage points. Its interval is Newcombe's hybrid score interval (method 10 of Newcombe 1998),
built from the Wilson intervals of each rate that scipy's `binomtest(...).proportion_ci` gives: unlike
the plain normal (Wald) interval it stays inside [-1, 1] and behaves at 0 or a handful of conversions,
which is what a small campaign's control group usually has.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import polars as pl
from scipy.stats import binomtest

from data_contracts.campaigns import CampaignBrief

RESULT_SCHEMA = {
    "campaign_id": pl.String,
    "group": pl.String,
    "recipients": pl.Int64,
    "conversions": pl.Int64,
    "rate": pl.Float64,
    "rate_ci_low": pl.Float64,
    "rate_ci_high": pl.Float64,
}


@dataclass(frozen=True)
class Lift:
    treated: int
    treated_conversions: int
    control: int
    control_conversions: int
    lift: float | None
    ci_low: float | None
    ci_high: float | None


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def lift_with_ci(k1: int, n1: int, k0: int, n0: int, confidence: float = 0.95) -> tuple[float, float, float] | None:
    """Treated rate minus control rate and its Newcombe interval; None when a group is empty."""
    if n1 == 0 or n0 == 0:
        return None
    p1, p0 = k1 / n1, k0 / n0
    l1, u1 = wilson(k1, n1, confidence)
    l0, u0 = wilson(k0, n0, confidence)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return d, low, high


def conversions(brief: CampaignBrief, groups: pl.DataFrame, contracts: pl.DataFrame) -> pl.DataFrame:
    """Per group (treated, control): recipients, conversions and the rate with its Wilson interval.
    `groups`: recipient_id, status (and recipient_type) of the released list as it stands.

    Only customer recipients are measured: a prospect who converts does so under a new customer id,
    and the prospect record is erased once it matches that customer, so no link is kept to count it
    by. Counting prospects as never converting would understate the lift; they are left out of both
    groups instead, and `prospects_not_measured` says how many."""
    if "recipient_type" in groups.columns:
        groups = groups.filter(pl.col("recipient_type") == "customer")
    converted = (
        contracts.filter(
            (pl.col("product_code") == brief.offer_product)
            & pl.col("start_date").is_between(brief.send_on, brief.response_ends_on)
        )
        .select(pl.col("customer_id").alias("recipient_id"))
        .unique()
        .with_columns(pl.lit(True).alias("_converted"))
    )
    rows = []
    for group in ("treated", "control"):
        members = groups.filter(pl.col("status") == group).select("recipient_id").unique()
        n = members.height
        k = members.join(converted, on="recipient_id", how="semi").height
        low, high = wilson(k, n)
        rows.append(
            {
                "campaign_id": brief.campaign_id,
                "group": group,
                "recipients": n,
                "conversions": k,
                "rate": k / n if n else None,
                "rate_ci_low": None if n == 0 else low,
                "rate_ci_high": None if n == 0 else high,
            }
        )
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


def prospects_not_measured(groups: pl.DataFrame) -> int:
    """Treated and control prospects, whom `conversions` cannot measure."""
    if "recipient_type" not in groups.columns:
        return 0
    return groups.filter(
        (pl.col("recipient_type") == "prospect") & pl.col("status").is_in(["treated", "control"])
    ).height


def lift(per_group: pl.DataFrame) -> Lift:
    g = {r["group"]: r for r in per_group.to_dicts()}
    t, c = g["treated"], g["control"]
    est = lift_with_ci(t["conversions"], t["recipients"], c["conversions"], c["recipients"])
    return Lift(
        t["recipients"],
        t["conversions"],
        c["recipients"],
        c["conversions"],
        *(est if est is not None else (None, None, None)),
    )


def plot_lift(campaign_id: str, per_group: pl.DataFrame, result: Lift) -> bytes:
    """Conversion rates of both groups with their 95 % intervals, and the lift in the title (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = per_group.to_dicts()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    rates = [100 * (r["rate"] or 0.0) for r in rows]
    errors = [
        [100 * ((r["rate"] or 0) - (r["rate_ci_low"] or 0)) for r in rows],
        [100 * ((r["rate_ci_high"] or 0) - (r["rate"] or 0)) for r in rows],
    ]
    ax.bar(
        [f"{r['group']}\n(n={r['recipients']})" for r in rows], rates, yerr=errors, capsize=6, color=["#2a7", "#999"]
    )
    ax.set_ylabel("conversion rate, %")
    if result.lift is not None:
        ax.set_title(
            f"{campaign_id}: lift {100 * result.lift:+.2f} pp "
            f"(95 % CI {100 * result.ci_low:+.2f} … {100 * result.ci_high:+.2f})",
            fontsize=9,
        )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
