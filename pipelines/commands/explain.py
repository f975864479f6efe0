"""`lupa explain CUSTOMER_ID`: why a customer is (not) in each audience (`pipelines.explain`)."""

from __future__ import annotations

import argparse

from pipelines.settings import load_settings


def cmd_explain(args: argparse.Namespace) -> int:
    from pipelines.definitions import storage_resource
    from pipelines.explain import NO_MART, explain
    from pipelines.explain_campaigns import explain_campaigns

    storage = storage_resource(load_settings())
    text = explain(storage.root / "marketing.duckdb", args.customer_id)
    print(text)
    if text != NO_MART:
        print("\n".join(explain_campaigns(storage.warehouse_path, args.customer_id)))
    return 0


def add_parser(subparsers) -> None:
    explain = subparsers.add_parser(
        "explain", help="why a customer is (not) in each audience, and their campaigns and newsletter"
    )
    explain.add_argument("customer_id")
    explain.set_defaults(fn=cmd_explain)
