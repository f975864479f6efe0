"""Shared pieces for the orchestration tests: tiny landing zones, persistent Dagster homes, ports.

These tests run Dagster the way an installation does (a dagster.yaml in DAGSTER_HOME, child
processes, a webserver, Postgres), so every test gets its own DAGSTER_HOME, instance storage,
landing zone and data directory under a temporary folder, and exports them through the same
environment variables `lupa`, the webserver and the executor's child processes read.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.landing_builder import COMPANY, GSRN1, GSRN2, PERSON, PERSON2, metering_row, write

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
HELSINKI = ZoneInfo("Europe/Helsinki")


def metering_rows(gsrn: str, day: dt.date, quantity: str = "0,500") -> list[str]:
    """Hourly readings covering Helsinki day `day` (23, 24 or 25 rows; Datahub times are UTC)."""
    start = dt.datetime.combine(day, dt.time(), HELSINKI).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), HELSINKI).astimezone(dt.UTC)
    rows, t = [], start
    while t < end:
        rows.append(metering_row(gsrn, t.strftime("%Y-%m-%dT%H:%M:%SZ"), quantity))
        t += dt.timedelta(hours=1)
    return rows


def write_metering_day(landing: Path, day: dt.date, points: tuple[str, ...] = (GSRN1, GSRN2)) -> Path:
    """The Datahub delivery for business day D: the file dated D+1, a couple of points × every hour."""
    rows = [row for gsrn in points for row in metering_rows(gsrn, day)]
    return write(landing, "metering", (day + dt.timedelta(days=1)).strftime("%Y%m%d"), rows)


def write_tiny_landing_zone(landing: Path, day: dt.date) -> None:
    """Enough for the whole graph to run for D: a customer snapshot, contracts and D's metering."""
    delivery = (day + dt.timedelta(days=1)).strftime("%Y%m%d")
    write(landing, "customers", delivery, [PERSON, PERSON2, COMPANY])
    write(
        landing,
        "contracts",
        delivery,
        [
            f"K1;C0000001;{GSRN1};SPOT;open_ended;2024-01-01;;apartment;district",
            f"K2;C0000002;{GSRN2};SPOT;open_ended;2024-01-01;;apartment;district",
        ],
    )
    write(
        landing, "consents", delivery, ["E1;C0000001;marketing;email;granted;2026-11-01T10:00:00Z;web_form;v3;form-1"]
    )
    write_metering_day(landing, day)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def days(first: dt.date, n: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(n)]


class Installation:
    """One throwaway installation: DAGSTER_HOME with a dagster.yaml, instance storage, landing, data."""

    def __init__(self, root: Path, dagster_yaml: Path):
        self.root = root
        self.home = root / "dagster_home"
        self.storage_dir = root / "dagster"
        self.compute_logs = root / "dagster" / "compute_logs"
        self.landing = root / "landing"
        self.data = root / "data"
        for path in (self.home, self.storage_dir, self.landing, self.data):
            path.mkdir(parents=True, exist_ok=True)
        shutil.copy(dagster_yaml, self.home / "dagster.yaml")

    @property
    def env(self) -> dict[str, str]:
        """What a process on this installation needs (the `lupa` command and the Makefile set the same)."""
        return {
            "DAGSTER_HOME": str(self.home),
            "LUPA_DAGSTER_STORAGE": str(self.storage_dir),
            "LUPA_DAGSTER_COMPUTE_LOGS": str(self.compute_logs),
            "LUPA_LANDING_DIR": str(self.landing),
            "LUPA_DATA_DIR": str(self.data),
            "LUPA_VAR_DIR": str(self.root / "var"),
        }

    def subprocess_env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, **self.env, **extra}
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(REPO)  # the code location imports `pipelines`; tests import `tests`
        return env

    def storage(self):
        from assets.storage.zones import LupaStorage

        return LupaStorage(landing_dir=str(self.landing), data_dir=str(self.data))
