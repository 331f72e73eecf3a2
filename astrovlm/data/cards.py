"""Catalog cards: a short factual description of an object, written from its catalog fields.

A card states only what the catalog holds (type, constellation, position, magnitudes, size,
redshift, catalog notes) and leaves out every field that is missing, e.g.

    M57 (NGC 6720, Ring Nebula) is a planetary nebula in Lyra at RA 18h53m35.0s,
    Dec +33d01m42.9s (ICRS). V magnitude 8.8; B magnitude 9.7; size 1.3 arcmin.

Cards are the text side of every object, so the encoders and the assistant learn facts
that are true by construction.
"""

from __future__ import annotations

import re

from astrovlm.data.records import SkyObject

# Aliases worth naming in a card: catalog designations people use, and common names.
_SHOWN = re.compile(r"^(M\d|NGC |IC |Caldwell |Mel |B \d|Sh2-|LDN |LBN |HD |[a-z]{2,3}\d? [A-Z][a-z]{2}$)")


def article(words: str | None) -> str:
    """"a" or "an" before ``words``; "an HII region": the letter H is read "aitch"."""
    words = words or ""
    return "an" if words[:1].lower() in "aeiou" or words.startswith(("HII", "H II")) else "a"


def _shown_aliases(obj: SkyObject, limit: int = 3, fill: bool = False) -> list[str]:
    """Names for the card's parentheses: common names and the designations people use.
    ``fill`` tops the list up with the other catalog designations (PGC, UGC, MWSC, PN G, ...;
    2MASX last, being long), so that an object without a common name still has its
    cross-identifications on the card the assistant reads."""
    from astrovlm.data.resolver import name_key

    out, keys, rest = [], {name_key(obj.name)}, []
    for a in obj.aliases:
        if name_key(a) in keys:  # "alpha CMa" repeats "alp CMa"
            continue
        keys.add(name_key(a))
        # A common name has no digits ("Ring Nebula"); designations must look like one.
        if _SHOWN.match(a) or not re.search(r"\d", a):
            out.append(a)
        else:
            rest.append(a)
        if len(out) == limit:
            return out
    if fill:
        rest.sort(key=lambda a: a.startswith("2MASX"))  # stable: catalog order otherwise
        out += rest[:limit - len(out)]
    return out


def format_number(value: float, digits: int = 2) -> str:
    """As a card writes numbers: at most ``digits`` decimals, no trailing zeros, no "-0"."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def position_text(ra_deg: float, dec_deg: float) -> str:
    from astropy.coordinates import Angle
    import astropy.units as u

    ra = Angle(ra_deg, u.deg).to_string(unit=u.hourangle, sep="hms", precision=1, pad=True)
    dec = Angle(dec_deg, u.deg).to_string(unit=u.deg, sep="dms", precision=1, alwayssign=True, pad=True)
    return f"RA {ra}, Dec {dec} (ICRS)"


def catalog_card(obj: SkyObject, every_designation: bool = False) -> str:
    """The card of one object: one or two sentences of catalog facts. ``every_designation``
    names up to three cross-identifications even where no common name or NGC/IC/HD number
    exists (the assistant's cards: "What else is NGC 1023 called?" needs them)."""
    names = _shown_aliases(obj, fill=every_designation)
    head = obj.name + (f" ({', '.join(names)})" if names else "")
    kind = obj.otype
    if obj.otype == "star" and obj.spectral_type:
        kind = f"star of spectral type {obj.spectral_type}"
    sentence = f"{head} is {article(kind)} {kind}"
    if obj.hubble_type and obj.otype != "star":
        sentence += f" (Hubble type {obj.hubble_type})"
    if obj.constellation:
        sentence += f" in {obj.constellation}"
    if obj.ra_deg is not None and obj.dec_deg is not None:
        sentence += f" at {position_text(obj.ra_deg, obj.dec_deg)}"
    facts = []
    if obj.v_mag is not None:
        facts.append(f"V magnitude {format_number(obj.v_mag)}")
    if obj.b_mag is not None:
        facts.append(f"B magnitude {format_number(obj.b_mag)}")
    if obj.major_axis_arcmin:
        size = format_number(obj.major_axis_arcmin, 1)
        if obj.minor_axis_arcmin:
            size += f" x {format_number(obj.minor_axis_arcmin, 1)}"
        facts.append(f"size {size} arcmin")
    if obj.redshift is not None and obj.otype != "star":
        facts.append(f"redshift {format_number(obj.redshift, 6)}")
    text = sentence + "."
    if facts:
        joined = "; ".join(facts)
        text += " " + joined[0].upper() + joined[1:] + "."
    if obj.notes and len(obj.notes) <= 200:
        label = "Catalog note" if obj.source == "OpenNGC" else "Note"
        text += f" {label}: {obj.notes.rstrip('.')}."
    return text
