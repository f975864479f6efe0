"""`lupa demo-data`: write a synthetic landing zone."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from pipelines.commands import iso_date
from pipelines.settings import load_settings


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


def add_parser(subparsers) -> None:
    demo = subparsers.add_parser("demo-data", help="write a synthetic landing zone (Faker fi_FI, Datahub format)")
    demo.add_argument("--customers", type=int, default=2000)
    demo.add_argument("--days", type=int, default=400)
    demo.add_argument(
        "--end", type=iso_date, default=dt.date(2026, 11, 24), help="last business day with data (default 2026-11-24)"
    )
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--out", help="landing directory (default $LUPA_LANDING_DIR)")
    demo.add_argument(
        "--if-missing", action="store_true", help="do nothing when the landing directory already has files"
    )
    demo.set_defaults(fn=cmd_demo_data)
