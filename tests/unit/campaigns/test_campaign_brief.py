"""A brief is accepted only when every key is known and right; otherwise one message names the file,
the key and what was expected."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from data_contracts.campaigns import BriefError, brief_files, load_brief, load_briefs, parse_brief

GOOD = {
    "campaign_id": "EV-SPRING-2027",
    "name": {"fi": "Sähköautoilijan kevät", "sv": "Elbilsvår", "en": "EV spring"},
    "audience": "customers",
    "segments": [4],
    "filters": {"language": ["fi", "sv"], "contract_type": ["open_ended"], "no_open_reminders": True},
    "channels": ["email", "letter"],
    "send_on": dt.date(2027, 3, 10),
    "control_share": 0.10,
    "max_recipients": 20000,
    "offer_product": "GREEN_SPOT",
    "response_days": 60,
}


def test_the_policy_example_is_a_valid_brief(tmp_path):
    path = tmp_path / "ev.yaml"
    path.write_text(yaml.safe_dump(GOOD, allow_unicode=True), encoding="utf-8")
    brief = load_brief(path)
    assert brief.campaign_id == "EV-SPRING-2027"
    assert brief.channels == ("email", "letter")
    assert brief.response_ends_on == dt.date(2027, 5, 9)
    assert brief.name.in_language("sv") == "Elbilsvår"


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        ({"segmets": [4]}, "key segmets", "unknown key"),
        ({"filters": {"language": ["de"]}}, "key filters.language[0]", "'fi', 'sv' or 'en'"),
        ({"filters": {"lang": ["fi"]}}, "key filters.lang", "unknown key"),
        ({"control_share": 0.7}, "key control_share", "less than or equal to 0.5"),
        ({"channels": ["email", "fax"]}, "key channels[1]", "'email', 'sms', 'letter' or 'phone'"),
        ({"channels": ["email", "email"]}, "key channels", "each value once"),
        ({"channels": []}, "key channels", "at least 1"),
        ({"campaign_id": "EV SPRING"}, "key campaign_id", "letters, digits and '-'"),
        ({"send_on": "10.3.2027"}, "key send_on", "a date YYYY-MM-DD"),
        ({"audience": "everyone"}, "key audience", "'customers', 'prospects' or 'both'"),
        ({"name": {"fi": "x", "sv": "y"}}, "key name.en", "missing"),
        ({"max_recipients": 0}, "key max_recipients", "greater than 0"),
        ({"audience": "prospects"}, "key audience: expected audience customers or both", "narrow customers only"),
    ],
)
def test_a_bad_brief_names_file_key_and_expectation(tmp_path, change, key, expected):
    path = tmp_path / "spring.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(BriefError) as exc:
        load_brief(path)
    message = str(exc.value)
    assert message.startswith("campaign brief spring.yaml: ")
    assert key in message and expected in message
    assert "Traceback" not in message


def test_missing_key_and_broken_yaml(tmp_path):
    with pytest.raises(BriefError, match="key send_on: a required key that is missing"):
        parse_brief({k: v for k, v in GOOD.items() if k != "send_on"}, "a.yaml")
    path = tmp_path / "b.yaml"
    path.write_text("campaign_id: [unclosed\n", encoding="utf-8")
    with pytest.raises(BriefError, match=r"campaign brief b.yaml: not valid YAML at line \d"):
        load_brief(path)


def test_one_bad_brief_never_hides_the_others_and_ids_are_unique(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    (tmp_path / "b.yml").write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**GOOD, "campaign_id": "OTHER"}), encoding="utf-8")
    (tmp_path / "d.yaml").write_text(
        yaml.safe_dump({**GOOD, "campaign_id": "BAD", "response_days": -1}), encoding="utf-8"
    )
    (tmp_path / "notes.txt").write_text("not a brief", encoding="utf-8")
    valid, invalid = load_briefs(brief_files(tmp_path))
    assert [b.campaign_id for _, b in valid] == ["OTHER"]
    assert sorted(i.file for i in invalid) == ["a.yaml", "b.yml", "d.yaml"]
    assert all("expected" in i.error for i in invalid)
    assert {i.campaign_id for i in invalid} == {"EV-SPRING-2027", "BAD"}
