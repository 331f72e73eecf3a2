"""A header's values parsed from the file's own header bytes, for the readers' look-ups.

Each look-up through astropy's ``Header`` parses its ``Card`` and consults astropy's
configuration a few times, about 15 microseconds; a reader asks for 30 to 60 keywords
(positions, wavelength solution, the metadata it keeps), most of them absent, and that
was a third of the time of reading an IRAF spectrum. ``HeaderValues`` reads the header's
cards once, splits keyword from value, and parses a value when it is first asked for.

Only the plain forms are parsed here: quoted strings (``''`` for a quote), ``T``/``F``,
integers and reals (``D`` exponents too). Anything else (complex values, a blank value,
a long string continued with ``CONTINUE``, HIERARCH or lower-case keywords, bytes that are
not ASCII, a card without ``= `` in columns 9-10) is left to astropy, so every answer is
astropy's answer.
"""

from __future__ import annotations

import re

CARD = 80
ASK_ASTROPY = object()   # the value is there but not in a form parsed here

_INT = re.compile(r"[+-]?\d+")
_REAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?")
_STRING = re.compile(r"'((?:[^']|'')*)'\s*(/.*)?")
_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")
# astropy rewrites these as it scales the data it reads (BSCALE/BZERO go, BITPIX becomes -32)
_ASTROPY_REWRITES = frozenset(("BITPIX", "BSCALE", "BZERO", "BLANK"))


class HeaderValues:
    """``get(keyword)``: the card's value as astropy would give it, ``None`` when the
    header has no such keyword, or ``ASK_ASTROPY``. The first card of a keyword counts, as
    in astropy."""

    def __init__(self, raw: bytes):
        self._raw: dict[str, str] = {}   # keyword -> the card's value field, unparsed
        self._present: set[str] = set()  # every keyword, value card or not
        self._parsed: dict[str, object] = {}
        text = raw.decode("ascii", "replace")
        for i in range(0, len(text) - CARD + 1, CARD):
            key = text[i:i + 8].rstrip()
            if key == "END":
                break
            self._present.add(key.strip().upper())  # astropy's keyword, however it is written
            if key not in self._raw and text[i + 8:i + 10] == "= ":
                self._raw[key] = text[i + 10:i + CARD]

    def get(self, keyword: str, as_written: bool = False):
        """``as_written``: BITPIX, BSCALE, BZERO and BLANK too, as the file has them (astropy's
        header loses them once it scales the data)."""
        if keyword in _ASTROPY_REWRITES and not as_written:
            return ASK_ASTROPY
        if keyword in self._parsed:
            return self._parsed[keyword]
        if not _KEYWORD.fullmatch(keyword):
            return ASK_ASTROPY  # HIERARCH, lower case: astropy's keyword rules
        field = self._raw.get(keyword)
        if field is None:
            value = ASK_ASTROPY if keyword in self._present else None
        else:
            value = _parse(field)
        self._parsed[keyword] = value
        return value


def _parse(field: str):
    if "\ufffd" in field:
        return ASK_ASTROPY
    text = field.strip()
    if text.startswith("'"):
        m = _STRING.fullmatch(text)
        if not m:
            return ASK_ASTROPY
        value = m.group(1).replace("''", "'").rstrip()
        return ASK_ASTROPY if value.endswith("&") else value  # may continue (CONTINUE)
    value = text.split("/", 1)[0].rstrip()
    if value in ("T", "F"):
        return value == "T"
    if _INT.fullmatch(value):
        return int(value)
    if _REAL.fullmatch(value):
        return float(value.replace("D", "E").replace("d", "e"))
    return ASK_ASTROPY  # blank (undefined), complex, or not FITS
