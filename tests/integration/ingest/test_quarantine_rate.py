"""The quarantine-rate check rates each file of the run's own delivery, so a bad file cannot hide
among the history an append-only source re-reads on every run."""

import datetime as dt

from dagster import AssetKey

from assets.common.calendar import BUSINESS_DAY_TAG
from pipelines.definitions import build_defs
from tests.dagster_helpers import storage_for
from tests.landing_builder import write

DAY = dt.date(2026, 11, 24)


def consent(n: int, occurred_at: str = "2026-11-01T10:00:00Z") -> str:
    return f"E{n:05d};C{n:07d};marketing;email;granted;{occurred_at};web_form;v3;f-{n}"


def rate_check(storage, day: dt.date):
    defs = build_defs(resource_overrides={"storage": storage})
    result = defs.resolve_job_def("daily_job").execute_in_process(
        asset_selection=[AssetKey("ingest_consents")],
        tags={BUSINESS_DAY_TAG: day.isoformat()},
        raise_on_error=False,
    )
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == "quarantine_rate")


def test_a_bad_delivery_fails_the_check_even_when_the_history_is_clean(tmp_path):
    storage = storage_for(tmp_path)
    write(storage.landing, "consents", "20261101", [consent(n) for n in range(1, 201)])  # 200 good events
    write(
        storage.landing,
        "consents",
        "20261125",
        [consent(201), "E00202;C0000202;marketing;fax;granted;2026-11-24T10:00:00Z;web_form;v3;f"],
    )

    check = rate_check(storage, DAY)
    # 1 of 202 records read (0.5 %) is under the 2 % threshold; the day's own file is at 50 %
    assert not check.passed
    assert check.metadata["files_over_threshold"].value == ["consent_events_20261125.csv"]
    assert check.metadata["highest_file_rate"].value == 0.5 and check.metadata["files_rated"].value == 1

    # the run for the day that brought the clean history rates that file alone, and passes
    check = rate_check(storage, dt.date(2026, 10, 31))
    assert check.passed and check.metadata["files_rated"].value == 1


def test_a_day_without_a_delivery_of_its_own_has_nothing_to_rate(tmp_path):
    storage = storage_for(tmp_path)
    write(storage.landing, "consents", "20261101", [consent(1), "E9;C1;marketing;fax;granted;x;web_form;v3;f"])
    check = rate_check(storage, DAY)
    assert check.passed and check.metadata["files_rated"].value == 0
