"""`lupa erase --customer-id ID`: the right to erasure (GDPR Art. 17), `assets.privacy.erasure`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from pipelines.settings import load_settings


def cmd_erase_prospect(args: argparse.Namespace) -> int:
    """Erase a prospect everywhere, keeping a suppression record (assets/privacy/prospect_erasure.py)."""
    import polars as pl

    from assets.privacy.prospect_access import find_prospects
    from assets.privacy.prospect_erasure import erase_prospects
    from assets.privacy.report_files import delete_stored_reports
    from assets.storage.suppression import pseudonym
    from pipelines.definitions import storage_resource

    storage = storage_resource(load_settings())
    match = find_prospects(storage, prospect_id=args.prospect_id)
    if not match.prospect_ids:
        when = f" (erased on {match.erased_on})" if match.erased_on else ""
        print(f"lupa: no prospect {args.prospect_id} is held{when}", file=sys.stderr)
        return 1
    today = dt.date.today()
    removed = erase_prospects(
        storage, pl.DataFrame({"prospect_id": match.prospect_ids, "reason": ["data_subject_request"]}), today
    )
    reports = delete_stored_reports([pseudonym(args.prospect_id)])
    print(f"erased prospect {args.prospect_id} on {today}: {sum(removed.values()):,} records removed")
    for table, n in {**removed, "access_report_files": reports}.items():
        print(f"  {table:<36}{n:>8,}")
    print(
        "kept: the suppression record (keyed pseudonyms of the prospect id, identity code and email address, and "
        "the date), so that a re-delivered list never brings the prospect back; a lead collected after today, "
        "with a new consent, is a new lead"
    )
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase (or finish an interrupted erasure), then say what was kept and why, read back the way an
    access request would read it."""
    if getattr(args, "prospect_id", None) is not None:
        return cmd_erase_prospect(args)
    from assets.privacy.erasure import INVOICE_RETENTION_BASIS, UnknownCustomer, erase, held_after_erasure
    from data_contracts.policy import load_policy
    from pipelines.definitions import storage_resource
    from pipelines.report_rendering import fmt_period

    storage = storage_resource(load_settings())
    retention = load_policy().retention
    try:
        record = erase(storage, args.customer_id, dt.date.today(), retention)
    except UnknownCustomer as exc:
        earlier = held_after_erasure(storage, customer_id=args.customer_id)
        if earlier is None:
            print(f"lupa: {exc}", file=sys.stderr)
        else:
            print(
                f"lupa: customer {args.customer_id} was already erased on {earlier.erased_on}; "
                f"only what that erasure kept is held: {len(earlier.invoices)} restricted invoice(s) "
                "and the suppression record",
                file=sys.stderr,
            )
        return 1
    except Exception:
        print(
            f"lupa: the erasure of {args.customer_id} did not finish; "
            "run the same `lupa erase` again: it goes on where this one stopped",
            file=sys.stderr,
        )
        raise
    print(
        f"erased {args.customer_id} on {record['erased_on']}: {sum(record['rows_removed'].values()):,} records "
        f"or files removed from {len(record['rows_removed'])} places, "
        f"{record['metering_point_periods_suppressed']} metering point period(s) suppressed"
    )
    for table, n in record["rows_removed"].items():
        print(f"  {table:<36}{n:>8,}")
    held = held_after_erasure(storage, customer_id=args.customer_id)
    until = max((retention.invoice_kept_until(i["issued_on"]) for i in held.invoices), default=None)
    print(
        f"kept: {len(held.invoices)} invoice(s), restricted to accounting in the invoices_retained table"
        f"{f', the last until {until}' if until else ''} — {INVOICE_RETENTION_BASIS}: kept "
        f"{fmt_period(retention.invoices.model_dump(exclude_none=True), 'en')} after the end of each invoice's "
        "financial year"
    )
    print(
        f"kept: the suppression record ({held.pseudonyms} pseudonym(s), the date, "
        f"{held.metering_point_periods} metering point period(s)), "
        "so that re-delivered or backfilled data never brings the customer back"
    )
    return 0


def add_parser(subparsers) -> None:
    erase_cmd = subparsers.add_parser(
        "erase", help="erase a customer from every zone (GDPR Art. 17), keeping only what the law requires"
    )
    who = erase_cmd.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer-id")
    who.add_argument("--prospect-id", help="erase a prospect (lead), e.g. P123456789")
    erase_cmd.set_defaults(fn=cmd_erase)
