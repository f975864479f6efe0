"""Jobs the multiprocess executor can rebuild in its child processes.

`execute_job` needs a reconstructable pointer: a module-level function that child processes import
by name and call. It builds the code location through the same factory as `lupa` and the webserver;
the storage resource comes from LUPA_LANDING_DIR / LUPA_DATA_DIR, which the child processes inherit.
"""

from dagster import JobDefinition


def metering_job() -> JobDefinition:
    from pipelines.definitions import build_defs

    return build_defs().resolve_job_def("metering_job")


def run_metering_partition(
    partition_key: str, env: dict[str, str], start_method: dict | None = None
) -> tuple[str, bool]:
    """One run of `metering_job` for one partition, on the instance in DAGSTER_HOME.

    Called in its own process, the way a run launcher gives every run its own run worker: Dagster's
    run orchestration is not thread-safe, so concurrent runs need separate processes.
    """
    import os

    from dagster import DagsterInstance, execute_job, reconstructable

    os.environ.update(env)  # this installation's DAGSTER_HOME, landing zone and data directory
    executor = {"max_concurrent": 4} | ({"start_method": start_method} if start_method else {})
    with DagsterInstance.get() as instance:
        result = execute_job(
            reconstructable(metering_job),
            instance=instance,
            tags={"dagster/partition": partition_key},
            run_config={"execution": {"config": {"multiprocess": executor}}},
        )
        return result.run_id, result.success


def daily_job() -> JobDefinition:
    from pipelines.definitions import build_defs

    return build_defs().resolve_job_def("daily_job")
