"""Pictures the page shows: stretched image thumbnails and spectrum plots with units.

Rendered once into a cache folder (``$ASTROVLM_HOME/cache/app``) and reused: the sample sky
has a few thousand items and a plot takes ~50 ms. That folder is the only one the app lets
Gradio serve (``allowed_paths``). Renderings of users' uploads go to ``uploads/`` beneath it,
which is pruned to a bounded number of files so that a busy server's disk does not fill.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from astrovlm.config import data_home

THUMBNAIL_SIZE = 320
MAX_UPLOAD_PREVIEWS = 512


def default_cache_dir() -> Path:
    return data_home() / "cache" / "app"


class Previews:
    """Thumbnails and spectrum plots, keyed by the source file and how it is drawn."""

    def __init__(self, cache_dir: str | Path | None = None, size: int = THUMBNAIL_SIZE):
        self.root = Path(cache_dir) if cache_dir else default_cache_dir()
        self.size = int(size)
        (self.root / "uploads").mkdir(parents=True, exist_ok=True)

    # -------------------------------------------------------------- files of the dataset
    def image(self, path: str | Path, stretch: str | None = None, size: int | None = None) -> Path:
        """A PNG thumbnail of an image file (FITS gets an asinh stretch; PNG/JPEG as is)."""
        size = size or self.size
        out = self._cached("img", path, f"{size}-{stretch}")
        if not out.exists():
            self._write_image(path, out, stretch, size)
        return out

    def spectrum(self, path: str | Path, title: str | None = None, wide: bool = False) -> Path:
        """A PNG plot of a spectrum file: wavelength in Angstrom, flux with its unit, lines.
        ``wide`` for a page of its own; otherwise a squarer plot that fills a gallery cell."""
        out = self._cached("spec", path, f"v2-{title}-{wide}")
        if not out.exists():
            from astrovlm.data.readers import read_spectrum

            self._write_spectrum(read_spectrum(path), out, title, wide)
        return out

    # -------------------------------------------------------------- users' uploads
    def upload_image(self, path: str | Path, thumbnail=None) -> Path:
        """The preview of an uploaded image; ``thumbnail``: a PIL image already made (the
        app's sandbox decodes uploads, so the server never reads the file's pixels)."""
        out = self._upload_target(path, "img")
        if not out.exists():
            if thumbnail is not None:
                _save_png(thumbnail.save, out)
            else:
                self._write_image(path, out, None, self.size)
        return out

    def upload_spectrum(self, spectrum, source: str | Path, title: str | None = None) -> Path:
        out = self._upload_target(source, "spec")
        if not out.exists():
            self._write_spectrum(spectrum, out, title)
        return out

    # -------------------------------------------------------------- helpers
    def _cached(self, kind: str, path: str | Path, how: str) -> Path:
        path = Path(path)
        st = path.stat()
        key = hashlib.sha1(f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}|{how}".encode()).hexdigest()
        return self.root / kind / key[:2] / f"{key[:20]}.png"

    def _upload_target(self, path: str | Path, kind: str) -> Path:
        # Keyed by content: the same file uploaded twice renders once.
        digest = hashlib.sha1()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        self._prune_uploads()
        return self.root / "uploads" / f"{kind}-{digest.hexdigest()[:20]}.png"

    def _prune_uploads(self) -> None:
        files = sorted((self.root / "uploads").glob("*.png"), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - MAX_UPLOAD_PREVIEWS)]:
            old.unlink(missing_ok=True)

    def _write_image(self, path, out: Path, stretch, size: int) -> None:
        from astrovlm.data.readers import read_image
        from astrovlm.viz import image_thumbnail

        thumb = image_thumbnail(read_image(path), size=size, stretch=stretch)
        _save_png(thumb.save, out)

    @staticmethod
    def _write_spectrum(spectrum, out: Path, title, wide: bool = False) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from astrovlm.viz import plot_spectrum

        fig = Figure(figsize=(9, 3.6) if wide else (6.4, 4.8), dpi=100)
        FigureCanvasAgg(fig)
        plot_spectrum(spectrum, ax=fig.add_subplot(1, 1, 1), title=title)
        fig.tight_layout()
        _save_png(lambda tmp, format: fig.savefig(tmp, format=format), out)


def _save_png(save, out: Path) -> None:
    """Write through a temp file and rename, so a reader never sees half a PNG."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".", suffix=".png")
    os.close(fd)
    try:
        save(tmp, format="png")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
