"""Plots and the HTML segment report a marketer can open: each segment's mean daily profile and
monthly profile, names and descriptions in three languages, sizes and how they moved, and the
scores behind the choice of k. Self-contained HTML (images inlined as base64); no customer-level
data appears in it, only segment aggregates."""

from __future__ import annotations

import base64
import html
import io
from datetime import date
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

SHARE_COLS = [f"share_h{h:02d}" for h in range(24)]
MONTH_LABELS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def segment_daily_profiles(features: pl.DataFrame, customer_segments: pl.DataFrame) -> pl.DataFrame:
    """segment_id, share_h00..share_h23: the mean of the members' normalised daily profiles."""
    return (
        features.select("customer_id", *SHARE_COLS)
        .join(customer_segments.select("customer_id", "segment_id"), on="customer_id", how="inner")
        .group_by("segment_id")
        .agg(pl.col(c).mean() for c in SHARE_COLS)
        .sort("segment_id")
    )


def segment_monthly_profiles(monthly: pl.DataFrame, customer_segments: pl.DataFrame) -> pl.DataFrame:
    """segment_id, month, share: the mean of the members' monthly shares of annual kWh (from
    `models.features.monthly_kwh_shares`)."""
    return (
        monthly.select("customer_id", "month", "share")
        .join(customer_segments.select("customer_id", "segment_id"), on="customer_id", how="inner")
        .group_by("segment_id", "month")
        .agg(pl.col("share").mean())
        .sort("segment_id", "month")
    )


def _labels(catalogue: pl.DataFrame | None, lang: str = "en") -> dict[int, str]:
    if catalogue is None:
        return {}
    return {int(r["segment_id"]): f"{r['segment_id']}: {r[f'name_{lang}']}" for r in catalogue.to_dicts()}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # fixed metadata so the same data gives the same bytes
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def plot_daily_profiles(profiles: pl.DataFrame, catalogue: pl.DataFrame | None = None, lang: str = "en") -> bytes:
    """PNG: one line per segment, the share of daily use in each local hour."""
    labels = _labels(catalogue, lang)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for row in profiles.sort("segment_id").to_dicts():
        sid = int(row["segment_id"])
        ax.plot(
            range(24), [100 * (row[c] or 0.0) for c in SHARE_COLS], marker="o", ms=3, label=labels.get(sid, str(sid))
        )
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("local hour (Europe/Helsinki)")
    ax.set_ylabel("% of daily use")
    ax.set_title("Mean daily profile by segment")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def plot_monthly_profiles(monthly: pl.DataFrame, catalogue: pl.DataFrame | None = None, lang: str = "en") -> bytes:
    """PNG: one line per segment, the share of annual use in each calendar month."""
    labels = _labels(catalogue, lang)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for (sid,), part in monthly.sort("segment_id", "month").group_by("segment_id", maintain_order=True):
        m = dict(zip(part["month"].to_list(), part["share"].to_list(), strict=True))
        ax.plot(
            range(1, 13),
            [100 * (m.get(i) or 0.0) for i in range(1, 13)],
            marker="o",
            ms=3,
            label=labels.get(int(sid), str(sid)),
        )
    ax.set_xticks(range(1, 13), MONTH_LABELS)
    ax.set_ylabel("% of annual use")
    ax.set_title("Monthly profile by segment")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def plot_segment_sizes(movement: pl.DataFrame, catalogue: pl.DataFrame | None = None) -> bytes:
    """PNG: current size per segment next to its previous size."""
    labels = _labels(catalogue)
    m = movement.filter(pl.col("status") != "retired").sort("segment_id")
    fig, ax = plt.subplots(figsize=(9, 3.5))
    x = range(m.height)
    ax.bar(
        [i - 0.2 for i in x], m["previous_size"].fill_null(0).to_list(), width=0.4, label="previous model", color="#bbb"
    )
    ax.bar([i + 0.2 for i in x], m["size"].to_list(), width=0.4, label="this model")
    ax.set_xticks(list(x), [labels.get(int(s), str(s)) for s in m["segment_id"]], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("customers")
    ax.legend(fontsize=8)
    return _png(fig)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def markdown_image(png: bytes, alt: str) -> str:
    """For Dagster markdown metadata."""
    return f"![{alt}]({png_data_uri(png)})"


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = []
    for r in rows:
        cells = []
        for key, _ in columns:
            v = r.get(key)
            if isinstance(v, float):
                v = f"{v:,.0f}" if v.is_integer() or abs(v) >= 100 else f"{v:,.3f}"
            cells.append(f"<td>{html.escape('' if v is None else str(v))}</td>")
        cls = ' class="chosen"' if r.get("chosen") else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


#: Every heading of the page in Finnish, Swedish and English (the marketers' three languages).
HEADINGS: dict[str, tuple[str, str, str]] = {
    "segments": ("Segmentit", "Segment", "Segments"),
    "reach": ("Tavoitettavissa tänään kanavittain", "Nåbara i dag per kanal", "Reachable today per channel"),
    "profile": ("Maksu- ja sopimusprofiili", "Betalnings- och avtalsprofil", "Payment and contract profile"),
    "daily": ("Keskimääräinen vuorokausiprofiili", "Genomsnittlig dygnsprofil", "Mean daily profile"),
    "monthly": ("Kuukausiprofiili", "Månadsprofil", "Monthly profile"),
    "sizes": ("Segmenttien koot", "Segmentens storlek", "Segment sizes"),
    "centroids": (
        "Segmenttien tunnusluvut (mediaanit)",
        "Segmentens nyckeltal (medianer)",
        "Key centroid features (segment medians)",
    ),
    "k": ("Segmenttien määrän valinta", "Val av antal segment", "Choice of k"),
}

#: Where the campaigns layer writes the segment x channel table once the day's audiences are published
#: (the segment model runs before the audiences exist).
REACH_START, REACH_END = "<!--reach-->", "<!--/reach-->"

#: Centroid features as rows (segments as columns, so the table fits the page), with short labels and units.
CENTROID_LABELS: dict[str, str] = {
    "annual_kwh": "kWh / v · år · yr",
    "winter_summer_ratio": "talvi/kesä · vinter/sommar · winter/summer",
    "night_share": "yö · natt · night",
    "weekday_daytime_share": "arkipäivä · vardag dag · weekday daytime",
    "evening_share": "ilta · kväll · evening",
    "weekday_weekend_ratio": "arki/viikonloppu · vardag/helg · weekday/weekend",
    "load_factor": "kuormituskerroin · lastfaktor · load factor",
    "base_load_kwh": "peruskuorma kWh · baslast kWh · base load kWh",
    "peak_hour": "huipputunti · topptimme · peak hour",
}


def heading(key: str, level: int = 2) -> str:
    fi, sv, en = HEADINGS[key]
    return f"<h{level}>{html.escape(fi)} / {html.escape(sv)} / {html.escape(en)}</h{level}>"


def segment_payment_contract_profile(features: pl.DataFrame, customer_segments: pl.DataFrame) -> pl.DataFrame:
    """Per segment: payment behaviour (late payments, reminders, collections in 12 months) and contracts
    (open-ended share, the most common product, median tenure). Aggregates only."""
    joined = features.join(customer_segments.select("customer_id", "segment_id"), on="customer_id", how="inner")
    cols = set(joined.columns)

    def mean_of(expr: pl.Expr, name: str, needed: str) -> pl.Expr:
        return expr.mean().alias(name) if needed in cols else pl.lit(None, pl.Float64).alias(name)

    return (
        joined.group_by("segment_id")
        .agg(
            pl.len().alias("customers"),
            mean_of(pl.col("late_share"), "late_share", "late_share"),
            mean_of((pl.col("reminders_12m") > 0).cast(pl.Float64), "with_reminders", "reminders_12m"),
            mean_of((pl.col("collections_12m") > 0).cast(pl.Float64), "in_collection", "collections_12m"),
            mean_of((pl.col("contract_type") == "open_ended").cast(pl.Float64), "open_ended", "contract_type"),
            (pl.col("product_code").drop_nulls().mode().sort().first() if "product_code" in cols else pl.lit(None))
            .cast(pl.String)
            .alias("top_product"),
            (pl.col("tenure_days").median() / 365.25 if "tenure_days" in cols else pl.lit(None))
            .cast(pl.Float64)
            .alias("tenure_years"),
        )
        .sort("segment_id")
    )


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * v:.0f} %"


def profile_table_html(profile: pl.DataFrame) -> str:
    head = [
        ("segment_id", "segmentti · segment"),
        ("customers", "asiakkaita · kunder · customers"),
        ("late_share", "myöhässä maksetut · sena betalningar · paid late"),
        ("with_reminders", "muistutuksia · påminnelser · reminded"),
        ("in_collection", "perinnässä · inkasso · collection"),
        ("open_ended", "toistaiseksi voimassa · tillsvidare · open-ended"),
        ("top_product", "yleisin tuote · vanligaste produkt · top product"),
        ("tenure_years", "asiakkuus v · kund år · tenure yrs"),
    ]
    rows = []
    for r in profile.to_dicts():
        rows.append(
            {
                **r,
                **{k: _pct(r[k]) for k in ("late_share", "with_reminders", "in_collection", "open_ended")},
                "tenure_years": "" if r["tenure_years"] is None else f"{r['tenure_years']:.1f}",
            }
        )
    return _table(rows, head)


def reach_table_html(audiences: dict[str, pl.DataFrame], catalogue: pl.DataFrame, as_of: date) -> str:
    """Segment x channel: how many of each segment the published audiences of D let in per channel (the
    frequency cap and every other rule applied), and how many on at least one channel."""
    channels = list(audiences)
    counts = {
        ch: dict(frame.group_by("segment_id").len().rows()) if frame.height else {} for ch, frame in audiences.items()
    }
    anyone = pl.concat([f.select("customer_id", "segment_id") for f in audiences.values()]).unique()
    any_counts = dict(anyone.group_by("segment_id").len().rows()) if anyone.height else {}
    rows = []
    for r in catalogue.sort("segment_id").to_dicts():
        sid = r["segment_id"]
        rows.append(
            {
                "segment": f"{sid}: {r['name_fi']} / {r['name_sv']} / {r['name_en']}",
                **{ch: counts[ch].get(sid, 0) for ch in channels},
                "any": any_counts.get(sid, 0),
            }
        )
    cols = [("segment", "segmentti · segment"), *((ch, ch) for ch in channels)]
    cols.append(("any", "jokin kanava · någon kanal · any channel"))
    note = (
        f"<p class='lang'>{as_of.isoformat()}: julkaistut yleisöt, taajuusraja huomioitu · publicerade målgrupper, "
        "frekvenstak tillämpat · published audiences, frequency cap applied</p>"
    )
    return heading("reach") + note + _table(rows, cols)


def with_reach(page: str, section: str) -> str:
    """The report with its reach section replaced (the markers stay, so the next day replaces it again)."""
    start, end = page.find(REACH_START), page.find(REACH_END)
    if start < 0 or end < start:
        return page
    return page[: start + len(REACH_START)] + section + page[end:]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}tr.chosen{background:#e8f4e8;font-weight:600}
.seg{border:1px solid #ddd;border-radius:6px;padding:0.6em 1em;margin:0.8em 0}.seg h3{margin:0.2em 0}
.lang{color:#555;font-size:13px}img{max-width:100%}
table.fit{table-layout:fixed;width:100%;font-size:12px}table.fit td,table.fit th{overflow-wrap:anywhere}
"""


def segment_report_html(
    catalogue: pl.DataFrame,
    movement: pl.DataFrame,
    candidates: list[dict[str, Any]],
    *,
    model_version: str,
    as_of: date,
    window: tuple[date, date],
    chosen_k: int,
    selection_rule: str,
    daily_png: bytes | None = None,
    monthly_png: bytes | None = None,
    sizes_png: bytes | None = None,
    profile: pl.DataFrame | None = None,
) -> str:
    """A self-contained HTML page. `catalogue` is segment_catalogue, `movement` the size movement,
    `candidates` the k scores (dicts with k, silhouette, stability, chosen)."""
    moved = {int(r["segment_id"]): r for r in movement.to_dicts()}
    total = int(catalogue["size"].sum()) if catalogue.height else 0
    parts = [
        "<!DOCTYPE html><html lang='fi'><head><meta charset='utf-8'>",
        f"<title>Lupa segments {html.escape(model_version)}</title><style>{_CSS}</style></head><body>",
        "<h1>Asiakassegmentit / Kundsegment / Customer segments</h1>",
        f"<p>Model <code>{html.escape(model_version)}</code>, run day {as_of.isoformat()}, "
        f"consumption window {window[0].isoformat()} – {window[1].isoformat()}, "
        f"{total:,} customers in {catalogue.height} segments.</p>",
        heading("segments"),
    ]
    for r in catalogue.sort("segment_id").to_dicts():
        sid = int(r["segment_id"])
        mv = moved.get(sid, {})
        prev = mv.get("previous_size")
        change = (
            "new segment" if prev is None else f"{(mv.get('change') or 0):+,} since the previous model (was {prev:,})"
        )
        share = 100 * r["size"] / total if total else 0.0
        parts.append(
            "<div class='seg'>"
            f"<h3>{sid}: {html.escape(r['name_fi'])}</h3>"
            f"<div class='lang'>sv: {html.escape(r['name_sv'])} · en: {html.escape(r['name_en'])}</div>"
            f"<p>{html.escape(r['description_fi'])}<br><span class='lang'>{html.escape(r['description_sv'])}<br>"
            f"{html.escape(r['description_en'])}</span></p>"
            f"<p>{r['size']:,} customers ({share:.1f} %), {html.escape(change)}.</p></div>"
        )
    retired = [r for r in movement.to_dicts() if r["status"] == "retired"]
    if retired:
        parts.append(
            "<p>Retired segments: "
            + ", ".join(f"{int(r['segment_id'])} (was {r['previous_size']:,})" for r in retired)
            + "</p>"
        )
    parts.append(
        f"{REACH_START}{heading('reach')}<p class='lang'>lasketaan, kun päivän yleisöt on julkaistu · räknas när "
        f"dagens målgrupper har publicerats · filled in once the day's audiences are published</p>{REACH_END}"
    )
    if profile is not None and profile.height:
        parts.append(heading("profile"))
        parts.append(profile_table_html(profile))
    for key, png in (("daily", daily_png), ("monthly", monthly_png), ("sizes", sizes_png)):
        if png:
            parts.append(f"{heading(key)}<img alt='{HEADINGS[key][2]}' src='{png_data_uri(png)}'>")
    parts.append(heading("centroids"))
    parts.append(centroid_table_html(catalogue))
    parts.append(f"{heading('k')}<p>Chosen k = {chosen_k}. Rule: {html.escape(selection_rule)}.</p>")
    parts.append(
        _table(
            candidates,
            [
                ("k", "k"),
                ("silhouette", "silhouette"),
                ("stability", "stability (mean ARI)"),
                ("stable", "stable"),
                ("chosen", "chosen"),
            ],
        )
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def centroid_table_html(catalogue: pl.DataFrame) -> str:
    """Features as rows and segments as columns, rounded to what a reader compares: it fits the page."""
    cat = catalogue.sort("segment_id")
    features = [c.removeprefix("centroid_") for c in cat.columns if c.startswith("centroid_")]
    head = "<th>tunnusluku · nyckeltal · feature</th>" + "".join(
        f"<th>{int(r['segment_id'])}: {html.escape(r['name_fi'])}</th>" for r in cat.to_dicts()
    )
    body = []
    for f in features:
        cells = []
        for v in cat[f"centroid_{f}"].to_list():
            if v is None or v != v:
                cells.append("<td></td>")
            elif f.endswith("_share"):
                cells.append(f"<td>{100 * v:.0f} %</td>")
            elif abs(v) >= 100:
                cells.append(f"<td>{v:,.0f}</td>")
            else:
                cells.append(f"<td>{v:.2f}</td>")
        body.append(f"<tr><th>{html.escape(CENTROID_LABELS.get(f, f))}</th>{''.join(cells)}</tr>")
    return f"<table class='fit'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def build_report(result, features: pl.DataFrame, monthly: pl.DataFrame | None = None) -> dict[str, Any]:
    """Everything the segment model asset shows, from a `SegmentationResult`: PNGs (`daily_png`,
    `monthly_png`, `sizes_png`), the HTML page (`html`) and `markdown` for Dagster metadata.
    `monthly` is `models.features.monthly_kwh_shares(...)` for the same population."""
    cat = result.segment_catalogue
    daily_png = plot_daily_profiles(segment_daily_profiles(features, result.customer_segments), cat)
    monthly_png = None
    if monthly is not None:
        monthly_png = plot_monthly_profiles(segment_monthly_profiles(monthly, result.customer_segments), cat)
    sizes_png = plot_segment_sizes(result.size_movement, cat)
    candidates = [c.as_dict() for c in result.fit.candidates]
    page = segment_report_html(
        cat,
        result.size_movement,
        candidates,
        model_version=result.model_version,
        as_of=result.as_of,
        window=result.window,
        chosen_k=result.fit.k,
        selection_rule=result.fit.selection_rule,
        daily_png=daily_png,
        monthly_png=monthly_png,
        sizes_png=sizes_png,
        profile=segment_payment_contract_profile(features, result.customer_segments),
    )
    lines = [
        f"**k = {result.fit.k}** ({result.fit.selection_rule})",
        "",
        "| k | silhouette | stability | chosen |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {c['k']} | {c['silhouette']:.3f} | {c['stability']:.3f} | {'✔' if c['chosen'] else ''} |"
        for c in candidates
    ]
    lines += ["", "| segment | name | size | change |", "|---|---|---|---|"]
    moved = {int(r["segment_id"]): r for r in result.size_movement.to_dicts()}
    for r in cat.sort("segment_id").to_dicts():
        ch = moved.get(int(r["segment_id"]), {}).get("change")
        lines.append(f"| {r['segment_id']} | {r['name_en']} | {r['size']} | {'new' if ch is None else f'{ch:+d}'} |")
    lines += ["", markdown_image(daily_png, "daily profiles")]
    if monthly_png:
        lines.append(markdown_image(monthly_png, "monthly profiles"))
    return {
        "daily_png": daily_png,
        "monthly_png": monthly_png,
        "sizes_png": sizes_png,
        "html": page,
        "markdown": "\n".join(lines),
    }
