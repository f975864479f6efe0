"""`lupa`: the command line. Every pipeline command runs through Dagster on the configured instance,
so what it does is recorded where the UI shows it."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from pipelines.settings import ConfigurationError, load_settings


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def cmd_demo_data(args: argparse.Namespace) -> int:
    from pipelines.demo_data import generate_landing_zone

    settings = load_settings()
    out = Path(args.out) if args.out else settings.landing_dir
    if args.if_missing and out.exists() and any(out.iterdir()):
        print(f"demo landing zone already present at {out}; keeping it")
        return 0
    summary = generate_landing_zone(
        out,
        customers=args.customers,
        days=args.days,
        end=args.end,
        seed=args.seed,
        truth_dir=settings.var_dir / "demo_truth",
    )
    print(f"wrote demo landing zone to {out}")
    for key, value in summary.items():
        if isinstance(value, (int, float, str)):
            print(f"  {key}: {value}")
    return 0


def _run(job_name: str, partition_key: str | None = None, tags: dict[str, str] | None = None, asset_keys=None) -> bool:
    from dagster import DagsterInstance

    from pipelines.definitions import build_defs

    defs = build_defs()
    job = defs.resolve_job_def(job_name)
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            partition_key=partition_key,
            tags=tags or {},
            raise_on_error=False,
            asset_selection=asset_keys,
            # the full event log is in the instance (make ui); the terminal only shows warnings and errors
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
                print(f"step {event.step_key} failed: {event.step_failure_data.error.message.strip()}", file=sys.stderr)
        print(f"run {result.run_id} failed; open the Dagster UI (make ui) for the event log", file=sys.stderr)
    else:
        print(f"run {result.run_id} succeeded ({job_name}{', ' + partition_key if partition_key else ''})")
    return result.success


def cmd_daily(args: argparse.Namespace) -> int:
    from assets.common.calendar import BUSINESS_DAY_TAG

    day = args.date.isoformat()
    return 0 if _run("daily_job", partition_key=day, tags={BUSINESS_DAY_TAG: day}) else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    """Load a range: the metering partitions in one run, then the whole graph once for the last day."""
    import time

    from assets.common.calendar import BUSINESS_DAY_TAG

    if args.end < args.start:
        print("--end is before --start", file=sys.stderr)
        return 2
    start = time.monotonic()
    ok = _run(
        "metering_job",
        tags={
            "dagster/asset_partition_range_start": args.start.isoformat(),
            "dagster/asset_partition_range_end": args.end.isoformat(),
            BUSINESS_DAY_TAG: args.end.isoformat(),
        },
    )
    print(f"metering {args.start} … {args.end}: {time.monotonic() - start:.1f} s")
    if not ok:
        return 1
    end = args.end.isoformat()
    ok = _run("daily_job", partition_key=end, tags={BUSINESS_DAY_TAG: end})
    print(f"backfill {args.start} … {args.end} took {time.monotonic() - start:.1f} s in all")
    return 0 if ok else 1


def cmd_summary(args: argparse.Namespace) -> int:
    from pipelines.definitions import storage_resource
    from pipelines.summary import ingest_summary

    print(ingest_summary(storage_resource(load_settings())))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from pipelines.definitions import storage_resource
    from pipelines.explain import explain

    print(explain(storage_resource(load_settings()).root / "marketing.duckdb", args.customer_id))
    return 0


def _record(table: str, ddl: str, row: dict) -> None:
    """Append an operator decision to the restricted warehouse (who, when, why)."""
    import getpass

    from pipelines.definitions import storage_resource

    row = row | {"decided_by": getpass.getuser(), "decided_at": dt.datetime.now(dt.UTC)}
    with storage_resource(load_settings()).warehouse() as conn:
        conn.execute(f"create table if not exists {table} ({ddl}, decided_by varchar, decided_at timestamptz)")
        conn.execute(f"insert into {table} values ({', '.join('$' + k for k in row)})", row)


def cmd_confirm_audience(args: argparse.Namespace) -> int:
    _record(
        "audience_confirmations",
        "business_day date, channel varchar, note varchar",
        {"business_day": args.date, "channel": args.channel, "note": args.note},
    )
    print(
        f"confirmed the {args.channel} audience size for {args.date}; re-run `lupa daily --date {args.date}` to publish"
    )
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


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase (or finish an interrupted erasure), then say what was kept and why, read back the way an
    access request would read it."""
    from assets.privacy.erasure import INVOICE_RETENTION_BASIS, UnknownCustomer, erase, held_after_erasure
    from data_contracts.policy import load_policy
    from pipelines.access_report import fmt_period
    from pipelines.definitions import storage_resource

    storage = storage_resource(load_settings())
    try:
        record = erase(storage, args.customer_id, dt.date.today())
    except UnknownCustomer as exc:
        earlier = held_after_erasure(storage, customer_id=args.customer_id)
        if earlier is None:
            print(f"lupa: {exc}", file=sys.stderr)
        else:
            print(
                f"lupa: customer {args.customer_id} was already erased on {earlier.erased_on}; only what that erasure kept is held: "
                f"{len(earlier.invoices)} restricted invoice(s) and the suppression record",
                file=sys.stderr,
            )
        return 1
    except Exception:
        print(
            f"lupa: the erasure of {args.customer_id} did not finish; run the same `lupa erase` again: it goes on where this one stopped",
            file=sys.stderr,
        )
        raise
    print(
        f"erased {args.customer_id} on {record['erased_on']}: {sum(record['rows_removed'].values()):,} records or files removed from "
        f"{len(record['rows_removed'])} places, {record['metering_point_periods_suppressed']} metering point period(s) suppressed"
    )
    for table, n in record["rows_removed"].items():
        print(f"  {table:<36}{n:>8,}")
    held = held_after_erasure(storage, customer_id=args.customer_id)
    retention = load_policy().retention
    until = max((retention.invoice_kept_until(i["issued_on"]) for i in held.invoices), default=None)
    print(
        f"kept: {len(held.invoices)} invoice(s), restricted to accounting in the invoices_retained table"
        f"{f', the last until {until}' if until else ''} — {INVOICE_RETENTION_BASIS}: kept "
        f"{fmt_period(retention.invoices.model_dump(exclude_none=True), 'en')} after the end of each invoice's financial year"
    )
    print(
        f"kept: the suppression record ({held.pseudonyms} pseudonym(s), the date, {held.metering_point_periods} metering point period(s)), "
        "so that re-delivered or backfilled data never brings the customer back"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lupa", description="Lupa: consent-aware segmentation and marketing audiences")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-data", help="write a synthetic landing zone (Faker fi_FI, Datahub format)")
    demo.add_argument("--customers", type=int, default=2000)
    demo.add_argument("--days", type=int, default=400)
    demo.add_argument(
        "--end", type=_date, default=dt.date(2026, 11, 24), help="last business day with data (default 2026-11-24)"
    )
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--out", help="landing directory (default $LUPA_LANDING_DIR)")
    demo.add_argument(
        "--if-missing", action="store_true", help="do nothing when the landing directory already has files"
    )
    demo.set_defaults(fn=cmd_demo_data)

    daily = sub.add_parser("daily", help="run the whole graph for business day D through Dagster")
    daily.add_argument("--date", type=_date, required=True)
    daily.set_defaults(fn=cmd_daily)

    backfill = sub.add_parser(
        "backfill", help="load the metering partitions of a range in one run, then everything for the last day"
    )
    backfill.add_argument("--start", type=_date, required=True)
    backfill.add_argument("--end", type=_date, required=True)
    backfill.set_defaults(fn=cmd_backfill)

    explain = sub.add_parser("explain", help="why a customer is (not) in each audience, from the published mart")
    explain.add_argument("customer_id")
    explain.set_defaults(fn=cmd_explain)

    confirm = sub.add_parser(
        "confirm-audience", help="a person confirms an audience size change the anomaly check held back"
    )
    confirm.add_argument("--date", type=_date, required=True)
    confirm.add_argument("--channel", choices=["email", "sms", "letter", "phone"], required=True)
    confirm.add_argument("--note", required=True, help="why the change is expected")
    confirm.set_defaults(fn=cmd_confirm_audience)

    resolve = sub.add_parser("resolve-quarantine", help="mark a quarantined row that restricted contact as handled")
    resolve.add_argument("file", help="source/file name as the fail_safe check shows it, e.g. asml/asml_20261125.csv")
    resolve.add_argument("line", type=int)
    resolve.add_argument("--note", required=True, help="how it was handled (e.g. re-delivered in asml_20261126.csv)")
    resolve.set_defaults(fn=cmd_resolve_quarantine)

    erase_cmd = sub.add_parser(
        "erase", help="erase a customer from every zone (GDPR Art. 17), keeping only what the law requires"
    )
    erase_cmd.add_argument("--customer-id", required=True)
    erase_cmd.set_defaults(fn=cmd_erase)

    from pipelines.access_report import add_sar_parser

    add_sar_parser(sub)

    summary = sub.add_parser("summary", help="print rows per source, quarantine per rule and where the data is")
    summary.set_defaults(fn=cmd_summary)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigurationError as exc:
        print(f"lupa: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
