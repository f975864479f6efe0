"""Configuration from the environment, with defaults that keep everything under the git-ignored var/.

| variable | default | meaning |
|---|---|---|
| LUPA_LANDING_DIR | var/landing | the landing zone (read-only for the pipeline) |
| LUPA_CAMPAIGNS_DIR | var/campaigns | campaign briefs, one YAML file per campaign |
| LUPA_DATA_DIR | var/data | warehouse, analytics zone, marketing mart (the DuckDB files) |
| LUPA_LAKE_URL | (empty: under LUPA_DATA_DIR) | the Parquet lake on object storage, `s3://bucket/prefix` |
| LUPA_ENV | demo | `demo` or `production` |
| LUPA_PSEUDONYM_KEY | demo: generated into var/secrets/ | HMAC key for pseudonyms; production requires it |
| DAGSTER_HOME | the repository (where dagster.yaml is) | Dagster instance configuration |
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("demo", "production")


class ConfigurationError(Exception):
    """The installation is not configured well enough to run safely."""


@dataclass(frozen=True)
class Settings:
    env: str
    landing_dir: Path
    data_dir: Path
    var_dir: Path
    campaigns_dir: Path | None = None
    #: `s3://bucket/prefix`, or "" for the lake under the data directory
    lake_url: str = ""

    @property
    def campaigns(self) -> Path:
        return self.campaigns_dir or self.var_dir / "campaigns"

    @property
    def secrets_dir(self) -> Path:
        return self.var_dir / "secrets"


def _path(name: str, default: Path) -> Path:
    """A directory setting. A URL (s3://…) is refused: the storage is a local or mounted filesystem
    (docs/deploy.md), and pathlib would quietly make a local folder named `s3:` of it."""
    value = os.environ.get(name)
    if value and "://" in value:
        raise ConfigurationError(
            f"{name} must be a local or mounted directory, not a URL "
            "(to keep the Parquet lake on object storage, set LUPA_LAKE_URL; see docs/deploy.md)"
        )
    return Path(value).resolve() if value else default


def _lake_url() -> str:
    """LUPA_LAKE_URL: `s3://bucket/prefix`. Credentials never go in it (they come from the AWS chain:
    the environment, a profile or the pod's role), so a URL with a user or password is refused."""
    value = os.environ.get("LUPA_LAKE_URL", "").strip().rstrip("/")
    if not value:
        return ""
    scheme, _, rest = value.partition("://")
    if scheme != "s3" or not rest:
        raise ConfigurationError("LUPA_LAKE_URL must be s3://bucket[/prefix]")
    if "@" in rest.split("/", 1)[0] or "?" in rest:
        raise ConfigurationError(
            "LUPA_LAKE_URL must not carry credentials or options; they come from the environment or the AWS chain"
        )
    return value


def load_settings() -> Settings:
    """Read the environment and prepare the process: instance paths and the pseudonym key.

    Sets DAGSTER_HOME (to the repository, where the committed dagster.yaml lives) and the absolute
    storage paths that dagster.yaml reads, unless the caller set them.
    """
    env = os.environ.get("LUPA_ENV", "demo")
    if env not in ENVIRONMENTS:
        raise ConfigurationError(f"LUPA_ENV must be one of {', '.join(ENVIRONMENTS)}")
    var_dir = _path("LUPA_VAR_DIR", REPO / "var")
    settings = Settings(
        env,
        _path("LUPA_LANDING_DIR", var_dir / "landing"),
        _path("LUPA_DATA_DIR", var_dir / "data"),
        var_dir,
        _path("LUPA_CAMPAIGNS_DIR", var_dir / "campaigns"),
        _lake_url(),
    )
    # Everything the pipeline writes is owner-only unless it is deliberately shared (the mart and
    # the segment report chmod themselves); worker processes inherit the mask.
    os.umask(0o077)
    os.environ.setdefault("DAGSTER_HOME", str(REPO))
    os.environ.setdefault("LUPA_DAGSTER_STORAGE", str(var_dir / "dagster"))
    os.environ.setdefault("LUPA_DAGSTER_COMPUTE_LOGS", str(var_dir / "dagster" / "compute_logs"))
    ensure_pseudonym_key(settings)
    return settings


def ensure_pseudonym_key(settings: Settings) -> None:
    """Production refuses to start without LUPA_PSEUDONYM_KEY; demo generates one into var/secrets/.

    The key only ever lives in the environment of the process and in that owner-only file.
    """
    if os.environ.get("LUPA_PSEUDONYM_KEY"):
        return
    if settings.env == "production":
        raise ConfigurationError(
            "LUPA_ENV=production requires LUPA_PSEUDONYM_KEY (the HMAC key for pseudonyms); refusing to start"
        )
    key_file = settings.secrets_dir / "pseudonym.key"
    if not key_file.exists():
        settings.secrets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.secrets_dir, 0o700)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    os.environ["LUPA_PSEUDONYM_KEY"] = key_file.read_text().strip()
