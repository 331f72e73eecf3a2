"""A spectrum simulator built on real templates: redshift, reddening, resolution, noise.

Real spectra are few (about 60 RVSAO templates), so the encoders learn from simulated
variants of them. Every spectrum made here carries ``SIMULAT = True`` and the parameters
that made it in ``meta``, and the dataset records it as ``simulated``.

Order of operations follows the light: the template (rest frame) is redshifted, dimmed by
Milky Way dust in the observer frame (Cardelli, Clayton & Mathis 1989, R_V = 3.1),
blurred to the instrument's resolving power, sampled on the instrument's log-linear
pixels, and noise is drawn at the requested signal-to-noise ratio.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np

from astrovlm.data.spectrum import Spectrum
from astrovlm.errors import BadArgumentError

C_KMS = 299792.458

# An SDSS-like spectrograph: 3800-9200 Angstrom, 2e-4 dex pixels (twice SDSS's to keep files small).
INSTRUMENT_MIN_AA = 3800.0
INSTRUMENT_MAX_AA = 9200.0
INSTRUMENT_DLOGLAM = 2e-4


def ccm89_extinction(wavelength_aa: np.ndarray, ebv: float, r_v: float = 3.1) -> np.ndarray:
    """A_lambda in magnitudes (Cardelli, Clayton & Mathis 1989; optical/NIR, 0.3-3.3 um)."""
    x = 1e4 / np.asarray(wavelength_aa, dtype=np.float64)  # inverse microns
    a = np.zeros_like(x)
    b = np.zeros_like(x)
    ir = x < 1.1
    a[ir] = 0.574 * x[ir] ** 1.61
    b[ir] = -0.527 * x[ir] ** 1.61
    opt = ~ir
    y = x[opt] - 1.82
    a[opt] = (1 + 0.17699 * y - 0.50447 * y**2 - 0.02427 * y**3 + 0.72085 * y**4
              + 0.01979 * y**5 - 0.77530 * y**6 + 0.32999 * y**7)
    b[opt] = (1.41338 * y + 2.28305 * y**2 + 1.07233 * y**3 - 5.38434 * y**4
              - 0.62251 * y**5 + 5.30260 * y**6 - 2.09002 * y**7)
    return ebv * r_v * (a + b / r_v)


def instrument_grid(lo: float = INSTRUMENT_MIN_AA, hi: float = INSTRUMENT_MAX_AA,
                    dloglam: float = INSTRUMENT_DLOGLAM) -> np.ndarray:
    n = int(np.floor((np.log10(hi) - np.log10(lo)) / dloglam)) + 1
    return 10 ** (np.log10(lo) + dloglam * np.arange(n))


def _smooth_to_resolution(loglam: np.ndarray, flux: np.ndarray, resolution: float) -> np.ndarray:
    """Gaussian blur to resolving power R on a (near) log-linear grid."""
    dln = np.median(np.diff(loglam)) * np.log(10)
    sigma_pix = (1.0 / resolution) / 2.3548 / dln
    if sigma_pix < 0.3:
        return flux
    half = int(np.ceil(4 * sigma_pix))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_pix) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(flux, half, mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def simulate_spectrum(template: Spectrum, *, redshift: float = 0.0, snr: float = 20.0,
                      resolution: float | None = 2000.0, ebv: float = 0.0,
                      rng: np.random.Generator | int | None = None,
                      grid: u.Quantity | None = None) -> Spectrum:
    """Observe ``template`` (rest frame) at ``redshift`` with an SDSS-like spectrograph.

    ``snr`` is the median signal-to-noise per pixel; ``resolution`` is R = lambda/dlambda
    (None keeps the template's); ``ebv`` is E(B-V) of Milky Way dust. Pixels the template
    does not cover are masked (ivar = 0).
    """
    if redshift < 0 or not np.isfinite(redshift):
        raise BadArgumentError(f"redshift must be >= 0, got {redshift}", field="redshift")
    if snr <= 0:
        raise BadArgumentError(f"S/N must be positive, got {snr}", field="snr")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    good = template.mask
    if good.sum() < 10:
        raise BadArgumentError("template has fewer than 10 valid pixels", field="template")
    lam_rest = template.wavelength.value[good]
    flux_rest = template.flux[good]
    order = np.argsort(lam_rest)
    lam_obs = lam_rest[order] * (1 + redshift)
    flux_obs = flux_rest[order] / (1 + redshift)  # surface-brightness dimming aside, f_lambda stretches

    if resolution:
        flux_obs = _smooth_to_resolution(np.log10(lam_obs), flux_obs, resolution)
    out_grid = instrument_grid() if grid is None else grid.to_value(u.AA)
    covered = (out_grid >= lam_obs[0]) & (out_grid <= lam_obs[-1])
    if covered.sum() < 50:
        raise BadArgumentError(
            f"at z={redshift:.3f} the template covers only {covered.sum()} pixels of the instrument",
            field="redshift")
    flux = np.interp(out_grid, lam_obs, flux_obs, left=0.0, right=0.0)
    if ebv:
        flux = flux * 10 ** (-0.4 * ccm89_extinction(out_grid, ebv))

    scale = np.median(np.abs(flux[covered])) or 1.0
    flux = flux / scale                               # arbitrary units, median ~ 1
    sigma = np.full_like(flux, 1.0 / snr)
    # Photon noise grows with the signal: brighter pixels are noisier in absolute terms.
    sigma[covered] = np.sqrt(np.clip(np.abs(flux[covered]), 0.05, None)) / snr
    noisy = flux + rng.normal(size=flux.size) * sigma
    ivar = np.where(covered, 1.0 / sigma**2, 0.0)
    noisy[~covered] = 0.0

    meta = dict(template.meta)
    meta.update(SIMULAT=True, TEMPLATE=str(template.meta.get("TEMPLATE", template.meta.get("OBJECT", ""))),
                Z=float(redshift), SNR=float(snr), RESOLVE=float(resolution or 0), EBV=float(ebv))
    return Spectrum(out_grid * u.AA, noisy, ivar, flux_unit="", meta=meta)
