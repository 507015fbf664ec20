"""Friendly random aliases for anonymous youth ("Blå rev"): colour/mood + animal."""

import secrets

# Only masculine/feminine animals, so the adjective never needs the neuter -t.
ADJECTIVES = [
    "Blå",
    "Grønn",
    "Gul",
    "Rød",
    "Lilla",
    "Rolig",
    "Modig",
    "Glad",
    "Snill",
    "Lys",
    "Stille",
    "Rask",
    "Myk",
    "Klok",
    "Varm",
    "Kjekk",
    "Sterk",
    "Vill",
    "Lun",
    "Frisk",
]
ANIMALS = [
    "rev",
    "ugle",
    "bjørn",
    "elg",
    "gaupe",
    "ulv",
    "måke",
    "katt",
    "hare",
    "oter",
    "sel",
    "hval",
    "ørn",
    "spurv",
    "panda",
    "tiger",
    "løve",
    "pingvin",
    "delfin",
    "skilpadde",
]


def random_alias() -> str:
    return f"{secrets.choice(ADJECTIVES)} {secrets.choice(ANIMALS)}"
