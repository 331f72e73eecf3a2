"""Explanations of concepts ("What is a pulsar?", "Explain redshift."), composed from the
literature the hybrid retrieval finds, not generated.

A definition is the passage's own words: the dictionary gloss of the term, or the opening
sentences of an encyclopaedia entry (KStars AstroInfo, the GNU Astronomy Utilities
manual) that names it. Two to four sentences from at most three passages, each citing its
source. The 135M-parameter model asked to do this shortens every definition to "a group
of stars" or swaps in a neighbouring one ("a globular cluster is a type of galaxy", the
issue's example); choosing is what retrieval and the reranker do well, and copying is
exact. A passage that does not name the term defines something else and is not used;
with none left the question goes to the ordinary path, whose answer says the sources do
not say. Retrieved text is neutralised first: an instruction in a passage is never copied.

Used by ``direct.DirectAnswers``.
"""

from __future__ import annotations

import re

from astrovlm.assistant.prompts import Source
from astrovlm.assistant.sanitize import REMOVED, neutralise
from astrovlm.data.cards import article

EXPLAIN = re.compile(
    r"^\s*(?:(?:can you |could you |please )?(?:explain|define|describe)(?: to me)?(?: what)?"
    r"(?: (?:is|are))?|what(?:'s| is| are)(?: meant by)?|what does(?: the (?:term|word))?"
    r"|what do(?: the (?:terms|words))?|(?:give me |tell me )?(?:the |a )?(?:definition|meaning) of)\s+"
    r"(?:an? |the )?(?P<term>[^?.!]{2,60}?)(?:\s+(?:means?|stands? for))?\s*[?.!]*\s*$", re.I)
# Questions of these shapes ask about one object's facts, a list or a number, not a concept.
NOT_A_CONCEPT = re.compile(r"\b(?:redshift|magnitude|distance|size|type|constellation|position|"
                           r"coordinates?) of\b|\bhow (?:many|far|big|bright)\b|\bin (?:the )?"
                           r"(?:constellation|sky)\b", re.I)
MAX_SENTENCES, MAX_PASSAGES, SENTENCE_CHARS = 4, 3, 320


def concept_term(question: str) -> str | None:
    """The term a "what is ...?" question asks to be explained, or None."""
    if NOT_A_CONCEPT.search(question):
        return None
    m = EXPLAIN.match(question)
    if not m:
        return None
    term = re.sub(r"^(?:an?|the)\s+", "", m.group("term").strip(), flags=re.I)
    term = re.sub(r"\s+(?:is|are|means?)$", "", term, flags=re.I)  # "explain what a pulsar is"
    return term if re.search(r"[A-Za-z]{2}", term) else None


def _plain(text: str) -> str:
    """Lower case, hyphens as spaces, one space between words: how terms are compared."""
    return " ".join(text.lower().replace("-", " ").split())


def term_forms(term: str) -> list[str]:
    """The term and its singular or plural ("white dwarfs" / "white dwarf", "nebulae"), in
    ``_plain`` form."""
    t = _plain(term)
    forms = {t}
    for a, b in (("ae", "a"), ("ies", "y"), ("es", ""), ("s", "")):
        if t.endswith(a):
            forms.add(t[: len(t) - len(a)] + b)
    if not t.endswith("s"):
        forms.add(t + "s")
    return sorted(forms, key=len, reverse=True)


def _names(text: str, forms: list[str]) -> bool:
    low = text.lower().replace("-", " ")
    return any(re.search(r"(?<![a-z])" + re.escape(f) + r"(?![a-z])", low) for f in forms)


_ENTRY = re.compile(r"^(?P<head>[^:()\n]{1,60}?)\s*(?:\(also:(?P<also>[^)]*)\))?\s*:\s*(?P<gloss>.+)$", re.S)


def _defines(sentence: str, forms: list[str]) -> bool:
    """A sentence that says what the term is ("A pulsar is ...", "... is called a pulsar")."""
    low = _plain(sentence)
    for f in forms:
        f = re.escape(f)
        if re.search(rf"^(?:an?\s+|the\s+)?{f}\s+(?:is|are|refers? to|means?|was)\b", low) \
                or re.search(rf"\b(?:called|known as|termed)\s+(?:an?\s+|the\s+)?{f}\b", low):
            return True
    return False


def _sentences(text: str) -> list[str]:
    text = " ".join(text.split())
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text) if s.strip()]


def _short(sentence: str) -> str:
    if len(sentence) <= SENTENCE_CHARS:
        return sentence
    return sentence[:SENTENCE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "..."


def _definition(src: Source, term: str, forms: list[str]) -> list[str]:
    """What one passage says the term is: a dictionary gloss ("pulsar: a radio source that
    ...") as "A pulsar is a radio source that ..."; from an entry titled with the term, its
    sentences from the first that names it (two at most); from any other passage, only a
    sentence that says what the term is ("A pulsar is ..."), not a passing mention."""
    text, _ = neutralise(src.text)
    title = _plain(src.title or "")
    entry = _ENTRY.match(text)
    heads = [entry.group("head"), *(entry.group("also") or "").split(",")] if entry else []
    if entry and (any(_plain(h) in forms for h in heads) or title in forms):
        gloss = re.sub(r"^\s*(?:\((?:astronomy|astrophysics|astron\.?)\)\s*|1\.\s*)", "", entry.group("gloss"))
        senses = [g.strip() for g in re.split(r";|\s\(\d\)\s|\s\d\.\s", gloss) if g.strip()]
        if senses and REMOVED not in senses[0]:
            first = senses[0].rstrip(".")
            first = first[0].lower() + first[1:] if re.match(r"(?:A|An|The|Any|One)\b", first) else first
            name = entry.group("head").strip()
            if _plain(name) not in forms or len(_plain(name)) > len(_plain(term)) + 2:
                name = term
            # "a pulsar is a ...", "albedo is the ratio ..."
            lead = f"{article(name)} {name.lower()}" if re.match(r"(?:an?|any|one)\b", first) else name.lower()
            return [f"{lead[0].upper()}{lead[1:]} is {first}."]
    if title not in forms:  # not an entry on the term: only a sentence that says what it is
        return [_short(s) for s in _sentences(text.replace(REMOVED, " ")) if _defines(s, forms)][:1]
    picked: list[str] = []
    for s in _sentences(text.replace(REMOVED, " ")):  # a removed instruction is no sentence
        if picked or _names(s, forms):
            picked.append(_short(s))
        if len(picked) == 2:
            break
    return picked


def explanation_sentences(term: str, passages: list[Source], prefer=None) -> tuple[list[str], list[int]]:
    """(sentences, the 1-based numbers of the passages they cite) for the term from the
    ranked passages, each sentence citing its passage's number in ``passages`` (all of them
    are the answer's sources); empty when none of them names the term. ``prefer``: a test
    of a passage; only when no preferred passage names the term are the others quoted (a
    user's own notes, where the built-in literature has nothing on it)."""
    if prefer is not None:
        got = _quote(term, passages, lambda src: bool(prefer(src)))
        return got if got[0] else _quote(term, passages, lambda src: True)
    return _quote(term, passages, lambda src: True)


def _quote(term: str, passages: list[Source], allowed) -> tuple[list[str], list[int]]:
    forms = term_forms(term)
    sentences: list[str] = []
    used: list[int] = []
    for n, src in enumerate(passages, 1):
        if src.kind != "literature" or not allowed(src) \
                or not (_names(src.title or "", forms) or _names(src.text, forms)):
            continue
        got = [s for s in _definition(src, term, forms) if s not in sentences]
        room = MAX_SENTENCES - len(sentences)
        if not got or room <= 0:
            continue
        used.append(n)
        sentences += [_cite(s, n) for s in got[:room]]
        if len(used) >= MAX_PASSAGES or len(sentences) >= MAX_SENTENCES:
            break
    return sentences, used


def removed_instructions(passages: list[Source]) -> int:
    """How many instruction-like sentences the passages held (none of them is quoted)."""
    return sum(neutralise(src.text)[1] for src in passages)


def _cite(sentence: str, n: int) -> str:
    """"X is Y." -> "X is Y [n].", as every composed answer cites."""
    s = sentence.rstrip()
    if s.endswith(".") and not s.endswith("..."):
        return f"{s[:-1]} [{n}]."
    return f"{s} [{n}]"
