"""Rendering an access report (`lupa sar`): the JSON file and the self-contained HTML page.

The report (`assets.privacy.access_report`) holds language-neutral codes; the JSON is that dict as it
is, and the page puts it into words in the customer's language (fi/sv/en), with the texts kept as
data in `data_contracts/access_report_texts.yaml`. Dates and times are shown in Helsinki time.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from decimal import Decimal
from typing import Any

import numpy as np

from data_contracts.access_report_texts import load_access_report_texts
from data_contracts.vocabulary import HELSINKI

TEXTS = load_access_report_texts()


def t(key: str, lang: str, **kw: Any) -> str:
    text = TEXTS.texts[key][lang]
    return text.format(**kw) if kw else text


def code(value: Any, lang: str) -> str:
    if value is None:
        return "–"
    return TEXTS.codes.get(str(value), {}).get(lang, str(value))


# =================================================================================================
# formatting
# =================================================================================================
def fmt_num(value: Any, lang: str, decimals: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{float(value):,.{decimals}f}"
    if lang in ("fi", "sv"):
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


def fmt_date(value: Any, lang: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        value = value.date()
    return f"{value.day}.{value.month}.{value.year}" if lang == "fi" else value.isoformat()


def fmt_ts(value: Any, lang: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    local = value.astimezone(HELSINKI)
    if lang == "fi":
        return f"{local.day}.{local.month}.{local.year} klo {local:%H.%M}"
    if lang == "sv":
        return f"{local:%Y-%m-%d} kl. {local:%H:%M}"
    return f"{local:%Y-%m-%d %H:%M} (Helsinki)"


def fmt_bool(value: Any, lang: str) -> str:
    return "–" if value is None else t("yes" if value else "no", lang)


def fmt_feature(name: str, value: Any, lang: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if name.endswith("_share"):
        return fmt_num(100 * float(value), lang) + "\u00a0%"
    if name in ("annual_kwh",):
        return fmt_num(value, lang) + "\u00a0kWh"
    if name.endswith("_ratio") or name == "mean_days_late":
        return fmt_num(value, lang, 2)
    return fmt_num(value, lang, 0 if float(value).is_integer() else 2)


def fmt_period(period: dict[str, int], lang: str) -> str:
    unit, n = next(iter(period.items()))
    words = {
        "years": {"fi": ("vuosi", "vuotta"), "sv": ("år", "år"), "en": ("year", "years")},
        "months": {"fi": ("kuukausi", "kuukautta"), "sv": ("månad", "månader"), "en": ("month", "months")},
        "days": {"fi": ("päivä", "päivää"), "sv": ("dag", "dagar"), "en": ("day", "days")},
    }[unit][lang]
    return f"{n} {words[0] if n == 1 else words[1]}"


# =================================================================================================
# JSON and HTML
# =================================================================================================
def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, default=_json_default, ensure_ascii=False, indent=2)


def _esc(value: Any) -> str:
    return html.escape("–" if value is None else str(value))


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, Any]], lang: str) -> str:
    """columns: (header key in the texts or literal, function row -> text)."""
    if not rows:
        return f"<p class='none'>{_esc(t('none', lang))}</p>"
    head = "".join(f"<th>{_esc(TEXTS.texts[k][lang] if k in TEXTS.texts else k)}</th>" for k, _ in columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(fn(r))}</td>" for _, fn in columns) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _source_text(source: dict[str, Any], lang: str) -> str:
    system = source.get("system")
    if system == "crm":
        return t("src_crm", lang, file=source.get("file") or "–", line=source.get("line") or "–")
    if system == "vtj":
        return (
            t("src_vtj", lang, updated_on=fmt_date(source["updated_on"], lang))
            if source.get("updated_on")
            else t("src_vtj_none", lang)
        )
    return t("src_derived", lang)


def _identity_value(item: dict[str, Any], lang: str) -> str:
    value = item["value"]
    if item["field"] in ("customer_type", "language"):
        return code(value, lang)
    if item["field"] in ("marketing_ban", "safety_ban"):
        return fmt_bool(value, lang)
    if item["field"] in ("birth_date", "customer_since", "ended_on", "deceased_on"):
        return fmt_date(value, lang)
    return "–" if value is None else str(value)


def _identity_note(item: dict[str, Any], lang: str) -> str:
    notes = []
    if item.get("note") == "n_withheld":
        notes.append(t("n_withheld", lang, held=t("yes" if item.get("held_in_crm") else "no", lang)))
    elif item.get("note"):
        notes.append(t(item["note"], lang))
    if (
        item["field"] in ("email", "phone")
        and item.get("status") == "valid"
        and item.get("used_as")
        and item.get("used_as") != item["value"]
    ):
        notes.append(t("n_normalised", lang, value=item["used_as"]))
    if item["field"] == "phone" and item.get("mobile"):
        notes.append(t("n_mobile", lang))
    return "; ".join(notes)


def _segment_html(p: dict[str, Any], lang: str) -> str:
    if p["objected"]:
        when = fmt_ts(p["objection_event"]["occurred_at"], lang) if p.get("objection_event") else "–"
        return f"<p class='notice'>{_esc(t('p_objected', lang, when=when))}</p>"
    if not p["profiled"]:
        if not p["not_profiled_reasons"]:
            return f"<p>{_esc(t('p_not_run', lang))}</p>"
        reasons = ", ".join(code(r, lang) for r in p["not_profiled_reasons"])
        return f"<p>{_esc(t('p_not_profiled', lang, reasons=reasons))}</p>"
    seg = p["segment"]
    name, description = seg.get(f"name_{lang}", seg["segment_id"]), seg.get(f"description_{lang}", "–")
    parts = [f"<p class='segment'>{_esc(t('p_segment', lang, name=name, description=description))}</p>"]
    e = p.get("explanation")
    if not e or not e.get("available"):
        parts.append(f"<p>{_esc(t('p_no_explanation', lang))}</p>")
        return "".join(parts)
    labels = {c: TEXTS.feature_labels.get(c, {}).get(lang, c) for c in e["feature_columns"]}
    window = e.get("window") or {}
    method = t(
        "p_method",
        lang,
        k=e["k"],
        n=len(e["feature_columns"]),
        start=fmt_date(window.get("start"), lang),
        end=fmt_date(window.get("end"), lang),
        features=", ".join(labels.values()),
    )
    parts.append(f"<p>{_esc(method)}</p>")
    by_name = {r["feature"]: r for r in e["features"]}
    items = []
    for name in e["top_features"]:
        r = by_name[name]
        diff = r["standardised_difference_from_median"]
        items.append(
            t(
                "p_top_item",
                lang,
                label=labels[name],
                value=fmt_feature(name, r["customer_value"], lang),
                median=fmt_feature(name, r["population_median"], lang)
                if r["population_median"] is not None
                else t("p_hidden", lang),
                direction=t("higher" if diff >= 0 else "lower", lang),
                sd=fmt_num(abs(diff), lang, 1),
            )
        )
    if items:
        parts.append(f"<p class='top'>{_esc(t('p_top', lang, items='; '.join(items)))}</p>")
    nxt = e.get("next_segment")
    if nxt and nxt["decisive_features"]:
        decisive = ", ".join(labels[f] for f in nxt["decisive_features"])
        parts.append(f"<p>{_esc(t('p_next', lang, name=nxt[f'name_{lang}'], features=decisive))}</p>")
    parts.append(f"<h3>{_esc(t('h_features', lang))}</h3>")
    parts.append(
        _table(
            e["features"],
            [
                ("feature", lambda r: labels[r["feature"]]),
                (
                    "yours",
                    lambda r: (
                        t("p_imputed", lang) if r["imputed"] else fmt_feature(r["feature"], r["customer_value"], lang)
                    ),
                ),
                (
                    "segment_typical",
                    lambda r: (
                        fmt_feature(r["feature"], r["segment_typical"], lang)
                        if r["segment_typical"] is not None
                        else t("p_hidden", lang)
                    ),
                ),
                (
                    "population_median",
                    lambda r: (
                        fmt_feature(r["feature"], r["population_median"], lang)
                        if r["population_median"] is not None
                        else t("p_hidden", lang)
                    ),
                ),
                ("std_difference", lambda r: fmt_num(r["standardised_difference_from_median"], lang, 2)),
            ],
            lang,
        )
    )
    parts.append(f"<p>{_esc(t('p_effect', lang))}</p>")
    model = t("p_model", lang, version=e["model_version"], as_of=fmt_date(e.get("model_as_of"), lang))
    parts.append(f"<p class='small'>{_esc(model)}</p>")
    return "".join(parts)


CSS = (
    "\n"
    'body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;margin:2rem auto;'
    "padding:0 1rem;color:#1b1b1b;line-height:1.45}\n"
    "h1{font-size:1.6rem;margin-bottom:.2rem}"
    "h2{font-size:1.25rem;margin-top:2rem;border-bottom:2px solid #2b5d8a;padding-bottom:.2rem}\n"
    "h3{font-size:1.05rem;margin-top:1.2rem}table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}\n"
    "th,td{border:1px solid #c8c8c8;padding:.25rem .45rem;text-align:left;vertical-align:top}th{background:#eef3f8}\n"
    ".meta,.small{color:#555;font-size:.85rem}"
    ".notice{background:#fff6d6;border-left:4px solid #d9a400;padding:.5rem .8rem}\n"
    ".segment{font-weight:600}.none{color:#666;font-style:italic}.scroll{overflow-x:auto}\n"
    "@media print{body{margin:0}h2{page-break-after:avoid}}\n"
)


def _page_start(meta: dict[str, Any], data_as_of: Any = None) -> list[str]:
    """Head, title and the line saying whose report it is and when it was made."""
    lang = meta["language"]
    as_of = f" · {_esc(t('data_as_of', lang))}: {_esc(fmt_date(data_as_of, lang))}" if data_as_of else ""
    return [
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_esc(t('title', lang))}</title><style>{CSS}</style></head><body>",
        f"<h1>{_esc(t('title', lang))}</h1>",
        f"<p class='meta'>{_esc(t('customer_id', lang))}: {_esc(meta['customer_id'])} · "
        f"{_esc(t('generated', lang))}: {_esc(fmt_ts(meta['generated_at'], lang))}{as_of}</p>",
    ]


def _controller(proc: dict[str, Any], lang: str) -> str:
    name, contact = proc["controller"]["name"][lang], proc["controller"].get("contact", "")
    return f"<p>{_esc(t('controller', lang))}: {_esc(name)}, {_esc(contact)}</p>"


def _page_end(proc: dict[str, Any], meta: dict[str, Any]) -> str:
    """The customer's rights, and the versions of the register and the policy the report was made under."""
    lang = meta["language"]
    rights = "".join(f"<li>{_esc(x)}</li>" for x in proc["rights"][lang])
    return (
        f"<h2>{_esc(t('h_rights', lang))}</h2><ul>{rights}</ul>"
        f"<p class='small'>{_esc(proc['version'])} · {_esc(meta['policy_version'])}</p></body></html>"
    )


def render_erased_html(report: dict[str, Any]) -> str:
    """The erased customer's page: the erasure date, the restricted invoices, the suppression record."""
    meta, erasure = report["report"], report["erasure"]
    lang = meta["language"]
    d = lambda v: fmt_date(v, lang)  # noqa: E731
    inv, sup, proc = erasure["retained_invoices"], erasure["suppression_record"], report["processing"]
    out = _page_start(meta)
    out.append(f"<p class='notice'>{_esc(t('e_erased', lang, date=d(erasure['erased_on'])))}</p>")
    out.append(f"<h2>{_esc(t('h_still_held', lang))}</h2><h3>{_esc(t('h_retained_invoices', lang))}</h3>")
    if inv["items"]:
        rule = inv["retention"]
        kept = t(
            "e_invoices",
            lang,
            n=len(inv["items"]),
            period=fmt_period(rule["period"], lang),
            after=rule["after"][lang],
            until=d(inv["kept_until"]),
        )
        out.append(f"<p>{_esc(kept)}</p>")
        out.append(
            _table(
                inv["items"],
                [
                    ("invoice_id", lambda r: r["invoice_id"]),
                    ("contract_id", lambda r: r["contract_id"]),
                    ("issued_on", lambda r: d(r["issued_on"])),
                    ("due_on", lambda r: d(r["due_on"])),
                    ("amount_eur", lambda r: fmt_num(r["amount_eur"], lang, 2)),
                    ("paid_on", lambda r: d(r["paid_on"])),
                    ("kept_until", lambda r: d(r["kept_until"])),
                    ("source", lambda r: t("src_billing", lang, file=r.get("delivery_file") or "–")),
                ],
                lang,
            )
        )
    else:
        out.append(f"<p>{_esc(t('e_no_invoices', lang))}</p>")
    out.append(f"<h3>{_esc(t('h_suppression', lang))}</h3><p>{_esc(t('e_suppression', lang))}</p>")
    out.append(
        _table(
            [
                {"k": "s_pseudonyms", "v": sup["pseudonyms"]},
                {"k": "s_erased_on", "v": d(sup["erased_on"])},
                {"k": "s_points", "v": sup["metering_point_periods"]},
            ],
            [("field", lambda r: t(r["k"], lang)), ("value", lambda r: r["v"])],
            lang,
        )
    )
    out.append(f"<p>{_esc(t('e_nothing_else', lang))}</p>")
    out.append(_controller(proc, lang))
    out.append(_page_end(proc, meta))
    return "".join(out)


def _campaigns_html(campaigns: dict[str, list[dict[str, Any]]], lang: str) -> str:
    """The campaigns that planned, listed, held out (control group) or removed the person, and why."""
    planned, released, removed = (campaigns.get(k) or [] for k in ("planned", "released", "removed"))
    out = [f"<h2>{_esc(t('h_campaigns', lang))}</h2>"]
    if not (planned or released or removed):
        return "".join([*out, f"<p>{_esc(t('campaigns_none', lang))}</p>"])
    listed = [
        ("campaign_id", lambda r: r["campaign_id"]),
        ("status", lambda r: code(r["status"], lang)),
        ("channel", lambda r: "–" if r["channel"] is None else code(r["channel"], lang)),
        ("reason", lambda r: "–" if r["reason"] is None else code(r["reason"], lang)),
    ]
    if released:
        out.append(f"<h3>{_esc(t('h_campaigns_released', lang))}</h3>")
        out.append(
            _table(released, [listed[0], ("send_on", lambda r: fmt_date(r["send_on"], lang)), *listed[1:]], lang)
        )
    if planned:
        out.append(f"<h3>{_esc(t('h_campaigns_planned', lang))}</h3>")
        out.append(_table(planned, listed, lang))
    if removed:
        out.append(f"<h3>{_esc(t('h_campaigns_removed', lang))}</h3>")
        columns = [listed[0], ("removed_on", lambda r: fmt_date(r["removed_on"], lang)), listed[3]]
        out.append(_table(removed, columns, lang))
    return "".join(out)


def render_html(report: dict[str, Any]) -> str:
    meta = report["report"]
    lang = meta["language"]
    L = lambda d: d[lang]  # noqa: E731 - a fi/sv/en text
    d = lambda v: fmt_date(v, lang)  # noqa: E731
    out = _page_start(meta, meta["audiences_as_of"] or meta["latest_delivery_processed"])
    out.append(f"<p>{_esc(t('intro', lang))}</p>")
    if meta["register_only"]:
        out.append(f"<p class='notice'>{_esc(t('n_register_only', lang))}</p>")
    elif not meta["in_current_customer_register"]:
        out.append(f"<p class='notice'>{_esc(t('n_not_current', lang))}</p>")

    out.append(f"<h2>{_esc(t('h_identity', lang))}</h2>")
    out.append(
        _table(
            report["identity"],
            [
                ("field", lambda r: t(f"f_{r['field']}", lang)),
                ("value", lambda r: _identity_value(r, lang)),
                ("source", lambda r: _source_text(r["source"], lang)),
                ("note", lambda r: _identity_note(r, lang)),
            ],
            lang,
        )
    )
    vtj = report["population_register"]
    if vtj:
        out.append(f"<h3>{_esc(t('h_vtj', lang))}</h3>")
        vtj_rows = [
            ("f_personal_id", vtj["personal_id"]),
            ("f_deceased_on", d(vtj["deceased_on"]) if vtj["deceased_on"] else "–"),
            ("f_marketing_ban", fmt_bool(vtj["marketing_ban"], lang)),
            ("f_safety_ban", fmt_bool(vtj["safety_ban"], lang)),
        ]
        if not vtj["safety_ban"]:
            vtj_rows.append(
                (
                    "f_address",
                    ", ".join(v for v in (vtj["street_address"], vtj["postal_code"], vtj["city"]) if v) or "–",
                )
            )
        out.append(
            _table(
                [{"k": k, "v": v} for k, v in vtj_rows],
                [
                    ("field", lambda r: t(r["k"], lang)),
                    ("value", lambda r: r["v"]),
                    ("source", lambda r: t("src_vtj", lang, updated_on=d(vtj["updated_on"]))),
                ],
                lang,
            )
        )

    out.append(f"<h2>{_esc(t('h_contracts', lang))}</h2>")
    out.append(
        _table(
            report["contracts"],
            [
                ("contract_id", lambda r: r["contract_id"]),
                ("metering_point_id", lambda r: r["metering_point_id"]),
                ("product_code", lambda r: r["product_code"]),
                ("contract_type", lambda r: code(r["contract_type"], lang)),
                ("start_date", lambda r: d(r["start_date"])),
                ("end_date", lambda r: d(r["end_date"])),
                ("site_type", lambda r: code(r["site_type"], lang)),
                ("heating", lambda r: code(r["heating"], lang)),
                ("source", lambda r: t("src_contracts", lang, file=r.get("snapshot_file") or "–")),
            ],
            lang,
        )
    )

    out.append(f"<h2>{_esc(t('h_consumption', lang))}</h2><p class='small'>{_esc(t('src_datahub', lang))}</p>")
    out.append(
        _table(
            report["consumption_monthly"],
            [
                ("metering_point_id", lambda r: r["metering_point_id"]),
                ("month", lambda r: r["month"]),
                ("kwh", lambda r: fmt_num(r["kwh"], lang, 1)),
                ("days_with_data", lambda r: r["days_with_data"]),
                ("readings_estimated", lambda r: r["readings_estimated"]),
                ("readings_missing", lambda r: r["readings_missing"]),
            ],
            lang,
        )
    )

    inv = report["invoices"]
    out.append(f"<h2>{_esc(t('h_invoices', lang))}</h2>")
    out.append(
        _table(
            inv["items"],
            [
                ("invoice_id", lambda r: r["invoice_id"]),
                ("contract_id", lambda r: r["contract_id"]),
                ("issued_on", lambda r: d(r["issued_on"])),
                ("due_on", lambda r: d(r["due_on"])),
                ("amount_eur", lambda r: fmt_num(r["amount_eur"], lang, 2)),
                ("paid_on", lambda r: d(r["paid_on"])),
                ("days_late", lambda r: r["days_late"]),
                ("reminders", lambda r: r["reminders"]),
                ("in_collection", lambda r: fmt_bool(r["in_collection"], lang)),
                ("source", lambda r: t("src_billing", lang, file=r.get("delivery_file") or "–")),
            ],
            lang,
        )
    )
    if inv["payment_features"]:
        out.append(f"<h3>{_esc(t('h_payment_features', lang))}</h3>")
        out.append(
            _table(
                [{"k": k, "v": v} for k, v in inv["payment_features"].items()],
                [
                    ("feature", lambda r: TEXTS.feature_labels[r["k"]][lang]),
                    ("value", lambda r: fmt_feature(r["k"], r["v"], lang)),
                ],
                lang,
            )
        )

    cons = report["consents"]
    out.append(f"<h2>{_esc(t('h_consents', lang))}</h2><h3>{_esc(t('h_events', lang))}</h3>")
    out.append(
        _table(
            cons["events"],
            [
                ("occurred_at", lambda r: fmt_ts(r["occurred_at"], lang)),
                ("purpose", lambda r: code(r["purpose"], lang)),
                ("channel", lambda r: code(r["channel"], lang) if r["channel"] else t("all_channels", lang)),
                ("action", lambda r: code(r["action"], lang)),
                ("source", lambda r: t("src_consent", lang, source=code(r["source"], lang), file=r["file"])),
                ("wording_version", lambda r: r["wording_version"]),
                ("evidence_ref", lambda r: r["evidence_ref"]),
                ("event_id", lambda r: r["event_id"]),
            ],
            lang,
        )
    )
    out.append(f"<h3>{_esc(t('h_state', lang))}</h3>")
    out.append(
        _table(
            cons["state"],
            [
                ("purpose", lambda r: code(r["purpose"], lang)),
                ("channel", lambda r: code(r["channel"], lang) if r["channel"] else t("all_channels", lang)),
                ("state", lambda r: code(r["state"], lang)),
                ("occurred_at", lambda r: fmt_ts(r["occurred_at"], lang)),
                ("event_id", lambda r: r["event_id"]),
            ],
            lang,
        )
    )
    out.append(f"<h3>{_esc(t('h_channel_effect', lang))}</h3>")
    out.append(
        _table(
            cons["marketing_channels"],
            [
                ("channel", lambda r: code(r["channel"], lang)),
                ("legal_basis", lambda r: t(f"basis_{r['legal_basis']}", lang)),
                ("state", lambda r: code(r["state"], lang) if r["state"] else t("consent_no_event", lang)),
                (
                    "effect",
                    lambda r: t("consent_allowed" if r["allowed_by_consent_log"] else "consent_not_allowed", lang),
                ),
            ],
            lang,
        )
    )

    out.append(f"<h2>{_esc(t('h_profiling', lang))}</h2>")
    out.append(_segment_html(report["profiling"], lang))

    aud = report["audiences"]
    out.append(f"<h2>{_esc(t('h_audiences', lang))}</h2><h3>{_esc(t('h_history', lang))}</h3>")
    out.append(
        _table(
            aud["history"],
            [
                ("channel", lambda r: code(r["channel"], lang)),
                ("legal_basis", lambda r: code(r["legal_basis"], lang)),
                ("first_day", lambda r: d(r["first_day"])),
                ("last_day", lambda r: d(r["last_day"])),
                ("days", lambda r: r["days"]),
                ("current", lambda r: fmt_bool(r["current"], lang)),
                ("segment", lambda r: "–" if r["segment_id"] is None else r["segment_id"]),
                ("consent_evidence", lambda r: ", ".join(r.get("consent_evidence_refs") or []) or "–"),
            ],
            lang,
        )
        if aud["history"]
        else f"<p>{_esc(t('a_none', lang))}</p>"
    )
    out.append(f"<h3>{_esc(t('h_exclusions', lang))}</h3>")
    out.append(
        _table(
            aud["exclusions"],
            [("channel", lambda r: code(r["channel"], lang)), ("reason", lambda r: code(r["reason"], lang))],
            lang,
        )
    )
    if aud["renewal_offers"]:
        out.append(f"<h3>{_esc(t('h_renewal', lang))}</h3>")
        out.append(
            _table(
                aud["renewal_offers"],
                [
                    ("contract_id", lambda r: r["contract_id"]),
                    ("end_date", lambda r: d(r["end_date"])),
                    ("channel", lambda r: code(r["channel"], lang)),
                    ("reason", lambda r: code(r["reason"], lang)),
                ],
                lang,
            )
        )

    out.append(f"<h2>{_esc(t('h_contacts', lang))}</h2>")
    out.append(
        _table(
            report["contact_history"],
            [
                ("sent_at", lambda r: fmt_ts(r["sent_at"], lang)),
                ("channel", lambda r: code(r["channel"], lang)),
                ("campaign_id", lambda r: r["campaign_id"]),
                ("kind", lambda r: code(r["kind"], lang)),
            ],
            lang,
        )
    )
    out.append(_campaigns_html(report.get("campaigns") or {}, lang))
    if report["rejected_records"]:
        out.append(f"<h2>{_esc(t('h_rejected', lang))}</h2>")
        out.append(
            _table(
                report["rejected_records"],
                [
                    ("source", lambda r: r["source"]),
                    ("file", lambda r: r["file"]),
                    ("line", lambda r: r["line"]),
                    ("rule", lambda r: r["rule"]),
                ],
                lang,
            )
        )

    proc = report["processing"]
    out.append(f"<h2>{_esc(t('h_processing', lang))}</h2>")
    out.append(_controller(proc, lang))
    out.append(f"<h3>{_esc(t('h_purposes', lang))}</h3>")
    out.append(
        _table(
            proc["purposes"],
            [
                ("purpose", lambda r: L(r["name"])),
                ("legal_basis", lambda r: L(r["legal_basis"])),
                ("description", lambda r: L(r["description"])),
            ],
            lang,
        )
    )
    out.append(f"<h3>{_esc(t('h_recipients', lang))}</h3>")
    out.append(
        _table(
            proc["recipients"], [("name", lambda r: L(r["name"])), ("description", lambda r: L(r["description"]))], lang
        )
    )
    out.append(f"<h3>{_esc(t('h_sources', lang))}</h3>")
    out.append(_table(proc["sources"], [("name", lambda r: L(r["name"]))], lang))
    out.append(f"<h3>{_esc(t('h_retention', lang))}</h3>")
    out.append(
        _table(
            proc["retention"],
            [
                ("name", lambda r: L(r["name"])),
                ("period", lambda r: fmt_period(r["period"], lang) + (f" {L(r['after'])}" if r.get("after") else "")),
            ],
            lang,
        )
    )
    out.append(_page_end(proc, meta))
    return "".join(out)
