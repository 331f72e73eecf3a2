"""One preprocessing function per modality, used by training, indexing, classification and the app.

- images: any FITS/PNG/JPEG file, PIL image or array -> (3, 224, 224) float tensor in [0, 1].
  FITS data is stretched with astropy.visualization (asinh) the same way the app shows it.
  ``dihedral_views`` makes the rotated/mirrored copies used for test-time augmentation.
- spectra: any ``Spectrum`` -> (2, pixels) tensor on the spectrum tower's log-wavelength grid
  (``grid_of``: the shipped tower reads the ultraviolet to the K band): normalised flux and
  the good-pixel mask.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from astrovlm.data.readers._common import MAX_IMAGE_PIXELS
from astrovlm.data.spectrum import GRID_MAX_AA, GRID_MIN_AA, GRID_PIXELS, Spectrum, common_log_grid
from astrovlm.errors import BadArgumentError, NotFoundError, UnreadableError

# Pillow's decompression-bomb guard, set explicitly to the readers' limit (Pillow warns above
# it and refuses above twice it); load_rgb checks the declared size itself before decoding.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

IMAGE_SIZE = 224
MIN_SPECTRUM_PIXELS = 64     # on the common grid; fewer cannot be typed honestly
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}


def load_rgb(source) -> Image.Image:
    """Open an image source as an RGB PIL image (FITS goes through the astropy stretch)."""
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            from astrovlm.viz import stretch_image

            arr = stretch_image(arr)
        img = Image.fromarray(arr)
    else:
        path = Path(source)
        if not path.exists():
            raise NotFoundError("file not found", path=path)
        if path.suffix.lower() in RASTER_SUFFIXES:
            try:
                img = Image.open(path)
                w, h = img.size  # from the header: nothing is decoded yet
                # The pixel count bounds the memory; a long thin strip is fine (square_on_sky
                # shrinks it before padding).
                if w * h > MAX_IMAGE_PIXELS:
                    raise UnreadableError(
                        f"image of {w} x {h} pixels is too large (limit "
                        f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels)", path=path)
                img.load()
            except UnreadableError:
                raise
            except Exception as exc:  # PIL raises many types for bad files
                raise UnreadableError(f"cannot read the image ({exc.__class__.__name__}: {exc})", path=path) from None
        else:
            from astrovlm.data.readers import read_image

            img = read_image(path).to_pil()
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        # Stellarium textures fade to transparent at the edges: composite on black sky.
        rgba = img.convert("RGBA")
        sky = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(sky, rgba)
    return img.convert("RGB")


MAX_SQUARE_SIDE = 4096  # padding a 1 x 100000 strip to its square would take 30 GB


def square_on_sky(img: Image.Image) -> Image.Image:
    """Pad to a square with black sky (never crop: the object may fill the frame). A long
    side over ``MAX_SQUARE_SIDE`` is shrunk to it first, the aspect kept, so the square
    stays small whatever the strip."""
    w, h = img.size
    if w == h:
        return img
    if max(w, h) > MAX_SQUARE_SIDE:
        scale = MAX_SQUARE_SIDE / max(w, h)
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
        w, h = img.size
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def image_to_tensor(source, size: int = IMAGE_SIZE, band: str = "optical") -> torch.Tensor:
    """(3, size, size) in [0, 1]. A radio map (``band="radio"``) given as a FITS file or a
    float array is stretched as the radio head was trained (``radio_rgb``), not with the
    optical asinh stretch; an 8-bit image is taken as it is."""
    if band == "radio":
        source = radio_rgb(source)
    img = square_on_sky(load_rgb(source)).resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def radio_rgb(source):
    """A radio continuum map as the radio head reads it (``viz.radio_stretch``: a 1-99.5
    percentile linear stretch, blanks at 0, as FIRST cutouts are). FITS files and float arrays
    are stretched; PIL images, PNG/JPEG files and 8-bit arrays are returned as they are."""
    from astrovlm.viz import radio_plane, radio_stretch

    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return source if source.dtype == np.uint8 else radio_stretch(source)
    path = Path(source)
    if path.suffix.lower() in RASTER_SUFFIXES:
        return source
    from astrovlm.data.readers import read_image

    return radio_stretch(radio_plane(read_image(path)), path=path)


VIEW_COUNTS = (1, 4, 8)


def check_views(views) -> int:
    """The number of test-time views: 1 (the image as given), 4 (its quarter turns) or 8 (and mirrored)."""
    if isinstance(views, bool) or not isinstance(views, (int, np.integer)) or int(views) not in VIEW_COUNTS:
        raise BadArgumentError(f"views must be one of {', '.join(map(str, VIEW_COUNTS))}, not {views!r}",
                            field="views")
    return int(views)


def dihedral_views(pixels: torch.Tensor, views: int) -> torch.Tensor:
    """Exact symmetric views of preprocessed images for test-time augmentation.

    ``pixels``: (B, 3, H, W) tensors of the stretched, padded, resized images (what
    ``image_to_tensor`` makes), so a view is a pixel permutation, with no resampling or
    re-stretching. Returns (B * views, 3, H, W), the views of one image next to each other:
    quarter turns 0-3, then (for 8) the same turns of the left-right mirror image.
    """
    views = check_views(views)
    turns = [torch.rot90(pixels, k, dims=(-2, -1)) for k in range(4)] if views > 1 else [pixels]
    if views == 8:
        turns += [torch.flip(t, dims=(-1,)) for t in turns]
    return torch.stack(turns, dim=1).reshape(-1, *pixels.shape[1:])


def sky_augmentations(img: Image.Image, rng: np.random.Generator, n: int) -> list[Image.Image]:
    """The sky has no 'up': rotations by any angle and flips, plus mild zooms, are all valid views."""
    base = square_on_sky(img)
    if base.size[0] > 2 * IMAGE_SIZE:  # rotate a small copy: same view, a fraction of the work
        base = base.resize((2 * IMAGE_SIZE, 2 * IMAGE_SIZE), Image.BICUBIC)
    out = []
    for i in range(n):
        view = base
        if rng.random() < 0.5:
            view = view.transpose(Image.FLIP_LEFT_RIGHT)
        angle = 90 * (i % 4) + (rng.uniform(-30, 30) if i >= 4 else 0.0)
        view = view.rotate(angle, resample=Image.BILINEAR, fillcolor=(0, 0, 0))
        if i >= 4:
            side = view.size[0]
            zoom = rng.uniform(0.8, 1.0)
            crop = int(side * zoom)
            x0 = int(rng.integers(0, side - crop + 1))
            y0 = int(rng.integers(0, side - crop + 1))
            view = view.crop((x0, y0, x0 + crop, y0 + crop))
        out.append(view)
    return out


def grid_of(config: dict | None = None) -> np.ndarray:
    """The log-wavelength grid [Angstrom] a spectrum tower reads: its config's ``grid``
    (``min_angstrom``, ``max_angstrom``, ``pixels``), or the optical grid encoders saved
    before the ultraviolet-to-K-band tower use (3600-10400 Angstrom, 1024 pixels)."""
    g = (config or {}).get("grid") or {}
    key = (float(g.get("min_angstrom", GRID_MIN_AA)), float(g.get("max_angstrom", GRID_MAX_AA)),
           int(g.get("pixels", GRID_PIXELS)))
    return _grid(*key)


@lru_cache(maxsize=8)
def _grid(lo: float, hi: float, n: int) -> np.ndarray:
    if n % 16 or not 0 < lo < hi:
        raise BadArgumentError(f"a spectrum grid needs 0 < min < max and a multiple of 16 pixels "
                               f"(the CNN halves it four times), not {lo}-{hi} A x {n}", field="grid")
    grid = common_log_grid(n, lo, hi).value
    grid.flags.writeable = False
    return grid


def spectrum_to_tensor(spectrum: Spectrum, name: str | None = None, grid: np.ndarray | None = None) -> torch.Tensor:
    """Resample onto the tower's log grid (``grid_of``; the optical grid by default), mark
    gaps and the wavelengths the spectrum does not cover, normalise by the median flux."""
    grid = grid_of() if grid is None else grid
    good = spectrum.mask
    lam = spectrum.wavelength.value[good]
    flux = spectrum.flux[good]
    where = name or spectrum.meta.get("FILENAME") or "spectrum"
    if lam.size < 2:
        raise BadArgumentError("spectrum has fewer than 2 valid pixels", path=where)
    if not (lam[1:] > lam[:-1]).all():   # files are nearly always sorted: skip the sort then
        order = np.argsort(lam)
        lam, flux = lam[order], flux[order]
    # A grid pixel is usable if it lies inside the data and near a valid input pixel.
    inside = (grid >= lam[0]) & (grid <= lam[-1])
    log_lam = np.log(lam)
    step = np.median(np.diff(log_lam))
    idx = np.clip(np.searchsorted(lam, grid), 1, lam.size - 1)
    gap = log_lam[idx] - log_lam[idx - 1]
    near = gap < max(5 * step, np.log(grid[1] / grid[0]) * 3)
    mask = inside & near
    if mask.sum() < MIN_SPECTRUM_PIXELS:
        raise BadArgumentError(
            f"spectrum has only {int(mask.sum())} valid pixels in {grid[0]:.0f}-{grid[-1]:.0f} Angstrom "
            f"(need {MIN_SPECTRUM_PIXELS})", path=where)
    resampled = np.interp(grid, lam, flux)
    scale = np.median(np.abs(resampled[mask]))
    if not np.isfinite(scale) or scale <= 0:
        scale = np.abs(resampled[mask]).max() or 1.0
    out = np.empty((2, grid.size), np.float32)   # written in place: no float64 stack to copy
    np.multiply(np.clip(resampled / scale, -10, 50), mask, out=out[0], casting="same_kind")
    out[1] = mask
    return torch.from_numpy(out)


assert GRID_PIXELS % 16 == 0  # the CNN halves the length four times
