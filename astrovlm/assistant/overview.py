"""Object overviews and comparisons, composed from catalog facts (not generated).

"Tell me about M92." deserves everything its card holds: type, constellation, position,
brightness, size, Hubble type, redshift, other names, and a sentence on what such an
object is. "Compare M49 and M51." deserves the facts side by side and what differs. Both
are statements of the sources' own values, so they are composed here, sentence by sentence,
each citing the numbered source it comes from; a 135M-parameter model asked to do this
drops most facts and invents comparisons (the issue's "M51 has HOLM 413B [2]").

Used by ``direct.DirectAnswers``; ``facts`` here take a ``SkyObject``.
"""

from __future__ import annotations

import re

from astrovlm.assistant.prompts import Source
from astrovlm.data.cards import article, format_number
from astrovlm.data.simulate import C_KMS

OVERVIEW = re.compile(
    r"^\s*(?:(?:can you |could you |please )?(?:tell me|tell us)(?: (?:all|everything|more|a bit|a little))?"
    r"(?: (?:you know|there is))? about|describe|give me (?:an? )?(?:overview|summary|rundown) of|"
    r"(?:an? )?(?:overview|summary) of|what do (?:you|we) know about|what can you tell me about|"
    r"what(?:'s| is) known about|info(?:rmation)? (?:on|about))\b", re.I)
COMPARE = re.compile(r"\b(?:compare|comparison|compared|versus|vs\.?|differences?|differ|"
                     r"contrast|similarities|alike)\b", re.I)


def wants_overview(question: str) -> bool:
    return bool(OVERVIEW.search(question))


def wants_comparison(question: str) -> bool:
    return bool(COMPARE.search(question))




def kind_of(obj) -> str:
    if obj.otype == "star" and obj.spectral_type:
        return f"star of spectral type {obj.spectral_type}"
    return obj.otype or obj.coarse_class or "object"


def overview_sentences(obj, card: int, literature: int | None = None, what_it_is: str | None = None,
                       position: str | None = None) -> list[str]:
    """The overview of one object, citing its card as ``[card]``; ``what_it_is`` (a sentence
    from a literature passage numbered ``literature``) says what such an object is."""
    cite = f" [{card}]"  # before the full stop, as every composed answer cites
    kind = kind_of(obj)
    first = f"{obj.name} is {article(kind)} {kind}"
    if obj.hubble_type and obj.otype != "star":
        first += f" of Hubble type {obj.hubble_type}"
    if obj.constellation:
        first += f" in the constellation {obj.constellation}"
    out = [first + cite + "."]
    if position:
        out.append(f"It lies at {position}{cite}.")
    seen = []
    if obj.v_mag is not None:
        seen.append(f"visual magnitude {format_number(obj.v_mag)}")
    elif obj.b_mag is not None:
        seen.append(f"blue magnitude {format_number(obj.b_mag)}")
    if obj.major_axis_arcmin:
        size = format_number(obj.major_axis_arcmin, 1)
        if obj.minor_axis_arcmin:
            size += f" x {format_number(obj.minor_axis_arcmin, 1)}"
        seen.append(f"an apparent size of {size} arcmin")
    if seen:
        out.append(f"It has {' and '.join(seen)}{cite}.")
    if obj.redshift is not None and obj.otype != "star":
        if _extragalactic(obj):
            out.append(f"Its redshift is {format_number(obj.redshift, 6)}{cite}.")
        else:  # a Milky Way object's catalog redshift is its line-of-sight velocity, cz
            out.append(f"Its catalog redshift of {format_number(obj.redshift, 6)} is a radial velocity of "
                       f"{obj.redshift * C_KMS:+.0f} km/s{cite}.")
    names = [a for a in (obj.aliases or []) if a and a != obj.name][:4]
    if names:
        out.append(f"It is also known as {', '.join(names)}{cite}.")
    if what_it_is and literature is not None:
        out.append(f"{what_it_is.rstrip('.')} [{literature}].")
    return out


def _extragalactic(obj) -> bool:
    return obj.coarse_class in ("galaxy", "quasar")


def first_sentence(text: str, limit: int = 300) -> str:
    """A passage's opening sentence (what a definition or an encyclopaedia entry leads with)."""
    text = " ".join(text.split())
    m = re.search(r"(?<=[.!?])\s+(?=[A-Z])", text)
    sentence = text[:m.start()] if m else text
    return sentence[:limit].rsplit(" ", 1)[0] + "..." if len(sentence) > limit else sentence


def comparison_sentences(objs: list, cites: list[int]) -> list[str]:
    """Two or three objects side by side: each one's facts (citing its card), then what
    differs: type, constellation, brightness, apparent size, redshift."""
    out = []
    for obj, n in zip(objs, cites):
        facts = [f"{article(kind_of(obj))} {kind_of(obj)}"]
        if obj.constellation:
            facts.append(f"in {obj.constellation}")
        parts = []
        if obj.v_mag is not None:
            parts.append(f"magnitude {format_number(obj.v_mag)}")
        if obj.major_axis_arcmin:
            parts.append(f"{format_number(obj.major_axis_arcmin, 1)} arcmin across")
        if obj.redshift is not None and _extragalactic(obj):
            parts.append(f"redshift {format_number(obj.redshift, 6)}")
        text = f"{obj.name} is {' '.join(facts)}"
        if parts:
            text += f" ({', '.join(parts)})"
        out.append(text + f" [{n}].")
    refs = "".join(f" [{n}]" for n in cites)
    kinds = {kind_of(o) for o in objs}
    if len(kinds) == 1:
        out.append(f"They are the same kind of object: {_plural(kinds.pop())}{refs}.")
    else:
        out.append(f"They are different kinds of object: {_list([f'{o.name} {article(kind_of(o))} {kind_of(o)}' for o in objs])}{refs}.")
    constellations = [o.constellation for o in objs]
    if all(constellations):
        if len(set(constellations)) == 1:
            out.append(f"Both lie in {constellations[0]}{refs}." if len(objs) == 2
                       else f"All lie in {constellations[0]}{refs}.")
    bright = [(o.v_mag, o.name) for o in objs if o.v_mag is not None]
    if len(bright) == len(objs):
        bright.sort()
        if bright[0][0] == bright[-1][0]:
            out.append(f"They are equally bright (magnitude {format_number(bright[0][0])}){refs}.")
        else:
            out.append(f"{bright[0][1]} is the brightest (magnitude {format_number(bright[0][0])} against "
                       f"{_list([format_number(m) for m, _ in bright[1:]])}; a lower magnitude is brighter){refs}."
                       if len(objs) > 2 else
                       f"{bright[0][1]} is brighter (magnitude {format_number(bright[0][0])} against "
                       f"{format_number(bright[1][0])}; a lower magnitude is brighter){refs}.")
    sizes = [(o.major_axis_arcmin, o.name) for o in objs if o.major_axis_arcmin]
    if len(sizes) == len(objs):
        sizes.sort(reverse=True)
        if sizes[0][0] != sizes[-1][0]:
            out.append(f"{sizes[0][1]} looks {'the largest' if len(objs) > 2 else 'larger'} on the sky "
                       f"({format_number(sizes[0][0], 1)} arcmin against {_list([format_number(s, 1) for s, _ in sizes[1:]])}){refs}.")
    shifts = [(o.redshift, o.name) for o in objs if o.redshift is not None and _extragalactic(o)]
    if len(shifts) == len(objs) and len(objs) > 1:
        shifts.sort(reverse=True)
        if shifts[0][0] != shifts[-1][0]:
            out.append(f"{shifts[0][1]} has the {'highest' if len(objs) > 2 else 'higher'} redshift "
                       f"({format_number(shifts[0][0], 6)} against {_list([format_number(z, 6) for z, _ in shifts[1:]])}){refs}.")
    return out


def _plural(kind: str) -> str:
    if kind.startswith("star of spectral type"):
        return "stars"
    if kind.endswith("nebula"):
        return kind + "e"
    if kind.endswith("galaxy"):
        return kind[:-1] + "ies"
    return kind + "s"


def _list(items: list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def class_definition(sources: list[Source], obj) -> tuple[Source, str] | None:
    """Among literature sources, one that defines the object's kind: its title names the
    kind (or the coarse class) and its opening sentence says what that is."""
    wanted = {w for w in (obj.otype, obj.coarse_class) if w}
    for src in sources:
        if src.kind != "literature":
            continue
        title = (src.title or "").lower().strip()
        if any(title == w.lower() or title.rstrip("s") == w.lower() for w in wanted):
            head, sep, gloss = src.text.partition(":")
            if sep and len(head) <= 80:   # a dictionary entry, "planetary nebula: a nebula that ..."
                kind = (src.title or head).strip()
                return src, f"{article(kind).capitalize()} {kind.lower()} is {first_sentence(gloss.strip())}"
            return src, first_sentence(src.text)
    return None
