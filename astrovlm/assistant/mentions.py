"""Which objects a question names: catalog designations by pattern, common names and star
names through the offline resolver ("M57", "NGC 6720", "Ring Nebula", "alpha CMa")."""

from __future__ import annotations

import re

from astrovlm.data.names import GREEK

# Catalog designations, written the ways people type them ("M57", "M 57", "NGC6720", "IC 434").
_DESIGNATION = re.compile(
    r"\b(?:(M|Messier)\s?-?(\d{1,3})|(NGC|IC)\s?-?(\d{1,5})\s?([A-Z])?|(HD|HR|HIP)\s?-?(\d{1,6}))\b")
# Common names that look like names even when the catalog lacks them ("Blue Fox Nebula"):
# capitalised words ending in a kind of object. They are reported if they resolve to nothing.
_COMMON_NAME = re.compile(r"\b((?:[A-Z][\w'’-]+\s){1,3}(?:Nebula|Galaxy|Cluster|Cloud))\b")
_WORD = re.compile(r"[A-Za-z0-9][\w'’+-]*")
_GREEK = set(GREEK.values())
# Capitalised words that start questions or name kinds of object, never an object alone.
_STOP = {"the", "a", "an", "what", "which", "where", "is", "are", "tell", "me", "about", "how", "why",
         "who", "and", "of", "in", "this", "that", "does", "do", "give", "describe", "can", "could",
         "please", "its", "it", "list", "show", "find", "compare", "spiral", "elliptical", "irregular",
         "lenticular", "barred", "planetary", "open", "globular", "dark", "emission", "reflection",
         "star", "galaxy", "nebula", "cluster", "i", "my", "you", "here", "there", "than", "with"}


def _overlaps(span, taken) -> bool:
    return any(a < span[1] and span[0] < b for a, b in taken)


def find_names(text: str, resolver=None) -> list[str]:
    """Object names mentioned in ``text``, in reading order, without repeats.

    Catalog designations (M57, NGC 6720, IC 434, HD 37043) are found by pattern. With a
    resolver, runs of up to four capitalised words ("Ring Nebula", "Whirlpool Galaxy",
    "Sirius", "alpha CMa") are looked up in it, longest first; capitalised phrases ending in
    Nebula/Galaxy/Cluster/Cloud are kept even when unknown, so they can be reported.
    """
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for m in _DESIGNATION.finditer(text):
        if m.group(2):
            found.append((m.start(), f"M{int(m.group(2))}"))
        elif m.group(4):
            found.append((m.start(), f"{m.group(3)} {int(m.group(4))}{m.group(5) or ''}"))
        else:
            found.append((m.start(), f"{m.group(6)} {int(m.group(7))}"))
        taken.append(m.span())
    if resolver is not None:
        words = list(_WORD.finditer(text))
        for n in (4, 3, 2, 1):
            for i in range(len(words) - n + 1):
                first = words[i].group()
                if first.lower() in _STOP or not (first[0].isupper() or first.lower() in _GREEK):
                    continue
                if n == 1 and (len(first) < 3 or first.isdigit()):
                    continue
                span = (words[i].start(), words[i + n - 1].end())
                if _overlaps(span, taken):
                    continue
                candidate = text[span[0]:span[1]]
                if candidate in resolver:
                    found.append((span[0], candidate))
                    taken.append(span)
    for m in _COMMON_NAME.finditer(text):
        parts = m.group(1).split()
        while parts and parts[0].lower() in _STOP:
            parts = parts[1:]
        if len(parts) < 2:
            continue  # "Nebula" alone, or "Planetary Nebula" as a kind, is not a name
        span = (m.end() - len(" ".join(parts)), m.end())
        if not _overlaps(span, taken):
            found.append((span[0], " ".join(parts)))
            taken.append(span)
    out, seen = [], set()
    for _, name in sorted(found):
        key = name.lower().replace(" ", "")
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out
