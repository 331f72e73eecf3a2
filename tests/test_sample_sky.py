"""The sample sky: its source readers on small inputs, and (marked ``sample``) the real build."""

from __future__ import annotations

import json
from collections import Counter

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from astrovlm.config import atomic_directory
from astrovlm.data.cards import catalog_card
from astrovlm.data.records import IMAGE_CLASSES, SPECTRUM_CLASSES, SkyObject
from astrovlm.data.sources.kstars import docbook_to_text, parse_star_line
from astrovlm.data.sources.literature import chunk_text, html_to_text
from astrovlm.data.sources.rvsao import wavelength_from_header
from astrovlm.data.sources.stellarium import corners_centre, name_hint, parse_textures_json
from astrovlm.errors import AstroVLMError

# --- source readers, on inputs the tests make ----------------------------------------------


def test_textures_json_with_bare_decimals_parses():
    text = '{"subTiles": [{"imageUrl": "m2.png", "worldCoords": [[[323.4989,-.9794], [323.22,-.9794]]]}]}'
    data = parse_textures_json(text)
    assert data["subTiles"][0]["worldCoords"][0][0] == [323.4989, -0.9794]
    with pytest.raises(AstroVLMError, match="textures.json"):
        parse_textures_json('{"subTiles": [}')


def test_corner_centre_across_ra_zero_and_negative_ra():
    ra, dec, fov = corners_centre([[359.9, 10.0], [0.1, 10.0], [0.1, 10.2], [359.9, 10.2]])
    assert min(ra, 360 - ra) < 1e-6 and dec == pytest.approx(10.1, abs=1e-3)
    assert fov == pytest.approx(0.2, rel=0.02)
    # Stellarium writes some RAs as negative numbers (-94.65 = 265.35).
    ra, _, _ = corners_centre([[-94.6498, -32.5023], [-95.2120, -32.5211], [-95.2327, -32.0470],
                               [-94.6735, -32.0283]])
    assert 264.5 < ra < 265.5
    with pytest.raises(AstroVLMError):
        corners_centre([[1, 2], [3, 4]])


@pytest.mark.parametrize("stem,name", [("m57dumont", "M57"), ("n7293", "NGC 7293"), ("ic434", "IC 434"),
                                       ("n869-884spano", "NGC 869"), ("sh2-155", "Sh2-155"),
                                       ("pleiades", "M45"), ("lmc_07", "Large Magellanic Cloud")])
def test_image_file_names_say_the_object(stem, name):
    assert name_hint(stem)[0] == name


def test_catalog_files_the_name_says_give_their_own_objects():
    _, own = name_hint("ldn1622")
    assert own.object_id == "LDN 1622" and own.coarse_class == "nebula" and own.otype == "dark nebula"
    _, own = name_hint("coma_cluster")
    assert own.coarse_class == "other"  # a cluster of galaxies is not one of the image classes


def _header(**cards):
    h = fits.Header()
    for k, v in cards.items():
        h["DC-FLAG" if k == "DC_FLAG" else k] = v
    return h


def test_wavelengths_from_iraf_headers():
    log = wavelength_from_header(_header(CRVAL1=3.5815, CD1_1=1e-4, DC_FLAG=1), 100)
    assert log.unit == u.AA and log[0].value == pytest.approx(10**3.5815)
    assert log[1].value / log[0].value == pytest.approx(10**1e-4)
    # FAST files: CTYPE1 = PIXEL but a linear Angstrom solution with DC-FLAG = 0.
    lin = wavelength_from_header(_header(CTYPE1="PIXEL", CRVAL1=3500.0, CD1_1=0.69, DC_FLAG=0), 10)
    assert lin[0].value == 3500.0 and lin[9].value == pytest.approx(3500 + 9 * 0.69)
    # Old IRAF keywords W0 / WPC.
    old = wavelength_from_header(_header(W0=3.65, WPC=7.8e-5, DC_FLAG=1), 10)
    assert old[0].value == pytest.approx(10**3.65)
    with pytest.raises(AstroVLMError, match="multispec"):
        wavelength_from_header(_header(CTYPE1="MULTISPE", CRVAL1=1, CD1_1=1), 10)
    with pytest.raises(AstroVLMError, match="not an optical spectrum"):
        wavelength_from_header(_header(CRVAL1=1.0, CD1_1=1.0, DC_FLAG=0), 10)
    with pytest.raises(AstroVLMError, match="no wavelength solution"):
        wavelength_from_header(_header(DC_FLAG=0), 10)


def test_stars_dat_fixed_columns():
    row = parse_star_line("051432.27 -081205.9 +000001.9-000000.600004.2 00.18-0.03B8 0 0.05   2.07, bet Ori, Rigel")
    assert row["ra_deg"] == pytest.approx((5 + 14 / 60 + 32.27 / 3600) * 15)
    assert row["dec_deg"] == pytest.approx(-(8 + 12 / 60 + 5.9 / 3600))
    assert row["pm_ra_mas_yr"] == 1.9 and row["pm_dec_mas_yr"] == -0.6 and row["parallax_mas"] == 4.2
    assert row["v_mag"] == 0.18 and row["b_v"] == -0.03 and row["spectral_type"] == "B8"
    assert row["var_range_mag"] == 0.05 and row["var_period_days"] == 2.07
    assert row["bayer"] == "bet Ori" and row["name"] == "Rigel"
    assert parse_star_line("# a comment line that is long enough to pass the length check ......") is None


def test_docbook_and_html_become_plain_text():
    title, text = docbook_to_text('<sect1 id="ai-x"><title>Flux</title><indexterm><primary>x</primary>'
                                  '</indexterm><para>The <firstterm>flux</firstterm> is &kstars; energy.</para>'
                                  '<para>Second.</para></sect1>')
    assert title == "Flux" and text == "The flux is KStars energy.\n\nSecond."
    text = html_to_text("<h1>Norse</h1><p>Stars &amp; myths of the north.</p>"
                        "<h2>External links</h2><ul><li><a href='x'>a link list</a></li></ul>")
    assert "Stars & myths of the north." in text and "link list" not in text


def test_chunks_are_whole_sentences_of_bounded_length():
    sentence = "The star shines brightly in the night sky tonight. "
    text = "\n\n".join(sentence * 6 for _ in range(10))  # ten paragraphs of 54 words
    chunks = chunk_text(text)
    words = [len(c.split()) for c in chunks]
    assert sum(words) == 540
    assert all(120 <= w <= 200 for w in words[:-1]) and words[-1] <= 250
    assert all(c.endswith(".") for c in chunks)
    assert chunk_text("Short text.") == ["Short text."]


def test_catalog_card_states_only_catalog_facts():
    obj = SkyObject(object_id="NGC6720", name="M57", otype="planetary nebula", coarse_class="planetary nebula",
                    ra_deg=283.395875, dec_deg=33.0285833, aliases=["NGC 6720", "Ring Nebula", "IRAS 18517+3257"],
                    constellation="Lyra", v_mag=8.8, major_axis_arcmin=1.27)
    card = catalog_card(obj)
    assert card.startswith("M57 (NGC 6720, Ring Nebula) is a planetary nebula in Lyra at RA 18h53m35.0s")
    assert "V magnitude 8.8" in card and "size 1.3 arcmin" in card
    assert "IRAS" not in card and "B magnitude" not in card and "redshift" not in card
    bare = catalog_card(SkyObject(object_id="x", name="Abell 31", otype="planetary nebula",
                                  coarse_class="planetary nebula"))
    assert bare == "Abell 31 is a planetary nebula."
    # the assistant's card names cross-identifications too, 2MASX last
    galaxy = SkyObject(object_id="NGC1023", name="NGC 1023", otype="lenticular galaxy", coarse_class="galaxy",
                       aliases=["2MASX J02402401+3903477", "MCG +06-06-073", "PGC 010123", "UGC 02154"])
    assert catalog_card(galaxy).startswith("NGC 1023 is a lenticular galaxy")
    assert catalog_card(galaxy, every_designation=True).startswith(
        "NGC 1023 (MCG +06-06-073, PGC 010123, UGC 02154) is a lenticular galaxy")
    assert catalog_card(obj, every_designation=True).startswith("M57 (NGC 6720, Ring Nebula, IRAS 18517+3257)")


def test_interrupted_build_leaves_the_previous_dataset(tmp_path):
    final = tmp_path / "sample"
    with atomic_directory(final) as tmp:
        (tmp / "objects.jsonl").write_text('{"old": true}\n')
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_directory(final) as tmp:
            (tmp / "objects.jsonl").write_text('{"new": true}\n')
            (tmp / "images").mkdir()
            raise RuntimeError("interrupted half way")
    assert (final / "objects.jsonl").read_text() == '{"old": true}\n'
    assert not (final / "images").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["sample"]  # no half-built folder left


def test_debian_fetch_errors_say_how_to_fix(tmp_path, monkeypatch):
    from astrovlm.data.sources import debian

    monkeypatch.setenv("ASTROVLM_HOME", str(tmp_path))
    monkeypatch.delenv(debian.ENV_ROOT, raising=False)
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)  # a machine without apt-get
    with pytest.raises(AstroVLMError, match="apt-get is not available") as err:
        debian.package_root("iraf-rvsao", progress=False)
    assert debian.ENV_ROOT in str(err.value)
    monkeypatch.setenv(debian.ENV_ROOT, str(tmp_path / "empty"))
    with pytest.raises(AstroVLMError, match="is not below it"):
        debian.package_root("kstars-data", progress=False)
    with pytest.raises(AstroVLMError, match="unknown data package"):
        debian.package_root("no-such-package", progress=False)


# --- the real sample sky ----------------------------------------------------------------------

@pytest.mark.sample
def test_counts_and_classes(sample_sky):
    by_id = {o.object_id: o for o in sample_sky.objects}
    image_classes = Counter(by_id[r.object_id].coarse_class for r in sample_sky.images if r.object_id)
    assert len(sample_sky.images) >= 400
    assert all(image_classes[c] >= 20 for c in IMAGE_CLASSES), image_classes
    openngc_objects = {r.object_id for r in sample_sky.images if r.object_id and by_id[r.object_id].source == "OpenNGC"}
    assert len(openngc_objects) >= 400
    real = [s for s in sample_sky.spectra if not s.simulated]
    assert len(real) >= 40
    assert {s.spectral_class for s in real} == set(SPECTRUM_CLASSES)
    literature = [p for p in sample_sky.passages if p.kind == "literature"]
    cards = [p for p in sample_sky.passages if p.kind == "catalog_card"]
    assert len(literature) >= 300 and len({p.source for p in literature}) >= 40
    assert {p.object_id for p in cards} == set(by_id)
    for table, rows in (("openngc", 14000), ("stars", 120000), ("supernovae", 2000)):
        import pandas as pd

        assert len(pd.read_parquet(sample_sky.root / "tables" / f"{table}.parquet")) >= rows


@pytest.mark.sample
def test_credits_and_labels(sample_sky):
    assert all(r.credit and r.license for r in sample_sky.images)
    assert all(s.credit and s.license for s in sample_sky.spectra)
    assert all(p.license for p in sample_sky.passages)
    m57 = [r for r in sample_sky.images if r.object_id == "NGC6720"]
    assert m57 and sample_sky.object("NGC6720").coarse_class == "planetary nebula"
    assert sample_sky.object("NGC5194").coarse_class == "galaxy"
    assert sample_sky.object("NGC5139").coarse_class == "globular cluster"  # omega Centauri


@pytest.mark.sample
def test_a_real_image_spectrum_pair_exists(sample_sky):
    imaged = {r.object_id for r in sample_sky.images if r.object_id}
    paired = {s.object_id for s in sample_sky.spectra if not s.simulated and s.object_id in imaged}
    assert paired
    for oid in paired:
        assert sample_sky.object(oid).coarse_class == "galaxy"


@pytest.mark.sample
def test_files_exist_and_open(sample_sky):
    from PIL import Image

    for rec in sample_sky.images:
        with Image.open(sample_sky.path(rec.path)) as im:
            assert im.size[0] >= 64 and im.size[1] >= 64
    real_templates = {s.template for s in sample_sky.spectra if not s.simulated}
    assert all(sample_sky.path(rec.path).is_file() for rec in sample_sky.spectra)
    # Every real spectrum, and the first and last simulated variant of each template (FITS
    # opening costs ~10 ms a file).
    checked = [s for s in sample_sky.spectra if not s.simulated or s.spectrum_id.endswith((":0", ":7"))]
    assert len(checked) > 100
    for rec in checked:
        with fits.open(sample_sky.path(rec.path)) as hdul:
            hdu = hdul["SPECTRUM"]
            assert u.Unit(hdu.header["TUNIT1"]) == u.AA
            wave, ivar = hdu.data["WAVELENGTH"], hdu.data["IVAR"]
            assert np.all(np.diff(wave) > 0) and np.any(ivar > 0)
            assert hdu.header["SIMULAT"] is rec.simulated
        if rec.simulated:
            assert rec.template in real_templates and rec.snr and rec.resolution
        else:
            assert 500 < wave[0] < wave[-1] < 12000


@pytest.mark.sample
def test_manifest_and_summary(sample_sky):
    from astrovlm.data.checksums import verify_dataset

    check = verify_dataset(sample_sky.root)
    assert check["ok"], check
    manifest = json.loads((sample_sky.root / "manifest.json").read_text())
    summary = json.loads((sample_sky.root / "summary.json").read_text())
    assert manifest["counts"]["images"] == len(sample_sky.images) == summary["images"]
    assert "sha256(unit_id)" in manifest["splits"]["rule"]
    assert len(manifest["credits"]["images"]) == len(sample_sky.images)
    assert summary["spectra_real"] == manifest["counts"]["spectra_real"]
