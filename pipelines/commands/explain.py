"""`lupa explain CUSTOMER_ID`: why a customer is (not) in each audience (`pipelines.explain`)."""

from __future__ import annotations

import argparse

from pipelines.settings import load_settings


def cmd_explain(args: argparse.Namespace) -> int:
    from pipelines.definitions import storage_resource
    from pipelines.explain import explain
    from pipelines.prospect_explain import explain_prospect

    mart = storage_resource(load_settings()).root / "marketing.duckdb"
    # a prospect id (P + 9 digits) is explained from the prospects' own tables
    why = explain_prospect if args.customer_id.startswith("P") else explain
    print(why(mart, args.customer_id))
    return 0


def add_parser(subparsers) -> None:
    explain = subparsers.add_parser(
        "explain", help="why a customer (or a prospect, P…) is (not) in each audience, from the published mart"
    )
    explain.add_argument("customer_id")
    explain.set_defaults(fn=cmd_explain)
