"""Named, independent random streams derived from the one user seed.

Each part of the generator draws from its own stream (rng_for(seed, "consents"), rng_for(seed,
"metering", day)...), so adding a draw in one module never shifts the numbers of another and a
metering day can be regenerated on its own. No wall clock and no global random state are used.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np
from faker import Faker


def _words(seed: int, keys) -> list[int]:
    s = int(seed) & ((1 << 64) - 1)
    return [s & 0xFFFFFFFF, s >> 32] + [zlib.crc32(str(k).encode("utf-8")) for k in keys]


def rng_for(seed: int, *keys) -> np.random.Generator:
    return np.random.default_rng(_words(seed, keys))


@lru_cache(maxsize=256)
def _cumulative(weights: tuple[float, ...]) -> np.ndarray:
    return np.cumsum(np.asarray(weights, dtype=np.float64))


def weighted_index(rng: np.random.Generator, weights) -> int:
    """Index drawn with probability proportional to weights; one uniform draw (rng.choice with p
    is slow for one scalar, and this runs for every generated person)."""
    cum = _cumulative(tuple(float(w) for w in weights))
    return min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), cum.size - 1)


def faker_for(locale: str, seed: int, *keys) -> Faker:
    fake = Faker(locale)
    fake.seed_instance(int(rng_for(seed, "faker", locale, *keys).integers(0, 2**31 - 1)))
    return fake
