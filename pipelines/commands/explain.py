"""`lupa explain CUSTOMER_ID`: why a customer is (not) in each audience (`pipelines.explain`)."""

from __future__ import annotations

import argparse

from pipelines.settings import load_settings


def cmd_explain(args: argparse.Namespace) -> int:
    from pipelines.definitions import storage_resource
    from pipelines.explain import NO_MART, explain
    from pipelines.explain_campaigns import explain_campaigns
    from pipelines.prospect_explain import explain_prospect

    storage = storage_resource(load_settings())
    # a prospect id (P + 9 digits) is explained from the prospects' own tables
    why = explain_prospect if args.customer_id.startswith("P") else explain
    text = why(storage.root / "marketing.duckdb", args.customer_id)
    print(text)
    # where only the mart is shared (a marketer's copy), there are no campaign plans to read; the path is
    # built by hand, as `storage.warehouse_path` would create the restricted folder
    warehouse = storage.root / "warehouse" / "warehouse.duckdb"
    if text != NO_MART and warehouse.exists():
        print("\n".join(explain_campaigns(warehouse, args.customer_id)))
    return 0


def add_parser(subparsers) -> None:
    explain = subparsers.add_parser(
        "explain", help="why a customer (or a prospect, P…) is (not) in each audience; their campaigns, newsletter"
    )
    explain.add_argument("customer_id")
    explain.set_defaults(fn=cmd_explain)
