"""A big delivery is read in blocks: the result must not depend on where the blocks are cut.

Repeats of an interval are quarantined across a cut when the delivery is in (point, start time)
order, as Datahub exports are; in an unordered delivery a repeat the rule cannot see is resolved
by the daily aggregate the same way the rule would (the first line wins), so the figures agree.
"""

import datetime as dt
import json

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.storage.metering import aggregate_day, daily_root, ingest_delivery, manifest_root, quarantine_root
from assets.storage.zones import LupaStorage
from data_contracts.sources import _repeated_interval
from tests.landing_builder import GSRN1, GSRN2, metering_row, write

DAY = dt.date(2026, 11, 23)
DELIVERY = "20261124"
HOURS = [f"2026-11-{22 + (22 + h) // 24}T{(22 + h) % 24:02d}:00:00Z" for h in range(24)]


def run(tmp_path, name: str, rows: list[str], chunk_bytes: int):
    storage = LupaStorage(landing_dir=str(tmp_path / name / "landing"), data_dir=str(tmp_path / name / "data"))
    write(storage.landing, "metering", DELIVERY, rows)
    outcome = ingest_delivery(storage, DAY, chunk_bytes=chunk_bytes)
    aggregate_day(storage, DAY, DAY + dt.timedelta(days=1))
    quarantine = (
        pl.read_parquet(quarantine_root(storage) / f"delivery={DELIVERY}.parquet").select("line", "rule").sort("line")
    )
    daily = pl.read_parquet(daily_root(storage) / f"business_day={DAY}" / "part.parquet").sort("metering_point_id")
    in_order = json.loads((manifest_root(storage) / f"delivery={DELIVERY}.json").read_text())["keys_in_order"]
    return outcome, quarantine.rows(), daily, in_order


def test_a_repeat_right_after_a_block_cut_is_quarantined_as_in_one_block(tmp_path):
    rows = [metering_row(GSRN1, t, f"{h},250") for h, t in enumerate(HOURS)]
    rows.insert(6, metering_row(GSRN1, HOURS[5], "9,000"))  # line 8 repeats line 7
    rows += [metering_row(GSRN2, t) for t in HOURS]
    whole = run(tmp_path, "whole", rows, chunk_bytes=1 << 26)
    # one line per block: every repeat is across a cut
    lines = run(tmp_path, "lines", rows, chunk_bytes=1)
    assert whole[1] == lines[1] == [(8, "duplicate_interval")]
    assert whole[0].rows_valid == lines[0].rows_valid == 48
    assert whole[2].equals(lines[2])
    assert whole[3] and lines[3]  # in key order: the aggregate needs no dedupe
    assert whole[2].filter(pl.col("metering_point_id") == GSRN1)["kwh_total"].item() == sum(h + 0.25 for h in range(24))


def test_an_unordered_delivery_gives_the_same_daily_figures_whatever_the_blocks(tmp_path):
    rows = [metering_row(GSRN2, t, "1,000") for t in HOURS] + [metering_row(GSRN1, t, "0,500") for t in HOURS]
    rows.append(metering_row(GSRN2, HOURS[0], "7,000"))  # a far repeat, out of order
    whole = run(tmp_path, "whole", rows, chunk_bytes=1 << 26)
    lines = run(tmp_path, "lines", rows, chunk_bytes=1)
    assert whole[1] == [(50, "duplicate_interval")]  # one block: the rule sees it
    assert lines[1] == [] and not lines[3]  # across blocks it cannot, and the delivery says so
    assert whole[2].equals(lines[2])  # the aggregate keeps the first line, as the rule does
    assert whole[2].filter(pl.col("metering_point_id") == GSRN2)["kwh_total"].item() == 24.0


keys = st.lists(
    st.tuples(
        st.one_of(st.none(), st.sampled_from(["643550123456789011", "643550123456789028", "643550123456789035"])),
        st.one_of(st.none(), st.integers(0, 6)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(keys, st.booleans())
def test_the_in_order_repeat_check_flags_exactly_what_hashing_flags(rows, ordered):
    rows = sorted(rows, key=lambda r: (r[0] or "", r[1] or -1)) if ordered else rows
    frame = pl.DataFrame(
        {
            "MeteringPointGSRN": [r[0] for r in rows],
            "Start Time": [
                None if r[1] is None else dt.datetime(2026, 1, 1, r[1], tzinfo=dt.timezone.utc) for r in rows
            ],
        },
        schema={"MeteringPointGSRN": pl.String, "Start Time": pl.Datetime("us", "UTC")},
    )
    keys_ = frame.select(pl.struct("MeteringPointGSRN", "Start Time")).to_series()
    assert _repeated_interval(keys_).to_list() == keys_.is_first_distinct().not_().to_list()
