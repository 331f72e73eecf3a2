"""Catalog questions read as queries: "List the open clusters in Auriga", "How many globular
clusters are brighter than 8?", "What is the largest galaxy within 5 degrees of M31?", "Is
there a planetary nebula in Lyra?", "Is NGC 6960 a supernova remnant?".

``parse_catalog_question`` returns a ``CatalogQuery`` (what kind of answer, which object
types, which constellation, magnitude and size limits, a cone around a named object or a
position), or None when the question is not a catalog question: then the assistant answers
it the ordinary way. The parser only reads words; ``catalog_query`` runs the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from astrovlm.assistant.constellations import find_constellations

# Object kinds as questions word them -> (OpenNGC type codes, Hubble-type prefix, table).
# Longest phrases first: "open cluster" before "cluster", "emission nebula" before "nebula".
_KINDS: list[tuple[str, tuple[str, ...], str | None, str]] = [
    (r"supernova remnants?|snrs?", ("SNR",), None, "openngc"),
    (r"supernovae|supernovas?|sne", (), None, "supernovae"),
    (r"globular(?: star)? clusters?|globulars", ("GCl",), None, "openngc"),
    (r"open(?: star)? clusters?|galactic clusters?", ("OCl",), None, "openngc"),
    (r"planetary nebulae|planetary nebulas?|planetaries|pne?", ("PN",), None, "openngc"),
    (r"h ?ii regions?|emission nebulae|emission nebulas?", ("HII", "EmN"), None, "openngc"),
    (r"reflection nebulae|reflection nebulas?", ("RfN",), None, "openngc"),
    (r"dark nebulae|dark nebulas?", ("DrkN",), None, "openngc"),
    (r"spiral galaxies|spiral galaxy|spirals", ("G",), "S", "openngc"),
    (r"elliptical galaxies|elliptical galaxy|ellipticals", ("G",), "E", "openngc"),
    (r"lenticular galaxies|lenticular galaxy", ("G",), "S0", "openngc"),
    (r"irregular galaxies|irregular galaxy", ("G",), "I", "openngc"),
    (r"galaxy pairs?|pairs of galaxies", ("GPair",), None, "openngc"),
    (r"galaxy groups?|groups of galaxies", ("GGroup", "GTrpl"), None, "openngc"),
    (r"galaxies|galaxy", ("G",), None, "openngc"),
    (r"star clusters?|clusters?", ("OCl", "GCl"), None, "openngc"),
    (r"nebulae|nebulas?", ("Neb", "HII", "EmN", "RfN", "SNR", "DrkN", "Cl+N", "PN"), None, "openngc"),
    (r"stars?", (), None, "stars"),
]
_KIND_RE = [(re.compile(r"\b(?:" + p + r")\b", re.IGNORECASE), p, codes, hubble, table)
            for p, codes, hubble, table in _KINDS]

_NUMBER = r"([+-]?\d+(?:\.\d+)?)"
_MAG = [(re.compile(r"\b(?:brighter than|magnitude (?:below|under|less than)|mag(?:nitude)? ?<=?) ?" + _NUMBER,
                    re.I), "max"),
        (re.compile(r"\b(?:fainter than|magnitude (?:above|over|greater than)|mag(?:nitude)? ?>=?) ?" + _NUMBER,
                    re.I), "min")]
_UNITS = {"arcmin": 1.0, "arcminutes": 1.0, "'": 1.0, "arcsec": 1 / 60, "arcseconds": 1 / 60, '"': 1 / 60,
          "deg": 60.0, "degree": 60.0, "degrees": 60.0, "°": 60.0}
_UNIT = r"(arcminutes|arcmin|arcseconds|arcsec|degrees|degree|deg|°|'|\")"
_SIZE = [(re.compile(r"\b(?:larger|bigger|wider) than " + _NUMBER + r" ?" + _UNIT, re.I), "min"),
         (re.compile(r"\b(?:smaller|narrower) than " + _NUMBER + r" ?" + _UNIT, re.I), "max")]
_CONE = re.compile(r"\b(?:within|less than) " + _NUMBER + r" ?" + _UNIT + r" (?:of|from|around) (.+?)"
                   r"(?=\s+(?:brighter|fainter|larger|bigger|smaller|in|with|that|which|are|is|and|has|have)\b|"
                   r"[?!]|\.(?!\d)|,(?!\s*[+-]?\d)|$)", re.I)
_VERDICT = re.compile(r"^\s*(?:is|was)\s+(.+?)\s+(?:really\s+|actually\s+)?(?:a|an)\s+(.+?)\s*\??\s*$", re.I)
_COUNT = re.compile(r"\bhow many\b|\bnumber of\b|\bcount\b", re.I)
_EXISTS = re.compile(r"^\s*(?:is|are)\s+there\b|\bdoes\s+\w+(?:\s\w+)?\s+(?:have|contain|host)\b", re.I)
_BRIGHTEST = re.compile(r"\bbrightest\b", re.I)
_LARGEST = re.compile(r"\b(?:largest|biggest|widest)\b", re.I)
_LIST = re.compile(r"^\s*(?:list|name|show|give|find|which|what)\b|\b(?:list|which)\b", re.I)


@dataclass
class CatalogQuery:
    """A question as a catalog query. ``kind``: list | count | brightest | largest | exists |
    verdict. ``center``: an object name or "RA Dec" text; ``radius_arcmin`` goes with it."""

    kind: str
    kind_words: str                                      # the words the question used ("open clusters")
    table: str = "openngc"                               # openngc | stars | supernovae
    types: tuple[str, ...] = ()                          # OpenNGC type codes
    hubble_prefix: str | None = None                     # "S", "E", "S0", "I"
    constellation: str | None = None                     # IAU abbreviation
    mag_max: float | None = None
    mag_min: float | None = None
    size_min_arcmin: float | None = None
    size_max_arcmin: float | None = None
    center: str | None = None
    radius_arcmin: float | None = None
    subject: str | None = None                           # the object a verdict is about
    words: dict = field(default_factory=dict)            # the question's own words for each filter

    def describe(self, one: bool = False) -> str:
        """The query in words: "open clusters in Auriga" ("open cluster in Auriga" with ``one``)."""
        from astrovlm.assistant.constellations import constellation_name

        parts = [singular(self.kind_words) if one else plural(self.kind_words)]
        if self.constellation:
            parts.append(f"in {constellation_name(self.constellation)}")
        if self.mag_max is not None:
            parts.append(f"brighter than magnitude {self.mag_max:g}")
        if self.mag_min is not None:
            parts.append(f"fainter than magnitude {self.mag_min:g}")
        if self.size_min_arcmin is not None:
            parts.append(f"larger than {self.size_min_arcmin:g} arcmin")
        if self.size_max_arcmin is not None:
            parts.append(f"smaller than {self.size_max_arcmin:g} arcmin")
        if self.center:
            parts.append(f"within {self.radius_arcmin / 60:g} deg of {self.center}")
        return " ".join(parts)


def singular(words: str) -> str:
    """"open clusters" -> "open cluster", "nebulae" -> "nebula", "galaxies" -> "galaxy"."""
    for plural, one in (("galaxies", "galaxy"), ("nebulae", "nebula"), ("supernovae", "supernova"),
                        ("nebulas", "nebula"), ("remnants", "remnant"), ("clusters", "cluster"),
                        ("regions", "region"), ("stars", "star"), ("pairs", "pair"), ("groups", "group"),
                        ("globulars", "globular cluster"), ("spirals", "spiral galaxy"),
                        ("ellipticals", "elliptical galaxy"), ("planetaries", "planetary nebula")):
        if words.lower().endswith(plural):
            return (words[: len(words) - len(plural)] + one).lower()
    return words.lower()


def plural(words: str) -> str:
    """"open cluster" -> "open clusters", "nebula" -> "nebulae", "galaxy" -> "galaxies"."""
    one = singular(words)
    for end, many in (("galaxy", "galaxies"), ("nebula", "nebulae"), ("supernova", "supernovae")):
        if one.endswith(end):
            return one[: len(one) - len(end)] + many
    return one if one.endswith("s") and one.lower() in ("sne", "snrs") else one + "s"


def _kind(text: str):
    for rx, pattern, codes, hubble, table in _KIND_RE:
        m = rx.search(text)
        if m:
            return m, codes, hubble, table
    return None


def parse_catalog_question(question: str) -> CatalogQuery | None:
    """The catalog query a question asks, or None if it asks something else."""
    q = question.strip()
    verdict = _VERDICT.match(q)
    if verdict and not re.match(r"^\s*(?:is|was)\s+there\b", q, re.I):
        found = _kind(verdict.group(2))
        # "Is NGC 6960 a supernova remnant?": the whole predicate must be a kind of object.
        if found and found[0].group().lower() == verdict.group(2).strip().lower() and found[3] == "openngc":
            m, codes, hubble, table = found
            return CatalogQuery("verdict", m.group(), table, codes, hubble, subject=verdict.group(1).strip())
    found = _kind(q)
    if found is None:
        return None
    m, codes, hubble, table = found
    query = CatalogQuery("list", m.group(), table, codes, hubble)
    for rx, side in _MAG:
        mm = rx.search(q)
        if mm:
            setattr(query, "mag_max" if side == "max" else "mag_min", float(mm.group(1)))
    for rx, side in _SIZE:
        mm = rx.search(q)
        if mm:
            value = float(mm.group(1)) * _UNITS[mm.group(2).lower()]
            setattr(query, "size_min_arcmin" if side == "min" else "size_max_arcmin", value)
    cone = _CONE.search(q)
    if cone:
        query.radius_arcmin = float(cone.group(1)) * _UNITS[cone.group(2).lower()]
        query.center = cone.group(3).strip().rstrip("?.! ")
    # The constellation the question puts the objects in ("in Auriga", "of Orion", "Cygnus's");
    # one named only inside the cone's centre ("within 5 deg of Andromeda Galaxy") is not it.
    cone_span = cone.span(3) if cone else (0, 0)
    for abbr, start, end in find_constellations(q):
        if cone_span[0] <= start < cone_span[1]:
            continue
        before = q[max(0, start - 20):start].lower()
        if re.search(r"\b(?:in|of|inside|within)\s+(?:the\s+)?(?:constellation\s+(?:of\s+)?)?$", before) \
                or q[end:end + 2] in ("'s", "’s"):
            query.constellation = abbr
            break
    if query.constellation is None:
        # "in Aurigo": a misspelt constellation, answered with the closest spellings.
        from astrovlm.assistant.constellations import closest_constellations

        for word in re.findall(r"\bin\s+(?:the\s+)?([A-Z][a-z]{3,})\b", q):
            if not find_constellations(word) and closest_constellations(word):
                query.words["unknown_place"] = word
                break
    if _COUNT.search(q):
        query.kind = "count"
    elif _BRIGHTEST.search(q):
        query.kind = "brightest"
    elif _LARGEST.search(q):
        query.kind = "largest"
    elif _EXISTS.search(q):
        query.kind = "exists"
    elif not _LIST.search(q):
        return None
    has_filter = "unknown_place" in query.words or any(v is not None for v in (query.constellation, query.mag_max, query.mag_min,
                                             query.size_min_arcmin, query.size_max_arcmin, query.center))
    # "What is a globular cluster?" names a kind but asks for no rows: not a catalog query.
    # A list needs a filter (all 10,521 galaxies is no answer); brightest/largest/count need none.
    if query.kind in ("list", "exists") and not has_filter:
        return None
    # "How many stars are in a globular cluster?" counts stars, not clusters: without a filter
    # a count must name its kind right after "how many".
    count = _COUNT.search(q)
    if query.kind == "count" and not has_filter and not (count and 0 <= m.start() - count.end() <= 12):
        return None
    if table == "supernovae" and query.constellation is None and query.center is None and \
            query.kind in ("list",):
        return None
    return query
