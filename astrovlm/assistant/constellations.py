"""Constellations as questions name them: "Auriga", "Ursa Major", "Aur", "Aurigae".

The IAU abbreviations and names are OpenNGC's (``CONSTELLATIONS``, the table the catalog
rows use); the genitives, which questions borrow from star names ("stars of Orionis"), are
the IAU's. ``find_constellation`` returns the abbreviation, which is what the catalog's
``constellation`` column holds, so a query is one comparison.
"""

from __future__ import annotations

import re

from astrovlm.data.sources.openngc import CONSTELLATIONS

# IAU genitives, by abbreviation.
GENITIVES = {
    "And": "Andromedae", "Ant": "Antliae", "Aps": "Apodis", "Aqr": "Aquarii", "Aql": "Aquilae",
    "Ara": "Arae", "Ari": "Arietis", "Aur": "Aurigae", "Boo": "Bootis", "Cae": "Caeli",
    "Cam": "Camelopardalis", "Cnc": "Cancri", "CVn": "Canum Venaticorum", "CMa": "Canis Majoris",
    "CMi": "Canis Minoris", "Cap": "Capricorni", "Car": "Carinae", "Cas": "Cassiopeiae",
    "Cen": "Centauri", "Cep": "Cephei", "Cet": "Ceti", "Cha": "Chamaeleontis", "Cir": "Circini",
    "Col": "Columbae", "Com": "Comae Berenices", "CrA": "Coronae Australis",
    "CrB": "Coronae Borealis", "Crv": "Corvi", "Crt": "Crateris", "Cru": "Crucis", "Cyg": "Cygni",
    "Del": "Delphini", "Dor": "Doradus", "Dra": "Draconis", "Equ": "Equulei", "Eri": "Eridani",
    "For": "Fornacis", "Gem": "Geminorum", "Gru": "Gruis", "Her": "Herculis", "Hor": "Horologii",
    "Hya": "Hydrae", "Hyi": "Hydri", "Ind": "Indi", "Lac": "Lacertae", "Leo": "Leonis",
    "LMi": "Leonis Minoris", "Lep": "Leporis", "Lib": "Librae", "Lup": "Lupi", "Lyn": "Lyncis",
    "Lyr": "Lyrae", "Men": "Mensae", "Mic": "Microscopii", "Mon": "Monocerotis", "Mus": "Muscae",
    "Nor": "Normae", "Oct": "Octantis", "Oph": "Ophiuchi", "Ori": "Orionis", "Pav": "Pavonis",
    "Peg": "Pegasi", "Per": "Persei", "Phe": "Phoenicis", "Pic": "Pictoris", "Psc": "Piscium",
    "PsA": "Piscis Austrini", "Pup": "Puppis", "Pyx": "Pyxidis", "Ret": "Reticuli", "Sge": "Sagittae",
    "Sgr": "Sagittarii", "Sco": "Scorpii", "Scl": "Sculptoris", "Sct": "Scuti", "Ser": "Serpentis",
    "Sex": "Sextantis", "Tau": "Tauri", "Tel": "Telescopii", "Tri": "Trianguli",
    "TrA": "Trianguli Australis", "Tuc": "Tucanae", "UMa": "Ursae Majoris", "UMi": "Ursae Minoris",
    "Vel": "Velorum", "Vir": "Virginis", "Vol": "Volantis", "Vul": "Vulpeculae",
}
# Serpens is split in two in OpenNGC (Se1 Caput, Se2 Cauda); a question names the whole.
ABBREVIATIONS = [a for a in CONSTELLATIONS if a not in ("Se1", "Se2")]
NAMES = {CONSTELLATIONS[a]: a for a in ABBREVIATIONS}
# Spellings without accents or with them: "Bootes", "Boötes".
_ALIASES = {"Boötes": "Boo", "Scorpio": "Sco"}


def catalog_codes(abbr: str) -> set[str]:
    """The values of OpenNGC's constellation column that mean ``abbr``."""
    return {"Ser", "Se1", "Se2"} if abbr == "Ser" else {abbr}


def _spellings() -> list[tuple[str, str, bool]]:
    """(spelling, abbreviation, case-sensitive), longest first so "Triangulum Australe" is
    found before "Triangulum" and "Ursa Minor" is not read as "Ursa"."""
    out = [(n, a, False) for n, a in NAMES.items()]
    out += [(g, a, False) for a, g in GENITIVES.items()]
    out += [(n, a, False) for n, a in _ALIASES.items()]
    # An abbreviation only as typed ("in Aur"): "Her", "Per" and "Leo" are also words.
    out += [(a, a, True) for a in ABBREVIATIONS if a not in NAMES]
    return sorted(out, key=lambda t: -len(t[0]))


_SPELLINGS = _spellings()


def find_constellations(text: str) -> list[tuple[str, int, int]]:
    """Every constellation ``text`` names, as (abbreviation, start, end), in reading order."""
    taken: list[tuple[int, int]] = []
    found = []
    for spelling, abbr, exact in _SPELLINGS:
        flags = 0 if exact else re.IGNORECASE
        for m in re.finditer(r"(?<![\w'])" + re.escape(spelling) + r"(?![\w'])", text, flags):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            if exact and m.group() != spelling:
                continue
            taken.append(m.span())
            found.append((abbr, m.start(), m.end()))
    return sorted(found, key=lambda t: t[1])


def constellation_name(abbr: str) -> str:
    return CONSTELLATIONS.get(abbr, abbr)


def closest_constellations(word: str, n: int = 3) -> list[str]:
    """Constellation names spelled like ``word`` (for a no-match answer)."""
    import difflib

    return difflib.get_close_matches(word.capitalize(), list(NAMES) + list(GENITIVES.values()), n=n,
                                     cutoff=0.7)
