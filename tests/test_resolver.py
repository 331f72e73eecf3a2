"""The offline name resolver: many spellings of one object resolve to it; unknown names fail
with close suggestions."""

from __future__ import annotations

import pandas as pd
import pytest

from astrovlm.data.records import SkyObject
from astrovlm.data.resolver import NameResolver, name_key
from astrovlm.data.sources.kstars import parse_star_line
from astrovlm.errors import AstroVLMError

# Two lines of KStars' stars.dat, as the file has them.
SIRIUS = "064508.92 -164258.0 -000546.0-001223.100379.2 -1.4400.01A0 1            , alp CMa, Sirius"
IOTA_ORI = "053525.98 -055435.6 +000002.3-000000.600002.5 02.75-0.21O9 0            , iot Ori, Na'ir al Saif"


@pytest.fixture(scope="module")
def resolver() -> NameResolver:
    """OpenNGC (from pyongc), two real star rows with their HD numbers, one extra object."""
    stars = pd.DataFrame([parse_star_line(SIRIUS), parse_star_line(IOTA_ORI)])
    stars["hd"] = pd.array([48915, 37043], dtype="Int64")
    tulip = SkyObject(object_id="Sh2-101", name="Sh2-101", otype="HII region", coarse_class="nebula",
                      aliases=["Tulip Nebula"])
    return NameResolver(stars=stars, objects=[tulip])


@pytest.mark.parametrize("name", ["M51", "M 51", "m51", "messier 51", "Messier 051", "Whirlpool Galaxy",
                                  "the whirlpool galaxy", "NGC 5194", "ngc5194", "NGC5194", "PGC 47404",
                                  "UGC 8493"])
def test_spellings_of_m51_resolve_to_one_object(resolver, name):
    obj = resolver.resolve(name)
    assert obj.object_id == "NGC5194"
    assert obj.coarse_class == "galaxy"
    assert obj.constellation == "Canes Venatici"


def test_ic_objects_and_duplicates(resolver):
    assert resolver.resolve("IC 434").object_id == "IC0434"
    assert resolver.resolve("ic434").coarse_class == "nebula"
    # IC 11 is a Dup row in OpenNGC: it is followed to NGC 281.
    assert resolver.resolve("IC 11").object_id == "NGC0281"


def test_planetary_nebula_by_common_name(resolver):
    ring = resolver.resolve("Ring Nebula")
    assert ring.object_id == "NGC6720" and ring.name == "M57"
    assert ring.coarse_class == "planetary nebula"
    assert 283.3 < ring.ra_deg < 283.5 and 32.9 < ring.dec_deg < 33.1


def test_stars_by_proper_bayer_and_hd_names(resolver):
    sirius = resolver.resolve("Sirius")
    assert sirius.object_id == "HD 48915"
    for name in ("alpha CMa", "alp CMa", "HD 48915", "hd048915"):
        assert resolver.resolve(name).object_id == "HD 48915"
    assert sirius.coarse_class == "A star" and sirius.spectral_type == "A0"
    assert sirius.v_mag == pytest.approx(-1.44)
    iota = resolver.resolve("HD 37043")
    assert iota.name == "Na'ir al Saif" and iota.coarse_class == "O/B star"
    assert resolver.resolve("iota Ori").object_id == "HD 37043"


def test_extra_objects_resolve_by_id_and_alias(resolver):
    for name in ("Sh2-101", "Sharpless 2-101", "SH 2-101", "Tulip Nebula"):
        assert resolver.resolve(name).object_id == "Sh2-101"


def test_unknown_name_fails_with_suggestions(resolver):
    with pytest.raises(AstroVLMError) as err:
        resolver.resolve("Whirlpol Galaxy")
    message = str(err.value)
    assert "Whirlpol Galaxy" in message and "field 'name'" in message
    assert "Whirlpool Galaxy" in message
    assert "Whirlpool Galaxy" in resolver.suggest("whirlpol galaxy")
    assert resolver.find("no such thing at all") is None


def test_empty_name_is_an_error(resolver):
    with pytest.raises(AstroVLMError):
        resolver.resolve("   ")


def test_name_key_ignores_spelling_noise():
    assert name_key("Messier 051") == name_key("m51") == "m51"
    assert name_key("NGC 0224") == name_key("ngc224")
    assert name_key("alpha Canis") == name_key("alp canis")
    assert name_key("Sharpless 2-155") == name_key("SH 2-155") == "sh2-155"
    assert name_key("M 5") != name_key("M 51")


@pytest.mark.sample
def test_sample_sky_resolver_knows_stars_and_spectrum_objects(sample_sky):
    resolver = NameResolver.from_dataset(sample_sky.root)
    assert resolver.resolve("Sirius").object_id == resolver.resolve("HD 48915").object_id
    assert resolver.resolve("HD 37043").name == "Na'ir al Saif"
    # An MK standard star of the RVSAO spectra is a sample-sky object with its split.
    hd = resolver.resolve("HD 65900")
    assert sample_sky.get_object(hd.object_id) is not None
    assert hd.split == sample_sky.object(hd.object_id).split
    # Objects the sample sky made from image names resolve too.
    assert resolver.resolve("Sh2-101").coarse_class == "nebula"
