"""Segment names and descriptions in Finnish, Swedish and English, from centroid features.

The rules are data: `NAME_RULES` is an ordered table (the first rule whose conditions all hold
names the segment) and `DESCRIPTION_RULES` another (every fragment whose conditions hold is
included, in table order). A condition is (feature, operator, threshold) on the segment's centroid
in business units: annual kWh, winter/summer ratio, shares of use. A missing feature makes its
condition false. Segments that no rule names get `FALLBACK_NAME`.

Two segments matching the same name rule get a qualifier by their annual use ("lower use",
"higher use", ...), so names are unique. Segments whose names are fixed (kept from the previous
model) keep them; only the others are qualified.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from data_contracts.vocabulary import LANGUAGES

NAME_FIELDS = ("name_fi", "name_sv", "name_en", "description_fi", "description_sv", "description_en")
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

Condition = tuple[str, str, float]


@dataclass(frozen=True)
class NameRule:
    key: str
    when: tuple[Condition, ...]
    fi: str
    sv: str
    en: str


@dataclass(frozen=True)
class Fragment:
    key: str
    when: tuple[Condition, ...]
    fi: str
    sv: str
    en: str


# Thresholds in business units. Finnish household benchmarks: a district-heated flat uses about
# 2,000-4,000 kWh a year, a heat-pump house 8,000-15,000, a direct electric house 15,000-25,000.
COTTAGE_MAX_WINTER_SUMMER = 0.75
WEEKEND_MAX_RATIO = 0.75
ELECTRIC_MIN_WINTER_SUMMER = 2.8
HEATING_MIN_WINTER_SUMMER = 1.6
HIGH_ANNUAL_KWH = 12_000
MODERATE_ANNUAL_KWH = 5_000
NIGHT_MIN_SHARE = 0.5
DAYTIME_MIN_SHARE = 0.4

NAME_RULES: tuple[NameRule, ...] = (
    NameRule(
        "summer_cottage",
        (("winter_summer_ratio", "<", COTTAGE_MAX_WINTER_SUMMER),),
        "Kesämökki",
        "Sommarstuga",
        "Summer cottage",
    ),
    NameRule(
        "weekend_place",
        (("weekday_weekend_ratio", "<", WEEKEND_MAX_RATIO), ("annual_kwh", "<", MODERATE_ANNUAL_KWH)),
        "Vapaa-ajan asunto",
        "Fritidsbostad",
        "Weekend and holiday home",
    ),
    NameRule(
        "electric_heated_house",
        (("winter_summer_ratio", ">=", ELECTRIC_MIN_WINTER_SUMMER), ("annual_kwh", ">=", HIGH_ANNUAL_KWH)),
        "Sähkölämmitteinen omakotitalo",
        "Elvärmt egnahemshus",
        "Electrically heated house",
    ),
    NameRule(
        "ev_night_charger",
        (("night_share", ">=", NIGHT_MIN_SHARE),),
        "Sähköauton yölataaja",
        "Elbilsladdare nattetid",
        "Night-time EV charger",
    ),
    NameRule(
        "heat_pump_house",
        (("winter_summer_ratio", ">=", HEATING_MIN_WINTER_SUMMER), ("annual_kwh", ">=", MODERATE_ANNUAL_KWH)),
        "Lämpöpumppuomakotitalo",
        "Egnahemshus med värmepump",
        "Heat-pump house",
    ),
    NameRule(
        "home_office",
        (("weekday_daytime_share", ">=", DAYTIME_MIN_SHARE),),
        "Etätyökoti",
        "Distansarbetshem",
        "Daytime home office",
    ),
    NameRule(
        "district_heated_apartment",
        (("annual_kwh", "<", MODERATE_ANNUAL_KWH), ("winter_summer_ratio", "<", HEATING_MIN_WINTER_SUMMER)),
        "Kaukolämmitetty kerrostaloasunto",
        "Fjärrvärmd lägenhet",
        "District-heated apartment",
    ),
    NameRule(
        "high_use_household",
        (("annual_kwh", ">=", HIGH_ANNUAL_KWH),),
        "Suurkuluttajakotitalous",
        "Hushåll med hög förbrukning",
        "High-use household",
    ),
)

FALLBACK_NAME = NameRule("typical_household", (), "Tavallinen kotitalous", "Vanligt hushåll", "Typical household")

DESCRIPTION_RULES: tuple[Fragment, ...] = (
    Fragment(
        "strong_winter_peak",
        (("winter_summer_ratio", ">=", ELECTRIC_MIN_WINTER_SUMMER),),
        "voimakas talvihuippu",
        "kraftig vintertopp",
        "strong winter peak",
    ),
    Fragment(
        "winter_emphasis",
        (
            ("winter_summer_ratio", ">=", HEATING_MIN_WINTER_SUMMER),
            ("winter_summer_ratio", "<", ELECTRIC_MIN_WINTER_SUMMER),
        ),
        "selvä talvipainotus",
        "tydlig vinterbetoning",
        "clear winter emphasis",
    ),
    Fragment(
        "summer_use",
        (("winter_summer_ratio", "<", COTTAGE_MAX_WINTER_SUMMER),),
        "käyttö painottuu kesään",
        "förbrukningen är störst på sommaren",
        "use concentrated in summer",
    ),
    Fragment(
        "high_annual",
        (("annual_kwh", ">=", HIGH_ANNUAL_KWH),),
        "suuri vuosikulutus",
        "hög årsförbrukning",
        "high annual use",
    ),
    Fragment(
        "moderate_annual",
        (("annual_kwh", ">=", MODERATE_ANNUAL_KWH), ("annual_kwh", "<", HIGH_ANNUAL_KWH)),
        "keskisuuri vuosikulutus",
        "medelhög årsförbrukning",
        "moderate annual use",
    ),
    Fragment(
        "low_annual",
        (("annual_kwh", "<", MODERATE_ANNUAL_KWH),),
        "pieni vuosikulutus",
        "låg årsförbrukning",
        "low annual use",
    ),
    Fragment(
        "night_use",
        (("night_share", ">=", NIGHT_MIN_SHARE),),
        "yli puolet käytöstä yöllä (22–07)",
        "över hälften av förbrukningen nattetid (22–07)",
        "over half of use at night (22–07)",
    ),
    Fragment(
        "weekday_daytime",
        (("weekday_daytime_share", ">=", DAYTIME_MIN_SHARE),),
        "paljon käyttöä arkipäivisin",
        "mycket förbrukning dagtid på vardagar",
        "high weekday daytime use",
    ),
    Fragment(
        "evening",
        (("evening_share", ">=", 0.35),),
        "iltapainotteinen",
        "kvällsbetonad",
        "evening-weighted",
    ),
    Fragment(
        "weekend",
        (("weekday_weekend_ratio", "<", WEEKEND_MAX_RATIO),),
        "painottuu viikonloppuihin",
        "tyngdpunkt på veckoslut",
        "weekend-weighted",
    ),
    Fragment(
        "uneven_load",
        (("load_factor", "<", 0.1),),
        "hyvin vaihteleva kuorma",
        "mycket ojämn last",
        "very uneven load",
    ),
)

NO_FRAGMENT = {"fi": "ei erityispiirteitä", "sv": "inga särdrag", "en": "no distinctive features"}

#: Qualifiers by rank of annual use inside a group of segments that share a name.
QUALIFIERS: dict[int, tuple[dict[str, str], ...]] = {
    2: (
        {"fi": "pienempi kulutus", "sv": "lägre förbrukning", "en": "lower use"},
        {"fi": "suurempi kulutus", "sv": "högre förbrukning", "en": "higher use"},
    ),
    3: (
        {"fi": "pieni kulutus", "sv": "låg förbrukning", "en": "low use"},
        {"fi": "keskikulutus", "sv": "medelförbrukning", "en": "medium use"},
        {"fi": "suuri kulutus", "sv": "hög förbrukning", "en": "high use"},
    ),
}


#: Qualifiers by rank of winter/summer ratio, used instead when ranking by annual use would put "lower use"
#: on a segment whose winter peak is the stronger one (a heat-pump house with the higher ratio uses more in
#: winter, whatever its annual total): the label must not mislead a marketer picking a winter offer.
PEAK_QUALIFIERS: dict[int, tuple[dict[str, str], ...]] = {
    2: (
        {"fi": "loivempi talvihuippu", "sv": "mildare vintertopp", "en": "milder winter peak"},
        {"fi": "jyrkempi talvihuippu", "sv": "kraftigare vintertopp", "en": "stronger winter peak"},
    ),
    3: (
        {"fi": "loiva talvihuippu", "sv": "mild vintertopp", "en": "mild winter peak"},
        {"fi": "kohtalainen talvihuippu", "sv": "måttlig vintertopp", "en": "moderate winter peak"},
        {"fi": "jyrkkä talvihuippu", "sv": "kraftig vintertopp", "en": "strong winter peak"},
    ),
}


def holds(condition: Condition, centroid: dict[str, Any]) -> bool:
    feature, op, threshold = condition
    value = centroid.get(feature)
    if value is None or value != value:  # missing or NaN
        return False
    return _OPS[op](float(value), threshold)


def name_rule_for(centroid: dict[str, Any]) -> NameRule:
    """First rule whose conditions all hold, else the fallback."""
    for rule in NAME_RULES:
        if all(holds(c, centroid) for c in rule.when):
            return rule
    return FALLBACK_NAME


def describe(centroid: dict[str, Any]) -> dict[str, str]:
    """description_fi/sv/en: every matching fragment in table order, joined with ', '."""
    frags = [f for f in DESCRIPTION_RULES if all(holds(c, centroid) for c in f.when)]
    return {
        f"description_{lang}": ", ".join(getattr(f, lang) for f in frags) if frags else NO_FRAGMENT[lang]
        for lang in LANGUAGES
    }


def name_segments(
    centroids: list[dict[str, Any]],
    fixed_names: dict[int, dict[str, str]] | None = None,
) -> dict[int, dict[str, str]]:
    """Names and descriptions per cluster. Each centroid dict holds `cluster` (an int key) and the
    features in business units. `fixed_names` maps cluster -> name_fi/name_sv/name_en that must be
    kept (matched to the previous model)."""
    fixed_names = fixed_names or {}
    out: dict[int, dict[str, str]] = {}
    base: dict[int, tuple[str, str, str]] = {}
    by_cluster = {int(c["cluster"]): c for c in centroids}
    for cluster, centroid in by_cluster.items():
        if cluster in fixed_names:
            n = fixed_names[cluster]
            base[cluster] = (n["name_fi"], n["name_sv"], n["name_en"])
            rule_key = "kept"
        else:
            rule = name_rule_for(centroid)
            base[cluster] = (rule.fi, rule.sv, rule.en)
            rule_key = rule.key
        out[cluster] = {
            "name_fi": base[cluster][0],
            "name_sv": base[cluster][1],
            "name_en": base[cluster][2],
            **describe(centroid),
            "rule": rule_key,
        }
    # qualify the non-fixed members of every group sharing a name, by annual use
    groups: dict[tuple[str, str, str], list[int]] = {}
    for cluster, names in base.items():
        groups.setdefault(names, []).append(cluster)
    for names, members in groups.items():
        if len(members) < 2 or all(m in fixed_names for m in members):
            continue
        ranked, quals = _qualifier_ranking(members, by_cluster)
        for rank, m in enumerate(ranked):
            if m in fixed_names:
                continue
            q = (
                quals[rank]
                if quals
                else {"fi": f"ryhmä {rank + 1}", "sv": f"grupp {rank + 1}", "en": f"group {rank + 1}"}
            )
            for i, lang in enumerate(LANGUAGES):
                out[m][f"name_{lang}"] = f"{names[i]} ({q[lang]})"
    _make_unique(out, fixed_names)
    return out


def _qualifier_ranking(members: list[int], by_cluster: dict[int, dict[str, Any]]):
    """Rank by annual use, unless that order disagrees with the winter/summer ratio's: then by the ratio."""
    by_use = sorted(members, key=lambda m: (_annual(by_cluster[m]), m))
    ratios = [by_cluster[m].get("winter_summer_ratio") for m in by_use]
    if all(r is not None and r == r for r in ratios) and any(b < a for a, b in zip(ratios, ratios[1:], strict=False)):
        by_peak = sorted(members, key=lambda m: (float(by_cluster[m]["winter_summer_ratio"]), m))
        return by_peak, PEAK_QUALIFIERS.get(len(by_peak))
    return by_use, QUALIFIERS.get(len(by_use))


def _annual(centroid: dict[str, Any]) -> float:
    v = centroid.get("annual_kwh")
    return float(v) if v is not None and v == v else 0.0


def _make_unique(out: dict[int, dict[str, str]], fixed: dict[int, Any]) -> None:
    """Last resort: number any remaining duplicate (per language) among the non-fixed names."""
    for lang in LANGUAGES:
        key = f"name_{lang}"
        seen = {out[c][key] for c in out if c in fixed}
        for c in sorted(c for c in out if c not in fixed):
            name, n = out[c][key], 2
            candidate = name
            while candidate in seen:
                candidate = f"{name} {n}"
                n += 1
            out[c][key] = candidate
            seen.add(candidate)
