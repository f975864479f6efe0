"""Which former customers have been kept as long as the policy allows (`retention.customer_data`).

The relationship has ended when the CRM says so (`customers.ended_on` is set) and no contract of
the customer is still open (every contract has an `end_date`). It ended on the later of the two:
`ended_on`, or the last contract's `end_date`, because a contract that runs past the CRM's date
(a move handled late, a return as a customer) is still part of the relationship.

A customer the CRM shows as active (`ended_on` empty) is never erased here, however long ago their
last contract ended: the CRM is the system of record for the relationship, and the suppression
record would keep a customer it still serves out of every table for good. Such customers are
counted instead (`open_without_contract`), so that someone asks the CRM's owners about them.

Both read the core tables of the run (the latest snapshots), so the decision agrees with every
other asset of the run.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from assets.storage.zones import query, scalar, table_exists

# per customer with an end date in the CRM: when the relationship ended, unless a contract is open
RELATIONSHIP_ENDS_SQL = """
select c.customer_id, greatest(c.ended_on, coalesce(max(k.end_date), c.ended_on)) as relationship_ended_on
from customers c left join contracts k on k.customer_id = c.customer_id
where c.ended_on is not null
group by c.customer_id, c.ended_on
having count(k.contract_id) = count(k.end_date)
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


def _core_tables_exist(conn: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(conn, "customers") and table_exists(conn, "contracts")


def relationship_ends(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Former customers and the day their relationship ended (models/retention.py decides who is past)."""
    if not _core_tables_exist(conn):
        return pl.DataFrame(schema={"customer_id": pl.String, "relationship_ended_on": pl.Date})
    return query(conn, RELATIONSHIP_ENDS_SQL)


def open_without_contract(conn: duckdb.DuckDBPyConnection, cutoff: dt.date) -> int:
    """How many customers the CRM still shows as active have had no contract since before `cutoff`."""
    return scalar(conn, OPEN_WITHOUT_CONTRACT_SQL, cutoff=cutoff) if _core_tables_exist(conn) else 0
