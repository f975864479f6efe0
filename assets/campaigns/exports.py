"""The send lists on disk: per campaign and channel, a CSV (UTF-8 BOM, `;`) and an XLSX.

`<data>/campaign_exports/<campaign_id>/<campaign_id>_<channel>.csv|.xlsx`, readable by marketers like
the mart. A campaign's folder is written beside the old one and renamed into place, so the email tool
never picks up half a list. Before anything is written, every list is checked once more: no value
shaped like a personal identity code, no address of anyone under a safety ban.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl

from assets.storage.excel import write_csv_for_excel, write_xlsx
from data_contracts.audiences import ADDRESS_FIELDS
from data_contracts.contract import ContractViolation
from data_contracts.published import contains_personal_id

SHARED_DIR, SHARED_FILE = 0o755, 0o644


def exports_root(data_dir: Path) -> Path:
    return data_dir / "campaign_exports"


def check_list(campaign_id: str, channel: str, frame: pl.DataFrame, safety_ban_ids: frozenset[str]) -> None:
    if contains_personal_id(frame):
        raise ContractViolation(f"campaign {campaign_id} {channel} list: a value shaped like a personal identity code")
    if any(f in frame.columns for f in ADDRESS_FIELDS):
        banned = frame.filter(pl.col("recipient_id").is_in(list(safety_ban_ids))).height
        if banned:
            raise ContractViolation(f"campaign {campaign_id} {channel} list: {banned} address(es) under a safety ban")


def write_lists(
    data_dir: Path, campaign_id: str, lists: dict[str, pl.DataFrame], safety_ban_ids: frozenset[str]
) -> Path:
    for channel, frame in lists.items():
        check_list(campaign_id, channel, frame, safety_ban_ids)
    root = exports_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, SHARED_DIR)
    final = root / campaign_id
    staged = root / f".{campaign_id}.new"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    for channel, frame in lists.items():
        write_csv_for_excel(frame, staged / f"{campaign_id}_{channel}.csv")
        write_xlsx(frame, staged / f"{campaign_id}_{channel}.xlsx", sheet=f"{campaign_id} {channel}")
    for path in staged.iterdir():
        os.chmod(path, SHARED_FILE)
    os.chmod(staged, SHARED_DIR)
    old = root / f".{campaign_id}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def remove_lists(data_dir: Path, campaign_id: str) -> None:
    shutil.rmtree(exports_root(data_dir) / campaign_id, ignore_errors=True)


def drop_from_send_lists(data_dir: Path, recipient_ids: list[str]) -> dict[str, int]:
    """An erasure's part here: every written send list without the people erased, at once (the next daily
    run would drop them too, but a list may be picked up before). Returns the rows removed per person."""
    root = exports_root(data_dir)
    removed: dict[str, int] = {}
    if not root.is_dir():
        return removed
    gone = set(recipient_ids)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        lists, changed = {}, False
        for csv in sorted(folder.glob("*.csv")):
            channel = csv.stem.removeprefix(f"{folder.name}_")
            frame = pl.read_csv(csv, separator=";", infer_schema=False, encoding="utf8-lossy")
            kept = frame.filter(~pl.col("recipient_id").is_in(list(gone)))
            for rid, n in frame.filter(pl.col("recipient_id").is_in(list(gone))).group_by("recipient_id").len().rows():
                removed[rid] = removed.get(rid, 0) + n
            changed |= kept.height != frame.height
            lists[channel] = kept
        if changed:
            write_lists(data_dir, folder.name, lists, frozenset())
    return removed
