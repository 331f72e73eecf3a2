"""Bad input: every case gives an AstroVLMError naming the file and the problem."""

from __future__ import annotations

import struct
import zlib

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from astrovlm.data.readers import (
    catalog_coords, read_catalog, read_image, read_spectrum, read_text, sniff)
from astrovlm.errors import AstroVLMError
from _checks import fails
from fits_fixtures import catalog_table, make_image, make_png, make_sdss_table


def spectrum_table_file(path, wave, flux, ivar=None, wave_unit="Angstrom"):
    cols = [fits.Column(name="WAVELENGTH", format="D", array=wave, unit=wave_unit),
            fits.Column(name="FLUX", format="E", array=flux)]
    if ivar is not None:
        cols.append(fits.Column(name="IVAR", format="E", array=ivar))
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    return path


# --- empty, corrupt, truncated -------------------------------------------------------------

@pytest.mark.parametrize("name", ["x.fits", "x.csv", "x.png", "x.txt", "x.parquet"])
@pytest.mark.parametrize("reader", [sniff, read_image, read_spectrum, read_catalog, read_text])
def test_empty_files(tmp_path, name, reader):
    (tmp_path / name).write_bytes(b"")
    fails(reader, tmp_path / name, "empty")


@pytest.mark.parametrize("reader", [sniff, read_image, read_spectrum, read_catalog])
def test_corrupt_fits(tmp_path, reader):
    path = tmp_path / "corrupt.fits"
    path.write_bytes(b"SIMPLE  =  this is not a FITS header at all" + bytes(range(256)) * 20)
    fails(reader, path, "not a readable FITS file")


def test_truncated_fits_image_and_table(tmp_path):
    full = make_image(tmp_path / "full.fits", shape=(200, 200)).read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(full[: len(full) // 2])
    fails(read_image, cut, "truncated")

    full = make_sdss_table(tmp_path / "spec.fits").read_bytes()
    cut_spec = tmp_path / "cut_spec.fits"
    cut_spec.write_bytes(full[: 2880 * 4])
    fails(read_spectrum, cut_spec)


def test_truncated_png(tmp_path):
    data = make_png(tmp_path / "ok.png", size=(300, 300)).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    fails(read_image, tmp_path / "cut.png", "corrupt or truncated")


def test_unknown_file_types(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "blob.bin").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    fails(sniff, tmp_path / "blob.bin", "unknown file type")
    fails(read_image, tmp_path / "blob.bin", "unknown file type")
    (tmp_path / "notes.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(40))
    fails(sniff, tmp_path / "notes.gz")
    (tmp_path / "bin.txt").write_bytes(b"abc\x00\x01\x02" * 100)
    fails(read_text, tmp_path / "bin.txt", "binary")


# --- FITS files with nothing usable in them ----------------------------------------------

def test_fits_with_no_image_or_spectrum(tmp_path):
    path = tmp_path / "nothing.fits"
    fits.PrimaryHDU().writeto(path)
    fails(read_image, path, "no image")
    fails(read_spectrum, path, "no spectrum")
    fails(sniff, path, "no image, spectrum or catalog")

    table = tmp_path / "table.fits"
    Table({"a": [1, 2], "b": [3, 4]}).write(table)
    fails(read_spectrum, table, "no spectrum", "table")
    fails(sniff, table, "no image, spectrum or catalog")


def test_spectrum_file_given_to_image_reader(tmp_path):
    make_sdss_table(tmp_path / "spec.fits")
    fails(read_image, tmp_path / "spec.fits", "no image")
    h = fits.Header()
    h["CRVAL1"], h["CDELT1"] = 4000.0, 1.0
    fits.PrimaryHDU(np.ones(500, dtype=np.float32), header=h).writeto(tmp_path / "oned.fits")
    fails(read_image, tmp_path / "oned.fits", "spectrum, not an image")


def test_all_blank_image(tmp_path):
    fits.PrimaryHDU(np.full((20, 20), np.nan, dtype=np.float32)).writeto(tmp_path / "blank.fits")
    fails(read_image, tmp_path / "blank.fits", "no finite pixels")


# --- NaN / inf flux --------------------------------------------------------------------------

def test_all_nan_flux(tmp_path):
    wave = np.linspace(4000, 7000, 500)
    path = spectrum_table_file(tmp_path / "nan.fits", wave, np.full(500, np.nan))
    fails(read_spectrum, path, "flux", "NaN or infinite everywhere")


def test_inf_flux_everywhere_but_a_few_pixels(tmp_path):
    wave = np.linspace(4000, 7000, 500)
    flux = np.full(500, np.inf)
    flux[:10] = 1.0
    path = spectrum_table_file(tmp_path / "inf.fits", wave, flux)
    fails(read_spectrum, path, "only 10 of 500", "usable")


def test_ivar_zero_everywhere(tmp_path):
    wave = np.linspace(4000, 7000, 500)
    path = spectrum_table_file(tmp_path / "ivar0.fits", wave, np.ones(500), ivar=np.zeros(500))
    fails(read_spectrum, path, "masked everywhere")


def test_nan_flux_masked_by_ivar_is_fine(tmp_path):
    wave = np.linspace(4000, 7000, 500)
    flux, ivar = np.ones(500), np.ones(500)
    flux[50:60], ivar[50:60] = np.nan, 0.0
    spec = read_spectrum(spectrum_table_file(tmp_path / "ok.fits", wave, flux, ivar))
    assert spec.mask.sum() == 490


# --- wavelengths -----------------------------------------------------------------------------

def test_non_monotonic_wavelength(tmp_path):
    wave = np.linspace(4000, 7000, 500)
    wave[300] = 4100.0
    path = spectrum_table_file(tmp_path / "zigzag.fits", wave, np.ones(500))
    fails(read_spectrum, path, "not monotonic", "pixel 300")


def test_repeated_wavelength(tmp_path):
    wave = np.linspace(4000, 7000, 500)
    wave[11] = wave[10]
    fails(read_spectrum, spectrum_table_file(tmp_path / "rep.fits", wave, np.ones(500)), "not monotonic")


def test_unitless_wavelength_that_is_not_clearly_angstrom(tmp_path):
    wave = np.linspace(0.4, 0.9, 500)  # microns? nothing says so
    path = spectrum_table_file(tmp_path / "nounit.fits", wave, np.ones(500), wave_unit=None)
    fails(read_spectrum, path, "wavelength has no unit")
    txt = tmp_path / "nounit.txt"
    txt.write_text("\n".join(f"{w:.5f} 1.0" for w in np.linspace(400, 900, 200)))  # nm? A?
    fails(read_spectrum, txt, "wavelength has no unit")


def test_wavelength_with_a_unit_that_is_not_spectral(tmp_path):
    wave = np.linspace(4000, 7000, 500)
    path = spectrum_table_file(tmp_path / "kg.fits", wave, np.ones(500), wave_unit="kg")
    fails(read_spectrum, path, "unit 'kg' is not a wavelength")


def test_nan_wavelengths(tmp_path):
    wave = np.linspace(4000, 7000, 500)
    wave[5] = np.nan
    fails(read_spectrum, spectrum_table_file(tmp_path / "nanw.fits", wave, np.ones(500)),
          "wavelength has 1 NaN")


def test_one_d_image_without_wavelength_solution(tmp_path):
    fits.PrimaryHDU(np.ones(500, dtype=np.float32)).writeto(tmp_path / "bare.fits")
    fails(read_spectrum, tmp_path / "bare.fits", "no wavelength solution")
    h = fits.Header()
    h["CTYPE1"], h["CRVAL1"], h["CDELT1"], h["DC-FLAG"] = "PIXEL", 1.0, 1.0, 0
    fits.PrimaryHDU(np.ones(500, dtype=np.float32), header=h).writeto(tmp_path / "pix.fits")
    fails(read_spectrum, tmp_path / "pix.fits", "pixel coordinates only")


def test_too_few_pixels(tmp_path):
    wave = np.linspace(4000, 7000, 10)
    fails(read_spectrum, spectrum_table_file(tmp_path / "short.fits", wave, np.ones(10)), "only 10 pixels")


# --- absurd sizes, decided from headers ------------------------------------------------------

def test_absurd_fits_image_refused_from_the_header(tmp_path):
    """The file holds only a header (no pixels): refusing it proves the check reads no data."""
    h = fits.Header()
    h["SIMPLE"], h["BITPIX"], h["NAXIS"], h["NAXIS1"], h["NAXIS2"] = True, -32, 2, 20000, 20000
    path = tmp_path / "huge.fits"
    path.write_bytes(h.tostring().encode("ascii"))
    fails(read_image, path, "too large", "20000 x 20000")
    h["NAXIS1"], h["NAXIS2"] = 15000, 15000  # each side allowed, 225 megapixels is not
    path.write_bytes(h.tostring().encode("ascii"))
    fails(read_image, path, "too large")


def test_deep_cube_is_not_a_multiband_image(tmp_path):
    fits.PrimaryHDU(np.zeros((40, 16, 16), dtype=np.float32)).writeto(tmp_path / "ifu.fits")
    fails(read_image, tmp_path / "ifu.fits", "40 planes")


def _png_header_only(path, width, height):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_absurd_png_refused_from_the_header(tmp_path):
    fails(read_image, _png_header_only(tmp_path / "wide.png", 17000, 100), "too large")
    fails(read_image, _png_header_only(tmp_path / "bomb.png", 30000, 30000), "too large")


# --- catalogs --------------------------------------------------------------------------------

def test_unreadable_catalogs(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"not really parquet" * 10)
    fails(read_catalog, tmp_path / "bad.parquet", "unreadable")
    (tmp_path / "bad.vot").write_text("<?xml version='1.0'?><VOTABLE><RESOURCE><TABLE><FIELD")
    fails(read_catalog, tmp_path / "bad.vot", "unreadable")
    (tmp_path / "ragged.csv").write_text("ra,dec\n1,2,3,4\n5\n")
    fails(read_catalog, tmp_path / "ragged.csv", "unreadable")


def test_catalog_without_rows_or_positions(tmp_path):
    (tmp_path / "empty.csv").write_text("ra,dec,name\n")
    fails(read_catalog, tmp_path / "empty.csv", "no rows")
    (tmp_path / "nopos.csv").write_text("name,mag\nM51,8.4\n")
    cat = read_catalog(tmp_path / "nopos.csv")
    with pytest.raises(AstroVLMError, match="no RA/Dec columns") as info:
        catalog_coords(cat)
    assert "nopos.csv" in str(info.value)
    fails(sniff, tmp_path / "nopos.csv", "neither RA/Dec")


def test_catalog_with_impossible_declinations(tmp_path):
    t = catalog_table()
    t["DEJ2000"] = t["DEJ2000"].value * 3.0  # 141 degrees
    t.write(tmp_path / "bad_dec.ecsv")
    cat = read_catalog(tmp_path / "bad_dec.ecsv")
    with pytest.raises(AstroVLMError, match="outside -90..90"):
        catalog_coords(cat)


def test_catalog_coordinate_unit_must_be_an_angle(tmp_path):
    t = catalog_table()
    t["RAJ2000"].unit = u.m
    t.write(tmp_path / "metres.ecsv")
    with pytest.raises(AstroVLMError, match="not an angle"):
        catalog_coords(read_catalog(tmp_path / "metres.ecsv"))
