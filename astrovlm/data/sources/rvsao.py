"""The real spectra among the RVSAO cross-correlation templates (Debian ``iraf-rvsao``).

The template folder mixes real spectra with synthetic ones. Every FITS header was read
(OBJECT, COMMENT/HISTORY, DC-FLAG, CTYPE1, CRVAL1, CD1_1/CDELT1, W0/WPC, VELOCITY, Z,
ARRAY1-4) and each file is listed below with what its header says it is:

- SDSS DR2 stellar templates ``sdss*star*.fits``: real SDSS spectra of single stars
  (plate/fibre and RAOBJ/DECOBJ in the header), 4 x N: spectrum, continuum-subtracted
  spectrum, error, mask; log10 wavelength (DC-FLAG = 1).
- SDSS galaxy and quasar templates (``sdssDR2temp023-028``, ``sdssQSO*``, ``sdssHLQSO``):
  composites in the same 4 x N layout. ``sdssDR2temp029-032`` are byte-for-byte the quasar
  files again and are skipped.
- FAST spectra of named HD stars (``A1.fits`` ... ``K4.fits``; "COMMENT Object: HD065900"),
  linear wavelength (DC-FLAG = 0; CTYPE1 says PIXEL but CRVAL1/CD1_1 are Angstrom: the Balmer
  lines fall at their laboratory wavelengths). ``K1temp``/``K4temp`` repeat K1/K4.
- FAST galaxy templates (M32, NGC 4486B, NGC 5548, NGC 7331), log10 wavelength, observed
  at the header's VELOCITY (their absorption lines sit at that redshift), and the MMT
  E+A (post-starburst) galaxy template, at rest.
- Quasar composites: Hewett & Wild (2010) as shipped in text (``HewettWild2010.dat``) and the
  SDSS composite quasar (``sdss_qso.fits``, 800-8555 Angstrom, linear).

Skipped, with the reason: synthetic emission-line templates (``em*``, ``fem*``, ``hem*``,
``hkabstemp``), SVD eigenvector and continuum-subtracted templates (``habtemp*``,
``m31_*``, ``fabtemp97``, ``fztemp97``, ``stemp``, ``ztemp``, ``eatemp``), velocity-shifted
copies (``qso100``-``qso800``, ``qsohw2010*``, ``eltemp``, ``sptemp``, ``f86btemp``),
spectra with no class in the header (``fs2temp``, ``fallstars``, ``fglotemp``) and echelle
orders 45 Angstrom wide (``ax1``, ``mx1``, ``sx1``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np

from astrovlm.data.spectrum import Spectrum
from astrovlm.errors import NotFoundError, UnreadableError

TEMPLATES = Path("usr/lib/iraf/extern/rvsao/templates")
SOURCE = "RVSAO templates (Debian iraf-rvsao)"
CREDIT = "RVSAO, Smithsonian Astrophysical Observatory (J. Mink); spectra from SDSS, FAST and MMT"
LICENSE = "SAO-free: you may do anything with this file except remove the copyright"
C_KMS = 299792.458


@dataclass(frozen=True)
class Label:
    spectral_class: str                 # one of SPECTRUM_CLASSES
    subclass: str
    object_name: str | None = None      # a name the resolver knows, when the header names one
    rest_frame: bool = True             # False: the spectrum sits at the header's VELOCITY
    credit: str = ""


_SDSS = "SDSS DR2 spectral template (SDSS Collaboration)"
_FAST = "FAST spectrograph, Fred Lawrence Whipple Observatory (RVSAO)"

# What each kept file is, from its header (see the module docstring).
LABELS: dict[str, Label] = {
    "sdssOstar.fits": Label("O/B star", "O", credit=_SDSS),
    "sdssOBstar.fits": Label("O/B star", "O/B", credit=_SDSS),
    "sdssBstar.fits": Label("O/B star", "B", credit=_SDSS),
    "sdssAstar.fits": Label("A star", "A", credit=_SDSS),
    "sdssAstar2.fits": Label("A star", "A", credit=_SDSS),
    "sdssFAstar.fits": Label("F star", "F/A", credit=_SDSS),
    "sdssFstar.fits": Label("F star", "F", credit=_SDSS),
    "sdssFstar2.fits": Label("F star", "F", credit=_SDSS),
    "sdssGstar.fits": Label("G star", "G", credit=_SDSS),
    "sdssGstar2.fits": Label("G star", "G", credit=_SDSS),
    "sdssKstar.fits": Label("K star", "K", credit=_SDSS),
    "sdssM1star.fits": Label("M star", "M1", credit=_SDSS),
    "sdssM3star.fits": Label("M star", "M3", credit=_SDSS),
    "sdssM5star.fits": Label("M star", "M5", credit=_SDSS),
    "sdssM8star.fits": Label("M star", "M8", credit=_SDSS),
    # Cooler than M, no class of its own among SPECTRUM_CLASSES: grouped with the M stars.
    "sdssL1star.fits": Label("M star", "L1 dwarf", credit=_SDSS),
    # Carbon stars: red continua (r/b flux ratio 1.7-50, M1 is 2.2): grouped with the M stars.
    "sdssCstar.fits": Label("M star", "carbon star", credit=_SDSS),
    "sdssCstar2.fits": Label("M star", "carbon star", credit=_SDSS),
    "sdssCstar3.fits": Label("M star", "carbon star", credit=_SDSS),
    "sdssWDstar.fits": Label("white dwarf", "DA white dwarf", credit=_SDSS),
    # The white dwarf's blue continuum dominates this binary.
    "sdssMWDstar.fits": Label("white dwarf", "white dwarf + M dwarf binary", credit=_SDSS),
    "sdssDR2temp023.fits": Label("galaxy", "{lines} galaxy (SDSS template 23)", credit=_SDSS),
    "sdssDR2temp024.fits": Label("galaxy", "{lines} galaxy (SDSS template 24)", credit=_SDSS),
    "sdssDR2temp025.fits": Label("galaxy", "{lines} galaxy (SDSS template 25)", credit=_SDSS),
    "sdssDR2temp026.fits": Label("galaxy", "{lines} galaxy (SDSS template 26)", credit=_SDSS),
    "sdssDR2temp027.fits": Label("galaxy", "{lines} galaxy (SDSS template 27)", credit=_SDSS),
    "sdssDR2temp028.fits": Label("galaxy", "luminous red galaxy (SDSS template 28)", credit=_SDSS),
    "sdssQSO.fits": Label("quasar", "quasar (SDSS template)", credit=_SDSS),
    "sdssQSOBAL.fits": Label("quasar", "broad absorption line quasar (SDSS template)", credit=_SDSS),
    "sdssQSOBAL2.fits": Label("quasar", "broad absorption line quasar (SDSS template)", credit=_SDSS),
    "sdssHLQSO.fits": Label("quasar", "high-luminosity quasar (SDSS template)", credit=_SDSS),
    "sdss_qso.fits": Label("quasar", "SDSS composite quasar spectrum", credit="SDSS composite quasar"),
    "HewettWild2010.dat": Label("quasar", "quasar composite (Hewett & Wild 2010)",
                                credit="Hewett & Wild 2010, MNRAS 405, 2302"),
    "fm32temp.fits": Label("galaxy", "compact elliptical galaxy", "M32", rest_frame=False, credit=_FAST),
    "fn4486btemp.fits": Label("galaxy", "compact elliptical galaxy", "NGC 4486B", rest_frame=False,
                              credit=_FAST),
    "fn5548temp.fits": Label("galaxy", "Seyfert 1 galaxy", "NGC 5548", rest_frame=False, credit=_FAST),
    "fn7331temp.fits": Label("galaxy", "spiral galaxy", "NGC 7331", rest_frame=False, credit=_FAST),
    "EA.fits": Label("galaxy", "E+A post-starburst galaxy", credit="MMT Hectospec (RVSAO)"),
    "astartemp.fits": Label("A star", "A1 V", "HD 116608", credit=_FAST),
}
# The FAST MK-standard spectra: file name = spectral type; the star is in "COMMENT Object: HD...".
for _t in ("B3", "B7", "B9", "A1", "A4", "A7", "F2", "F4", "F6", "F8", "F9", "G2", "G6", "G9", "K1", "K4"):
    LABELS[f"{_t}.fits"] = Label({"B": "O/B star"}.get(_t[0], f"{_t[0]} star"), _t, object_name="header",
                                 credit=_FAST)


@dataclass
class RealSpectrum:
    """A real spectrum with its label; ``spectrum`` is as observed (see ``rest_frame``)."""

    name: str                           # template name (file stem)
    path: Path
    spectrum: Spectrum
    spectral_class: str
    subclass: str
    redshift: float                     # of the spectrum as stored (0 for rest-frame templates)
    object_name: str | None = None
    ra_deg: float | None = None
    dec_deg: float | None = None
    credit: str = ""
    meta: dict = field(default_factory=dict)

    def rest_frame(self) -> Spectrum:
        """The spectrum shifted to rest frame (what the simulator starts from)."""
        s = self.spectrum
        if not self.redshift:
            return s
        return Spectrum(s.wavelength / (1 + self.redshift), s.flux * (1 + self.redshift), s.ivar,
                        s.flux_unit, dict(s.meta))


def _card(header, key, default=None):
    """Header value, tolerating the malformed cards some of these old files carry."""
    try:
        return header[key] if key in header else default
    except Exception:  # astropy raises on unparsable cards (e.g. Z = '0.0000-000000000E-04')
        for card in header.cards:
            if card.keyword == key:
                m = re.search(r"=\s*'?\s*([-+0-9.Ee]+)", card.image)
                try:
                    return float(m.group(1)) if m else default
                except ValueError:
                    return default
        return default


def wavelength_from_header(header, npix: int, path: Path | str | None = None) -> u.Quantity:
    """Pixel -> wavelength from an IRAF 1-D header (CRVAL1/CD1_1 or W0/WPC, DC-FLAG)."""
    ctype = str(_card(header, "CTYPE1", "") or "").upper()
    if ctype.startswith("MULTISPE"):
        raise UnreadableError("multispec wavelength solution is not supported", path=path, field="CTYPE1")
    crval = _card(header, "CRVAL1", _card(header, "W0"))
    step = _card(header, "CD1_1", _card(header, "CDELT1", _card(header, "WPC")))
    crpix = float(_card(header, "CRPIX1", 1.0) or 1.0)
    if crval is None or step is None or float(step) == 0:
        raise UnreadableError("no wavelength solution (CRVAL1 and CD1_1/CDELT1)", path=path)
    flag = _card(header, "DC-FLAG")
    if flag is None:  # SDSS writes no DC-FLAG on some files: a start below 5 is log10(Angstrom)
        flag = 1 if float(crval) < 5 else 0
    x = float(crval) + float(step) * (np.arange(npix) + 1 - crpix)
    wave = 10 ** x if int(flag) == 1 else x
    if wave[0] < 500 or wave[-1] > 30000 or np.any(np.diff(wave) <= 0):
        raise UnreadableError(f"wavelengths {wave[0]:.0f}-{wave[-1]:.0f} are not an optical spectrum "
                            f"(DC-FLAG={flag}, CRVAL1={crval}, step={step})", path=path)
    return wave * u.AA


def read_rvsao_fits(path: Path) -> tuple[Spectrum, object]:
    """Read one template FITS file into a ``Spectrum`` (and return its header)."""
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-standard keywords such as P.I.
        try:
            with fits.open(path) as hdul:
                header = hdul[0].header.copy()
                data = np.asarray(hdul[0].data, dtype=np.float64)
        except (OSError, ValueError) as exc:
            raise UnreadableError(f"not a readable FITS file ({exc})", path=path) from None
    if data.ndim == 2:
        # SDSS spectro1d layout: spectrum, continuum-subtracted, error, mask.
        flux = data[0]
        err = data[2] if data.shape[0] > 2 else np.zeros(0)
        ivar = None
        good = err > 0
        # Composite templates carry a constant placeholder error: keep ivar unknown there.
        if good.any() and np.ptp(err[good]) > 0:
            ivar = np.where(good, 1.0 / np.where(good, err, 1.0) ** 2, 0.0)
    elif data.ndim == 1:
        flux, ivar = data, None
    else:
        raise UnreadableError(f"unexpected data shape {data.shape}", path=path)
    wave = wavelength_from_header(header, flux.size, path)
    return Spectrum(wave, flux, ivar, flux_unit=_fits_unit(str(_card(header, "BUNIT", "") or ""))), header


def _fits_unit(bunit: str) -> str:
    """SDSS's BUNIT '1.0E-17 erg/cm/s/Ang' as a FITS-standard unit string (or '' if unknown)."""
    if not bunit.strip():
        return ""
    if re.fullmatch(r"\s*1\.0E-17 erg/cm/s/Ang\s*", bunit):
        # SDSS's flux unit is 1e-17 erg/s/cm^2/Angstrom; these headers drop the square.
        return u.Unit("1e-17 erg / (s cm2 Angstrom)").to_string("fits")
    text = re.sub(r"\bAng\b", "Angstrom", bunit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return u.Unit(text).to_string("fits")
    except ValueError:
        return ""


def read_hewett_wild(path: Path) -> Spectrum:
    """Hewett & Wild (2010) composite: two columns, wavelength [Angstrom] and flux."""
    try:
        table = np.loadtxt(path, comments="#")
    except ValueError as exc:
        raise UnreadableError(f"not a two-column table ({exc})", path=path) from None
    if table.ndim != 2 or table.shape[1] < 2:
        raise UnreadableError("expected columns: wavelength, flux", path=path)
    return Spectrum(table[:, 0] * u.AA, table[:, 1])


def halpha_peak_ratio(spec: Spectrum) -> float | None:
    """Peak flux within 8 Angstrom of H-alpha over the nearby continuum (rest frame)."""
    w, f = spec.wavelength.to_value(u.AA), spec.flux
    line = (w > 6555) & (w < 6572)
    cont = ((w > 6480) & (w < 6530)) | ((w > 6600) & (w < 6640))
    if line.sum() < 3 or cont.sum() < 10:
        return None
    c = np.median(f[cont])
    return float(f[line].max() / c) if c > 0 else None


def _sexagesimal(value, hours: bool) -> float | None:
    if value is None:
        return None
    parts = re.findall(r"[-+]?\d+(?:\.\d*)?", str(value))
    if len(parts) < 2:
        return None
    sign = -1 if str(value).strip().startswith("-") else 1
    d, m, s = (abs(float(p)) for p in (parts + ["0"])[:3])
    deg = sign * (d + m / 60 + s / 3600)
    return deg * 15 if hours else deg


def _header_object(header) -> str | None:
    for line in header.get("COMMENT", []):
        m = re.match(r"\s*Object:\s*HD\s*0*(\d+)", str(line))
        if m:
            return f"HD {m.group(1)}"
    return None


def real_spectra(root: Path) -> list[RealSpectrum]:
    """Every real, labelled spectrum of the RVSAO templates (see the module docstring)."""
    folder = Path(root) / TEMPLATES
    if not folder.exists():
        raise NotFoundError("RVSAO template folder not found; is iraf-rvsao unpacked?", path=folder)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy repairs a malformed Z card in sdssCstar
        for fname, label in LABELS.items():
            path = folder / fname
            if path.exists():
                out.append(_real_spectrum(path, label))
    return out


def _real_spectrum(path: Path, label: Label) -> RealSpectrum:
    fname = path.name
    if fname.endswith(".dat"):
        spec, header = read_hewett_wild(path), None
    else:
        spec, header = read_rvsao_fits(path)
    z, obj, ra, dec = 0.0, label.object_name, None, None
    if header is not None:
        if label.rest_frame:
            zc = _card(header, "Z")
            z = float(zc) if isinstance(zc, (int, float)) and abs(zc) < 0.01 else 0.0
        else:
            z = float(_card(header, "VELOCITY", 0.0) or 0.0) / C_KMS
        if obj == "header":
            obj = _header_object(header)
        ra = _card(header, "RAOBJ", None)
        dec = _card(header, "DECOBJ", None)
        # FAST headers of the 1990s give B1950 positions with no EPOCH: use J2000 ones only.
        if ra is None and obj and _card(header, "EPOCH", _card(header, "EQUINOX")) == 2000.0:
            ra, dec = _sexagesimal(header["RA"], True), _sexagesimal(header.get("DEC"), False)
    subclass = label.subclass
    if "{lines}" in subclass:
        # Measured, not assumed: H-alpha emission above 1.5x the continuum.
        ratio = halpha_peak_ratio(spec)
        kind = "emission-line" if ratio and ratio > 1.5 else "absorption-line"
        subclass = subclass.replace("{lines}", kind)
    stem = path.stem
    # CLASS follows SDSS (STAR / GALAXY / QSO) so other readers understand it; COARSE is
    # astrovlm's class (one of SPECTRUM_CLASSES).
    sdss_class = {"galaxy": "GALAXY", "quasar": "QSO"}.get(label.spectral_class, "STAR")
    spec.meta.update(TEMPLATE=stem, OBJECT=obj or stem, CLASS=sdss_class, COARSE=label.spectral_class,
                     SUBCLASS=subclass, Z=z, SIMULAT=False, ORIGIN=SOURCE)
    return RealSpectrum(name=stem, path=path, spectrum=spec,
                        spectral_class=label.spectral_class, subclass=subclass,
                        redshift=z, object_name=obj,
                        ra_deg=float(ra) if ra is not None else None,
                        dec_deg=float(dec) if dec is not None else None,
                        credit=label.credit or CREDIT,
                        meta={"file": fname, "rest_frame": label.rest_frame})
