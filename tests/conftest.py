"""Test isolation: every test session gets its own var/ folder, never the developer's."""

import os
import shutil
import tempfile
from pathlib import Path

_SESSION_VAR = Path(tempfile.mkdtemp(prefix="lupa-test-var-"))
os.environ["LUPA_VAR_DIR"] = str(_SESSION_VAR)
# Dagster writes telemetry ids and logs under DAGSTER_HOME for any instance that does not read our
# dagster.yaml (ephemeral test instances): point it at a session copy, never at the repository.
_HOME = _SESSION_VAR / "dagster_home"
_HOME.mkdir()
shutil.copy(Path(__file__).resolve().parent.parent / "dagster.yaml", _HOME / "dagster.yaml")
os.environ["DAGSTER_HOME"] = str(_HOME)
os.environ["LUPA_DAGSTER_STORAGE"] = str(_SESSION_VAR / "dagster")
os.environ["LUPA_DAGSTER_COMPUTE_LOGS"] = str(_SESSION_VAR / "dagster" / "compute_logs")
os.environ.setdefault("LUPA_ENV", "demo")
os.environ.pop("LUPA_LANDING_DIR", None)
os.environ.pop("LUPA_DATA_DIR", None)
