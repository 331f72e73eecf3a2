"""Users' uploads are decoded in a worker process, under a time and a memory budget.

A hostile file (a header declaring absurd sizes, a decompression bomb, a file that sends a
reader into a loop) must cost its sender an error, not the server its memory or the other
users their turn. So the server never decodes an upload itself: each one is read in a fresh
process forked from a fork server that has numpy, astropy, Pillow and the readers loaded (no
torch: a fork costs milliseconds), with its address space limited (``RLIMIT_AS``) and a
deadline; a process that overruns is killed. What comes back is small: an image as the
encoder's input (224 x 224 RGB) and a preview thumbnail, or a ``Spectrum``. The encoder
then runs in the server, as for any other query.

``uploads.check_file`` has already refused, from the bytes alone, what can be refused
without decoding (sizes, magic bytes, FITS headers that declare more than the file holds).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrovlm import errors
from astrovlm.errors import AstroVLMError, UnreadableError

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0       # decoding one upload; the largest allowed take 5-15 s on 2 busy cores
READ_MEMORY_MB = 2048       # the worker's address space, libraries included (~250 MB)
MAX_READERS = 2             # uploads decoded at once (the app's machine has 2 cores)
MAX_SPECTRUM_PIXELS = 2_000_000
ENCODER_SIZE = 224          # preprocess.IMAGE_SIZE (not imported: it would import torch)
THUMBNAIL_SIZE = 320        # previews.THUMBNAIL_SIZE
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")

# What the fork server imports once, so that each worker starts with it loaded (a worker
# also re-imports the server's main script, app.py: launch makes that cheap).
_PRELOAD = ["astrovlm.webapp.sandbox", "astrovlm.webapp.launch", "astrovlm.data.readers", "astrovlm.viz",
            "astrovlm.webapp.uploads", "astropy.io.fits", "astropy.visualization", "astropy.wcs",
            "PIL.Image", "PIL.PngImagePlugin", "PIL.JpegImagePlugin"]


@dataclass
class Decoded:
    """An upload as the server uses it: the image's encoder input and thumbnail, or the spectrum."""

    name: str                               # the file's base name
    kind: str                               # "image" or "spectrum"
    pixels: np.ndarray | None = None        # (224, 224, 3) uint8: padded square, resized
    thumbnail: np.ndarray | None = None     # (h, w, 3) uint8, longest side THUMBNAIL_SIZE
    spectrum: object = None                 # astrovlm.data.spectrum.Spectrum

    @property
    def item(self):
        """What the encoder takes: a PIL image or the ``Spectrum``."""
        from PIL import Image

        return Image.fromarray(self.pixels, mode="RGB") if self.kind == "image" else self.spectrum

    def thumbnail_image(self):
        from PIL import Image

        return Image.fromarray(self.thumbnail, mode="RGB")


class Sandbox:
    """Decode uploads in worker processes, at most ``workers`` at a time, each within
    ``timeout_s`` seconds and ``memory_mb`` MB of address space."""

    def __init__(self, timeout_s: float = READ_TIMEOUT_S, memory_mb: int = READ_MEMORY_MB,
                 workers: int = MAX_READERS):
        self.timeout_s, self.memory_mb = float(timeout_s), int(memory_mb)
        self._slots = threading.BoundedSemaphore(workers)

    def warm(self) -> None:
        """Start the fork server now (in the background), so the first upload does not wait
        for its imports (about two seconds)."""
        threading.Thread(target=self._start_server, name="sandbox-warm", daemon=True).start()

    def read(self, path: str | Path, band: str = "optical") -> Decoded:
        """Decode an upload (already through ``uploads.check_file``); an image of the "radio"
        band gets the radio stretch. Its errors are ``AstroVLMError``s that name the file; a
        worker that overruns is killed."""
        path = Path(path)
        with self._slots:
            return self._run(path, band)

    # ------------------------------------------------------------------ the worker
    def _run(self, path: Path, band: str = "optical") -> Decoded:
        ctx = _context()
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(str(path), send, self.memory_mb, self.timeout_s, band),
                           name=f"sandbox-{path.name[:40]}", daemon=True)
        proc.start()
        send.close()
        try:
            message = receive.recv() if receive.poll(self.timeout_s) else None
        except EOFError:  # the worker died without a word: a crash or the memory limit
            message = ("died",)
        finally:
            receive.close()
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        name = path.name
        if message is None:
            log.warning("sandbox: %s took longer than %g s to read; worker killed", name, self.timeout_s)
            raise UnreadableError(f"took longer than {self.timeout_s:g} s to read; the app gave up "
                                  "on it", path=name)
        status = message[0]
        if status == "ok":
            return message[1]
        if status == "error":
            cls = getattr(errors, message[1], None)
            if not (isinstance(cls, type) and issubclass(cls, AstroVLMError)):
                cls = AstroVLMError
            raise cls(message[2])
        if status == "bug":
            log.warning("sandbox: reading %s raised %s", name, message[1])
            raise UnreadableError(f"cannot be read ({message[1]})", path=name)
        if status == "memory":
            log.warning("sandbox: %s needs more than %d MB to read", name, self.memory_mb)
            raise UnreadableError(f"needs more than {self.memory_mb} MB to read; the app gave up on it",
                                  path=name)
        log.warning("sandbox: the worker reading %s died (exit code %s)", name, proc.exitcode)
        raise UnreadableError(f"crashed the reader (it may need more than {self.memory_mb} MB); the "
                              "app gave up on it", path=name)

    @staticmethod
    def _start_server() -> None:
        try:
            proc = _context().Process(target=_noop, daemon=True)
            proc.start()
            proc.join(60)
        except Exception:  # noqa: BLE001 - the first upload starts it instead
            log.exception("sandbox: the fork server did not start")


_ctx = None
_ctx_lock = threading.Lock()


def _context():
    """The fork-server context with the readers preloaded (forking the server itself is
    unsafe: it runs threads)."""
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            _ctx = multiprocessing.get_context(method)
            if method == "forkserver":
                _ctx.set_forkserver_preload(_PRELOAD)
        return _ctx


def _noop() -> None:
    pass


def _worker(path: str, conn, memory_mb: int, timeout_s: float, band: str = "optical") -> None:
    """In the worker process: limit it, decode, send ``("ok", Decoded)`` or the error."""
    import resource

    try:
        os.nice(10)  # a busy worker yields the cores to the server's searches
    except OSError:
        pass
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # a backstop if the server dies and nobody kills this process
    cpu = int(timeout_s) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    try:
        message = ("ok", decode(Path(path), band))
    except AstroVLMError as exc:
        message = ("error", type(exc).__name__, str(exc))
    except MemoryError:
        message = ("memory",)
    except Exception as exc:  # noqa: BLE001 - a reader's bug on a hostile file is still an answer
        message = ("bug", f"{type(exc).__name__}: {str(exc)[:200]}")
    try:
        conn.send(message)
    except MemoryError:
        conn.send(("memory",))
    finally:
        conn.close()


# ------------------------------------------------------------------ decoding (in the worker)
def decode(path: Path, band: str = "optical") -> Decoded:
    """Read an upload as the app uses it. Runs in the worker; callable in-process too (tests)."""
    from PIL import Image

    from astrovlm.webapp.uploads import MAX_UPLOAD_PIXELS, check_upload

    Image.MAX_IMAGE_PIXELS = MAX_UPLOAD_PIXELS  # Pillow's bomb guard at the app's budget
    path, kind = check_upload(path)
    if kind == "spectrum":
        from astrovlm.data.readers import read_spectrum

        spectrum = read_spectrum(path)
        if len(spectrum.flux) > MAX_SPECTRUM_PIXELS:
            raise errors.BadArgumentError(f"spectrum has {len(spectrum.flux):,} pixels; the app reads "
                                          f"at most {MAX_SPECTRUM_PIXELS:,}", path=path.name)
        return Decoded(path.name, kind, spectrum=spectrum)
    return _decode_image(path, band)


def _decode_image(path: Path, band: str = "optical") -> Decoded:
    from PIL import Image

    from astrovlm.data.readers import read_image
    from astrovlm.viz import image_thumbnail
    from astrovlm.webapp.uploads import check_image_size

    name = path.name
    if path.suffix.lower() in RASTER_SUFFIXES:
        try:
            with Image.open(path) as img:
                check_image_size(*img.size, name)  # declared by the header; nothing decoded yet
        except AstroVLMError:
            raise
        except Image.DecompressionBombError as exc:  # declared over twice MAX_IMAGE_PIXELS
            raise errors.BadArgumentError(f"is too large for the app ({exc})", path=name) from None
        except Exception as exc:  # Pillow raises many kinds for bad files
            raise UnreadableError(f"cannot read the image ({type(exc).__name__}: {str(exc)[:200]})",
                                  path=name) from None
        thumbnail = image_thumbnail(read_image(path), size=THUMBNAIL_SIZE)
        rgb = _raster_rgb(path)
    else:
        cutout = read_image(path)
        h, w = cutout.shape
        check_image_size(w, h, name)
        if band == "radio":  # the radio head's stretch (viz.radio_stretch), not the optical asinh
            from astrovlm.viz import radio_plane, radio_stretch

            rgb = Image.fromarray(radio_stretch(radio_plane(cutout))).convert("RGB")
        else:
            rgb = cutout.to_pil()  # the stretch, once: image_thumbnail would make it again
        thumbnail = rgb.copy()
        thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    thumbnail = thumbnail.convert("RGB")
    return Decoded(name, "image", pixels=np.asarray(_encoder_input(rgb), dtype=np.uint8),
                   thumbnail=np.asarray(thumbnail, dtype=np.uint8))


# The steps of ``encoders.preprocess.image_to_tensor`` before the tensor (``load_rgb``'s
# PNG/JPEG branch, ``square_on_sky``, the resize), repeated here because that module imports
# torch; test_app_hostile checks that both give the same pixels.
def _raster_rgb(path: Path):
    from PIL import Image

    try:
        img = Image.open(path)
        img.load()
    except Exception as exc:
        raise UnreadableError(f"cannot read the image ({type(exc).__name__}: {str(exc)[:200]})",
                              path=path.name) from None
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return img.convert("RGB")


def _encoder_input(img):
    from PIL import Image

    w, h = img.size
    if w != h:
        side = max(w, h)
        canvas = Image.new("RGB", (side, side), (0, 0, 0))
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        img = canvas
    return img.resize((ENCODER_SIZE, ENCODER_SIZE), Image.BICUBIC)
