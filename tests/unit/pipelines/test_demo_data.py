"""Tests of the synthetic landing-zone generator (pipelines.demo_data).

Small sizes only (tens of customers, a few weeks), so the whole module runs in a few seconds.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest
from stdnum.fi import hetu, ytunnus

from pipelines.demo_data import generate_landing_zone
from pipelines.demo_data.identities import ALL_CENTURY_SIGNS, is_valid_gsrn
from pipelines.demo_data.timeutil import HELSINKI, local_midnight_utc
from pipelines.demo_data.world import Window, build_world

EXAMPLES = Path("/work/shared/examples/landing")
EXPECTED_HEADERS = {
    "customers": "customer_id;customer_type;personal_id;business_id;first_name;last_name;company_name;language;"
    "email;phone;street_address;postal_code;city;customer_since;ended_on",
    "contracts": "contract_id;customer_id;metering_point_id;product_code;contract_type;start_date;end_date;"
    "site_type;heating",
    "billing": "invoice_id;customer_id;contract_id;issued_on;due_on;amount_eur;paid_on;reminders;in_collection",
    "metering": "MeteringPointGSRN;Product Type;Resolution;Unit Type;Reading Type;Start Time;Quantity;Quality",
    "consents": "event_id;customer_id;purpose;channel;action;occurred_at;source;wording_version;evidence_ref",
    "asml": "register;first_name;last_name;street_address;postal_code;phone;registered_on;expires_on",
    "population": "personal_id;deceased_on;marketing_ban;safety_ban;street_address;postal_code;city;updated_on",
    "contacts": "customer_id;channel;campaign_id;kind;sent_at",
    "prospects": (
        "prospect_id;source;collected_on;updated_on;first_name;last_name;personal_id;street_address;postal_code;"
        "city;email;phone;language;email_consent;sms_consent;marketing_objection;wording_version;evidence_ref"
    ),
}
NAME_RE = {
    "customers": r"customers_\d{8}\.csv",
    "contracts": r"contracts_\d{8}\.csv",
    "billing": r"invoices_\d{8}\.csv",
    "metering": r"metering_\d{8}\.csv",
    "consents": r"consent_events_\d{8}\.csv",
    "asml": r"asml_\d{8}\.csv",
    "population": r"vtj_\d{8}\.csv",
    "contacts": r"contacts_\d{8}\.csv",
    "prospects": r"prospects_\d{8}\.csv",
}
SMALL = dict(customers=60, days=20, end=dt.date(2026, 11, 24))


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8-sig").split("\n")[:-1]


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """(physical line, fields) of every data row."""
    return [(i + 1, r) for i, r in enumerate(csv.reader(_lines(path), delimiter=";")) if i > 0]


def _bad(truth: Path) -> dict[tuple[str, int], str]:
    with open(truth / "bad_rows.csv", encoding="utf-8") as f:
        return {(r["file"], int(r["line"])): r["kind"] for r in csv.DictReader(f, delimiter=";")}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    summary = generate_landing_zone(base / "landing", seed=7, **SMALL)
    return base / "landing", base / "demo_truth", summary


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """More people (for shares and rare identity codes), few days (for speed)."""
    base = tmp_path_factory.mktemp("medium")
    summary = generate_landing_zone(base / "landing", customers=700, days=2, seed=11)
    return base / "landing", base / "demo_truth", summary


# --------------------------------------------------------------------------- determinism
def test_same_arguments_give_identical_bytes(small, tmp_path):
    landing, truth, summary = small
    again = generate_landing_zone(tmp_path / "landing", seed=7, **SMALL)
    assert _tree_digest(landing) == _tree_digest(tmp_path / "landing")
    assert {k: v for k, v in summary.items() if not k.endswith("_dir")} == {
        k: v for k, v in again.items() if not k.endswith("_dir")
    }
    for name in ("archetypes.csv", "bad_rows.csv", "pii.csv", "occupancy.csv"):
        assert (truth / name).read_bytes() == (tmp_path / "demo_truth" / name).read_bytes()


def test_other_seed_gives_other_data(small, tmp_path):
    landing, _, _ = small
    generate_landing_zone(tmp_path / "landing", seed=8, **SMALL)
    a, b = _tree_digest(landing), _tree_digest(tmp_path / "landing")
    assert a != b
    snap = "customers/customers_20261125.csv"
    assert a[snap] != b[snap]


def test_gzip_sources_are_deterministic_and_hold_the_same_rows(small, tmp_path):
    landing, _, _ = small
    for run in ("a", "b"):
        generate_landing_zone(tmp_path / run / "landing", seed=7, gzip_sources=("metering", "consents"), **SMALL)
    da, db = _tree_digest(tmp_path / "a" / "landing"), _tree_digest(tmp_path / "b" / "landing")
    assert da == db
    gz = sorted(k for k in da if k.endswith(".gz"))
    assert gz and all(k.split("/")[0] in ("metering", "consents") for k in gz)
    for k in gz:
        plain = landing / k[: -len(".gz")]
        assert gzip.decompress((tmp_path / "a" / "landing" / k).read_bytes()) == plain.read_bytes()


# --------------------------------------------------------------------------- layout and headers
def test_every_file_has_the_example_header_and_name(small):
    landing, _, summary = small
    seen = Counter()
    for source, header in EXPECTED_HEADERS.items():
        files = sorted((landing / source).iterdir())
        assert files, source
        for f in files:
            assert re.fullmatch(NAME_RE[source], f.name), f
            assert _lines(f)[0] == header, f
            seen[source] += 1
    assert sum(seen.values()) == summary["files_written"]
    if EXAMPLES.is_dir():  # the shared contract examples, when present
        for source, header in EXPECTED_HEADERS.items():
            if not (EXAMPLES / source).is_dir():  # the shared examples have no prospects file
                continue
            (example,) = (EXAMPLES / source).iterdir()
            assert _lines(example)[0] == header


def test_delivery_dates_and_snapshot_schedule(small):
    landing, _, _ = small
    end = SMALL["end"]
    first_day = end - dt.timedelta(days=SMALL["days"] - 1)

    def dates(source):
        return sorted(
            dt.datetime.strptime(f.name.split("_")[-1][:8], "%Y%m%d").date() for f in (landing / source).iterdir()
        )

    met = dates("metering")
    assert met[0] == first_day + dt.timedelta(days=1) and met[-1] == end + dt.timedelta(days=1)
    assert len(met) == SMALL["days"]
    for source in ("customers", "contracts", "asml"):
        snaps = dates(source)
        assert snaps[-1] == end + dt.timedelta(days=1)
        assert all((snaps[-1] - d).days % 7 == 0 for d in snaps[1:])
        assert snaps[0] == first_day + dt.timedelta(days=1)


def test_truth_is_outside_the_landing_zone(small, tmp_path):
    landing, truth, summary = small
    assert truth == landing.parent / "demo_truth"
    for name in ("archetypes.csv", "bad_rows.csv", "pii.csv"):
        assert (truth / name).is_file()
    assert not any(p.name in ("archetypes.csv", "bad_rows.csv", "pii.csv") for p in landing.rglob("*"))
    assert {p.name for p in landing.iterdir()} == set(EXPECTED_HEADERS)
    with pytest.raises(ValueError):
        generate_landing_zone(tmp_path / "lz", truth_dir=tmp_path / "lz" / "truth", **SMALL)


# --------------------------------------------------------------------------- identities
def test_every_personal_id_is_valid_except_injected_ones(small):
    landing, truth, _ = small
    bad = _bad(truth)
    checked = 0
    for f in sorted((landing / "customers").iterdir()):
        rel = f"customers/{f.name}"
        for line, r in _rows(f):
            kind = bad.get((rel, line))
            if kind in ("invalid_hetu_check", "hetu_test_code"):
                assert not hetu.is_valid(r[2])
                continue
            if kind is not None or len(r) != 15:
                continue
            if r[1] == "person":
                assert hetu.is_valid(r[2]), (rel, line, r[2])
                checked += 1
            else:
                assert r[2] == "" and ytunnus.is_valid(r[3])
    assert checked > 100


def test_every_century_sign_and_special_ages_on_a_larger_population():
    world = build_world(500, Window(dt.date(2026, 11, 24), 30), seed=3)
    signs = Counter(c.personal_id[6] for c in world.customers if c.is_person)
    assert set(signs) == set(ALL_CENTURY_SIGNS)
    assert signs["-"] > signs["Y"] and signs["A"] > signs["B"]
    end = world.window.end
    ages = [(end - c.birth_date).days / 365.25 for c in world.customers if c.is_person]
    assert any(a < 18 for a in ages) and any(a > 95 for a in ages)
    for c in world.customers:
        if c.is_person:
            assert hetu.is_valid(c.personal_id)
            assert 2 <= int(c.personal_id[7:10]) <= 899
            assert int(c.personal_id[7:10]) % 2 == (0 if c.female else 1)


def test_company_share_languages_and_contacts(medium):
    landing, _, _ = medium
    latest = sorted((landing / "customers").iterdir())[-1]
    rows = [r for _, r in _rows(latest) if len(r) == 15]
    types = Counter(r[1] for r in rows)
    share = types["company"] / (types["company"] + types["person"])
    assert 0.02 <= share <= 0.04
    langs = Counter(r[7] for r in rows if r[1] == "person")
    n = sum(langs.values())
    assert langs["fi"] / n > 0.85 and 0.03 < langs["sv"] / n < 0.1 and langs["en"] > 0
    assert all(re.fullmatch(r"\d{5}", r[11]) for r in rows if r[11].isdigit())
    phones = [r[9] for r in rows]
    assert any(p.startswith("+358 ") for p in phones) and any(re.fullmatch(r"0\d{9}", p) for p in phones)
    assert any(p == "" for p in phones) and any(e == "" for e in (r[8] for r in rows))


def test_metering_point_ids_are_gsrn(small):
    landing, truth, _ = small
    bad = _bad(truth)
    for f in sorted((landing / "contracts").iterdir()):
        for line, r in _rows(f):
            if (f"contracts/{f.name}", line) not in bad:
                assert is_valid_gsrn(r[2]), r


# --------------------------------------------------------------------------- metering
def _dst_run(tmp_path: Path, end: dt.date) -> tuple[Path, Path]:
    generate_landing_zone(tmp_path / "landing", customers=40, days=3, end=end, seed=5, bad_rate=0.0)
    return tmp_path / "landing", tmp_path / "demo_truth"


@pytest.mark.parametrize(
    "dst_day,hours", [(dt.date(2026, 3, 29), 23), (dt.date(2026, 10, 25), 25), (dt.date(2026, 6, 10), 24)]
)
def test_dst_day_lengths(tmp_path, dst_day, hours):
    landing, truth = _dst_run(tmp_path, dst_day + dt.timedelta(days=1))
    f = landing / "metering" / f"metering_{dst_day + dt.timedelta(days=1):%Y%m%d}.csv"
    lo, hi = local_midnight_utc(dst_day), local_midnight_utc(dst_day + dt.timedelta(days=1))
    per_point = Counter()
    for _, r in _rows(f):
        t = dt.datetime.strptime(r[5], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        if lo <= t < hi:
            per_point[(r[0], r[2])] += 1
    assert per_point
    counts = {res: set(n for (_, rr), n in per_point.items() if rr == res) for res in ("PT1H", "PT15M")}
    assert counts["PT1H"] == {hours}
    assert counts["PT15M"] in ({hours * 4}, set())
    first = min(r[5] for _, r in _rows(f))
    assert first == lo.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert lo.astimezone(HELSINKI).hour == 0


def test_metering_values_use_decimal_comma_and_known_codes(small):
    landing, truth, _ = small
    bad = _bad(truth)
    quality = Counter()
    for f in sorted((landing / "metering").iterdir()):
        rel = f"metering/{f.name}"
        for line, r in _rows(f):
            if (rel, line) in bad:
                continue
            assert len(r) == 8 and r[1] == "8716867000030" and r[3] == "kWh" and r[2] in ("PT1H", "PT15M")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:(00|15|30|45):00Z", r[5])
            quality[r[7]] += 1
            if r[7] == "MISSING":
                assert r[6] == ""
            else:
                assert re.fullmatch(r"\d+,\d{3}", r[6]), r
    assert quality["OK"] > 10000 and set(quality) <= {"OK", "ESTIMATED", "MISSING"}


def test_invoice_amounts_use_decimal_comma(small):
    landing, truth, _ = small
    bad = _bad(truth)
    n = 0
    for f in sorted((landing / "billing").iterdir()):
        assert f.read_bytes().startswith(b"\xef\xbb\xbf")  # finance export with BOM
        for line, r in _rows(f):
            if (f"billing/{f.name}", line) in bad:
                continue
            assert re.fullmatch(r"-?\d+,\d\d", r[5]), r
            assert r[4] >= r[3]
            n += 1
    assert n > 50


# --------------------------------------------------------------------------- bad rows
def test_bad_rows_point_at_the_injected_lines(small):
    landing, truth, summary = small
    bad = _bad(truth)
    assert bad and sum(summary["bad_rows"].values()) == len(bad)
    expected_fields = {k: v.count(";") + 1 for k, v in EXPECTED_HEADERS.items()}
    for (rel, line), kind in bad.items():
        lines = _lines(landing / rel)
        raw = lines[line - 1]
        fields = next(csv.reader([raw], delimiter=";"))
        source = rel.split("/")[0]
        if kind == "malformed_row":
            assert len(fields) != expected_fields[source]
        elif kind == "negative_quantity":
            assert fields[6].startswith("-")
        elif kind == "unknown_quality":
            assert fields[7] == "BAD"
        elif kind == "duplicate_interval":
            assert any(l2.split(";")[:6] == fields[:6] for i, l2 in enumerate(lines) if i != line - 1)
        elif kind == "bad_gsrn_check_digit":
            assert not is_valid_gsrn(fields[0] if source == "metering" else fields[2])
    assert summary["restrictive_bad_rows"] == 0


def test_restrictive_bad_rows_are_switchable(tmp_path):
    summary = generate_landing_zone(tmp_path / "landing", restrictive_bad_rows=True, **SMALL)
    with open(tmp_path / "demo_truth" / "bad_rows.csv", encoding="utf-8") as f:
        restrictive = [r for r in csv.DictReader(f, delimiter=";") if r["restricts_contact"] == "1"]
    assert {r["kind"] for r in restrictive} == {"unreadable_asml_row", "unreadable_vtj_row", "malformed_withdrawal"}
    assert summary["restrictive_bad_rows"] == len(restrictive)


def test_no_bad_rows_when_rate_is_zero_and_not_restrictive(tmp_path):
    summary = generate_landing_zone(tmp_path / "landing", customers=40, days=5, bad_rate=0.0)
    assert summary["bad_rows_total"] == 0


# --------------------------------------------------------------------------- ground truth
def test_ground_truth_covers_customers_and_pii(small):
    landing, truth, _ = small
    with open(truth / "archetypes.csv", encoding="utf-8") as f:
        arch = {r["customer_id"]: r["archetype"] for r in csv.DictReader(f, delimiter=";")}
    latest = sorted((landing / "customers").iterdir())[-1]
    ids = {r[0] for _, r in _rows(latest) if len(r) == 15 and not r[0].startswith("C99")}
    assert ids <= set(arch)
    with open(truth / "pii.csv", encoding="utf-8") as f:
        pii = {(r["kind"], r["value"]) for r in csv.DictReader(f, delimiter=";")}
    for _, r in _rows(latest):
        if len(r) == 15 and r[1] == "person" and not r[0].startswith("C99"):
            assert ("street_address", r[10]) in pii
            if r[8]:
                assert ("email", r[8]) in pii


# --------------------------------------------------------------------------- prospects
def test_prospect_deliveries_have_realistic_leads_and_their_bad_rows_quarantine(tmp_path):
    import polars as pl

    from assets.storage.ingestion import read_source
    from assets.storage.zones import LupaStorage
    from data_contracts.sources import prospects

    base = tmp_path / "p"
    summary = generate_landing_zone(base / "landing", customers=400, days=120, seed=5)
    assert summary["prospects"] == 120 and summary["prospect_updates"] > 0
    assert summary["prospects_customer"] > 0 and summary["prospects_asml"] > 0 and summary["prospects_minor"] > 0
    storage = LupaStorage(landing_dir=str(base / "landing"), data_dir=str(tmp_path / "data"))
    outcome = read_source(storage, prospects, dt.date(2026, 11, 24))
    rows = outcome.valid
    by_source = dict(rows.group_by("source").len().rows())
    assert set(by_source) == {"competition", "event", "offer_request", "address_list"}
    granted = rows.filter(pl.col("email_consent") == "granted")
    assert granted.height and granted["evidence_ref"].null_count() == 0
    assert rows.filter((pl.col("source") != "address_list") & pl.col("email_consent").is_null()).height
    assert rows.filter(pl.col("email_consent") == "withdrawn").height + rows["marketing_objection"].eq("1").sum() > 0
    assert rows.filter(pl.col("source") == "address_list")["email_consent"].null_count() == by_source["address_list"]
    # every bad row the generator wrote is quarantined, at its line, and none could restrict contact
    bad = {k: v for k, v in _bad(base / "demo_truth").items() if k[0].startswith("prospects/")}
    assert sorted(set(bad.values())) == [
        "bad_postal_code",
        "bad_prospect_id",
        "collected_after_delivery",
        "consent_on_purchased_list",
        "missing_last_name",
    ]
    quarantined = {
        (f"prospects/{f}", line): rule for f, line, rule in outcome.quarantine.select("file", "line", "rule").rows()
    }
    assert set(quarantined) == set(bad)
    assert (
        quarantined[next(k for k, v in bad.items() if v == "consent_on_purchased_list")] == "consent_on_purchased_list"
    )
    from models.fail_safe import PROSPECT_RESTRICTING_ROWS, blocking_rows

    assert blocking_rows(outcome.quarantine, PROSPECT_RESTRICTING_ROWS).is_empty()
