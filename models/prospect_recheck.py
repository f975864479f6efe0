"""The independent re-check of the prospect audiences: a second route to the same rules.

Written apart from `models/prospect_audiences.py` on purpose: plain Python over rows, its own
customer match (`asml_match_key`, not the vectorised key), its own age arithmetic and its own
frequency-cap count, so that a bug in the builder is not repeated here. It reads the rules from
the same policy file. Any row it finds breaking a rule blocks publication (the `policy` check).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import polars as pl

from data_contracts.audiences import PROSPECT_AUDIENCE_TABLES, PROSPECT_EXCLUSIONS_TABLE
from data_contracts.normalise import asml_match_key
from data_contracts.policy import MarketingPolicy
from data_contracts.vocabulary import CHANNELS

VIOLATION_SCHEMA = {"table": pl.String, "prospect_id": pl.String, "check": pl.String}


def _age(birth: dt.date, day: dt.date) -> int:
    years = day.year - birth.year
    # a 29 February birthday is reached on 1 March in a non-leap year (decisions §19)
    return years - (1 if (day.month, day.day) < (birth.month, birth.day) else 0)


def _key(row: dict) -> str | None:
    parts = [row.get(c) for c in ("first_name", "last_name", "street_address", "postal_code")]
    if any(not p for p in parts):
        return None
    return asml_match_key(*parts)


def _customer_keys(customers: pl.DataFrame) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {"personal_id": set(), "email": set(), "name_and_address": set()}
    for row in customers.iter_rows(named=True):
        if row.get("personal_id"):
            keys["personal_id"].add(row["personal_id"].upper())
        if row.get("email"):
            keys["email"].add(row["email"].strip().lower())
        key = _key(row)
        if key:
            keys["name_and_address"].add(key)
    return keys


def _is_customer(row: dict, keys: dict[str, set[str]], kinds: tuple[str, ...]) -> bool:
    values = {
        "personal_id": (row.get("personal_id") or "").upper() or None,
        "email": (row.get("email") or "").strip().lower() or None,
        "name_and_address": _key(row),
    }
    return any(values[k] is not None and values[k] in keys[k] for k in kinds)


def _contacts(contact_history: pl.DataFrame, policy: MarketingPolicy, day: dt.date) -> dict[str, int]:
    cap = policy.global_exclusions.frequency_cap
    if cap is None:
        return {}
    tz = ZoneInfo(policy.timezone)
    first = day - dt.timedelta(days=cap.window_days - 1)
    seen: set[tuple] = set()
    counts: dict[str, int] = {}
    for row in contact_history.iter_rows(named=True):
        if row["kind"] != cap.kind or not str(row["customer_id"]).startswith("P"):
            continue
        sent = row["sent_at"]
        sent = sent.replace(tzinfo=dt.UTC) if sent.tzinfo is None else sent
        local = sent.astimezone(tz).date()
        key = (row["customer_id"], row.get("channel"), row.get("campaign_id"), sent)
        if first <= local <= day and key not in seen:
            seen.add(key)
            counts[row["customer_id"]] = counts.get(row["customer_id"], 0) + 1
    return counts


def _active(entry: dict, day: dt.date) -> bool:
    registered = entry.get("registered_on")
    return (registered is None or registered <= day) and (entry["expires_on"] is None or entry["expires_on"] >= day)


@dataclass(frozen=True)
class _Facts:
    """What the re-check derives once from its inputs."""

    day: dt.date
    policy: MarketingPolicy
    customer_keys: dict[str, set[str]]
    contacts: dict[str, int]
    mail: set[str]
    phones: set[str]


def _global_breaks(p: dict, f: _Facts) -> list[str]:
    pp = f.policy.prospects
    assert pp is not None
    minor, cap, day = f.policy.global_exclusions.minor, f.policy.global_exclusions.frequency_cap, f.day
    broken = []
    if "is_customer" in pp.exclusions and _is_customer(p, f.customer_keys, pp.customer_match):
        broken.append("is_customer")
    if "objected" in pp.exclusions and p["marketing_objection"] is not False:
        broken.append("objected")
    if "deceased" in pp.exclusions and p["deceased_on"] is not None and p["deceased_on"] <= day:
        broken.append("deceased")
    if "minor" in pp.exclusions and minor and p["birth_date"] and _age(p["birth_date"], day) < minor.age_limit:
        broken.append("minor")
    if "frequency_cap" in pp.exclusions and cap and f.contacts.get(p["prospect_id"], 0) >= cap.cap:
        broken.append("frequency_cap")
    return broken


def _consent_breaks(row: dict, p: dict, cp) -> list[str]:
    if cp.legal_basis != "consent":
        return []
    broken = []
    if p[cp.consent] != "granted" or p["source"] == "address_list":
        broken.append("consent")
    given = (p["source"], p["collected_on"], p["wording_version"], p["evidence_ref"])
    shown = tuple(
        row[c] for c in ("consent_source", "consent_collected_on", "consent_wording_version", "consent_evidence_ref")
    )
    if given != shown or None in shown:
        broken.append("consent_evidence")
    return broken


def _contact_breaks(row: dict, p: dict, cp) -> list[str]:
    ok = {
        "valid_email": bool(p["email"]) and row.get("email") == p["email"],
        "valid_phone": bool(p["phone_e164"]) and row.get("phone_e164") == p["phone_e164"],
        "valid_mobile": bool(p["phone_e164"]) and row.get("phone_e164") == p["phone_e164"] and p["phone_is_mobile"],
        "valid_postal_address": _key(p) is not None and bool(p.get("city")),
    }[cp.contact]
    broken = [] if ok else ["contact"]
    if not cp.uses_address and any(c in row for c in ("street_address", "postal_code", "city")):
        broken.append("address_shown")
    return broken


def _register_breaks(p: dict, cp, f: _Facts) -> list[str]:
    checks = {
        "asml_mail": lambda: _key(p) in f.mail,
        "asml_phone": lambda: p["phone_e164"] in f.phones,
        "vtj_marketing_ban": lambda: p["marketing_ban"] is not False,
        "safety_ban": lambda: p["safety_ban"] is not False,
    }
    return [code for code in cp.exclusions if checks[code]()]


def prospect_violations(
    audiences: dict[str, pl.DataFrame],
    exclusions: pl.DataFrame,
    prospects: pl.DataFrame,
    customers: pl.DataFrame,
    asml_register: pl.DataFrame,
    contact_history: pl.DataFrame,
    policy: MarketingPolicy,
    day: dt.date,
) -> pl.DataFrame:
    """Every (table, prospect, check) of a published prospect row that breaks a rule."""
    pp = policy.prospects
    assert pp is not None
    by_id = {r["prospect_id"]: r for r in prospects.iter_rows(named=True)}
    entries = [e for e in asml_register.iter_rows(named=True) if _active(e, day)]
    facts = _Facts(
        day,
        policy,
        _customer_keys(customers),
        _contacts(contact_history, policy, day),
        {e["match_key"] for e in entries if e["register"] == "mail" and e["match_key"]},
        {e["phone_e164"] for e in entries if e["register"] == "phone" and e["phone_e164"]},
    )
    excluded = {(r["prospect_id"], r["channel"]) for r in exclusions.iter_rows(named=True)}
    out: list[tuple[str, str, str]] = []
    for channel in CHANNELS:
        table, cp = PROSPECT_AUDIENCE_TABLES[channel], pp.channels[channel]
        for row in audiences[channel].iter_rows(named=True):
            pid = row["prospect_id"]
            p = by_id.get(pid)
            if p is None:
                out.append((table, pid, "unknown_prospect"))
                continue
            broken = ["also_excluded"] if (pid, channel) in excluded else []
            broken += _global_breaks(p, facts) + _consent_breaks(row, p, cp) + _contact_breaks(row, p, cp)
            broken += _register_breaks(p, cp, facts)
            out += [(table, pid, check) for check in broken]
    out += [(PROSPECT_EXCLUSIONS_TABLE, pid, "unknown_prospect") for pid, _ in sorted(excluded) if pid not in by_id]
    return pl.DataFrame(out, schema=VIOLATION_SCHEMA, orient="row")
