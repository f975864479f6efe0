"""An erasure's republish never rolls the mart back to an older day."""

import datetime as dt

import polars as pl

import assets.privacy.erasure
from assets.storage.mart import publish, published_as_of, read_published
from tests.dagster_helpers import storage_for

D = dt.date(2026, 11, 24)


def mart(day: dt.date, customers: list[str]) -> dict[str, pl.DataFrame]:
    return {"audience_email": pl.DataFrame({"customer_id": customers, "as_of": [day] * len(customers)})}


def test_a_daily_publish_landing_during_the_erasure_is_kept_and_the_customer_still_leaves(tmp_path, monkeypatch):
    storage = storage_for(tmp_path)
    publish(
        storage.root,
        mart(D - dt.timedelta(days=1), ["C0000001", "C0000002"]),
        tag="d-1",
        as_of=D - dt.timedelta(days=1),
    )
    real, calls = assets.privacy.erasure.publish, []

    def daily_publish_lands_first(*args, **kwargs):
        # the erasure has read the D-1 mart; the day's run publishes D before the erasure takes the lock
        calls.append(kwargs.get("as_of"))
        if len(calls) == 1:
            publish(storage.root, mart(D, ["C0000001", "C0000002", "C0000003"]), tag="d", as_of=D)
        return real(*args, **kwargs)

    monkeypatch.setattr(assets.privacy.erasure, "publish", daily_publish_lands_first)
    assets.privacy.erasure._republish_mart(storage, ["C0000001"], D)

    assert calls == [D - dt.timedelta(days=1), D]  # refused the older copy, then republished the newer one
    assert published_as_of(storage.root) == D
    assert sorted(read_published(storage.root, "audience_email")["customer_id"]) == ["C0000002", "C0000003"]
