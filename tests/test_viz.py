"""Display helpers: stretches that astronomers recognise, spectrum plots with units."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from PIL import Image

from astrovlm.data.readers import read_image
from astrovlm.data.spectrum import Spectrum
from astrovlm.errors import AstroVLMError
from astrovlm.viz import (
    STRETCHES, image_thumbnail, plot_spectrum, save_spectrum_png, stretch_image, write_png)
from fits_fixtures import continuum_spectrum, make_image


def test_stretch_image_gives_full_range_uint8():
    data = np.outer(np.linspace(0, 1000, 50), np.ones(40))
    for stretch in ("asinh", "linear", "sqrt", "log", "minmax", "zscale"):
        out = stretch_image(data, stretch)
        assert out.dtype == np.uint8 and out.shape == data.shape
        assert out.min() == 0 and out.max() == 255, stretch


def test_asinh_brightens_faint_pixels_more_than_linear():
    data = np.outer(np.linspace(0, 1000, 100), np.ones(10))
    faint = (10, 0)
    assert stretch_image(data, "asinh")[faint] > 2.5 * stretch_image(data, "linear")[faint]


def test_zscale_ignores_a_few_hot_pixels():
    rng = np.random.default_rng(0)
    sky = rng.normal(100, 5, (64, 64))
    sky[10, 10] = 1e6  # a cosmic ray
    linear = stretch_image(sky, "minmax")
    zscale = stretch_image(sky, "zscale")
    # min-max spends the whole range on the cosmic ray; zscale shows the sky noise
    sky_only = np.delete(linear.ravel(), 10 * 64 + 10)
    assert sky_only.max() <= 1 and zscale.std() > 30


def test_blank_and_flat_images():
    data = np.full((8, 8), 5.0)
    data[0, 0] = np.nan
    out = stretch_image(data)
    assert out[0, 0] == 0 and out[4, 4] == 128
    assert stretch_image(np.full((4, 4), np.nan)).max() == 0


def _astropy_stretch(data, stretch, percentile):
    """The display pixels as astropy.visualization composes them: interval, then stretch."""
    from astrovlm.viz import _interval, _stretch

    data = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(data)
    vmin, vmax = _interval(stretch, percentile).get_limits(data[finite])
    scaled = np.clip((np.where(finite, data, vmin) - vmin) / (vmax - vmin), 0.0, 1.0)
    shown = _stretch(stretch)(scaled, clip=True)
    return np.round(np.where(finite, shown, 0.0) * 255.0).astype(np.uint8)


@pytest.mark.parametrize("stretch", STRETCHES)
def test_stretch_image_is_exactly_astropys_interval_and_stretch(stretch):
    rng = np.random.default_rng(3)
    sky = rng.lognormal(3, 1, size=(96, 130)).astype(np.float32)
    holed = sky.copy()
    holed.flat[::7], holed[0, 0] = np.nan, np.inf
    for data in (sky, holed):
        for percentile in (99.5, 90.0, 100.0):
            assert np.array_equal(stretch_image(data, stretch, percentile),
                                  _astropy_stretch(data, stretch, percentile))


def test_write_png_reads_back_exactly(tmp_path):
    rng = np.random.default_rng(4)
    grey = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    for pixels in (grey, np.stack([grey, grey[::-1], 255 - grey], axis=-1), grey[:1, :1]):
        write_png(pixels, tmp_path / "p.png")
        with Image.open(tmp_path / "p.png") as img:
            assert img.format == "PNG" and img.mode == ("L" if pixels.ndim == 2 else "RGB")
            assert np.array_equal(np.asarray(img), pixels)
    with pytest.raises(AstroVLMError, match="PNG pixels"):
        write_png(np.zeros((4, 4, 2), np.uint8), tmp_path / "bad.png")


def test_bad_stretch_arguments():
    with pytest.raises(AstroVLMError, match="unknown stretch 'histeq'"):
        stretch_image(np.ones((4, 4)), "histeq")
    with pytest.raises(AstroVLMError, match="percentile"):
        stretch_image(np.ones((4, 4)), percentile=0)
    with pytest.raises(AstroVLMError, match="2-D"):
        stretch_image(np.ones(4))


def _spectrum(z=0.1, flux_unit="", masked=()):
    wave = np.linspace(3800, 9200, 3000)
    flux = continuum_spectrum(wave, z)
    ivar = np.ones_like(flux)
    for lo, hi in masked:
        ivar[lo:hi] = 0
    return Spectrum(wave * u.AA, flux, ivar=ivar, flux_unit=flux_unit,
                    meta={"OBJECT": "NGC 1234", "Z": z})


def _vertical_lines(ax):
    return sorted(float(line.get_xdata()[0]) for line in ax.get_lines()
                  if len(set(np.atleast_1d(line.get_xdata()))) == 1)


def test_plot_spectrum_labels_units_masks_and_lines():
    fig = plot_spectrum(_spectrum(z=0.1, flux_unit="1e-17 erg/s/cm2/A", masked=[(100, 200)]))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Wavelength [Angstrom]"
    assert ax.get_ylabel() == "Flux [1e-17 erg/s/cm2/A]"
    assert "NGC 1234" in ax.get_title() and "z = 0.1" in ax.get_title()
    flux_line = ax.get_lines()[0]
    y = np.asarray(flux_line.get_ydata(), dtype=float)
    assert np.isnan(y[100:200]).all() and np.isfinite(y[:100]).all()  # masked pixels not drawn
    marks = _vertical_lines(ax)
    assert any(abs(m - 6562.80 * 1.1) < 0.01 for m in marks)  # H-alpha at z = 0.1
    assert any(abs(m - 4861.33 * 1.1) < 0.01 for m in marks)
    assert all(3800 <= m <= 9200 for m in marks)              # only lines in range


def test_plot_without_lines_and_without_units():
    fig = plot_spectrum(_spectrum(), lines=False, title="custom")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "Flux [arbitrary units]" and ax.get_title() == "custom"
    assert _vertical_lines(ax) == []


def test_plot_on_a_given_axis_and_redshift_override():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot(1, 1, 1)
    assert plot_spectrum(_spectrum(z=0.1), ax=ax, redshift=0.0) is fig
    assert any(abs(m - 6562.80) < 0.01 for m in _vertical_lines(ax))


def test_save_spectrum_png_and_image_thumbnail(tmp_path):
    path = save_spectrum_png(_spectrum(), tmp_path / "plots" / "s.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 400
    cutout = read_image(make_image(tmp_path / "m.fits", shape=(300, 500)))
    thumb = image_thumbnail(cutout, size=128)
    assert max(thumb.size) == 128 and thumb.size == (128, 77) and thumb.mode == "RGB"
