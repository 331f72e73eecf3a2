"""Catalogs: FITS tables, VOTable, CSV/ECSV and Parquet, read with astropy into a ``Table``;
the RA/Dec columns found by name (or VOTable UCD) and turned into a ``SkyCoord``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np

from astrovlm.data.readers._common import (
    astropy_hdu, check_nonempty, guarded, hdu_data, is_table_hdu, iter_hdus, open_fits, pick_hdu)
from astrovlm.data.readers.limits import MAX_COLUMNS, MAX_ROWS, MAX_TEXT_TABLE_BYTES
from astrovlm.errors import BadArgumentError, UnreadableError

TABLE_SUFFIXES = (".csv", ".ecsv", ".tsv", ".parquet", ".pq", ".vot", ".votable", ".xml")

# Compared lower-case; the first pair present wins. Survey-specific names are kept because
# users bring tables straight from VizieR, SDSS CasJobs, Gaia and DESI.
RADEC_PAIRS = [
    ("ra", "dec"), ("raj2000", "dej2000"), ("_raj2000", "_dej2000"), ("raj2000", "decj2000"),
    ("ra_j2000", "dec_j2000"), ("ra_deg", "dec_deg"), ("radeg", "dedeg"), ("radeg", "decdeg"),
    ("ra_icrs", "de_icrs"), ("ra_icrs", "dec_icrs"), ("ra2000", "de2000"), ("ra2000", "dec2000"),
    ("ra_obj", "dec_obj"), ("plug_ra", "plug_dec"), ("target_ra", "target_dec"),
    ("ramean", "decmean"), ("alpha_j2000", "delta_j2000"), ("alpha", "delta"), ("ra_d", "dec_d"),
    ("raj2000_deg", "dej2000_deg"), ("right_ascension", "declination"),
]
NAME_COLUMNS = ("name", "object", "objname", "object_name", "main_id", "designation", "id",
                "source_id", "objid", "obj_id", "target", "targetid")
CLASS_COLUMNS = ("class", "otype", "type", "obj_type", "main_type", "spectype", "objtype")
REDSHIFT_COLUMNS = ("z", "redshift", "z_best", "zspec", "z_spec", "rvz_redshift")


@guarded("the table")
def read_table(path: str | Path, hdu: int | str | None = None, *, hdul=None):
    """Any table file astropy reads, chosen by content and suffix, as an astropy ``Table``.
    ``hdul``: the FITS file already open (``readers.sniffed``), so it is not opened again."""
    from astropy.table import Table

    if hdul is not None:
        return _fits_table(Path(path), hdu, hdul)
    path = check_nonempty(path)
    with open(path, "rb") as fh:
        head = fh.read(512)
    name = path.name.lower()
    if head.startswith((b"SIMPLE", b"\x1f\x8b")):
        return _fits_table(path, hdu)
    if head.startswith(b"PAR1") or name.endswith((".parquet", ".pq")):
        fmt = "parquet"
    elif b"<VOTABLE" in head.upper() or name.endswith((".vot", ".votable", ".xml")):
        fmt = "votable"
    elif name.endswith(".ecsv") or head.startswith(b"# %ECSV"):
        fmt = "ascii.ecsv"
    elif name.endswith(".tsv"):
        fmt = "ascii.tab"
    elif name.endswith(".csv"):
        fmt = "ascii.csv"
    else:
        fmt = None  # let astropy guess among its ASCII formats
    if fmt == "parquet":
        _check_parquet(path)
    elif path.stat().st_size > MAX_TEXT_TABLE_BYTES:
        raise UnreadableError(f"{fmt or 'text'} table of {path.stat().st_size / 2**20:.0f} MiB is too "
                              f"large to parse (limit {MAX_TEXT_TABLE_BYTES // 2**20} MiB); convert it "
                              "to Parquet or FITS", path=path)
    elif fmt == "votable":
        _check_votable(path)
    else:
        _check_text_lines(path, fmt)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = Table.read(path, format=fmt) if fmt else Table.read(path, format="ascii")
    except MemoryError:
        raise
    except Exception as exc:  # astropy's readers raise a zoo of types on malformed input
        kind = fmt or "table"
        raise UnreadableError(f"unreadable {kind} file ({type(exc).__name__}: "
                            f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''})",
                            path=path) from None
    if len(table) > MAX_ROWS:
        raise UnreadableError(f"table has {len(table)} rows (limit {MAX_ROWS})", path=path)
    return table


def _check_parquet(path: Path) -> None:
    """Rows and columns from the Parquet footer, before a page is decoded."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
        rows, cols = meta.num_rows, meta.num_columns
    except MemoryError:
        raise
    except Exception as exc:  # ArrowInvalid, OSError: no footer, a footer that lies
        raise UnreadableError(f"unreadable parquet file ({type(exc).__name__}: "
                              f"{str(exc).strip()[:160]})", path=path) from None
    if rows > MAX_ROWS:
        raise UnreadableError(f"parquet catalog has {rows} rows (limit {MAX_ROWS}); read the "
                              "part you need first", path=path)
    if cols > MAX_COLUMNS:
        raise UnreadableError(f"parquet table has {cols} columns (limit {MAX_COLUMNS})", path=path)


# A VOTable FIELD's arraysize is allocated for every row before a value is read.
MAX_CELL_VALUES = 1_000_000
_ARRAYSIZE = re.compile(rb'arraysize\s*=\s*["\']([^"\']*)["\']', re.IGNORECASE)
_NROWS = re.compile(rb'nrows\s*=\s*["\']\s*(\d+)', re.IGNORECASE)
# Lines of a CSV/ECSV/ASCII table longer than this are data dumps (or a hostile file): the
# format guesser tries a dozen parsers on each of them
MAX_LINE_CHARS = 100_000


def _check_votable(path: Path) -> None:
    """Array sizes and declared row counts from the XML, before astropy allocates them."""
    raw = path.read_bytes()
    for m in _ARRAYSIZE.finditer(raw):
        cells = 1
        for part in re.split(rb"x", m.group(1).strip().rstrip(b"*")):
            part = part.strip()
            if part.isdigit():
                cells *= int(part)
        if cells > MAX_CELL_VALUES:
            raise UnreadableError(f"VOTable FIELD declares arraysize=\"{m.group(1)[:40].decode('ascii', 'replace')}\" "
                                  f"({cells} values a cell; limit {MAX_CELL_VALUES})", path=path,
                                  field="arraysize")
    for m in _NROWS.finditer(raw):
        if int(m.group(1)) > MAX_ROWS:
            raise UnreadableError(f"VOTable TABLE declares nrows={int(m.group(1))} (limit {MAX_ROWS})",
                                  path=path, field="nrows")
    if b"<!ENTITY" in raw[:65536].upper():
        raise UnreadableError("VOTable declares XML entities (refused: entity expansion can be "
                              "a bomb)", path=path)


def _check_text_lines(path: Path, fmt) -> None:
    with open(path, "rb") as fh:
        while chunk := fh.readline(MAX_LINE_CHARS + 1):
            if len(chunk) > MAX_LINE_CHARS and not chunk.endswith(b"\n"):
                raise UnreadableError(f"{fmt or 'text'} table has a line longer than {MAX_LINE_CHARS} "
                                      "characters: not a table", path=path)


def _fits_table(path: Path, hdu, opened=None):
    from astropy.table import Table

    with open_fits(path, opened) as hdul:
        if hdu is not None:
            chosen = pick_hdu(hdul, hdu, path)
            if not is_table_hdu(chosen):
                raise BadArgumentError(f"HDU {hdu!r} is not a table", path=path)
        else:
            chosen = next((h for _, h in iter_hdus(hdul, path) if is_table_hdu(h)), None)
            if chosen is None:
                raise UnreadableError("has no table in it (no BINTABLE or TABLE HDU)", path=path)
        hdu_data(chosen, path)  # turns a truncated table into a clear error
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return Table.read(astropy_hdu(chosen), format="fits", character_as_bytes=False)
        except MemoryError:
            raise
        except Exception as exc:
            raise UnreadableError(f"table '{chosen.name}' cannot be read ({str(exc)[:200]})",
                                path=path) from None


@guarded("the catalog")
def read_catalog(path: str | Path, hdu: int | str | None = None, *, hdul=None, table=None):
    """A catalog as an astropy ``Table`` with at least one row. Where RA/Dec columns are
    found their names are in ``table.meta['ra_column']`` / ``['dec_column']``.

    ``hdul`` / ``table``: the FITS file already open, or the table already read
    (``readers.sniffed``), so the file is not opened and parsed again."""
    path = Path(path) if hdul is not None or table is not None else check_nonempty(path)
    if table is None:
        table = read_table(path, hdu, hdul=hdul)
    if len(table) == 0:
        raise UnreadableError("catalog has no rows", path=path)
    pair = find_radec_columns(table)
    if pair:
        table.meta["ra_column"], table.meta["dec_column"] = pair
    table.meta.setdefault("source_file", str(path))
    return table


def find_column(table, candidates) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    return next((lower[c] for c in candidates if c in lower), None)


def find_radec_columns(table) -> tuple[str, str] | None:
    """Names of the RA and Dec columns: by VOTable UCD, then by the usual names."""
    ucd = {}
    for name in table.colnames:
        u_ = str(table[name].meta.get("ucd", "") if hasattr(table[name], "meta") else "").lower()
        if u_.startswith("pos.eq.ra") and "ra" not in ucd:
            ucd["ra"] = name
        elif u_.startswith("pos.eq.dec") and "dec" not in ucd:
            ucd["dec"] = name
    if len(ucd) == 2:
        return ucd["ra"], ucd["dec"]
    lower = {c.lower(): c for c in table.colnames}
    for ra, dec in RADEC_PAIRS:
        if ra in lower and dec in lower:
            return lower[ra], lower[dec]
    return None


def catalog_coords(table, path=None):
    """A ``SkyCoord`` (ICRS) with one entry per row; rows without a position are NaN.

    Numeric columns without a unit are degrees; text columns are sexagesimal (RA in hours).
    """
    from astropy.coordinates import SkyCoord

    path = path or table.meta.get("source_file")
    pair = find_radec_columns(table)
    if pair is None:
        raise UnreadableError("catalog has no RA/Dec columns (looked for ra/dec, RAJ2000/DEJ2000, "
                            "ra_deg/dec_deg, RA_ICRS/DE_ICRS, ... and pos.eq UCDs; found "
                            f"{', '.join(table.colnames[:15])})", path=path)
    ra_name, dec_name = pair
    ra_col, dec_col = table[ra_name], table[dec_name]
    if ra_col.dtype.kind in "US" or dec_col.dtype.kind in "USO":
        ra_s = [str(v).strip() for v in np.asarray(ra_col)]
        dec_s = [str(v).strip() for v in np.asarray(dec_col)]
        try:
            return SkyCoord(ra_s, dec_s, unit=(u.hourangle, u.deg), frame="icrs")
        except (ValueError, TypeError) as exc:
            raise UnreadableError(f"RA/Dec text cannot be parsed as sexagesimal ({str(exc)[:120]})",
                                path=path, field=ra_name) from None
    ra = _angle_values(ra_col, ra_name, path)
    dec = _angle_values(dec_col, dec_name, path)
    finite = np.isfinite(ra) & np.isfinite(dec)
    if not finite.any():
        raise UnreadableError("catalog has no row with a finite RA and Dec", path=path, field=ra_name)
    if np.any(np.abs(dec[finite]) > 90):
        raise UnreadableError(f"Dec values outside -90..90 degrees (max |Dec| = "
                            f"{np.abs(dec[finite]).max():.4g}); wrong column or unit?",
                            path=path, field=dec_name)
    if np.any(ra[finite] < -360) or np.any(ra[finite] > 360):
        raise UnreadableError("RA values outside 0..360 degrees; wrong column or unit?",
                            path=path, field=ra_name)
    return SkyCoord(np.mod(ra, 360.0) * u.deg, dec * u.deg, frame="icrs")


def _angle_values(col, name, path) -> np.ndarray:
    """Degrees as floats (masked -> NaN); a column without a unit is taken as degrees."""
    if col.dtype.kind not in "fiu":
        raise UnreadableError(f"column is not numeric ({col.dtype})", path=path, field=name)
    values = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
    unit = getattr(col, "unit", None)
    if unit is None:
        return values
    try:
        return (values * unit).to_value(u.deg)
    except (u.UnitConversionError, TypeError, ValueError):
        raise UnreadableError(f"unit '{unit}' is not an angle", path=path, field=name) from None
