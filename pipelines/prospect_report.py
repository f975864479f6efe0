"""Rendering a prospect's access report (`lupa sar` for a prospect): JSON, and one HTML page in
the prospect's language (fi/sv/en; Finnish when the lead gave none)."""

from __future__ import annotations

import html
import json
from typing import Any

TITLES = {
    "fi": {
        "title": "Tietopyyntö: markkinointirekisterin tiedot (liidi)",
        "erased": "Tietosi on poistettu",
        "source": "Mistä tiedot ovat peräisin",
        "current_state": "Nykyiset tiedot",
        "consents": "Suostumukset ja niiden todisteet",
        "contacts": "Sinulle lähetetyt yhteydenotot",
        "campaigns": "Markkinointikampanjat (lista, vertailuryhmä tai poisto, ja miksi)",
        "audiences": "Markkinointikohderyhmät",
        "retention": "Säilytysaika",
        "purposes": "Käsittelyn tarkoitukset",
    },
    "sv": {
        "title": "Begäran om registerutdrag: marknadsföringsregistret (lead)",
        "erased": "Dina uppgifter har raderats",
        "source": "Varifrån uppgifterna kommer",
        "current_state": "Nuvarande uppgifter",
        "consents": "Samtycken och bevis",
        "contacts": "Kontakter som skickats till dig",
        "campaigns": "Marknadsföringskampanjer (lista, kontrollgrupp eller borttagning, och varför)",
        "audiences": "Målgrupper för marknadsföring",
        "retention": "Lagringstid",
        "purposes": "Ändamål",
    },
    "en": {
        "title": "Access request: marketing register (lead)",
        "erased": "Your data has been erased",
        "source": "Where the data comes from",
        "current_state": "Current data",
        "consents": "Consents and their evidence",
        "contacts": "Contacts sent to you",
        "campaigns": "Marketing campaigns (list, control group or removal, and why)",
        "audiences": "Marketing audiences",
        "retention": "How long it is kept",
        "purposes": "Purposes",
    },
}


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def _block(value: Any) -> str:
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            cols = list(value[0])
            head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '') or ''))}</td>" for c in cols) + "</tr>"
                for r in value
            )
            return f"<table><tr>{head}</tr>{rows}</table>"
        return "<ul>" + "".join(f"<li>{html.escape(str(v))}</li>" for v in value) + "</ul>" if value else "<p>—</p>"
    if isinstance(value, dict):
        return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{_block(v)}</dd>" for k, v in value.items()) + "</dl>"
    return html.escape("—" if value is None else str(value))


def render_html(report: dict[str, Any], language: str | None = None) -> str:
    lang = language or report["report"].get("language") or "fi"
    t = TITLES.get(lang, TITLES["fi"])
    if report["report"].get("erased"):
        body = f"<h2>{t['erased']}</h2>{_block({k: report[k] for k in ('erased_on', 'reasons', 'kept')})}"
    else:
        body = "".join(
            f"<h2>{t[key]}</h2>{_block(report[key])}"
            for key in (
                "source",
                "current_state",
                "consents",
                "contacts",
                "campaigns",
                "audiences",
                "retention",
                "purposes",
            )
        )
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{t["title"]}</title></head>'
        f"<body><h1>{t['title']}</h1>{body}</body></html>\n"
    )
