"""What a file holds, decided from its content (magic bytes, FITS headers, table columns),
with the suffix only as a tie-breaker: users' files are often misnamed.

``sniffed(path)`` keeps what the decision read (the open FITS ``HDUList``, the parsed table)
so the reader that follows does not open and parse the file a second time; ``sniff(path)``
only says the kind.
"""

from __future__ import annotations

import gzip
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from astrovlm.data.readers._common import (
    MIN_VALID_PIXELS, check_nonempty, guarded, hdu_shape, is_image_hdu, is_table_hdu, iter_hdus,
    open_fits, table_columns)
from astrovlm.data.readers.catalog import RADEC_PAIRS, TABLE_SUFFIXES, find_radec_columns, read_table
from astrovlm.data.readers.fits_image import PIL_MAGIC, image_hdu_kind
from astrovlm.data.readers.plain import TEXT_SUFFIXES
from astrovlm.data.readers.spectrum_table import spectral_columns
from astrovlm.errors import UnreadableError

KINDS = ("image", "spectrum", "catalog", "text")


@dataclass
class Sniffed:
    """What a file holds, and what deciding that already read."""

    kind: str                # one of KINDS
    path: Path
    hdul: object = None      # a FITS file's HDUList, open inside the ``sniffed`` block
    table: object = None     # the Table a table file was classified from


@guarded("the file")
def sniff(path: str | Path) -> str:
    """``"image"``, ``"spectrum"``, ``"catalog"`` or ``"text"``; an ``AstroVLMError`` if the
    file is none of them (or empty, or unreadable)."""
    with sniffed(path) as found:
        return found.kind


@contextmanager
def sniffed(path: str | Path) -> Iterator[Sniffed]:
    """Sniff a file and keep what was read: a FITS file stays open (``.hdul``) until the block
    ends, for ``read_image(path, hdul=...)`` / ``read_spectrum`` / ``read_catalog``."""
    path = check_nonempty(path)
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(80)
        except (OSError, EOFError, zlib.error):
            raise UnreadableError("corrupt gzip file", path=path) from None
        if not inner.startswith(b"SIMPLE"):
            raise UnreadableError("unknown file type (a gzip file that is not a gzipped FITS "
                                  "file)", path=path)
    if head.startswith((b"SIMPLE", b"\x1f\x8b")):
        with open_fits(path) as hdul:
            kind = _guard(path, _sniff_fits, hdul, path)
            yield Sniffed(kind, path, hdul=hdul)  # the caller's block: its errors are its own
        return
    yield _guard(path, _sniff_other, path, head)


@guarded("the file")
def _guard(path, func, *args):
    """``func(*args)`` with ``guarded``'s last line, naming ``path``."""
    return func(*args)


def _sniff_other(path: Path, head: bytes) -> Sniffed:
    if head.startswith(PIL_MAGIC):
        return Sniffed("image", path)
    name = path.name.lower()
    if head.startswith(b"PAR1") or b"<VOTABLE" in head[:4096].upper():
        table = read_table(path)
        return Sniffed(_classify_table(table, path), path, table=table)
    if b"\x00" in head[:8192]:
        raise UnreadableError("unknown file type (binary, and not FITS, PNG, JPEG, Parquet or "
                              "VOTable)", path=path)
    if name.endswith(TABLE_SUFFIXES):
        table = read_table(path)
        return Sniffed(_classify_table(table, path), path, table=table)
    text = head.decode("utf-8", errors="replace")
    if _looks_like_numeric_columns(text):
        return Sniffed("spectrum", path)
    if name.endswith(TEXT_SUFFIXES) or _looks_like_prose(text):
        return Sniffed("text", path)
    raise UnreadableError("unknown file type (not FITS, an image, a table, a spectrum or text)",
                          path=path)


def _sniff_fits(hdul, path: Path) -> str:
    found = []
    hdus = list(iter_hdus(hdul, path))
    # DESI keeps wavelengths in image HDUs B_WAVELENGTH etc., after a FIBERMAP table that
    # would otherwise pass for a catalog
    names = {str(h.name).upper() for _, h in hdus}
    if any(f"{c}_WAVELENGTH" in names and f"{c}_FLUX" in names for c in "BRZ"):
        return "spectrum"
    for _, hdu in hdus:
        if is_image_hdu(hdu):
            kind = image_hdu_kind(hdu)
            if kind == "spectrum":
                return "spectrum"
            if kind in ("image", "cube"):
                return "image"
            shape = hdu_shape(hdu)
            if shape:
                found.append(f"a {shape} array")
        elif is_table_hdu(hdu):
            names = table_columns(hdu, path)
            if spectral_columns(names):
                return "spectrum"
            lower = {n.lower() for n in names}
            if any(ra in lower and dec in lower for ra, dec in RADEC_PAIRS):
                return "catalog"
            found.append(f"a table '{hdu.name}' ({len(names)} columns, no RA/Dec or "
                         "wavelength/flux)")
    raise UnreadableError("FITS file has no image, spectrum or catalog in it"
                          + (f" (found {', '.join(found)})" if found else " (only empty HDUs)"),
                          path=path)


def _classify_table(table, path) -> str:
    if spectral_columns(table.colnames):
        return "spectrum"
    if find_radec_columns(table):
        if len(table) == 0:
            raise UnreadableError("catalog has no rows", path=path)
        return "catalog"
    raise UnreadableError("table has neither RA/Dec columns (a catalog) nor wavelength and flux "
                        f"columns (a spectrum); columns: {', '.join(table.colnames[:12])}",
                        path=path)


def _looks_like_numeric_columns(text: str) -> bool:
    """Mostly rows of 2-4 numbers: a text spectrum (wavelength, flux[, error[, ivar]])."""
    rows = [ln for ln in text.splitlines()[:-1] or text.splitlines()
            if ln.strip() and not ln.lstrip().startswith(("#", "%", "!", ";"))]
    if len(rows) < MIN_VALID_PIXELS:
        return False
    numeric = 0
    for ln in rows[:2000]:
        parts = ln.replace(",", " ").split()
        try:
            [float(p) for p in parts]
        except ValueError:
            continue
        numeric += 2 <= len(parts) <= 4
    return numeric >= 0.9 * min(len(rows), 2000)


def _looks_like_prose(text: str) -> bool:
    letters = sum(ch.isalpha() for ch in text)
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in text)
    return len(text) > 0 and printable / len(text) > 0.97 and letters / len(text) > 0.4
