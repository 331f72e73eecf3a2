"""The one name key of astrovlm: how two spellings of an object's name are compared.

The resolver, ingest (grouping files by their OBJECT card) and the index (an object id or a
stored name) all compare names through ``name_key``, so "NGC 0224", "ngc224", "NGC-224",
"M 31", "Messier 31" and "messier 031" each meet their twin whatever door they come in by.
The key ignores case, spaces, punctuation, zero padding and spelled-out catalog words
("Messier", "Sharpless", "Caldwell", Greek letters written out); a hyphen or a point between
two digits is kept, since it separates numbers ("Sh2-155", "BD+30 3639" stay distinct).
"""

from __future__ import annotations

import re
import unicodedata

# Greek letters as the catalogs abbreviate them (KStars, Bayer names): full -> short.
GREEK = {"alp": "alpha", "bet": "beta", "gam": "gamma", "del": "delta", "eps": "epsilon",
         "zet": "zeta", "eta": "eta", "the": "theta", "iot": "iota", "kap": "kappa",
         "lam": "lambda", "mu": "mu", "nu": "nu", "xi": "xi", "omi": "omicron", "pi": "pi",
         "rho": "rho", "sig": "sigma", "tau": "tau", "ups": "upsilon", "phi": "phi",
         "chi": "chi", "psi": "psi", "ome": "omega"}
_GREEK_FULL = {v: k for k, v in GREEK.items() if v != k}
_GREEK_RE = re.compile(r"\b(" + "|".join(_GREEK_FULL) + r")\b")
_WORDS = [(re.compile(p), r) for p, r in [
    (r"^the\s+", ""),
    (r"\bmessier\s*", "m"),
    (r"\b(sharpless|sh)\s*2?\s*-\s*", "sh2-"),
    (r"\bbarnard\s+(?=\d)", "b"),
    (r"\bcaldwell\s*", "c"),
    (r"\bmelotte\s*", "mel"),
    (r"\bcollinder\s*", "cr"),
]]
_DROP = re.compile(r"[^a-z0-9+\-.]")
_SEPARATOR = re.compile(r"(?<!\d)[\-.]|[\-.](?!\d)")   # - or . not between two digits
_ZERO_PAD = re.compile(r"(?<=[a-z])0+(?=\d)")          # ngc0224 -> ngc224

# OBJECT values that name a frame type, not a target: files are never grouped by them.
GENERIC_NAMES = {"", "object", "target", "unknown", "none", "test", "flat", "bias", "dark",
                 "sky", "arc", "comp", "lamp", "standard", "focus", "image", "spectrum"}


def name_key(text: str | None) -> str:
    """The comparison key of a name: "Messier 051", "M 51" and "m51" share "m51"."""
    if not text:
        return ""
    s = str(text)
    if not s.isascii():
        s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    s = s.lower().strip()
    for pattern, repl in _WORDS:
        s = pattern.sub(repl, s)
    s = _GREEK_RE.sub(lambda m: _GREEK_FULL[m.group(1)], s)
    s = _SEPARATOR.sub("", _DROP.sub("", s))
    return _ZERO_PAD.sub("", s)


def is_generic_name(text: str | None) -> bool:
    """True for an OBJECT card that names a frame type ("flat", "sky", "target"), not a target."""
    return name_key(text) in GENERIC_NAMES
