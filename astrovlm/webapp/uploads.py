"""What the app accepts from a browser: size and type limits, checked on the content.

Gradio enforces ``max_file_size`` at the upload route and ``file_types`` in the page; both
are checked again here because the Gradio API can be called without the page, and because
a file's name says little about what it holds (a ``.png`` that is a FITS file, a ``.fits``
that is an HTML error page saved by a browser).

Checked here, in the server, before anything decodes a file: the size of each file and of
one request's files together, the suffix, the first bytes, and for FITS the layout its headers
declare (``check_fits_layout``: data bigger than the file, or more pixels than the app's
budget, is refused from the header cards alone). Decoding then happens in a worker process
(``sandbox``). Text fields get ``check_text``: no lone surrogates, no control characters.

Messages name the file by its base name only: the server's temporary path is not the user's
business.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path

from astrovlm.errors import AstroVLMError, BadArgumentError, NotFoundError, UnreadableError

MAX_UPLOAD_MB = 50
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
# One request (a search, a classification, a chat turn) takes at most this many files, and
# this much in all: the classify tab's image and spectrum together are under MAX_UPLOAD_MB.
MAX_REQUEST_FILES = 2
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES
# Pixels the app decodes for one upload (declared by the header, before decoding): the
# encoder sees 224 x 224, so a 5000 x 5000 image is plenty; the side limit bounds the
# square the image is padded to (a 1 x 100000 strip would pad to 10^10 pixels).
MAX_UPLOAD_PIXELS = 25_000_000
MAX_UPLOAD_SIDE = 8192
# A FITS file's header part: HDUs scanned and 2880-byte header blocks per HDU.
MAX_FITS_HDUS = 64
MAX_HEADER_BLOCKS = 256
FITS_SUFFIXES = (".fits", ".fit", ".fz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
UPLOAD_SUFFIXES = FITS_SUFFIXES + RASTER_SUFFIXES

# The first bytes each accepted format must start with.
_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",), ".jpeg": (b"\xff\xd8\xff",)}
_FITS_MAGIC = b"SIMPLE  ="


def upload_path(upload) -> Path | None:
    """The local path of what a Gradio file component passed (a path string, a FileData
    dict from the API, or an object with ``.name``/``.path``); None when nothing was sent."""
    if upload is None or upload == "":
        return None
    if isinstance(upload, dict):
        upload = upload.get("path") or upload.get("name")
    elif not isinstance(upload, (str, Path)):
        upload = getattr(upload, "path", None) or getattr(upload, "name", None)
    return Path(upload) if upload else None


def check_upload(upload, max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[Path, str]:
    """Check an uploaded file and say what it holds: ``(path, "image" | "spectrum")``.

    Refused, with an ``AstroVLMError`` naming the file: what ``check_file`` refuses, and FITS
    files that hold neither an image nor a spectrum (a catalog table). Telling which opens
    the FITS file with astropy: the app does that in its sandbox, not in the server.
    """
    path = check_file(upload, max_bytes)
    if path.suffix.lower() in FITS_SUFFIXES:
        return path, fits_kind(path)
    return path, "image"


def check_file(upload, max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """The checks that decode nothing: a missing or empty file, one over ``max_bytes``, a
    suffix outside ``UPLOAD_SUFFIXES``, content that does not match the suffix, and a FITS
    file whose headers declare more data than it holds or than the pixel budget."""
    path = upload_path(upload)
    if path is None:
        raise BadArgumentError("no file was uploaded", field="file")
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise BadArgumentError(f"file type '{suffix or '(none)'}' is not accepted; upload one of "
                            f"{', '.join(UPLOAD_SUFFIXES)}", path=name)
    if not path.is_file():
        raise NotFoundError("the upload did not arrive (no such file on the server)", path=name)
    size = path.stat().st_size
    if size == 0:
        raise BadArgumentError("file is empty", path=name)
    if size > max_bytes:
        raise BadArgumentError(f"file is {size / 1048576:.1f} MB; the limit is "
                            f"{max_bytes / 1048576:.0f} MB", path=name)
    with open(path, "rb") as fh:
        head = fh.read(16)
    if suffix in FITS_SUFFIXES:
        if not head.startswith(_FITS_MAGIC):
            raise UnreadableError("is not a FITS file (it does not start with 'SIMPLE  =')", path=name)
        check_fits_layout(path)
        return path
    if not head.startswith(_MAGIC[suffix]):
        fmt = "PNG" if suffix == ".png" else "JPEG"
        raise UnreadableError(f"is not a {fmt} image (its content does not match the name)", path=name)
    check_image_size(*raster_size(path), name)
    return path


def check_request(uploads: list, max_files: int = MAX_REQUEST_FILES,
                  max_bytes: int = MAX_REQUEST_BYTES) -> list[Path]:
    """``check_file`` for each of one request's uploads, and their count and total size."""
    if len(uploads) > max_files:
        raise BadArgumentError(f"{len(uploads)} files were sent; one request takes at most "
                               f"{max_files}", field="file")
    paths = [check_file(u) for u in uploads]
    total = sum(p.stat().st_size for p in paths)
    if total > max_bytes:
        raise BadArgumentError(f"the files sent together are {total / 1048576:.1f} MB; the limit "
                               f"for one request is {max_bytes / 1048576:.0f} MB", field="file")
    return paths


class RequestSizeLimit:
    """ASGI middleware: an upload request (Gradio's ``.../upload`` route) whose body is over
    ``max_bytes`` is answered 413 before Gradio stores any of it. Gradio's ``max_file_size``
    bounds each file only; a request of five 45 MB files would otherwise be written to disk."""

    def __init__(self, app, max_bytes: int = MAX_REQUEST_BYTES + (1 << 20)):  # + form headers
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or scope.get("method") != "POST"
                or not scope.get("path", "").rstrip("/").endswith("/upload")):
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(int(length), send)
        seen = 0

        async def counted():  # a body without a length (chunked) is cut off at the limit
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    return {"type": "http.disconnect"}
            return message

        return await self.app(scope, counted, send)

    async def _refuse(self, length: int, send) -> None:
        text = (f"the files sent together are {length / 1048576:.1f} MB; the limit for one request "
                f"is {MAX_REQUEST_BYTES / 1048576:.0f} MB").encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(text)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": text})


def check_image_size(width: int, height: int, name: str, what: str = "image") -> None:
    """Refuse an image the app would not decode: over ``MAX_UPLOAD_PIXELS`` or
    ``MAX_UPLOAD_SIDE`` (decided from the declared size, before any pixel is read)."""
    if max(width, height) > MAX_UPLOAD_SIDE or width * height > MAX_UPLOAD_PIXELS:
        raise BadArgumentError(
            f"{what} of {width} x {height} pixels is too large for the app (limit "
            f"{MAX_UPLOAD_SIDE} pixels a side and {MAX_UPLOAD_PIXELS // 1_000_000} megapixels); "
            "cut out the region you need first", path=name)


def raster_size(path: Path) -> tuple[int, int]:
    """(width, height) a PNG or JPEG file declares, read from its bytes (the PNG's IHDR chunk,
    the JPEG's frame header) without Pillow: enough to refuse a decompression bomb."""
    with open(path, "rb") as fh:
        head = fh.read(24)
        if head.startswith(b"\x89PNG"):
            if head[12:16] != b"IHDR":
                raise UnreadableError("is not a valid PNG (it has no IHDR header)", path=path.name)
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        fh.seek(2)
        for _ in range(10_000):  # markers before the frame header (EXIF, ICC, comments ...)
            marker = fh.read(4)
            if len(marker) < 4 or marker[0] != 0xFF:
                break
            kind, length = marker[1], int.from_bytes(marker[2:4], "big")
            if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
                frame = fh.read(5)
                if len(frame) == 5:
                    return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
                break
            if length < 2:
                break
            fh.seek(length - 2, 1)
    raise UnreadableError("is not a valid JPEG (no frame header with its size)", path=path.name)


def check_fits_layout(path: Path, max_pixels: int = MAX_UPLOAD_PIXELS) -> None:
    """Walk a FITS file's headers as bytes (no astropy, no data read) and refuse one whose
    declared data does not fit: NAXISn, BITPIX, PCOUNT and GCOUNT that are not whole numbers
    in range, data that runs past the end of the file (truncated, or an absurd NAXISn), and
    an image (or a tile-compressed one, by ZNAXISn) of more than ``max_pixels``.

    Bytes after the last whole HDU are left to the readers (astropy ignores trailing junk)."""
    name = path.name
    size = path.stat().st_size
    offset = 0
    with open(path, "rb") as fh:
        for hdu in range(MAX_FITS_HDUS):
            if offset >= size:
                return
            fh.seek(offset)
            cards, header_bytes = _header_cards(fh, hdu, name)
            if cards is None:  # not an extension: trailing bytes
                return
            where = "the primary HDU" if hdu == 0 else f"HDU {hdu}"
            bitpix = _int_card(cards, "BITPIX", where, name)
            if bitpix not in (8, 16, 32, 64, -32, -64):
                raise UnreadableError(f"{where} has BITPIX = {bitpix} (not 8, 16, 32, 64, -32 or -64)",
                                      path=name)
            naxis = _int_card(cards, "NAXIS", where, name)
            if not 0 <= naxis <= 999:
                raise UnreadableError(f"{where} has NAXIS = {naxis} (must be 0 to 999)", path=name)
            dims = [_int_card(cards, f"NAXIS{i}", where, name) for i in range(1, naxis + 1)]
            pcount = _int_card(cards, "PCOUNT", where, name, default=0)
            gcount = _int_card(cards, "GCOUNT", where, name, default=1)
            if any(d < 0 for d in dims) or pcount < 0 or gcount < 0:
                raise UnreadableError(f"{where} declares a negative size (NAXISn {dims}, PCOUNT "
                                      f"{pcount}, GCOUNT {gcount})", path=name)
            pixels = math.prod(dims) if dims else 0
            data_bytes = abs(bitpix) // 8 * gcount * (pcount + pixels)
            start = offset + header_bytes
            if start + data_bytes > size:
                shape = " x ".join(map(str, dims))
                raise UnreadableError(
                    f"is truncated or its header is wrong: {where} declares {data_bytes:,} bytes "
                    f"of data ({shape} at BITPIX {bitpix}) but the file holds {max(size - start, 0):,} "
                    "after its header", path=name)
            if cards.get("ZIMAGE", "").upper() == "T":
                znaxis = _int_card(cards, "ZNAXIS", where, name)
                if not 0 <= znaxis <= 999:
                    raise UnreadableError(f"{where} has ZNAXIS = {znaxis}", path=name)
                zdims = [_int_card(cards, f"ZNAXIS{i}", where, name) for i in range(1, znaxis + 1)]
                _check_pixels(zdims, max_pixels, where, name, "compressed image")
            elif "XTENSION" not in cards or cards["XTENSION"].strip("' ").upper() == "IMAGE":
                _check_pixels(dims, max_pixels, where, name, "image")
            offset = start + -(-data_bytes // 2880) * 2880
    raise UnreadableError(f"has more than {MAX_FITS_HDUS} HDUs; the app reads files with fewer",
                          path=name)


def _check_pixels(dims: list[int], max_pixels: int, where: str, name: str, what: str) -> None:
    if dims and any(d < 0 for d in dims):
        raise UnreadableError(f"{where} declares a negative {what} size {dims}", path=name)
    pixels = math.prod(dims) if dims else 0
    if pixels > max_pixels:
        raise BadArgumentError(f"{where} holds a {what} of {' x '.join(map(str, dims))} = {pixels:,} "
                               f"pixels; the app reads at most {max_pixels:,}", path=name)


def _header_cards(fh, hdu: int, name: str) -> tuple[dict | None, int]:
    """The header's cards (keyword -> value text) and its size in bytes, read block by block
    up to the END card; (None, 0) where an extension should start but none does."""
    where = "the primary HDU" if hdu == 0 else f"HDU {hdu}"
    cards: dict[str, str] = {}
    for block in range(MAX_HEADER_BLOCKS):
        raw = fh.read(2880)
        if block == 0 and hdu > 0 and not raw.startswith(b"XTENSION"):
            return None, 0  # padding or junk after the last HDU: the readers' business
        text = raw.decode("latin-1")
        for i in range(0, len(text) - 7, 80):
            key = text[i:i + 8].rstrip()
            if key == "END":
                return cards, (block + 1) * 2880
            if text[i + 8:i + 10] == "= " and key not in cards:
                cards[key] = _card_value(text[i + 10:i + 80])
        if len(raw) < 2880:
            raise UnreadableError(f"is truncated, not a readable FITS file: the header of {where} "
                                  "has no END card", path=name)
    raise UnreadableError(f"the header of {where} has no END card in its first {MAX_HEADER_BLOCKS} "
                          "blocks", path=name)


def _card_value(text: str) -> str:
    text = text.strip()
    if text.startswith("'"):
        end = text.find("'", 1)
        return text[:end + 1] if end > 0 else text
    return text.split("/", 1)[0].strip()


def _int_card(cards: dict, key: str, where: str, name: str, default: int | None = None) -> int:
    if key not in cards:
        if default is not None:
            return default
        raise UnreadableError(f"{where} has no {key} card", path=name)
    try:
        return int(cards[key])
    except ValueError:
        raise UnreadableError(f"{where} has {key} = {cards[key][:20]!r}, not a whole number",
                              path=name) from None


def check_text(value, field: str, max_chars: int) -> str:
    """A text field as the app uses it: lone surrogates (invalid UTF-8 that reached Python)
    refused, control and format characters turned into spaces, whitespace collapsed, cut to
    ``max_chars``. Returns "" for nothing typed; the caller says what it needed."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadArgumentError(f"expected text, got {type(value).__name__}", field=field)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise BadArgumentError("is not valid text (it holds invalid UTF-8 or lone surrogate "
                               "characters)", field=field)
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
                      for c in value[:4 * max_chars])
    return " ".join(cleaned.split())[:max_chars]


def fits_kind(path: Path) -> str:
    """``"image"`` or ``"spectrum"`` for a FITS file, from its headers (readers.sniff)."""
    from astrovlm.data.readers import sniff

    try:
        kind = sniff(path)
    except AstroVLMError as exc:
        raise public_error(exc, path) from None
    if kind not in ("image", "spectrum"):
        raise BadArgumentError(f"holds a {kind}, not an image or a spectrum", path=path.name)
    return kind


def public_error(exc: AstroVLMError, path: Path | str | None) -> AstroVLMError:
    """The same error with the server's path of an upload replaced by the file's name."""
    text = str(exc)
    if path is not None:
        full = str(path)
        text = text.replace(full, Path(full).name)
    return AstroVLMError(text)
