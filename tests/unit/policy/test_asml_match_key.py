"""ASML mail match keys: case, accents, spacing and NFC/NFD never change the key."""

from __future__ import annotations

import unicodedata

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from data_contracts.normalise import asml_match_key, asml_match_key_expr, normalise_part


def key_of(*parts):
    return asml_match_key(*parts)


def test_case_accents_and_spacing_are_ignored():
    base = key_of("Äijä", "Öhman-Åberg", "Mannerheimintie 12 A 3", "00100")
    assert base == key_of("aija", "OHMAN-ABERG", "mannerheimintie12a3", "00100")
    assert base == key_of("  ÄIJÄ ", "öhman-åberg", "Mannerheimintie\t12\u00a0A  3", " 00100")
    assert base == "aija|ohman-aberg|mannerheimintie12a3|00100"


def test_nfd_and_nfc_give_the_same_key():
    nfc = unicodedata.normalize("NFC", "Jääskeläinen")
    nfd = unicodedata.normalize("NFD", "Jääskeläinen")
    assert nfc != nfd
    assert key_of("Sää", nfc, "Kötikatu 1", "33100") == key_of(
        unicodedata.normalize("NFD", "Sää"), nfd, unicodedata.normalize("NFD", "Kötikatu 1"), "33100"
    )
    df = pl.DataFrame(
        {
            "f": ["Sää", unicodedata.normalize("NFD", "Sää")],
            "l": [nfc, nfd],
            "s": ["Kötikatu 1", "KÖTIKATU1"],
            "p": ["33100", "33100"],
        }
    )
    keys = df.select(asml_match_key_expr("f", "l", "s", "p").alias("k")).get_column("k").to_list()
    assert keys[0] == keys[1] == key_of("Sää", nfc, "Kötikatu 1", "33100")


def test_different_people_differ():
    assert key_of("Matti", "Virtanen", "Katu 1", "00100") != key_of("Matti", "Virtanen", "Katu 1", "00200")
    assert key_of("Matti", "Virtanen", "Katu 1", "00100") != key_of("Mattiv", "irtanen", "Katu 1", "00100")


def test_incomplete_records_never_match():
    assert key_of(None, "Virtanen", "Katu 1", "00100") is None
    assert key_of("Matti", "Virtanen", "   ", "00100") is None
    df = pl.DataFrame({"f": ["Matti", None], "l": ["V", "V"], "s": [None, "K"], "p": ["1", "1"]})
    assert df.select(asml_match_key_expr("f", "l", "s", "p")).to_series().to_list() == [None, None]


def test_sharp_s_and_compatibility_forms():
    assert normalise_part("Straße") == normalise_part("STRASSE") == "strasse"
    assert normalise_part("\uff2d\uff41\uff54\uff54\uff49") == "matti"  # full-width letters
    assert normalise_part("ﬁnland") == "finland"  # ligature


_NAME_CHARS = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -.'|")
    + list("äöåÄÖÅéèüÜßñçøæ")
    + ["\u0308", "\u030a", "\u0301", "\u00a0", "\t", "\u2009", "\u3000", "\n", "\uff21", "ﬁ", "İ", "ı", "Ω"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(*[st.one_of(st.none(), st.text(_NAME_CHARS, max_size=12)) for _ in range(4)]), max_size=20))
def test_python_and_polars_keys_agree(records):
    df = (
        pl.DataFrame(records, schema=["f", "l", "s", "p"], orient="row")
        if records
        else pl.DataFrame(schema={c: pl.String for c in "flsp"})
    )
    got = df.select(asml_match_key_expr("f", "l", "s", "p").alias("k")).get_column("k").to_list()
    assert got == [asml_match_key(*r) for r in records]


@settings(max_examples=200, deadline=None)
@given(st.text(_NAME_CHARS, min_size=1, max_size=15))
def test_key_is_invariant_under_forms_and_case(text):
    k = normalise_part(text)
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        assert normalise_part(unicodedata.normalize(form, text)) == k
    assert normalise_part(text.upper()) == normalise_part(text.lower()) or "ı" in text or "İ" in text
    assert normalise_part(" ".join(text)) == k
