"""The demo's example campaign briefs, written by `make run` into the campaigns folder.

One targets a segment (the night-time EV chargers, segment 4 on the demo) by email, then letter; the
other reaches prospects, and is written only once the landing zone has prospects. An existing file is
never overwritten: a marketer's edits to the demo briefs survive the next `make run`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

SEGMENT_BRIEF = "EV-WINTER-DEMO"
PROSPECT_BRIEF = "WELCOME-PROSPECTS-DEMO"


def demo_briefs(end: dt.date) -> dict[str, dict]:
    send_on = end + dt.timedelta(days=21)
    return {
        SEGMENT_BRIEF: {
            "campaign_id": SEGMENT_BRIEF,
            "name": {"fi": "Sähköautoilijan talvi", "sv": "Elbilsvinter", "en": "EV winter"},
            "audience": "customers",
            "segments": [4],
            "filters": {"contract_type": ["open_ended"], "no_open_reminders": True},
            "channels": ["email", "letter"],
            "send_on": send_on,
            "control_share": 0.10,
            "offer_product": "GREEN_SPOT",
            "response_days": 60,
        },
        PROSPECT_BRIEF: {
            "campaign_id": PROSPECT_BRIEF,
            "name": {"fi": "Tervetuloa asiakkaaksi", "sv": "Välkommen som kund", "en": "Welcome aboard"},
            "audience": "prospects",
            "channels": ["email", "sms", "letter"],
            "send_on": send_on,
            "control_share": 0.20,
            "max_recipients": 500,
            "response_days": 60,
        },
    }


def write_demo_briefs(folder: Path, end: dt.date, prospects: bool) -> list[Path]:
    """Write the briefs that are missing; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for campaign_id, brief in demo_briefs(end).items():
        if campaign_id == PROSPECT_BRIEF and not prospects:
            continue
        path = folder / f"{campaign_id}.yaml"
        if path.exists():
            continue
        path.write_text(yaml.safe_dump(brief, allow_unicode=True, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written
