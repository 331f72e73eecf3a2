"""A seeded generator of malformed files of every kind the readers accept, and the one
check the readers must pass on each: it reads, or it raises an ``AstroVLMError``.

``make_case(seed, i, folder)`` writes case ``i`` of run ``seed`` (the same file every time)
by mutating one small valid seed file (``fits_fixtures`` makes them): truncations, flipped
bytes, corrupted or deleted header cards, absurd NAXISn / BITPIX / TFIELDS / TFORM, broken
tile compression, gzip bombs, PNG/JPEG with huge declared sizes or bombs, catalogs with
renamed or missing columns, NaN everywhere or tens of millions of rows, text spectra, symlinks
and empty files. ``run_case`` sends it through the readers and the preprocessing and says,
per call, "ok", the error kind, or the raw exception that escaped.

Used by ``tests/test_fuzz.py`` (a fast slice) and ``benchmarks/fuzz_readers.py`` (the full run).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np

CARD = 80
BLOCK = 2880

# The big inputs (bombs, 60 million rows) are the same whatever the case: built once, in
# the folder, by ``prepare`` (before any memory limit is set), and read back from there.
_BIG_MAKERS = {}
_BIG_DIR: list[Path] = []


def prepare(folder: Path) -> None:
    """Build the shared big inputs in ``folder`` (a few MB on disk; up to ~1 GB while built);
    later cases, in this process or its forks, read them from there."""
    _BIG_DIR[:] = [Path(folder)]
    for name, make in _BIG_MAKERS.items():
        path = Path(folder) / f".big-{name}"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(make())
            tmp.replace(path)


def big(name: str, folder: Path) -> bytes:
    path = (_BIG_DIR[0] if _BIG_DIR else Path(folder)) / f".big-{name}"
    if not path.exists():  # only this one, now
        path.write_bytes(_BIG_MAKERS[name]())
    return path.read_bytes()


# --- seeds: small valid files ------------------------------------------------------------

def _seed_bytes(kind: str, folder: Path) -> tuple[bytes, str]:
    """(content, file name) of one valid seed file of ``kind``."""
    import fits_fixtures as ff
    from astropy.io import fits
    from astropy.table import Table

    p = folder / f".seed-{kind}"
    if kind == "fits_image":
        ff.make_image(p, shape=(40, 48)); name = "image.fits"
    elif kind == "fits_image_ext":
        ff.make_image(p, shape=(32, 40), extension=True); name = "ext.fits"
    elif kind == "fits_cube":
        ff.make_cube(p, shape=(24, 30)); name = "cube.fits"
    elif kind == "fits_sdss":
        ff.make_sdss_table(p); name = "spec-0001.fits"
    elif kind == "fits_wcs1d":
        ff.make_wcs_1d(p, n=600); name = "star.fits"
    elif kind == "fits_wcs1d_log":
        ff.make_wcs_1d(p, log=True, n=600); name = "star_log.fits"
    elif kind == "fits_template":
        ff.make_sdss_template(p, n=600); name = "template.fits"
    elif kind == "fits_desi":
        _make_desi(p); name = "coadd.fits"
    elif kind == "fits_catalog":
        fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(ff.catalog_table(8))]).writeto(p)
        name = "cat.fits"
    elif kind == "fits_tile":
        data = ff.galaxy_pixels((40, 48))
        hdu = fits.CompImageHDU(data, header=ff.celestial_header((40, 48)), compression_type="RICE_1")
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(p); name = "tile.fits.fz"
    elif kind == "fits_gz":
        raw = folder / ".seed-gz-raw"
        ff.make_image(raw, shape=(40, 48))
        p.write_bytes(gzip.compress(raw.read_bytes(), 6)); raw.unlink(); name = "image.fits.gz"
    elif kind == "csv_catalog":
        ff.catalog_table(8).write(p, format="ascii.csv"); name = "cat.csv"
    elif kind == "ecsv_catalog":
        ff.catalog_table(8).write(p, format="ascii.ecsv"); name = "cat.ecsv"
    elif kind == "parquet_catalog":
        ff.catalog_table(8).write(p, format="parquet"); name = "cat.parquet"
    elif kind == "votable_catalog":
        ff.catalog_table(8).write(p, format="votable"); name = "cat.vot"
    elif kind == "csv_spectrum":
        w = np.linspace(4000, 7000, 300)
        Table({"wavelength": w, "flux": ff.continuum_spectrum(w), "error": np.full(300, 0.5)}
              ).write(p, format="ascii.csv"); name = "spec.csv"
    elif kind == "text_spectrum":
        w = np.linspace(4000, 7000, 300)
        lines = ["# wavelength [Angstrom]  flux  error"]
        lines += [f"{a:.3f} {b:.5g} 0.5" for a, b in zip(w, ff.continuum_spectrum(w))]
        p.write_text("\n".join(lines) + "\n"); name = "spec.txt"
    elif kind == "png":
        ff.make_png(p, size=(40, 48)); name = "image.png"
    elif kind == "png_gray":
        ff.make_png(p, size=(40, 48), mode="L"); name = "gray.png"
    elif kind == "jpeg":
        from PIL import Image

        arr = np.random.default_rng(2).integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(p, format="JPEG"); name = "image.jpg"
    elif kind == "markdown":
        p.write_text("# Notes on M51\n\nThe Whirlpool galaxy is an interacting spiral in Canes "
                     "Venatici, observed on three nights with the r filter.\n" * 3)
        name = "notes.md"
    else:
        raise ValueError(kind)
    data = p.read_bytes()
    p.unlink()
    return data, name


def _make_desi(path):
    from astropy.io import fits

    import fits_fixtures as ff

    hdus = [fits.PrimaryHDU()]
    fibermap = fits.BinTableHDU.from_columns([
        fits.Column(name="TARGETID", format="K", array=[1, 2]),
        fits.Column(name="TARGET_RA", format="D", array=[ff.RA0, ff.RA0 + 1]),
        fits.Column(name="TARGET_DEC", format="D", array=[ff.DEC0, ff.DEC0]),
    ], name="FIBERMAP")
    hdus.append(fibermap)
    for cam, (lo, hi) in zip("BRZ", ((3600, 5900), (5700, 7700), (7500, 9800))):
        wave = np.linspace(lo, hi, 200)
        flux = np.stack([ff.continuum_spectrum(wave)] * 2).astype(np.float32)
        hdus.append(fits.ImageHDU(wave, name=f"{cam}_WAVELENGTH"))
        hdus.append(fits.ImageHDU(flux, name=f"{cam}_FLUX"))
        hdus.append(fits.ImageHDU(np.ones_like(flux), name=f"{cam}_IVAR"))
        hdus.append(fits.ImageHDU(np.zeros(flux.shape, np.int32), name=f"{cam}_MASK"))
    fits.HDUList(hdus).writeto(path)


SEED_KINDS = ("fits_image", "fits_image_ext", "fits_cube", "fits_sdss", "fits_wcs1d",
              "fits_wcs1d_log", "fits_template", "fits_desi", "fits_catalog", "fits_tile",
              "fits_gz", "csv_catalog", "ecsv_catalog", "parquet_catalog", "votable_catalog",
              "csv_spectrum", "text_spectrum", "png", "png_gray", "jpeg", "markdown")
_SEEDS: dict = {}


def seed(kind: str, folder: Path) -> tuple[bytes, str]:
    if kind not in _SEEDS:
        _SEEDS[kind] = _seed_bytes(kind, folder)
    return _SEEDS[kind]


# --- FITS header surgery -----------------------------------------------------------------

def _cards(data: bytes, start: int = 0):
    """(offset, keyword) of each card of the header that begins at ``start``, up to END."""
    out = []
    for off in range(start, min(len(data), start + 200 * BLOCK), CARD):
        key = data[off:off + 8].decode("ascii", "replace").strip()
        out.append((off, key))
        if key == "END":
            break
    return out


def _header_starts(data: bytes) -> list[int]:
    """Where each header begins (found by its first card), for the headers of a small file."""
    starts = [0]
    for off in range(BLOCK, len(data) - CARD, BLOCK):
        if data[off:off + 8] in (b"XTENSION", ):
            starts.append(off)
    return starts


def _set_card(data: bytes, key: str, value: str, rng, create=False) -> bytes:
    """Set ``key``'s value in a random header that has it (or the first, with create)."""
    found = [(off, k) for s in _header_starts(data) for off, k in _cards(data, s) if k == key]
    text = f"{key:<8}= {value:>20}".ljust(CARD)[:CARD].encode("ascii", "replace")
    if not found:
        if not create:
            return data
        cards = _cards(data, 0)
        end = next((off for off, k in cards if k == "END"), None)
        if end is None:
            return data
        return data[:end] + text + data[end:end + CARD] + data[end + 2 * CARD:]
    off = found[int(rng.integers(len(found)))][0]
    return data[:off] + text + data[off + CARD:]


def _fits_mutation(data: bytes, rng) -> tuple[bytes, str]:
    starts = _header_starts(data)
    keys = [k for s in starts for _, k in _cards(data, s)]
    choice = rng.choice(["naxis", "naxisn", "bitpix", "tfields", "tform", "card_garbage",
                         "card_delete", "card_string", "pcount", "zimage", "truncate",
                         "flip_data", "flip_header", "end_missing", "gcount", "tdim"])
    absurd = [str(v) for v in (0, -1, -7, 1, 2, 3, 999, 1000, 65536, 10**6, 14000, 99999999,
                               2**31 - 1, 2**31, 2**63 - 1, 2**64, 10**30)]
    if choice == "naxis":
        return _set_card(data, "NAXIS", str(rng.choice(absurd)), rng), "naxis"
    if choice == "naxisn":
        key = rng.choice([k for k in keys if k.startswith("NAXIS") and k != "NAXIS"] or ["NAXIS1"])
        return _set_card(data, key, str(rng.choice(absurd + ["3.5", "'abc'", "T"])), rng), "naxisn"
    if choice == "bitpix":
        return _set_card(data, "BITPIX", str(rng.choice(["0", "7", "12", "-16", "128", "-128", "99",
                                                         "'16'", "1e9", "-64", "64"])), rng), "bitpix"
    if choice == "tfields":
        return _set_card(data, "TFIELDS", str(rng.choice(absurd)), rng), "tfields"
    if choice == "tform":
        tforms = [k for k in keys if k.startswith("TFORM")] or ["TFORM1"]
        value = rng.choice(["'500000E'", "'999999999D'", "'1Q'", "'E'", "'-3E'", "'ZZ'", "''",
                            "'1PE(99999999)'", "'2147483648J'", "'80000A'", "'1PD(10)'", "3"])
        return _set_card(data, rng.choice(tforms), value, rng), "tform"
    if choice == "tdim":
        return _set_card(data, "TDIM1", rng.choice(["'(99999,99999)'", "'(0)'", "'(x'", "'(2,3,4)'"]),
                         rng, create=True), "tdim"
    if choice == "pcount":
        return _set_card(data, "PCOUNT", str(rng.choice(absurd)), rng), "pcount"
    if choice == "gcount":
        return _set_card(data, "GCOUNT", str(rng.choice(absurd)), rng), "gcount"
    if choice == "zimage":
        zkeys = [k for k in keys if k.startswith(("ZNAXIS", "ZTILE", "ZBITPIX", "ZCMPTYPE", "ZQUANTIZ",
                                                 "ZVAL", "ZNAME"))]
        if zkeys:
            key = rng.choice(zkeys)
            value = rng.choice(absurd + ["'RICE_9'", "'GZIP_1'", "'HCOMPRESS_1'", "'PLIO_1'", "'x'"])
            return _set_card(data, key, str(value), rng), "zimage"
        return _set_card(data, "ZIMAGE", "T", rng, create=True), "zimage"
    if choice == "card_garbage":
        cards = [off for s in starts for off, k in _cards(data, s) if k != "END"]
        off = int(rng.choice(cards))
        junk = rng.choice([b"=" * 80, b"NAXIS1  = 'unterminated", bytes(rng.integers(0, 256, 80, dtype=np.uint8)),
                           b"SIMPLE  = F", b"HIERARCH " + b"X" * 71, b"CONTINUE  '&'"])
        return data[:off] + junk.ljust(CARD)[:CARD] + data[off + CARD:], "card_garbage"
    if choice == "card_delete":
        cards = [(off, k) for s in starts for off, k in _cards(data, s)
                 if k in ("BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "TFIELDS", "PCOUNT", "GCOUNT",
                          "TTYPE1", "TFORM1", "XTENSION", "EXTNAME", "ZNAXIS1", "ZBITPIX")]
        if cards:
            off = cards[int(rng.integers(len(cards)))][0]
            return data[:off] + b" " * CARD + data[off + CARD:], "card_delete"
        return data, "card_delete"
    if choice == "card_string":
        key = rng.choice(["NAXIS", "NAXIS1", "BITPIX", "TFIELDS", "CRVAL1", "CDELT1", "CRPIX1",
                          "CTYPE1", "EXTNAME", "DC-FLAG"])
        return _set_card(data, key, rng.choice(["'NaN'", "'1e999'", "nan", "'WAVE-LOG'", "T", "'-'"]),
                         rng), "card_string"
    if choice == "end_missing":
        return data.replace(b"END" + b" " * 77, b"XND" + b" " * 77, 1), "end_missing"
    if choice == "flip_header":
        return _flip(data, rng, 0, min(len(data), BLOCK * 2)), "flip_header"
    if choice == "flip_data":
        return _flip(data, rng, BLOCK, len(data)), "flip_data"
    return _truncate(data, rng), "truncate"


def _flip(data: bytes, rng, lo: int, hi: int) -> bytes:
    if hi <= lo:
        return data
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 40))):
        b[int(rng.integers(lo, hi))] = int(rng.integers(0, 256))
    return bytes(b)


def _truncate(data: bytes, rng) -> bytes:
    return data[: int(rng.integers(1, max(2, len(data))))]


# --- PNG / JPEG ------------------------------------------------------------------------

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(w: int, h: int, body: bytes = b"", color: int = 2) -> bytes:
    """A PNG whose IHDR declares w x h (8-bit, RGB by default) with ``body`` as its IDAT."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b""))


def _png_bomb(w: int, h: int) -> bytes:
    """A real w x h grey PNG of zeros, compressed by zlib to a few hundred KB."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (w + 1)
    parts = [comp.compress(row * 256) for _ in range(h // 256)]
    parts.append(comp.compress(row * (h % 256)))
    parts.append(comp.flush())
    return png_declaring(w, h, b"".join(parts), color=0)


def _jpeg_declaring(data: bytes, w: int, h: int) -> bytes:
    """A JPEG seed whose SOF marker is rewritten to declare w x h."""
    b = bytearray(data)
    i = 2
    while i < len(b) - 9:
        if b[i] == 0xFF and b[i + 1] in (0xC0, 0xC1, 0xC2):
            b[i + 5:i + 9] = struct.pack(">HH", h, w)
            break
        if b[i] == 0xFF and b[i + 1] not in (0x00, 0xFF):
            i += 2 + struct.unpack(">H", bytes(b[i + 2:i + 4]))[0]
        else:
            i += 1
    return bytes(b)


def _raster_mutation(data: bytes, name: str, rng, folder: Path) -> tuple[bytes, str]:
    choice = rng.choice(["truncate", "flip", "huge", "huge", "wide", "tall", "bomb", "zero"])
    is_png = data.startswith(b"\x89PNG")
    if choice == "truncate":
        return _truncate(data, rng), "truncate"
    if choice == "flip":
        return _flip(data, rng, 8, len(data)), "flip"
    dims = {"huge": (int(rng.choice([13000, 30000, 65535, 2**20, 2**31 - 1])),) * 2,
            "wide": (100000, 1), "tall": (1, 100000), "zero": (0, int(rng.integers(0, 50)))}
    if choice == "bomb":
        return big("png_bomb", folder), "bomb"
    w, h = dims[choice]
    if choice in ("wide", "tall"):
        # a real, decodable 1 x 100000 image: the blow-up is in padding it to a square
        raw = (b"\x00" + b"\x80" * w) * h if w > 1 else (b"\x00\x80") * h
        return png_declaring(w, h, zlib.compress(raw), color=0), choice
    if is_png:
        return png_declaring(w, h, data[33:33 + 4096]), choice
    return _jpeg_declaring(data, min(w, 65535), min(h, 65535)), choice


# --- tables, text ------------------------------------------------------------------------

def _text_table_mutation(data: bytes, name: str, rng) -> tuple[bytes, str]:
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    choice = rng.choice(["truncate", "rename", "drop_column", "nan", "text_in_numbers", "flip",
                         "ragged", "header_only", "long_line", "inf", "binary", "dup_header"])
    if choice == "truncate":
        return _truncate(data, rng), choice
    if choice == "flip":
        return _flip(data, rng, 0, len(data)), choice
    header_i = next((i for i, ln in enumerate(lines) if ln and not ln.startswith("#")), 0)
    sep = "," if "," in lines[-1] else None
    if choice == "rename":
        lines[header_i] = lines[header_i].replace("RAJ2000", "R_A").replace("wavelength", "wl_x").replace(
            "DEJ2000", "dec2").replace("flux", "fluxx")
    elif choice == "drop_column":
        lines = [(sep or " ").join(ln.split(sep)[1:]) if not ln.startswith("#") else ln for ln in lines]
    elif choice in ("nan", "inf"):
        token = "nan" if choice == "nan" else "inf"
        out = []
        for i, ln in enumerate(lines):
            if i <= header_i or ln.startswith("#"):
                out.append(ln)
            else:
                out.append((sep or " ").join(token if j else p for j, p in enumerate(ln.split(sep)))
                           if rng.random() < 0.5 else (sep or " ").join(token for _ in ln.split(sep)))
        lines = out
    elif choice == "text_in_numbers":
        i = int(rng.integers(header_i + 1, max(header_i + 2, len(lines))))
        if i < len(lines):
            lines[i] = lines[i].replace("4", "four", 1).replace("2", "x", 1)
    elif choice == "ragged":
        for i in rng.integers(header_i + 1, max(header_i + 2, len(lines)), 5):
            if i < len(lines):
                lines[i] += (sep or " ") + "1" * int(rng.integers(1, 4))
    elif choice == "header_only":
        lines = lines[:header_i + 1]
    elif choice == "long_line":
        lines.insert(header_i + 1, "9" * int(rng.integers(10_000, 2_000_000)))
    elif choice == "binary":
        return data[:50] + b"\x00" * 20 + data[50:], choice
    elif choice == "dup_header":
        lines.insert(header_i + 1, lines[header_i])
    return ("\n".join(lines) + "\n").encode("utf-8"), choice


def _parquet_mutation(data: bytes, rng, folder: Path) -> tuple[bytes, str]:
    choice = rng.choice(["truncate", "flip", "footer", "rows", "rename", "nan", "magic"])
    if choice == "truncate":
        return _truncate(data, rng), choice
    if choice == "flip":
        return _flip(data, rng, 4, len(data) - 8), choice
    if choice == "footer":
        return _flip(data, rng, max(4, len(data) - 400), len(data) - 4), choice
    if choice == "magic":
        return data[:-4] + b"PAR0", choice
    if choice == "rows":
        return big("parquet_rows", folder), choice
    import pyarrow as pa
    import pyarrow.parquet as pq

    import fits_fixtures as ff

    t = ff.catalog_table(8)
    cols = {c: np.asarray(t[c]) for c in t.colnames}
    if choice == "rename":
        cols = {("R_A" if c == "RAJ2000" else c): v for c, v in cols.items()}
    else:
        cols["RAJ2000"] = np.full(8, np.nan)
        cols["DEJ2000"] = np.full(8, np.nan)
    buf = io.BytesIO()
    pq.write_table(pa.table({c: list(v) for c, v in cols.items()}), buf)
    return buf.getvalue(), choice


def _parquet_many_rows() -> bytes:
    """A 60-million-row catalog that dictionary and run-length encoding keep small on disk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 60_000_000
    col = pa.array(np.zeros(n, dtype=np.float32))
    buf = io.BytesIO()
    pq.write_table(pa.table({"ra": col, "dec": col}), buf, row_group_size=8_000_000)
    return buf.getvalue()


def _votable_mutation(data: bytes, rng) -> tuple[bytes, str]:
    text = data.decode("utf-8", "replace")
    choice = rng.choice(["truncate", "flip", "arraysize", "datatype", "rename", "nrows", "entity"])
    if choice == "truncate":
        return _truncate(data, rng), choice
    if choice == "flip":
        return _flip(data, rng, 0, len(data)), choice
    if choice == "arraysize":
        text = text.replace('datatype="double"', 'datatype="double" arraysize="99999999"', 1)
    elif choice == "datatype":
        text = text.replace('datatype="double"', 'datatype="quaternion"', 1)
    elif choice == "rename":
        text = text.replace('name="RAJ2000"', 'name="R_A"')
    elif choice == "nrows":
        text = text.replace("<TABLE ", '<TABLE nrows="99999999999" ', 1)
    elif choice == "entity":
        bomb = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">' + "".join(
            f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">' for i in range(8)) + "]>"
        text = text.replace("?>", "?>" + bomb, 1).replace("<DESCRIPTION>", "<DESCRIPTION>&i;", 1)
    return text.encode("utf-8"), choice


def _gzip_bomb() -> bytes:
    """A gzipped FITS whose header honestly declares a 14000 x 14000 float32 image of zeros."""
    if True:
        h = (f"{'SIMPLE':<8}= {'T':>20}".ljust(80) + f"{'BITPIX':<8}= {-32:>20}".ljust(80)
             + f"{'NAXIS':<8}= {2:>20}".ljust(80) + f"{'NAXIS1':<8}= {14000:>20}".ljust(80)
             + f"{'NAXIS2':<8}= {14000:>20}".ljust(80) + "END".ljust(80)).ljust(BLOCK).encode()
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [comp.compress(h)]
        chunk = b"\x00" * (1 << 22)
        total = 14000 * 14000 * 4
        for _ in range(total // len(chunk)):
            parts.append(comp.compress(chunk))
        parts.append(comp.compress(b"\x00" * (total % len(chunk) + (-total) % BLOCK)))
        parts.append(comp.flush())
        return b"".join(parts)


def _gzip_tail() -> bytes:
    """A gzip member of a gigabyte of zeros, to follow a small valid gzipped FITS."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\x00" * (1 << 22)
    return b"".join([comp.compress(chunk) for _ in range(256)] + [comp.flush()])


_BIG_MAKERS.update(png_bomb=lambda: _png_bomb(20000, 20000), parquet_rows=_parquet_many_rows,
                   gzip_bomb=_gzip_bomb, gzip_tail=_gzip_tail)


# --- cases -------------------------------------------------------------------------------

READERS = ("sniff", "read_image", "read_spectrum", "read_catalog", "read_text")


def make_case(run_seed: int, i: int, folder: Path) -> dict:
    """Write case ``i`` of run ``run_seed`` into ``folder``; the same bytes every time."""
    rng = np.random.default_rng([run_seed, i])
    folder = Path(folder)
    r = rng.random()
    if r < 0.02:
        return _special_case(rng, folder, i)
    kind = SEED_KINDS[int(rng.integers(len(SEED_KINDS)))]
    data, name = seed(kind, folder)
    for _ in range(1 if rng.random() < 0.8 else 2):
        data, how = _mutate(kind, data, name, rng, folder)
    if rng.random() < 0.1:  # misnamed: the content must decide, not the suffix
        name = "x" + str(rng.choice([".fits", ".png", ".csv", ".txt", ".parquet", ".jpg", ".vot", ""]))
    path = folder / f"case{i:06d}-{name}"
    path.write_bytes(data)
    return {"path": str(path), "seed_kind": kind, "mutation": how}


def _mutate(kind, data, name, rng, folder):
    if kind.startswith("fits"):
        if kind == "fits_gz":
            c = rng.choice(["inner", "truncate", "flip", "bomb", "tail"])
            if len(data) > 200_000:  # already a bomb: decompressing it here would be the blow-up
                return _flip(data, rng, 10, 4096), "flip"
            if c == "inner":
                try:
                    inner = gzip.decompress(data)
                except (OSError, EOFError, zlib.error):  # mutated once already: its bytes as they are
                    inner = data
                inner, how = _fits_mutation(inner, rng)
                return gzip.compress(inner), "gz_" + how
            if c == "bomb":
                return big("gzip_bomb", folder), "gzip_bomb"
            if c == "tail":
                try:
                    inner = gzip.decompress(data)
                except (OSError, EOFError, zlib.error):  # a broken seed: its bytes as they are
                    inner = data
                return gzip.compress(inner) + big("gzip_tail", folder), "gzip_trailing_bomb"
            return (_truncate(data, rng), "truncate") if c == "truncate" else (_flip(data, rng, 10, len(data)), "flip")
        return _fits_mutation(data, rng)
    if kind in ("png", "png_gray", "jpeg"):
        return _raster_mutation(data, name, rng, folder)
    if kind == "parquet_catalog":
        return _parquet_mutation(data, rng, folder)
    if kind == "votable_catalog":
        return _votable_mutation(data, rng)
    return _text_table_mutation(data, name, rng)


def _special_case(rng, folder: Path, i: int) -> dict:
    how = str(rng.choice(["empty", "symlink_passwd", "symlink_dir", "symlink_dangling", "symlink_loop",
                          "directory", "fifo", "dev_zero"]))
    path = folder / f"case{i:06d}-{how}" / "x.fits"
    path.parent.mkdir(parents=True, exist_ok=True)
    if how == "empty":
        path.write_bytes(b"")
    elif how == "symlink_passwd":
        path = path.with_name("notes.txt")
        os.symlink("/etc/passwd", path)
    elif how == "symlink_dir":
        os.symlink("/", path)
    elif how == "symlink_dangling":
        os.symlink(folder / "no-such-file.fits", path)
    elif how == "symlink_loop":
        os.symlink(path, path)
    elif how == "directory":
        path.mkdir()
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "dev_zero":
        os.symlink("/dev/zero", path)
    return {"path": str(path), "seed_kind": "special", "mutation": how}


def _call(reader: str, path: str):
    from astrovlm.data import readers
    from astrovlm.encoders import preprocess

    if reader == "sniff":
        return readers.sniff(path)
    if reader == "read_image":
        cutout = readers.read_image(path)
        return preprocess.image_to_tensor(cutout.to_pil())
    if reader == "load_rgb":
        return preprocess.image_to_tensor(path)
    if reader == "read_spectrum":
        spectrum = readers.read_spectrum(path)
        return preprocess.spectrum_to_tensor(spectrum, name=path)
    if reader == "read_catalog":
        table = readers.read_catalog(path)
        if table.meta.get("ra_column"):
            readers.catalog_coords(table, path)
        return table
    if reader == "read_text":
        return readers.read_text(path)
    raise ValueError(reader)


def readers_for(case: dict, rng=None) -> list[str]:
    """The calls a case gets: sniff, the reader its kind needs (with preprocessing), and one
    other reader that must refuse it cleanly."""
    kind = case["seed_kind"]
    main = ("read_image" if kind.startswith(("fits_image", "fits_cube", "fits_tile", "fits_gz"))
            or kind in ("png", "png_gray", "jpeg") else
            "read_spectrum" if "spectrum" in kind or kind in ("fits_sdss", "fits_wcs1d", "fits_wcs1d_log",
                                                              "fits_template", "fits_desi") else
            "read_catalog" if "catalog" in kind else "read_text")
    calls = ["sniff", main]
    if kind in ("png", "png_gray", "jpeg"):
        calls.append("load_rgb")
    others = [r for r in ("read_image", "read_spectrum", "read_catalog", "read_text") if r != main]
    idx = zlib.crc32(Path(case["path"]).name.encode()) if rng is None else int(rng.integers(len(others)))
    calls.append(others[idx % len(others)])
    return calls


def outcome(reader: str, path: str) -> str:
    """'ok', 'error:<Kind>' for an AstroVLMError, or 'raw:<Type>: msg' for anything else."""
    from astrovlm.errors import AstroVLMError

    try:
        _call(reader, path)
    except AstroVLMError as exc:
        if path not in str(exc) and str(Path(path).name) not in str(exc):
            return f"unnamed:{type(exc).__name__}: {str(exc)[:200]}"
        return f"error:{type(exc).__name__}"
    except MemoryError:
        return "memory"
    except Exception as exc:
        return f"raw:{type(exc).__name__}: {str(exc)[:200]}"
    return "ok"
