"""Spectra held as columns: FITS tables (SDSS ``loglam/flux/ivar``, DESI-like and our own
``WAVELENGTH/FLUX/IVAR``), CSV/ECSV/Parquet/VOTable tables and plain two- or three-column text.

Every path ends in ``finish_spectrum``, which applies the same checks to all of them: a
wavelength with a unit, monotonic, finite; enough usable flux pixels.
"""

from __future__ import annotations

import re
from pathlib import Path

import astropy.units as u
import numpy as np

from astrovlm.data.readers._common import (
    MIN_VALID_PIXELS, check_nonempty, clearly_angstrom, parse_spectral_unit)
from astrovlm.data.spectrum import Spectrum
from astrovlm.errors import BadArgumentError, UnreadableError

# Column names, compared lower-case. Order matters: the first present wins.
WAVE_NAMES = ("wavelength", "wave", "lambda", "lam", "wavelength_vac", "wavelength_air",
              "wave_vac", "wave_air", "wl", "wlen", "obs_wave", "spectral_axis")
LOGLAM_NAMES = ("loglam", "log_lambda", "log10lam", "logwave", "log_wave")
FLUX_NAMES = ("flux", "f_lambda", "flam", "fluxes", "flux_density", "specflux", "spec",
              "fnu", "f_nu", "counts", "intensity")
IVAR_NAMES = ("ivar", "invvar", "inverse_variance", "flux_ivar", "ivar_flux")
ERROR_NAMES = ("error", "err", "sigma", "flux_err", "flux_error", "fluxerr", "e_flux", "eflux",
               "uncertainty", "noise", "stddev", "std", "flux_sigma", "error_flux")
VAR_NAMES = ("variance", "var", "flux_var")

# Header keys worth keeping with a spectrum (the rest of a survey header is instrument detail).
META_KEYS = ("OBJECT", "OBJNAME", "Z", "Z_ERR", "REDSHIFT", "CLASS", "SUBCLASS", "SPEC_CLN",
             "SPECTYPE", "TELESCOP", "INSTRUME", "DATE-OBS", "MJD", "EXPTIME", "VACUUM",
             "AIRORVAC", "BUNIT", "PLATE", "FIBERID", "TARGETID", "SIMULAT", "SPTYPE", "MKTYPE")


def find_column(names_lower: dict, candidates, exclude=()) -> str | None:
    """The actual name of the first candidate column present (case-insensitive)."""
    for cand in candidates:
        if cand in names_lower and cand not in exclude:
            return names_lower[cand]
    return None


def spectral_columns(colnames) -> dict:
    """Which columns hold wavelength (or loglam), flux, ivar/error/variance; {} if none."""
    lower = {c.lower().strip(): c for c in colnames}
    found = {"loglam": find_column(lower, LOGLAM_NAMES), "wave": find_column(lower, WAVE_NAMES)}
    if found["wave"] is None and found["loglam"] is None:
        # names with a unit suffix: "wavelength_nm", "wave_aa", "lambda_um"
        for low, orig in lower.items():
            stem, _, suffix = low.rpartition("_")
            if stem in WAVE_NAMES and parse_spectral_unit(suffix) is not None:
                found["wave"], found["wave_unit"] = orig, parse_spectral_unit(suffix)
                break
    found["flux"] = find_column(lower, FLUX_NAMES)
    if found["flux"] is None:
        for low, orig in lower.items():
            if low.startswith("flux") and not any(t in low for t in ("err", "ivar", "sig", "var", "mask")):
                found["flux"] = orig
                break
    found["ivar"] = find_column(lower, IVAR_NAMES)
    found["error"] = find_column(lower, ERROR_NAMES)
    found["var"] = find_column(lower, VAR_NAMES)
    if (found["wave"] is None and found["loglam"] is None) or found["flux"] is None:
        return {}
    return found


def _column_values(table, name, index: int, path) -> np.ndarray:
    """A column as a 1-D float array; vector cells (one spectrum per row) give row ``index``."""
    col = table[name]
    if col.dtype.kind not in "fiub":
        raise UnreadableError(f"column is not numeric ({col.dtype})", path=path, field=name)
    data = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)  # masked -> NaN
    if data.ndim == 2:
        if not 0 <= index < data.shape[0]:
            raise BadArgumentError(f"has {data.shape[0]} spectra; index {index} is out of range",
                                path=path, field=name)
        data = data[index]
    elif data.ndim > 2:
        raise UnreadableError(f"column has shape {data.shape}; expected one value per pixel",
                            path=path, field=name)
    return np.asarray(data, dtype=np.float64)


def spectrum_from_table(table, path, index: int = 0, meta: dict | None = None,
                        unit_hint: u.UnitBase | None = None, raw_units: dict | None = None) -> Spectrum:
    """Build a ``Spectrum`` from a table whose columns ``spectral_columns`` recognises.
    ``raw_units`` (column -> unit string as written, e.g. FITS TUNITn) keeps the flux unit
    spelled as the file spells it."""
    cols = spectral_columns(table.colnames)
    if not cols:
        raise UnreadableError(
            "has no spectrum columns (need wavelength or loglam, and flux; found "
            f"{', '.join(table.colnames[:12])})", path=path)
    meta = dict(meta or {})
    if cols["loglam"] is not None:
        # SDSS convention: log10 of the (vacuum) wavelength in Angstrom, by definition
        loglam = _column_values(table, cols["loglam"], index, path)
        with np.errstate(over="ignore", invalid="ignore"):  # absurd loglam: inf, refused below
            wave_values, unit = 10.0 ** loglam, u.AA
    else:
        name = cols["wave"]
        wave_values = _column_values(table, name, index, path)
        written = getattr(table[name], "unit", None)
        unit = cols.get("wave_unit") or parse_spectral_unit(written)
        if unit is None and written is not None and str(written).strip() not in ("", "1"):
            raise UnreadableError(f"wavelength unit '{written}' is not a wavelength, frequency or "
                                "energy unit", path=path, field=name)
        unit = unit or unit_hint
        if unit is None:
            unit = assume_angstrom(wave_values, path, name, meta)
    flux_col = table[cols["flux"]]
    flux = _column_values(table, cols["flux"], index, path)
    ivar = None
    if cols["ivar"] is not None:
        ivar = _column_values(table, cols["ivar"], index, path)
    elif cols["error"] is not None:
        ivar = ivar_from_error(_column_values(table, cols["error"], index, path))
    elif cols["var"] is not None:
        var = _column_values(table, cols["var"], index, path)
        with np.errstate(divide="ignore", invalid="ignore"):
            ivar = np.where(np.isfinite(var) & (var > 0), 1.0 / var, 0.0)
    flux_unit = (raw_units or {}).get(cols["flux"], "")
    if not flux_unit and getattr(flux_col, "unit", None) is not None:
        flux_unit = str(flux_col.unit)
    flux_unit = flux_unit or str(meta.pop("BUNIT", "") or "")
    return finish_spectrum(wave_values, unit, flux, ivar, flux_unit, meta, path)


def ivar_from_error(err: np.ndarray) -> np.ndarray:
    """1/sigma^2; a zero, negative or non-finite sigma marks a bad pixel (ivar 0)."""
    err = np.asarray(err, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(err) & (err > 0), 1.0 / err**2, 0.0)


def assume_angstrom(values: np.ndarray, path, field: str, meta: dict) -> u.UnitBase:
    """Angstrom when nothing names a unit but the values can only be Angstrom; else an error."""
    if clearly_angstrom(values):
        meta["WUNITSRC"] = "assumed Angstrom (no unit in the file; values are optical Angstrom)"
        return u.AA
    finite = np.asarray(values)[np.isfinite(values)]
    span = f"{finite.min():.4g}-{finite.max():.4g}" if finite.size else "no finite values"
    raise UnreadableError(
        f"wavelength has no unit (none in the file, and the values {span} are not clearly "
        "Angstrom); add a unit (e.g. TUNIT/CUNIT1 = 'Angstrom' or a header 'wavelength [nm]')",
        path=path, field=field)


def finish_spectrum(wave_values, unit, flux, ivar, flux_unit: str, meta: dict, path) -> Spectrum:
    """Check and assemble: the one place every reader's spectrum passes through."""
    wave_values = np.asarray(wave_values, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if wave_values.ndim != 1 or flux.ndim != 1:
        raise UnreadableError(f"wavelength and flux must be 1-D (got {wave_values.shape} and "
                            f"{flux.shape})", path=path)
    if len(wave_values) != len(flux):
        raise UnreadableError(f"wavelength has {len(wave_values)} values but flux has {len(flux)}",
                            path=path)
    if ivar is not None:
        ivar = np.asarray(ivar, dtype=np.float64)
        if ivar.shape != flux.shape:
            raise UnreadableError(f"ivar has {len(ivar)} values but flux has {len(flux)}", path=path)
    if len(flux) < MIN_VALID_PIXELS:
        raise UnreadableError(f"spectrum has only {len(flux)} pixels (need at least "
                            f"{MIN_VALID_PIXELS})", path=path)
    bad_wave = ~np.isfinite(wave_values)
    if bad_wave.any():
        raise UnreadableError(f"wavelength has {int(bad_wave.sum())} NaN or infinite values",
                            path=path, field="wavelength")
    try:
        wave = (wave_values * unit).to(u.AA, equivalencies=u.spectral())
    except u.UnitConversionError:
        raise UnreadableError(f"wavelength unit '{unit}' is not a wavelength, frequency or energy",
                            path=path, field="wavelength") from None
    if np.any(wave.value <= 0):
        raise UnreadableError("wavelength has zero or negative values", path=path, field="wavelength")
    step = np.diff(wave.value)
    if np.all(step < 0):  # decreasing (or a frequency axis): flip everything together
        wave, flux = wave[::-1], flux[::-1]
        ivar = ivar[::-1] if ivar is not None else None
    elif not np.all(step > 0):
        where = int(np.argmax(step <= 0)) if np.any(step <= 0) else 0
        raise UnreadableError(
            f"wavelength is not monotonic (it turns back or repeats at pixel {where + 1}: "
            f"{wave.value[where]:.6g} then {wave.value[where + 1]:.6g} Angstrom)",
            path=path, field="wavelength")
    bad_flux = ~np.isfinite(flux)
    if ivar is not None:
        ivar = np.where(np.isfinite(ivar) & (ivar > 0) & ~bad_flux, ivar, 0.0)
    spectrum = Spectrum(wavelength=wave, flux=flux, ivar=ivar, flux_unit=flux_unit or "",
                        meta=meta)
    n_good = int(spectrum.mask.sum())
    if n_good == 0:
        what = "NaN or infinite everywhere" if bad_flux.all() else "masked everywhere (ivar 0)"
        raise UnreadableError(f"flux is {what}: no usable pixels", path=path, field="flux")
    if n_good < MIN_VALID_PIXELS:
        raise UnreadableError(f"only {n_good} of {len(flux)} flux pixels are usable (finite, "
                            f"ivar > 0); need at least {MIN_VALID_PIXELS}", path=path, field="flux")
    return spectrum


# --- plain text and CSV ------------------------------------------------------------------

_TOKEN = re.compile(r"([A-Za-z_][\w\-.]*)\s*(?:[\[(]([^\])]*)[\])])?")
_UNIT_SENTENCE = re.compile(r"wavelengths?\b[^\n]*?\b(?:in|unit[s]?\s*[:=]?)\s*\[?([A-Za-z\u00c5]+)",
                            re.IGNORECASE)


def _parse_header(line: str, sep: str | None) -> list[tuple[str, str | None]]:
    """Column names and units from a header line: 'wavelength[nm], flux (erg/s/cm2/A), err'."""
    line = line.lstrip("#%!; \t")
    parts = line.split(sep) if sep else None
    tokens = []
    if parts and len(parts) > 1:
        for part in parts:
            m = _TOKEN.search(part)
            if m:
                tokens.append((m.group(1), m.group(2)))
    else:
        tokens = [(m.group(1), m.group(2)) for m in _TOKEN.finditer(line)]
    return tokens


def _numeric_row(line: str, sep: str | None) -> list[float] | None:
    parts = [p for p in (line.split(sep) if sep else line.split()) if p.strip() != ""]
    try:
        return [float(p) for p in parts]
    except ValueError:
        return None


def read_text_spectrum(path, index: int = 0) -> Spectrum:
    """A two- or three-column text/CSV spectrum (wavelength, flux[, error or ivar]).

    The wavelength unit comes from the header line (``wavelength [Angstrom]``,
    ``wave(nm)``, ``wavelength_um``), from a comment (``# wavelengths in nm``) or, for values
    that can only be Angstrom, is assumed and noted in ``meta``.
    """
    path = check_nonempty(path)
    from astrovlm.data.readers.limits import MAX_TEXT_TABLE_BYTES

    if path.stat().st_size > MAX_TEXT_TABLE_BYTES:
        raise UnreadableError(f"text spectrum of {path.stat().st_size / 2**20:.0f} MiB is too large "
                            f"(limit {MAX_TEXT_TABLE_BYTES // 2**20} MiB)", path=path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise UnreadableError("is not a text file (not UTF-8)", path=path) from None
    lines = [ln.rstrip("\r") for ln in text.splitlines()]
    data_lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith(("#", "%", "!", ";"))]
    if not data_lines:
        raise UnreadableError("has no data lines", path=path)
    sep = "," if "," in data_lines[-1] else ("\t" if "\t" in data_lines[-1] else None)
    header_tokens, rows, comments = None, [], []
    for ln in lines:
        s = ln.strip()
        if not s:
            continue
        if s.startswith(("#", "%", "!", ";")):
            comments.append(s)
            tokens = _parse_header(s, sep)
            if not rows and tokens and spectral_columns([t[0] for t in tokens]):
                header_tokens = tokens
            continue
        row = _numeric_row(s, sep)
        if row is None:
            if rows:
                raise UnreadableError(f"line '{s[:60]}' is not numeric (after data began)", path=path)
            header_tokens = _parse_header(s, sep)
            continue
        rows.append(row)
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise UnreadableError(f"rows have different numbers of columns ({sorted(widths)})", path=path)
    ncol = widths.pop()
    if ncol < 2:
        raise UnreadableError("needs at least two columns (wavelength, flux)", path=path)
    arr = np.asarray(rows, dtype=np.float64)
    from astropy.table import Table

    meta = {}
    unit_hint = None
    for c in comments:
        m = _UNIT_SENTENCE.search(c)
        if m and parse_spectral_unit(m.group(1)) is not None:
            unit_hint = parse_spectral_unit(m.group(1))
    if header_tokens and len(header_tokens) >= ncol:
        names = [t[0] for t in header_tokens[:ncol]]
        units = [t[1] for t in header_tokens[:ncol]]
        table = Table(arr, names=names)
        cols = spectral_columns(names)
        if not cols:
            raise UnreadableError(f"header names no wavelength and flux columns ({', '.join(names)})",
                                path=path)
        wave_name = cols["wave"] or cols["loglam"]
        wave_unit = parse_spectral_unit(units[names.index(wave_name)])
        if units[names.index(wave_name)] and wave_unit is None and cols["wave"]:
            raise UnreadableError(f"wavelength unit '{units[names.index(wave_name)]}' is not a "
                                "wavelength unit", path=path, field=wave_name)
        if wave_unit is not None:
            table[wave_name].unit = wave_unit
        flux_name = cols["flux"]
        if units[names.index(flux_name)]:
            meta["BUNIT"] = units[names.index(flux_name)]
    else:
        # no header: the column order is the convention (wavelength, flux, error)
        names = ["wavelength", "flux", "error", *[f"col{i}" for i in range(4, ncol + 1)]][:ncol]
        table = Table(arr, names=names)
        if ncol >= 3:
            meta["ERRCOL"] = "third column taken as the 1-sigma error"
    return spectrum_from_table(table, path, index=index, meta=meta, unit_hint=unit_hint)
