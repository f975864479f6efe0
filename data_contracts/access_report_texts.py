"""The fixed texts of the access report (`lupa sar`), kept as data in `access_report_texts.yaml`.

Loading refuses a file whose sections are not exactly `texts`, `feature_labels` and `codes`, or an
entry without Finnish, Swedish and English text, so that a report can never come out with a
heading missing in the customer's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from data_contracts.processing_register import AccessReportError, require_languages

TEXTS_FILE = "access_report_texts.yaml"
SECTIONS = ("texts", "feature_labels", "codes")

Texts = dict[str, dict[str, str]]


@dataclass(frozen=True)
class AccessReportTexts:
    """Each section maps a key to its fi/sv/en text."""

    #: headings, column names, notes and sentences with `{name}` placeholders
    texts: Texts
    #: the names of the clustering and payment features
    feature_labels: Texts
    #: the language-neutral codes a report holds (channels, reasons, contract types…) in words
    codes: Texts


def default_texts_path() -> Path:
    return Path(str(resources.files("data_contracts").joinpath(TEXTS_FILE)))


def load_access_report_texts(path: str | Path | None = None) -> AccessReportTexts:
    p = Path(path) if path is not None else default_texts_path()
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) != set(SECTIONS):
        raise AccessReportError(f"{TEXTS_FILE}: needs exactly the sections {', '.join(SECTIONS)}")
    sections = {}
    for section in SECTIONS:
        entries = data[section]
        if not isinstance(entries, dict):
            raise AccessReportError(f"{TEXTS_FILE}: {section} must be a mapping")
        for key in entries:
            if not isinstance(key, str):  # an unquoted yes/no key loads as a boolean
                raise AccessReportError(f"{TEXTS_FILE}: {section} has the key {key!r}, which is not text (quote it)")
        sections[section] = {
            key: require_languages(value, f"{TEXTS_FILE}: {section}.{key}") for key, value in entries.items()
        }
    return AccessReportTexts(**sections)
