"""Automatic grading of an answer to one question of benchmarks/data/open_questions.jsonl.

``grade(question, text)`` returns what was checked, after normalising case, accents and spaces
(and "M 10" to "M10"):

- ``units``: one boolean per checkable expectation; the answer's ``score`` is their mean (a fully
  right answer scores 1):
  - a fact with spellings (``any``): one of them appears as a word (constellation, spectral type,
    Hubble type (case kept: "Sa" is not "SA"), a concept's key idea, a name); the object-type
    fact instead needs the FIRST class the answer names to be the expected one (so listing every
    class does not score), or for a star, the word "star" with no other class named first;
  - a number (magnitude, redshift): a number in the answer, catalogue designations removed
    (the 10 of M10), within the tolerance; a quantity with a unit (distance, size, altitude,
    azimuth): a number with a unit of that kind (pc/kpc/Mpc/light-years; degrees), converted,
    within the tolerance;
  - ``winner`` (comparisons): the first of the compared objects the answer names is the right one;
  - ``verdict``: the first yes/no/true/false word (or "not true", "incorrect", ...) agrees;
  - ``count``: the first whole number (digits or words) is the count;
  - ``items`` (lists): one unit per expected item named;
  - ``no_answer``: the answer is a refusal ("the sources here do not say", "not in the
    context", "no information", ...); any other answer there is an unsupported statement.
- ``contradictions``: statements against the expected values: another class named first, a
  constellation named while the right one is not, a number of the fact's kind and unit none of
  which is within tolerance, the wrong winner first, the opposite verdict, another count, an
  excluded list item (the catalog says it does not belong), a ``must_not`` string (the false
  claim of the question restated), or an answer where none is possible. ``flagged`` is any.
- ``refused``: the answer is a refusal (a refusal to an answerable question scores 0, unflagged).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

import astropy.units as u

sys.path.insert(0, str(Path(__file__).resolve().parent))
from assistant_qa import IMAGE_SYNONYMS, SPECTRUM_SYNONYMS, first_class  # noqa: E402

REFUSALS = (
    "does not say", "do not say", "doesn't say", "don't say", "not say", "not in the context",
    "context does not", "sources do not", "sources here do not", "no information", "not mentioned",
    "does not mention", "do not mention", "doesn't mention", "don't mention", "not provided",
    "cannot find", "can't find", "could not find", "don't know", "do not know", "not known", "unknown",
    "not available", "cannot answer", "can't answer", "unable to", "no data", "not given", "not stated",
    "does not give", "do not give", "doesn't give", "not listed", "does not include", "do not include",
    "does not contain", "do not contain", "does not state", "do not state", "not specified", "no record",
)
CONSTELLATION_NAMES = None  # filled on first use from astrovlm's table

AFFIRM, NEGATE = "yes", "no"
VERDICT_WORDS = [  # longest first at one position
    ("not true", NEGATE), ("not correct", NEGATE), ("incorrect", NEGATE), ("untrue", NEGATE),
    ("false", NEGATE), ("wrong", NEGATE), ("no", NEGATE), ("yes", AFFIRM), ("true", AFFIRM),
    ("correct", AFFIRM), ("that's right", AFFIRM), ("indeed", AFFIRM),
]
NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
# Designations whose digits are names, not quantities.
DESIGNATION = re.compile(r"\b(m|ngc|ic|hd|pgc|ugc|eso|mwsc|lbn|ldn|rcw|sh2|abell|barnard|c|iras|2masx|sdss|pk|pn g)"
                         r"\s?-?\d[\d+\-.]*", re.I)
NUM = r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?"
LENGTH_UNITS = [  # (regex after the number, unit)
    (r"million light[- ]?years?|mly", 1e6 * u.lyr), (r"thousand light[- ]?years?", 1e3 * u.lyr),
    (r"billion light[- ]?years?", 1e9 * u.lyr), (r"light[- ]?years?|ly\b", 1 * u.lyr),
    (r"megaparsecs?|mpc", 1 * u.Mpc), (r"kiloparsecs?|kpc", 1 * u.kpc), (r"parsecs?|pc\b", 1 * u.pc),
]
ANGLE_UNITS = [(r"°|degrees?|deg\b", 1 * u.deg)]


def norm(text: str) -> str:
    text = str(text).replace("\u00b0", " deg ")      # the ascii fold below would drop the degree sign
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    text = text.replace("\u2212", "-").replace("\u2019", "'")
    text = re.sub(r"\b(m|ngc|ic|hd)\s+(\d)", r"\1\2", text)
    return " ".join(text.split())


def has_word(text_n: str, phrase: str) -> int:
    """Position of ``phrase`` as a whole word in normalised text, or -1."""
    m = re.search(r"(?<![a-z0-9])" + re.escape(norm(phrase)) + r"(?![a-z0-9])", text_n)
    return m.start() if m else -1


def is_refusal(text: str) -> bool:
    t = norm(text)
    return not t or any(p in t for p in REFUSALS)


def plain_numbers(text: str) -> list[float]:
    t = DESIGNATION.sub(" ", unicodedata.normalize("NFKD", text).replace("\u2212", "-"))
    out = []
    for x in re.findall(NUM, t):
        try:
            out.append(float(x.replace(",", "")))
        except ValueError:
            pass
    return out


def quantities(text: str, units_table) -> list[u.Quantity]:
    t = DESIGNATION.sub(" ", norm(text))
    out = []
    for unit_re, unit in units_table:
        for m in re.finditer(r"(" + NUM + r")\s*(?:" + unit_re + r")(?!\s*/)", t):
            try:
                out.append(float(m.group(1).replace(",", "")) * unit)
            except ValueError:
                pass
    return out


def constellations() -> list[str]:
    global CONSTELLATION_NAMES
    if CONSTELLATION_NAMES is None:
        from astrovlm.data.sources.openngc import CONSTELLATIONS

        CONSTELLATION_NAMES = sorted(set(CONSTELLATIONS.values()), key=len, reverse=True)
    return CONSTELLATION_NAMES


def named_constellations(text_n: str) -> set[str]:
    found, rest = set(), text_n
    for name in constellations():          # longest first: "Leo Minor" before "Leo"
        if has_word(rest, name) >= 0:
            found.add(name)
            rest = re.sub(r"(?<![a-z0-9])" + re.escape(norm(name)) + r"(?![a-z0-9])", " ", rest)
    return found


def first_verdict(text: str) -> str | None:
    t = norm(text)
    best = None
    for phrase, v in VERDICT_WORDS:
        p = has_word(t, phrase)
        if p >= 0 and (best is None or p < best[0] or (p == best[0] and len(phrase) > best[1])):
            best = (p, len(phrase), v)
    return best[2] if best else None


def first_count(text: str) -> int | None:
    t = DESIGNATION.sub(" ", norm(text))
    m = re.search(r"(?<![\w.])(\d+)(?!\w|\.\d)|\b(" + "|".join(NUMBER_WORDS) + r")\b", t)
    if not m:
        return None
    return int(m.group(1)) if m.group(1) else NUMBER_WORDS[m.group(2)]


def first_named(text_n: str, groups: list[list[str]]) -> int | None:
    """Which group of names appears first in the text (index), or None."""
    best = None
    for i, names in enumerate(groups):
        for n in names:
            p = has_word(text_n, n)
            if p >= 0 and (best is None or p < best[0]):
                best = (p, i)
    return best[1] if best else None


TYPE_SYNONYMS = dict(IMAGE_SYNONYMS)
# A proper name that ends in a class word ("the Helix Nebula", "the Needle Galaxy") names no class.
CLASS_WORDS = r"(?:Globular|Open|Planetary|Spiral|Barred|Elliptical|Lenticular|Irregular|Emission|Reflection|Dark|Star|HII|H II)"
PROPER_NAME = re.compile(r"\b(?!" + CLASS_WORDS + r"\b)(?:[A-Z][\w'-]*\s+)+(?:Nebula|Galaxy|Cluster|Cloud)\b")


def without_proper_names(text: str) -> str:
    return PROPER_NAME.sub(" ", text)


def check_fact(f: dict, text: str, t: str, several: bool = False) -> tuple[bool, str | None]:
    """(stated, contradiction or None) for one expected fact; ``several``: the question is about
    more than one object, so "the first class named" cannot tell whose type it is."""
    kind = f["fact"]
    if kind == "type" and several:
        return any(has_word(t, s) >= 0 for s in f["any"]), None
    if kind == "type":
        got = first_class(without_proper_names(text), TYPE_SYNONYMS)
        if f["class"] == "star":
            ok = has_word(t, "star") >= 0 and got is None
            return ok, (f"called a {got}, not a star" if got else None)
        return got == f["class"], (f"named {got!r} first, the catalog says {f['class']!r}"
                                   if got and got != f["class"] else None)
    if kind == "class":
        syn = IMAGE_SYNONYMS if f["modality"] == "image" else SPECTRUM_SYNONYMS
        got = first_class(text, syn)
        return got == f["class"], (f"named {got!r} first, it is {f['class']!r}" if got and got != f["class"] else None)
    if kind == "constellation":
        named = named_constellations(t)
        ok = f["any"][0] in named
        return ok, (f"placed in {sorted(named)}, not {f['any'][0]}" if named and not ok else None)
    if kind == "hubble_type":
        ok = any(re.search(r"(?<![A-Za-z0-9])" + re.escape(h) + r"(?![A-Za-z0-9])", text) for h in f["any"])
        return ok, None
    if kind == "winner":
        got = first_named(t, [f["any"], f["others"]])
        return got == 0, ("named the wrong object first" if got == 1 else None)
    if "any" in f:
        return any(has_word(t, s) >= 0 for s in f["any"]), None
    if kind in ("magnitude", "redshift"):
        nums = plain_numbers(text)
        ok = any(abs(x - f["value"]) <= f["tol"] for x in nums)
        cue = r"magnitudes?|mag\b|brightness" if kind == "magnitude" else r"redshift|\bz\s*[=~]"
        near = [x for m in re.finditer(cue, t) for x in plain_numbers(t[m.start(): m.end() + 40])]
        bad = near and not any(abs(x - f["value"]) <= f["tol"] for x in near)
        return ok, (f"{kind} {near[0]} against {f['value']}" if bad and not ok else None)
    if kind in ("distance", "physical_size", "altitude", "azimuth"):
        table = ANGLE_UNITS if f["unit"] == "deg" else LENGTH_UNITS
        ref = f["value"] * u.Unit(f["unit"])
        got = [q.to(ref.unit) for q in quantities(text, table)]
        if f["unit"] == "deg":
            ok = any(abs((q - ref).to_value(u.deg)) <= f["tol"] for q in got)
        else:
            ok = any(abs((q / ref).decompose().value - 1) <= f["tol_rel"] for q in got)
        # altitude and azimuth share a unit: the contradiction is judged on the pair (in grade)
        return ok, (f"{kind} {got[0]:.4g} against {ref:.4g}" if got and not ok and f["unit"] != "deg" else None)
    raise ValueError(f"unknown fact {kind!r}")


def grade(q: dict, text: str) -> dict:
    """Grade one answer; see the module docstring."""
    exp = q["expected"]
    t = norm(text)
    refused = is_refusal(text)
    units: list[bool] = []
    contra: list[str] = []
    if exp.get("no_answer"):
        units.append(refused)
        if not refused:
            contra.append("answered what the sources cannot answer")
    else:
        angle_bad = []
        for f in exp.get("facts", []):
            ok, bad = check_fact(f, text, t, several=len(q.get("objects", [])) > 1)
            units.append(ok)
            if bad:
                contra.append(bad)
            if f.get("unit") == "deg":
                angle_bad.append(not ok)
        if angle_bad and all(angle_bad) and quantities(text, ANGLE_UNITS):
            contra.append("altitude/azimuth stated, neither within tolerance")
        if "verdict" in exp:
            want = AFFIRM if exp["verdict"] in ("yes", "true") else NEGATE
            got = first_verdict(text)
            units.append(got == want)
            if got is not None and got != want:
                contra.append(f"verdict {got!r}, expected {exp['verdict']!r}")
        if "count" in exp:
            got = first_count(text)
            units.append(got == exp["count"])
            if got is not None and got != exp["count"]:
                contra.append(f"count {got}, expected {exp['count']}")
        if "items" in exp:
            units += [any(has_word(t, n) >= 0 for n in names) for names in exp["items"]]
            # the expected items' names are taken out first: "Gienah" (Cygnus) is inside "Gienah Corvi"
            rest = t
            for names in exp["items"]:
                for n in sorted(names, key=len, reverse=True):
                    rest = re.sub(r"(?<![a-z0-9])" + re.escape(norm(n)) + r"(?![a-z0-9])", " ", rest)
            wrong = [n for n in exp.get("exclude", []) if has_word(rest, n) >= 0]
            if wrong:
                contra.append(f"listed {wrong[:5]} which do not belong")
    for s in exp.get("must_not", []):
        if norm(s) in t:
            contra.append(f"said {s!r}")
    return {"units": units, "score": sum(units) / len(units) if units else 0.0, "refused": refused,
            "contradictions": contra, "flagged": bool(contra)}


def source_relevant(q: dict, source) -> bool:
    """A cited source is relevant when it is about an asked object, or (no object asked, or an
    attachment) when its text states an expected fact, the concept or a listed item."""
    exp = q["expected"]
    if source.object_id and source.object_id in q.get("objects", []):
        return True
    t = norm(source.text)
    if exp.get("concept") and has_word(t, exp["concept"]) >= 0:
        return True
    for names in exp.get("items", []):
        if any(has_word(t, n) >= 0 for n in names):
            return True
    for f in exp.get("facts", []):
        if f["fact"] == "class" and first_class(source.text, IMAGE_SYNONYMS if f["modality"] == "image"
                                                else SPECTRUM_SYNONYMS) == f["class"]:
            return True
    return False
