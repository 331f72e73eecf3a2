"""True/false and yes/no questions about general statements ("Is it true that globular
clusters are made of young stars?", "Is a pulsar a neutron star?"), judged against what
the literature says the statement's subject is: a verdict first, then the evidence; where
the definitions neither hold nor refute the claim, a plain "the sources here do not say",
never the claim restated.

The judgement is lexical and cautious. The subject is the longest run of the statement's
first words that a literature passage has as its title (the definitions: GCIDE, WordNet,
KStars AstroInfo). "True" needs every content word of the claim in the subject's
definitions; "false" needs a word of the definitions that is the opposite of one of the
claim's (old for young, cool for hot) while the claim's own word is absent. Anything else
is "the sources here do not say". A statement about a named object is not judged here: the
catalog verdicts (``catalog_answer.verdict_answer``) answer those from the card.

Used by ``direct.DirectAnswers``.
"""

from __future__ import annotations

import re

from astrovlm.assistant.explain import explanation_sentences, term_forms
from astrovlm.assistant.prompts import Source

STATEMENT = [re.compile(p, re.I) for p in (
    r"^\s*(?:is it (?:true|correct|right|the case) that|true or false\s*[:,-]?|"
    r"(?:is|are) the (?:following )?(?:statement|claim|sentence)s? (?:true|correct)\s*[:,-]?|"
    r"(?:is|are) (?:this|these|the following) (?:true|correct)\s*[:,-]?|fact or fiction\s*[:,-]?)"
    r"\s+(?P<s>.+?)\s*[?.!]*\s*$",
    r"^\s*(?P<s>.+?)\s*[.,:;-]?\s*(?:true or false|is (?:this|that|it) (?:true|correct|right)|"
    r"(?:true|right|correct)\s*\?)\s*[?.!]*\s*$",
)]
# "Is a pulsar a neutron star?", "Are quasars galaxies?", "Do white dwarfs shine by fusion?"
YES_NO = re.compile(r"^\s*(?P<aux>is|are|do|does|can|did)\s+(?P<s>.+?)\s*\?*\s*$", re.I)
COPULA = re.compile(r"^(?:is|are|was|were|has|have|can|do|does)\b\s*", re.I)
# Words a claim uses to hold its content, not content of its own.
FILLER = set("""a an the is are was were be been being of in on at to by for with from as and or that
this these those it its their there which who whom whose what all some most mostly mainly usually
typically generally always often very much many more less few largely primarily chiefly mainly made
composed consist consists consisting contain contains containing have has having can do does type kind
sort form one any each every such than like just only also called known""".split())
OPPOSITES = [("young", "old"), ("hot", "cool"), ("hot", "cold"), ("large", "small"), ("big", "small"),
             ("bright", "faint"), ("bright", "dim"), ("dense", "diffuse"), ("dense", "tenuous"),
             ("near", "distant"), ("nearby", "distant"), ("fast", "slow"), ("blue", "red"),
             ("massive", "low-mass"), ("high", "low"), ("inner", "outer"), ("early", "late")]
OPPOSITE = {}
for _a, _b in OPPOSITES:
    OPPOSITE.setdefault(_a, set()).add(_b)
    OPPOSITE.setdefault(_b, set()).add(_a)
VERDICT_WORD = re.compile(r"\b(?:yes|no|true|false|correct|incorrect|wrong|untrue|indeed)\b", re.I)
NOT_SAID = "The sources here do not say."


def statement_of(question: str) -> str | None:
    """The statement a true/false or yes/no question asks about ("pulsars are neutron stars"),
    or None."""
    for rx in STATEMENT:
        m = rx.match(question)
        if m and len(m.group("s").split()) >= 2:
            return m.group("s").strip()
    m = YES_NO.match(question)
    if m and len(m.group("s").split()) >= 2:
        return m.group("s").strip()  # "a pulsar a neutron star": the subject is split off later
    return None


def as_question(statement: str) -> str | None:
    """"M13 is in Hercules" -> "Is M13 in Hercules?": a statement about an object asked the
    way the catalog verdicts read it."""
    m = re.match(r"^(?P<x>.+?)\s+(?P<aux>is|are)\s+(?P<y>.+)$", statement.strip(), re.I)
    return f"{m.group('aux').capitalize()} {m.group('x')} {m.group('y')}?" if m else None


def _stem(word: str) -> str:
    w = word.lower().strip("'")
    for suffix in ("ies", "es", "s", "ed", "ing", "ly"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z\-]*", text.lower())


def split_subject(statement: str, titles: dict) -> tuple[str, str] | None:
    """(subject, claim) where the subject is the longest run of the first words (after an
    article) that is a passage title ("globular clusters" of "globular clusters are old")."""
    words = statement.split()
    if words and words[0].lower() in ("a", "an", "the", "all", "most", "some"):
        words = words[1:]
    for n in range(min(4, len(words) - 1), 0, -1):
        subject = " ".join(words[:n]).strip(",")
        if any(f in titles for f in term_forms(subject)):
            claim = COPULA.sub("", " ".join(words[n:]))
            return subject, claim
    return None


def judge(subject: str, claim: str, passages: list[Source], prefer=None) -> tuple[str | None, list[str], list[int]]:
    """(verdict "yes" / "no" / None, evidence sentences, the numbers of the passages they cite);
    ``prefer`` as for ``explain.explanation_sentences``."""
    sentences, used = explanation_sentences(subject, passages, prefer)
    if not sentences:
        return None, [], []
    subject_words = {_stem(w) for w in _words(subject)}
    content = [w for w in _words(claim) if w not in FILLER and len(w) > 1 and _stem(w) not in subject_words]
    if not content:
        return None, sentences, used
    # "a pulsar is a neutron star" claims a class: the definition's head must name it ("a
    # degenerate neutron star, ..."), not any later word ("a satellite of a planet" does not
    # make the Moon a planet); any other claim needs all its words in one sentence
    is_class = bool(re.match(r"(?:an?|the|one)\s", claim.strip(), re.I))
    scopes = [{_stem(w) for w in _words(_head(s) if is_class else s)} for s in sentences]
    if any(all(_stem(w) in scope for w in content) for scope in scopes):
        return "yes", sentences, used
    said = set().union(*scopes) if not is_class else {_stem(w) for s in sentences for w in _words(s)}
    for w in content:
        if _stem(w) not in said and any(_stem(o) in said for o in OPPOSITE.get(w, ())):
            return "no", sentences, used
    return None, sentences, used


def _head(sentence: str) -> str:
    """What a definition sentence says its subject is: the first words after "is"/"are"
    (up to a comma, a relative clause or ten words)."""
    m = re.search(r"\b(?:is|are)\s+(.*)", sentence)
    rest = m.group(1) if m else sentence
    rest = re.split(r",|;|\b(?:that|which|who|whose|where|with|in|of)\b", rest, maxsplit=1)[0]
    return " ".join(rest.split()[:10])


def verdict_sentences(verdict: str | None, subject: str, sentences: list[str]) -> list[str]:
    """The verdict first, then the evidence; no verdict: say so, with the evidence only when
    it holds no word that would read as a verdict."""
    if verdict == "yes":
        return ["Yes, that is true."] + sentences
    if verdict == "no":
        return ["No, that is not true."] + sentences
    evidence = [s for s in sentences if not VERDICT_WORD.search(s)]
    head = f"{NOT_SAID[:-1]} whether that holds" + (f"; what they say about {subject.lower()}:" if evidence else ".")
    return [head] + evidence
