"""One-word names read in context: "Triangulum", "Andromeda", "Sculptor", "the Pinwheel".

The resolver knows which object a one-word name would mean (``NameResolver.head_object``:
the first word of a common name such as "Triangulum Galaxy"). Many of those words are also
constellations, so the question decides: the word is the object when the question asks
about that kind of object or something only an object has (its type, redshift, distance,
size, brightness) and the word is not put as a place ("in Triangulum", "the constellation
Andromeda"); otherwise it is the constellation and names no object. A word that is no
constellation ("the Pinwheel") is the object. Each reading is stated, with the other
objects that share the name, so the answer can say which object it took.
"""

from __future__ import annotations

import re

from astrovlm.assistant.constellations import NAMES

_WORD = re.compile(r"\b(the\s+)?([A-Za-z][a-z]+)\b")
# What only an object has: asking for it makes "Andromeda" the galaxy, not the constellation.
_OBJECT_CUES = re.compile(r"\b(?:type|kind|hubble|morpholog\w*|redshift|distance|how far|far away|"
                          r"magnitude|how bright|size|how big|how large|diameter|spectrum|image)\b", re.I)
_PLACE_BEFORE = re.compile(r"(?:\bin|\bconstellation(?:\s+of)?|\bof\s+the\s+constellation)\s+(?:the\s+)?$", re.I)
_KINDS = {"Galaxy": r"galax\w*", "Nebula": r"nebul\w*", "Cluster": r"cluster\w*", "Cloud": r"cloud\w*"}


def _spans_taken(span, taken) -> bool:
    return any(a < span[1] and span[0] < b for a, b in taken)


def read_one_word_names(question: str, resolver, taken: list[tuple[int, int]] = ()) -> list[tuple[object, str]]:
    """(object, reading sentence) for each one-word name the question uses as an object.
    ``taken``: character spans already read as names (left alone)."""
    if resolver is None or not hasattr(resolver, "head_object"):
        return []
    from astrovlm.assistant.mentions import _STOP

    out, seen = [], set()
    for m in _WORD.finditer(question):
        word = m.group(2)
        capitalised = word[0].isupper()
        if word.lower() in _STOP or not (capitalised or m.group(1)) or _spans_taken(m.span(2), taken):
            continue
        got = resolver.head_object(word)
        if got is None:
            continue
        obj, full, others = got
        if obj.object_id in seen:
            continue
        constellation = word.capitalize() in NAMES
        if constellation:
            kind = full.split()[-1]
            asks_object = bool(_OBJECT_CUES.search(question)) or bool(
                re.search(r"\b" + _KINDS.get(kind, kind.lower()) + r"\b", question, re.I))
            if not asks_object or _PLACE_BEFORE.search(question[:m.start(2)]):
                continue
        seen.add(obj.object_id)
        reading = f"I took '{word}' to mean {obj.name}, the {full}"
        reading += ", not the constellation" if constellation else ""
        if others:
            reading += f" (the name is also used for {', '.join(others)})"
        out.append((obj, reading + "."))
    return out
