"""Overviews and comparisons composed from catalog facts: every fact the card holds, each
sentence citing its source, and what differs between objects stated from their values."""

from __future__ import annotations

from astrovlm.assistant.overview import (
    class_definition, comparison_sentences, overview_sentences, wants_comparison, wants_overview)
from astrovlm.assistant.prompts import Source
from astrovlm.data.records import SkyObject

GLOBULAR = SkyObject("NGC6205", "M13", "globular cluster", "globular cluster", 250.42, 36.46,
                     aliases=["NGC 6205", "Hercules Globular Cluster"], constellation="Hercules",
                     v_mag=5.8, major_axis_arcmin=16.6)
SPIRAL = SkyObject("NGC5194", "M51", "spiral galaxy", "galaxy", 202.47, 47.19, aliases=["NGC 5194"],
                   constellation="Canes Venatici", hubble_type="Sc", v_mag=8.4, redshift=0.00154,
                   major_axis_arcmin=13.7, minor_axis_arcmin=11.7)
ELLIPTICAL = SkyObject("NGC4472", "M49", "elliptical galaxy", "galaxy", 187.44, 8.0,
                       constellation="Virgo", hubble_type="E2", v_mag=8.4, redshift=0.00333,
                       major_axis_arcmin=10.2)


def test_questions_that_ask_for_an_overview_or_a_comparison():
    for q in ("Tell me about M92.", "tell me everything you know about the Ring Nebula",
              "Describe NGC 7331", "What do you know about M31?", "Give me an overview of M13"):
        assert wants_overview(q), q
    for q in ("What is M13?", "Where is M57?", "How far is M31?"):
        assert not wants_overview(q), q
    assert wants_comparison("Compare M49 and M51.") and wants_comparison("M31 vs M33")
    assert wants_comparison("What is the difference between M13 and M92?")
    assert not wants_comparison("Tell me about M51.")


def test_an_overview_states_every_fact_of_the_card_and_cites_it():
    text = " ".join(overview_sentences(SPIRAL, card=1, position="RA 13h29m52s, Dec +47d11m43s"))
    for fact in ("spiral galaxy", "Hubble type Sc", "Canes Venatici", "13h29m52s", "8.4",
                 "13.7 x 11.7 arcmin", "0.00154", "NGC 5194"):
        assert fact in text, fact
    assert all(s.endswith("[1].") for s in overview_sentences(SPIRAL, card=1))
    # a star cluster has no redshift sentence, and its kind is not dressed as a galaxy's
    cluster = " ".join(overview_sentences(GLOBULAR, card=2))
    assert "redshift" not in cluster and "Hubble" not in cluster and "globular cluster" in cluster
    # a Milky Way object's catalog redshift is stated as what it is: a radial velocity
    moving = " ".join(overview_sentences(GLOBULAR.__class__(**{**GLOBULAR.__dict__, "redshift": -0.000815}), card=1))
    assert "radial velocity of -244 km/s" in moving


def test_the_class_sentence_comes_from_a_literature_passage_that_defines_the_kind():
    defn = Source("wordnet:1", "planetary nebula", "literature",
                  "planetary nebula: a nebula that was once thought to be a star with its planets. More.")
    other = Source("kstars:x", "Dark Matter", "literature", "Dark matter is not a nebula.")
    nebula = SkyObject("NGC6720", "M57", "planetary nebula", "planetary nebula", 283.4, 33.03)
    src, sentence = class_definition([other, defn], nebula)
    assert src is defn and sentence.startswith("A planetary nebula is a nebula that")
    assert class_definition([other], nebula) is None
    told = overview_sentences(nebula, card=1, literature=2, what_it_is=sentence)
    assert told[-1].endswith("[2].") and "nebula that was once" in told[-1]


def test_a_comparison_says_what_differs_from_the_values():
    text = " ".join(comparison_sentences([ELLIPTICAL, SPIRAL], [1, 2]))
    assert "M49 is an elliptical galaxy in Virgo" in text and "M51 is a spiral galaxy" in text
    assert "different kinds of object" in text
    assert "equally bright (magnitude 8.4)" in text       # both V 8.4: no false "brighter"
    assert "M49 looks larger" not in text and "M51 looks larger on the sky" in text
    assert "M49 has the higher redshift" in text
    same = " ".join(comparison_sentences([GLOBULAR, GLOBULAR.__class__(**{**GLOBULAR.__dict__,
                                                                           "name": "M92", "v_mag": 6.4})], [1, 2]))
    assert "same kind of object: globular clusters" in same and "Both lie in Hercules" in same
    assert "M13 is brighter (magnitude 5.8 against 6.4" in same


def test_the_assistant_answers_overviews_and_comparisons_from_the_cards(sample_sky):
    from astrovlm.assistant.rag import Assistant

    assistant = Assistant(None, sample_sky)   # no language model: these answers are composed
    m92 = assistant.ask("Tell me about M92.")
    obj = sample_sky.get_object(m92.objects[0])
    assert obj.name == "M92" and m92.timings["composed"]
    for fact in ("globular cluster", obj.constellation, f"{obj.v_mag:g}", "NGC 6341"):
        assert fact in m92.text, fact
    assert [s["kind"] for s in m92.sources][0] == "catalog_card" and m92.sources[0]["cited"]
    both = assistant.ask("Compare M49 and M51.")
    assert {sample_sky.get_object(o).name for o in both.objects} == {"M49", "M51"}
    assert "different kinds of object" in both.text and "[1]" in both.text and "[2]" in both.text
    # a star by name keeps the star path (parallax distance), not the card overview
    assert "pc" in assistant.ask("Tell me about Arcturus.").text
