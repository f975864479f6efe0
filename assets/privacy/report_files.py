"""The files `lupa sar` writes: one JSON and one HTML access report per customer, owner-only.

Reports hold a customer's full personal data, so the directory is 0700 and each file is 0600 from
its first byte. A file is named by a keyed pseudonym of the customer id (or of the identity code, for
a register-only person), never the identifier itself, so that the erasure of the customer finds and
deletes their stored reports (`delete_stored_reports`) while a directory listing tells nobody whose
they are.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from assets.storage.suppression import pseudonym

#: the default var/ of the repository, as pipelines/settings.py has it
_REPO_VAR = Path(__file__).resolve().parents[2] / "var"
REPORT_KEY_LENGTH = 32


def prepare_out_dir(out: Path, default: bool) -> Path:
    """Create the directory owner-only. An existing directory the operator named keeps its mode
    (never chmod someone's /tmp); the default one is always set back to 0700."""
    if not out.exists():
        out.mkdir(parents=True, mode=0o700)
        os.chmod(out, 0o700)
    elif default:
        os.chmod(out, 0o700)
    elif out.stat().st_mode & 0o077:
        print(f"note: {out} is readable by others; the report files themselves are owner-only (0600)", file=sys.stderr)
    return out


def _write_private(path: Path, text: str) -> None:
    """Write 0600 from the first byte (temp file in the same directory, renamed into place)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_reports_dir() -> Path:
    """Where `lupa sar` keeps reports unless told otherwise (`--out`); erasure deletes a customer's from
    here. `$LUPA_VAR_DIR/access_reports`, read from the environment as the settings read it."""
    var_dir = os.environ.get("LUPA_VAR_DIR")
    return (Path(var_dir).resolve() if var_dir else _REPO_VAR) / "access_reports"


def report_key(identifier: str) -> str:
    """The name part that says whose report a file is: a keyed pseudonym of the customer id (or of the
    identity code, for a register-only person), never the identifier itself; erasure finds the
    customer's reports by it (`stored_reports`)."""
    return pseudonym(identifier)[:REPORT_KEY_LENGTH]


def stored_reports(out_dir: Path, pseudonyms: list[str], customer_ids: list[str] = ()) -> list[Path]:
    """The report files in `out_dir` of the people with these pseudonyms (of their customer id and
    identity codes, as the suppression record and the erasure audit log hold them), and those
    written before reports were named by pseudonym, which carry the customer id itself."""
    if not out_dir.is_dir():
        return []
    keys = [p[:REPORT_KEY_LENGTH] for p in pseudonyms] + list(customer_ids)
    return sorted({p for key in keys for p in out_dir.glob(f"access_report_{key}_*") if p.suffix in (".json", ".html")})


def delete_stored_reports(pseudonyms: list[str], customer_ids: list[str] = (), out_dir: Path | None = None) -> int:
    """Delete the stored access reports of these people (see `stored_reports`); returns the files removed."""
    removed = 0
    for path in stored_reports(out_dir or default_reports_dir(), pseudonyms, customer_ids):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def write_report(
    report: dict[str, Any], out_dir: Path, json_text: str, html_text: str, personal_id: str | None = None
) -> tuple[Path, Path]:
    """Write a report as rendered (its JSON and its HTML page) under a name no earlier report has."""
    stamp = report["report"]["generated_at"].astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    subject = report["report"]["customer_id"] or personal_id
    who = report_key(subject) if subject else "erased"
    stem = f"access_report_{who}_{stamp}"
    n = 1
    while (out_dir / f"{stem}.json").exists() or (out_dir / f"{stem}.html").exists():
        n += 1
        stem = f"access_report_{who}_{stamp}_{n}"
    json_path, html_path = out_dir / f"{stem}.json", out_dir / f"{stem}.html"
    _write_private(json_path, json_text)
    _write_private(html_path, html_text)
    return json_path, html_path
