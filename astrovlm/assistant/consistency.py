"""Catalog facts against free text: what a passage or an answer says about an object that
the object's catalog card contradicts.

The catalog is the authority on its own fields. A user's passage that says "M57 is a spiral
galaxy in Andromeda" is not repeated as fact: ``contradictions`` finds, for a ``SkyObject``,
the type/class, constellation and numbers (V/B magnitude, redshift, size) that a text states
about it and that differ from the card, so the context can flag the passage and the answer
check (``check_answer``) can repair an answer that does the same. Only English statements
of the form "<name> ... is a <class> [in <constellation>]" are read: a small, predictable
check, not a parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from astrovlm.assistant.sanitize import matching_copy

CONTRADICTS = "[this passage contradicts the catalog card above]"

# Class phrases -> family. A claim contradicts a card when its family is not among the
# card's families, or when both name a different subtype of the same family.
_FAMILIES = {
    "galaxy": ["galaxy", "galaxies", "spiral galaxy", "barred spiral galaxy", "elliptical galaxy",
               "lenticular galaxy", "irregular galaxy", "dwarf galaxy", "starburst galaxy",
               "seyfert galaxy", "radio galaxy", "spiral", "elliptical", "lenticular", "barred spiral"],
    "galaxy group": ["cluster of galaxies", "galaxy cluster", "group of galaxies", "galaxy group",
                     "galaxy pair", "galaxy triplet", "pair of galaxies", "interacting galaxies"],
    "nebula": ["nebula", "planetary nebula", "protoplanetary nebula", "emission nebula",
               "reflection nebula", "dark nebula", "bright nebula", "hii region", "h ii region",
               "supernova remnant", "molecular cloud", "star-forming region", "nebulae"],
    "star cluster": ["cluster", "star cluster", "globular cluster", "open cluster", "cluster of stars",
                     "association of stars", "stellar association", "globular", "open star cluster"],
    "star": ["star", "double star", "binary star", "variable star", "white dwarf", "red giant",
             "red dwarf", "supergiant", "giant star", "main-sequence star", "neutron star", "pulsar"],
    "black hole": ["black hole", "supermassive black hole"],
    "quasar": ["quasar", "qso", "blazar"],
    "planet": ["planet", "dwarf planet", "moon", "exoplanet"],
    "comet": ["comet"],
    "asteroid": ["asteroid", "minor planet"],
    "supernova": ["supernova"],
}
_FAMILY_OF = {p: fam for fam, phrases in _FAMILIES.items() for p in phrases}
_SUBTYPES = {  # word in a class phrase -> subtype within its family
    "spiral": "spiral", "elliptical": "elliptical", "lenticular": "lenticular", "irregular": "irregular",
    "planetary": "planetary", "protoplanetary": "planetary", "reflection": "reflection",
    "dark": "dark", "supernova remnant": "remnant", "hii": "emission", "h ii": "emission",
    "emission": "emission", "globular": "globular", "open": "open",
}
_COMPATIBLE_SUBTYPES = {frozenset({"planetary", "emission"})}   # a planetary nebula is an emission nebula
_CLASS = re.compile(r"\b(" + "|".join(re.escape(p) for p in sorted(_FAMILY_OF, key=len, reverse=True))
                    + r")\b")
# "<name>[ (aliases)][, the Ring Nebula,] is [actually] a [bright] <class>"
_COPULA = re.compile(r"^\s*(?:\([^)]{0,80}\)\s*)?(?:,[^,.;]{0,60},\s*)?(?:is|was|remains|has been|is now)\s+"
                     r"(?P<neg>not\s+|no\s+longer\s+)?(?:actually\s+|really\s+|in fact\s+|also\s+|probably\s+)?"
                     r"(?:a|an|the|one of the)\s+(?P<rest>.*)$")
_IN_CONSTELLATION = re.compile(r"\b(?:in|within)\s+(?:the\s+)?(?:constellation\s+(?:of\s+)?)?"
                               r"(?P<c>[a-z]+(?:\s+[a-z]+)?)|\bconstellation\s+(?:of\s+)?(?P<c2>[a-z]+(?:\s+[a-z]+)?)")
_NOT_A_CONSTELLATION_AFTER = re.compile(r"^\s*(galaxy|nebula|cluster|group|arm)\b")
_OTHER_DESIGNATION = re.compile(r"\b(m\s?\d{1,3}|ngc\s?\d{1,4}|ic\s?\d{1,4}|hd\s?\d{1,6}|ugc\s?\d{1,5}|"
                                r"pgc\s?\d{1,7}|caldwell\s?\d{1,3}|the sun|the moon)\b")
_SENTENCE_END = re.compile(r"[.;!?](?:\s|$)")
_NUMBER = r"(?P<n>[-+\u2212]?\d+(?:\.\d+)?)"
_MAGNITUDE = re.compile(r"\b(?P<band>b|v|visual|blue|apparent|absolute|limiting|surface|integrated)?[\s-]*"
                        r"(?:band\s+)?magnitude\s*"
                        r"(?:of|is|=|:|about|around|~|near|close to|\s)*" + _NUMBER)
_REDSHIFT = re.compile(r"\bredshift\s*(?:of|is|=|:|about|around|~|z\s*=|\s)*" + _NUMBER)
_SIZE = re.compile(r"\b(?:size|diameter|major axis|extent|span|spans|measures)\s*(?:of|is|=|:|about|around|~|\s)*"
                   + _NUMBER + r"\s*(?:arc\s?min(?:utes?)?|arcmin|')")


@dataclass
class Contradiction:
    """A fact a text states about an object that its catalog card contradicts."""

    object_id: str
    name: str
    field: str          # "type" | "constellation" | "V magnitude" | "B magnitude" | "redshift" | "size"
    said: str           # what the text says
    card: str           # what the card says
    sentence: str       # the sentence that says it

    def describe(self) -> str:
        return f"{self.name}'s {self.field} (it says {self.said}; the card: {self.card})"


def fold(text: str) -> str:
    """The filter's matching copy: lower case, accents, compatibility forms, invisible
    characters and look-alike letters folded, whitespace collapsed ("M57 is а galaxy" with a
    Cyrillic "а" is read as written in Latin)."""
    return matching_copy(text)


def name_pattern(obj) -> re.Pattern:
    """Any of the object's names, spaced freely ("M57", "M 57", "NGC6720", "ring nebula")."""
    names = {n for n in [obj.name, obj.object_id, *(obj.aliases or [])] if n and len(n) >= 2}
    alts = []
    for n in sorted(names, key=len, reverse=True):
        n = fold(n)
        parts = re.split(r"\s+|(?<=[a-z])(?=\d)", n)
        alts.append(r"\s*".join(re.escape(p) for p in parts if p))
    return re.compile(r"(?<![\w])(?:" + "|".join(alts) + r")(?![\w])")


def _families(phrase: str) -> set[str]:
    return {_FAMILY_OF[m.group(1)] for m in _CLASS.finditer(fold(phrase))}


def _subtypes(phrase: str) -> set[str]:
    phrase = fold(phrase)
    return {v for k, v in _SUBTYPES.items() if re.search(rf"\b{k}\b", phrase)}


def class_conflict(claim: str, otype: str, coarse_class: str = "") -> bool:
    """Whether a class phrase ("spiral galaxy") contradicts a catalog type ("planetary nebula")."""
    card = _families(otype) or _families(coarse_class)
    said = _families(claim)
    if not card or not said:
        return False                    # an unknown type on either side: nothing to compare
    if not said & card:
        return True
    a, b = _subtypes(claim), _subtypes(otype)
    return bool(a and b and not a & b and frozenset(a | b) not in _COMPATIBLE_SUBTYPES)


def _constellations() -> dict[str, str]:
    from astrovlm.data.sources.openngc import CONSTELLATIONS

    out = {fold(v): v for v in CONSTELLATIONS.values()}
    out.update({"ophiucus": "Ophiuchus", "bootes": "Bootes"})
    return out


_CONSTELLATION_NAMES: dict[str, str] | None = None


def _constellation(words: str) -> tuple[str | None, str]:
    """The constellation (folded key) that ``words`` (one or two words) start with, and the
    words after it."""
    global _CONSTELLATION_NAMES
    if _CONSTELLATION_NAMES is None:
        _CONSTELLATION_NAMES = _constellations()
    if words in _CONSTELLATION_NAMES:
        return words, ""
    first, _, second = words.partition(" ")
    return (first, second) if first in _CONSTELLATION_NAMES else (None, "")


def _spans(obj, text: str, about: bool) -> list[tuple[str, str]]:
    """(what follows a mention of the object up to the sentence end or another object's name,
    the sentence) for each mention; ``about``: "it"/"this object" count as mentions."""
    t = fold(text)
    own = name_pattern(obj)
    subjects = [own]
    if about:
        subjects.append(re.compile(r"(?:(?<=^)|(?<=[.;!?] ))(?:it|this object|the object)(?![\w])"))
    out = []
    for pat in subjects:
        for m in pat.finditer(t):
            rest = t[m.end():]
            end = _SENTENCE_END.search(rest)
            rest = rest[:end.start()] if end else rest
            other = [o for o in _OTHER_DESIGNATION.finditer(rest) if not own.fullmatch(o.group(0))]
            if other:
                rest = rest[:other[0].start()]
            dot = t.rfind(". ", 0, m.start())
            start = dot + 2 if dot >= 0 else 0
            out.append((rest, t[start:m.end() + len(rest) + 1].strip()))
    return out


def contradictions(obj, text: str, about: bool = False) -> list[Contradiction]:
    """What ``text`` states about ``obj`` (a ``SkyObject``) that its catalog card contradicts:
    type/class, constellation, V/B magnitude, redshift, size. ``about``: the text is known to
    be about this object (its passage is linked to it), so "It is a ..." counts too."""
    found: list[Contradiction] = []

    def add(field, said, card, sentence):
        if not any(c.field == field for c in found):
            found.append(Contradiction(obj.object_id, obj.name, field, said, card, sentence))

    for rest, sentence in _spans(obj, text, about):
        m = _COPULA.match(rest)
        if m and not m.group("neg"):
            head = m.group("rest")
            c = _CLASS.search(head)
            if c and len(head[:c.start()].split()) <= 4:
                claim = head[:c.end()].split(",")[-1].strip()
                if class_conflict(claim, obj.otype or "", obj.coarse_class or ""):
                    add("type", claim, obj.otype, sentence)
        if obj.constellation:
            for c in _IN_CONSTELLATION.finditer(rest):
                named, tail = _constellation(c.group("c") or c.group("c2"))
                after = f"{tail} {rest[c.end():]}"   # "in the Andromeda Galaxy" names no constellation
                if named and not _NOT_A_CONSTELLATION_AFTER.match(after) and named != fold(obj.constellation):
                    add("constellation", _CONSTELLATION_NAMES[named], obj.constellation, sentence)
                    break
        for regex, field, card_value, close in _numbers(obj):
            for n in regex.finditer(rest):
                if field.endswith("magnitude") and _band(n.group("band")) != field:   # also absolute
                    continue
                value = float(n.group("n").replace("\u2212", "-"))
                if not close(value, card_value):
                    add(field, n.group("n"), f"{card_value:g}", sentence)
    return found


def _band(word: str | None) -> str:
    if word in ("absolute", "limiting", "surface"):
        return "other magnitude"
    return "B magnitude" if word in ("b", "blue") else "V magnitude"


def _numbers(obj):
    out = []
    if obj.v_mag is not None:
        out.append((_MAGNITUDE, "V magnitude", obj.v_mag, lambda a, b: abs(a - b) <= 0.5))
    if obj.b_mag is not None:
        out.append((_MAGNITUDE, "B magnitude", obj.b_mag, lambda a, b: abs(a - b) <= 0.5))
    if obj.redshift is not None:
        out.append((_REDSHIFT, "redshift", obj.redshift, lambda a, b: abs(a - b) <= max(0.005, 0.2 * abs(b))))
    if obj.major_axis_arcmin:
        out.append((_SIZE, "size", obj.major_axis_arcmin, lambda a, b: abs(a - b) <= 0.3 * b + 0.1))
    return out


def without(text: str, found: list[Contradiction]) -> str:
    """``text`` with the sentences that state a contradicted fact left out."""
    bad = {c.sentence for c in found}
    kept = [s for s in re.split(r"(?<=[.;!?])\s+", " ".join(text.split()))
            if s and not any(b and b in fold(s) for b in bad)]
    return " ".join(kept)


# ---------------------------------------------------------------------- the answer check
def card_sentence(obj) -> str:
    """One sentence of the card's type and constellation: "M57 is a planetary nebula in Lyra"."""
    from astrovlm.data.cards import article

    kind = obj.otype or "object"
    return f"{obj.name} is {article(kind)} {kind}" + (f" in {obj.constellation}" if obj.constellation else "")


def check_answer(text: str, objects, card_numbers: dict | None = None) -> tuple[str, list[str]]:
    """An answer whose type/class or constellation of an object contradicts the object's card
    is replaced by the card's statement (citing the card's number from ``card_numbers``,
    object id -> n); returns (text, notes). An answer that agrees is returned as it is."""
    card_numbers = card_numbers or {}
    objects = [o for o in objects if o is not None]
    wrong, notes = [], []
    for obj in objects:
        found = [c for c in contradictions(obj, text, about=len(objects) == 1)
                 if c.field in ("type", "constellation")]
        if found:
            wrong.append(obj)
            notes.append("the answer contradicted the catalog card on "
                         + " and ".join(c.describe() for c in found)
                         + "; it was replaced by the card's statement")
    if not wrong:
        return text, []
    parts = []
    for obj in wrong:
        n = card_numbers.get(obj.object_id)
        parts.append(card_sentence(obj) + (f" [{n}]" if n else "") + ".")
    return " ".join(parts), notes
