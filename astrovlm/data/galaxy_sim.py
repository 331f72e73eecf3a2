"""Galaxy spectra built the way galaxies are built, from real stellar spectra (SIMULATED).

A galaxy's spectrum is the light of its stars: an old population (G and K giants and
dwarfs, M stars), an intermediate one (A and F stars) and, where stars still form, a young
one (O and B stars) lighting H II regions. Population synthesis codes (Bruzual & Charlot
2003; the MILES-based libraries, which are not installable here) add up stellar spectra
by population; this module does the same with the project's own real stellar spectra:

1. each population is a light-weighted mixture of real spectra of its spectral classes,
   each scaled to the same flux at 5500 A, on a log-linear rest grid;
2. the populations are added with weights drawn for the galaxy's kind (elliptical,
   spiral, starburst, active nucleus), in light at 5500 A;
3. the stars' orbits broaden it: a Gaussian in ln(lambda) of the velocity dispersion sigma
   (50-350 km/s; Faber-Jackson scaled, larger for ellipticals);
4. gas adds emission lines where stars form (Balmer lines at case B, Halpha/Hbeta = 2.86,
   [O II], [O III], [N II], [S II] with star-forming ratios) or where a nucleus is active
   (high [O III]/Hbeta and [N II]/Halpha, Baldwin, Phillips & Terlevich 1981);
5. it is redshifted (0 <= z <= 1) and observed by an instrument: resolving power,
   wavelength coverage and pixels of an SDSS-, DESI- or VLT/X-shooter-like spectrograph, a
   flux-calibration tilt (a smooth few-per-cent polynomial), residuals of subtracted sky
   lines, and noise at a signal-to-noise ratio.

Observed pixels that no stellar spectrum covers at that redshift are masked (ivar = 0),
never invented. Every spectrum carries ``SIMULAT = True`` and the parameters that made it.
The Sun and Vega are reserved for outside evaluation: ``build_library`` refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np

from astrovlm.data.simulate import C_KMS
from astrovlm.data.spectrum import Spectrum
from astrovlm.errors import BadArgumentError

# each population's light at 5500 A by spectral class: an old population's V light comes
# mostly from its turn-off and subgiant stars (G) and red giants (K), little from M stars
POPULATIONS = {
    "old": {"G star": 0.55, "K star": 0.35, "M star": 0.10},
    "intermediate": {"A star": 0.6, "F star": 0.4},
    "young": {"O/B star": 1.0},
}
# light fractions at 5500 A (old, intermediate, young), drawn around these for each kind
KINDS = {
    "elliptical": (0.92, 0.08, 0.0),
    "spiral": (0.60, 0.30, 0.10),
    "starburst": (0.25, 0.35, 0.40),
    "active nucleus": (0.75, 0.22, 0.03),
}
EMISSION = {"elliptical": 0.0, "spiral": 1.0, "starburst": 4.0, "active nucleus": 2.0}

# vacuum rest wavelengths, Angstrom; strengths relative to Hbeta for an H II region
# (Osterbrock & Ferland 2006, case B at 10^4 K) and for a Seyfert 2 narrow-line region
LINES = {
    "[O II] 3727": (3727.09, 3.0, 3.0), "[O II] 3730": (3729.88, 3.5, 2.5),
    "Hgamma": (4341.69, 0.47, 0.47), "Hbeta": (4862.69, 1.0, 1.0),
    "[O III] 4960": (4960.30, 0.17, 3.3), "[O III] 5008": (5008.24, 0.5, 10.0),
    "[N II] 6550": (6549.86, 0.1, 1.0), "Halpha": (6564.61, 2.86, 3.1),
    "[N II] 6585": (6585.27, 0.3, 3.0), "[S II] 6718": (6718.29, 0.3, 1.2),
    "[S II] 6733": (6732.67, 0.22, 1.0),
}
# strong night-sky emission lines (air wavelengths, Angstrom: [O I], Na D, the OH bands):
# a subtraction leaves residuals at them
SKY_LINES = (5577.34, 5889.95, 5895.92, 6300.30, 6363.78, 6863.96, 7276.41, 7340.89, 7794.12,
             7821.50, 7913.71, 7993.33, 8344.60, 8399.17, 8430.17, 8827.10, 8885.85, 8919.62,
             8958.08, 9375.98, 9439.67, 9872.14, 10083.10)


@dataclass(frozen=True)
class Instrument:
    name: str
    min_aa: float
    max_aa: float
    resolution: float      # R = lambda / FWHM
    dloglam: float         # pixel width in log10(lambda)


INSTRUMENTS = {
    "SDSS-like": Instrument("SDSS-like", 3600.0, 10400.0, 2000.0, 1e-4),
    "DESI-like": Instrument("DESI-like", 3600.0, 9824.0, 3500.0, 6e-5),
    "VLT-like": Instrument("VLT-like", 3000.0, 10200.0, 6000.0, 3e-5),
}

AIR_TO_VACUUM = 1.000277  # n_air - 1 in the optical (Edlen 1966): sky lines are listed in air
REST_DLOGLAM = 2e-5        # rest-frame synthesis grid: finer than any instrument's pixels
REST_NORM_AA = (5400.0, 5600.0)
RESERVED = ("sun", "solar", "vega", "alpha lyr", "alf lyr", "hd 172167", "hr 7001")


class StellarLibrary:
    """Real stellar spectra by spectral class, on one log-linear rest grid, each scaled to
    a median flux of 1 at 5400-5600 A (NaN where a spectrum has no pixel)."""

    def __init__(self, loglam: np.ndarray, spectra: dict[str, np.ndarray], names: dict[str, list[str]]):
        self.loglam, self.spectra, self.names = loglam, spectra, names

    @property
    def wavelength(self) -> np.ndarray:
        return 10 ** self.loglam


def build_library(stars: list[tuple[Spectrum, str, str]]) -> StellarLibrary:
    """``stars``: (spectrum, spectral class, name) of real stellar spectra in the rest frame.
    Each population of ``POPULATIONS`` needs a star of one of its classes; the Sun and Vega
    are refused."""
    wanted = {c for classes in POPULATIONS.values() for c in classes}
    by_class: dict[str, list] = {c: [] for c in wanted}
    names: dict[str, list[str]] = {c: [] for c in wanted}
    lo, hi = np.inf, -np.inf
    for spectrum, cls, name in stars:
        if any(r in str(name).lower().replace("_", " ").replace("-", " ") for r in RESERVED):
            raise BadArgumentError(f"'{name}' is reserved for outside evaluation (the Sun and Vega "
                                   "never enter training)", field="stars")
        if cls not in wanted:
            continue
        good = spectrum.mask & (spectrum.wavelength.value > 0)
        lam = spectrum.wavelength.to_value(u.AA)[good]
        if lam.size < 50 or lam.min() > REST_NORM_AA[0] or lam.max() < REST_NORM_AA[1]:
            continue  # no flux at 5500 A: it cannot be light-weighted
        order = np.argsort(lam)
        by_class[cls].append((lam[order], spectrum.flux[good][order]))
        names[cls].append(str(name))
        lo, hi = min(lo, lam.min()), max(hi, lam.max())
    missing = [pop for pop, classes in POPULATIONS.items() if not any(by_class[c] for c in classes)]
    if missing:
        raise BadArgumentError(f"no usable stellar spectrum for the {', '.join(missing)} population "
                               "(a star of its classes with flux at 5400-5600 A)", field="stars")
    loglam = np.arange(np.log10(lo), np.log10(hi), REST_DLOGLAM)
    grid = 10 ** loglam
    spectra = {}
    for cls, items in by_class.items():
        if not items:
            continue
        rows = []
        for lam, flux in items:
            row = np.interp(grid, lam, flux, left=np.nan, right=np.nan)
            norm = np.nanmedian(row[(grid >= REST_NORM_AA[0]) & (grid <= REST_NORM_AA[1])])
            rows.append(row / norm if np.isfinite(norm) and norm > 0 else row * np.nan)
        spectra[cls] = np.array(rows)
    return StellarLibrary(loglam, spectra, names)


def _population(lib: StellarLibrary, classes: dict, rng) -> np.ndarray:
    """A light-weighted mixture of a population's stars: each class its share of the light
    (renormalised over the classes the library has), split among its stars by Dirichlet."""
    present = {c: share for c, share in classes.items() if c in lib.spectra}
    total_share = sum(present.values())
    rows, weights = [], []
    for c, share in present.items():
        rows.append(lib.spectra[c])
        weights.append(share / total_share * rng.dirichlet(np.full(len(lib.spectra[c]), 0.7)))
    rows, weights = np.concatenate(rows), np.concatenate(weights)
    covered = np.isfinite(rows)
    total = np.where(covered, rows, 0.0).T @ weights
    # where only some stars have flux, scale up by the weight that does: no artificial dip
    share = covered.T.astype(float) @ weights
    return np.where(share > 0.5, total / np.maximum(share, 1e-9), np.nan)


def _broaden(loglam: np.ndarray, flux: np.ndarray, sigma_kms: float) -> np.ndarray:
    """Gaussian line-of-sight velocity broadening: sigma/c in ln(lambda) on a log grid."""
    sigma_pix = (sigma_kms / C_KMS) / (REST_DLOGLAM * np.log(10))
    half = int(np.ceil(4 * sigma_pix))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_pix) ** 2)
    kernel /= kernel.sum()
    good = np.isfinite(flux)
    smooth = np.convolve(np.where(good, flux, 0.0), kernel, mode="same")
    weight = np.convolve(good.astype(float), kernel, mode="same")
    return np.where(weight > 0.99, smooth / np.maximum(weight, 1e-9), np.nan)


def _emission(grid: np.ndarray, kind: str, strength: float, sigma_kms: float, rng) -> np.ndarray:
    """Emission lines in units of the continuum at 5500 A (Hbeta's equivalent width ~ 5 A
    times ``strength``); ratios of an H II region, or of a Seyfert 2 for an active nucleus."""
    if strength <= 0:
        return np.zeros_like(grid)
    agn = kind == "active nucleus"
    hbeta_ew = 5.0 * strength * rng.uniform(0.5, 1.5)
    out = np.zeros_like(grid)
    for centre, hii, sey in LINES.values():
        ratio = (sey if agn else hii) * rng.uniform(0.7, 1.3)
        width = centre * max(sigma_kms * 0.7, 30.0) / C_KMS      # gas is colder than the stars
        out += hbeta_ew * ratio / (width * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((grid - centre) / width) ** 2)
    return out


def simulate_galaxy(lib: StellarLibrary, rng: np.random.Generator | int | None = None, *,
                    kind: str | None = None, redshift: float | None = None,
                    sigma_kms: float | None = None, instrument: str | None = None,
                    snr: float | None = None) -> Spectrum:
    """One simulated galaxy spectrum; parameters not given are drawn (kind uniform over
    ``KINDS``, z uniform in 0-1 with more weight below 0.3 as surveys see, sigma 50-350
    km/s, instrument uniform, S/N 5-40). Raises if no observed pixel is covered."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kind = kind or str(rng.choice(list(KINDS)))
    if kind not in KINDS:
        raise BadArgumentError(f"unknown galaxy kind '{kind}' (choose from {', '.join(KINDS)})", field="kind")
    z = float(redshift if redshift is not None else
              (rng.uniform(0.0, 0.3) if rng.random() < 0.6 else rng.uniform(0.3, 1.0)))
    if not 0 <= z <= 1.5:
        raise BadArgumentError(f"redshift must be in 0-1.5, got {z}", field="redshift")
    sigma = float(sigma_kms if sigma_kms is not None else
                  rng.uniform(150, 350) if kind == "elliptical" else rng.uniform(50, 220))
    if not 10 <= sigma <= 600:
        raise BadArgumentError(f"velocity dispersion must be 10-600 km/s, got {sigma}", field="sigma_kms")
    inst = INSTRUMENTS[instrument or str(rng.choice(list(INSTRUMENTS)))]
    snr = float(snr if snr is not None else rng.uniform(5, 40))

    fractions = np.array(KINDS[kind]) * rng.uniform(0.7, 1.3, 3)
    fractions /= fractions.sum()
    rest = np.zeros_like(lib.loglam)
    for share, classes in zip(fractions, POPULATIONS.values()):
        if share > 0:
            rest = rest + share * _population(lib, classes, rng)   # NaN wherever a population has none
    rest = _broaden(lib.loglam, rest, sigma)
    rest = rest + _emission(lib.wavelength, kind, EMISSION[kind], sigma, rng)

    n = int(np.floor(np.log10(inst.max_aa / inst.min_aa) / inst.dloglam)) + 1
    grid = inst.min_aa * 10 ** (inst.dloglam * np.arange(n))
    lam_obs = lib.wavelength * (1 + z)
    # the instrument's resolution, as a blur in velocity on the rest grid (R -> sigma in km/s)
    sigma_inst = C_KMS / inst.resolution / 2.3548
    observed = _broaden(lib.loglam, rest, sigma_inst)
    flux = np.interp(grid, lam_obs, observed, left=np.nan, right=np.nan)
    covered = np.isfinite(flux)
    if covered.sum() < 100:
        raise BadArgumentError(f"at z={z:.3f} the stellar library covers only {covered.sum()} pixels "
                               f"of the {inst.name} spectrograph", field="redshift")
    x = (grid - grid.mean()) / (grid.max() - grid.min()) * 2
    tilt = 1 + rng.normal(0, 0.03) * x + rng.normal(0, 0.02) * (1.5 * x**2 - 0.5)
    flux = np.where(covered, flux * tilt, 0.0)
    scale = np.median(flux[covered]) or 1.0
    flux = flux / scale
    sigma_pix = np.sqrt(np.clip(np.abs(flux), 0.05, None)) / snr
    for line in SKY_LINES:  # a sky subtraction leaves the noise (and a little flux) of each line
        line *= AIR_TO_VACUUM
        near = np.abs(grid - line) < line * 2.5 / inst.resolution
        sigma_pix[near] *= rng.uniform(2, 6)
        flux[near] += rng.normal(0, 0.5) * sigma_pix[near]
    noisy = np.where(covered, flux + rng.normal(size=flux.size) * sigma_pix, 0.0)
    ivar = np.where(covered, 1.0 / sigma_pix**2, 0.0)
    meta = {"SIMULAT": True, "CLASS": "galaxy", "SUBCLASS": kind, "Z": z, "VDISP": sigma,
            "INSTRUME": inst.name, "RESOLVE": inst.resolution, "SNR": snr,
            "POP_OLD": float(fractions[0]), "POP_INT": float(fractions[1]),
            "POP_YNG": float(fractions[2]), "OBJECT": f"simulated {kind} galaxy"}
    return Spectrum(grid * u.AA, noisy, ivar, flux_unit="", meta=meta)


def library_from_dataset(dataset, splits=("train",)) -> StellarLibrary:
    """The real stellar spectra of a ``SkyDataset``'s ``splits`` (never val/test for
    training): RVSAO's SDSS class templates and MK standards."""
    from astrovlm.data.readers import read_spectrum

    stars = []
    wanted = {c for classes in POPULATIONS.values() for c in classes}
    for rec in dataset.spectra:
        if rec.simulated or rec.split not in splits or rec.spectral_class not in wanted:
            continue
        sub = str(rec.subclass or "")
        if sub.startswith(("L", "T", "M5", "M6", "M7", "M8", "M9")) or "carbon" in sub:
            continue  # brown dwarfs, late M dwarfs and carbon stars: no share of a galaxy's light
        stars.append((read_spectrum(dataset.path(rec.path)), rec.spectral_class, rec.spectrum_id))
    return build_library(stars)
