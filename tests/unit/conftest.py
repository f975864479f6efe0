"""tests/unit/ is the fast tier (`make test-fast`): ast walks and the definitions snapshot, no Dagster run.

The session fixture `generated_pipeline` (tests/conftest.py) runs the whole pipeline on generated data, which
takes minutes; it is lazy, so it costs nothing unless a test asks for it. A unit test that asked for it would
quietly turn `make test-fast` into the slow suite, so collection refuses it here instead.
"""

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
