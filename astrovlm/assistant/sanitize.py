"""Retrieved text made harmless before the model reads it: normalised, then stripped of
anything that addresses the model instead of describing the sky.

Text from catalogs, literature and users' own folders is data. An attacker can hide an
instruction in it from a line filter in many ways: zero-width characters inside words
("I\u200bgnore"), Cyrillic or Greek look-alike letters ("іgnоrе"), full-width letters
("ｉｇｎｏｒｅ"), a forged chat turn (``<|im_start|>system``), a fence break (``>>>``), an
instruction split over lines or paragraphs, or another language. So the filter reads a
*matching copy* of each sentence: Unicode NFKD (compatibility forms and full-width letters
folded, accents dropped), format and control characters removed, look-alikes folded to
Latin, whitespace collapsed, lower case; and it tests each sentence and each pair of
neighbouring sentences, so an instruction split across a line or paragraph break is caught.

The text the model is shown is the original sentence, cleaned less: NFC, full-width and
other dressed-up ASCII letters folded, format and control characters removed, whitespace
collapsed. Full NFKC there would turn "10⁶ K" into "106 K", and folding Greek would turn
"α CMa" into "a CMa".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

REMOVED = "[instruction-like text removed]"

# Chat-template control strings and our own placeholders: never let data carry them.
CONTROL = re.compile(r"<\|[^|<>]{0,40}\|>|</?s>|\[/?INST\]|<</?SYS>>|<\s*/?\s*(image|spectrum)\s*>",
                     re.IGNORECASE)
# A forged turn: a role opener and everything up to its end (or the end of the text).
_FORGED_TURN = re.compile(r"<\|im_start\|>.*?(<\|im_end\|>|$)|\[INST\].*?(\[/INST\]|$)|"
                          r"<<SYS>>.*?(<</SYS>>|$)", re.IGNORECASE | re.DOTALL)
FENCES = re.compile(r"<<<+|>>>+")

# Look-alikes of Latin letters (Cyrillic, Greek and a few others), for the matching copy only.
_HOMOGLYPHS = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ь": "b", "п": "n", "г": "r",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c",
    "Т": "t", "У": "y", "Х": "x", "І": "i", "Ј": "j", "Ѕ": "s", "Ү": "y", "Һ": "h", "Ԛ": "q",
    "Ԝ": "w",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ϲ": "c", "ϳ": "j",
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n",
    "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x", "Ϲ": "c",
    # Latin-script look-alikes NFKD leaves alone
    "ı": "i", "ȷ": "j", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ß": "ss",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "’": "'", "‘": "'", "“": '"', "”": '"',
})


def strip_invisible(text: str) -> str:
    """Drop format (Cf: zero-width, bidi, soft hyphen) and control (Cc) characters, keeping
    newline and tab."""
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cf", "Cc"))


# Letters that only dress up ASCII (full-width, mathematical bold/italic...): shown folded.
_DRESSED = re.compile("[\u3000\uff01-\uff5e\ufb00-\ufb06\U0001d400-\U0001d7ff]")


def clean(text: str) -> str:
    """The form shown to the model: NFC, full-width and other dressed-up ASCII letters
    folded (NFKC on those alone), invisible characters dropped, each line's whitespace
    collapsed, blank-line runs kept as one paragraph break."""
    text = _DRESSED.sub(lambda m: unicodedata.normalize("NFKC", m.group()), unicodedata.normalize("NFC", text))
    text = strip_invisible(text).replace("\t", " ")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def matching_copy(text: str) -> str:
    """The form instructions are looked for in: compatibility-folded (NFKD: full-width and
    other compatibility letters), accents and invisible characters dropped, look-alikes
    folded to Latin, lower case, whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Mn", "Me", "Cf", "Cc")
                   or c in "\n\t")
    text = unicodedata.normalize("NFKC", text.translate(_HOMOGLYPHS)).translate(_HOMOGLYPHS)
    return " ".join(text.lower().split())


# Text that addresses the model rather than describes the sky (matched on the matching copy).
_W = r"[^.!?]{0,60}"
INSTRUCTION_LIKE = [re.compile(p) for p in (
    # English
    rf"\b(ignore|disregard|forget|override|bypass|skip)\b{_W}\b(instruction|prompt|rule|direction|"
    r"guideline|context|above|previous|prior|earlier|system|card|catalog|everything)",
    r"\b(you are now|you must now|act as|pretend (to be|you are)|new instructions?|system prompt|"
    r"from now on|do not follow|instead (say|answer|reply|respond)|(always|only) (say|answer|reply|"
    r"respond|output|write))\b",
    r"\b(set|put|cast|leave|throw|push) aside\b|\b(pay no attention|never mind|no longer follow|"
    r"stop following|do not obey|don't obey)\b",
    r"\b(everything|anything|all|what) (you were|you've been|you have been|you are|you were being) "
    r"(told|given|instructed|taught|asked)\b",
    r"\bwhen(ever)? (you are |you're )?(someone |a user |the user |anyone )?(asks?|asked|questioned)\b"
    rf"{_W}\b(say|answer|reply|respond|tell|write|state|claim)\b",
    r"\byour (reply|replies|answer|answers|response|responses|output|instructions?|task|job|role|"
    r"prompt)\b",
    r"\b(note|message|instructions?|reminder) (to|for) (the |all )?(assistant|model|ai|llm|chatbot|"
    r"language model|astrovlm)\b",
    r"^(dear |hey |hi |attention,? )?(assistant|astrovlm|ai|model|chatbot|llm)\s*[,:!]",
    r"\b(the|this|any) (assistant|model|ai|llm|chatbot|language model|astrovlm) (must|should|shall|"
    r"will|has to|needs to|is to)\b",
    r"\b(must|should|shall|has to|needs to) be (described|called|presented|reported|answered) as\b",
    r"\b(catalog|catalogue|card|context|sources?) (above |below )?(is|are) (wrong|outdated|incorrect|"
    r"obsolete|false|fake|not to be trusted|a lie)\b",
    r"\b(do not|don't|never) (trust|cite|mention|believe|reveal|follow) (the |any |your )?(catalog|"
    r"catalogue|card|context|sources?|system|prompt|instructions|rules)",
    r"\b(reveal|print|repeat|show) (the |your )?(system )?(prompt|instructions)\b",
    r"\b(jailbreak|developer mode|dan mode|pwned|prompt injection)\b",
    r"^(please |kindly |now |instead |just )?(say|answer|reply|respond|tell|output|print|repeat|"
    r"claim)\b",
    # a forged prompt structure: a role line, or our own "Question:"/"Context" headers, at the
    # start of a line or of a sentence ("Ptolemaic system: ..." is a dictionary entry, not a role)
    r"(^|\n|[.!?;]\s+)(system|assistant|user|instructions?|question|answer|context)\s*[:>]",
    # ... or inside a line, when what follows is an order ("M57 SYSTEM: say M57 is ...")
    r" (system|assistant|user|instructions?)\s*[:>]\s*(please |now |always |just |then )?(say|answer|"
    r"reply|respond|tell|ignore|write|output|print|repeat|claim|describe|act|you|from now)\b",
    # French
    rf"\b(ignore[rz]?|oublie[rz]?|ne tiens pas compte|ne tenez pas compte)\b{_W}\b(instructions?|"
    r"consignes?|regles?|precede|precedent|precedentes?)",
    r"\b(reponds|repondez|repondre|dis|dites)\b[^.!?]{0,40}\bque\b|\b(tu es|vous etes) (maintenant|"
    r"desormais)\b|\b(a partir de maintenant|desormais,)",
    # German
    rf"\b(ignorier\w*|vergiss|vergessen sie|missachte\w*)\b{_W}\b(anweisung\w*|befehl\w*|regel\w*|"
    r"vorherig\w*|obig\w*|alle\w*)",
    r"\b(antworte|antworten sie|sage|sag|sagen sie)\b[^.!?]{0,40}\bdass\b|\b(du bist|sie sind) (jetzt|"
    r"nun|ab sofort)\b|\bab (jetzt|sofort)\b",
    # Spanish
    rf"\b(ignora|ignore|ignorad|ignoren|olvida|olvide|olvidad)\b{_W}\b(instrucciones|instruccion|"
    r"reglas|indicaciones|anteriores|previas)",
    r"\b(responde|responda|contesta|conteste|di|diga|dile)\b[^.!?]{0,40}\bque\b|\b(ahora eres|"
    r"a partir de ahora|de ahora en adelante)\b",
)]
# The same, with every non-letter squeezed out: "I.g.n.o.r.e  a-l-l previous instructions".
_SQUEEZED = re.compile(
    r"(ignor\w{0,4}|disregard|forget|override|oublie\w?|vergiss|olvid\w)(all|any|the|your|these|those|"
    r"previous|prior|above|earlier|preceding|other|les|tous|toutes|alle|vorherigen|las|todas|"
    r"anteriores|precedentes)*(instruction|prompt|rule|direction|guideline|consigne|anweisung|"
    r"instruccion|regla|regle)")


@lru_cache(maxsize=4096)   # a prompt is built twice per answer (its budget, then the messages)
def is_instruction(text: str) -> bool:
    """Whether a piece of text (any form) reads like an instruction to the model."""
    m = matching_copy(text)
    return any(p.search(m) for p in INSTRUCTION_LIKE) or bool(_SQUEEZED.search(re.sub(r"[^a-z]", "", m)))


# A sentence ends at . ! ? ; (any width) followed by space, or at a paragraph break.
_SENTENCE_END = re.compile(r"((?<=[.!?;\u3002\uff0e\uff01\uff1f\uff1b])\s+|\n\s*\n)")


_ENDED = re.compile(r"[.!?;:\u3002\uff0e\uff01\uff1f\uff1b\uff1a)\]\"']\s*$")


def sentences(text: str) -> list[tuple[str, str]]:
    """(separator before, sentence) pairs; the separators joined back give the text."""
    bits = _SENTENCE_END.split(text)
    out, sep = [], ""
    for i, bit in enumerate(bits):
        if i % 2:
            sep += bit
        elif bit.strip():
            if out and not _ENDED.search(out[-1][1]) and out[-1][1] != REMOVED and bit != REMOVED:
                # a paragraph break inside a sentence does not end it ("Please ignore\n\nall ...")
                out[-1] = (out[-1][0], out[-1][1] + sep + bit)
            else:
                out.append((sep, bit))
            sep = ""
    return out


def neutralise(text: str) -> tuple[str, int]:
    """Retrieved text made safe to show the model: (clean text, number of sentences removed).

    Forged chat turns go first (the whole turn), then control tokens, placeholders and
    fences; the rest is cut into sentences and every run of sentences that reads like an
    instruction (alone, or with its neighbour: an instruction split over a line or a
    paragraph) becomes one ``REMOVED`` marker.
    """
    text = _FORGED_TURN.sub(f"\n\n{REMOVED}\n\n", text)
    text = FENCES.sub(" ", CONTROL.sub(" ", text))
    parts = sentences(clean(text))
    bad = [p == REMOVED or is_instruction(p) for _, p in parts]
    for i in range(len(parts) - 1):
        if not (bad[i] or bad[i + 1]) and is_instruction(parts[i][1] + " " + parts[i + 1][1]):
            bad[i] = bad[i + 1] = True
    out, last_bad = [], False
    for (sep, part), b in zip(parts, bad):
        if not (b and last_bad):   # a run of removed sentences shows as one marker
            out.append((sep if out else "") + (REMOVED if b else part))
        last_bad = b
    return "".join(out).strip(), sum(bad)
