"""Segment naming rules: explicit, ordered, trilingual, unique."""

from __future__ import annotations

import pytest

from models import naming
from models.naming import DESCRIPTION_RULES, FALLBACK_NAME, NAME_RULES, describe, name_rule_for, name_segments

ELECTRIC = {
    "annual_kwh": 20_000,
    "winter_summer_ratio": 3.8,
    "night_share": 0.35,
    "weekday_daytime_share": 0.25,
    "weekday_weekend_ratio": 1.0,
    "evening_share": 0.2,
    "load_factor": 0.3,
}
HEAT_PUMP = {**ELECTRIC, "annual_kwh": 10_000, "winter_summer_ratio": 2.3}
APARTMENT = {
    "annual_kwh": 2_200,
    "winter_summer_ratio": 1.2,
    "night_share": 0.27,
    "weekday_daytime_share": 0.3,
    "weekday_weekend_ratio": 0.9,
    "evening_share": 0.36,
    "load_factor": 0.25,
}
COTTAGE = {
    **APARTMENT,
    "annual_kwh": 1_800,
    "winter_summer_ratio": 0.45,
    "weekday_weekend_ratio": 0.55,
    "load_factor": 0.05,
}
EV = {**APARTMENT, "annual_kwh": 7_000, "night_share": 0.68}
OFFICE = {**APARTMENT, "annual_kwh": 3_700, "weekday_daytime_share": 0.5}


@pytest.mark.parametrize(
    ("centroid", "key", "fi", "sv", "en"),
    [
        (
            ELECTRIC,
            "electric_heated_house",
            "Sähkölämmitteinen omakotitalo",
            "Elvärmt egnahemshus",
            "Electrically heated house",
        ),
        (HEAT_PUMP, "heat_pump_house", "Lämpöpumppuomakotitalo", "Egnahemshus med värmepump", "Heat-pump house"),
        (
            APARTMENT,
            "district_heated_apartment",
            "Kaukolämmitetty kerrostaloasunto",
            "Fjärrvärmd lägenhet",
            "District-heated apartment",
        ),
        (COTTAGE, "summer_cottage", "Kesämökki", "Sommarstuga", "Summer cottage"),
        (EV, "ev_night_charger", "Sähköauton yölataaja", "Elbilsladdare nattetid", "Night-time EV charger"),
        (OFFICE, "home_office", "Etätyökoti", "Distansarbetshem", "Daytime home office"),
    ],
)
def test_archetype_centroids_get_their_business_names(centroid, key, fi, sv, en):
    rule = name_rule_for(centroid)
    assert (rule.key, rule.fi, rule.sv, rule.en) == (key, fi, sv, en)


def test_electric_house_description_in_three_languages():
    d = describe(ELECTRIC)
    assert d["description_en"] == "strong winter peak, high annual use"
    assert d["description_fi"] == "voimakas talvihuippu, suuri vuosikulutus"
    assert d["description_sv"] == "kraftig vintertopp, hög årsförbrukning"


def test_first_matching_rule_wins():
    # an electric house that also charges at night is still named by the earlier heating rule ...
    both = {**ELECTRIC, "night_share": 0.6}
    assert name_rule_for(both).key == "electric_heated_house"
    # ... while its description carries both traits
    assert "over half of use at night (22–07)" in describe(both)["description_en"]
    keys = [r.key for r in NAME_RULES]
    assert keys.index("electric_heated_house") < keys.index("ev_night_charger")


def test_fallback_name_and_missing_features():
    plain = {"annual_kwh": 6_000, "winter_summer_ratio": 1.2, "night_share": 0.3, "weekday_daytime_share": 0.3}
    assert name_rule_for(plain) is FALLBACK_NAME
    assert name_rule_for({}) is FALLBACK_NAME  # a missing feature makes a condition false
    assert name_rule_for({"annual_kwh": float("nan"), "winter_summer_ratio": 0.2}).key == "summer_cottage"
    assert describe({})["description_en"] == naming.NO_FRAGMENT["en"]


def test_every_rule_has_three_non_empty_languages_and_known_operators():
    for rule in (*NAME_RULES, FALLBACK_NAME, *DESCRIPTION_RULES):
        assert rule.fi and rule.sv and rule.en
        for feature, op, threshold in rule.when:
            assert op in ("<", "<=", ">", ">=") and isinstance(feature, str) and threshold == threshold
    assert len({r.key for r in NAME_RULES}) == len(NAME_RULES)


def test_two_segments_matching_one_rule_get_distinct_qualified_names():
    big = {**ELECTRIC, "cluster": 0, "annual_kwh": 25_000}
    small = {**ELECTRIC, "cluster": 1, "annual_kwh": 15_000}
    out = name_segments([big, small, {**APARTMENT, "cluster": 2}])
    assert out[0]["name_en"] == "Electrically heated house (higher use)"
    assert out[1]["name_en"] == "Electrically heated house (lower use)"
    assert out[1]["name_fi"] == "Sähkölämmitteinen omakotitalo (pienempi kulutus)"
    assert out[0]["name_sv"] == "Elvärmt egnahemshus (högre förbrukning)"
    assert out[2]["name_en"] == "District-heated apartment"
    for lang in ("fi", "sv", "en"):
        assert len({o[f"name_{lang}"] for o in out.values()}) == 3


def test_many_segments_on_one_rule_stay_unique():
    cents = [{**APARTMENT, "cluster": i, "annual_kwh": 2_000 + 100 * i} for i in range(5)]
    out = name_segments(cents)
    for lang in ("fi", "sv", "en"):
        assert len({o[f"name_{lang}"] for o in out.values()}) == 5


def test_fixed_names_are_kept_and_newcomers_are_qualified_against_them():
    fixed = {0: {"name_fi": "Kesämökki", "name_sv": "Sommarstuga", "name_en": "Summer cottage"}}
    out = name_segments([{**COTTAGE, "cluster": 0}, {**COTTAGE, "cluster": 1, "annual_kwh": 4_000}], fixed_names=fixed)
    assert out[0]["name_en"] == "Summer cottage"
    assert out[1]["name_en"] == "Summer cottage (higher use)"
    # a kept name is kept even when the rules would now say otherwise; the description follows the data
    out = name_segments([{**ELECTRIC, "cluster": 0}], fixed_names=fixed)
    assert out[0]["name_en"] == "Summer cottage"
    assert out[0]["description_en"] == "strong winter peak, high annual use"


def test_an_ev_charger_centroid_with_some_winter_peak_is_not_named_a_heat_pump_house():
    """Measured on the default demo: EV owners' centroid has winter/summer 1.7 and night share 0.57."""
    from models.naming import name_rule_for

    ev = {
        "annual_kwh": 10_400,
        "winter_summer_ratio": 1.69,
        "night_share": 0.57,
        "weekday_weekend_ratio": 0.87,
        "weekday_daytime_share": 0.2,
    }
    electric = {
        "annual_kwh": 22_000,
        "winter_summer_ratio": 3.3,
        "night_share": 0.55,
        "weekday_weekend_ratio": 0.9,
        "weekday_daytime_share": 0.2,
    }
    assert name_rule_for(ev).en == "Night-time EV charger"
    assert name_rule_for(electric).en == "Electrically heated house"


def test_lower_use_never_labels_the_segment_with_the_stronger_winter_peak():
    # the demo's two heat-pump houses: the smaller user has the steeper winter (3.25 against 2.66)
    base = {"weekday_weekend_ratio": 1.0, "night_share": 0.3, "weekday_daytime_share": 0.3}
    steep = {**base, "cluster": 5, "annual_kwh": 11_055, "winter_summer_ratio": 3.25}
    mild = {**base, "cluster": 6, "annual_kwh": 12_833, "winter_summer_ratio": 2.66}
    out = name_segments([steep, mild])
    assert out[5]["name_en"] == out[6]["name_en"].replace("milder", "stronger")
    assert out[5]["name_en"].endswith("(stronger winter peak)") and "lower use" not in out[5]["name_en"]
    assert out[6]["name_en"].endswith("(milder winter peak)")
    assert out[5]["name_fi"].endswith("(jyrkempi talvihuippu)") and out[6]["name_sv"].endswith("(mildare vintertopp)")
    # when use and winter peak agree, the use qualifier stays
    out = name_segments([{**steep, "annual_kwh": 11_900, "winter_summer_ratio": 2.6}, mild])
    assert out[5]["name_en"].endswith("(lower use)") and out[6]["name_en"].endswith("(higher use)")
