"""Display helpers astronomers expect: stretched images and labelled spectrum plots.

Images go through astropy.visualization (an interval, then a stretch) the way ds9 or
``imshow`` with ``ImageNormalize`` would show them. Plots use matplotlib's Agg backend so
they work on a head-less machine and inside the app.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrovlm.errors import BadArgumentError

STRETCHES = ("asinh", "zscale", "linear", "sqrt", "log", "minmax")

# Rest wavelengths in Angstrom (air for lambda > 2000, as most optical line lists are), with
# the labels people write on plots. Lines outside the observed range are not drawn.
COMMON_LINES = [
    ("Ly\u03b1", 1215.67), ("C IV", 1549.06), ("C III]", 1908.73), ("Mg II", 2798.75),
    ("[O II]", 3727.09), ("Ca K", 3933.66), ("Ca H", 3968.47), ("H\u03b4", 4101.74),
    ("H\u03b3", 4340.47), ("H\u03b2", 4861.33), ("[O III]", 4958.91), ("[O III]", 5006.84),
    ("Mg b", 5175.3), ("Na D", 5892.9), ("H\u03b1", 6562.80), ("[N II]", 6583.45),
    ("[S II]", 6716.44), ("Ca II", 8542.09),
]


def _interval(stretch: str, percentile: float):
    from astropy.visualization import MinMaxInterval, PercentileInterval, ZScaleInterval

    if stretch == "zscale":
        return ZScaleInterval()
    if stretch == "minmax":
        return MinMaxInterval()
    return PercentileInterval(percentile)


def _stretch(stretch: str):
    from astropy.visualization import AsinhStretch, LinearStretch, LogStretch, SqrtStretch

    return {"asinh": AsinhStretch(a=0.1), "sqrt": SqrtStretch(), "log": LogStretch(a=1000.0)}.get(
        stretch, LinearStretch())


def stretch_image(data, stretch: str = "asinh", percentile: float = 99.5) -> np.ndarray:
    """Scale pixel values to uint8 for display: an interval (percentile, zscale, min-max)
    then a stretch (asinh, sqrt, log, linear). Works on 2-D arrays or (bands, H, W) cubes,
    one plane at a time; blank (NaN) pixels come out black."""
    if stretch not in STRETCHES:
        raise BadArgumentError(f"unknown stretch '{stretch}' (choose from {', '.join(STRETCHES)})",
                            field="stretch")
    if not 0 < percentile <= 100:
        raise BadArgumentError(f"percentile must be in (0, 100], got {percentile}", field="percentile")
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 3:
        return np.stack([stretch_image(plane, stretch, percentile) for plane in data])
    if data.ndim != 2:
        raise BadArgumentError(f"an image must be 2-D or (bands, H, W); got shape {data.shape}",
                            field="data")
    finite = np.isfinite(data)
    blank = None if finite.all() else ~finite
    if blank is not None and blank.all():
        return np.zeros(data.shape, dtype=np.uint8)
    values = data.ravel() if blank is None else data[finite]
    if stretch in ("zscale", "minmax"):
        vmin, vmax = _interval(stretch, percentile).get_limits(values)
    else:  # what PercentileInterval does, without its second pass over the pixels
        lower = (100 - percentile) * 0.5
        vmin, vmax = np.percentile(values, (lower, 100 - lower))
    if not vmax > vmin:  # a flat image: show it mid-grey rather than divide by zero
        out = np.where(finite, 128, 0)
        return out.astype(np.uint8)
    # (data - vmin) / (vmax - vmin), clipped, stretched, x 255: in one buffer, blanks at 0
    scaled = np.subtract(data, vmin)
    if blank is not None:
        scaled[blank] = 0.0
    np.true_divide(scaled, vmax - vmin, out=scaled)
    np.clip(scaled, 0.0, 1.0, out=scaled)
    shown = _stretch(stretch)(scaled, clip=True, out=scaled)
    if blank is not None:
        shown[blank] = 0.0
    np.multiply(shown, 255.0, out=shown)
    return np.round(shown, out=shown).astype(np.uint8)


def radio_stretch(data, path=None) -> np.ndarray:
    """A radio continuum map as uint8 (north up as given): a 1-99.5 percentile linear stretch
    over the finite pixels, blanks (NaN) at 0; as FIRST cutouts are stretched
    (``astrovlm.data.sources.first.prepare``) and as the encoder's radio head reads them."""
    from astrovlm.errors import UnreadableError

    data = np.asarray(data, dtype=np.float32)
    good = data[np.isfinite(data)]
    if good.size == 0:
        raise UnreadableError("the radio map has no finite pixels", path=path)
    lo, hi = np.percentile(good, [1.0, 99.5])
    scaled = np.clip((np.nan_to_num(data, nan=lo) - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    return (scaled * 255).astype(np.uint8)


def radio_plane(cutout) -> np.ndarray:
    """A ``Cutout``'s first plane, north up (FITS rows run bottom-up), for ``radio_stretch``."""
    data = cutout.data if cutout.data.ndim == 2 else cutout.data[0]
    return data[::-1] if cutout.origin == "lower" else data


def write_png(pixels: np.ndarray, path: str | Path, level: int = 1) -> None:
    """Write (H, W) grey or (H, W, 3) RGB uint8 pixels as an 8-bit PNG, fast.

    Each row is stored with PNG's "up" filter (its difference from the row above, one
    numpy subtraction) and deflated at ``level``: a few times less CPU than Pillow's
    encoder, which tries every filter on every row, for a file of about the same size.
    Any PNG reader gives back exactly ``pixels``.
    """
    import struct
    import zlib

    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim == 2:
        colour, rows = 0, pixels
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        colour, rows = 2, pixels.reshape(pixels.shape[0], -1)
    else:
        raise BadArgumentError(f"PNG pixels must be (H, W) or (H, W, 3); got {pixels.shape}",
                               field="pixels")
    h, w = pixels.shape[:2]
    if h == 0 or w == 0:
        raise BadArgumentError("an image must have at least one pixel", field="pixels")
    filtered = np.empty((h, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 2                                   # filter type 2: "up"
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as the filter says

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    png = b"".join([b"\x89PNG\r\n\x1a\n",
                    chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)),
                    chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)), chunk(b"IEND", b"")])
    Path(path).write_bytes(png)


def image_thumbnail(cutout, size: int = 256, stretch: str | None = None):
    """A PIL thumbnail (longest side ``size``) of a ``Cutout``, stretched for display."""
    from PIL import Image

    if size < 8:
        raise BadArgumentError(f"thumbnail size must be at least 8 pixels, got {size}", field="size")
    img = cutout.to_pil(stretch=stretch)
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    return img


def _redshift(spectrum, redshift):
    if redshift is not None:
        return float(redshift)
    for key in ("Z", "REDSHIFT"):
        value = spectrum.meta.get(key)
        try:
            z = float(value)
        except (TypeError, ValueError):
            continue
        if np.isfinite(z) and z > -0.01:
            return z
    return 0.0


def plot_spectrum(spectrum, ax=None, title: str | None = None, lines: bool = True,
                  redshift: float | None = None):
    """Plot a ``Spectrum`` with labelled axes and units; masked pixels are left as gaps.

    ``lines`` marks common emission/absorption lines at the spectrum's redshift (``redshift``
    or the Z in its meta). Returns the matplotlib Figure.
    """
    # The Figure API with an Agg canvas: no pyplot state, no display needed, thread-safe enough
    # for the app's workers.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    wave = spectrum.wavelength.to_value("Angstrom")
    mask = spectrum.mask
    if not mask.any():
        raise BadArgumentError("spectrum has no usable pixels to plot", field="flux")
    flux = np.where(mask, spectrum.flux, np.nan)  # NaN breaks the line: masked pixels not drawn
    own_figure = ax is None
    if own_figure:
        fig = Figure(figsize=(9, 3.6), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    ax.plot(wave, flux, lw=0.7, color="k")
    ax.set_xlabel("Wavelength [Angstrom]")
    unit = spectrum.flux_unit.strip() if spectrum.flux_unit else ""
    ax.set_ylabel(f"Flux [{unit}]" if unit else "Flux [arbitrary units]")
    lo, hi = np.nanpercentile(flux, [0.5, 99.5])
    pad = 0.08 * (hi - lo) if hi > lo else 1.0
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(wave[mask].min(), wave[mask].max())
    z = _redshift(spectrum, redshift)
    if lines:
        _mark_lines(ax, wave[mask].min(), wave[mask].max(), z)
    if title is None:
        title = spectrum.meta.get("OBJECT") or ""
        if title and z:
            title = f"{title}  (z = {z:.4g})"
    if title:
        ax.set_title(str(title))
    if own_figure:
        fig.tight_layout()
    return fig


def _mark_lines(ax, wmin: float, wmax: float, z: float) -> None:
    import matplotlib.transforms as mtransforms

    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    last_x, level = -np.inf, 0
    for label, rest in COMMON_LINES:
        observed = rest * (1 + z)
        if not wmin <= observed <= wmax:
            continue
        ax.axvline(observed, color="tab:blue", lw=0.6, ls="--", alpha=0.6)
        # step the labels of close lines (Ca H and K, the [O III] pair, H-alpha and [N II])
        # down the plot so they do not print over each other
        level = level + 1 if observed - last_x < 0.02 * (wmax - wmin) else 0
        ax.text(observed, 0.97 - 0.1 * (level % 3), label, transform=trans, rotation=90,
                va="top", ha="right", fontsize=7, color="tab:blue")
        last_x = observed


def save_spectrum_png(spectrum, path: str | Path, **kwargs) -> Path:
    """Plot a spectrum and write it as a PNG (written to a temp name, then renamed)."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plot_spectrum(spectrum, **kwargs)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path
