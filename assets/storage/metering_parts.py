"""Which stored reading parts a reader may see: write-then-commit through the delivery manifest.

A delivery writes its reading parts under names that carry a fresh *generation*
(`business_day=D/delivery=20261124-g<generation>-0000.parquet`); nobody reads them yet. The
delivery's manifest (`deliveries/delivery=20261124.json`, one object, replaced atomically: a
rename locally, a single PUT on S3) is then written with that generation: this is the commit.
Readers list a day's parts and keep only those whose generation is the one their delivery's
manifest names, so a reader sees a delivery's previous parts or its new ones, never a mix and
never a half-written set. Parts of older generations are removed after the commit.
Parts named without a generation were written before this scheme; they are visible while their
manifest names no generation (or there is no manifest), as they always were (docs/decisions.md §37).
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from assets.storage.lake import is_remote


def new_generation() -> str:
    """Sortable and unique across processes: the time in milliseconds, then random bits."""
    return f"g{int(time.time() * 1000):013d}{secrets.token_hex(3)}"


def part_name(tag: str, generation: str, n: int) -> str:
    return f"delivery={tag}-{generation}-{n:04d}.parquet"


def _fields(name: str) -> list[str]:
    return name.removesuffix(".parquet").split("=", 1)[1].split("-")


def part_tag(path: Path) -> str:
    """The delivery (`YYYYMMDD`) that wrote a part."""
    return _fields(path.name)[0]


def part_generation(path: Path) -> str | None:
    fields = _fields(path.name)
    return fields[1] if len(fields) == 3 else None


class Manifests:
    """Delivery manifests, each read at most once per reader (a reader's consistent view)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._read: dict[str, dict | None] = {}

    def get(self, tag: str) -> dict | None:
        if tag not in self._read:
            path = self.folder / f"delivery={tag}.json"
            try:
                self._read[tag] = json.loads(path.read_text())
            except FileNotFoundError:
                self._read[tag] = None
        return self._read[tag]

    def committed(self, tag: str) -> str | None:
        manifest = self.get(tag)
        return manifest.get("generation") if manifest else None

    def visible(self, parts: list[Path]) -> list[Path]:
        """The parts a reader may use: those of each delivery's committed generation."""
        return [p for p in parts if part_generation(p) == self.committed(part_tag(p))]

    def visible_in(self, folder: Path, pattern: str = "*.parquet", attempts: int = 3) -> list[Path]:
        """The visible parts under `folder`. A delivery listed with no visible part was being
        re-committed while this reader looked (its listing and its manifest are of different
        generations): read that manifest and the folder again. A delivery that was never committed
        (a writer killed before its first manifest) stays invisible after the last attempt."""
        visible: list[Path] = []
        for _ in range(attempts):
            found = listed(folder, pattern)
            visible = self.visible(found)
            unseen = {part_tag(p) for p in found} - {part_tag(p) for p in visible}
            if not unseen:
                break
            for tag in unseen:
                self._read.pop(tag, None)
        return visible


def listed(folder: Path, pattern: str) -> list[Path]:
    """`folder.glob(pattern)`, sorted; a missing folder (or prefix) lists nothing."""
    if not is_remote(folder) and not folder.exists():
        return []
    return sorted(folder.glob(pattern))
