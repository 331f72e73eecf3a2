"""Readers on small files in the layouts astronomers bring: each test is an example of use."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from astrovlm.data.crossmatch import crossmatch, group_by_position
from astrovlm.data.readers import (
    Cutout, catalog_coords, load_image, read_catalog, read_image, read_spectrum, read_text, sniff)
from astrovlm.data.spectrum import Spectrum, card_image
from astrovlm.errors import AstroVLMError
from fits_fixtures import (
    DEC0, RA0, catalog_table, continuum_spectrum, make_cube, make_image, make_png,
    make_sdss_table, make_sdss_template, make_wcs_1d, sdss_loglam)

M51 = SkyCoord(RA0 * u.deg, DEC0 * u.deg)


# --- images ------------------------------------------------------------------------------

def test_fits_image_has_pixels_wcs_centre_and_name(tmp_path):
    path = make_image(tmp_path / "m51.fits", shape=(64, 80))
    cut = read_image(path)
    assert isinstance(cut, Cutout)
    assert cut.data.shape == (64, 80) and cut.data.dtype == np.float32
    assert cut.wcs is not None and cut.name == "M51" and cut.bands == ["r"]
    assert cut.center.separation(M51) < 1 * u.arcsec
    assert cut.fov().to(u.arcsec).value == pytest.approx(80, rel=0.01)  # 80 px at 1"/px


def test_image_in_an_extension_and_chosen_by_name(tmp_path):
    path = make_image(tmp_path / "ext.fits", extension=True, extname="SCI")
    assert read_image(path).data.shape == (64, 80)  # the empty primary is skipped
    assert read_image(path, hdu="SCI").data.shape == (64, 80)
    with pytest.raises(AstroVLMError, match="no HDU 'NOPE'"):
        read_image(path, hdu="NOPE")
    with pytest.raises(AstroVLMError, match="holds no image"):
        read_image(path, hdu=0)


def test_multiband_cube_maps_first_three_bands_to_rgb(tmp_path):
    cut = read_image(make_cube(tmp_path / "cube.fits"))
    assert cut.data.shape == (3, 32, 40) and cut.bands == ["g", "r", "i"]
    rgb = cut.to_rgb(stretch="linear")
    assert rgb.shape == (32, 40, 3) and rgb.dtype == np.uint8
    # each band is stretched on its own, so the galaxy is bright in every channel
    assert all(rgb[16, 20, c] > 200 for c in range(3))


def test_fits_is_shown_north_up_and_png_as_stored(tmp_path):
    data = np.zeros((20, 30), dtype=np.float32)
    data[0, :] = 100.0  # FITS row 0 is the bottom of the picture
    fits.PrimaryHDU(data).writeto(tmp_path / "bottom.fits")
    rgb = read_image(tmp_path / "bottom.fits").to_rgb(stretch="minmax")
    assert rgb[-1].min() == 255 and rgb[0].max() == 0

    png = make_png(tmp_path / "x.png")
    from PIL import Image

    original = np.asarray(Image.open(png).convert("RGB"))
    cut = read_image(png)
    assert cut.bands == ["R", "G", "B"] and cut.display_ready and cut.wcs is None
    assert np.array_equal(cut.to_rgb(), original)  # display values are not re-stretched
    assert load_image(png).size == (40, 48)


def test_grayscale_png_and_stretch_choices(tmp_path):
    cut = read_image(make_png(tmp_path / "g.png", mode="L"))
    assert cut.data.shape == (48, 40) and cut.bands == ["L"]
    fits_cut = read_image(make_image(tmp_path / "m.fits"))
    asinh, linear = fits_cut.to_rgb("asinh"), fits_cut.to_rgb("linear")
    zscale = fits_cut.to_rgb("zscale")
    # asinh lifts the faint outskirts above a linear stretch; zscale saturates the core
    assert asinh[5, 5].mean() > linear[5, 5].mean()
    assert zscale[32, 40].mean() == 255
    assert fits_cut.to_pil().mode == "RGB"


# --- spectra -----------------------------------------------------------------------------

def test_sdss_spec_table_with_loglam_and_specobj(tmp_path):
    spec = read_spectrum(make_sdss_table(tmp_path / "spec.fits", z=0.05))
    loglam = sdss_loglam()
    assert isinstance(spec, Spectrum) and len(spec) == len(loglam)
    assert spec.wavelength.unit == u.AA
    np.testing.assert_allclose(spec.wavelength.value, 10**loglam.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(spec.flux, continuum_spectrum(10**loglam, 0.05), rtol=1e-5)
    assert np.all(spec.ivar == 4.0)
    assert spec.meta["Z"] == pytest.approx(0.05) and spec.meta["CLASS"] == "GALAXY"
    assert spec.meta["RA"] == pytest.approx(RA0) and "erg" in spec.flux_unit


@pytest.mark.parametrize("gzipped", [False, True])
def test_specobj_row_read_from_bytes_agrees_with_astropy(tmp_path, gzipped):
    """The companion table's values (read from the row's bytes in a plain file, through
    astropy's FITS_rec from a gzip one) are what astropy gives, past array, bit and scaled
    columns, for every row."""
    import gzip
    import shutil

    from astrovlm.data.readers.fits_spectrum import _meta_from_companion

    cols = [fits.Column(name="FLUXES", format="5E", array=np.ones((3, 5))),
            fits.Column(name="PLUG_RA", format="D", array=[1.5, 2.5, 3.5]),
            fits.Column(name="BITS", format="12X", array=np.zeros((3, 12), bool)),
            fits.Column(name="CLASS", format="6A", array=["GALAXY", "QSO", "STAR"]),
            fits.Column(name="Z", format="E", array=[0.1, 0.2, 0.3]),
            fits.Column(name="OBJID", format="J", bzero=2**31,
                        array=np.array([1, 2**31 + 5, 3], dtype=np.uint32)),
            fits.Column(name="Z_ERR", format="E", bscale=2.0, bzero=1.0, array=np.array([3., 5., 7.]))]
    path = tmp_path / "companion.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="SPECOBJ")]).writeto(path)
    if gzipped:
        with open(path, "rb") as src, gzip.open(tmp_path / "companion.fits.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        path = tmp_path / "companion.fits.gz"
    with fits.open(path) as hdul:
        hdus = list(enumerate(hdul))
        for row in range(3):
            want = {"RA": hdul[1].data["PLUG_RA"][row].item(), "CLASS": hdul[1].data["CLASS"][row],
                    "Z": hdul[1].data["Z"][row].item(), "OBJID": hdul[1].data["OBJID"][row].item(),
                    "Z_ERR": hdul[1].data["Z_ERR"][row].item()}
            assert _meta_from_companion(hdus, row) == want
        assert _meta_from_companion(hdus, 3) == {}  # past the last row: nothing, no error


@pytest.mark.parametrize("gzipped", [False, True])
def test_spectrum_table_read_from_bytes_agrees_with_astropy(tmp_path, gzipped):
    """A spectrum table read from its bytes (plain file) or through astropy (gzip) gives
    the same Spectrum: scaled, integer, string and vector columns beside the spectral ones;
    with a logical column (not read from bytes) and with a TNULL (astropy's masked Table)
    the same again."""
    import gzip
    import shutil

    n = 400
    wave = np.linspace(4000, 8000, n)
    flux = (1 + 0.1 * np.sin(wave / 50)).astype(np.float32)
    base = [fits.Column(name="wavelength", format="D", unit="Angstrom", array=wave),
            fits.Column(name="flux", format="E", bscale=2.0, bzero=0.5, array=flux,
                        unit="erg/(s cm2 Angstrom)"),
            fits.Column(name="ivar", format="E", array=np.full(n, 4.0, np.float32)),
            fits.Column(name="label", format="3A", array=["abc"] * n),
            fits.Column(name="extra", format="2J", array=np.ones((n, 2), np.int32))]
    variants = {"plain": base,
                "logical": base + [fits.Column(name="good", format="L", array=np.ones(n, bool))],
                "nulls": base + [fits.Column(name="mask", format="J", null=-1, array=np.zeros(n, np.int32))]}
    for label, cols in variants.items():
        path = tmp_path / f"{label}.fits"
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
        if gzipped:
            with open(path, "rb") as src, gzip.open(tmp_path / f"{label}.fits.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            path = tmp_path / f"{label}.fits.gz"
        spec = read_spectrum(path)
        with fits.open(path) as hdul:
            want = hdul[1].data
            np.testing.assert_allclose(spec.wavelength.to_value("Angstrom"), want["wavelength"])
            np.testing.assert_allclose(spec.flux, want["flux"], rtol=1e-6)
            np.testing.assert_allclose(spec.ivar, want["ivar"])
        assert spec.flux_unit == "erg/(s cm2 Angstrom)"

def test_masked_nan_flux_is_allowed(tmp_path):
    spec = read_spectrum(make_sdss_table(tmp_path / "nan.fits", nan_pixels=50))
    assert spec.mask.sum() == len(spec) - 50


@pytest.mark.parametrize("log", [False, True])
def test_one_dimensional_iraf_spectrum(tmp_path, log):
    spec = read_spectrum(make_wcs_1d(tmp_path / "star.fits", log=log))
    expected = (10 ** (np.log10(3800.0) + 1.5e-4 * np.arange(1500)) if log
                else 3800.0 + 2.0 * np.arange(1500))
    np.testing.assert_allclose(spec.wavelength.value, expected, rtol=1e-9)
    np.testing.assert_allclose(spec.flux, continuum_spectrum(expected), rtol=1e-5)
    assert spec.ivar is None and spec.meta["OBJECT"] == "HD 12345"
    assert "assumed Angstrom" in spec.meta["WUNITSRC"]  # IRAF names no unit: noted, not hidden
    # sexagesimal RA is in hours
    assert SkyCoord(spec.meta["RA"] * u.deg, spec.meta["DEC"] * u.deg).separation(
        SkyCoord("13:29:52.7 +47:11:43", unit=(u.hourangle, u.deg))) < 0.1 * u.arcsec


def test_cunit_in_nanometres_is_converted(tmp_path):
    h = fits.Header()
    h["CTYPE1"], h["CUNIT1"], h["CRVAL1"], h["CDELT1"], h["CRPIX1"] = "WAVE", "nm", 380.0, 0.2, 1.0
    fits.PrimaryHDU(np.ones(500, dtype=np.float32), header=h).writeto(tmp_path / "nm.fits")
    spec = read_spectrum(tmp_path / "nm.fits")
    assert spec.wavelength[0].value == pytest.approx(3800.0)
    assert spec.wavelength[-1].value == pytest.approx(3800.0 + 2.0 * 499)


def test_fits_standard_wave_log_axis(tmp_path):
    h = fits.Header()
    h["CTYPE1"], h["CUNIT1"], h["CRVAL1"], h["CDELT1"], h["CRPIX1"] = "WAVE-LOG", "Angstrom", 5000.0, 1.0, 1.0
    fits.PrimaryHDU(np.ones(300, dtype=np.float32), header=h).writeto(tmp_path / "log.fits")
    wave = read_spectrum(tmp_path / "log.fits").wavelength.value
    np.testing.assert_allclose(wave, 5000.0 * np.exp(np.arange(300) / 5000.0))


def test_sdss_template_rows_flux_error_and_object_position(tmp_path):
    spec = read_spectrum(make_sdss_template(tmp_path / "sdssOstar.fits"))
    n = 1200
    np.testing.assert_allclose(spec.wavelength.value, 10 ** (3.5815 + 1e-4 * np.arange(n)), rtol=1e-9)
    np.testing.assert_allclose(spec.flux, continuum_spectrum(spec.wavelength.value), rtol=1e-5)
    assert spec.ivar[10] == pytest.approx(4.0)       # 1 / 0.5**2 from the ERROR row
    assert spec.mask.sum() == n - 5                   # zero errors mark bad pixels
    assert spec.flux_unit == "1.0E-17 erg/cm/s/Ang"
    assert spec.meta["RA"] == pytest.approx(RA0)      # RAOBJ, not the plate centre
    assert "WUNITSRC" not in spec.meta                # WAT1 says units=Angstroms


def test_own_format_round_trips(tmp_path):
    wave = np.linspace(4000, 7000, 800) * u.AA
    ivar = np.full(800, 9.0)
    ivar[:20] = 0
    spec = Spectrum(wave, continuum_spectrum(wave.value), ivar=ivar, flux_unit="erg / (s cm2 Angstrom)",
                    meta={"OBJECT": "NGC 1234", "Z": 0.02, "SIMULAT": True, "RA": 10.5, "DEC": -3.25})
    spec.to_fits(tmp_path / "own.fits")
    back = read_spectrum(tmp_path / "own.fits")
    np.testing.assert_allclose(back.wavelength.value, wave.value)
    np.testing.assert_allclose(back.flux, spec.flux, rtol=1e-6)
    np.testing.assert_array_equal(back.ivar, ivar)
    assert back.flux_unit == spec.flux_unit
    for key, value in spec.meta.items():
        assert back.meta[key] == value
    assert sniff(tmp_path / "own.fits") == "spectrum"


@pytest.mark.parametrize("flux_unit, meta", [
    ("", {}),
    ("1e-17 erg/s/cm2/Angstrom", {"OBJECT": "it's 'quoted'" * 6, "Z": np.float32(0.1234567),
                                  "N": np.int64(5), "SIMULAT": np.bool_(True), "LONGKEYWORD": 3.5,
                                  "longkeyw": 4, "flag": False, "skipped": None, "TINY": -1e-300}),
    ("Jy", {"NAXIS2": 5, "COMMENT": "keys of the table's structure: astropy's own way"}),
])
def test_own_format_is_byte_for_byte_what_astropy_writes(tmp_path, flux_unit, meta):
    """to_fits puts the file together without BinTableHDU/writeto: the same bytes, cheaper."""
    wave = np.geomspace(3600, 10400, 999) * u.AA
    spec = Spectrum(wave, continuum_spectrum(wave.value), ivar=None if meta else np.full(999, 4.0),
                    flux_unit=flux_unit, meta=meta)
    spec.to_fits(tmp_path / "fast.fits")
    spec._fits_hdus().writeto(tmp_path / "astropy.fits")
    assert (tmp_path / "fast.fits").read_bytes() == (tmp_path / "astropy.fits").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


def test_card_images_are_what_astropy_formats():
    """card_image makes the common cards itself: each one is astropy's Card, character for
    character, and what it does not make (long strings, odd keys) is astropy's own."""
    rng = np.random.default_rng(3)
    floats = [0.0, -0.0, 1.0, -1e-300, 1e300, 5e-324, 1 / 3, 2.0**60, 123456789.123456789,
              *rng.normal(0, 1, 200), *(10.0 ** rng.uniform(-320, 308, 300)),
              *(rng.uniform(-360, 360, 200))]
    values = [True, False, 0, -7, 2**62, -(2**63), *map(float, floats), "", "a", "it's",
              "x" * 8, "y" * 18, "z" * 67, "q'" * 30, "trailing   ", "  leading", "two  spaces",
              "é not ascii", "tab\there"]
    for keyword in ("RA", "DEC", "Z", "OBJECT", "LONG_K-1", "lower", "A B", "HIERARCHY1"):
        for value in values:
            for comment in ("", "a comment", "c" * 70):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        want = fits.Card(keyword, value, comment).image
                except Exception as exc:  # astropy refuses it: so does card_image
                    with pytest.raises(type(exc)):
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            card_image(keyword, value, comment)
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    assert card_image(keyword, value, comment) == want, (keyword, value, comment)


def test_text_and_csv_spectra_with_units_in_the_header(tmp_path):
    wave_nm = np.linspace(400, 700, 200)
    flux = continuum_spectrum(wave_nm * 10)
    lines = ["# my spectrum", "# wavelength [nm]  flux [erg/s/cm2/A]  error"]
    lines += [f"{w:.4f} {f:.6f} 0.5" for w, f in zip(wave_nm, flux)]
    (tmp_path / "s.txt").write_text("\n".join(lines))
    spec = read_spectrum(tmp_path / "s.txt")
    np.testing.assert_allclose(spec.wavelength.value, wave_nm * 10, rtol=1e-6)
    assert spec.ivar[0] == pytest.approx(4.0) and spec.flux_unit == "erg/s/cm2/A"
    assert sniff(tmp_path / "s.txt") == "spectrum"

    csv = ["wavelength_um,flux"] + [f"{w / 1000:.6f},{f:.5f}" for w, f in zip(wave_nm, flux)]
    (tmp_path / "s.csv").write_text("\n".join(csv))
    spec = read_spectrum(tmp_path / "s.csv")
    np.testing.assert_allclose(spec.wavelength.value, wave_nm * 10, rtol=1e-5)
    assert sniff(tmp_path / "s.csv") == "spectrum"


def test_headerless_columns_and_decreasing_wavelengths(tmp_path):
    wave = np.linspace(7000, 4000, 300)  # decreasing, as some reductions write them
    rows = [f"{w:.3f} {f:.5f} 0.1" for w, f in zip(wave, continuum_spectrum(wave))]
    (tmp_path / "s.dat").write_text("\n".join(rows))
    spec = read_spectrum(tmp_path / "s.dat")
    assert np.all(np.diff(spec.wavelength.value) > 0)
    np.testing.assert_allclose(spec.flux, continuum_spectrum(spec.wavelength.value), rtol=1e-4)
    assert spec.ivar[0] == pytest.approx(100.0) and "WUNITSRC" in spec.meta


def test_frequency_axis_becomes_increasing_angstrom(tmp_path):
    freq = np.linspace(4.0e14, 7.5e14, 400)  # Hz, increasing -> wavelength decreasing
    t = Table({"wavelength": freq * u.Hz, "flux": np.ones(400)})
    t.write(tmp_path / "f.ecsv")
    spec = read_spectrum(tmp_path / "f.ecsv")
    assert np.all(np.diff(spec.wavelength.value) > 0)
    assert spec.wavelength[0].value == pytest.approx(2.99792458e18 / 7.5e14, rel=1e-9)


def test_desi_camera_layout_is_stitched(tmp_path):
    hdus = [fits.PrimaryHDU()]
    fm = Table({"TARGETID": [1, 2], "TARGET_RA": [RA0, 10.0], "TARGET_DEC": [DEC0, 5.0]})
    hdus.append(fits.table_to_hdu(fm))
    hdus[-1].name = "FIBERMAP"
    for cam, lo, hi in (("B", 3600, 5900), ("R", 5700, 7700), ("Z", 7500, 9800)):
        wave = np.arange(lo, hi, 0.8)
        w = fits.ImageHDU(wave, name=f"{cam}_WAVELENGTH")
        w.header["BUNIT"] = "Angstrom"
        flux = np.stack([continuum_spectrum(wave), continuum_spectrum(wave) * 2])
        hdus += [w, fits.ImageHDU(flux, name=f"{cam}_FLUX"),
                 fits.ImageHDU(np.ones_like(flux), name=f"{cam}_IVAR"),
                 fits.ImageHDU(np.zeros(flux.shape, dtype=np.int32), name=f"{cam}_MASK")]
    fits.HDUList(hdus).writeto(tmp_path / "coadd.fits")
    assert sniff(tmp_path / "coadd.fits") == "spectrum"
    spec = read_spectrum(tmp_path / "coadd.fits", index=1)
    assert np.all(np.diff(spec.wavelength.value) > 0)
    assert spec.wavelength[0].value == pytest.approx(3600) and spec.wavelength[-1].value > 9790
    np.testing.assert_allclose(spec.flux, 2 * continuum_spectrum(spec.wavelength.value), rtol=1e-5)
    assert spec.meta["RA"] == pytest.approx(10.0)


# --- catalogs, text, sniffing ------------------------------------------------------------

@pytest.mark.parametrize("suffix,fmt", [(".vot", "votable"), (".csv", "ascii.csv"),
                                        (".parquet", "parquet"), (".fits", "fits"),
                                        (".ecsv", "ascii.ecsv")])
def test_catalog_formats_give_the_same_positions(tmp_path, suffix, fmt):
    t = catalog_table()
    path = tmp_path / f"cat{suffix}"
    t.write(path, format=fmt)
    cat = read_catalog(path)
    assert len(cat) == 5 and cat.meta["ra_column"] == "RAJ2000"
    coords = catalog_coords(cat)
    assert coords[0].separation(M51) < 0.01 * u.arcsec
    assert sniff(path) == "catalog"


def test_sexagesimal_and_lowercase_radec_columns(tmp_path):
    (tmp_path / "c.csv").write_text("ra,dec,name\n13:29:52.7,+47:11:43,M51\n00:42:44.3,+41:16:09,M31\n")
    coords = catalog_coords(read_catalog(tmp_path / "c.csv"))
    assert coords[1].separation(SkyCoord("00h42m44.3s +41d16m09s")) < 0.1 * u.arcsec


def test_read_text_markdown(tmp_path):
    (tmp_path / "notes.md").write_text("# M51\n\nA grand-design spiral interacting with NGC 5195.\n")
    assert read_text(tmp_path / "notes.md").startswith("# M51")
    assert sniff(tmp_path / "notes.md") == "text"


def test_sniff_goes_by_content_not_name(tmp_path):
    make_image(tmp_path / "image.dat")  # a FITS image with a misleading name
    assert sniff(tmp_path / "image.dat") == "image"
    make_sdss_template(tmp_path / "template.img")
    assert sniff(tmp_path / "template.img") == "spectrum"
    make_wcs_1d(tmp_path / "oned.fits")
    assert sniff(tmp_path / "oned.fits") == "spectrum"
    make_png(tmp_path / "really_a_png.fits")
    assert sniff(tmp_path / "really_a_png.fits") == "image"
    assert read_image(tmp_path / "really_a_png.fits").bands == ["R", "G", "B"]
    make_cube(tmp_path / "cube.fits")
    assert sniff(tmp_path / "cube.fits") == "image"


# --- cross-matching ----------------------------------------------------------------------

def test_crossmatch_radius_is_an_angle_quantity():
    a = SkyCoord([10.0, 20.0] * u.deg, [0.0, 0.0] * u.deg)
    b = SkyCoord([10.0 + 3 / 3600, 20.0 + 30 / 3600, 50.0] * u.deg, [0.0, 0.0, 0.0] * u.deg)
    pairs = crossmatch(a, b, 5 * u.arcsec)
    assert list(pairs.idx_a) == [0] and list(pairs.idx_b) == [0]
    assert pairs.separation[0].to_value(u.arcsec) == pytest.approx(3.0, rel=1e-6)
    assert len(crossmatch(a, b, 1 * u.arcmin)) == 2
    assert len(crossmatch(a, b, 0.5 * u.arcmin, nearest=True)) == 2
    for bad in (5, 5.0, 5 * u.m, -1 * u.arcsec, [1, 2] * u.arcsec):
        with pytest.raises(AstroVLMError, match="radius"):
            crossmatch(a, b, bad)


def test_group_by_position_chains_friends():
    c = SkyCoord([0, 4, 8, 100] * u.arcsec, [0, 0, 0, 0] * u.arcsec)
    labels = group_by_position(c, 5 * u.arcsec)
    assert labels[0] == labels[1] == labels[2] != labels[3]


def test_table_of_spectra_in_vector_columns(tmp_path):
    wave = np.linspace(4000, 8000, 400)
    t = Table({"WAVE": np.stack([wave, wave]) * u.AA,
               "FLUX": np.stack([continuum_spectrum(wave), 3 * continuum_spectrum(wave)])})
    t.write(tmp_path / "many.fits")
    assert sniff(tmp_path / "many.fits") == "spectrum"
    spec = read_spectrum(tmp_path / "many.fits", index=1)
    np.testing.assert_allclose(spec.flux, 3 * continuum_spectrum(wave), rtol=1e-6)
    with pytest.raises(AstroVLMError, match="index 2 is out of range"):
        read_spectrum(tmp_path / "many.fits", index=2)


def test_transparent_png_pixels_are_black_sky(tmp_path):
    from PIL import Image

    rgba = np.zeros((10, 12, 4), dtype=np.uint8)
    rgba[..., :3] = 200          # colour hidden under full transparency
    rgba[2:5, 3:6, 3] = 255      # an opaque patch
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "fade.png")
    rgb = read_image(tmp_path / "fade.png").to_rgb()
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[3, 4].tolist() == [200, 200, 200]


@pytest.mark.parametrize("cards", [
    {"RA": 10.5, "DEC": -3.25}, {"RA": -10.5, "DEC": 3.0}, {"RA": 370.25, "DEC": 3.0},
    {"RA": -1e-20, "DEC": 5.0}, {"RA": 0, "DEC": 0, "RADEG": 5, "DECDEG": 6},
    {"RA": 10, "DEC": 95, "OBJRA": "12:30:00", "OBJDEC": "+12:00:00"}, {"RA": "12.5", "DEC": "-3"},
    {"RA": 150.1, "DEC": 2.2, "EQUINOX": 1950.0},
    {"RA": 150.1, "DEC": 2.2, "RADESYS": "FK5", "EQUINOX": 1975.0},
    {"RAOBJ": 202.47, "DECOBJ": 47.19, "RA": 1.0, "DEC": 1.0}, {"RA": True, "DEC": 3.0}, {},
])
def test_header_radec_is_header_coord_in_degrees(cards):
    from astrovlm.data.readers._common import header_coord, header_radec

    header = fits.Header(list(cards.items()))
    coord = header_coord(header)
    assert header_radec(header) == (None if coord is None else (coord.ra.deg, coord.dec.deg))


@pytest.mark.parametrize("frame", ["icrs rotated", "icrs sip", "fk5", "galactic"])
def test_image_centre_and_fov_agree_with_the_full_wcs(tmp_path, frame):
    """The centre and field of view that a plain ICRS header gets straight from wcslib are
    the full astropy WCS's; distortions and other frames take the full WCS (and agree too)."""
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS
    from astropy.wcs.utils import proj_plane_pixel_scales

    from astrovlm.data.readers import fits_image

    w = WCS(naxis=2)
    w.wcs.crpix = [20.0, 31.0]  # off centre, so that the centre is a real transform
    w.wcs.cdelt = [-0.5 / 3600, 0.5 / 3600]
    angle = np.radians(30)
    w.wcs.pc = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    if frame == "galactic":
        w.wcs.ctype, w.wcs.crval = ["GLON-TAN", "GLAT-TAN"], [120.0, -5.0]
    else:
        w.wcs.ctype, w.wcs.crval = ["RA---TAN", "DEC--TAN"], [202.47, 47.19]
        w.wcs.radesys = "FK5" if frame == "fk5" else "ICRS"
        if frame == "fk5":
            w.wcs.equinox = 2000.0
    header = w.to_header()
    if frame == "icrs sip":
        header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
        header.update({"A_ORDER": 2, "B_ORDER": 2, "A_2_0": 1e-5, "B_0_2": -2e-5})
    path = tmp_path / "field.fits"
    fits.PrimaryHDU(np.ones((48, 64), np.float32), header=header).writeto(path)

    cut = read_image(path)
    full = WCS(fits.getheader(path)).celestial
    expected = full.pixel_to_world((64 - 1) / 2.0, (48 - 1) / 2.0)
    assert cut.center.separation(SkyCoord(expected).icrs).to_value(u.arcsec) < 1e-6
    scales = proj_plane_pixel_scales(full)
    assert cut.fov().to_value(u.deg) == pytest.approx(max(scales[0] * 64, scales[1] * 48), rel=1e-12)
    fast = frame == "icrs rotated"
    assert (cut._wcs is fits_image.FROM_HEADER) == fast  # only the plain header skips the WCS
    assert cut.wcs.pixel_to_world(0, 0).separation(full.pixel_to_world(0, 0)).to_value(u.arcsec) < 1e-6


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")
def test_header_values_from_bytes_agree_with_astropy(tmp_path):
    """``card`` reads a plain file's values from its header bytes (``header_values``); for
    every kind of card (strings with quotes and slashes, D exponents, logicals, blanks,
    complex, CONTINUE, HIERARCH, lower-case and repeated keywords, a value astropy cannot
    parse) it gives what the astropy path gives."""
    from astrovlm.data.readers._common import card, header_values, iter_hdus, open_fits

    cards = ["SIMPLE  =                    T", "BITPIX  =                  -32", "NAXIS   =                    1",
             "NAXIS1  =                    4", "OBJECT  = 'O''Brien / field'   / a name with a quote",
             "EMPTY   = ''", "BLANKS  = '   '", "LEAD    = '  padded'", "CD1_1   =              1.5D-03",
             "CRVAL1  =               4000.0 / Angstrom", "DC-FLAG =                    1", "FLAG    =                    F",
             "NEG     =                 -012", "CPLX    = (1.0, 2.0)", "UNDEF   =", "Z       = 0.0000-000000000E-04",
             "LONGSTR = 'part one &'", "CONTINUE  'part two'", "HIERARCH ESO DET CHIP = 'CCD-1'",
             "lower   =                   42", "DUP     =                    1", "DUP     =                    2",
             "NOEQUAL  nothing here", "COMMENT a comment card", "HISTORY history", "RADEG   = 1.23E+02",
             "END"]
    header = "".join(c.ljust(80) for c in cards)
    header += " " * (-len(header) % 2880)
    path = tmp_path / "cards.fits"
    path.write_bytes(header.encode("ascii") + np.zeros(4, ">f4").tobytes() + b"\0" * 2864)
    keys = [c[:8].strip() for c in cards] + ["ESO DET CHIP", "LOWER", "ABSENT", "OBJECT"]
    with open_fits(path) as hdul:
        _, hdu = next(iter_hdus(hdul, path))
        assert header_values(hdu.header) is not None  # the bytes path is taken
        plain = fits.Header.fromstring(header)        # the same cards, astropy's path only
        assert header_values(plain) is None
        for key in keys:
            got, want = card(hdu.header, key, "dflt"), card(plain, key, "dflt")
            assert got == want and type(got) is type(want), key
