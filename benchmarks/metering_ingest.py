"""Metering ingest on a big Datahub day, against a bare DuckDB read_csv + GROUP BY of the same file.

What it does
  1. Synthesises one delivery (`metering_YYYYMMDD.csv`, the file for business day 2026-11-24, a
     24-hour Helsinki day = 96 quarter-hours from 2026-11-23T22:00:00Z) of `--points` PT15M
     metering points into a scratch dir, vectorised with numpy + polars. GSRNs carry valid GS1
     mod-10 check digits; quantities use the decimal comma; about 0.01 % of the rows are broken on
     purpose (one of seven rules each) so the quarantine path runs. The file is reused by later runs
     with the same parameters (`--regenerate` forces a new one).
  2. Measures, each in its own subprocess so that the peak RSS belongs to that measurement alone
     (`os.wait4` on the child, i.e. its `ru_maxrss`):
       ingest  the pipeline's own code path: `assets.storage.metering.ingest_delivery(storage, day)` (read,
               validate against the contract incl. pandera, quarantine, write Parquet) followed by
               `aggregate_day(storage, day, cutoff)`, with default arguments, as the assets call them;
       duckdb  the reference limit: DuckDB `read_csv` of the same file + GROUP BY metering point
               (sum of the quantity after replacing the decimal comma), writing nothing;
       duckdb_store  the ceiling: DuckDB alone doing the ingest's storing with no validation at
               all (every column typed, Parquet per Helsinki business day, then the per-point day
               aggregate). No ingest that stores the readings can beat it by much, so its ratio to
               `duckdb` bounds the ratio any implementation could reach on this machine.
  3. Prints a table and writes a JSON result (wall time, rows/s, MB/s, peak RSS, the throughput
     ratio ingest / duckdb, machine, date, versions).

Targets from the issue: ingest throughput >= 50 % of DuckDB's, ingest peak RSS < 6 GiB. This is
a measurement, not a test: it reports whether the targets are met and always exits 0 unless a
measurement itself fails.

    python -m benchmarks.run metering_ingest                 # full size: 500,000 points, 48M rows
    python -m benchmarks.metering_ingest --points 20000      # small tier (1.9M rows), under a minute
    python -m benchmarks.metering_ingest --repeat 2 --keep   # fastest of 2 runs each; keep the CSV
    python -m benchmarks.metering_ingest --only ingest --profile   # cProfile the ingest worker

Results and their interpretation: docs/benchmarks.md, section "Metering ingest".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

from benchmarks import _harness as h

MODULE = "benchmarks.metering_ingest"

BUSINESS_DAY = dt.date(2026, 11, 24)
DELIVERED_ON = BUSINESS_DAY + dt.timedelta(days=1)  # a run for D reads the file dated D+1
FILE_NAME = f"metering_{DELIVERED_ON:%Y%m%d}.csv"
DAY_START_UTC = dt.datetime(2026, 11, 23, 22, 0, tzinfo=dt.UTC)  # 00:00 Helsinki (EET, UTC+2)
QUARTERS = 96  # 24-hour day
HEADER = "MeteringPointGSRN;Product Type;Resolution;Unit Type;Reading Type;Start Time;Quantity;Quality"

TARGET_RATIO = 0.5
KINDS = ("ingest", "duckdb", "duckdb_store")
TARGET_RSS_BYTES = 6 * 1024**3

#: the broken rows, one rule each, and the rule code the quarantine must show for them
BAD_KINDS = (
    "gsrn_check_digit",
    "Quantity_out_of_range",
    "Quality_unknown_code",
    "start_not_on_interval",
    "quantity_missing",
    "malformed_record",
    "duplicate_interval",
)
GENERATOR_VERSION = 1


# ---- the synthetic delivery ------------------------------------------------------------------
def gs1_check_digits(bodies):
    """GS1 mod-10 check digit of 17-digit bodies (numpy int64): weights 3,1,3,… from the right."""
    import numpy as np

    total = np.zeros(len(bodies), dtype=np.int64)
    rest = bodies.copy()
    for position in range(17):  # position 0 is the rightmost digit of the body
        total += (rest % 10) * (3 if position % 2 == 0 else 1)
        rest //= 10
    return (10 - total % 10) % 10


def gsrn_strings(points: int, seed: int) -> list[str]:
    """`points` distinct, sorted GSRNs with correct check digits, under a few GS1 prefixes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    prefixes = np.array([64_350, 64_300, 64_380], dtype=np.int64) * 10**12  # 17-digit bodies
    # distinct serials: a random sample of a range 4x the size, split over the prefixes
    serials = np.sort(rng.choice(points * 4, size=points, replace=False)).astype(np.int64)
    bodies = prefixes[rng.integers(0, len(prefixes), size=points)] + serials * 1_009 + 12_345
    bodies = np.unique(bodies)
    while len(bodies) < points:  # practically never: top up with fresh serials
        extra = prefixes[0] + rng.integers(0, 10**12, size=points - len(bodies))
        bodies = np.unique(np.concatenate([bodies, extra]))
    bodies = bodies[:points]
    checks = gs1_check_digits(bodies)
    return [f"{b:017d}{c}" for b, c in zip(bodies.tolist(), checks.tolist(), strict=True)]


def synthesise(path: Path, points: int, bad_share: float, seed: int) -> dict:
    """Write the delivery file; returns its description (rows, bytes, expected quarantine)."""
    import numpy as np
    import polars as pl

    started = time.perf_counter()
    rng = np.random.default_rng(seed + 1)
    gsrns = gsrn_strings(points, seed)
    gsrn_series = pl.Series("g", gsrns, dtype=pl.String)
    times = [(DAY_START_UTC + dt.timedelta(minutes=15 * k)).strftime("%Y-%m-%dT%H:%M:%SZ") for k in range(QUARTERS)]
    time_series = pl.Series("t", times, dtype=pl.String)
    rows = points * QUARTERS

    # broken rows: non-adjacent positions (a duplicate copies the row before it, which stays good)
    step = 5
    n_bad = min(max(len(BAD_KINDS), round(rows * bad_share)), (rows - 1) // step)
    bad_rows = (
        np.sort(rng.choice((rows - 1) // step, size=n_bad, replace=False)) * step
        + 1
        + rng.integers(0, step - 1, size=n_bad)
    )
    bad_kind = {int(r): BAD_KINDS[i % len(BAD_KINDS)] for i, r in enumerate(bad_rows.tolist())}
    expected = {kind: sum(1 for k in bad_kind.values() if k == kind) for kind in BAD_KINDS}

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    block_points = 20_000
    with tmp.open("wb") as fh:
        fh.write((HEADER + "\n").encode())
        for p0 in range(0, points, block_points):
            p1 = min(points, p0 + block_points)
            n = (p1 - p0) * QUARTERS
            first_row = p0 * QUARTERS
            milli = rng.integers(0, 2_500, size=n)
            u = rng.random(n)
            quality_code = np.where(u < 0.005, 2, np.where(u < 0.025, 1, 0)).astype(np.uint8)
            frame = pl.DataFrame(
                {
                    "g": gsrn_series.gather(np.repeat(np.arange(p0, p1), QUARTERS)),
                    "t": time_series.gather(np.tile(np.arange(QUARTERS), p1 - p0)),
                    "m": milli,
                    "q": quality_code,
                }
            )
            quality = pl.col("q").replace_strict({0: "OK", 1: "ESTIMATED", 2: "MISSING"}, return_dtype=pl.String)
            quantity = (
                pl.when(pl.col("q") == 2)
                .then(pl.lit(""))
                .otherwise(
                    pl.concat_str(
                        [
                            (pl.col("m") // 1000).cast(pl.String),
                            pl.lit(","),
                            (pl.col("m") % 1000).cast(pl.String).str.zfill(3),
                        ]
                    )
                )
            )
            lines = frame.select(
                pl.concat_str(
                    [
                        pl.col("g"),
                        pl.lit("8716867000030"),
                        pl.lit("PT15M"),
                        pl.lit("kWh"),
                        pl.lit("BN01"),
                        pl.col("t"),
                        quantity,
                        quality,
                    ],
                    separator=";",
                ).alias("line")
            )["line"]
            in_block = bad_rows[(bad_rows >= first_row) & (bad_rows < first_row + n)]
            if len(in_block):
                fixes = [_broken_line(int(r), bad_kind[int(r)], gsrns, times) for r in in_block.tolist()]
                lines = lines.scatter(in_block - first_row, pl.Series(fixes, dtype=pl.String))
            lines.to_frame().write_csv(fh, include_header=False, quote_style="never")
    tmp.replace(path)
    return {
        "file": path.name,
        "points": points,
        "rows": rows,
        "bytes": path.stat().st_size,
        "bad_rows": int(n_bad),
        "expected_quarantine": expected,
        "seed": seed,
        "bad_share": bad_share,
        "generator_version": GENERATOR_VERSION,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _broken_line(row: int, kind: str, gsrns: list[str], times: list[str]) -> str:
    gsrn, start = gsrns[row // QUARTERS], times[row % QUARTERS]
    fields = [gsrn, "8716867000030", "PT15M", "kWh", "BN01", start, "0,125", "OK"]
    if kind == "gsrn_check_digit":
        fields[0] = gsrn[:-1] + str((int(gsrn[-1]) + 1) % 10)
    elif kind == "Quantity_out_of_range":
        fields[6] = "-0,125"
    elif kind == "Quality_unknown_code":
        fields[7] = "BAD"
    elif kind == "start_not_on_interval":
        fields[5] = start[:14] + f"{int(start[14:16]) + 7:02d}" + start[16:]
    elif kind == "quantity_missing":
        fields[6] = ""
    elif kind == "malformed_record":
        fields = fields[:6]
    elif kind == "duplicate_interval":
        previous = row - 1
        fields[0], fields[5], fields[6] = gsrns[previous // QUARTERS], times[previous % QUARTERS], "0,250"
    return ";".join(fields)


def ensure_delivery(scratch: Path, points: int, bad_share: float, seed: int, regenerate: bool) -> dict:
    landing = scratch / "landing"
    path = landing / "metering" / FILE_NAME

    def make() -> dict:
        shutil.rmtree(landing, ignore_errors=True)
        return synthesise(path, points, bad_share, seed)

    wanted = {"points": points, "bad_share": bad_share, "seed": seed, "generator_version": GENERATOR_VERSION}
    return h.cached_data(
        scratch / "delivery.json",
        wanted,
        lambda meta: path.exists() and meta.get("bytes") == path.stat().st_size,
        regenerate,
        make,
    )


# ---- the measurements (each runs in its own process) ------------------------------------------
def work_ingest(landing: Path, data: Path, profile: Path | None) -> dict:
    from assets.storage.metering import aggregate_day, ingest_delivery, stored_rows
    from assets.storage.zones import LupaStorage

    storage = LupaStorage(landing_dir=str(landing), data_dir=str(data))
    cutoff = BUSINESS_DAY + dt.timedelta(days=1)
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    c0, t0 = h.cpu_seconds(), time.perf_counter()
    outcome = ingest_delivery(storage, BUSINESS_DAY)
    c1, t1 = h.cpu_seconds(), time.perf_counter()
    rss_after_ingest = h.self_peak_rss()
    daily_rows = aggregate_day(storage, BUSINESS_DAY, cutoff)
    c2, t2 = h.cpu_seconds(), time.perf_counter()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    valid_stored, quarantined_stored = stored_rows(storage, outcome.delivered_on)
    parquet_bytes = sum(p.stat().st_size for p in (storage.metering_dir / "readings").rglob("*.parquet"))
    return {
        "seconds": t2 - t0,
        "work_cpu_seconds": c2 - c0,
        "seconds_ingest_delivery": t1 - t0,
        "seconds_aggregate_day": t2 - t1,
        "cpu_seconds_ingest_delivery": c1 - c0,
        "cpu_seconds_aggregate_day": c2 - c1,
        "peak_rss_bytes_ingest_delivery": rss_after_ingest,  # the process peak before aggregate_day ran
        "rows_read": outcome.rows_read,
        "rows_valid": outcome.rows_valid,
        "rows_quarantined": outcome.rows_quarantined,
        "rule_counts": dict(sorted(outcome.rule_counts.items())),
        "days_written": outcome.days_written,
        "daily_rows": daily_rows,
        "stored_valid": valid_stored,
        "stored_quarantined": quarantined_stored,
        "readings_parquet_bytes": parquet_bytes,
    }


def duckdb_sql(csv: Path) -> str:
    columns = ", ".join(f"'{name}': 'VARCHAR'" for name in HEADER.split(";"))
    # the outer aggregate keeps every per-point sum alive (nothing is optimised away) yet returns one row
    return f"""
    select count(*) as points, sum(kwh) as kwh, sum(n) as rows from (
        select MeteringPointGSRN, sum(try_cast(replace(Quantity, ',', '.') as double)) as kwh, count(*) as n
        from read_csv('{csv}', delim = ';', header = true, auto_detect = false,
                      columns = {{{columns}}}, ignore_errors = true)
        group by MeteringPointGSRN
    )"""


def work_duckdb(csv: Path) -> dict:
    import duckdb

    conn = duckdb.connect()
    try:
        threads = conn.sql("select current_setting('threads')").fetchall()[0][0]
        c0, t0 = h.cpu_seconds(), time.perf_counter()
        points, kwh, rows = conn.sql(duckdb_sql(csv)).fetchall()[0]
        c1, t1 = h.cpu_seconds(), time.perf_counter()
    finally:
        conn.close()
    return {
        "seconds": t1 - t0,
        "work_cpu_seconds": c1 - c0,
        "points": points,
        "rows_grouped": int(rows),
        "kwh": kwh,
        "threads": threads,
    }


def duckdb_store_sql(csv: Path, out: Path) -> tuple[str, str]:
    """The ingest's storing, in DuckDB alone: typed read, Parquet per business day, day aggregate."""
    types = dict.fromkeys(HEADER.split(";"), "VARCHAR") | {"Start Time": "TIMESTAMPTZ", "Quantity": "DOUBLE"}
    columns = ", ".join(f"'{name}': '{kind}'" for name, kind in types.items())
    store = f"""
    copy (
        select MeteringPointGSRN as metering_point_id, "Start Time" as start_utc,
               Resolution as resolution, Quantity as quantity_kwh,
               Quality as quality, hour("Start Time") as local_hour, cast("Start Time" as date) as business_day
        from read_csv('{csv}', delim = ';', header = true, auto_detect = false,
                      columns = {{{columns}}}, decimal_separator = ',',
                      timestampformat = '%Y-%m-%dT%H:%M:%SZ', ignore_errors = true)
    ) to '{out}' (format parquet, partition_by (business_day), compression zstd)"""
    hours = ", ".join(f"sum(quantity_kwh) filter (where local_hour = {hour}) as kwh_h{hour:02d}" for hour in range(24))
    aggregate = f"""
    select count(*), sum(kwh_total) from (
        select business_day, metering_point_id, any_value(resolution), sum(quantity_kwh) as kwh_total, {hours},
               sum(quantity_kwh) filter (where local_hour >= 22 or local_hour < 7) as night_kwh,
               count(*) filter (where quality = 'OK'), count(*) filter (where quality = 'ESTIMATED'),
               count(*) filter (where quality = 'MISSING')
        from read_parquet('{out}/*/*.parquet', hive_partitioning = true) group by business_day, metering_point_id
    )"""
    return store, aggregate


def work_duckdb_store(csv: Path, out: Path) -> dict:
    import duckdb

    shutil.rmtree(out, ignore_errors=True)
    conn = duckdb.connect()
    try:
        conn.execute("set TimeZone = 'Europe/Helsinki'")  # local hour and business day, as the ingest
        conn.execute("set preserve_insertion_order = false")  # DuckDB's fastest write: the ceiling is a best case
        store, aggregate = duckdb_store_sql(csv, out)
        c0, t0 = h.cpu_seconds(), time.perf_counter()
        conn.execute(store)
        c1, t1 = h.cpu_seconds(), time.perf_counter()
        daily_rows, _ = conn.sql(aggregate).fetchall()[0]
        c2, t2 = h.cpu_seconds(), time.perf_counter()
    finally:
        conn.close()
    parquet_bytes = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    shutil.rmtree(out, ignore_errors=True)
    return {
        "seconds": t2 - t0,
        "work_cpu_seconds": c2 - c0,
        "seconds_store": t1 - t0,
        "seconds_aggregate": t2 - t1,
        "cpu_seconds_store": c1 - c0,
        "cpu_seconds_aggregate": c2 - c1,
        "daily_rows": daily_rows,
        "readings_parquet_bytes": parquet_bytes,
    }


def _worker(argv: list[str]) -> int:
    kind, out = argv[0], Path(argv[1])
    if kind == "ingest":
        result = work_ingest(Path(argv[2]), Path(argv[3]), Path(argv[4]) if len(argv) > 4 else None)
    elif kind == "duckdb":
        result = work_duckdb(Path(argv[2]))
    elif kind == "duckdb_store":
        result = work_duckdb_store(Path(argv[2]), Path(argv[3]))
    else:
        raise SystemExit(f"unknown worker {kind}")
    return h.write_worker_result(out, result)


# ---- reporting ------------------------------------------------------------------------------
def summarise(result: dict) -> None:
    """Best run of each measurement (least wall time), throughputs, ratio and targets."""
    d = result["delivery"]
    for kind in KINDS:
        runs = result["runs"].get(kind)
        if not runs:
            continue
        best = dict(min(runs, key=lambda m: m["seconds"]))
        best["rows_per_s"] = d["rows"] / best["seconds"]
        best["mb_per_s"] = d["bytes"] / 1e6 / best["seconds"]
        best["peak_rss_bytes_max_of_runs"] = max(m["peak_rss_bytes"] for m in runs)
        result[kind] = best
    if "ingest" in result and "duckdb" in result:
        i, k = result["ingest"], result["duckdb"]
        result["ratio"] = i["rows_per_s"] / k["rows_per_s"]
        # the same ratio in CPU time: robust against other load on a shared machine
        result["cpu_ratio"] = k["work_cpu_seconds"] / i["work_cpu_seconds"]
        result["targets"]["ratio_met"] = result["ratio"] >= TARGET_RATIO
        result["targets"]["rss_met"] = i["peak_rss_bytes_max_of_runs"] < TARGET_RSS_BYTES
        if "duckdb_store" in result:
            result["ceiling_ratio"] = result["duckdb_store"]["rows_per_s"] / k["rows_per_s"]
        expected = {rule: n for rule, n in d["expected_quarantine"].items() if n}
        result["quarantine_as_expected"] = (
            i["rule_counts"] == expected
            and i["rows_read"] == d["rows"]
            and (i["stored_valid"], i["stored_quarantined"]) == (i["rows_valid"], i["rows_quarantined"])
        )


def report(result: dict) -> str:
    d, m = result["delivery"], result["machine"]
    rows = [("measurement", "wall s", "rows/s", "MB/s", "peak RSS", "CPU s", "load 1m")]
    for kind in KINDS:
        if kind in result:
            x = result[kind]
            load = "→".join(f"{v:.1f}" for v in x["loadavg_1m_before_after"])
            rows.append(
                (
                    kind,
                    f"{x['seconds']:.1f}",
                    f"{x['rows_per_s']:,.0f}",
                    f"{x['mb_per_s']:.1f}",
                    h.gib(x["peak_rss_bytes_max_of_runs"]),
                    f"{x['work_cpu_seconds']:.1f}",
                    load,
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"metering ingest benchmark, {result['date']}, {m['cpu']} ({m['cores']} cores, {h.gib(m['ram_bytes'])} RAM)",
        f"file {d['file']}: {d['rows']:,} rows, {d['points']:,} points, {d['bytes'] / 1e6:,.0f} MB, "
        f"{d['bad_rows']:,} broken rows",
        f"best of {result['repeat']} run(s) each; "
        "wall and CPU s (user + system, all threads) of the measured calls, imports excluded",
        "",
    ]
    lines += [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows
    ]
    if "ingest" in result:
        i = result["ingest"]
        lines += [
            "",
            f"ingest split: ingest_delivery {i['seconds_ingest_delivery']:.1f} s "
            f"({i['cpu_seconds_ingest_delivery']:.1f} CPU s), "
            f"aggregate_day {i['seconds_aggregate_day']:.1f} s ({i['cpu_seconds_aggregate_day']:.1f} CPU s)",
            f"peak RSS after ingest_delivery {h.gib(i['peak_rss_bytes_ingest_delivery'])}, "
            f"after aggregate_day {h.gib(i['peak_rss_bytes'])}",
            f"rows read {i['rows_read']:,} = valid {i['rows_valid']:,} + quarantined {i['rows_quarantined']:,}; "
            f"daily rows {i['daily_rows']:,}",
        ]
    if "ratio" in result:
        t = result["targets"]
        lines += [
            f"quarantine as expected: {result['quarantine_as_expected']}",
            f"ratio ingest/duckdb throughput: {result['ratio']:.3f}  "
            f"(target >= {TARGET_RATIO}: {'met' if t['ratio_met'] else 'MISSED'}); "
            f"in CPU time: {result['cpu_ratio']:.3f}",
            f"ingest peak RSS: {h.gib(result['ingest']['peak_rss_bytes_max_of_runs'])}  "
            f"(target < {h.gib(TARGET_RSS_BYTES)}: {'met' if t['rss_met'] else 'MISSED'})",
        ]
    if "ceiling_ratio" in result:
        x = result["duckdb_store"]
        lines.append(
            f"ceiling: DuckDB storing without validation reaches {result['ceiling_ratio']:.3f} of the reference "
            f"(store {x['seconds_store']:.1f} s, aggregate {x['seconds_aggregate']:.1f} s)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        return _worker(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metering_ingest", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--points", type=int, default=500_000, help="PT15M metering points in the delivery (default 500000 = 48M rows)"
    )
    parser.add_argument(
        "--bad-share", type=float, default=0.0001, help="share of broken rows (default 0.0001 = 0.01%%)"
    )
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each measurement N times, alternating, and report the fastest (default 1)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="scratch dir (default $LUPA_BENCH_DIR or <tmp>/lupa-bench); never inside the repo",
    )
    parser.add_argument(
        "--regenerate", action="store_true", help="write a new delivery file even if a matching one exists"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the synthetic CSV for the next run (default: delete the scratch data at the end)",
    )
    parser.add_argument("--only", choices=KINDS, help="run one measurement only")
    parser.add_argument("--profile", action="store_true", help="cProfile the ingest worker and print the top functions")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the JSON result (default: <scratch>/metering_ingest-<points>.json)",
    )
    args = parser.parse_args(argv)

    scratch = h.scratch_root(args.dir) / f"metering-{args.points}"
    scratch.mkdir(parents=True, exist_ok=True)
    delivery = ensure_delivery(scratch, args.points, args.bad_share, args.seed, args.regenerate)
    csv = scratch / "landing" / "metering" / FILE_NAME
    data = scratch / "data"
    print(
        f"delivery {'reused' if delivery['reused'] else 'written in ' + str(delivery['seconds']) + ' s'}: "
        f"{csv} ({delivery['bytes'] / 1e6:,.0f} MB, {delivery['rows']:,} rows)",
        flush=True,
    )

    result: dict = {
        "benchmark": "metering_ingest",
        "date": h.now_iso(),
        "machine": h.machine(),
        "versions": h.versions(("polars", "duckdb", "pandera", "pyarrow", "numpy", "dagster")),
        "delivery": delivery,
        "business_day": BUSINESS_DAY.isoformat(),
        "repeat": args.repeat,
        "targets": {"ratio": TARGET_RATIO, "rss_bytes": TARGET_RSS_BYTES},
        "duckdb_sql": " ".join(duckdb_sql(csv).split()),
        "duckdb_store_sql": [" ".join(q.split()) for q in duckdb_store_sql(csv, scratch / "duckdb-store")],
        "runs": {kind: [] for kind in KINDS},
    }
    try:
        # Alternate the two, DuckDB first. Both read the file from a warm page cache (it was just
        # written or read), so neither pays for cold disk reads that the other does not.
        for run in range(args.repeat):
            if args.only in (None, "duckdb"):
                print(f"measuring duckdb (run {run + 1}/{args.repeat}) …", flush=True)
                result["runs"]["duckdb"].append(h.measure(MODULE, "duckdb", [str(csv)], scratch))
            if args.only in (None, "duckdb_store"):
                print(f"measuring duckdb_store (run {run + 1}/{args.repeat}) …", flush=True)
                result["runs"]["duckdb_store"].append(
                    h.measure(MODULE, "duckdb_store", [str(csv), str(scratch / "duckdb-store")], scratch)
                )
            if args.only in (None, "ingest"):
                print(f"measuring ingest (run {run + 1}/{args.repeat}) …", flush=True)
                shutil.rmtree(data, ignore_errors=True)
                profile = scratch / "ingest.pstats" if args.profile else None
                result["runs"]["ingest"].append(
                    h.measure(
                        MODULE,
                        "ingest",
                        [str(scratch / "landing"), str(data)] + ([str(profile)] if profile else []),
                        scratch,
                    )
                )
                shutil.rmtree(data, ignore_errors=True)
                if profile:
                    import pstats

                    pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(40)
                    pstats.Stats(str(profile)).sort_stats("tottime").print_stats(25)
    finally:
        shutil.rmtree(data, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(scratch / "landing", ignore_errors=True)
            (scratch / "delivery.json").unlink(missing_ok=True)

    summarise(result)
    print(report(result))
    out = args.json or scratch / f"metering_ingest-{args.points}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"result: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
