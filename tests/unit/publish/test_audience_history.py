"""audience_history keeps the proof of each published row, and an old warehouse is migrated in place.

The table is append-only and years long, so a warehouse whose audience_history predates the proof
columns gets them added (old rows keep nulls) instead of failing or being rebuilt.
"""

import datetime as dt

import duckdb
import polars as pl

from assets.publish.assets import HISTORY_PROOF_COLUMNS, append_audience_history, migrate_audience_history
from assets.storage.zones import LupaStorage
from data_contracts.audiences import AUDIENCE_TABLES, CONSENT_EVIDENCE, UTC_US
from data_contracts.vocabulary import CHANNELS

D = dt.date(2026, 11, 24)
OLD_COLUMNS = ["business_day", "channel", "customer_id", "segment_id", "legal_basis", "policy_version"]


def audience(rows: list[tuple[str, str, str | None, str | None]]) -> pl.DataFrame:
    """Audience rows (customer, legal basis, event id, evidence ref) with the published evidence columns."""
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "segment_id": [1] * len(rows),
            "legal_basis": [r[1] for r in rows],
            "rule": ["consent:marketing/email" if r[1] == "consent" else "soft_opt_in" for r in rows],
            "consent_event_id": [r[2] for r in rows],
            "consent_occurred_at": [dt.datetime(2026, 1, 2, 8, tzinfo=dt.UTC) if r[2] else None for r in rows],
            "consent_source": ["web" if r[2] else None for r in rows],
            "consent_wording_version": ["v3" if r[2] else None for r in rows],
            "consent_evidence_ref": [f"ev/{r[2]}" if r[2] else None for r in rows],
            "policy_version": ["2026.1"] * len(rows),
        },
        schema_overrides={"consent_occurred_at": UTC_US, "consent_event_id": pl.String, "consent_source": pl.String},
    )


def published() -> dict[str, pl.DataFrame]:
    empty = audience([])
    tables = {AUDIENCE_TABLES[ch]: empty for ch in CHANNELS}
    tables[AUDIENCE_TABLES["email"]] = audience([("C0000001", "consent", "E1"), ("C0000002", "opt_out", None)])
    return tables


def storage(tmp_path) -> LupaStorage:
    return LupaStorage(landing_dir=str(tmp_path / "landing"), data_dir=str(tmp_path / "data"))


def rows(s: LupaStorage) -> pl.DataFrame:
    conn = duckdb.connect(str(s.warehouse_path), read_only=True)
    try:
        return conn.sql("select * from audience_history order by business_day, customer_id").pl()
    finally:
        conn.close()


def test_the_proof_columns_are_the_rule_and_every_consent_evidence_column():
    assert set(HISTORY_PROOF_COLUMNS) == {"rule", *(name for _, name in CONSENT_EVIDENCE)}


def test_an_old_history_table_gets_the_proof_columns_and_keeps_its_rows(tmp_path):
    s = storage(tmp_path)
    with s.warehouse() as conn:  # the table as an installation from before the proof columns has it
        conn.execute(
            "create table audience_history (business_day DATE, channel VARCHAR, customer_id VARCHAR, "
            "segment_id BIGINT, legal_basis VARCHAR, policy_version VARCHAR)"
        )
        conn.execute("insert into audience_history values ('2026-11-20', 'email', 'C0000009', 2, 'consent', '2026.0')")

    append_audience_history(s, D, published())

    history = rows(s)
    assert history.columns == [*OLD_COLUMNS, *HISTORY_PROOF_COLUMNS]
    old = history.filter(pl.col("business_day") == dt.date(2026, 11, 20)).to_dicts()
    assert [r["customer_id"] for r in old] == ["C0000009"]
    assert all(old[0][c] is None for c in HISTORY_PROOF_COLUMNS)  # not recorded then, not invented now
    new = {r["customer_id"]: r for r in history.filter(pl.col("business_day") == D).to_dicts()}
    assert (new["C0000001"]["consent_event_id"], new["C0000001"]["consent_evidence_ref"]) == ("E1", "ev/E1")
    assert new["C0000001"]["consent_occurred_at"] == dt.datetime(2026, 1, 2, 8, tzinfo=dt.UTC)
    assert all(new["C0000002"][name] is None for _, name in CONSENT_EVIDENCE)
    assert new["C0000002"]["rule"] == "soft_opt_in"


def test_the_migration_is_idempotent_and_a_no_op_without_the_table(tmp_path):
    s = storage(tmp_path)
    with s.warehouse() as conn:
        migrate_audience_history(conn)
        assert not conn.sql("select * from duckdb_tables() where table_name = 'audience_history'").fetchall()
    append_audience_history(s, D, published())
    append_audience_history(s, D, published())  # a re-run of the day: migrated again, replaced, not doubled
    with s.warehouse() as conn:
        migrate_audience_history(conn)
    history = rows(s)
    assert history.columns == [*OLD_COLUMNS, *HISTORY_PROOF_COLUMNS]
    assert history.height == 2
