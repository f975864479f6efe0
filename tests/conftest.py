"""Test isolation: every test session gets its own var/ folder, never the developer's."""

import os
import tempfile
from pathlib import Path

_SESSION_VAR = Path(tempfile.mkdtemp(prefix="lupa-test-var-"))
os.environ["LUPA_VAR_DIR"] = str(_SESSION_VAR)
os.environ["LUPA_DAGSTER_STORAGE"] = str(_SESSION_VAR / "dagster")
os.environ["LUPA_DAGSTER_COMPUTE_LOGS"] = str(_SESSION_VAR / "dagster" / "compute_logs")
os.environ.setdefault("LUPA_ENV", "demo")
os.environ.pop("LUPA_LANDING_DIR", None)
os.environ.pop("LUPA_DATA_DIR", None)
