"""The quarantine as the fail safe reads it: the rows in scope for business day D, the resolutions a
person recorded, and the ASML extract in force. `models/fail_safe.py` decides which of them block."""

from __future__ import annotations

import datetime as dt

import polars as pl

from assets.storage.landing import visible_cutoff
from assets.storage.zones import LupaStorage, query, table_exists
from data_contracts.policy import MarketingPolicy
from models.fail_safe import BLOCKER_SCHEMA, PROSPECT_RESTRICTING_ROWS, RESOLUTION_KEY, RESTRICTING_ROWS, blocking_on


def unresolved_blocking_rows(
    storage: LupaStorage, day: dt.date, policy: MarketingPolicy, recipients: str = "customers"
) -> pl.DataFrame:
    """Quarantined rows in scope for D that could restrict contact and nobody has resolved, for the
    customer audiences or (`recipients="prospects"`) the prospect audiences."""
    restricting = PROSPECT_RESTRICTING_ROWS if recipients == "prospects" else RESTRICTING_ROWS
    cutoff = visible_cutoff(day)
    with storage.warehouse() as conn:
        if not table_exists(conn, "quarantine"):
            return pl.DataFrame(schema=BLOCKER_SCHEMA)
        quarantine = query(conn, "select * from quarantine where delivered_on <= $cutoff", cutoff=cutoff)
        resolved = (
            query(conn, f"select {', '.join(RESOLUTION_KEY)} from quarantine_resolutions")
            if table_exists(conn, "quarantine_resolutions")
            else pl.DataFrame(schema={"source": pl.String, "file": pl.String, "line": pl.Int64})
        )
        asml_file = query(
            conn,
            "select max(file_name) as f from file_registry where source = 'asml' and delivered_on <= $cutoff",
            cutoff=cutoff,
        )["f"][0]
    return blocking_on(quarantine, resolved, asml_file, day, cutoff, policy, restricting)
