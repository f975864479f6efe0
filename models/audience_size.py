"""Whether an audience's size change holds publication back until a person confirms it.

One decision, used twice: by the audiences' blocking `size_anomaly` check, and by the mart's own
validation (`validate_mart`), so materialising `marketing_mart` alone cannot publish an audience the
check would hold back. The threshold is the policy's (`AnomalyPolicy.holds_back`); reading the
published sizes and the confirmations (`audience_confirmations`) stays in storage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from data_contracts.policy import AnomalyPolicy


@dataclass(frozen=True)
class SizeChange:
    """One channel's audience size on day D against the published mart's, and the decision."""

    channel: str
    size: int
    published: int | None
    confirmed: bool
    held_back: bool

    @property
    def change(self) -> float | None:
        """The relative change since the published mart (None without a published, non-empty audience)."""
        return (self.size - self.published) / self.published if self.published else None


def size_change(
    channel: str, size: int, published: int | None, confirmed: Iterable[str], anomaly: AnomalyPolicy
) -> SizeChange:
    """Held back when the policy's anomaly rule flags the move and no person confirmed this channel for D."""
    is_confirmed = channel in set(confirmed)
    return SizeChange(
        channel=channel,
        size=size,
        published=published,
        confirmed=is_confirmed,
        held_back=anomaly.holds_back(published, size) and not is_confirmed,
    )


def held_back(
    sizes: Mapping[str, int],
    published: Mapping[str, int | None],
    confirmed: Iterable[str],
    anomaly: AnomalyPolicy,
) -> list[SizeChange]:
    """The channels (in the order of `sizes`) whose size change holds publication back."""
    confirmed = set(confirmed)
    changes = (size_change(ch, n, published.get(ch), confirmed, anomaly) for ch, n in sizes.items())
    return [change for change in changes if change.held_back]
