"""The SpeX Prism Library: 3,089 real near-infrared spectra (0.65-2.55 um, R~75-200).

They ship inside PyPI ``splat==1.14`` (``resources/Spectra/Public/SPEX-PRISM/*.fits.gz``,
each a (3, N) array: wavelength [um], F_lambda [W m-2 um-1], uncertainty), with their
spectral types, gravity classes, positions and bibcodes in ``db/spectral_data.csv`` and
``db/source_data.csv``. We read the files and tables only: ``import splat`` would open
network connections.

Types are taken, in this order, from the library's own NIR classification against its
standards (``SPEX_TYPE``), the published NIR type, the optical type, the literature type;
``OBJECT_TYPE`` (GIANT, WD, GALAXY, QSO, ...) decides the non-dwarf classes.
"""

from __future__ import annotations

import csv
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.utils.exceptions import AstropyWarning

from astrovlm.data.sources import pypi
from astrovlm.data.spectrum import Spectrum
from astrovlm.errors import UnreadableError

log = logging.getLogger(__name__)

CREDIT = ("SpeX Prism Library (Burgasser 2014, ASInC 11, 7), via SPLAT 1.14; "
          "cite each spectrum's bibcode")
LICENSE = "MIT (SPLAT); spectra public, cite the data papers"
SOURCE = "SpeX Prism Library (PyPI splat==1.14)"
GLIKMAN_CREDIT = "Glikman, Helfand & White 2006, ApJ 640, 579 (NIR quasar spectra), via SPLAT 1.14"
RESERVED = "outside evaluation"
# Vega's ICRS position (SIMBAD): a spectrum of it must never reach training.
_VEGA_DEG = (279.234735, 38.783689)

# Coarse classes of this library (dwarfs by letter, then what OBJECT_TYPE says).
CLASSES = ("O/B star", "A star", "F star", "G star", "K star", "M dwarf", "L dwarf",
           "T dwarf", "Y dwarf", "giant", "white dwarf", "carbon star", "galaxy", "quasar", "other", "unclassified")
_BY_OBJECT_TYPE = {"GIANT": "giant", "WD": "white dwarf", "CARBON": "carbon star",
                   "GALAXY": "galaxy", "QSO": "quasar", "SN": "other", "NOVA": "other",
                   "PLANET": "other"}
_DWARF = {"O": "O/B star", "B": "O/B star", "A": "A star", "F": "F star", "G": "G star",
          "K": "K star", "M": "M dwarf", "L": "L dwarf", "T": "T dwarf", "Y": "Y dwarf"}
# "M7.5", "L4 beta", "sdM3", "d/sdM8", "T6.5p": an optional sd/esd/d prefix, letter, subtype.
_TYPE = re.compile(r"^\s*(?:(?:e?sd|d/sd|d)(?=[OBAFGKMLTY]))?([OBAFGKMLTY])\s*(\d+(?:\.\d+)?)?")
# Luminosity class I-III after the subtype (a giant or supergiant), not IV/V.
_GIANT = re.compile(r"[\d.:\s]\s*(?:Ia|Iab|Ib|I|II|III|I/III|II-III)\s*[:?]?\s*$|\b(?:massive )?giant\b")


@dataclass
class SpexSpectrum:
    """One SpeX prism spectrum and its library facts (real, observed)."""

    spectrum_id: str            # "spex:DATA_KEY"
    data_key: str
    source_key: str
    name: str                   # the source's name, e.g. "2MASS J0000286-124515"
    file: str                   # file name inside the package's SPEX-PRISM folder
    path: str                   # absolute path of that file in the cache
    ra_deg: float | None        # ICRS, J2000
    dec_deg: float | None
    spectral_type: str          # as given, e.g. "L4 beta"
    type_from: str              # which column it came from: SPEX_TYPE, NIR_TYPE, OPT_TYPE, LIT_TYPE
    optical_type: str           # the published optical type ("" if none)
    nir_type: str               # the library's NIR classification, else the published NIR type
    coarse_class: str           # one of CLASSES
    subtype: float | None       # M7.5 -> 7.5 (for the lettered classes)
    gravity_class: str          # FLD-G, INT-G, VL-G (or alpha/beta/gamma), "" if none
    object_type: str            # the library's OBJECT_TYPE
    quality: str                # OK, POOR, BG
    snr: float | None           # median S/N
    resolution: float | None
    bibcode: str                # the data paper
    credit: str = CREDIT
    license: str = LICENSE
    source: str = SOURCE
    simulated: bool = False
    reserved: str = ""          # "outside evaluation" for any spectrum of the Sun or Vega
    redshift: float | None = None  # the Glikman quasars only


def library_root(*, progress: bool = True) -> Path:
    return pypi.package_root("splat", progress=progress) / "splat"


def classify(spectral_type: str, object_type: str = "") -> tuple[str, float | None]:
    """``(coarse_class, subtype)`` of a type string and the library's object type."""
    t = (spectral_type or "").strip()
    ot = (object_type or "").strip().upper()
    m = _TYPE.match(t)
    sub = float(m.group(2)) if m and m.group(2) else None
    if ot in _BY_OBJECT_TYPE and not (ot == "GIANT" and m and m.group(1) in "LTY"):
        return _BY_OBJECT_TYPE[ot], sub
    low = t.lower()
    if _GIANT.search(t) or "giant" in low:
        return "giant", sub
    if low.startswith(("wd", "da", "db", "dc", "dq", "dz")) and not low.startswith("d/"):
        return "white dwarf", None
    if "galaxy" in low:
        return "galaxy", None
    if "quasar" in low or "qso" in low:
        return "quasar", None
    if low.startswith(("c", "dc")) and not m:
        return "carbon star", None
    if m:
        return _DWARF[m.group(1)], sub
    return ("unclassified" if not t and ot in ("", "STAR", "VLM", "OTHER") else "other"), None


def read_catalog(*, progress: bool = True, exclude: set[str] | frozenset = frozenset()) -> list[SpexSpectrum]:
    """Every spectrum of the library as a record (those whose id is in ``exclude`` left out)."""
    root = library_root(progress=progress)
    folder = root / "resources" / "Spectra" / "Public" / "SPEX-PRISM"
    sources = {r["SOURCE_KEY"]: r for r in _rows(root / "db" / "source_data.csv")}
    out = []
    for row in _rows(root / "db" / "spectral_data.csv"):
        sid = f"spex:{row['DATA_KEY']}"
        if sid in exclude:
            continue
        src = sources.get(row["SOURCE_KEY"], {})
        stype, col = _pick_type(row, src)
        coarse, sub = classify(stype, src.get("OBJECT_TYPE", ""))
        fname = row["DATA_FILE"] + ".gz" if not row["DATA_FILE"].endswith(".gz") else row["DATA_FILE"]
        out.append(SpexSpectrum(
            spectrum_id=sid, data_key=row["DATA_KEY"], source_key=row["SOURCE_KEY"],
            name=src.get("NAME") or src.get("DESIGNATION") or row["SOURCE_KEY"], file=fname,
            path=str(folder / fname), ra_deg=_float(src.get("RA")), dec_deg=_float(src.get("DEC")),
            spectral_type=stype, type_from=col, coarse_class=coarse, subtype=sub,
            optical_type=src.get("OPT_TYPE", ""), nir_type=row.get("SPEX_TYPE") or src.get("NIR_TYPE", ""),
            gravity_class=(row.get("SPEX_GRAVITY_CLASSIFICATION") or src.get("GRAVITY_CLASS_NIR")
                           or src.get("GRAVITY_CLASS_OPTICAL") or ""),
            object_type=src.get("OBJECT_TYPE", ""), quality=row.get("QUALITY_FLAG", ""),
            snr=_float(row.get("MEDIAN_SNR")), resolution=_float(row.get("RESOLUTION")),
            bibcode=row.get("BIBCODE", ""),
            reserved=RESERVED if _is_vega(src) else ""))
    return out


def glikman_quasars(*, progress: bool = True, exclude=frozenset()) -> list[SpexSpectrum]:
    """The 27 real NIR quasar spectra beside the library (``SpectralTemplates/GlikmanQuasars``,
    0.8-2.5 um, the redshift in the first row's fourth column)."""
    folder = library_root(progress=progress) / "resources" / "SpectralTemplates" / "GlikmanQuasars"
    out = []
    for path in sorted(folder.glob("SDSSJ*.txt.gz")):
        sid = f"spex-glikman:{path.name}"
        if sid in exclude:
            continue
        name = path.name.removesuffix(".txt.gz")
        out.append(SpexSpectrum(
            spectrum_id=sid, data_key="", source_key=name, name=name.replace("SDSSJ", "SDSS J"),
            file=path.name, path=str(path), ra_deg=None, dec_deg=None, spectral_type="quasar",
            type_from="Glikman 2006", coarse_class="quasar", subtype=None, optical_type="",
            nir_type="", gravity_class="",
            object_type="QSO", quality="", snr=None, resolution=None, bibcode="2006ApJ...640..579G",
            credit=GLIKMAN_CREDIT, redshift=_glikman_z(path)))
    return out


def manifest_entry(records: list[SpexSpectrum]) -> dict:
    return {"source": SOURCE, "package": "splat==1.14 (PyPI)", "count": len(records),
            "credit": CREDIT, "license": LICENSE, "bibcodes": sorted({r.bibcode for r in records if r.bibcode}),
            "redistribute": "fetched at set-up; not committed"}


def _glikman_z(path: Path) -> float | None:
    import gzip

    with gzip.open(path, "rt") as fh:
        first = fh.readline().split()
    return _float(first[3]) if len(first) > 3 else None


def _is_vega(src: dict) -> bool:
    names = " ".join(src.get(k, "") for k in ("NAME", "DESIGNATION", "SIMBAD_NAME")).lower()
    if "vega" in names or "alf lyr" in names or "alpha lyr" in names:
        return True
    ra, dec = _float(src.get("RA")), _float(src.get("DEC"))
    if ra is None or dec is None:
        return False
    from astrovlm.data.sources.calspec import _sep_deg

    return _sep_deg(ra, dec, *_VEGA_DEG) < 1 / 60


def for_training(*, progress: bool = True, exclude: set[str] | frozenset | None = None) -> list[SpexSpectrum]:
    """The records a training or tuning recipe may use: the outside set left out (by
    default the committed one, ``outside.load_outside_ids()``) and anything reserved."""
    if exclude is None:
        from astrovlm.data.sources.outside import load_outside_ids
        exclude = load_outside_ids()
    return [r for r in read_catalog(progress=progress, exclude=exclude) + glikman_quasars(
        progress=progress, exclude=exclude) if not r.reserved and not _is_vega(
        {"NAME": r.name, "RA": r.ra_deg, "DEC": r.dec_deg})]


def read_spectrum(rec: SpexSpectrum) -> Spectrum:
    """The spectrum: wavelength in um (stored as Angstrom by ``Spectrum``), F_lambda in
    W m-2 um-1, ivar from the uncertainty; NaN, zero-uncertainty and zero-flux pixels get ivar 0."""
    from astropy.io import fits

    if rec.file.endswith(".txt.gz"):
        return _read_text(rec)
    try:
        # Spextool writes '####...' history lines as keywords; astropy warns, we ignore them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(rec.path, memmap=False) as hdul:
                data = np.asarray(hdul[0].data, dtype=np.float64)
                header = hdul[0].header
                xunit = str(header.get("XUNITS", "um")).strip() or "um"
                yunit = str(header.get("YUNITS", "")).strip()
    except (OSError, ValueError, TypeError) as exc:
        raise UnreadableError(f"not a readable SpeX FITS spectrum ({exc})", path=rec.path) from None
    if data.ndim != 2 or data.shape[0] < 2:
        raise UnreadableError(f"expected a (3, N) array of wavelength, flux, uncertainty, found "
                              f"shape {data.shape}", path=rec.path)
    err = data[2] if data.shape[0] > 2 else None  # a few files carry no uncertainty row
    unit = u.Unit("um") if xunit.lower() in ("um", "micron", "microns") else u.Unit(xunit)
    return _spectrum(rec, data[0], data[1], err, unit,
                     "W m-2 um-1" if yunit.lower().startswith("wm-2um-1") else yunit, xunit)


def _read_text(rec: SpexSpectrum) -> Spectrum:
    try:
        rows = np.genfromtxt(rec.path, usecols=(0, 1, 2), invalid_raise=False)
    except (OSError, ValueError) as exc:
        raise UnreadableError(f"not a readable quasar spectrum ({exc})", path=rec.path) from None
    return _spectrum(rec, rows[:, 0], rows[:, 1], rows[:, 2], u.um, "", "um")


def _spectrum(rec, wave, flux, err, unit, flux_unit, xunit) -> Spectrum:
    # A few files have NaN wavelengths at the ends; Spectrum needs finite, so drop those only.
    keep = np.isfinite(wave)
    if err is None:
        # Noise unknown: ivar stays None (not a made-up 1), and zero-flux padding becomes NaN
        # so that Spectrum.mask drops it with the NaNs.
        flux, ivar = np.where(flux == 0, np.nan, flux), None
    else:
        good = np.isfinite(wave) & np.isfinite(flux) & np.isfinite(err) & (err > 0) & (flux != 0)
        ivar = np.where(good, 1.0 / np.where(good, err, 1.0) ** 2, 0.0)[keep]
    return Spectrum(wavelength=wave[keep] * unit, flux=flux[keep], ivar=ivar, flux_unit=flux_unit,
                    meta={"OBJECT": rec.name, "SPTYPE": rec.spectral_type, "CLASS": rec.coarse_class,
                          "XUNITS": xunit, "BIBCODE": rec.bibcode, "SOURCE": "SpeX Prism Library",
                          "Z": rec.redshift, "SIMULAT": False})


def _pick_type(row: dict, src: dict) -> tuple[str, str]:
    if (row.get("SPEX_TYPE") or "").strip() and _TYPE.match(row["SPEX_TYPE"]):
        return row["SPEX_TYPE"].strip(), "SPEX_TYPE"
    for col in ("NIR_TYPE", "OPT_TYPE", "LIT_TYPE"):
        if (src.get(col) or "").strip():
            return src[col].strip(), col
    return "", ""


def _rows(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return [{k: (v or "").strip() for k, v in r.items()} for r in csv.DictReader(fh)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableError(f"cannot read the SPLAT table ({exc})", path=path) from None


def _float(text) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None
