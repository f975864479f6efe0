"""The right of access for prospects (`lupa sar --prospect-id`, `--email -`, `--personal-id -`).

A prospect's report holds what the warehouse keeps about that one lead: where the data came from
(the lead source and when it was collected), every delivered state with its consents and their
evidence (wording version, evidence reference), the contacts sent to the prospect, the prospect
audiences and exclusions of the latest build, how long the data is kept, and why. An erased
prospect gets only the erasure date and what the suppression record keeps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from assets.privacy.prospect_erasure import erased_prospects
from assets.storage import prospect_suppression
from assets.storage.suppression import pseudonym
from assets.storage.zones import LupaStorage, query, table_exists
from data_contracts.audiences import PROSPECT_AUDIENCE_TABLES, PROSPECT_EXCLUSIONS_TABLE
from data_contracts.identifiers import email_normalised
from data_contracts.policy import MarketingPolicy
from data_contracts.vocabulary import CHANNELS


@dataclass
class ProspectMatch:
    prospect_ids: list[str] = field(default_factory=list)
    #: the latest erasure date recorded for the identifier asked about, when it was erased
    erased_on: dt.date | None = None


def find_prospects(
    storage: LupaStorage, *, prospect_id: str | None = None, personal_id: str | None = None, email: str | None = None
) -> ProspectMatch:
    """Prospects held under a prospect id, an identity code or an email address (every delivered row)."""
    asked = prospect_id or personal_id or (email_normalised(email) or email if email else None)
    match = ProspectMatch()
    with storage.warehouse(read_only=True) as conn:
        if table_exists(conn, "prospects_valid"):
            rows = query(conn, "select distinct prospect_id, personal_id, email from prospects_valid")
            if prospect_id:
                hit = pl.col("prospect_id") == prospect_id
            elif personal_id:
                hit = pl.col("personal_id") == personal_id
            else:
                hit = pl.col("email").str.to_lowercase() == (asked or "").lower()
            match.prospect_ids = sorted(set(rows.filter(hit.fill_null(False))["prospect_id"]))
    records = prospect_suppression.load(storage.warehouse_dir) if not match.prospect_ids and asked else None
    if records is not None and records.height:
        dates = records.filter(pl.col("pseudonym") == pseudonym(asked))["erased_on"]
        match.erased_on = dates.max() if dates.len() else None
    return match


def _rows(conn, sql: str, **params) -> list[dict]:
    return query(conn, sql, **params).to_dicts()


def build_prospect_report(
    storage: LupaStorage, prospect_id: str, policy: MarketingPolicy, generated_at: dt.datetime
) -> dict[str, Any]:
    """Everything held about one prospect, with the source of each part."""
    with storage.warehouse(read_only=True) as conn:
        states = _rows(
            conn,
            "select source, collected_on, updated_on, first_name, last_name, personal_id, street_address, "
            "postal_code, city, email, phone, language, email_consent, sms_consent, marketing_objection, "
            "wording_version, evidence_ref, file from prospects_valid where prospect_id = $p "
            "order by updated_on, delivered_on, line",
            p=prospect_id,
        )
        current = (
            _rows(conn, "select * exclude (file) from prospects where prospect_id = $p", p=prospect_id)
            if table_exists(conn, "prospects")
            else []
        )
        contacts = (
            _rows(
                conn,
                "select channel, campaign_id, kind, sent_at from contact_history where customer_id = $p "
                "order by sent_at",
                p=prospect_id,
            )
            if table_exists(conn, "contact_history")
            else []
        )
        # campaigns that planned, listed, held out (control group) or removed the prospect
        campaigns = {
            kind: _rows(
                conn, f"select {columns} from {table} where customer_id = $p order by campaign_id", p=prospect_id
            )
            if table_exists(conn, table)
            else []
            for kind, table, columns in (
                ("planned", "campaign_plan", "campaign_id, status, channel, reason, planned_on"),
                ("released", "campaign_release_list", "campaign_id, send_on, status, channel, reason"),
                ("removed", "campaign_removals", "campaign_id, removed_on, reason"),
            )
        }
        audiences = {
            ch: bool(
                table_exists(conn, PROSPECT_AUDIENCE_TABLES[ch])
                and _rows(conn, f'select 1 from "{PROSPECT_AUDIENCE_TABLES[ch]}" where prospect_id = $p', p=prospect_id)
            )
            for ch in CHANNELS
        }
        exclusions = (
            _rows(
                conn,
                f'select channel, reason, detail, as_of from "{PROSPECT_EXCLUSIONS_TABLE}" where prospect_id = $p '
                "order by channel, reason",
                p=prospect_id,
            )
            if table_exists(conn, PROSPECT_EXCLUSIONS_TABLE)
            else []
        )
    latest = max((s["updated_on"] for s in states), default=None)
    period = policy.retention.prospects.model_dump(exclude_none=True)
    from dateutil.relativedelta import relativedelta

    kept_until = latest + relativedelta(**period) if latest else None
    return {
        "report": {
            "kind": "prospect",
            "prospect_id": prospect_id,
            "generated_at": generated_at,
            "language": (current[0]["language"] if current else None) or "fi",
        },
        "source": {
            "system": "prospects (leads: competitions, events, offer requests, bought address lists)",
            "lead_sources": sorted({s["source"] for s in states}),
            "first_collected_on": min((s["collected_on"] for s in states), default=None),
        },
        "current_state": current[0] if current else None,
        "delivered_states": states,
        "consents": [
            {
                "channel": ch,
                "state": s[f"{ch}_consent"],
                "given_at": s["source"],
                "collected_on": s["collected_on"],
                "updated_on": s["updated_on"],
                "wording_version": s["wording_version"],
                "evidence_ref": s["evidence_ref"],
            }
            for s in states
            for ch in ("email", "sms")
            if s[f"{ch}_consent"]
        ],
        "contacts": contacts,
        "campaigns": campaigns,
        "audiences": {"in": [ch for ch, inside in audiences.items() if inside], "exclusions": exclusions},
        "purposes": [
            "direct marketing to people who are not customers yet (marketing-policy.md, Prospects)",
            "checking that a prospect is not already a customer, and not on the ASML or VTJ bans",
        ],
        "retention": {
            "period": period,
            "counted_from": "the latest updated_on",
            "latest_updated_on": latest,
            "kept_until": kept_until,
        },
    }


def erased_report(match: ProspectMatch, generated_at: dt.datetime, storage: LupaStorage) -> dict[str, Any]:
    """What is held about an erased prospect: the erasure date and the suppression record."""
    entries = [e for e in erased_prospects(storage) if e["erased_on"] == match.erased_on.isoformat()]
    return {
        "report": {"kind": "prospect", "prospect_id": None, "generated_at": generated_at, "erased": True},
        "erased_on": match.erased_on,
        "reasons": sorted({e["reason"] for e in entries}),
        "kept": "a suppression record: keyed pseudonyms of the prospect id, identity code and email address, and "
        "the erasure date, so that a re-delivered list collected before that date never brings the data back",
    }
