"""What every reader shares: limits, safe FITS opening, header look-ups, units, positions.

Users' files are messy (IRAF headers with unparsable cards, truncated downloads, files named
.fits that are not), so every FITS access here turns astropy's exceptions into an
``AstroVLMError`` of its kind (``NotFoundError``, ``UnreadableError``, ``BadArgumentError``)
that names the file and says what is wrong.
"""

from __future__ import annotations

import re
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import astropy.units as u
import numpy as np

from astrovlm.errors import BadArgumentError, NotFoundError, UnreadableError

# Images larger than this are refused from the header, before any pixel is read: a 16k x 16k
# float image is 1 GiB, and nothing astrovlm does with an image needs more than a cutout.
MAX_IMAGE_SIDE = 16384
MAX_IMAGE_PIXELS = 200_000_000
# A cube with more planes than this is an IFU or radio data cube, not a multi-band image.
MAX_IMAGE_BANDS = 16
# A spectrum needs this many usable pixels (finite flux, positive or unknown ivar) to mean anything.
MIN_VALID_PIXELS = 32

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fz")


def check_nonempty(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise NotFoundError("no such file", path=path)
    if path.is_dir():
        raise BadArgumentError("is a folder, not a file", path=path)
    if path.stat().st_size == 0:
        raise UnreadableError("file is empty", path=path)
    return path


@contextmanager
def open_fits(path: str | Path, hdul=None) -> Iterator:
    """``fits.open`` that fails with a clear message on empty, corrupt or non-FITS files.

    ``hdul``: the file as the caller already opened it (``readers.sniffed``); it is used as
    it is and left open, so a file is opened and its headers parsed once.
    """
    from astropy.io import fits

    if hdul is not None:
        yield hdul
        return
    path = check_nonempty(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # IRAF headers warn on every non-standard card
            hdul = fits.open(path, memmap=False, lazy_load_hdus=True)
    except (OSError, ValueError, TypeError, EOFError, zlib.error) as exc:
        raise UnreadableError(f"not a readable FITS file ({_reason(exc)})", path=path) from None
    try:
        yield hdul
    finally:
        hdul.close()


def iter_hdus(hdul, path) -> Iterator:
    """The HDUs of a lazily opened file; a broken header part-way through is an error."""
    i = 0
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hdu = hdul[i]
        except IndexError:
            return
        except (OSError, ValueError, TypeError, EOFError, zlib.error) as exc:
            if i == 0:
                raise UnreadableError(f"not a readable FITS file ({_reason(exc)})", path=path) from None
            return  # trailing junk after the last HDU: keep what was readable
        yield i, hdu
        i += 1


def pick_hdu(hdul, hdu, path):
    """The HDU a caller asked for by index or EXTNAME, with a clear error if absent."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return hdul[hdu]
    except (IndexError, KeyError):
        names = [h.name or str(i) for i, h in iter_hdus(hdul, path)]
        raise NotFoundError(f"has no HDU {hdu!r} (it has {len(names)}: {', '.join(names)})",
                            path=path) from None


def hdu_data(hdu, path) -> np.ndarray:
    """Read an HDU's data; a file cut short gives a clear error instead of a reshape failure."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = hdu.data
    except (OSError, ValueError, TypeError, EOFError, IndexError, zlib.error) as exc:
        raise UnreadableError(f"corrupt or truncated FITS file: the data of HDU '{hdu.name}' "
                            f"cannot be read ({_reason(exc)})", path=path) from None
    return data


def hdu_shape(hdu) -> tuple[int, ...]:
    """An image HDU's shape from its header alone (numpy order), degenerate axes dropped."""
    header = hdu.header
    if header.get("ZIMAGE"):
        naxis = int(card(header, "ZNAXIS", 0) or 0)
        dims = [int(card(header, f"ZNAXIS{i}", 0) or 0) for i in range(1, naxis + 1)]
    else:
        naxis = int(card(header, "NAXIS", 0) or 0)
        dims = [int(card(header, f"NAXIS{i}", 0) or 0) for i in range(1, naxis + 1)]
    if any(d == 0 for d in dims):
        return ()
    return tuple(d for d in reversed(dims) if d != 1)


def is_image_hdu(hdu) -> bool:
    from astropy.io import fits

    return isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))


def is_table_hdu(hdu) -> bool:
    from astropy.io import fits

    return isinstance(hdu, (fits.BinTableHDU, fits.TableHDU))


def card(header, key: str, default=None):
    """A header value, or ``default`` when the card is absent or unparsable (old IRAF files
    carry cards like ``Z = '0.0000-000000000E-04'`` that astropy cannot parse)."""
    try:
        if key not in header:  # most look-ups miss: an index look-up, no warnings machinery
            return default
    except Exception:  # let get() decide
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = header.get(key, default)
    except Exception:  # astropy raises VerifyError and friends from deep inside
        return default
    if isinstance(value, str):
        value = value.strip()
    return default if value is None or value == "" else value


def header_number(header, key: str) -> float | None:
    value = card(header, key)
    if isinstance(value, bool) or value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


# --- units -------------------------------------------------------------------------------

_ANGSTROM_SPELLINGS = {"a", "aa", "ang", "angs", "angstrom", "angstroms", "angstroem", "0.1nm", "å"}


def parse_spectral_unit(text) -> u.UnitBase | None:
    """A wavelength (or frequency/energy) unit from a header or column string, else None.

    Spectroscopists write Angstrom a dozen ways; ``"A"`` would otherwise parse as the ampere.
    """
    if text is None:
        return None
    if isinstance(text, u.UnitBase) and not isinstance(text, u.UnrecognizedUnit):
        unit = text
    else:
        s = str(text).strip().strip("[]()").strip()
        if not s:
            return None
        if s.lower() in _ANGSTROM_SPELLINGS:
            return u.AA
        if s.lower() in ("micron", "microns", "um"):
            return u.um
        try:
            unit = u.Unit(s, parse_strict="raise")
        except (ValueError, TypeError):
            try:
                unit = u.Unit(s, format="fits", parse_strict="raise")
            except (ValueError, TypeError):
                return None
    try:
        (1 * unit).to(u.AA, equivalencies=u.spectral())
    except u.UnitConversionError:
        return None
    return unit


def clearly_angstrom(values: np.ndarray) -> bool:
    """True when unit-less wavelengths can only sensibly be Angstrom.

    Optical/near-IR spectra in Angstrom span a few thousand; the same range in nm would be
    a far-IR spectrum and in microns absurd. The guard is narrow on purpose: 300-1000 (nm?)
    or 0.3-1 (micron?) are refused rather than guessed.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return False
    return bool(v.min() >= 500.0 and v.max() >= 2000.0 and v.max() <= 60000.0)


# --- positions ---------------------------------------------------------------------------

# Object positions first: SDSS's RA/DEC is the plate centre, RAOBJ/PLUG_RA is the fibre.
_RADEC_KEYS = [("RAOBJ", "DECOBJ"), ("RA_OBJ", "DEC_OBJ"), ("PLUG_RA", "PLUG_DEC"),
               ("TARGET_RA", "TARGET_DEC"), ("OBJRA", "OBJDEC"), ("OBJCTRA", "OBJCTDEC"),
               ("RA_TARG", "DEC_TARG"), ("RADEG", "DECDEG"), ("RA", "DEC")]


def header_coord(header):
    """The object's position from a FITS header (degrees or sexagesimal), or None.

    Sexagesimal RA is in hours (IRAF, amateur cameras); numeric RA is in degrees. FK4/FK5
    positions are taken as the header's EQUINOX says and returned in ICRS.
    """
    for ra_key, dec_key in _RADEC_KEYS:
        ra, dec = card(header, ra_key), card(header, dec_key)
        if ra is None or dec is None or isinstance(ra, bool) or isinstance(dec, bool):
            continue
        try:
            coord = _coord_from_values(ra, dec, header)
        except (ValueError, TypeError, u.UnitsError):
            continue
        if coord is not None:
            return coord
    return None


def header_radec(header) -> tuple[float, float] | None:
    """``header_coord``'s position as ICRS (RA, Dec) in degrees, or None; plain ICRS degrees
    (most headers) are taken as they are, without building a ``SkyCoord``."""
    for ra_key, dec_key in _RADEC_KEYS:
        ra, dec = card(header, ra_key), card(header, dec_key)
        if ra is None or dec is None or isinstance(ra, bool) or isinstance(dec, bool):
            continue
        if not isinstance(ra, str) and not isinstance(dec, str) and _frame(header)[0] == "icrs":
            try:
                ra_f, dec_f = float(ra), float(dec)
            except (ValueError, TypeError):
                continue
            if (not (np.isfinite(ra_f) and np.isfinite(dec_f)) or not (-90 <= dec_f <= 90)
                    or (ra_f == 0.0 and dec_f == 0.0)):
                continue  # as _coord_from_values: unusable, or the 0,0 placeholder
            ra_f %= 360.0
            return (0.0 if ra_f >= 360.0 else ra_f), dec_f  # -1e-20 % 360 rounds to 360
        try:
            coord = _coord_from_values(ra, dec, header)
        except (ValueError, TypeError, u.UnitsError):
            continue
        if coord is not None:
            return float(coord.ra.deg), float(coord.dec.deg)
    return None


def _frame(header) -> tuple[str, str | None]:
    """The frame and equinox that a header's RA/Dec are in (RADESYS, EQUINOX/EPOCH)."""
    radesys = str(card(header, "RADESYS", card(header, "RADECSYS", "")) or "").upper()
    eq = header_number(header, "EQUINOX") or header_number(header, "EPOCH")
    if radesys.startswith("FK4") or (eq is not None and abs(eq - 1950) < 1):
        return "fk4", "B1950"
    if radesys.startswith("FK5") and eq is not None and abs(eq - 2000) > 1:
        return "fk5", f"J{eq:g}"
    return "icrs", None


def _coord_from_values(ra, dec, header):
    from astropy.coordinates import SkyCoord

    frame, equinox = _frame(header)
    kw = {"frame": frame}
    if equinox:
        kw["equinox"] = equinox
    if isinstance(ra, str) or isinstance(dec, str):
        ra_s, dec_s = str(ra).strip(), str(dec).strip()
        if re.fullmatch(r"[+-]?\d+(\.\d*)?", ra_s) and re.fullmatch(r"[+-]?\d+(\.\d*)?", dec_s):
            c = SkyCoord(float(ra_s) * u.deg, float(dec_s) * u.deg, **kw)
        else:
            c = SkyCoord(ra_s, dec_s, unit=(u.hourangle, u.deg), **kw)
        if c.spherical.lon.deg == 0.0 and c.spherical.lat.deg == 0.0:
            return None  # '00:00:00' is a placeholder far more often than a real pointing
    else:
        ra_f, dec_f = float(ra), float(dec)
        if not (np.isfinite(ra_f) and np.isfinite(dec_f)) or not (-90 <= dec_f <= 90):
            return None
        if ra_f == 0.0 and dec_f == 0.0:
            return None  # a placeholder far more often than a real pointing
        c = SkyCoord((ra_f % 360) * u.deg, dec_f * u.deg, **kw)
    return c.icrs if frame != "icrs" else c


def object_name(header) -> str | None:
    """The OBJECT keyword (or OBJNAME / TARGNAME), cleaned; None when absent.
    (Not NAME: in SDSS files that is the plate-MJD-mapping, not the object.)"""
    for key in ("OBJECT", "OBJNAME", "TARGNAME"):
        value = card(header, key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return None
