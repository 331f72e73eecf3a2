"""Catalog questions, named stars, derived facts and names in context, on the real sample sky.

Every answer is checked against a direct query of the same table (pandas) or a direct
astropy computation, not against numbers written here. These paths compose the answer
from sources without the language model, so the assistant is opened without one.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_constellation
from astropy.time import Time

from astrovlm.assistant.catalog_parse import parse_catalog_question
from astrovlm.errors import BadArgumentError


@pytest.fixture(scope="module")
def assistant(sample_sky):
    from astrovlm.assistant.rag import Assistant

    return Assistant(None, sample_sky)


@pytest.fixture(scope="module")
def ngc(sample_sky):
    df = pd.read_parquet(sample_sky.root / "tables" / "openngc.parquet")
    df = df[~df["type"].isin(["Dup", "NonEx"])].copy()
    df["mag"] = df["vmag"].where(df["vmag"].notna(), df["bmag"])
    return df


@pytest.fixture(scope="module")
def stars(sample_sky):
    return pd.read_parquet(sample_sky.root / "tables" / "stars.parquet")


def _label(row) -> str:
    return f"M{int(row['messier'])} ({row['display']})" if row["messier"] else row["display"]


# ----------------------------------------------------------------------------- the parser
def test_parser_reads_kind_place_limits_and_cone():
    q = parse_catalog_question("Which open clusters in Cassiopeia are brighter than 7.5?")
    assert (q.kind, q.types, q.constellation, q.mag_max) == ("list", ("OCl",), "Cas", 7.5)
    q = parse_catalog_question("How many galaxies larger than 0.5 degrees are within 3 deg of M81?")
    assert q.kind == "count" and q.size_min_arcmin == pytest.approx(30) and q.radius_arcmin == 180
    assert q.center == "M81"
    q = parse_catalog_question("What is the largest planetary nebula in Aquarius?")
    assert (q.kind, q.types, q.constellation) == ("largest", ("PN",), "Aqr")
    q = parse_catalog_question("How many globular clusters are there?")
    assert (q.kind, q.types, q.constellation) == ("count", ("GCl",), None)
    q = parse_catalog_question("Is M1 an open cluster?")
    assert (q.kind, q.subject, q.types) == ("verdict", "M1", ("OCl",))
    q = parse_catalog_question("Are there any globulars in Sgr?")
    assert (q.kind, q.constellation, q.types) == ("exists", "Sgr", ("GCl",))


@pytest.mark.parametrize("question", [
    "What kind of object is M57?", "What is a globular cluster?", "What is the redshift of M66?",
    "How bright is M13?", "What type of galaxy is Triangulum?", "What else is the Ring Nebula called?",
    "Which constellation is M31 in?", "How many stars are in a globular cluster?",
    "What are open clusters made of?"])
def test_questions_about_one_object_are_not_catalog_queries(question):
    assert parse_catalog_question(question) is None


# ----------------------------------------------------------------------------- catalog answers
def test_a_list_is_the_tables_rows_with_a_cap(assistant, ngc):
    answer = assistant.ask("List the open clusters in Auriga.")
    expected = ngc[(ngc["type"] == "OCl") & (ngc["constellation"] == "Aur")]
    assert len(expected) > 10
    assert f"lists {len(expected)} open clusters in Auriga" in answer.text
    assert f"and {len(expected) - 10} more" in answer.text
    assert len(answer.sources) == 10 and all(s["kind"] == "catalog_row" for s in answer.sources)
    assert {s["object_id"] for s in answer.sources} <= set(expected["name"])
    assert all(s["cited"] for s in answer.sources)
    # brightest first: the first source is the brightest of them
    assert answer.sources[0]["object_id"] == expected.sort_values("mag").iloc[0]["name"]


def test_a_count_matches_pandas(assistant, ngc):
    answer = assistant.ask("How many planetary nebulae are there in Cygnus?")
    n = int(((ngc["type"] == "PN") & (ngc["constellation"] == "Cyg")).sum())
    assert answer.text.startswith(f"OpenNGC lists {n} planetary nebulae in Cygnus")


def test_the_brightest_is_the_smallest_magnitude(assistant, ngc):
    answer = assistant.ask("What is the brightest globular cluster in Sagittarius?")
    gcl = ngc[(ngc["type"] == "GCl") & (ngc["constellation"] == "Sgr")].sort_values("mag")
    top = gcl.iloc[0]
    assert answer.sources[0]["object_id"] == top["name"]
    assert answer.text.startswith(f"The brightest globular cluster in Sagittarius in OpenNGC is {_label(top)} [1]")
    assert f"{top['mag']:g}" in answer.text
    assert answer.objects == [top["name"]]            # a follow-up may ask about it


def test_a_cone_query_uses_sky_separations(assistant, ngc):
    answer = assistant.ask("Which galaxies within 2 degrees of M31 are brighter than 12?")
    m31 = ngc[ngc["name"] == "NGC0224"].iloc[0]
    sep = SkyCoord(m31["ra_deg"] * u.deg, m31["dec_deg"] * u.deg).separation(
        SkyCoord(ngc["ra_deg"].to_numpy() * u.deg, ngc["dec_deg"].to_numpy() * u.deg)).deg
    expected = ngc[(sep <= 2) & (ngc["type"] == "G") & (ngc["mag"] < 12) & (ngc["name"] != "NGC0224")]
    assert len(expected) >= 1
    assert sorted(s["object_id"] for s in answer.sources) == sorted(expected["name"])


def test_a_cone_around_a_position_and_the_centre_object_left_out(assistant, ngc, stars):
    answer = assistant.ask("List galaxies within 1 deg of 10.68, 41.27.")
    sep = SkyCoord(10.68 * u.deg, 41.27 * u.deg).separation(
        SkyCoord(ngc["ra_deg"].to_numpy() * u.deg, ngc["dec_deg"].to_numpy() * u.deg)).deg
    assert sorted(s["object_id"] for s in answer.sources) == sorted(ngc[(sep <= 1) & (ngc["type"] == "G")]["name"])
    around = assistant.ask("What are the brightest stars within 10 degrees of Polaris?")
    assert "Polaris" not in [s["title"] for s in around.sources] and around.sources


def test_yes_no_verdicts_both_ways(assistant):
    yes = assistant.ask("Is NGC 6960 a supernova remnant?")
    assert yes.text.startswith("Yes: NGC 6960 is a supernova remnant in Cygnus [1]")
    assert yes.sources[0]["object_id"] == "NGC6960"
    no = assistant.ask("Is M57 a supernova remnant?")
    assert no.text.startswith("No: M57 is a planetary nebula") and "not a supernova remnant" in no.text


def test_existence_yes_and_no_with_the_nearest(assistant, ngc):
    yes = assistant.ask("Is there a globular cluster in Hercules?")
    her = ngc[(ngc["type"] == "GCl") & (ngc["constellation"] == "Her")]
    assert yes.text.startswith("Yes:") and "NGC6205" in {s["object_id"] for s in yes.sources}
    assert len(yes.sources) == min(len(her), 10)
    no = assistant.ask("Is there a globular cluster in Auriga?")
    assert not ((ngc["type"] == "GCl") & (ngc["constellation"] == "Aur")).any()
    assert no.text.startswith("No: OpenNGC has no globular cluster in Auriga.")
    assert "nearest globular cluster" in no.text and len(no.sources) == 1
    nearest = no.sources[0]["object_id"]
    assert ngc.set_index("name").loc[nearest, "type"] == "GCl"


def test_a_misspelt_constellation_gets_the_closest_spellings(assistant):
    answer = assistant.ask("List the open clusters in Aurigo.")
    assert "No constellation is called 'Aurigo'" in answer.text and "Auriga" in answer.text


# ----------------------------------------------------------------------------- stars by name
def test_a_star_by_name_gets_its_distance_from_the_parallax(assistant, stars):
    answer = assistant.ask("How far away is Arcturus?")
    row = stars[stars["name"] == "Arcturus"].iloc[0]
    pc = 1000.0 / row["parallax_mas"]
    src = answer.context[0]
    assert src.kind == "star_facts" and src.extra["distance_pc"] == pytest.approx(pc, rel=1e-9)
    assert src.extra["distance_ly"] == pytest.approx((pc * u.pc).to(u.lyr).value, rel=1e-9)
    const = get_constellation(SkyCoord(row["ra_deg"] * u.deg, row["dec_deg"] * u.deg))
    assert const in answer.text and row["spectral_type"] in answer.text
    assert f"{pc:.3g} pc" in answer.text and "parallax" in answer.text.lower()


# ----------------------------------------------------------------------------- derived facts
def test_redshift_distance_is_planck18_with_the_peculiar_velocity_note(assistant, ngc):
    from astropy.cosmology import Planck18

    answer = assistant.ask("What is the redshift of M66 and how far away is it?")
    z = float(ngc[ngc["name"] == "NGC3627"].iloc[0]["redshift"])
    derived = [s for s in answer.context if s.kind == "derived"][0]
    d_l = Planck18.luminosity_distance(z).to(u.Mpc).value
    assert derived.extra["values"]["luminosity_distance_mpc"] == pytest.approx(d_l, rel=1e-9)
    assert f"z = {z:g} [1]" in answer.text and f"{d_l:.3g} Mpc" in answer.text
    assert z < 0.01 and "peculiar" in derived.text and "rough" in answer.text
    blue = assistant.ask("How far away is M31?")
    assert "blueshift" in blue.text and "Mpc" not in blue.text


def test_a_larger_redshift_has_no_caution():
    from astropy.cosmology import Planck18

    from astrovlm.assistant.derived import redshift_distance

    d = redshift_distance(0.05, "a galaxy")
    assert d.values["comoving_distance_mpc"] == pytest.approx(Planck18.comoving_distance(0.05).to(u.Mpc).value)
    assert d.values["lookback_time_gyr"] == pytest.approx(Planck18.lookback_time(0.05).to(u.Gyr).value)
    assert not d.values["peculiar_caution"] and "Caution" not in d.text


def test_physical_size_is_distance_times_angle(assistant):
    answer = assistant.ask("How big is M101, physically?")
    derived = {s.extra["values"].get("size_kpc"): s for s in answer.context if s.kind == "derived"}
    size = [k for k in derived if k is not None][0]
    d_mpc = [s for s in answer.context if s.kind == "derived"][0].extra["values"]["luminosity_distance_mpc"]
    obj = assistant.context.resolve("M101")
    expected = (d_mpc * u.Mpc * (obj.major_axis_arcmin * u.arcmin).to(u.rad).value).to(u.kpc).value
    assert size == pytest.approx(expected, rel=1e-9) and "kpc" in answer.text


def test_altitude_at_a_fixed_place_and_time_matches_astropy(assistant):
    from astropy.utils import iers

    answer = assistant.ask("What is the altitude of M13 from 28.76, -17.88 on 2026-06-01 23:00 UTC?")
    values = [s for s in answer.context if s.kind == "derived"][0].extra["values"]
    m13 = assistant.context.resolve("M13")
    with iers.conf.set_temp("auto_download", False):
        altaz = SkyCoord(m13.ra_deg * u.deg, m13.dec_deg * u.deg).transform_to(AltAz(
            obstime=Time("2026-06-01 23:00", scale="utc"),
            location=EarthLocation(lat=28.76 * u.deg, lon=-17.88 * u.deg, height=0 * u.m)))
    assert values["alt_deg"] == pytest.approx(altaz.alt.deg, abs=1e-6)
    assert values["az_deg"] == pytest.approx(altaz.az.deg, abs=1e-6)
    assert f"altitude {altaz.alt.deg:.1f} deg" in answer.text


def test_now_is_read_without_fetching_iers(assistant):
    answer = assistant.ask("Where is M42 in the sky from 40.7, -74.0 now?")
    values = next(s for s in answer.context if s.kind == "derived").extra["values"]
    assert -90 <= values["alt_deg"] <= 90 and abs(Time(values["time_utc"]) - Time.now()).sec < 600


def test_a_place_or_time_astropy_cannot_read_is_named(assistant):
    with pytest.raises(BadArgumentError, match="Atlantis"):
        assistant.ask("What is the altitude of M13 from Atlantis on 2026-06-01 23:00?")
    with pytest.raises(BadArgumentError, match="teatime"):
        assistant.ask("What is the altitude of M13 from greenwich at teatime?")
    with pytest.raises(BadArgumentError, match="latitude"):
        assistant.ask("What is the altitude of M13 from 123, 10 on 2026-06-01 23:00?")


# ----------------------------------------------------------------------------- names in context
def test_triangulum_is_the_galaxy_when_asked_about_a_galaxy_else_the_constellation(assistant):
    objects, notes, readings = assistant.context.read_names("What type of galaxy is Triangulum?")
    assert [o.object_id for o in objects] == ["NGC0598"] and "M33" in readings[0]
    retrieved = assistant.retrieve("What type of galaxy is Triangulum?")
    assert retrieved.sources[0].object_id == "NGC0598" and "Sc" in retrieved.sources[0].text
    assert retrieved.readings and "not the constellation" in retrieved.readings[0]
    answer = assistant.ask("What type of galaxy is Triangulum?")
    assert answer.objects == ["NGC0598"] and answer.text.startswith("I took 'Triangulum' to mean M33")
    assert f"Hubble type {retrieved.objects[0].hubble_type} [1]" in answer.text
    for place in ("Which galaxies are in Triangulum?", "Is Triangulum a big constellation?"):
        assert assistant.context.read_names(place)[0] == []
    listed = assistant.ask("Which galaxies are in Triangulum?")
    assert "galaxies in Triangulum" in listed.text and "I took" not in listed.text


def test_the_pinwheel_is_m101_and_the_answer_says_so(assistant):
    from astrovlm.data.sources.stellarium_names import names_path

    if names_path() is None:
        pytest.skip("Stellarium's names.dat is not unpacked on this machine")
    answer = assistant.ask("How far away is the Pinwheel?")
    assert answer.objects == ["NGC5457"]
    assert answer.text.startswith("I took 'Pinwheel' to mean M101") and "M33" in answer.text
    assert assistant.context.resolve("Pinwheel Galaxy").object_id == "NGC5457"


# ----------------------------------------------------------------------------- chat and streaming
def test_a_follow_up_uses_the_previous_turns_object(assistant):
    from astrovlm.assistant.rag import ChatSession

    chat = ChatSession(assistant)
    first = chat.ask("What is the brightest galaxy in Leo?")
    top = first.objects[0]
    follow = chat.ask("And how far is it?")
    assert follow.objects == [top]
    obj = assistant.context.resolve(top)
    assert follow.text.startswith(f"{obj.name}'s catalog redshift is z = {obj.redshift:g}")


def test_a_composed_answer_streams_in_pieces(assistant):
    stream = assistant.ask("How many open clusters are in Auriga?", stream=True)
    pieces = list(stream)
    assert len(pieces) >= 2 and stream.answer.text == "".join(pieces).strip()
    assert stream.answer.timings["composed"] is True
    assert np.all([s["cited"] for s in stream.answer.sources])


def test_a_constellation_claim_gets_its_verdict_first_from_the_card(assistant):
    obj = assistant.context.resolve("M13")
    other = "Orion" if obj.constellation != "Orion" else "Lyra"
    for question in (f"Is M13 in {obj.constellation}?", f"Is it true that M13 is in {obj.constellation}?"):
        answer = assistant.ask(question)
        assert answer.text == f"Yes: {obj.name} is in {obj.constellation} [1].", question
        assert answer.sources[0]["object_id"] == obj.object_id and answer.sources[0]["cited"]
    answer = assistant.ask(f"True or false: M13 is in the constellation {other}.")
    assert answer.text == f"No: {obj.name} is in {obj.constellation}, not {other} [1]."
