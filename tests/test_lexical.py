"""Literature retrieval by words and vectors together: BM25 (SQLite FTS5), rank fusion, and
the assistant's passages for questions about no particular object."""

from __future__ import annotations

import pytest

from astrovlm.index.lexical import LexicalIndex, query_terms, reciprocal_rank_fusion

PASSAGES = [
    ("p1", "Blackbody Radiation", "A blackbody refers to an opaque object that emits thermal radiation."),
    ("p2", "The Ecliptic", "The ecliptic is the great circle along which the Sun appears to move."),
    ("p3", "Star Colors", "Cool stars radiate most of their energy in the red; hot stars look blue."),
    ("p4", "", "Telescopes gather light. A bigger mirror gathers more light than a small one."),
]


def test_bm25_finds_the_passage_that_names_the_term():
    index = LexicalIndex(PASSAGES)
    assert index.size == 4
    assert index.search("What is a blackbody?")[0][0] == "p1"
    assert index.search("Why do the hot stars look blue?")[0][0] == "p3"
    # the Porter stemmer: "mirrors" and "gathering" find "mirror" and "gathers"
    assert index.search("mirrors gathering")[0][0] == "p4"
    scores = [score for _, score in index.search("the Sun and the ecliptic circle")]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0


def test_questions_without_topic_words_or_with_query_syntax_are_safe():
    index = LexicalIndex(PASSAGES)
    assert index.search("What is it?") == [] and index.search("") == []
    # FTS5 operators and quotes in a question are words, never syntax (no sqlite error)
    for question in ('blackbody" OR "x', "NEAR(blackbody ecliptic)", "black* AND NOT body",
                     "col:blackbody", "'); DROP TABLE passages; --"):
        index.search(question)
    assert index.search('blackbody" OR "x')[0][0] == "p1"
    assert query_terms("What's the Sun's path, the ecliptic?") == ["sun", "path", "ecliptic"]


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = reciprocal_rank_fusion(["a", "b", "c"], ["c", "a", "d"])
    assert fused[0] == "a" and fused.index("c") < fused.index("b") and set(fused) == set("abcd")
    assert reciprocal_rank_fusion([], []) == []


@pytest.fixture(scope="module")
def builder(sample_sky, test_home):
    from astrovlm import Sky
    from astrovlm.assistant.context import ContextBuilder

    sky = Sky.open(home=test_home, progress=False)
    return ContextBuilder(sky.dataset, sky.retriever, sky.resolver)


def test_a_concept_question_gets_the_passage_that_defines_it(builder):
    from astrovlm.assistant.context import is_sky_culture

    got = builder.gather("What is a blackbody?").sources
    assert got and all(s.kind == "literature" for s in got)
    assert "blackbody" in got[0].text.lower()[:200]
    # physics is not answered from sky lore; a question about lore may be
    physics = builder.gather("Why are some stars red and others blue?").sources
    assert physics and not any(is_sky_culture(builder._passages[s.id]) for s in physics)
    question = "What stories did ancient cultures tell about the Big Dipper?"
    lore = builder._hybrid_literature(question, builder.retriever.encode_query(text=question)[0], set(), 6)
    assert any(is_sky_culture(builder._passages[s.id]) for s in lore)
