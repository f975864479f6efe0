"""`lupa sar (--customer-id ID | --personal-id -)`: the right of access (GDPR Art. 15).

Writes one machine-readable JSON file and one self-contained HTML file per customer, in the
customer's language (fi/sv/en), into an owner-only directory (0700, files 0600). They hold
everything the restricted warehouse and the analytics zone keep about that one customer, with the
source of each value, plus the purposes, recipients and retention periods from
`data_contracts/processing_register.yaml`. Nothing about any other customer is included but
aggregates over large enough groups (`models.access_report.MIN_GROUP_FOR_STATISTICS`).

The report is gathered by `assets.privacy.access_report`, explained by `models.access_report`,
rendered by `pipelines.report_rendering` and stored by `assets.privacy.report_files`. An erased
customer gets a report of what the erasure kept, and why; an erasure that was interrupted gets no
report until `lupa erase` has finished it: until then other zones may still hold the customer.

The personal identity code is read from standard input, never from the command line (shell
history, `ps`). It is never printed, logged or written anywhere except into the report itself,
which is the customer's own data. The command prints only the output paths and counts.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from assets.privacy.access_report import build_erased_report, build_report, find_customers
from assets.privacy.report_files import default_reports_dir, prepare_out_dir, write_report
from assets.storage.zones import LupaStorage
from data_contracts.identifiers import personal_id_problem
from data_contracts.policy import load_policy
from data_contracts.processing_register import AccessReportError, load_processing_register
from data_contracts.vocabulary import LANGUAGES
from models.access_report import counts
from pipelines.report_rendering import render_erased_html, render_html, to_json
from pipelines.settings import load_settings

EXIT_OK, EXIT_UNKNOWN, EXIT_USAGE = 0, 1, 2


def normalise_personal_id(raw: str) -> str:
    """Upper-case and strip; raise (without quoting the value) when it is not a henkilötunnus."""
    value = "".join(raw.split()).upper()
    problem = personal_id_problem(value) if value else "personal_id_format"
    if problem in ("personal_id_format", "personal_id_checksum"):
        raise AccessReportError(
            f"the identity code read from standard input is not a valid Finnish personal identity code ({problem})"
        )
    return value


def _read_personal_id() -> str:
    if sys.stdin is None:
        raise AccessReportError("no standard input to read the identity code from")
    if sys.stdin.isatty():
        return getpass.getpass("personal identity code (not echoed): ")
    return sys.stdin.readline()


def _write(report: dict[str, Any], out_dir: Path, personal_id: str | None) -> tuple[Path, Path]:
    """Render the report (the erased customer's page, or the full one) and store both files."""
    page = render_erased_html(report) if report["report"]["erased"] else render_html(report)
    return write_report(report, out_dir, to_json(report) + "\n", page, personal_id)


def _counted(report: dict[str, Any]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts(report).items())


def run_sar(
    storage: LupaStorage,
    out_dir: Path,
    *,
    customer_id: str | None = None,
    personal_id: str | None = None,
    language: str | None = None,
    default_out: bool = False,
) -> tuple[int, list[str]]:
    """The command without argument parsing: returns (exit code, lines to print)."""
    match = find_customers(storage, customer_id=customer_id, personal_id=personal_id)
    matched_by = "customer_id" if customer_id is not None else "personal_id"
    if not match.customer_ids and not match.register_only and not match.erased:
        who = f"customer id {customer_id.strip()}" if customer_id is not None else "the personal identity code given"
        return EXIT_UNKNOWN, [
            f"no customer found for {who}: no data is held under it in the warehouse; no report was written"
        ]
    if match.erased and not match.erased.complete:
        raise AccessReportError(
            f"the erasure of this customer begun on {match.erased.erased_on.isoformat()} was interrupted, "
            "so some zones may still hold them: run `lupa erase` for the customer again to finish it; "
            "no report was written"
        )
    policy = load_policy()
    register = load_processing_register(policy=policy)
    prepare_out_dir(out_dir, default_out)
    if match.erased:
        report = build_erased_report(
            match.erased, language=language, matched_by=matched_by, register=register, policy=policy
        )
        json_path, html_path = _write(report, out_dir, personal_id)
        return EXIT_OK, [
            str(json_path),
            str(html_path),
            f"  erased on {match.erased.erased_on.isoformat()}; still held: {_counted(report)}",
        ]
    lines = []
    targets = match.customer_ids or [None]
    for cid in targets:
        report = build_report(
            storage,
            cid,
            personal_id=personal_id,
            language=language,
            matched_by=matched_by,
            register=register,
            policy=policy,
        )
        json_path, html_path = _write(report, out_dir, personal_id)
        lines += [str(json_path), str(html_path), "  " + _counted(report)]
    return EXIT_OK, lines


def run_prospect_sar(
    storage: LupaStorage,
    out_dir: Path,
    *,
    prospect_id: str | None = None,
    personal_id: str | None = None,
    email: str | None = None,
    language: str | None = None,
    default_out: bool = False,
) -> tuple[int, list[str]]:
    """Access reports of the prospects held under a prospect id, identity code or email address."""
    import datetime as dt

    from assets.privacy.prospect_access import build_prospect_report, erased_report, find_prospects
    from pipelines.prospect_report import render_html as render_prospect
    from pipelines.prospect_report import to_json as prospect_json

    match = find_prospects(storage, prospect_id=prospect_id, personal_id=personal_id, email=email)
    if not match.prospect_ids and match.erased_on is None:
        return EXIT_UNKNOWN, ["no prospect found for the identifier given; no prospect report was written"]
    prepare_out_dir(out_dir, default_out)
    now = dt.datetime.now(dt.UTC)
    lines = []
    if not match.prospect_ids:
        report = erased_report(match, now, storage)
        paths = write_report(
            report | {"report": report["report"] | {"customer_id": None}},
            out_dir,
            prospect_json(report) + "\n",
            render_prospect(report, language),
            None,
        )
        return EXIT_OK, [*map(str, paths), f"  prospect erased on {match.erased_on.isoformat()}"]
    policy = load_policy()
    for pid in match.prospect_ids:
        report = build_prospect_report(storage, pid, policy, now)
        paths = write_report(
            report | {"report": report["report"] | {"customer_id": pid}},
            out_dir,
            prospect_json(report) + "\n",
            render_prospect(report, language),
        )
        lines += [
            *map(str, paths),
            f"  prospect: states {len(report['delivered_states'])}, consents {len(report['consents'])}, "
            f"contacts {len(report['contacts'])}",
        ]
    return EXIT_OK, lines


def _read_secret(prompt: str) -> str:
    if sys.stdin is None:
        raise AccessReportError("no standard input to read from")
    return getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()


def cmd_sar(args: argparse.Namespace) -> int:
    if getattr(args, "prospect_id", None) is not None or getattr(args, "email", None) is not None:
        return _cmd_prospect_sar(args)
    if args.personal_id is not None and args.personal_id != "-":
        # never echo what was given: it may be an identity code typed on the command line
        print(
            "lupa sar: --personal-id takes only '-': the identity code is read from standard input, "
            "never from the command line",
            file=sys.stderr,
        )
        return EXIT_USAGE
    storage = _installation_storage()
    default_out = not args.out
    out_dir = Path(args.out) if args.out else default_reports_dir()
    try:
        personal_id = normalise_personal_id(_read_personal_id()) if args.personal_id == "-" else None
        code, lines = run_sar(
            storage,
            out_dir,
            customer_id=args.customer_id,
            personal_id=personal_id,
            language=args.language,
            default_out=default_out,
        )
    except AccessReportError as exc:
        print(f"lupa sar: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if personal_id is not None:
        # a person may be a lead too: their prospect records are reported beside the customer's
        pcode, plines = run_prospect_sar(
            storage, out_dir, personal_id=personal_id, language=args.language, default_out=default_out
        )
        if pcode == EXIT_OK:
            code, lines = EXIT_OK, (lines if code == EXIT_OK else []) + plines
    stream = sys.stdout if code == EXIT_OK else sys.stderr
    for line in lines:
        print(line, file=stream)
    return code


def _installation_storage() -> LupaStorage:
    """The installation's storage as the pipeline builds it (lake, campaigns folder and all)."""
    from pipelines.definitions import storage_resource

    return storage_resource(load_settings())


def _cmd_prospect_sar(args: argparse.Namespace) -> int:
    if args.email is not None and args.email != "-":
        print("lupa sar: --email takes only '-': the address is read from standard input", file=sys.stderr)
        return EXIT_USAGE
    storage = _installation_storage()
    default_out = not args.out
    out_dir = Path(args.out) if args.out else default_reports_dir()
    try:
        email = _read_secret("email address (not echoed): ").strip() if args.email == "-" else None
        code, lines = run_prospect_sar(
            storage,
            out_dir,
            prospect_id=args.prospect_id,
            email=email,
            language=args.language,
            default_out=default_out,
        )
    except AccessReportError as exc:
        print(f"lupa sar: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stream = sys.stdout if code == EXIT_OK else sys.stderr
    for line in lines:
        print(line, file=stream)
    return code


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sar",
        help="right of access (GDPR Art. 15): everything held about one customer, as JSON and HTML in their language",
        description="Writes a JSON and an HTML access report (owner-only files) and prints only their paths "
        "and counts.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer-id", help="customer number, e.g. C1234567")
    who.add_argument(
        "--personal-id",
        metavar="-",
        help="'-': read the personal identity code from standard input (never give it on the command line); "
        "finds customers and prospects",
    )
    who.add_argument("--prospect-id", help="prospect (lead) number, e.g. P123456789")
    who.add_argument(
        "--email", metavar="-", help="'-': read a prospect's email address from standard input (prospects only)"
    )
    p.add_argument("--out", help="output directory (default $LUPA_VAR_DIR/access_reports, created 0700)")
    p.add_argument("--language", choices=LANGUAGES, help="report language (default: the customer's own)")
    p.set_defaults(fn=cmd_sar)
