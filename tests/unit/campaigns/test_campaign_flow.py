"""The campaigns layer on a small crafted warehouse and mart, without a Dagster run: plan, release,
shrink, send lists, cancel, results and reconciliation, as the daily run and `lupa campaign` do them."""

from __future__ import annotations

import datetime as dt

import openpyxl
import polars as pl
import pytest
import yaml

from assets.campaigns import store
from assets.campaigns.assets import run_campaigns
from assets.campaigns.exports import drop_from_send_lists
from assets.storage.mart import publish
from assets.storage.zones import LupaStorage, query, replace_table
from data_contracts.policy import load_policy
from models.campaign_cap import committed_contacts, sent_contacts
from models.campaign_plan import recheck_at_release
from pipelines.explain_campaigns import explain_campaigns

DAY = dt.date(2026, 11, 24)
SEND_ON = dt.date(2026, 12, 10)
KEY = b"flow-key"
POLICY = load_policy()
IDS = [f"C{1000000 + i}" for i in range(1, 41)]
UTC = dt.UTC


def _audience(ids, fields):
    n = len(ids)
    cols = {
        "customer_id": ids,
        "segment_id": [1 + i % 2 for i in range(n)],
        "language": [("fi", "sv", "en")[i % 3] for i in range(n)],
    }
    for f in fields:
        cols[f] = {
            "email": [f"p{i}@example.fi" for i in range(n)],
            "phone_e164": ["+358401234567"] * n,
            "first_name": ["Aino"] * n,
            "last_name": ["Öhman"] * n,
            "street_address": ["Katu 1"] * n,
            "postal_code": ["00100"] * n,
            "city": ["Helsinki"] * n,
        }[f]
    return pl.DataFrame(cols, schema_overrides={"segment_id": pl.Int32}).with_columns(pl.lit(DAY).alias("as_of"))


def publish_day(storage, day, email_ids, letter_ids, exclusions=()):
    tables = {
        "audience_email": _audience(email_ids, ["email"]).with_columns(pl.lit(day).alias("as_of")),
        "audience_sms": _audience([], ["phone_e164"]),
        "audience_letter": _audience(letter_ids, ["first_name", "last_name", "street_address", "postal_code", "city"]),
        "audience_phone": _audience([], ["phone_e164"]),
        "audience_exclusions": pl.DataFrame(
            {
                "customer_id": [e[0] for e in exclusions],
                "channel": [e[1] for e in exclusions],
                "reason": [e[2] for e in exclusions],
            },
            schema={"customer_id": pl.String, "channel": pl.String, "reason": pl.String},
        ).with_columns(pl.lit(day).alias("as_of")),
        "customer_segments": pl.DataFrame(
            {"customer_id": IDS, "segment_id": [1 + i % 2 for i in range(len(IDS))]},
            schema_overrides={"segment_id": pl.Int32},
        ),
        "segment_catalogue": pl.DataFrame(
            {
                "segment_id": [1, 2],
                "name_fi": ["Kesämökki", "Kerrostalo"],
                "name_sv": ["Sommarstuga", "Höghus"],
                "name_en": ["Cottage", "Flat"],
            },
            schema_overrides={"segment_id": pl.Int32},
        ),
    }
    publish(storage.root, tables, tag=day.isoformat())


@pytest.fixture
def storage(tmp_path):
    s = LupaStorage(
        landing_dir=str(tmp_path / "landing"),
        data_dir=str(tmp_path / "data"),
        campaigns_dir=str(tmp_path / "campaigns"),
    )
    (tmp_path / "campaigns").mkdir()
    with s.warehouse() as conn:
        replace_table(
            conn,
            "customers",
            pl.DataFrame(
                {"customer_id": IDS, "language": ["fi"] * len(IDS), "safety_ban": [i == 5 for i in range(len(IDS))]}
            ),
        )
        replace_table(
            conn,
            "contracts",
            pl.DataFrame(
                {
                    "customer_id": IDS,
                    "contract_type": ["open_ended"] * len(IDS),
                    "product_code": ["GREEN_SPOT" if i % 4 == 0 else "SPOT" for i in range(len(IDS))],
                    "site_type": ["apartment"] * len(IDS),
                    "start_date": [
                        SEND_ON + dt.timedelta(days=3) if i % 4 == 0 else dt.date(2024, 1, 1) for i in range(len(IDS))
                    ],
                    "end_date": [None] * len(IDS),
                },
                schema_overrides={"end_date": pl.Date},
            ),
        )
        replace_table(
            conn, "invoices", pl.DataFrame(schema={"customer_id": pl.String, "paid_on": pl.Date, "reminders": pl.Int64})
        )
        replace_table(
            conn,
            "consent_state",
            pl.DataFrame(
                {
                    "customer_id": [IDS[7], IDS[2]],
                    "purpose": ["profiling", "newsletter"],
                    "state": ["withdrawn", "granted"],
                    "occurred_at": [dt.datetime(2026, 1, 5, tzinfo=UTC)] * 2,
                }
            ),
        )
        # IDS[0] already had 4 marketing contacts this year: no room on send_on
        replace_table(
            conn,
            "contact_history",
            pl.DataFrame(
                {
                    "customer_id": [IDS[0]] * 4 + [IDS[30]],
                    "channel": ["email"] * 5,
                    "campaign_id": ["OLD-1", "OLD-2", "OLD-3", "OLD-4", "WINTER"],
                    "kind": ["marketing"] * 5,
                    "sent_at": [dt.datetime(2026, m, 1, 9, tzinfo=UTC) for m in (3, 5, 7, 9)]
                    + [dt.datetime(2026, 11, 20, 9, tzinfo=UTC)],
                },
                schema_overrides={"sent_at": pl.Datetime("us", "UTC")},
            ),
        )
    publish_day(s, DAY, IDS[:20], IDS[10:], exclusions=[(i, "email", "consent_missing") for i in IDS[20:]])
    return s


def write_brief(storage, **change):
    brief = {
        "campaign_id": "WINTER",
        "name": {"fi": "Talvi", "sv": "Vinter", "en": "Winter"},
        "audience": "customers",
        "channels": ["email", "letter"],
        "send_on": SEND_ON,
        "control_share": 0.2,
        "offer_product": "GREEN_SPOT",
        "response_days": 30,
    } | change
    (storage.campaigns_path / f"{brief['campaign_id']}.yaml").write_text(
        yaml.safe_dump(brief, allow_unicode=True), encoding="utf-8"
    )


def release(storage, campaign_id):
    sent = sent_contacts(store_query(storage, "select * from contact_history"))

    def freeze(brief, plan, conn):
        others = store.released_contacts(conn, except_campaign=brief.campaign_id)
        return recheck_at_release(plan, brief.send_on, committed_contacts(sent, others), cap=4, window_days=365)

    return store.release(storage, campaign_id, DAY, freeze)


def store_query(storage, sql):
    with storage.warehouse() as conn:
        return query(conn, sql)


def test_plan_release_shrink_export_and_cancel(storage):
    write_brief(storage)
    (storage.campaigns_path / "broken.yaml").write_text("campaign_id: X\n", encoding="utf-8")
    out = run_campaigns(storage, POLICY, DAY, KEY)
    assert [i["file"] for i in out["invalid"]] == ["broken.yaml"] and "key name" in out["invalid"][0]["error"]
    plan = store_query(storage, "select * from campaign_plan")
    assert plan.height == len(IDS)  # one row per targeted person
    by = {r["customer_id"]: r for r in plan.to_dicts()}
    assert by[IDS[0]]["reason"] == "frequency_cap"
    assert by[IDS[12]]["channel"] in ("email", None) and by[IDS[25]]["channel"] in ("letter", None)
    meta = out["per_campaign"]["WINTER"]
    assert meta["state"] == "planned" and meta["left_out_per_reason"] == {"frequency_cap": 1}
    assert meta["exclusions_per_reason"] == {}
    assert sum(meta["list_size_per_channel"].values()) + meta["control_group"] == len(IDS) - 1
    text = "\n".join(explain_campaigns(storage.warehouse_path, IDS[0]))
    assert "WINTER (planned): left out: frequency_cap" in text and "newsletter: not subscribed" in text
    text = "\n".join(explain_campaigns(storage.warehouse_path, IDS[25]))
    assert "email: consent_missing" in text or "channel letter" in text or "control group" in text
    assert "newsletter: subscribed" in "\n".join(explain_campaigns(storage.warehouse_path, IDS[2]))
    # a plan is not a list: nothing to send until it is released
    assert not (storage.root / "campaign_exports" / "WINTER").exists()

    brief, frozen = release(storage, "WINTER")
    with pytest.raises(store.CampaignError, match="already released"):
        release(storage, "WINTER")
    out = run_campaigns(storage, POLICY, DAY, KEY)
    folder = storage.root / "campaign_exports" / "WINTER"
    email = pl.read_csv(folder / "WINTER_email.csv", separator=";")
    assert set(email.columns) == {
        "recipient_id",
        "recipient_type",
        "language",
        "segment_name",
        "campaign_name",
        "email",
    }
    ws = openpyxl.load_workbook(folder / "WINTER_letter.xlsx").active
    header = [c.value for c in ws[1]]
    postal = [row[header.index("postal_code")] for row in ws.iter_rows(min_row=2)]
    assert postal and all(c.value == "00100" and c.data_type == "s" for c in postal)
    letter = pl.read_csv(folder / "WINTER_letter.csv", separator=";", schema_overrides={"postal_code": pl.String})
    assert IDS[5] not in letter["recipient_id"].to_list()  # safety ban: never an address

    # an erasure takes a person off every written list at once
    victim = email["recipient_id"][0]
    assert drop_from_send_lists(storage.root, [victim]) == {victim: 1}
    assert victim not in pl.read_csv(folder / "WINTER_email.csv", separator=";")["recipient_id"].to_list()
    ws = openpyxl.load_workbook(folder / "WINTER_email.xlsx").active
    assert victim not in [c.value for c in ws["A"]]

    # the next day: IDS[1] withdrew email consent, IDS[12] is gone from every table (erased)
    treated_before = set(current(storage)["recipient_id"])
    later = DAY + dt.timedelta(days=1)
    publish_day(
        storage,
        later,
        [i for i in IDS[:20] if i not in (IDS[1], IDS[12])],
        [i for i in IDS[10:] if i != IDS[12]],
        exclusions=[(IDS[1], "email", "consent_withdrawn")] + [(i, "email", "consent_missing") for i in IDS[20:]],
    )
    run_campaigns(storage, POLICY, later, KEY)
    removed = dict(store_query(storage, "select customer_id, reason from campaign_removals").rows())
    if IDS[1] in removed:
        assert "removed on 2026-11-25: consent_withdrawn" in "\n".join(
            explain_campaigns(storage.warehouse_path, IDS[1])
        )
    listed = set(frozen.filter(pl.col("status") != "left_out")["recipient_id"])
    expected = {i: r for i, r in {IDS[1]: "consent_withdrawn", IDS[12]: "erased"}.items() if i in listed}
    assert removed == expected
    after = set(current(storage)["recipient_id"])
    assert after <= treated_before  # only shrinks
    # a person who comes back is not added again
    publish_day(storage, later + dt.timedelta(days=1), IDS[:20], IDS[10:])
    run_campaigns(storage, POLICY, later + dt.timedelta(days=1), KEY)
    assert set(current(storage)["recipient_id"]) == after

    store.cancel(storage, "WINTER", DAY)
    run_campaigns(storage, POLICY, later + dt.timedelta(days=1), KEY)
    assert not folder.exists()
    with storage.warehouse() as conn:
        assert store.released_contacts(conn).height == 0  # the contacts are given back


def test_results_and_reconciliation_after_the_response_window(storage):
    write_brief(storage, control_share=0.3)
    run_campaigns(storage, POLICY, DAY, KEY)
    _, frozen = release(storage, "WINTER")
    late = SEND_ON + dt.timedelta(days=31)
    publish_day(storage, late, IDS[:20], IDS[10:])
    out = run_campaigns(storage, POLICY, late, KEY)
    meta = out["per_campaign"]["WINTER"]
    assert set(meta["conversions"]) == {"treated", "control"}
    converted = {IDS[i] for i in range(0, len(IDS), 4)}
    for group in ("treated", "control"):
        members = set(frozen.filter(pl.col("status") == group)["recipient_id"])
        assert meta["conversions"][group] == {"recipients": len(members), "conversions": len(members & converted)}
    assert meta["lift_ci"][0] <= meta["lift"] <= meta["lift_ci"][1] and meta["plot"]
    # IDS[30]'s WINTER contact was in the history, but is IDS[30] on the list?
    findings = store_query(storage, "select * from campaign_reconciliation")
    treated = set(frozen.filter(pl.col("status") == "treated")["recipient_id"])
    stray = set(findings.filter(pl.col("finding") == "not_in_list")["customer_id"])
    assert stray == ({IDS[30]} - treated)
    missing = set(findings.filter(pl.col("finding") == "missing_from_history")["customer_id"])
    assert missing == treated - {IDS[30]}


def test_exclusions_per_reason_count_each_left_out_person_once_per_reason(storage):
    publish_day(
        storage,
        DAY,
        IDS[:10],
        IDS[5:20],
        exclusions=[(i, "email", "consent_missing") for i in IDS[10:]]
        + [(i, "letter", "asml_mail") for i in IDS[20:]]
        + [(i, "letter", "consent_missing") for i in IDS[30:]],
    )
    write_brief(storage)
    meta = run_campaigns(storage, POLICY, DAY, KEY)["per_campaign"]["WINTER"]
    assert meta["left_out_per_reason"]["not_in_audience"] == 20
    assert meta["exclusions_per_reason"] == {"asml_mail": 20, "consent_missing": 20}


def test_prospects_are_planned_and_listed_from_the_prospect_audiences(storage):
    prospects = [f"P{i:09d}" for i in range(1, 7)]
    tables = {
        "audience_email": _audience(IDS[:5], ["email"]),
        "audience_sms": _audience([], ["phone_e164"]),
        "audience_letter": _audience([], ["first_name", "last_name", "street_address", "postal_code", "city"]),
        "audience_phone": _audience([], ["phone_e164"]),
        "prospect_audience_email": pl.DataFrame(
            {
                "prospect_id": prospects[:4],
                "language": ["fi", "sv", "en", "fi"],
                "email": [f"{p}@example.fi" for p in prospects[:4]],
            }
        ).with_columns(pl.lit(DAY).alias("as_of")),
        "prospect_audience_letter": pl.DataFrame(
            {
                "prospect_id": [prospects[4]],
                "language": ["fi"],
                "first_name": ["Aino"],
                "last_name": ["Ö"],
                "street_address": ["Katu 2"],
                "postal_code": ["00980"],
                "city": ["Helsinki"],
            }
        ).with_columns(pl.lit(DAY).alias("as_of")),
        "prospect_audience_exclusions": pl.DataFrame(
            {"prospect_id": [prospects[5]] * 2, "channel": ["email", "letter"], "reason": ["objected", "objected"]}
        ).with_columns(pl.lit(DAY).alias("as_of")),
    }
    publish(storage.root, tables, tag="prospects")
    write_brief(storage, audience="prospects", control_share=0.0, send_on=dt.date(2099, 1, 1))
    out = run_campaigns(storage, POLICY, DAY, KEY)
    meta = out["per_campaign"]["WINTER"]
    assert meta["list_size_per_channel"] == {"email": 4, "letter": 1}
    assert meta["exclusions_per_reason"] == {"objected": 1}
    plan = store_query(storage, "select * from campaign_plan")
    assert set(plan["recipient_type"]) == {"prospect"} and plan.height == 6
    _, frozen = release(storage, "WINTER")
    run_campaigns(storage, POLICY, DAY, KEY)
    folder = storage.root / "campaign_exports" / "WINTER"
    letter = pl.read_csv(folder / "WINTER_letter.csv", separator=";", infer_schema=False)
    assert letter["recipient_id"].to_list() == [prospects[4]] and letter["postal_code"].to_list() == ["00980"]
    email = pl.read_csv(folder / "WINTER_email.csv", separator=";", infer_schema=False)
    assert email["campaign_name"].to_list() == ["Talvi", "Vinter", "Winter", "Talvi"]
    assert email["segment_name"].null_count() == 4  # prospects are never profiled


def test_a_brief_for_prospects_is_refused_while_no_prospect_audience_is_published(storage):
    write_brief(storage, audience="both")
    out = run_campaigns(storage, POLICY, DAY, KEY)
    assert "WINTER" not in out["per_campaign"]
    assert "prospect audiences are not available" in out["invalid"][0]["error"]


def current(storage):
    with storage.warehouse() as conn:
        return store.current_lists(conn)


def test_lupa_campaign_release_and_cancel(storage, monkeypatch, capsys):
    import os

    from pipelines.cli import main

    root = storage.root.parent
    monkeypatch.setenv("LUPA_VAR_DIR", str(root))
    monkeypatch.setenv("LUPA_DATA_DIR", str(storage.root))
    monkeypatch.setenv("LUPA_CAMPAIGNS_DIR", str(storage.campaigns_path))
    monkeypatch.setenv("LUPA_PSEUDONYM_KEY", "k")
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        assert main(["campaign", "cancel", "WINTER"]) == 1
        assert "is not released" in capsys.readouterr().err
        write_brief(storage, send_on=dt.date(2099, 1, 1))
        run_campaigns(storage, POLICY, DAY, KEY)
        assert main(["campaign", "release", "WINTER"]) == 0
        out = capsys.readouterr().out
        assert "released WINTER for 2099-01-01" in out and "send lists" in out
        assert (storage.root / "campaign_exports" / "WINTER" / "WINTER_email.xlsx").exists()
        assert main(["campaign", "release", "WINTER"]) == 1
        assert main(["campaign", "cancel", "WINTER"]) == 0
        assert not (storage.root / "campaign_exports" / "WINTER").exists()
        assert main(["campaign", "release", "NOPE"]) == 1
        assert "no brief with this campaign_id" in capsys.readouterr().err
    finally:
        os.umask(umask)
