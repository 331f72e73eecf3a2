"""A FITS file's structure checked from its raw header cards, before astropy sees it.

astropy trusts a header: NAXIS = 99999999 sends it looping over axes, an absurd NAXISn makes
it allocate what the header says, a missing BITPIX raises KeyError from deep inside. So
``check_fits_structure`` walks the headers itself (80-character cards, no data read) and
checks, HDU by HDU: the mandatory cards are there and are integers in range; the data that
NAXISn x BITPIX (x GCOUNT, + PCOUNT) declares fits the budget of ``limits`` and the file;
a table's TFIELDS and TFORMn are valid and add up to NAXIS1; a tile-compressed image's
ZNAXISn, ZBITPIX and ZCMPTYPE are sane. A gzipped file is decompressed as a stream, and
refused once its uncompressed size passes ``MAX_BYTES``.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from astrovlm.data.readers.limits import (
    MAX_BYTES, MAX_COLUMNS, MAX_HEADER_BLOCKS, MAX_PIXELS, MAX_ROWS, MAX_SIDE)
from astrovlm.errors import UnreadableError

BLOCK, CARD = 2880, 80
BITPIX_VALUES = (8, 16, 32, 64, -32, -64)
# bytes per element of a binary table's TFORM codes; X counts bits
_TFORM_BYTES = {"L": 1, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8, "M": 16,
                "P": 8, "Q": 16}
_TFORM = re.compile(r"^\s*(\d*)\s*([LXBIJKAEDCMPQ])\s*(.*)$")
_COMPRESSIONS = ("RICE_1", "RICE_ONE", "GZIP_1", "GZIP_2", "PLIO_1", "HCOMPRESS_1", "NOCOMPRESS")
_STRUCTURAL = re.compile(r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|GROUPS|TFIELDS|THEAP|"
                         r"TFORM\d+|ZIMAGE|ZBITPIX|ZNAXIS\d*|ZTILE\d+|ZCMPTYPE|ZNAME\d+|ZVAL\d+|END)$")
# The tile compressors' parameters (ZNAMEn / ZVALn) and the values cfitsio can work with:
# BYTEPIX = 99999999 makes its Rice decoder write past its buffer.
_ZPARAMS = {"BLOCKSIZE": (16, 32), "BYTEPIX": (1, 2, 4, 8), "SMOOTH": (0, 1)}


@dataclass(frozen=True)
class HDUSpan:
    """Where one HDU of a plain file lies, and its header as the file holds it."""

    index: int
    header_at: int       # byte offset of its header
    data_at: int         # byte offset of its data
    data_bytes: int      # the data it declares (unpadded)
    raw: bytes           # its header blocks
    cards: dict          # its structural cards, {keyword: raw value}


def check_fits_structure(path: Path, gzipped: bool) -> list[HDUSpan] | None:
    """Raise ``UnreadableError`` naming the HDU and the card when the file's headers are
    broken, absurd or over budget, or declare more data than the file holds. Returns the
    HDUs' spans for a plain file (``light_fits`` opens it from them), None for gzip."""
    spans: list[HDUSpan] = []
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as fh:
            _walk(fh, path, None if gzipped else path.stat().st_size, spans)
            if gzipped:  # astropy decompresses to the end of the stream: bound what it will find
                total = fh.tell()
                while chunk := fh.read(1 << 20):
                    total += len(chunk)
                    if total > MAX_BYTES:
                        raise UnreadableError(f"gzip file decompresses to more than {_mb(MAX_BYTES)} "
                                              "(a decompression bomb?)", path=path)
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableError(f"corrupt {'gzip' if gzipped else 'FITS'} file ({str(exc)[:160]})",
                              path=path) from None
    return None if gzipped else spans


def _walk(fh, path: Path, file_size: int | None, spans: list) -> None:
    offset, index = 0, 0
    while True:
        cards, nblocks, raw = _read_header(fh, path, index)
        if cards is None:
            return  # end of file, or trailing bytes that are no header: astropy ignores them
        header_at = offset
        offset += nblocks * BLOCK
        size = _check_hdu(cards, path, index)
        spans.append(HDUSpan(index, header_at, offset, size, raw, cards))
        padded = -(-size // BLOCK) * BLOCK
        if offset + size > MAX_BYTES:
            raise UnreadableError(f"HDU {index} takes the file's data past {_mb(MAX_BYTES)} (it declares "
                                  f"{_mb(size)}): too large to read", path=path)
        if file_size is not None and offset + size > file_size:
            raise UnreadableError(
                f"truncated FITS file: HDU {index} declares {size} bytes of data but the file "
                f"ends {max(file_size - offset, 0)} bytes into it", path=path)
        if cards.get("ZIMAGE", "").upper() == "T":
            # the tiles go to cfitsio's C decoders: every descriptor must point into the heap
            data = fh.read(size)
            _check_descriptors(cards, data, path, index)
            fh.seek(padded - len(data), 1) if file_size is not None else _skip(fh, padded - len(data), 0, path, index)
        elif file_size is not None:
            fh.seek(padded, 1)
        else:
            _skip(fh, padded, size, path, index)
        offset += padded
        index += 1


def _read_header(fh, path: Path, index: int):
    """The structural cards of the next header as {keyword: raw value}, its block count and
    its bytes; (None, 0, b"") at the end of the file or where what follows is not a header."""
    cards: dict[str, str] = {}
    blocks: list[bytes] = []
    for n in range(1, MAX_HEADER_BLOCKS + 1):
        block = fh.read(BLOCK)
        blocks.append(block)
        if n == 1:
            if index > 0 and not block.startswith(b"XTENSION"):
                return None, 0, b""
            if index == 0 and not block.startswith(b"SIMPLE"):
                raise UnreadableError("not a readable FITS file (it does not begin with SIMPLE)",
                                      path=path)
            if index == 0 and not re.match(rb"SIMPLE  = +T( |/)", block[:80]):
                # astropy loops forever on a gzipped file whose SIMPLE card it cannot parse
                raise UnreadableError("not a readable FITS file (its first card is not "
                                      "'SIMPLE = T')", path=path, field="SIMPLE")
        if len(block) < BLOCK:
            if index == 0 or n > 1:
                raise UnreadableError(f"not a readable FITS file (truncated: the header of HDU "
                                      f"{index} ends before its END card)", path=path)
            return None, 0, b""
        for i in range(0, BLOCK, CARD):
            card = block[i:i + CARD].decode("ascii", "replace")
            key = card[:8].strip().upper()
            if key == "END":
                return cards, n, b"".join(blocks)
            if _STRUCTURAL.match(key) and card[8:10] == "= ":
                if "\ufffd" in card[:30]:
                    raise UnreadableError(f"HDU {index}: the structural card {key} holds bytes "
                                          "that are not ASCII", path=path, field=key)
                if key in cards or (key in ("SIMPLE", "XTENSION") and (n, i) != (1, 0)):
                    # astropy loops forever on a gzipped header with a second SIMPLE card
                    raise UnreadableError(f"HDU {index}: the structural card {key} appears twice "
                                          "or out of place", path=path, field=key)
                cards[key] = _value(card[10:])
    raise UnreadableError(f"not a readable FITS file (HDU {index} has no END card in its first "
                          f"{MAX_HEADER_BLOCKS} header blocks)", path=path)


def header_cards(raw: bytes, keys: re.Pattern) -> dict[str, str]:
    """{keyword: raw value} of the cards of one header's bytes whose keyword ``keys``
    matches (the first of each): no astropy ``Card`` parsed, for headers of hundreds of
    cards of which a few are wanted."""
    cards: dict[str, str] = {}
    for i in range(0, len(raw) - CARD + 1, CARD):
        key = raw[i:i + 8].decode("ascii", "replace").strip().upper()
        if key == "END":
            break
        if key not in cards and raw[i + 8:i + 10] == b"= " and keys.match(key):
            cards[key] = _value(raw[i + 10:i + CARD].decode("ascii", "replace"))
    return cards


def _value(text: str) -> str:
    text = text.strip()
    if text.startswith("'"):
        end = text.find("'", 1)
        return text[1:end].strip() if end > 0 else text[1:].strip()
    return text.split("/", 1)[0].strip()


def _int(cards: dict, key: str, path: Path, index: int, lo: int = 0, hi: int | None = None,
         default: int | None = None) -> int:
    raw = cards.get(key)
    if raw is None:
        if default is not None:
            return default
        raise UnreadableError(f"HDU {index} lacks the mandatory {key} card", path=path, field=key)
    try:
        value = int(raw)
    except ValueError:
        raise UnreadableError(f"HDU {index}: {key} = {raw[:30]!r} is not an integer", path=path,
                              field=key) from None
    if value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise UnreadableError(f"HDU {index}: {key} = {value} is out of range ({bound})", path=path,
                              field=key)
    return value


def _check_hdu(cards: dict, path: Path, index: int) -> int:
    """Check one header; the number of data bytes it declares."""
    bitpix = _int(cards, "BITPIX", path, index, lo=-64, hi=64)
    if bitpix not in BITPIX_VALUES:
        raise UnreadableError(f"HDU {index}: BITPIX = {bitpix} is not one of "
                              f"{', '.join(map(str, BITPIX_VALUES))}", path=path, field="BITPIX")
    naxis = _int(cards, "NAXIS", path, index, hi=999)
    dims = [_int(cards, f"NAXIS{i}", path, index, hi=2**62) for i in range(1, naxis + 1)]
    pcount = _int(cards, "PCOUNT", path, index, hi=2**62, default=0)
    gcount = _int(cards, "GCOUNT", path, index, lo=0, hi=2**62, default=1)
    xtension = cards.get("XTENSION", "").upper()
    groups = index == 0 and cards.get("GROUPS", "").upper() == "T" and dims and dims[0] == 0
    count = 1
    for d in (dims[1:] if groups else dims):
        count *= d
        if count > MAX_BYTES:
            break
    if naxis == 0:
        count = 0
    size = abs(bitpix) // 8 * gcount * (pcount + count)
    if xtension in ("", "IMAGE"):
        shape = [d for d in dims if d != 1]
        if len(shape) >= 2:  # an image over budget is told in pixels, as the readers say it
            _check_image(shape, path, index)
    if size > MAX_BYTES:
        raise UnreadableError(f"HDU {index} declares {_mb(size)} of data (NAXISn = "
                              f"{' x '.join(map(str, dims))}, BITPIX = {bitpix}); the limit is "
                              f"{_mb(MAX_BYTES)}", path=path)
    if xtension == "BINTABLE":
        _check_bintable(cards, dims, path, index)
    elif xtension == "TABLE":
        _int(cards, "TFIELDS", path, index, hi=MAX_COLUMNS)
        if len(dims) == 2 and dims[1] > MAX_ROWS:
            raise UnreadableError(f"HDU {index} has {dims[1]} rows (limit {MAX_ROWS})", path=path,
                                  field="NAXIS2")
    return size


def _check_image(shape_fits_order, path: Path, index: int) -> None:
    from astrovlm.data.readers.fits_image import check_image_size

    check_image_size(tuple(reversed(shape_fits_order)), path)


def _check_bintable(cards: dict, dims: list[int], path: Path, index: int) -> None:
    if len(dims) != 2:
        raise UnreadableError(f"HDU {index}: a binary table needs NAXIS = 2 (it has {len(dims)})",
                              path=path, field="NAXIS")
    width, rows = dims
    if rows > MAX_ROWS:
        raise UnreadableError(f"HDU {index} has {rows} rows (limit {MAX_ROWS})", path=path,
                              field="NAXIS2")
    tfields = _int(cards, "TFIELDS", path, index, hi=MAX_COLUMNS)
    total = 0
    for i in range(1, tfields + 1):
        key = f"TFORM{i}"
        raw = cards.get(key)
        if raw is None:
            raise UnreadableError(f"HDU {index} lacks {key} (TFIELDS = {tfields})", path=path, field=key)
        m = _TFORM.match(raw.upper())
        if not m:
            raise UnreadableError(f"HDU {index}: {key} = {raw[:30]!r} is not a binary table format",
                                  path=path, field=key)
        repeat = int(m.group(1)) if m.group(1) else 1
        code = m.group(2)
        if code in "PQ":
            if repeat > 1 or not re.fullmatch(r"[LXBIJKAEDCM](\(\d+\))?", m.group(3).strip()):
                raise UnreadableError(f"HDU {index}: {key} = {raw[:30]!r} is not a valid "
                                      "variable-length array format", path=path, field=key)
        elif m.group(3).strip() and not (code == "A" and m.group(3).strip().isdigit()):
            raise UnreadableError(f"HDU {index}: {key} = {raw[:30]!r} is not a binary table format",
                                  path=path, field=key)
        total += tform_bytes(raw)[0]
        if total > width:
            break
    if total != width:
        raise UnreadableError(f"HDU {index}: the columns' TFORMn add up to {total} bytes a row but "
                              f"NAXIS1 = {width}", path=path, field="NAXIS1")
    if cards.get("ZIMAGE", "").upper() == "T":
        _check_tile_compressed(cards, path, index)


def tform_bytes(tform: str) -> tuple[int, int, str]:
    """(bytes a row, repeat count, type code) of one binary-table TFORMn ('16A', '3E', 'PJ(12)');
    ValueError when it is not one."""
    m = _TFORM.match(tform.upper())
    if not m:
        raise ValueError(f"{tform[:30]!r} is not a binary table format")
    repeat = int(m.group(1)) if m.group(1) else 1
    code = m.group(2)
    return (-(-repeat // 8) if code == "X" else repeat * _TFORM_BYTES[code]), repeat, code


def _check_tile_compressed(cards: dict, path: Path, index: int) -> None:
    zbitpix = _int(cards, "ZBITPIX", path, index, lo=-64, hi=64)
    if zbitpix not in BITPIX_VALUES:
        raise UnreadableError(f"HDU {index}: ZBITPIX = {zbitpix} is not a valid BITPIX", path=path,
                              field="ZBITPIX")
    znaxis = _int(cards, "ZNAXIS", path, index, lo=1, hi=999)
    zdims = [_int(cards, f"ZNAXIS{i}", path, index, lo=1, hi=2**62) for i in range(1, znaxis + 1)]
    tiles = [_int(cards, f"ZTILE{i}", path, index, lo=1, hi=2**62, default=1)
             for i in range(1, znaxis + 1)]
    pixels, tile_pixels = 1, 1
    for d, t in zip(zdims, tiles):
        pixels, tile_pixels = min(pixels * d, 2**63), min(tile_pixels * t, 2**63)
    if pixels > MAX_PIXELS or pixels * abs(zbitpix) // 8 > MAX_BYTES:
        raise UnreadableError(f"compressed HDU {index} decompresses to {' x '.join(map(str, zdims))} "
                              f"pixels: too large (limit {MAX_PIXELS // 1_000_000} megapixels)",
                              path=path, field="ZNAXIS")
    if tile_pixels > MAX_PIXELS:
        raise UnreadableError(f"compressed HDU {index}: tiles of {' x '.join(map(str, tiles))} pixels "
                              "are too large", path=path, field="ZTILE1")
    zsides = [d for d in zdims if d != 1]
    if len(zsides) >= 2 and max(zsides) > MAX_SIDE:
        _check_image(zsides, path, index)
    cmp = cards.get("ZCMPTYPE", "").upper()
    if cmp not in _COMPRESSIONS:
        raise UnreadableError(f"compressed HDU {index}: ZCMPTYPE = {cmp[:20]!r} is not a known "
                              "tile compression", path=path, field="ZCMPTYPE")
    for key, name in cards.items():
        if not re.fullmatch(r"ZNAME\d+", key):
            continue
        allowed = _ZPARAMS.get(name.upper())
        raw = cards.get("ZVAL" + key[5:])
        if allowed is None:
            try:
                float(raw)
            except (TypeError, ValueError):
                raise UnreadableError(f"compressed HDU {index}: {name} = {str(raw)[:20]!r} is not a number",
                                      path=path, field="ZVAL" + key[5:]) from None
            continue
        try:
            value = int(raw)
        except (TypeError, ValueError):
            value = None
        if value not in allowed:
            raise UnreadableError(f"compressed HDU {index}: {name} = {str(raw)[:20]} (it must be one of "
                                  f"{', '.join(map(str, allowed))})", path=path, field="ZVAL" + key[5:])


def _check_descriptors(cards: dict, data: bytes, path: Path, index: int) -> None:
    """Each variable-length cell (count, offset) of a compressed image's table lies in the heap."""
    import numpy as np

    width = int(cards["NAXIS1"])
    rows = int(cards["NAXIS2"])
    heap_start = _int(cards, "THEAP", path, index, hi=2**62, default=width * rows)
    heap_end = width * rows + int(cards.get("PCOUNT", 0) or 0)
    if len(data) < width * rows:
        return  # truncated: refused by the caller from the file size
    table = np.frombuffer(data, dtype=np.uint8, count=width * rows).reshape(rows, width)
    at = 0
    for i in range(1, int(cards["TFIELDS"]) + 1):
        m = _TFORM.match(cards[f"TFORM{i}"].upper())
        repeat = int(m.group(1)) if m.group(1) else 1
        code = m.group(2)
        nbytes = -(-repeat // 8) if code == "X" else repeat * _TFORM_BYTES[code]
        if code in "PQ" and repeat == 1:
            kind = ">i4" if code == "P" else ">i8"
            pairs = np.ascontiguousarray(table[:, at:at + nbytes]).view(kind).reshape(rows, 2).astype(np.int64)
            element = _TFORM_BYTES.get(m.group(3).strip()[:1], 1)
            ends = heap_start + pairs[:, 1] + pairs[:, 0] * element
            if (pairs < 0).any() or (ends > heap_end).any():
                raise UnreadableError(f"compressed HDU {index}: a tile of column {i} points outside the "
                                      "heap (corrupt tile table)", path=path, field=f"TFORM{i}")
        at += nbytes


def _skip(fh, padded: int, size: int, path: Path, index: int) -> None:
    """Read past a gzipped HDU's data (the only way through a gzip stream), counting it."""
    left = padded
    while left > 0:
        chunk = fh.read(min(left, 1 << 20))
        if not chunk:
            if padded - left < size:
                raise UnreadableError(f"truncated FITS file: HDU {index} declares {size} bytes of "
                                      f"data but the file ends {padded - left} bytes into it", path=path)
            return
        left -= len(chunk)


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n < 2**40 else f"{n:.3g} bytes"
