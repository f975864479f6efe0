"""An erasure that lands between `marketing_mart` reading the warehouse and publishing the mart is
honoured: the erased customer is in no published table, no export and not in audience_history.

The interleaving is made deterministic: the erasure runs inside the step, after the warehouse and
analytics tables were read and before `publish` takes the mart lock (so the erasure's own
republication goes first, as in the race found in review); and, at the level of `publish`, a
suppression recorded while the new mart is being staged (the `before_swap` seam).
"""

import datetime as dt
import threading

import duckdb
import polars as pl
from dagster import AssetKey

import assets.publish.assets as publish_asset
from assets.privacy import erasure
from assets.privacy.erasure import erase
from assets.storage import suppression
from assets.storage.mart import WAREHOUSE_DIR, exports_link, mart_path, publish, published_as_of, read_published
from tests.dagster_helpers import run_day, storage_for
from tests.integration.privacy.test_erasure import ERASED_ON, GONE, KEEP, RETENTION_PERIODS, D, landing
from tests.integration.publish.test_marketing_mart import history

D1 = D + dt.timedelta(days=1)


def published_tables(data_dir) -> dict[str, pl.DataFrame]:
    conn = duckdb.connect(str(mart_path(data_dir)), read_only=True)
    try:
        names = [n for (n,) in conn.sql("select table_name from duckdb_tables()").fetchall()]
    finally:
        conn.close()
    return {n: read_published(data_dir, n) for n in names}


def exported_files(data_dir) -> list:
    """Every export a reader could still open: the current link and every folder kept beside it."""
    return sorted(p for p in (data_dir / "mart_exports").rglob("*") if p.suffix in (".parquet", ".csv", ".xlsx"))


def customers_in(path) -> set[str]:
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
    elif path.suffix == ".xlsx":
        frame = pl.read_excel(path, engine="openpyxl", infer_schema_length=0)
    else:
        frame = pl.read_csv(path.read_bytes().removeprefix(b"\xef\xbb\xbf"), separator=";", infer_schema=False)
    return set(frame["customer_id"].to_list()) if "customer_id" in frame.columns else set()


def test_an_erasure_between_the_read_and_the_publication_keeps_the_customer_out(tmp_path, monkeypatch):
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    assert GONE in read_published(storage.root, "audience_email")["customer_id"].to_list()
    landing(storage, delivery="20261125", day=D1)  # the next day's deliveries still hold the customer

    real_publish = publish_asset.publish
    erasures = []

    def erase_then_publish(data_dir, tables, **kwargs):
        # marketing_mart has read the warehouse (the customer is in `tables`) and not yet taken the lock:
        # `lupa erase` runs now, deletes the customer and republishes the mart through the same lock
        assert GONE in tables["audience_email"]["customer_id"].to_list()
        erasures.append(erase(storage, GONE, ERASED_ON, RETENTION_PERIODS))
        assert GONE not in read_published(storage.root, "audience_email")["customer_id"].to_list()
        return real_publish(data_dir, tables, **kwargs)

    monkeypatch.setattr(publish_asset, "publish", erase_then_publish)
    result = run_day(storage, D1)
    assert result.success and len(erasures) == 1
    assert published_as_of(storage.root) == D1  # the day's mart was published, after the erasure's

    tables = published_tables(storage.root)
    with_customers = {n: t for n, t in tables.items() if "customer_id" in t.columns}
    assert with_customers
    for name, frame in with_customers.items():
        assert GONE not in frame["customer_id"].to_list(), name
    assert KEEP in tables["audience_email"]["customer_id"].to_list()

    files = exported_files(storage.root)
    assert {p.suffix for p in files} == {".parquet", ".csv", ".xlsx"}
    for path in files:
        assert GONE not in customers_in(path), path.name
    assert KEEP in customers_in(exports_link(storage.root) / "audience_email.csv")
    assert KEEP in customers_in(exports_link(storage.root) / "audience_email.parquet")

    recorded = history(storage)
    assert GONE not in recorded["customer_id"].to_list()
    assert KEEP in recorded.filter(pl.col("business_day") == D1)["customer_id"].to_list()

    [event] = [m for m in result.get_asset_materialization_events() if m.asset_key == AssetKey("marketing_mart")]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["erased_since_read"] == 1 and metadata["published"] is True
    assert GONE not in repr(metadata)  # a count, never who


def test_an_erasure_while_the_mart_is_validated_and_swapped_keeps_the_customer_out_of_history(tmp_path, monkeypatch):
    """The narrower window: marketing_mart holds the lock and has validated its staged mart (the
    policy check re-read the warehouse before the erasure) when `lupa erase` deletes the customer;
    the erasure's own republication then waits for the lock. Made deterministic with a thread that
    the test waits for until the erasure is at the lock."""
    storage = storage_for(tmp_path)
    landing(storage)
    assert run_day(storage, D).success
    landing(storage, delivery="20261125", day=D1)

    at_the_lock, erasures = threading.Event(), []
    real_validate, real_erasure_publish = publish_asset.validate_mart, erasure.publish

    def erasure_publish(*args, **kwargs):
        at_the_lock.set()  # the erasure has deleted the customer everywhere and now waits for the mart lock
        return real_erasure_publish(*args, **kwargs)

    def validate_then_erasure(path, *args, **kwargs):
        real_validate(path, *args, **kwargs)  # passes: the customer is still in the warehouse
        if not erasures:
            thread = threading.Thread(
                target=lambda: erasures.append(erase(storage, GONE, ERASED_ON, RETENTION_PERIODS)), daemon=True
            )
            erasures.append(thread)
            thread.start()
            assert at_the_lock.wait(120), "the erasure never reached the mart lock"

    monkeypatch.setattr(erasure, "publish", erasure_publish)
    monkeypatch.setattr(publish_asset, "validate_mart", validate_then_erasure)
    result = run_day(storage, D1)
    erasures[0].join(120)
    assert result.success and len(erasures) == 2 and not erasures[0].is_alive()

    for name, frame in published_tables(storage.root).items():
        if "customer_id" in frame.columns:
            assert GONE not in frame["customer_id"].to_list(), name
    for path in exported_files(storage.root):
        assert GONE not in customers_in(path), path.name
    recorded = history(storage)
    assert GONE not in recorded["customer_id"].to_list()
    assert KEEP in recorded.filter(pl.col("business_day") == D1)["customer_id"].to_list()
    [event] = [m for m in result.get_asset_materialization_events() if m.asset_key == AssetKey("marketing_mart")]
    assert event.materialization.metadata["erased_since_read"].value == 1


def test_a_suppression_recorded_while_the_mart_is_staged_is_honoured_before_the_swap(tmp_path, monkeypatch):
    monkeypatch.setenv("LUPA_PSEUDONYM_KEY", "test-key")
    data_dir = tmp_path / "data"
    customers = ["C0000001", "C0000002", "C0000003"]
    tables = {
        "audience_email": pl.DataFrame({"customer_id": customers, "email": [f"{c}@example.fi" for c in customers]}),
        "customer_segments": pl.DataFrame({"customer_id": customers, "segment_id": [1, 2, 1]}),
        "segment_catalogue": pl.DataFrame({"segment_id": [1, 2], "name_fi": ["Yksi", "Kaksi"]}),
    }
    swaps, after = [], []

    def erasure_records_its_suppression():  # step 1 of `lupa erase`, while this publisher holds the lock
        if not swaps:
            suppression.add(
                data_dir / WAREHOUSE_DIR, ["C0000002"], pl.DataFrame(schema=suppression.POINTS_SCHEMA), ERASED_ON
            )
        swaps.append(1)

    counts = publish(
        data_dir,
        tables,
        tag="2026-11-24",
        before_swap=erasure_records_its_suppression,
        after_swap=lambda published, erased: after.append((published, erased)),
    )
    assert len(swaps) == 2  # staged again, without the customer
    assert counts == {"audience_email": 2, "customer_segments": 2, "segment_catalogue": 2}
    [(published, erased)] = after
    assert erased == 1 and published["audience_email"]["customer_id"].to_list() == ["C0000001", "C0000003"]
    for name in ("audience_email", "customer_segments"):
        assert read_published(data_dir, name)["customer_id"].to_list() == ["C0000001", "C0000003"]
    for path in exported_files(data_dir):
        assert "C0000002" not in customers_in(path), path.name
    assert not list(data_dir.glob(".marketing-*"))  # nothing staged is left behind

    # a later publication of a stale read (the customer still in it) drops them before staging
    again = publish(
        data_dir, tables, tag="2026-11-25", after_swap=lambda published, erased: after.append((published, erased))
    )
    assert again["audience_email"] == 2 and after[-1][1] == 1
