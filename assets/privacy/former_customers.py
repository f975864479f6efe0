"""The facts retention needs to tell who is a former customer, read from the warehouse.

Per customer: the CRM's `ended_on`, the day of the last CRM snapshot that listed them when the
latest snapshot no longer does (`customer_listings`, kept by the customers ingest, because
`customers_valid` holds only the snapshot in scope), the last contract's `end_date`, and whether a
contract is still open. Which of them end the relationship, and when, is decided once, in
`models/retention.py` (`relationship_ends`): this module only reads.

A customer the CRM lists as active (`ended_on` empty) is never erased here, however long ago their
last contract ended: the CRM is the system of record for the relationship, and the suppression
record would keep a customer it still serves out of every table for good. Such customers are
counted instead (`open_without_contract`), so that someone asks the CRM's owners about them.

The current customers and contracts are the core tables of the run (the latest snapshots), so the
decision agrees with every other asset of the run.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from assets.storage.ingestion import LISTINGS_DDL
from assets.storage.zones import query, scalar, table_exists

# per customer the CRM lists with an end date, or no longer lists at all: the facts of models/retention.py
RELATIONSHIP_FACTS_SQL = """
with latest as (select max(last_listed_on) as d from customer_listings),
people as (
    select coalesce(c.customer_id, l.customer_id) as customer_id,
           coalesce(c.ended_on, l.ended_on) as ended_on,
           case when l.last_listed_on < (select d from latest) then l.last_listed_on end as last_listed_on
    from customers c full join customer_listings l on l.customer_id = c.customer_id)
select p.customer_id, p.ended_on, p.last_listed_on, max(k.end_date) as last_contract_end,
       (count(k.contract_id) - count(k.end_date))::bigint as open_contracts
from people p left join contracts k on k.customer_id = p.customer_id
where p.ended_on is not null or p.last_listed_on is not null
group by p.customer_id, p.ended_on, p.last_listed_on
"""

# customers the CRM shows as active whose every contract ended before the cutoff
OPEN_WITHOUT_CONTRACT_SQL = """
select count(*) from (
    select c.customer_id
    from customers c join contracts k on k.customer_id = c.customer_id
    where c.ended_on is null
    group by c.customer_id
    having count(k.end_date) = count(*) and max(k.end_date) < $cutoff)
"""


FACTS_SCHEMA = {
    "customer_id": pl.String,
    "ended_on": pl.Date,
    "last_listed_on": pl.Date,
    "last_contract_end": pl.Date,
    "open_contracts": pl.Int64,
}


def _core_tables_exist(conn: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(conn, "customers") and table_exists(conn, "contracts")


def relationship_facts(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Customers whose relationship may have ended, with the dates that say when (FACTS_SCHEMA)."""
    if not _core_tables_exist(conn):
        return pl.DataFrame(schema=FACTS_SCHEMA)
    conn.execute(LISTINGS_DDL)  # a warehouse whose customers ingest ran before listings were kept
    return query(conn, RELATIONSHIP_FACTS_SQL).cast(FACTS_SCHEMA)


def open_without_contract(conn: duckdb.DuckDBPyConnection, cutoff: dt.date) -> int:
    """How many customers the CRM still shows as active have had no contract since before `cutoff`."""
    return scalar(conn, OPEN_WITHOUT_CONTRACT_SQL, cutoff=cutoff) if _core_tables_exist(conn) else 0
