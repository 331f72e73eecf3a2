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
    if not finite.any():
        return np.zeros(data.shape, dtype=np.uint8)
    vmin, vmax = _interval(stretch, percentile).get_limits(data[finite])
    if not vmax > vmin:  # a flat image: show it mid-grey rather than divide by zero
        out = np.where(finite, 128, 0)
        return out.astype(np.uint8)
    scaled = np.clip((np.where(finite, data, vmin) - vmin) / (vmax - vmin), 0.0, 1.0)
    shown = _stretch(stretch)(scaled, clip=True)
    return np.round(np.where(finite, shown, 0.0) * 255.0).astype(np.uint8)


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
