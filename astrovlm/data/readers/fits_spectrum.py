"""FITS spectra in the layouts astronomers actually have, read into a ``Spectrum``.

- tables: SDSS/BOSS ``spec-*.fits`` (COADD: loglam, flux, ivar), DESI-style per-camera
  HDUs (B/R/Z_WAVELENGTH, _FLUX, _IVAR, _MASK), any table with wavelength/flux columns, and
  astrovlm's own ``Spectrum.to_fits`` format (WAVELENGTH [Angstrom], FLUX, IVAR);
- 1-D images with a spectral WCS: FITS-standard (``CTYPE1 = 'WAVE'``, ``'WAVE-LOG'``,
  ``'AWAV'``, ``'FREQ'``), IRAF linear/log-linear (``CRVAL1``, ``CDELT1`` or ``CD1_1``,
  ``CRPIX1``, ``DC-FLAG = 1`` for log10), IRAF ``multispec`` and the old ``W0/WPC``;
- 2-D images whose rows are flux, error, ... (SDSS spSpec and the RVSAO SDSS templates:
  row 0 is the flux, ``ARRAYn`` names the rows when present).

IRAF's convention is Angstrom when a header names no unit; astrovlm accepts that only when
the values are plainly optical Angstrom, and says so in ``meta['WUNITSRC']``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np

from astrovlm.data.readers._common import (
    astropy_hdu, card, check_nonempty, guarded, hdu_data, hdu_file_span, hdu_shape, header_number, header_radec, image_data,
    is_bintable_hdu, is_image_hdu, is_table_hdu, iter_hdus, open_fits, parse_spectral_unit, pick_hdu, raw_header, table_columns)
from astrovlm.data.readers.spectrum_table import (
    META_KEYS, assume_angstrom, finish_spectrum, ivar_from_error, spectral_columns,
    spectrum_from_table)
from astrovlm.data.spectrum import Spectrum
from astrovlm.errors import BadArgumentError, UnreadableError

_STANDARD_SPECTRAL = ("WAVE", "AWAV", "FREQ", "ENER", "WAVN", "VOPT", "ZOPT")
_IRAF_CTYPES = ("LINEAR", "LAMBDA", "WAVELENGTH", "PIXEL", "MULTISPE", "ANGSTROM")
_TABLE_STRUCTURAL = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|TTYPE\d+|TFORM\d+|TUNIT\d+|TDIM\d+|"
    r"TNULL\d+|TSCAL\d+|TZERO\d+|TDISP\d+|TUCD\d+|TCOMM\d+|EXTNAME|EXTVER|CHECKSUM|DATASUM|"
    r"COMMENT|HISTORY|SIMPLE|EXTEND|)$")


def looks_like_spectrum_image(header, shape) -> bool:
    """A 2-D array of a few rows by many pixels with a spectral header: flux/error/mask rows."""
    if len(shape) != 2:
        return False
    nrows, npix = shape
    if nrows > 8 or npix < 64:
        return False
    ctype1 = str(card(header, "CTYPE1", "") or "").upper()
    ctype2 = str(card(header, "CTYPE2", "") or "").upper()
    if ctype2.startswith(("RA", "DEC", "GLON", "GLAT", "ELON", "ELAT")):
        return False
    return bool(card(header, "DC-FLAG") is not None or card(header, "WFITTYPE")
                or card(header, "COEFF0") is not None or card(header, "ARRAY1")
                or ctype1.startswith(_STANDARD_SPECTRAL + _IRAF_CTYPES)
                or card(header, "CRVAL1") is not None)


@guarded("the spectrum")
def read_spectrum(path: str | Path, hdu: int | str | None = None, index: int = 0, *,
                  hdul=None, table=None) -> Spectrum:
    """Read a spectrum from FITS (any layout above), ECSV/CSV/Parquet/VOTable tables, or
    plain two/three-column text. ``hdu`` picks a FITS HDU; ``index`` picks one spectrum of
    a file that holds several (rows of a 2-D array or of a table of vector columns).

    ``hdul`` / ``table``: the FITS file already open, or the table already read
    (``readers.sniffed``), so the file is not opened and parsed again."""
    if hdul is not None:
        return _read_fits_spectrum(Path(path), hdu, index, hdul)
    if table is not None:
        return spectrum_from_table(table, Path(path), index=index)
    path = check_nonempty(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith((b"SIMPLE", b"\x1f\x8b")):
        return _read_fits_spectrum(path, hdu, index)
    if hdu is not None:
        raise BadArgumentError(f"hdu={hdu!r} given but the file is not FITS", path=path)
    from astrovlm.data.readers.catalog import TABLE_SUFFIXES, read_table

    name = path.name.lower()
    if head.startswith(b"PAR1") or name.endswith(TABLE_SUFFIXES):
        return spectrum_from_table(read_table(path), path, index=index)
    if head[:5].lower() in (b"<?xml", b"<vota"):
        return spectrum_from_table(read_table(path), path, index=index)
    from astrovlm.data.readers.spectrum_table import read_text_spectrum

    return read_text_spectrum(path, index=index)


def _read_fits_spectrum(path: Path, hdu, index: int, opened=None) -> Spectrum:
    with open_fits(path, opened) as hdul:
        hdus = list(iter_hdus(hdul, path))
        primary = hdus[0][1].header if hdus else None
        if hdu is None:
            cameras = _desi_cameras(hdus)
            if cameras:
                return _read_desi(hdus, cameras, path, index)
        chosen = pick_hdu(hdul, hdu, path) if hdu is not None else _find_spectrum_hdu(hdus, path)
        meta = _meta_from_header(primary) if primary is not None else {}
        if is_table_hdu(chosen):
            meta.update(_meta_from_table_header(chosen.header))
            meta.update(_meta_from_companion(hdus, index))
            table = _table(chosen, path)
            if not len(table):
                raise UnreadableError(f"spectrum table '{chosen.name}' has no rows", path=path)
            raw_units = {}
            for i, col in enumerate(table_columns(chosen, path), 1):
                unit = card(chosen.header, f"TUNIT{i}")
                if unit:
                    raw_units[col] = str(unit)
            return spectrum_from_table(table, path, index=index, meta=meta, raw_units=raw_units)
        if not is_image_hdu(chosen):
            raise BadArgumentError(f"HDU {hdu!r} holds neither a table nor an array", path=path)
        shape = hdu_shape(chosen)
        header = chosen.header
        if chosen is not hdus[0][1]:
            meta.update(_meta_from_header(header))
        if len(shape) == 1:
            flux, ivar = image_data(chosen, path, shape, np.float64), None
        elif len(shape) == 2 and shape[0] <= 8:
            rows = image_data(chosen, path, shape, np.float64)
            flux, ivar = _rows_to_flux_ivar(rows, header, index, path)
        else:
            raise UnreadableError(f"HDU '{chosen.name}' holds a {shape} array: not a spectrum "
                                "(an image? read it with read_image)", path=path)
        wave_values, unit = wavelength_solution(header, len(flux), path, meta)
        flux_unit = str(card(header, "BUNIT", "") or meta.pop("BUNIT", "") or "")
        meta.pop("BUNIT", None)
        return finish_spectrum(wave_values, unit, flux, ivar, flux_unit, meta, path)


def _find_spectrum_hdu(hdus, path):
    """The first HDU that holds a spectrum: a table with spectral columns, a 1-D array, or
    an SDSS-style few-rows array."""
    for _, hdu in hdus:
        if is_table_hdu(hdu):
            if spectral_columns(table_columns(hdu, path)):
                return hdu
        elif is_image_hdu(hdu):
            shape = hdu_shape(hdu)
            if len(shape) == 1 or looks_like_spectrum_image(hdu.header, shape):
                return hdu
    kinds = []
    for _, hdu in hdus:
        if is_image_hdu(hdu):
            shape = hdu_shape(hdu)
            kinds.append(f"an empty {hdu.name or 'HDU'}" if not shape
                         else f"a {'x'.join(map(str, shape[::-1]))} image")
        elif is_table_hdu(hdu):
            kinds.append(f"a table '{hdu.name}' without wavelength/flux columns")
    raise UnreadableError("has no spectrum in it (found " + (", ".join(kinds) or "nothing")
                        + ")", path=path)


def _table(hdu, path):
    from astropy.table import Table

    layout = _bintable_layout(hdu)
    if layout is not None and not layout.has_nulls:
        records = _records_from_bytes(layout, path)
        if records is not None:
            return _FitsColumns(records, {c.name: c.unit for c in layout.columns},
                                {c.name: (c.scale, c.zero) for c in layout.columns})
    data = hdu_data(hdu, path)  # reading first turns a truncated table into a clear error
    if data is None:
        return Table()
    if not (layout.has_nulls if layout is not None
            else any(key.startswith("TNULL") for key in hdu.header)):
        return _FitsColumns(data, {c.name: c.unit for c in data.columns})
    try:  # integer nulls: astropy's Table masks them
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Table.read(astropy_hdu(hdu), format="fits", character_as_bytes=False)
    except MemoryError:
        raise
    except Exception as exc:  # ValueError, TypeError, VerifyError: a column astropy cannot build
        raise UnreadableError(f"table '{hdu.name}' cannot be read ({type(exc).__name__}: "
                              f"{str(exc)[:160]})", path=path) from None


class _FitsColumns:
    """A FITS table's columns as ``spectrum_from_table`` reads them (``colnames``, ``len``,
    ``table[name]`` with its unit), straight from the records (``_records_from_bytes``, or
    astropy's FITS_rec where the file is not plain): ``Table.read`` copies every column into
    an astropy Table and parses every unit, a third of the time of reading an SDSS spectrum,
    for the two to four columns a spectrum uses. ``scales`` ({name: (TSCAL, TZERO)}) are
    applied on access, as astropy applies them (FITS_rec comes scaled: none given); NaN
    stays NaN."""

    def __init__(self, data, units: dict, scales: dict | None = None):
        self._data = data
        self._units = units
        self._scales = scales or {}
        self.colnames = list(units)

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, name: str):
        import astropy.units as u
        from astropy.table import Column

        unit = self._units[name]
        if unit:  # as Table.read parses TUNITn
            unit = u.Unit(unit, format="fits", parse_strict="silent")
        values = self._data.field(name) if hasattr(self._data, "field") else self._data[name]
        scale, zero = self._scales.get(name, (1.0, 0.0))
        if (scale, zero) != (1.0, 0.0) and values.dtype.kind in "iuf":
            values = values * scale + zero
        return Column(values, name=name, unit=unit or None, copy=False)


def _rows_to_flux_ivar(rows: np.ndarray, header, index: int, path):
    """Rows of a few-rows spectrum array: which is flux, which is the error or ivar."""
    labels = {}
    for i in range(rows.shape[0]):
        label = str(card(header, f"ARRAY{i + 1}", "") or "").upper()
        if label:
            labels[i] = label
    flux_row = next((i for i, lab in labels.items() if lab in ("SPECTRUM", "FLUX")), None)
    err_row = next((i for i, lab in labels.items() if lab in ("ERROR", "SIGMA", "ERR")), None)
    ivar_row = next((i for i, lab in labels.items() if lab in ("IVAR", "INVVAR")), None)
    sdss_layout = bool(card(header, "WFITTYPE") or card(header, "COEFF0") is not None)
    if flux_row is None:
        if sdss_layout or labels:
            flux_row = 0  # SDSS spSpec: flux, continuum-subtracted flux, error, mask
        else:
            if not 0 <= index < rows.shape[0]:
                raise BadArgumentError(f"has {rows.shape[0]} spectra (rows); index {index} is out of "
                                    "range", path=path)
            flux_row = index
    if err_row is None and ivar_row is None and sdss_layout and rows.shape[0] >= 3 and not labels:
        err_row = 2
    ivar = None
    if ivar_row is not None:
        ivar = rows[ivar_row]
    elif err_row is not None and np.any(rows[err_row] > 0):
        ivar = ivar_from_error(rows[err_row])  # an all-zero error row means "not given"
    return rows[flux_row], ivar


def wavelength_solution(header, n: int, path, meta: dict):
    """Wavelength values and their unit for ``n`` pixels of a 1-D spectral header."""
    ctype = str(card(header, "CTYPE1", "") or "").upper().strip()
    system = str(card(header, "WAT0_001", "") or "").lower()
    if ctype.startswith("MULTISPE") or "multispec" in system:
        values, log = _multispec(header, n, path)
        unit = _header_unit(header) or assume_angstrom(values, path, "CTYPE1", meta)
        return values, unit
    if ctype.startswith(_STANDARD_SPECTRAL):
        return _standard_wcs(header, n, path, meta, ctype)
    dcflag = header_number(header, "DC-FLAG")
    if dcflag is not None and dcflag < 0:
        raise UnreadableError("is not wavelength calibrated (DC-FLAG = -1)", path=path)
    crval = header_number(header, "CRVAL1")
    delta = header_number(header, "CD1_1") or header_number(header, "CDELT1")
    if crval is None and header_number(header, "W0") is not None:
        crval, delta = header_number(header, "W0"), header_number(header, "WPC")
    if crval is None and header_number(header, "COEFF0") is not None:
        crval, delta = header_number(header, "COEFF0"), header_number(header, "COEFF1")
    if crval is None or not delta:
        raise UnreadableError("has no wavelength solution (no CRVAL1 with CDELT1 or CD1_1 in the "
                            "header)", path=path, field="CRVAL1")
    if ctype == "PIXEL" and crval == 1 and delta == 1:
        raise UnreadableError("has pixel coordinates only, no wavelength solution", path=path)
    crpix = header_number(header, "CRPIX1")
    crpix = 1.0 if crpix is None else crpix
    pixel = np.arange(1, n + 1, dtype=np.float64)  # FITS pixels count from 1
    values = crval + delta * (pixel - crpix)
    wfit = str(card(header, "WFITTYPE", "") or "").upper()
    log10 = (dcflag == 1 or "LOG" in wfit or "LOG" in ctype
             or (card(header, "COEFF0") is not None and card(header, "COEFF1") is not None
                 and crval < 6 and abs(delta) < 0.01))
    if log10:
        if crval > 6:
            raise UnreadableError(f"header says log-linear (DC-FLAG/WFITTYPE) but CRVAL1 = {crval:g} "
                                "is not a log10 wavelength", path=path, field="CRVAL1")
        values = 10.0 ** values
        meta.setdefault("WAVESCAL", "log-linear")
    unit = _header_unit(header) or assume_angstrom(values, path, "CUNIT1", meta)
    return values, unit


def _header_unit(header):
    unit = parse_spectral_unit(card(header, "CUNIT1"))
    if unit is not None:
        return unit
    wat = " ".join(str(card(header, f"WAT1_{i:03d}", "") or "") for i in range(1, 4))
    m = re.search(r"units=(\S+)", wat)
    if m:
        return parse_spectral_unit(m.group(1))
    return None


def _standard_wcs(header, n, path, meta, ctype):
    """FITS WCS paper III spectral axes. Without CUNIT1 the standard says metres (WAVE) or Hz
    (FREQ); real files that omit it almost always mean Angstrom, so the values decide."""
    crval = header_number(header, "CRVAL1")
    delta = header_number(header, "CDELT1") or header_number(header, "CD1_1")
    if crval is None or not delta:
        raise UnreadableError(f"CTYPE1 = '{ctype}' but no CRVAL1 with CDELT1 or CD1_1",
                            path=path, field="CRVAL1")
    crpix = header_number(header, "CRPIX1")
    crpix = 1.0 if crpix is None else crpix
    offset = delta * (np.arange(1, n + 1, dtype=np.float64) - crpix)
    if ctype.endswith("-LOG"):
        values = crval * np.exp(offset / crval)  # paper III: w = w_r exp(offset / w_r)
    elif len(ctype) <= 4 or ctype.endswith("-LIN"):
        values = crval + offset
    else:
        raise UnreadableError(f"spectral axis type CTYPE1 = '{ctype}' is not supported", path=path)
    unit = parse_spectral_unit(card(header, "CUNIT1"))
    if unit is None and card(header, "CUNIT1"):
        raise UnreadableError(f"CUNIT1 = '{card(header, 'CUNIT1')}' is not a spectral unit",
                            path=path, field="CUNIT1")
    if unit is None:
        if ctype.startswith(("WAVE", "AWAV")):
            unit = assume_angstrom(values, path, "CUNIT1", meta)
        else:
            unit = {"FREQ": u.Hz, "ENER": u.J, "WAVN": 1 / u.m}.get(ctype[:4])
    if ctype.startswith("AWAV"):
        meta.setdefault("AIRORVAC", "air")
    return values, unit


def _multispec(header, n, path):
    """The first aperture of an IRAF multispec header: linear (0), log-linear (1), or a
    sampled table of wavelengths (dtype 2 with function type 5)."""
    keys = sorted(k for k in header.keys() if re.fullmatch(r"WAT2_\d{3}", k))
    # IRAF splits the string into 68-character cards; astropy strips their trailing blanks
    text = "".join(_raw_string(header, k).ljust(68) for k in keys)
    m = re.search(r'spec\d+\s*=\s*"([^"]*)"?', text)
    if not m:
        raise UnreadableError("multispec header without a 'spec1' wavelength solution", path=path)
    fields = m.group(1).split()
    try:
        dtype, w1, dw = int(fields[2]), float(fields[3]), float(fields[4])
        z = float(fields[6])
    except (IndexError, ValueError):
        raise UnreadableError("multispec 'spec1' wavelength solution cannot be parsed", path=path) from None
    pixel = np.arange(n, dtype=np.float64)
    if dtype in (0, 1):
        values = w1 + dw * pixel
        values = 10.0 ** values if dtype == 1 else values
    elif dtype == 2:
        try:
            # ap beam dtype w1 dw nw z aplow aphigh | weight zeropoint ftype npts values...
            zero, ftype, npts = float(fields[10]), int(float(fields[11])), int(float(fields[12]))
            table = zero + np.asarray([float(f) for f in fields[13:13 + npts]])
        except (IndexError, ValueError):
            raise UnreadableError("multispec non-linear solution cannot be parsed", path=path) from None
        if ftype != 5 or len(table) != npts or npts < n:
            raise UnreadableError(f"multispec non-linear function type {ftype} is not supported "
                                "(only sampled tables)", path=path)
        values = table[:n]
    else:
        raise UnreadableError(f"multispec dispersion type {dtype} is not supported", path=path)
    return values / (1.0 + z), dtype == 1


def _raw_string(header, key) -> str:
    """A string card as written, leading blanks kept (``card`` strips them)."""
    try:
        return str(header[key])
    except Exception:
        return ""


def _meta_from_header(header) -> dict:
    meta = {}
    for key in META_KEYS:
        value = card(header, key)
        if value is not None and not isinstance(value, (list, dict)):
            meta[key] = value
    radec = header_radec(header)
    if radec is not None:
        meta["RA"], meta["DEC"] = radec
    return meta


def _meta_from_table_header(header) -> dict:
    """Every non-structural card of a spectrum table's header (round-trips ``to_fits``)."""
    meta = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HIERARCH and other non-standard cards
        for key in header:  # the keywords alone: a value is parsed only where it is kept
            if _TABLE_STRUCTURAL.match(key) or key in meta:
                continue  # structure (most of a table's header)
            try:
                value = header[key]
            except Exception:  # unparsable card
                continue
            if isinstance(value, (str, int, float, bool)):  # not blank or undefined
                meta[key] = value
    return meta


def _meta_from_companion(hdus, index: int) -> dict:
    """Redshift, class and position from SDSS's SPECOBJ or DESI's FIBERMAP table, if present."""
    wanted = {"Z": "Z", "Z_ERR": "Z_ERR", "ZERR": "Z_ERR", "CLASS": "CLASS", "SPECTYPE": "CLASS",
              "SUBCLASS": "SUBCLASS", "PLUG_RA": "RA", "PLUG_DEC": "DEC", "TARGET_RA": "RA",
              "TARGET_DEC": "DEC", "OBJID": "OBJID", "TARGETID": "TARGETID"}
    meta = {}
    for _, hdu in hdus:
        if not is_table_hdu(hdu) or str(hdu.name).upper() not in ("SPECOBJ", "FIBERMAP", "SPALL", "REDSHIFTS"):
            continue
        row = _row_fields(hdu, index, wanted)
        if row is not None:
            for col, key in wanted.items():
                if col in row and key not in meta:
                    meta[key] = row[col]
            continue
        try:
            data = hdu.data
            if data is None or len(data) <= index:
                continue
            names = {n.upper(): n for n in data.columns.names}
            for col, key in wanted.items():
                if col in names and key not in meta:
                    value = data[names[col]][index]
                    value = value.item() if hasattr(value, "item") else value
                    if isinstance(value, bytes):
                        value = value.decode("ascii", "replace")
                    meta[key] = value.strip() if isinstance(value, str) else value
        except Exception:  # a broken companion table loses only these extras
            continue
    return meta


_ROW_DTYPES = {"B": ">u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_LAYOUT_KEYS = re.compile(r"^(NAXIS[12]|TFIELDS|TTYPE\d+|TFORM\d+|TSCAL\d+|TZERO\d+|TUNIT\d+|"
                          r"TNULL\d+|TDIM\d+)$")


@dataclass(frozen=True)
class _Column:
    name: str          # TTYPEn as written ('' when absent)
    offset: int        # bytes from the start of a row
    repeat: int
    code: str          # the TFORMn type code
    scale: float       # TSCALn, TZEROn
    zero: float
    unit: str          # TUNITn as written


@dataclass(frozen=True)
class _TableLayout:
    """Where a binary table's bytes are and what each row holds, from its header's bytes."""

    file: str
    data_at: int
    width: int         # NAXIS1: bytes a row
    rows: int          # NAXIS2
    columns: tuple
    has_nulls: bool    # a TNULLn: integer nulls, which astropy's Table masks
    has_dims: bool     # a TDIMn: cells shaped beyond one axis


def _bintable_layout(hdu) -> _TableLayout | None:
    """The layout of a binary table in a plain file, from its raw header cards; None where
    this is not one (an ASCII table, a compressed or in-memory file, cards that do not add
    up), and the caller goes through astropy. The offsets come from TFORMn, which the
    structure check has verified add up to NAXIS1."""
    from astrovlm.data.readers.fits_structure import header_cards, tform_bytes

    raw = raw_header(hdu) if is_bintable_hdu(hdu) else None
    if raw is None:
        return None
    name, _, data_at = hdu_file_span(hdu)
    try:
        cards = header_cards(raw, _LAYOUT_KEYS)
        width, rows = int(cards["NAXIS1"]), int(cards["NAXIS2"])
        columns, offset = [], 0
        for i in range(1, int(cards["TFIELDS"]) + 1):
            size, repeat, code = tform_bytes(cards[f"TFORM{i}"])
            columns.append(_Column(cards.get(f"TTYPE{i}", ""), offset, repeat, code,
                                   float(cards.get(f"TSCAL{i}", 1)), float(cards.get(f"TZERO{i}", 0)),
                                   cards.get(f"TUNIT{i}", "")))
            offset += size
    except (ValueError, KeyError):  # e.g. TSCALn = 1.0D0: astropy reads that one
        return None
    if offset != width:
        return None
    return _TableLayout(name, data_at, width, rows, tuple(columns),
                        has_nulls=any(k.startswith("TNULL") for k in cards),
                        has_dims=any(k.startswith("TDIM") for k in cards))


def _records_from_bytes(layout: _TableLayout, path) -> np.ndarray | None:
    """Every row of a table of plain numeric (and string) columns as one structured array
    read from the file: astropy's ``hdu.data`` builds a ColDefs and a FITS_rec, more than
    the rest of reading an SDSS spectrum. None where a column is of another kind (logical,
    bits, complex, variable-length), is unnamed or named twice, or shaped by TDIMn."""
    names = [c.name for c in layout.columns]
    if (layout.has_dims or not all(names) or len({n.upper() for n in names}) != len(names)
            or any(c.code not in _ROW_DTYPES and c.code != "A" for c in layout.columns)):
        return None
    formats = [f"S{c.repeat}" if c.code == "A" else
               (_ROW_DTYPES[c.code] if c.repeat == 1 else (_ROW_DTYPES[c.code], (c.repeat,)))
               for c in layout.columns]
    dtype = np.dtype({"names": names, "formats": formats,
                      "offsets": [c.offset for c in layout.columns], "itemsize": layout.width})
    try:
        with open(layout.file, "rb") as fh:
            fh.seek(layout.data_at)
            records = np.fromfile(fh, dtype=dtype, count=layout.rows)
    except (OSError, ValueError):
        return None
    if len(records) < layout.rows:
        raise UnreadableError(f"corrupt or truncated FITS file: a table holds {len(records)} of "
                              f"its {layout.rows} rows", path=path)
    return records


def _row_fields(hdu, index: int, wanted) -> dict | None:
    """The scalar fields named in ``wanted`` (upper-case) of row ``index`` of a binary
    table, from the file's bytes: astropy's ``hdu.data`` builds every column of SDSS's
    SPECOBJ (about 200) to give the five values read here, and costs more than reading the
    spectrum itself. None where the table is not plain (``_bintable_layout``): the caller
    reads ``hdu.data``."""
    layout = _bintable_layout(hdu)
    if layout is None or not 0 <= index < layout.rows:
        return None
    fields = {}
    for c in layout.columns:
        col = c.name.upper()
        if col in wanted and col not in fields and (c.code == "A" or c.repeat == 1):
            fields[col] = c
    try:
        with open(layout.file, "rb") as fh:
            fh.seek(layout.data_at + index * layout.width)
            row = fh.read(layout.width)
    except OSError:
        return None
    if len(row) < layout.width:
        return None
    out = {}
    for col, c in fields.items():
        start, scale, zero = c.offset, c.scale, c.zero
        if c.code == "A":  # as astropy gives it: trailing blanks and NULs dropped
            text = row[start:start + c.repeat].split(b"\0", 1)[0]
            out[col] = text.decode("ascii", "replace").strip()
        elif c.code == "L":
            out[col] = row[start:start + 1] == b"T"
        elif c.code in _ROW_DTYPES:
            value = np.frombuffer(row, dtype=_ROW_DTYPES[c.code], count=1, offset=start)[0].item()
            if scale != 1 or zero != 0:  # scaled as astropy scales it
                value = value * scale + zero
                if c.code in "BIJK" and scale == 1 and zero.is_integer():
                    value = int(value)  # unsigned integers stored with an offset
            out[col] = value
    return out


def _desi_cameras(hdus) -> list[str]:
    names = {str(h.name).upper() for _, h in hdus}
    return [cam for cam in ("B", "R", "Z") if {f"{cam}_WAVELENGTH", f"{cam}_FLUX"} <= names]


def _read_desi(hdus, cameras, path, index: int) -> Spectrum:
    """DESI coadd layout: one wavelength array per camera, flux/ivar/mask of shape
    (n_spectra, n_pixels). Cameras overlap; each keeps its pixels up to the middle of the
    overlap so the stitched wavelength stays monotonic."""
    by_name = {str(h.name).upper(): h for _, h in hdus}
    pieces = []
    def array(name, dtype=np.float64):
        hdu = by_name[name]
        if not is_image_hdu(hdu):
            raise UnreadableError(f"DESI HDU '{name}' is not an array", path=path)
        return image_data(hdu, path, hdu_shape(hdu), dtype)

    for cam in cameras:
        wave = array(f"{cam}_WAVELENGTH").ravel()
        unit = parse_spectral_unit(card(by_name[f"{cam}_WAVELENGTH"].header, "BUNIT")) or u.AA
        flux = np.atleast_2d(array(f"{cam}_FLUX"))
        if flux.ndim != 2 or flux.shape[1] != wave.size:
            raise UnreadableError(f"DESI HDU '{cam}_FLUX' has shape {flux.shape} but "
                                  f"{cam}_WAVELENGTH has {wave.size} values", path=path)
        if not 0 <= index < flux.shape[0]:
            raise BadArgumentError(f"has {flux.shape[0]} spectra; index {index} is out of range", path=path)
        ivar = None
        for extra in ("IVAR", "MASK"):
            if f"{cam}_{extra}" not in by_name:
                continue
            values = np.atleast_2d(array(f"{cam}_{extra}"))
            if values.shape != flux.shape:
                raise UnreadableError(f"DESI HDU '{cam}_{extra}' has shape {values.shape}, "
                                      f"{cam}_FLUX {flux.shape}", path=path)
            if extra == "IVAR":
                ivar = values[index]
            elif ivar is not None:
                ivar = np.where(values[index] == 0, ivar, 0.0)
        pieces.append([(wave * unit).to_value(u.AA), flux[index], ivar])
    pieces.sort(key=lambda p: p[0][0])
    for a, b in zip(pieces, pieces[1:]):
        if a[0][-1] >= b[0][0]:
            cut = 0.5 * (a[0][-1] + b[0][0])
            keep_a, keep_b = a[0] < cut, b[0] >= cut
            a[:] = [a[0][keep_a], a[1][keep_a], None if a[2] is None else a[2][keep_a]]
            b[:] = [b[0][keep_b], b[1][keep_b], None if b[2] is None else b[2][keep_b]]
    wave = np.concatenate([p[0] for p in pieces])
    flux = np.concatenate([p[1] for p in pieces])
    ivar = None if any(p[2] is None for p in pieces) else np.concatenate([p[2] for p in pieces])
    meta = _meta_from_header(hdus[0][1].header)
    meta.update(_meta_from_companion(hdus, index))
    flux_unit = str(card(by_name[f"{cameras[0]}_FLUX"].header, "BUNIT", "") or "")
    meta.pop("BUNIT", None)
    return finish_spectrum(wave, u.AA, flux, ivar, flux_unit, meta, path)
