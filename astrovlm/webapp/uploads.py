"""What the app accepts from a browser: size and type limits, checked on the content.

Gradio enforces ``max_file_size`` at the upload route and ``file_types`` in the page; both
are checked again here because the Gradio API can be called without the page, and because
a file's name says little about what it holds (a ``.png`` that is a FITS file, a ``.fits``
that is an HTML error page saved by a browser).

Messages name the file by its base name only: the server's temporary path is not the user's
business.
"""

from __future__ import annotations

from pathlib import Path

from astrovlm.errors import AstroVLMError, BadArgumentError, NotFoundError, UnreadableError

MAX_UPLOAD_MB = 50
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
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

    Refused, with an ``AstroVLMError`` naming the file: a missing or empty file, one over
    ``max_bytes``, a suffix outside ``UPLOAD_SUFFIXES``, content that does not match the
    suffix, and FITS files that hold neither an image nor a spectrum (a catalog table).
    """
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
        return path, fits_kind(path)
    if not head.startswith(_MAGIC[suffix]):
        fmt = "PNG" if suffix == ".png" else "JPEG"
        raise UnreadableError(f"is not a {fmt} image (its content does not match the name)", path=name)
    return path, "image"


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
