"""Small files in the layouts users bring (FITS images, cubes, SDSS/DESI/IRAF spectra,
catalogs, PNG), made by the tests themselves. Shared by the reader, bad-input and ingest tests.

The spectra here are a smooth continuum with a few absorption lines: enough structure to
check that wavelengths, fluxes and masks survive each layout, nothing more.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

RA0, DEC0 = 202.4696, 47.1952  # M51


def continuum_spectrum(wave_aa: np.ndarray, z: float = 0.0) -> np.ndarray:
    """A 6000 K-like slope with H-beta, Mg b and H-alpha absorption, shifted by z."""
    w = np.asarray(wave_aa, dtype=float)
    flux = 1e4 / (w / 5000.0) ** 2
    for line, depth in ((4861.3, 0.4), (5175.3, 0.25), (6562.8, 0.5)):
        flux *= 1 - depth * np.exp(-0.5 * ((w - line * (1 + z)) / 4.0) ** 2)
    return flux


def celestial_header(shape, ra=RA0, dec=DEC0, scale_arcsec=1.0) -> fits.Header:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(shape[-1] + 1) / 2.0, (shape[-2] + 1) / 2.0]  # centre pixel (1-based)
    w.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    return w.to_header()


def galaxy_pixels(shape=(64, 80), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    blob = 500.0 * np.exp(-(((x - cx) / 6) ** 2 + ((y - cy) / 4) ** 2))
    return (blob + 20 + rng.normal(0, 2, shape)).astype(np.float32)


def make_image(path, shape=(64, 80), ra=RA0, dec=DEC0, obj="M51", extension=False,
               extname="SCI", with_wcs=True) -> Path:
    header = celestial_header(shape, ra, dec) if with_wcs else fits.Header()
    if obj:
        header["OBJECT"] = obj
    header["FILTER"] = "r"
    data = galaxy_pixels(shape)
    if extension:
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header=header, name=extname)])
    else:
        hdul = fits.HDUList([fits.PrimaryHDU(data, header=header)])
    hdul.writeto(path, overwrite=True)
    return Path(path)


def make_cube(path, bands=("g", "r", "i"), shape=(32, 40)) -> Path:
    header = celestial_header(shape)
    for i, b in enumerate(bands, 1):
        header[f"FILTER{i}"] = b
    # band k is (k+1) times brighter, so the channel order is testable
    data = np.stack([galaxy_pixels(shape, seed=i) * (i + 1) for i in range(len(bands))])
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return Path(path)


def sdss_loglam(n=2000, start=3.5798):
    return start + 1e-4 * np.arange(n)


def make_sdss_table(path, z=0.05, ra=RA0, dec=DEC0, nan_pixels=0) -> Path:
    """An SDSS ``spec-*.fits``: COADD table (flux, loglam, ivar) and a SPECOBJ row."""
    loglam = sdss_loglam()
    flux = continuum_spectrum(10**loglam, z)
    ivar = np.full_like(flux, 4.0)
    if nan_pixels:
        flux[100:100 + nan_pixels] = np.nan
        ivar[100:100 + nan_pixels] = 0.0
    coadd = fits.BinTableHDU.from_columns([
        fits.Column(name="flux", format="E", array=flux, unit="1e-17 erg/(s cm2 Angstrom)"),
        fits.Column(name="loglam", format="E", array=loglam),
        fits.Column(name="ivar", format="E", array=ivar),
        fits.Column(name="and_mask", format="J", array=np.zeros(len(flux), dtype=np.int32)),
    ], name="COADD")
    specobj = fits.BinTableHDU.from_columns([
        fits.Column(name="PLUG_RA", format="D", array=[ra]),
        fits.Column(name="PLUG_DEC", format="D", array=[dec]),
        fits.Column(name="Z", format="E", array=[z]),
        fits.Column(name="CLASS", format="6A", array=["GALAXY"]),
        fits.Column(name="SUBCLASS", format="10A", array=["STARFORMING"]),
    ], name="SPECOBJ")
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "SDSS 2.5-M"
    fits.HDUList([primary, coadd, specobj]).writeto(path, overwrite=True)
    return Path(path)


def make_wcs_1d(path, log=False, n=1500, unit_card=None, obj="HD 12345") -> Path:
    """A 1-D IRAF-style spectrum: linear (CRVAL1 Angstrom) or log-linear (DC-FLAG = 1)."""
    h = fits.Header()
    if log:
        h["CRVAL1"], h["CD1_1"], h["DC-FLAG"] = np.log10(3800.0), 1.5e-4, 1
        wave = 10 ** (np.log10(3800.0) + 1.5e-4 * np.arange(n))
    else:
        h["CRVAL1"], h["CDELT1"], h["DC-FLAG"] = 3800.0, 2.0, 0
        wave = 3800.0 + 2.0 * np.arange(n)
    h["CRPIX1"], h["CTYPE1"] = 1.0, "LINEAR"
    if unit_card:
        h["CUNIT1"] = unit_card
    h["OBJECT"] = obj
    h["RA"], h["DEC"] = "13:29:52.7", "+47:11:43"
    fits.PrimaryHDU(continuum_spectrum(wave).astype(np.float32), header=h).writeto(path, overwrite=True)
    return Path(path)


def make_sdss_template(path, n=1200) -> Path:
    """The RVSAO SDSS template layout: a 4 x N array (flux, continuum-subtracted, error,
    mask), log-linear wavelengths in CRVAL1/CD1_1 with DC-FLAG = 1."""
    loglam = 3.5815 + 1e-4 * np.arange(n)
    flux = continuum_spectrum(10**loglam)
    err = np.full(n, 0.5)
    err[:5] = 0.0  # SDSS marks bad pixels with a zero error
    rows = np.stack([flux, flux - np.median(flux), err, np.zeros(n)]).astype(np.float32)
    h = fits.Header()
    h["RAOBJ"], h["DECOBJ"] = RA0, DEC0
    h["RA"], h["DEC"] = RA0 + 1.0, DEC0  # the plate centre: must not be taken as the object
    h["WAT0_001"] = "system=linear"
    h["WAT1_001"] = "wtype=linear label=Wavelength units=Angstroms"
    h["CRPIX1"], h["CTYPE1"], h["DC-FLAG"] = 1, "LINEAR", 1
    for i, name in enumerate(("SPECTRUM", "CONTINUUM-SUBTRACTED SPECTRUM", "ERROR", "MASK"), 1):
        h[f"ARRAY{i}"] = name
    h["BUNIT"] = "1.0E-17 erg/cm/s/Ang"
    h["COEFF0"], h["COEFF1"] = 3.5815, 1e-4
    h["CRVAL1"], h["CD1_1"] = 3.5815, 1e-4
    fits.PrimaryHDU(rows, header=h).writeto(path, overwrite=True)
    return Path(path)


def catalog_table(n=5) -> Table:
    ra = RA0 + np.arange(n) * 0.5
    dec = DEC0 - np.arange(n) * 0.25
    t = Table({"name": [f"OBJ{i}" for i in range(n)], "RAJ2000": ra, "DEJ2000": dec,
               "type": ["galaxy"] * n, "z": np.linspace(0.01, 0.05, n)})
    t["RAJ2000"].unit = u.deg
    t["DEJ2000"].unit = u.deg
    t["name"][0] = "M51"
    return t


def make_png(path, size=(48, 40), mode="RGB") -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    h, w = size
    if mode == "RGB":
        arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    else:
        arr = rng.integers(0, 255, (h, w), dtype=np.uint8)
    Image.fromarray(arr, mode=mode).save(path, format="PNG")  # whatever the name says
    return Path(path)
