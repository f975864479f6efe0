"""tests/unit/ is the fast tier (`make test-fast`): rules, models, contracts, storage functions, the layer
walk and the definitions snapshot; no Dagster run.

The session fixture `generated_pipeline` (tests/conftest.py) runs the whole pipeline on generated data, which
takes minutes; it is lazy, so it costs nothing unless a test asks for it. A unit test that asked for it would
quietly turn `make test-fast` into the slow suite, so collection refuses it here instead; and every test
module here runs with Dagster's job execution switched off, so a test that starts a run fails and names itself.
"""

import importlib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SLOW_FIXTURES = {"generated_pipeline"}


def pytest_collection_modifyitems(config, items):
    # collection hooks see every collected item, not only this folder's: filter by path
    offenders = [
        f"{item.nodeid} uses {', '.join(sorted(SLOW_FIXTURES & set(item.fixturenames)))}"
        for item in items
        if HERE in Path(item.path).resolve().parents and SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    if offenders:
        raise pytest.UsageError(
            "tests/unit/ must not need the generated pipeline (move the test out of tests/unit/):\n  "
            + "\n  ".join(offenders)
        )


@pytest.fixture(scope="module", autouse=True)
def no_dagster_run():
    """Module-scoped, so it is in place before any other fixture of the module runs and is undone
    before the next module (an integration test in the same session runs jobs as usual)."""
    import dagster
    from dagster._core.definitions.job_definition import JobDefinition

    materialize_module = importlib.import_module("dagster._core.definitions.materialize")

    def refuse(*args, **kwargs):
        raise RuntimeError("tests/unit/ must not run a Dagster job: move the test to tests/integration/")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(JobDefinition, "execute_in_process", refuse)
        patch.setattr(dagster, "materialize", refuse)
        patch.setattr(materialize_module, "materialize", refuse)
        yield
