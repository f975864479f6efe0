"""Named, independent random streams derived from the one user seed.

Each part of the generator draws from its own stream (rng_for(seed, "consents"), rng_for(seed,
"metering", day)...), so adding a draw in one module never shifts the numbers of another and a
metering day can be regenerated on its own. No wall clock and no global random state are used.
"""

from __future__ import annotations

import zlib

import numpy as np
from faker import Faker


def _words(seed: int, keys) -> list[int]:
    s = int(seed) & ((1 << 64) - 1)
    return [s & 0xFFFFFFFF, s >> 32] + [zlib.crc32(str(k).encode("utf-8")) for k in keys]


def rng_for(seed: int, *keys) -> np.random.Generator:
    return np.random.default_rng(_words(seed, keys))


def faker_for(locale: str, seed: int, *keys) -> Faker:
    fake = Faker(locale)
    fake.seed_instance(int(rng_for(seed, "faker", locale, *keys).integers(0, 2**31 - 1)))
    return fake
