"""Exports a marketer opens in Excel: postal codes and phones stay text, segment names come in the
recipient's language, and a list holds only the channel's contact data, never an identity code or an
address under a safety ban."""

from __future__ import annotations

import openpyxl
import polars as pl

from assets.storage.excel import write_csv_for_excel, write_xlsx
from assets.storage.mart import publish
from models.send_lists import send_list, with_segment_names

CATALOGUE = pl.DataFrame(
    {
        "segment_id": [1, 2],
        "name_fi": ["Kesämökki", "Kerrostalo"],
        "name_sv": ["Sommarstuga", "Höghus"],
        "name_en": ["Summer cottage", "Apartment"],
    },
    schema_overrides={"segment_id": pl.Int32},
)


def _cells(path):
    ws = openpyxl.load_workbook(path).active
    rows = [[c for c in row] for row in ws.iter_rows()]
    header = [c.value for c in rows[0]]
    return header, [{h: c for h, c in zip(header, row, strict=True)} for row in rows[1:]]


def test_xlsx_keeps_postal_codes_and_phones_as_text(tmp_path):
    frame = pl.DataFrame({"postal_code": ["00100", "00980"], "phone_e164": ["+358401234567", "+358501112223"]})
    write_xlsx(frame, tmp_path / "list.xlsx")
    _, rows = _cells(tmp_path / "list.xlsx")
    assert [r["postal_code"].value for r in rows] == ["00100", "00980"]
    assert [r["phone_e164"].value for r in rows] == ["+358401234567", "+358501112223"]
    assert all(r[c].data_type == "s" and r[c].number_format == "@" for r in rows for c in ("postal_code", "phone_e164"))


def test_a_timestamp_with_a_time_zone_is_written_as_its_iso_text(tmp_path):
    import datetime as dt

    at = dt.datetime(2026, 2, 21, 6, 13, 5, tzinfo=dt.UTC)
    write_xlsx(pl.DataFrame({"consent_occurred_at": [at]}), tmp_path / "t.xlsx")
    _, rows = _cells(tmp_path / "t.xlsx")
    assert rows[0]["consent_occurred_at"].value == "2026-02-21T06:13:05+00:00"


def test_the_same_frame_gives_the_same_bytes(tmp_path):
    import time

    frame = pl.DataFrame({"postal_code": ["00100"]})
    write_xlsx(frame, tmp_path / "a.xlsx")
    time.sleep(1.1)
    write_xlsx(frame, tmp_path / "b.xlsx")
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()


def test_csv_is_utf8_with_bom_and_semicolons(tmp_path):
    write_csv_for_excel(pl.DataFrame({"city": ["Jyväskylä"], "postal_code": ["00100"]}), tmp_path / "a.csv")
    raw = (tmp_path / "a.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw[3:].decode("utf-8") == "city;postal_code\nJyväskylä;00100\n"


def test_segment_names_in_the_recipients_language():
    frame = pl.DataFrame(
        {"customer_id": ["C1", "C2", "C3", "C4"], "segment_id": [1, 2, None, 1], "language": ["sv", "en", "fi", "fi"]},
        schema_overrides={"segment_id": pl.Int32},
    )
    named = with_segment_names(frame, CATALOGUE)
    assert named.columns == ["customer_id", "segment_id", "segment_name", "language"]
    assert named["segment_name"].to_list() == ["Sommarstuga", "Apartment", None, "Kesämökki"]


def test_a_send_list_carries_only_the_channel_contact_and_never_a_banned_address():
    contacts = pl.DataFrame(
        {
            "recipient_id": ["C1", "C2", "C3"],
            "segment_id": [1, 2, 1],
            "language": ["fi", "sv", "fi"],
            "first_name": ["Aino", "Åsa", "Eero"],
            "last_name": ["A", "B", "C"],
            "street_address": ["Katu 1", "Gatan 2", "Tie 3"],
            "postal_code": ["00100", "00980", "33100"],
            "city": ["Helsinki", "Helsingfors", "Tampere"],
            "email": ["a@example.fi", "b@example.fi", "c@example.fi"],
        },
        schema_overrides={"segment_id": pl.Int32},
    )
    recipients = pl.DataFrame({"recipient_id": ["C1", "C2", "C3", "C9"], "recipient_type": ["customer"] * 4})
    fields = ("first_name", "last_name", "street_address", "postal_code", "city")
    name = {"fi": "Talvi", "sv": "Vinter", "en": "Winter"}
    rows = send_list(recipients, contacts, fields, campaign_name=name, catalogue=CATALOGUE, safety_ban_ids={"C3"})
    assert rows["recipient_id"].to_list() == ["C1", "C2"]  # C3: safety ban; C9: not in the audience today
    assert "email" not in rows.columns and "segment_id" not in rows.columns
    assert rows["campaign_name"].to_list() == ["Talvi", "Vinter"]
    assert rows["segment_name"].to_list() == ["Kesämökki", "Höghus"]


def test_todays_audience_exports_get_segment_names_and_a_text_safe_xlsx_while_the_table_is_unchanged(tmp_path):
    email = pl.DataFrame(
        {"customer_id": ["C1000001"], "segment_id": [2], "language": ["sv"], "email": ["a@example.fi"]},
        schema_overrides={"segment_id": pl.Int32},
    )
    letter = pl.DataFrame(
        {"customer_id": ["C1000002"], "segment_id": [1], "language": ["fi"], "postal_code": ["00100"]},
        schema_overrides={"segment_id": pl.Int32},
    )
    (tmp_path / "warehouse").mkdir()
    publish(tmp_path, {"audience_email": email, "audience_letter": letter, "segment_catalogue": CATALOGUE}, tag="t")
    exports = tmp_path / "exports"
    assert pl.read_parquet(exports / "audience_email.parquet").equals(email)
    csv = (exports / "audience_email.csv").read_bytes()[3:].decode()
    assert csv.splitlines()[0] == "customer_id;segment_id;segment_name;language;email"
    assert "Höghus" in csv
    _, rows = _cells(exports / "audience_letter.xlsx")
    assert rows[0]["postal_code"].value == "00100" and rows[0]["postal_code"].data_type == "s"
    assert rows[0]["segment_name"].value == "Kesämökki"


def test_the_segment_report_gains_a_segment_by_channel_reach_table():
    from datetime import date

    from models.report import REACH_END, REACH_START, reach_table_html, with_reach

    audiences = {
        "email": pl.DataFrame(
            {"customer_id": ["C1", "C2"], "segment_id": [1, 2]}, schema_overrides={"segment_id": pl.Int32}
        ),
        "letter": pl.DataFrame(
            {"customer_id": ["C1", "C3", "C4"], "segment_id": [1, 1, None]}, schema_overrides={"segment_id": pl.Int32}
        ),
    }
    section = reach_table_html(audiences, CATALOGUE, date(2026, 11, 24))
    assert "Tavoitettavissa tänään kanavittain / Nåbara i dag per kanal / Reachable today per channel" in section
    assert "<td>1: Kesämökki / Sommarstuga / Summer cottage</td><td>1</td><td>2</td><td>2</td>" in section
    page = f"<html>{REACH_START}placeholder{REACH_END}</html>"
    once = with_reach(page, section)
    assert "placeholder" not in once and with_reach(once, "x") == f"<html>{REACH_START}x{REACH_END}</html>"


def test_a_send_list_with_an_identity_code_or_a_banned_address_is_never_written(tmp_path):
    import pytest

    from assets.campaigns.exports import write_lists
    from data_contracts.contract import ContractViolation

    leaked = pl.DataFrame({"recipient_id": ["C1000001"], "email": ["131052-308T"]})
    with pytest.raises(ContractViolation, match="identity code") as exc:
        write_lists(tmp_path, "K", {"email": leaked}, frozenset())
    assert "131052-308T" not in str(exc.value)
    banned = pl.DataFrame({"recipient_id": ["C1000002"], "street_address": ["Katu 1"], "postal_code": ["00100"]})
    with pytest.raises(ContractViolation, match="safety ban"):
        write_lists(tmp_path, "K", {"letter": banned}, frozenset({"C1000002"}))
    assert not (tmp_path / "campaign_exports" / "K").exists()
    ok = pl.DataFrame({"recipient_id": ["C1000003"], "email": ["a@example.fi"]})
    assert (write_lists(tmp_path, "K", {"email": ok}, frozenset({"C1000002"})) / "K_email.xlsx").exists()
