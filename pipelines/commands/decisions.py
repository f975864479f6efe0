"""`lupa confirm-audience` and `lupa resolve-quarantine`: an operator's decisions, recorded in the
restricted warehouse (who, when, why) for the daily run's checks to read."""

from __future__ import annotations

import argparse
import datetime as dt

from data_contracts.vocabulary import CHANNELS
from pipelines.commands import iso_date
from pipelines.settings import load_settings


def _record(table: str, ddl: str, row: dict) -> None:
    """Append an operator decision to the restricted warehouse (who, when, why)."""
    import getpass

    from pipelines.definitions import storage_resource

    row = row | {"decided_by": getpass.getuser(), "decided_at": dt.datetime.now(dt.UTC)}
    with storage_resource(load_settings()).warehouse() as conn:
        conn.execute(f"create table if not exists {table} ({ddl}, decided_by varchar, decided_at timestamptz)")
        conn.execute(f"insert into {table} values ({', '.join('$' + k for k in row)})", row)


def cmd_confirm_audience(args: argparse.Namespace) -> int:
    # a prospect audience's confirmation is recorded under its own key (assets/audiences: `prospects:<channel>`)
    channel = f"prospects:{args.channel}" if getattr(args, "recipients", "customers") == "prospects" else args.channel
    _record(
        "audience_confirmations",
        "business_day date, channel varchar, note varchar",
        {"business_day": args.date, "channel": channel, "note": args.note},
    )
    what = f"prospect {args.channel}" if channel != args.channel else args.channel
    print(f"confirmed the {what} audience size for {args.date}; re-run `lupa daily --date {args.date}` to publish")
    return 0


def cmd_resolve_quarantine(args: argparse.Namespace) -> int:
    source, _, file = args.file.partition("/")
    _record(
        "quarantine_resolutions",
        "source varchar, file varchar, line bigint, note varchar",
        {"source": source, "file": file, "line": args.line, "note": args.note},
    )
    print(f"resolved {args.file}, line {args.line}; the fail-safe check no longer counts it")
    return 0


def add_parser(subparsers) -> None:
    confirm = subparsers.add_parser(
        "confirm-audience", help="a person confirms an audience size change the anomaly check held back"
    )
    confirm.add_argument("--date", type=iso_date, required=True)
    confirm.add_argument("--channel", choices=list(CHANNELS), required=True)
    confirm.add_argument("--note", required=True, help="why the change is expected")
    confirm.add_argument(
        "--recipients",
        choices=("customers", "prospects"),
        default="customers",
        help="which audience: the customers' (default) or the prospects' (prospect_audience_<channel>)",
    )
    confirm.set_defaults(fn=cmd_confirm_audience)

    resolve = subparsers.add_parser(
        "resolve-quarantine", help="mark a quarantined row that restricted contact as handled"
    )
    resolve.add_argument("file", help="source/file name as the fail_safe check shows it, e.g. asml/asml_20261125.csv")
    resolve.add_argument("line", type=int)
    resolve.add_argument("--note", required=True, help="how it was handled (e.g. re-delivered in asml_20261126.csv)")
    resolve.set_defaults(fn=cmd_resolve_quarantine)
