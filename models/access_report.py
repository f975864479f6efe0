"""What an access report (`lupa sar`, GDPR Art. 15) says about one customer, decided from rows already read.

Each value keeps its source, the consent log is turned into what it means for each marketing channel,
and a segment comes with the meaningful information about the logic involved (Art. 15(1)(h)): the
features next to the segment's typical values and the population median, in the model's own scaled
space. The only figures drawn from other customers are such aggregates, and only for groups of at least
`MIN_GROUP_FOR_STATISTICS` customers, so that no figure can describe one other person. Everything here
is language-neutral codes; the words are the renderer's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl

from data_contracts.policy import MarketingPolicy, ProfilingPolicy
from data_contracts.vocabulary import CHANNELS, LANGUAGES
from models.profiling import candidates, split_population
from models.stable_ids import PreviousSegment

#: Aggregates over other customers (a segment's typical value, the population median) are shown only
#: for groups at least this large, so that no figure can describe one other person.
MIN_GROUP_FOR_STATISTICS = 5
#: How many features the explanation names as the ones that set the customer apart.
TOP_FEATURES = 3
PAYMENT_FEATURES = ("invoices_12m", "late_share", "mean_days_late", "reminders_12m", "collections_12m")


# =================================================================================================
# the customer's own records
# =================================================================================================
def identity(current: dict | None, crm: dict | None, vtj: dict | None) -> list[dict[str, Any]]:
    """Every identity and contact value held, each with where it came from."""
    base = current or crm or {}
    crm_src = (
        {"system": "crm", "file": crm["file"], "line": crm["line"]}
        if crm
        else {"system": "crm", "file": base.get("snapshot_file"), "line": None}
    )
    vtj_src = {"system": "vtj", "updated_on": vtj["updated_on"]} if vtj else {"system": "vtj", "updated_on": None}
    items: list[dict[str, Any]] = []

    def add(name: str, value: Any, source: dict, note: str | None = None, **extra: Any) -> None:
        items.append({"field": name, "value": value, "source": source, "note": note, **extra})

    get = lambda key: (crm or {}).get(key, base.get(key))  # noqa: E731 - the value as the CRM delivered it
    add("customer_id", base.get("customer_id"), crm_src)
    add("customer_type", get("customer_type"), crm_src)
    for key in ("personal_id", "business_id", "first_name", "last_name", "company_name"):
        if get(key) is not None:
            add(key, get(key), crm_src)
    add("language", get("language"), crm_src)
    email_status = (current or {}).get("email_status")
    add(
        "email",
        get("email"),
        crm_src,
        None if email_status in (None, "valid") else f"n_{email_status}",
        status=email_status,
        used_as=(current or {}).get("email"),
    )
    phone_status = (current or {}).get("phone_status")
    add(
        "phone",
        get("phone") if crm else (current or {}).get("phone_e164"),
        crm_src,
        None if phone_status in (None, "valid") else f"n_{phone_status}",
        status=phone_status,
        used_as=(current or {}).get("phone_e164"),
        mobile=(current or {}).get("phone_is_mobile"),
    )
    crm_address = [crm.get(k) for k in ("street_address", "postal_code", "city")] if crm else [None, None, None]
    crm_address_text = ", ".join(v for v in crm_address if v) or None
    safety_ban = bool((current or {}).get("safety_ban") or (vtj or {}).get("safety_ban"))
    if safety_ban:
        # landing-zone contract: under a safety ban no address may be used or shown at all
        add("address", None, vtj_src, "n_withheld", withheld=True, held_in_crm=crm_address_text is not None)
    else:
        source = (current or {}).get("address_source")
        if source == "vtj" and vtj:
            add(
                "address",
                ", ".join(v for v in (vtj.get("street_address"), vtj.get("postal_code"), vtj.get("city")) if v),
                vtj_src,
            )
            vtj_text = items[-1]["value"]
            if crm_address_text and crm_address_text != vtj_text:
                add("crm_address", crm_address_text, crm_src, "n_replaced_by_vtj")
        elif crm_address_text:
            add("address", crm_address_text, crm_src)
    if base.get("birth_date") is not None:
        add("birth_date", base.get("birth_date"), {"system": "derived"})
    add("customer_since", get("customer_since"), crm_src)
    if get("ended_on") is not None:
        add("ended_on", get("ended_on"), crm_src)
    if (base.get("customer_type") or get("customer_type")) == "person":
        add("deceased_on", (vtj or {}).get("deceased_on"), vtj_src)
        add("marketing_ban", bool((vtj or {}).get("marketing_ban")), vtj_src)
        add("safety_ban", safety_ban, vtj_src)
    return items


def metering_points(periods: list[dict[str, Any]], contracts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The customer's metering points, each with the site of its contract and its attribution periods."""
    points: dict[str, dict[str, Any]] = {}
    for p in periods:
        contract = next((k for k in contracts if k["contract_id"] == p["contract_id"]), {})
        point = points.setdefault(
            p["metering_point_id"],
            {
                "metering_point_id": p["metering_point_id"],
                "site_type": contract.get("site_type"),
                "heating": contract.get("heating"),
                "periods": [],
            },
        )
        point["periods"].append(
            {"contract_id": p["contract_id"], "valid_from": p["valid_from"], "valid_to": p["valid_to"]}
        )
    return list(points.values())


def monthly_consumption(daily: pl.DataFrame) -> list[dict[str, Any]]:
    """Per-day metering aggregates summed per metering point and month."""
    if daily.is_empty():
        return []
    return (
        daily.group_by("metering_point_id", pl.col("business_day").dt.strftime("%Y-%m").alias("month"))
        .agg(
            pl.col("kwh_total").sum().round(3).alias("kwh"),
            pl.col("business_day").n_unique().alias("days_with_data"),
            pl.col("n_ok").sum().alias("readings_ok"),
            pl.col("n_estimated").sum().alias("readings_estimated"),
            pl.col("n_missing").sum().alias("readings_missing"),
        )
        .sort("metering_point_id", "month")
        .to_dicts()
    )


def with_days_late(invoices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each invoice with `days_late` added (None while it is unpaid: not known yet)."""
    for inv in invoices:
        paid, due = inv["paid_on"], inv["due_on"]
        inv["days_late"] = None if paid is None else max((paid - due).days, 0)
    return invoices


def invoice_summary(invoices: list[dict[str, Any]]) -> dict[str, Any]:
    paid_late = sum(1 for i in invoices if i["paid_on"] is not None and i["paid_on"] > i["due_on"])
    return {
        "invoices": len(invoices),
        "total_eur": float(sum((i["amount_eur"] or Decimal(0)) for i in invoices)),
        "unpaid": sum(1 for i in invoices if i["paid_on"] is None),
        "paid_late": paid_late,
        "reminders": sum(int(i["reminders"] or 0) for i in invoices),
        "in_collection": sum(1 for i in invoices if i["in_collection"]),
    }


def audience_history(rows: list[dict[str, Any]], latest_day: dt.date | None, objected: bool) -> list[dict[str, Any]]:
    """Daily rows collapsed per (channel, legal basis, segment, policy version), keeping every day.
    An objector to profiling is shown no segment, whatever the history recorded (Art. 21(2)).

    Each group lists the references of the consent evidence its days were decided on, so the data
    subject sees on what their consent-based contact rested (Art. 15(1)(g)'s "source"). Rows
    recorded before the history kept evidence, or read from a warehouse not migrated yet, have none."""
    if not rows:
        return []
    frame = pl.DataFrame(rows, infer_schema_length=None)
    if "consent_evidence_ref" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("consent_evidence_ref"))
    out = (
        frame.group_by("channel", "legal_basis", "segment_id", "policy_version")
        .agg(
            pl.col("business_day").min().alias("first_day"),
            pl.col("business_day").max().alias("last_day"),
            pl.col("business_day").n_unique().alias("days"),
            pl.col("business_day").sort().alias("business_days"),
            pl.col("consent_evidence_ref").cast(pl.String).drop_nulls().unique().sort().alias("consent_evidence_refs"),
        )
        .sort("first_day", "channel")
        .to_dicts()
    )
    for r in out:
        r["current"] = latest_day is not None and r["last_day"] == latest_day
        if objected:
            r["segment_id"] = None
    return out


def channel_state(state: list[dict[str, Any]], policy: MarketingPolicy) -> list[dict[str, Any]]:
    """What the consent log means for each marketing channel under the policy."""
    out = []
    for ch in CHANNELS:
        cp = policy.channel(ch)
        row = next(
            (s for s in state if s["purpose"] == cp.consent.purpose and s["channel"] == cp.consent.channel), None
        )
        current = row["state"] if row else None
        allowed = current == "granted" if cp.legal_basis == "consent" else current != "withdrawn"
        out.append(
            {
                "channel": ch,
                "legal_basis": cp.legal_basis,
                "state": current,
                "deciding_event_id": row["event_id"] if row else None,
                "allowed_by_consent_log": allowed,
            }
        )
    return out


def processing_summary(register: dict[str, Any]) -> dict[str, Any]:
    """The processing register's purposes, recipients, sources, retention periods and rights."""
    return {
        "version": register["version"],
        "controller": register["controller"],
        "purposes": [{k: p[k] for k in ("id", "name", "legal_basis", "description")} for p in register["purposes"]],
        "recipients": [{k: r[k] for k in ("id", "name", "description")} for r in register["recipients"]],
        "sources": [{k: s[k] for k in ("id", "name")} for s in register["sources"]],
        "retention": [
            {k: r[k] for k in ("id", "name", "period", "period_source", "after") if k in r}
            for r in register["retention"]
        ],
        "rights": register["rights"],
    }


def counts(report: dict[str, Any]) -> dict[str, int]:
    """What the command prints about a report: how many of each kind of record it holds."""
    if report["report"]["erased"]:
        sup = report["erasure"]["suppression_record"]
        return {
            "invoices_kept_restricted": len(report["erasure"]["retained_invoices"]["items"]),
            "suppression_pseudonyms": sup["pseudonyms"],
            "suppressed_metering_point_periods": sup["metering_point_periods"],
        }
    return {
        "contracts": len(report["contracts"]),
        "metering_points": len(report["metering_points"]),
        "consumption_months": len({r["month"] for r in report["consumption_monthly"]}),
        "invoices": len(report["invoices"]["items"]),
        "consent_events": len(report["consents"]["events"]),
        "audiences": len(report["audiences"]["history"]),
        "contacts": len(report["contact_history"]),
        "rejected_records": len(report["rejected_records"]),
    }


# =================================================================================================
# profiling: the segment and the meaningful information about the logic (Art. 15(1)(h))
# =================================================================================================
@dataclass(frozen=True)
class AnalyticsRows:
    """What the analytics zone holds for one customer's profiling (None where it holds nothing)."""

    features: dict[str, Any] | None
    segment: dict[str, Any] | None
    #: the day of the latest profiling population
    as_of: dt.date | None
    #: every profiled customer's features, read only to explain a segment (never for an objector)
    population: pl.DataFrame | None
    #: the segment's catalogue row (names, descriptions, size, centroid)
    catalogue: dict[str, Any] | None


@dataclass(frozen=True)
class SegmentModel:
    """The stored segmentation model of the customer's segment, as read from the model store."""

    metadata: dict[str, Any]
    #: the fitted sklearn pipeline: transform, impute, scale, cluster
    pipeline: Any
    segments: tuple[PreviousSegment, ...]


def profiling_objection(state: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The consent state row of the customer's objection to profiling, if they have objected."""
    return next((s for s in state if s["purpose"] == "profiling" and s["state"] == "withdrawn"), None)


def profiling(
    customer_id: str | None,
    current: dict | None,
    state: list[dict],
    contracts: list[dict],
    daily: pl.DataFrame,
    analytics: AnalyticsRows | None,
    model: SegmentModel | None,
    rules: ProfilingPolicy,
) -> dict[str, Any]:
    """The profiling section; `analytics` is None when there is no analytics zone or no customer id,
    `model` None when the segment's model could not be read."""
    objection = profiling_objection(state)
    out: dict[str, Any] = {
        "objected": objection is not None,
        "objection_event": objection,
        "profiled": False,
        "segment": None,
        "features": None,
        "explanation": None,
        "not_profiled_reasons": [],
        "payment_features": None,
    }
    if analytics is None:
        out["not_profiled_reasons"] = (
            ["profiling_objection"] if objection else (["not_current_customer"] if customer_id is None else [])
        )
        return out
    if objection:
        # Art. 21(2): an objector has no segment, whatever an older table might still hold
        out["not_profiled_reasons"] = ["profiling_objection"]
        return out
    features, segment, catalogue = analytics.features, analytics.segment, analytics.catalogue
    if features:
        out["features"] = {k: v for k, v in features.items() if k != "customer_id"}
        out["payment_features"] = {k: features.get(k) for k in PAYMENT_FEATURES}
    if segment is None:
        out["not_profiled_reasons"] = (
            _not_profiled_reasons(customer_id, current, state, contracts, daily, analytics.as_of, rules)
            if analytics.as_of
            else []
        )
        out["as_of"] = analytics.as_of
        return out
    out["profiled"] = True
    out["segment"] = {
        "segment_id": segment["segment_id"],
        "model_version": segment["model_version"],
        "as_of": segment["as_of"],
        **(
            {f"{k}_{lang}": catalogue[f"{k}_{lang}"] for k in ("name", "description") for lang in LANGUAGES}
            if catalogue
            else {}
        ),
        "segment_size": catalogue["size"] if catalogue else None,
    }
    if features and analytics.population is not None:
        out["explanation"] = explain_segment(model, segment, features, analytics.population, catalogue)
    return out


def _not_profiled_reasons(
    customer_id: str,
    current: dict | None,
    state: list[dict],
    contracts: list[dict],
    daily: pl.DataFrame,
    as_of: dt.date,
    rules: ProfilingPolicy,
) -> list[str]:
    """The profiling population's own rules (models.profiling), evaluated for this customer."""
    if current is None:
        return ["not_current_customer"]
    start = as_of - dt.timedelta(days=rules.window_days - 1)
    window = (
        daily.filter(pl.col("business_day").is_between(start, as_of) & ((pl.col("n_ok") + pl.col("n_estimated")) > 0))
        if daily.height
        else daily
    )
    history = pl.DataFrame(
        {
            "customer_id": [customer_id],
            "days_with_readings": [window["business_day"].n_unique() if window.height else 0],
        }
    )
    customers = pl.DataFrame(
        [{k: current[k] for k in ("customer_id", "customer_type", "deceased_on", "birth_date")}],
        schema={"customer_id": pl.String, "customer_type": pl.String, "deceased_on": pl.Date, "birth_date": pl.Date},
    )
    consent = pl.DataFrame(
        [{"customer_id": s["customer_id"], "purpose": s["purpose"], "state": s["state"]} for s in state],
        schema={"customer_id": pl.String, "purpose": pl.String, "state": pl.String},
    )
    contract_frame = pl.DataFrame(
        [
            {"customer_id": k["customer_id"], "start_date": k["start_date"], "end_date": k["end_date"]}
            for k in contracts
        ],
        schema={"customer_id": pl.String, "start_date": pl.Date, "end_date": pl.Date},
    )
    _, exclusions = split_population(candidates(customers, consent, contract_frame, history, as_of), as_of, rules)
    reasons = exclusions["reason"].to_list()
    return reasons or ["not_in_population"]


def _transformed_space(pipeline):
    """The stored pipeline without its clustering step: transform -> impute -> scale."""
    return pipeline[:-1]


def explain_segment(
    model: SegmentModel | None,
    segment: dict[str, Any],
    features: dict[str, Any],
    population: pl.DataFrame,
    catalogue: dict[str, Any] | None,
) -> dict[str, Any]:
    """The customer's clustering features next to their segment's typical values and the population
    median, with standardised distances in the model's own scaled space (after its transforms), the
    features that set the customer apart most, and what separated them from the next closest segment."""
    version = segment["model_version"]
    if model is None:
        return {"model_version": version, "available": False}
    pipeline = model.pipeline
    cols = list(model.metadata["feature_columns"])
    prep = _transformed_space(pipeline)
    scaler = pipeline.named_steps["scale"]
    raw = np.array([[np.nan if features.get(c) is None else float(features[c]) for c in cols]])
    z = prep.transform(raw)[0]
    pop_matrix = population.select(pl.col(c).cast(pl.Float64) for c in cols).to_numpy().astype(float)
    pop_z_median = np.median(prep.transform(pop_matrix), axis=0)
    show_population = population.height >= MIN_GROUP_FOR_STATISTICS
    show_segment = catalogue is not None and (catalogue.get("size") or 0) >= MIN_GROUP_FOR_STATISTICS
    segs = {s.segment_id: s for s in model.segments}
    centre = {sid: scaler.transform(np.array([[s.centroid[c] for c in cols]]))[0] for sid, s in segs.items()}
    own = centre.get(segment["segment_id"])
    rows = []
    for j, c in enumerate(cols):
        value = features.get(c)
        median = population[c].median() if show_population else None
        rows.append(
            {
                "feature": c,
                "customer_value": value,
                "imputed": value is None,
                "segment_typical": catalogue.get(f"centroid_{c}") if show_segment else None,
                "population_median": float(median) if median is not None else None,
                "standardised_difference_from_median": round(float(z[j] - pop_z_median[j]), 3),
                "standardised_distance_to_segment": round(float(z[j] - own[j]), 3) if own is not None else None,
            }
        )
    ranked = sorted((r for r in rows if not r["imputed"]), key=lambda r: -abs(r["standardised_difference_from_median"]))
    out: dict[str, Any] = {
        "available": True,
        "model_version": version,
        "model_as_of": model.metadata.get("as_of"),
        "window": model.metadata.get("window"),
        "k": model.metadata.get("k"),
        "method": (
            "k-means on standardised features (log transform for levels and ratios); "
            "nearest centroid decides the segment"
        ),
        "feature_columns": cols,
        "features": rows,
        "top_features": [r["feature"] for r in ranked[:TOP_FEATURES]],
        "distance_to_segment": round(float(np.linalg.norm(z - own)), 3) if own is not None else None,
        "next_segment": None,
    }
    others = sorted(((float(np.linalg.norm(z - v)), sid) for sid, v in centre.items() if sid != segment["segment_id"]))
    if others and own is not None:
        dist, sid = others[0]
        margin = (z - centre[sid]) ** 2 - (z - own) ** 2  # > 0: this feature pulls towards the own segment
        order = [cols[j] for j in np.argsort(-margin) if margin[j] > 0][:2]
        s = segs[sid]
        out["next_segment"] = {
            "segment_id": sid,
            "name_fi": s.name_fi,
            "name_sv": s.name_sv,
            "name_en": s.name_en,
            "distance": round(dist, 3),
            "decisive_features": order,
        }
    return out
