"""What every reader shares: limits, safe FITS opening, header look-ups, units, positions.

Users' files are messy (IRAF headers with unparsable cards, truncated downloads, files named
.fits that are not), so every FITS access here turns astropy's exceptions into an
``AstroVLMError`` of its kind (``NotFoundError``, ``UnreadableError``, ``BadArgumentError``)
that names the file and says what is wrong.
"""

from __future__ import annotations

import functools
import re
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import astropy.units as u
import numpy as np

from astrovlm.data.readers import limits
from astrovlm.data.readers.header_values import ASK_ASTROPY, HeaderValues
from astrovlm.data.readers.light_fits import LightHDU, LightHDUList, can_open_light
from astrovlm.errors import AstroVLMError, BadArgumentError, NotFoundError, UnreadableError

# Images larger than this are refused from the header, before any pixel is read: nothing
# astrovlm does with an image needs more than a cutout (``limits`` holds every budget).
MAX_IMAGE_SIDE = limits.MAX_SIDE
MAX_IMAGE_PIXELS = limits.MAX_PIXELS
# A cube with more planes than this is an IFU or radio data cube, not a multi-band image.
MAX_IMAGE_BANDS = 16
# A spectrum needs this many usable pixels (finite flux, positive or unknown ivar) to mean anything.
MIN_VALID_PIXELS = 32

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fz")


def check_nonempty(path: str | Path) -> Path:
    path = Path(path)
    try:
        if not path.exists():
            raise NotFoundError("no such file" + (" (a broken symbolic link)" if path.is_symlink() else ""),
                                path=path)
        if path.is_dir():
            raise BadArgumentError("is a folder, not a file", path=path)
        if not path.is_file():  # a FIFO would block the reader forever, a device never ends
            raise UnreadableError("is not a regular file (a device, pipe or socket)", path=path)
        size = path.stat().st_size
    except OSError as exc:  # a symbolic link that loops, a file we may not read
        raise UnreadableError(f"cannot be opened ({_reason(exc)})", path=path) from None
    if size == 0:
        raise UnreadableError("file is empty", path=path)
    return path


def guarded(what: str):
    """Decorate a public reader ``f(path, ...)``: any exception that is not already an
    ``AstroVLMError`` becomes ``UnreadableError("cannot read <what>: <type>: <msg>")``.

    A last line behind the specific checks (headers, budgets), for the failures of the
    libraries underneath that no check foresaw. MemoryError and KeyboardInterrupt pass.
    """
    def wrap(func):
        @functools.wraps(func)
        def reader(path, *args, **kwargs):
            try:
                return func(path, *args, **kwargs)
            except (AstroVLMError, MemoryError):
                raise
            except Exception as exc:
                raise UnreadableError(f"cannot read {what}: {type(exc).__name__}: {_reason(exc)}",
                                      path=path) from exc
        return reader
    return wrap


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
    from astrovlm.data.readers.fits_structure import check_fits_structure

    path = check_nonempty(path)
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    # absurd or missing structural cards, budgets, truncation; where the file is plain, the
    # spans of its HDUs, which open it without astropy's HDU objects (light_fits)
    spans = check_fits_structure(path, gzipped)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # IRAF headers warn on every non-standard card
            if can_open_light(spans):
                hdul = LightHDUList(path, spans)
            else:
                hdul = fits.open(path, memmap=False, lazy_load_hdus=True)
    except MemoryError:
        raise
    except Exception as exc:  # OSError, VerifyError, KeyError from a card astropy needs
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
        except MemoryError:
            raise
        except Exception as exc:  # OSError, VerifyError, KeyError: a header astropy rejects
            if i == 0:
                raise UnreadableError(f"not a readable FITS file ({_reason(exc)})", path=path) from None
            return  # trailing junk after the last HDU: keep what was readable
        yield i, _with_values(hdu)
        i += 1


def pick_hdu(hdul, hdu, path):
    """The HDU a caller asked for by index or EXTNAME, with a clear error if absent."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _with_values(hdul[hdu])
    except (IndexError, KeyError, TypeError):
        names = [h.name or str(i) for i, h in iter_hdus(hdul, path)]
        raise NotFoundError(f"has no HDU {hdu!r} (it has {len(names)}: {', '.join(names)})",
                            path=path) from None


def hdu_data(hdu, path) -> np.ndarray:
    """Read an HDU's data; a file cut short gives a clear error instead of a reshape failure."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = hdu.data
    except MemoryError:
        raise
    except Exception as exc:  # truncation, broken tile compression (CfitsioException), bad TFORM
        raise UnreadableError(f"corrupt or truncated FITS file: the data of HDU '{hdu_name(hdu)}' "
                            f"cannot be read ({type(exc).__name__}: {_reason(exc)})", path=path) from None
    if data is not None and not isinstance(data, np.ndarray):
        raise UnreadableError(f"HDU '{hdu_name(hdu)}' has no readable data (astropy found "
                              f"{type(data).__name__})", path=path)
    return data


def image_data(hdu, path, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An image HDU's pixels as a float array of ``shape`` (its header's, degenerate axes
    dropped); data that is absent or of another size than the header says is an error."""
    data = hdu_data(hdu, path)
    n = int(np.prod(shape)) if shape else 0
    if data is None or data.size != n or n == 0:
        got = "no data" if data is None else f"{data.size} values"
        raise UnreadableError(f"HDU '{hdu_name(hdu)}' header says {'x'.join(map(str, shape[::-1])) or 'no'} "
                              f"pixels but holds {got}", path=path)
    try:
        return np.asarray(data, dtype=dtype).reshape(shape)
    except (TypeError, ValueError) as exc:
        raise UnreadableError(f"HDU '{hdu_name(hdu)}' data is not numeric ({_reason(exc)})",
                              path=path) from None


def hdu_name(hdu) -> str:
    try:
        return str(hdu.name)
    except Exception:
        return "?"


def table_columns(hdu, path) -> list[str]:
    """A table HDU's column names; a header whose TFORMn/TTYPEn astropy rejects is an error.
    From the file's header bytes where every column has a TTYPEn (astropy's ``columns``
    builds a Column, its format and unit for each, a millisecond for SDSS's two tables)."""
    names = hdu.__dict__.get("_astrovlm_columns")  # sniffing and reading both ask
    if names is None:
        names = hdu.__dict__["_astrovlm_columns"] = _table_columns(hdu, path)
    return list(names)


def _table_columns(hdu, path) -> list[str]:
    names = _ttypes(hdu)
    if names is not None:
        return names
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [str(c.name) for c in hdu.columns]
    except MemoryError:
        raise
    except Exception as exc:  # VerifyError on a bad TFORM, KeyError on a missing card
        raise UnreadableError(f"table '{hdu_name(hdu)}' has a broken column definition "
                              f"({type(exc).__name__}: {_reason(exc)})", path=path) from None


_TTYPE_KEYS = re.compile(r"^(TFIELDS|TTYPE\d+)$")


def hdu_file_span(hdu) -> tuple[str, int, int] | None:
    """(file name, header offset, data offset) of an HDU read from a plain file; None for
    one from a gzip file or from memory. The HDU's own fileinfo: ``HDUList.fileinfo`` would
    first serialise every header to see whether it was resized."""
    if isinstance(hdu, LightHDU):
        return hdu.file_span()
    try:
        info = hdu.fileinfo()
        name = getattr(info["file"], "name", None) if info else None
        if not name or getattr(info["file"], "compression", None) or info["hdrLoc"] is None \
                or info["datLoc"] is None:
            return None
        return name, int(info["hdrLoc"]), int(info["datLoc"])
    except (KeyError, TypeError, AttributeError, ValueError):
        return None


def raw_header(hdu) -> bytes | None:
    """The HDU's header as the file holds it, or None (see ``hdu_file_span``). Kept on the
    HDU: sniffing (column names) and reading (wcslib, the companion row) both use it."""
    if "_astrovlm_raw_header" not in hdu.__dict__:
        hdu.__dict__["_astrovlm_raw_header"] = _read_raw_header(hdu_file_span(hdu))
    return hdu.__dict__["_astrovlm_raw_header"]


def _read_raw_header(span) -> bytes | None:
    if span is None:
        return None
    try:
        with open(span[0], "rb") as fh:
            fh.seek(span[1])
            return fh.read(span[2] - span[1])
    except OSError:
        return None


def _ttypes(hdu) -> list[str] | None:
    from astrovlm.data.readers.fits_structure import header_cards

    raw = raw_header(hdu) if is_bintable_hdu(hdu) else None
    if raw is None:
        return None
    cards = header_cards(raw, _TTYPE_KEYS)
    try:
        names = [cards[f"TTYPE{i}"] for i in range(1, int(cards["TFIELDS"]) + 1)]
    except (KeyError, ValueError):
        return None  # a column without TTYPEn: astropy names it
    return names if all(names) else None


def hdu_shape(hdu) -> tuple[int, ...]:
    """An image HDU's shape from its header alone (numpy order), degenerate axes dropped.
    (``open_fits`` has checked the cards are integers in range before astropy read them.)
    Kept on the HDU: sniffing and reading ask for it several times, a card parse each."""
    shape = hdu.__dict__.get("_astrovlm_shape")
    if shape is None:
        shape = hdu.__dict__["_astrovlm_shape"] = _header_shape(hdu.header)
    return shape


def _header_shape(header) -> tuple[int, ...]:
    z = "Z" if card(header, "ZIMAGE") else ""
    try:
        naxis = min(int(card(header, f"{z}NAXIS", 0) or 0), 999)
        dims = [int(card(header, f"{z}NAXIS{i}", 0) or 0) for i in range(1, naxis + 1)]
    except (TypeError, ValueError):
        return ()
    if any(d <= 0 for d in dims):
        return ()
    return tuple(d for d in reversed(dims) if d != 1)


def is_image_hdu(hdu) -> bool:
    from astropy.io import fits

    if isinstance(hdu, LightHDU):
        return hdu.kind == "image"
    return isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))


def is_table_hdu(hdu) -> bool:
    from astropy.io import fits

    if isinstance(hdu, LightHDU):
        return hdu.kind in ("bintable", "table")
    return isinstance(hdu, (fits.BinTableHDU, fits.TableHDU))


def is_bintable_hdu(hdu) -> bool:
    from astropy.io import fits

    if isinstance(hdu, LightHDU):
        return hdu.kind == "bintable"
    return isinstance(hdu, fits.BinTableHDU)


def astropy_hdu(hdu):
    """The HDU as astropy's own object, for what takes one (``Table.read``)."""
    return hdu.astropy_hdu() if isinstance(hdu, LightHDU) else hdu


def _with_values(hdu):
    """The HDU, its header told where its bytes are: ``card`` then reads values from them
    (``header_values``) rather than through astropy's Card, for a plain image or table HDU
    of a plain file. (A tile-compressed image's header is astropy's, made from the table's.)"""
    from astropy.io import fits

    if type(hdu) in (fits.PrimaryHDU, fits.ImageHDU, fits.BinTableHDU, fits.TableHDU):
        header = hdu.header
        if "_astrovlm_values" not in header.__dict__:
            header.__dict__["_astrovlm_values"] = weakref.ref(hdu)  # parsed when first asked
    return hdu


def header_values(header) -> HeaderValues | None:
    """The ``HeaderValues`` of a header that ``iter_hdus`` or ``pick_hdu`` gave, made from the
    file's header bytes on first use; None for any other header (in memory, gzipped)."""
    found = getattr(header, "__dict__", {}).get("_astrovlm_values")
    if isinstance(found, weakref.ref):
        hdu = found()
        raw = raw_header(hdu) if hdu is not None else None
        found = HeaderValues(raw) if raw else None
        header.__dict__["_astrovlm_values"] = found
    return found


def card(header, key: str, default=None):
    """A header value, or ``default`` when the card is absent or unparsable (old IRAF files
    carry cards like ``Z = '0.0000-000000000E-04'`` that astropy cannot parse). From the
    file's header bytes where ``header_values`` has them, else through astropy."""
    values = header_values(header)
    if values is not None:
        value = values.get(key.upper())
        if value is not ASK_ASTROPY:
            if isinstance(value, str):
                value = value.strip()
            return default if value is None or value == "" else value
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
