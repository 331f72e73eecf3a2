"""The open-question grader (benchmarks/open_grading.py) on hand-made answers: a right answer
scores 1, a contradicted one is flagged, a refusal is recognised. Grader logic only: the
questions here are written in the test, not read from the held-out set."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from open_grading import first_count, first_verdict, grade, is_refusal  # noqa: E402

GC_TYPE = {"fact": "type", "any": ["globular cluster"], "class": "globular cluster"}
OPH = {"fact": "constellation", "any": ["Ophiuchus"]}


def q(expected, kind="overview"):
    return {"kind": kind, "objects": [], "expected": {"must_not": [], "facts": [], **expected}}


def test_right_overview_scores_one():
    g = grade(q({"facts": [GC_TYPE, OPH]}), "M10 is a globular cluster in Ophiuchus [1].")
    assert g["score"] == 1 and not g["flagged"] and not g["refused"]


def test_wrong_type_and_constellation_are_flagged():
    g = grade(q({"facts": [GC_TYPE, OPH]}), "M10 is a spiral galaxy in Sagittarius.")
    assert g["score"] == 0 and len(g["contradictions"]) == 2


def test_listing_every_class_does_not_score_the_type():
    g = grade(q({"facts": [GC_TYPE]}), "It could be a galaxy, a nebula or a globular cluster.")
    assert g["score"] == 0 and g["flagged"]


def test_star_type_and_spectral_letter():
    star = {"fact": "type", "any": ["star"], "class": "star"}
    sp = {"fact": "spectral_type", "any": ["K2", "K-type", "K star"], "letter": "K"}
    assert grade(q({"facts": [star, sp]}), "Hamal is an orange K2 giant star in Aries.")["score"] == 1
    assert grade(q({"facts": [star]}), "Hamal is a planetary nebula.")["flagged"]


def test_magnitude_tolerance_and_designations_ignored():
    mag = {"fact": "magnitude", "value": 4.98, "tol": 0.1, "unit": "mag"}
    assert grade(q({"facts": [mag]}), "M10 shines at magnitude 5.0.")["score"] == 1
    g = grade(q({"facts": [mag]}), "M10 has a visual magnitude of 7.4.")
    assert g["score"] == 0 and g["flagged"]
    # the 10 of "M10" is a name, not a magnitude within tolerance of 10
    assert grade(q({"facts": [{**mag, "value": 10.0}]}), "M10 is bright.")["score"] == 0


def test_distance_units_are_converted():
    d = {"fact": "distance", "value": 108.6, "unit": "Mpc", "tol_rel": 0.15}
    assert grade(q({"facts": [d]}), "About 354 million light-years (108 Mpc).")["score"] == 1
    assert grade(q({"facts": [d]}), "Roughly 350 million light years away.")["score"] == 1
    g = grade(q({"facts": [d]}), "It is about 20 Mpc away; H0 is 70 km/s/Mpc.")
    assert g["score"] == 0 and g["flagged"]


def test_altitude_azimuth():
    facts = [{"fact": "altitude", "value": 48.54, "unit": "deg", "tol": 1.5},
             {"fact": "azimuth", "value": 177.85, "unit": "deg", "tol": 2.5}]
    assert grade(q({"facts": facts}), "Altitude about 48°, azimuth 178 degrees (due south).")["score"] == 1
    assert grade(q({"facts": facts}), "It will be at altitude 20° and azimuth 90°.")["flagged"]


@pytest.mark.parametrize("text,want", [
    ("False. A globular cluster is a ball of stars, not a galaxy.", "no"),
    ("That is not true: it is a star cluster.", "no"),
    ("Yes, NGC 4565 is in Coma Berenices.", "yes"),
    ("True - M10 lies in Ophiuchus.", "yes"),
])
def test_verdicts(text, want):
    assert first_verdict(text) == want


def test_false_claim_restated_is_flagged():
    tf = q({"verdict": "false", "must_not": ["is a type of galaxy"]}, kind="true_false")
    assert grade(tf, "False: a globular cluster is a group of stars.")["score"] == 1
    g = grade(tf, "True, a globular cluster is a type of galaxy.")
    assert g["score"] == 0 and len(g["contradictions"]) == 2


def test_count_and_list():
    assert first_count("M10 and M12: there are seven of them.") == 7
    assert first_count("Sagittarius holds 15 Messier objects.") == 15
    c = q({"count": 4}, kind="count")
    assert grade(c, "Four: M4, M6, M7 and M80.")["score"] == 1
    assert grade(c, "There are 3 Messier objects in Scorpius.")["flagged"]
    lst = q({"items": [["M6", "NGC 6405"], ["M7", "NGC 6475"]], "exclude": ["M4", "M80"]}, kind="list")
    assert grade(lst, "M6 and M 7.")["score"] == 1
    g = grade(lst, "M6, M70 and M4.")          # M70 is not M7; M4 does not belong
    assert g["score"] == 0.5 and g["flagged"]


def test_winner_is_the_first_named():
    w = {"fact": "winner", "any": ["M10", "NGC 6254"], "others": ["M3", "NGC 5272"]}
    assert grade(q({"facts": [w]}, "comparison"), "M10 is brighter than M3.")["score"] == 1
    assert grade(q({"facts": [w]}, "comparison"), "M3 is the brighter one; M10 is fainter.")["flagged"]


def test_no_answer_refusal_recognised():
    na = q({"no_answer": True}, kind="no_answer")
    for text in ["The context does not say.", "The sources here do not say who discovered it.",
                 "I don't know; the catalog gives no information on that."]:
        assert is_refusal(text)
        g = grade(na, text)
        assert g["score"] == 1 and not g["flagged"]
    g = grade(na, "NGC 6316 was discovered by William Herschel in 1784.")
    assert g["score"] == 0 and g["flagged"] and not g["refused"]
    # a refusal of an answerable question scores nothing but is not a contradiction
    g = grade(q({"facts": [GC_TYPE]}), "The context does not say.")
    assert g["refused"] and g["score"] == 0 and not g["flagged"]


def test_two_objects_types_and_list_names_inside_names():
    oc = {"fact": "type", "any": ["open cluster"], "class": "open cluster"}
    two = {"kind": "comparison", "objects": ["NGC6633", "NGC6356"],
           "expected": {"facts": [oc, GC_TYPE], "verdict": "no", "must_not": []}}
    assert grade(two, "No: NGC 6633 is an open cluster and NGC 6356 a globular cluster.")["score"] == 1
    # an excluded name ("Gienah", a star of Cygnus) inside a listed one ("Gienah Corvi") is not flagged
    lst = q({"items": [["Gienah Corvi"], ["Kraz"]], "exclude": ["Gienah", "Deneb"]}, kind="list")
    assert not grade(lst, "Gienah Corvi and Kraz.")["flagged"]
    assert grade(lst, "Gienah Corvi, Kraz and Deneb.")["flagged"]


def test_a_proper_name_is_not_a_class():
    pn = {"fact": "type", "any": ["planetary nebula"], "class": "planetary nebula"}
    g = grade(q({"facts": [pn]}), "The Helix Nebula is a planetary nebula in Aquarius [1].")
    assert g["score"] == 1 and not g["flagged"]
    assert grade(q({"facts": [GC_TYPE]}), "M10 is a Globular Cluster.")["score"] == 1
