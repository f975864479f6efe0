"""Where campaigns are kept: restricted warehouse tables, one writer at a time.

- `campaign_briefs`: every brief file of the campaigns folder as last read, valid or with its error
  (the daily run replaces it);
- `campaign_plan`: the latest plan of each campaign not yet released, one row per targeted person;
- `campaign_releases`: the release and cancellation of each campaign: who, when, the brief as released
  (`lupa campaign release|cancel`);
- `campaign_release_list`: the list as frozen at release (treated, control and left out);
- `campaign_removals`: who left a released list before send_on, when and why (append-only);
- `campaign_results`, `campaign_reconciliation`: conversions per group; history rows not on a list and
  list rows missing from the history (the daily run replaces them).

A recipient is a customer or a prospect, in the column `customer_id` as in the contact history (a
prospect's id is `P` + 9 digits) with `recipient_type` beside it: the erasure, which removes a person
from every table with a `customer_id` column, so also removes them from every campaign.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os

import duckdb
import polars as pl

from assets.storage.zones import LupaStorage, query, table_exists
from data_contracts.campaigns import CampaignBrief
from models.campaign_plan import PLAN_SCHEMA

RELEASED, CANCELLED = "released", "cancelled"

BRIEF_SCHEMA = {
    "campaign_id": pl.String,
    "file": pl.String,
    "valid": pl.Boolean,
    "error": pl.String,
    "brief_json": pl.String,
    "business_day": pl.Date,
}
RELEASE_DDL = (
    "campaign_id varchar primary key, state varchar, brief_json varchar, send_on date, planned_on date, "
    "released_by varchar, released_at timestamptz, cancelled_by varchar, cancelled_at timestamptz"
)
LIST_DDL = (
    "campaign_id varchar, customer_id varchar, recipient_type varchar, status varchar, channel varchar, "
    "reason varchar, detail varchar, planned_on date, send_on date"
)
REMOVAL_DDL = "campaign_id varchar, customer_id varchar, removed_on date, reason varchar"


class CampaignError(Exception):
    """A release or cancellation that cannot be done; the message says why (no personal data)."""


def campaign_key() -> bytes:
    """The control group's HMAC key: the installation's pseudonym key (from the environment only)."""
    key = os.environ.get("LUPA_PSEUDONYM_KEY")
    if not key:
        raise RuntimeError("LUPA_PSEUDONYM_KEY is not set (pipelines.settings.load_settings provides it)")
    return key.encode()


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"create table if not exists campaign_releases ({RELEASE_DDL})")
    conn.execute(f"create table if not exists campaign_release_list ({LIST_DDL})")
    conn.execute(f"create table if not exists campaign_removals ({REMOVAL_DDL})")
    conn.execute(
        "create table if not exists campaign_plan (campaign_id varchar, customer_id varchar, recipient_type varchar, "
        "status varchar, channel varchar, reason varchar, detail varchar, planned_on date)"
    )


def to_stored(plan: pl.DataFrame) -> pl.DataFrame:
    return plan.rename({"recipient_id": "customer_id"})


def from_stored(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.rename({"customer_id": "recipient_id"})


def brief_json(brief: CampaignBrief) -> str:
    return brief.model_dump_json()


def brief_from_json(text: str) -> CampaignBrief:
    return CampaignBrief.model_validate(json.loads(text))


# ---- what the daily run reads ---------------------------------------------------------------


def releases(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    ensure_tables(conn)
    return query(conn, "select * from campaign_releases order by campaign_id")


def current_lists(conn: duckdb.DuckDBPyConnection, state: str = RELEASED) -> pl.DataFrame:
    """The released lists as they stand: the frozen rows without the people removed since."""
    ensure_tables(conn)
    return from_stored(
        query(
            conn,
            "select l.* from campaign_release_list l join campaign_releases r using (campaign_id) "
            "where r.state = $s and not exists (select 1 from campaign_removals m "
            "where m.campaign_id = l.campaign_id and m.customer_id = l.customer_id)",
            s=state,
        )
    )


def released_contacts(conn: duckdb.DuckDBPyConnection, except_campaign: str | None = None) -> pl.DataFrame:
    """The contacts of every released campaign that count toward the cap (the treated, not removed)."""
    lists = current_lists(conn)
    return lists.filter(
        (pl.col("status") == "treated") & (pl.col("campaign_id") != pl.lit(except_campaign or ""))
    ).select("recipient_id", "campaign_id", "send_on")


# ---- what the daily run writes --------------------------------------------------------------


def save_plans(conn: duckdb.DuckDBPyConnection, briefs: pl.DataFrame, plans: dict[str, pl.DataFrame]) -> None:
    """Replace the brief register and the plans of every campaign not released (a brief that is gone or
    invalid loses its plan; a released campaign's rows are its frozen list, never touched here)."""
    ensure_tables(conn)
    frames = [to_stored(p) for p in plans.values()]
    stored = pl.concat(frames) if frames else to_stored(pl.DataFrame(schema=PLAN_SCHEMA))
    conn.register("_plans", stored)
    conn.register("_briefs", briefs)
    try:
        conn.execute("begin transaction")
        conn.execute("create or replace table campaign_briefs as select * from _briefs")
        conn.execute("delete from campaign_plan")
        conn.execute("insert into campaign_plan by name select * from _plans")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    finally:
        conn.unregister("_plans")
        conn.unregister("_briefs")


def record_removals(conn: duckdb.DuckDBPyConnection, campaign_id: str, day: dt.date, removed: pl.DataFrame) -> int:
    if removed.height == 0:
        return 0
    ensure_tables(conn)
    rows = removed.select(
        pl.lit(campaign_id).alias("campaign_id"),
        pl.col("recipient_id").alias("customer_id"),
        pl.lit(day).alias("removed_on"),
        "reason",
    )
    conn.register("_removed", rows)
    try:
        # a re-run of the same day records nobody twice
        conn.execute(
            "insert into campaign_removals select * from _removed r where not exists "
            "(select 1 from campaign_removals m where m.campaign_id = r.campaign_id and m.customer_id = r.customer_id)"
        )
    finally:
        conn.unregister("_removed")
    return rows.height


def replace(conn: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    conn.register("_frame", frame)
    try:
        conn.execute(f'create or replace table "{name}" as select * from _frame')
    finally:
        conn.unregister("_frame")


# ---- release and cancel (the `lupa campaign` commands) --------------------------------------


def plan_of(conn: duckdb.DuckDBPyConnection, campaign_id: str) -> tuple[CampaignBrief, pl.DataFrame]:
    ensure_tables(conn)
    if not table_exists(conn, "campaign_briefs"):
        raise CampaignError("no campaign has been planned yet: run the daily run (lupa daily) first")
    found = query(conn, "select * from campaign_briefs where campaign_id = $c", c=campaign_id)
    if found.height == 0:
        raise CampaignError(f"campaign {campaign_id}: no brief with this campaign_id was found by the last daily run")
    row = found.row(0, named=True)
    if not row["valid"]:
        raise CampaignError(f"campaign {campaign_id}: its brief is invalid: {row['error']}")
    plan = from_stored(query(conn, "select * from campaign_plan where campaign_id = $c", c=campaign_id))
    return brief_from_json(row["brief_json"]), plan


def release(storage: LupaStorage, campaign_id: str, today: dt.date, freeze) -> tuple[CampaignBrief, pl.DataFrame]:
    """Freeze the campaign's latest plan. `freeze(brief, plan, released_contacts)` re-checks the cap
    against the campaigns released since the plan was made and returns the rows to freeze."""
    with storage.warehouse() as conn:
        ensure_tables(conn)
        state = query(conn, "select state from campaign_releases where campaign_id = $c", c=campaign_id)
        if state.height:
            raise CampaignError(f"campaign {campaign_id} is already {state['state'][0]}; a list is released once")
        brief, plan = plan_of(conn, campaign_id)
        if brief.send_on <= today:
            raise CampaignError(
                f"campaign {campaign_id}: send_on {brief.send_on} is not after today ({today}); "
                "a list is released before the day it is sent"
            )
        if plan.height == 0:
            raise CampaignError(f"campaign {campaign_id}: the last daily run planned nobody; nothing to release")
        frozen = freeze(brief, plan, conn)
        rows = to_stored(frozen).with_columns(pl.lit(brief.send_on).alias("send_on"))
        conn.register("_list", rows)
        try:
            conn.execute("begin transaction")
            conn.execute("insert into campaign_release_list by name select * from _list")
            conn.execute(
                "insert into campaign_releases values ($c, $s, $b, $send, $p, $by, $at, null, null)",
                {
                    "c": campaign_id,
                    "s": RELEASED,
                    "b": brief_json(brief),
                    "send": brief.send_on,
                    "p": plan["planned_on"].max(),
                    "by": getpass.getuser(),
                    "at": dt.datetime.now(dt.UTC),
                },
            )
            conn.execute("delete from campaign_plan where campaign_id = $c", {"c": campaign_id})
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
        finally:
            conn.unregister("_list")
    return brief, frozen


def cancel(storage: LupaStorage, campaign_id: str, today: dt.date) -> CampaignBrief:
    """The released list stops counting toward the cap (it stays, marked cancelled, for the record)."""
    with storage.warehouse() as conn:
        ensure_tables(conn)
        found = query(conn, "select * from campaign_releases where campaign_id = $c", c=campaign_id)
        if found.height == 0:
            raise CampaignError(f"campaign {campaign_id} is not released; only a released campaign can be cancelled")
        row = found.row(0, named=True)
        if row["state"] == CANCELLED:
            raise CampaignError(f"campaign {campaign_id} is already cancelled")
        if row["send_on"] <= today:
            raise CampaignError(
                f"campaign {campaign_id}: send_on {row['send_on']} has come; what was sent is in the contact history"
            )
        conn.execute(
            "update campaign_releases set state = $s, cancelled_by = $by, cancelled_at = $at where campaign_id = $c",
            {"s": CANCELLED, "by": getpass.getuser(), "at": dt.datetime.now(dt.UTC), "c": campaign_id},
        )
    return brief_from_json(row["brief_json"])
