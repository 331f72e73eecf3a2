"""Lexical retrieval of passages (BM25 through SQLite's FTS5) and its fusion with dense hits.

Dense vectors find paraphrases; words find the passage that names the thing asked about
("what is a blackbody?" -> the passage that says "a blackbody refers to ..."), which a
135M-parameter model cannot invent. The assistant takes both lists, fuses them by
reciprocal rank (Cormack et al. 2009: no score scales to reconcile) and reranks the few
that survive (``astrovlm.assistant.context``).

FTS5 ships with Python's sqlite3: the index is built in memory when a dataset is opened
(about 50 ms for the sample's 1,200 passages) and needs no file of its own to keep in step.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable

# words that carry no topic: left out of the query so that BM25 ranks on the rest
STOPWORDS = frozenset("""
a about above after again all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers him his how i if in into is it its itself just me more
most my no nor not now of off on once only or other our out over own same she should so
some such than that the their them then there these they this those through to too under
until up very was we were what when where which while who whom why will with would you your
tell explain describe mean means meant called call know please define definition
""".split())

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def query_terms(text: str) -> list[str]:
    """The topic words of a question, lower case, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.split("'")[0]
        if len(word) > 1 and word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


class LexicalIndex:
    """BM25 over ``(passage_id, title, text)`` rows, with FTS5's Porter stemmer."""

    def __init__(self, passages: Iterable[tuple[str, str, str]]):
        # check_same_thread=False: the app answers from several threads; FTS5 reads are safe
        # on one connection that nothing writes to after it is built
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute("CREATE VIRTUAL TABLE passages USING fts5(pid UNINDEXED, title, body, "
                         "tokenize='porter unicode61')")
        self._db.executemany("INSERT INTO passages VALUES (?, ?, ?)",
                             ((pid, title or "", text or "") for pid, title, text in passages))
        self.size = self._db.execute("SELECT count(*) FROM passages").fetchone()[0]

    def search(self, query: str, k: int = 20) -> list[tuple[str, float]]:
        """``(passage_id, score)``, best first; the score is BM25's (higher is better; the
        title's words count twice). No topic words, no hits."""
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)  # quoted: a term is never FTS syntax
        rows = self._db.execute(
            "SELECT pid, bm25(passages, 2.0, 1.0) AS rank FROM passages WHERE passages MATCH ? "
            "ORDER BY rank LIMIT ?", (match, int(k))).fetchall()
        return [(pid, -float(rank)) for pid, rank in rows]  # FTS5's bm25 is "lower is better"


def reciprocal_rank_fusion(*rankings: list[str], k: int = 60) -> list[str]:
    """Ids ordered by sum(1 / (k + rank)) over the rankings they appear in (rank from 1)."""
    score: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            score[item] = score.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(score, key=lambda item: -score[item])
