"""Which executor runs the steps of a run: local processes (the default), Celery workers, or pods.

`LUPA_EXECUTOR=celery` sends every step to dagster-celery workers through a broker (Redis in the
tests, docs/deploy.md); `LUPA_EXECUTOR=k8s` runs every step in its own pod (dagster-k8s); unset
keeps Dagster's default multiprocess executor, which the demo and `make run` use. The broker and
result-backend URLs come from the environment, never from run config, so a broker password never
reaches the event log.

The worker side reads the same settings from `docs/deploy/celery-worker.yaml`
(`dagster-celery worker start -y docs/deploy/celery-worker.yaml`); a test checks the two agree.
"""

from __future__ import annotations

import os

from dagster import ExecutorDefinition

#: Celery settings both sides need. A worker process killed in the middle of a step (OOM, a node
#: drained) puts its task back on the queue (`task_acks_late` + `task_reject_on_worker_lost`), so
#: another worker runs the step again: every step is idempotent (Parquet generations are committed
#: by a manifest; DuckDB tables are replaced whole). `worker_prefetch_multiplier: 1` keeps a worker
#: from reserving steps it cannot start yet.
CELERY_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
}

CELERY_EXECUTOR_CONFIG = {
    "broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
    "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"},
    "config_source": CELERY_SETTINGS,
}


def executor_from_env() -> ExecutorDefinition | None:
    """The executor LUPA_EXECUTOR names, or None for Dagster's default."""
    choice = os.environ.get("LUPA_EXECUTOR", "")
    if choice == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(CELERY_EXECUTOR_CONFIG, name="lupa_celery")
    if choice == "k8s":  # one pod per step; run config in docs/deploy/k8s-executor.yaml
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if choice not in ("", "multiprocess"):
        from pipelines.settings import ConfigurationError

        raise ConfigurationError("LUPA_EXECUTOR must be `celery`, `k8s` or `multiprocess` (the default)")
    return None
