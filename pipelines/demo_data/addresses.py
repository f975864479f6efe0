"""Finnish postal addresses: plausible cities, real-looking postal code areas and street names.

Faker's fi_FI address provider picks any city with any random postal code ("Eckerö 77835") and
invents boulevards everywhere, which a Finnish data engineer spots at once. Here the city is drawn
by population, the postal code from that city's real code range, the street suffix from what the
building type suggests (katu in town centres, tie/kuja/polku for houses), and the house number,
staircase letter and apartment number follow the usual "Vuorikatu 3 A 7" pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faker import Faker

from .randomness import weighted_index

# city, Swedish name (or None), weight, postal code range (low, high), swedish-speaking share weight
CITIES = [
    ("Helsinki", "Helsingfors", 120, (100, 990), 6),
    ("Espoo", "Esbo", 55, (2100, 2980), 5),
    ("Tampere", "Tammerfors", 45, (33100, 33960), 0),
    ("Vantaa", "Vanda", 43, (1200, 1770), 2),
    ("Oulu", "Uleåborg", 38, (90100, 90940), 0),
    ("Turku", "Åbo", 36, (20100, 20960), 3),
    ("Jyväskylä", None, 28, (40100, 40950), 0),
    ("Kuopio", None, 23, (70100, 70900), 0),
    ("Lahti", "Lahtis", 22, (15100, 15900), 0),
    ("Pori", "Björneborg", 15, (28100, 28900), 0),
    ("Kouvola", None, 15, (45100, 45940), 0),
    ("Joensuu", None, 14, (80100, 80850), 0),
    ("Lappeenranta", "Villmanstrand", 14, (53100, 53970), 0),
    ("Hämeenlinna", "Tavastehus", 12, (13100, 13900), 0),
    ("Vaasa", "Vasa", 12, (65100, 65380), 6),
    ("Seinäjoki", None, 11, (60100, 60800), 0),
    ("Rovaniemi", None, 11, (96100, 96930), 0),
    ("Mikkeli", "S:t Michel", 9, (50100, 50970), 0),
    ("Kotka", None, 9, (48100, 48930), 0),
    ("Salo", None, 9, (24100, 24920), 0),
    ("Porvoo", "Borgå", 9, (6100, 6750), 5),
    ("Kokkola", "Karleby", 9, (67100, 67900), 3),
    ("Lohja", "Lojo", 8, (8100, 8700), 1),
    ("Hyvinkää", "Hyvinge", 8, (5800, 5880), 0),
    ("Nurmijärvi", None, 8, (1900, 1940), 0),
    ("Järvenpää", "Träskända", 8, (4400, 4480), 0),
    ("Rauma", "Raumo", 7, (26100, 26950), 0),
    ("Kirkkonummi", "Kyrkslätt", 7, (2400, 2490), 4),
    ("Tuusula", "Tusby", 7, (4300, 4380), 0),
    ("Kajaani", None, 6, (87100, 87950), 0),
    ("Kerava", "Kervo", 6, (4200, 4260), 0),
    ("Savonlinna", "Nyslott", 5, (57100, 57810), 0),
    ("Raasepori", "Raseborg", 5, (10300, 10900), 6),
    ("Pietarsaari", "Jakobstad", 4, (68600, 68660), 6),
    ("Parainen", "Pargas", 3, (21600, 21660), 6),
    ("Loviisa", "Lovisa", 3, (7900, 7970), 5),
    ("Sipoo", "Sibbo", 4, (4130, 4170), 5),
    ("Mustasaari", "Korsholm", 3, (65610, 65630), 6),
    ("Kangasala", None, 5, (36200, 36280), 0),
    ("Iisalmi", None, 3, (74100, 74170), 0),
]

FI_SUFFIX_BY_SITE = {
    "apartment": (("katu", 0.62), ("tie", 0.22), ("kuja", 0.06), ("polku", 0.04), ("puistikko", 0.02), ("väylä", 0.04)),
    "house": (("tie", 0.48), ("kuja", 0.2), ("polku", 0.14), ("rinne", 0.07), ("kaari", 0.07), ("katu", 0.04)),
}
SV_SUFFIX_BY_SITE = {
    "apartment": (("gatan", 0.7), ("vägen", 0.22), ("gränd", 0.08)),
    "house": (("vägen", 0.6), ("stigen", 0.2), ("gränd", 0.1), ("backen", 0.1)),
}
SV_PREFIXES = (
    "Runebergs",
    "Topelius",
    "Skol",
    "Kyrko",
    "Strand",
    "Björk",
    "Gran",
    "Tall",
    "Lind",
    "Sjö",
    "Hamn",
    "Kvarn",
    "Mjölnar",
    "Ängs",
    "Berg",
    "Bäck",
    "Ekenäs",
    "Kungs",
    "Drottning",
    "Sibelius",
    "Smeds",
    "Åker",
    "Hagtorns",
    "Rönn",
    "Alströms",
    "Fiskar",
    "Båtsmans",
    "Lots",
    "Torg",
    "Villa",
)


@dataclass(frozen=True)
class Address:
    street: str
    postal_code: str
    city: str
    city_fi: str


class AddressMaker:
    """Draws addresses. Deterministic given its numpy Generator and its seeded Faker."""

    def __init__(self, rng: np.random.Generator, fake: Faker):
        self.rng = rng
        self.fake = fake
        w = np.array([c[2] for c in CITIES], dtype=float)
        self.p_city = w / w.sum()
        wsv = np.array([c[4] for c in CITIES], dtype=float)
        self.p_city_sv = wsv / wsv.sum()
        # Faker's Finnish street-name stems, minus the multi-word ones that read oddly with a suffix
        prov = fake.provider("faker.providers.address")
        stems = [p for p in prov.street_prefixes if " " not in p.strip()]
        self.fi_stems = sorted(set(p.strip() for p in stems))

    def _pick(self, choices):
        return choices[weighted_index(self.rng, [c[1] for c in choices])][0]

    def city(self, swedish: bool = False) -> int:
        return weighted_index(self.rng, self.p_city_sv if swedish else self.p_city)

    def street_name(self, swedish: bool, site: str) -> str:
        kind = "apartment" if site == "apartment" else "house"
        if swedish:
            return SV_PREFIXES[int(self.rng.integers(0, len(SV_PREFIXES)))] + self._pick(SV_SUFFIX_BY_SITE[kind])
        stem = self.fi_stems[int(self.rng.integers(0, len(self.fi_stems)))]
        return stem + self._pick(FI_SUFFIX_BY_SITE[kind])

    def make(self, site: str, swedish: bool = False, city_index: int | None = None) -> Address:
        ci = self.city(swedish) if city_index is None else city_index
        city_fi, city_sv, _, (lo, hi), _ = CITIES[ci]
        code = int(self.rng.integers(lo // 10, hi // 10 + 1)) * 10
        if self.rng.random() < 0.15:
            code += int(self.rng.integers(0, 10))  # a few non-round codes (PO boxes, large sites)
        city = city_sv if (swedish and city_sv and self.rng.random() < 0.85) else city_fi
        name = self.street_name(swedish and self.rng.random() < 0.8, site)
        r = self.rng
        if site == "apartment":
            number = int(r.integers(1, 60))
            letter = "ABCDEFGH"[int(r.integers(0, 4 if r.random() < 0.8 else 8))]
            apt = int(r.integers(1, 80))
            style = r.random()
            if style < 0.82:
                street = f"{name} {number} {letter} {apt}"
            elif style < 0.92:
                street = f"{name} {number} as {apt}"
            else:
                street = f"{name} {number} {letter.lower()} {apt}"
        elif site == "row_house":
            number = int(r.integers(1, 40))
            letter = "ABCDEF"[int(r.integers(0, 6))]
            apt = int(r.integers(1, 12))
            street = f"{name} {number} {letter} {apt}" if r.random() < 0.7 else f"{name} {number} as {apt}"
        else:  # detached house / company premises
            number = int(r.integers(1, 120))
            street = f"{name} {number}" if r.random() < 0.85 else f"{name} {number} {'abc'[int(r.integers(0, 3))]}"
        return Address(street, f"{code:05d}", city, city_fi)
