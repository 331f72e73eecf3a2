"""Redshift and class by a chi-square template fit over a redshift grid (redrock-like).

The method of the SDSS and DESI pipelines: for each template and each trial redshift the
template, shifted to z and sampled on the spectrum's own pixels, is scaled by the linear
least-squares solution and chi^2 is taken with the spectrum's inverse variance. The scaling
is a low-order Legendre polynomial multiplying the template (``N_TILT`` terms): it absorbs
flux-calibration tilts and Milky Way reddening, which multiply the light. The grid is coarse
(log-spaced in 1+z) and each of the best minima is refined on a fine grid; z_err comes from
the curvature of chi^2(z) at the minimum (delta chi^2 = 1). Flags follow SDSS's ZWARNING.

Templates are the real spectra of the sample sky's TRAIN split (RVSAO: SDSS class templates,
MK standards, galaxies, quasar composites), each moved to its rest frame once and put on one
log-lambda grid. The fit is a model, so no val/test spectrum is a template, and the reserved
outside-evaluation stars (the Sun, Vega) never are.

Templates cover different rest ranges (the FAST MK standards stop at 5400 Angstrom). Every
template's chi^2 is over all the spectrum's pixels, so they compare: where a template does not
reach at a trial z, the model is a smooth continuum (a polynomial of its own), so light with
features the template cannot explain costs chi^2 and a featureless stretch costs little. A
trial needs ``MIN_COVERAGE`` of the pixels covered by the template itself. Templates are ranked
by ``score`` = chi^2 + ``UNCOVERED_PENALTY`` per pixel left to the continuum: a prior for the
template that explains the light with physics over a smooth curve that merely does not
contradict it (without it a featureless blue O star is "fitted" by a galaxy template at z 0.85
covering its red third; 3 was chosen on the VAL split among 0, 0.3, 1, 3, 10 with
``benchmarks/redshift.py --penalty-sweep``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import astropy.units as u
import numpy as np

from astrovlm.data.spectrum import Spectrum
from astrovlm.errors import BadArgumentError

log = logging.getLogger(__name__)

REST_DLOG10 = 1e-4                  # template grid step, log10 Angstrom (SDSS's pixel, 69 km/s)
N_TILT = 3                          # Legendre terms multiplying a template (calibration, dust)
MIN_PIXELS = 50                     # usable pixels a spectrum needs to be fitted at all
MIN_COVERAGE = 0.35                 # fraction of a spectrum's pixels a template must cover at a z
WAVE_RANGE_AA = (1000.0, 26000.0)   # 0.1-2.6 micron: what the fit accepts (pixels outside are dropped)
DELTA_CHI2_WARN = 9.0               # redrock's SMALL_DELTA_CHI2 threshold
N_REFINE = 6                        # coarse minima refined on a fine grid
UNCOVERED_PENALTY = 3.0             # chi^2 added per pixel a template leaves to the continuum (VAL)
SCAN_DLOG10 = 4e-4                  # the coarse scan bins finer spectra to this (R ~ 1100)

# Trial redshift grids per template kind: (z_min, z_max, step in ln(1+z)). Stars: +-600 km/s.
Z_GRIDS = {"star": (-0.002, 0.002, 1e-4), "galaxy": (-0.005, 1.6, 8e-4), "quasar": (0.0, 4.5, 1e-3)}

# SDSS/redrock ZWARNING bits this fit can raise.
ZWARN_BITS = {"LITTLE_COVERAGE": 1, "SMALL_DELTA_CHI2": 2, "NEGATIVE_MODEL": 3, "Z_FITLIMIT": 5}

# Reserved for outside evaluation: never a template (names as they appear in OBJECT / ids).
RESERVED_NAMES = ("sun", "vega", "alpha lyr", "alf lyr", "alpha_lyr", "alphalyr", "hd 172167", "hd172167",
                  "hr 7001", "hr7001", "sun_reference")


def kind_of(spectral_class: str) -> str:
    """The redshift grid a class is fitted over: galaxy, quasar, or star (every other class)."""
    return spectral_class if spectral_class in ("galaxy", "quasar") else "star"


def is_reserved(*names) -> bool:
    """Whether any of the names is the Sun's or Vega's (a whole name or its first words:
    "alpha_lyr_stis_010", "sun_reference_stis_002", "HD 172167")."""
    # An id's source prefix ("rvsao:", "calspec:") is not part of the name.
    keys = [str(n).rsplit(":", 1)[-1].lower().replace("_", " ").strip() for n in names if n]
    words = [r.replace("_", " ") for r in RESERVED_NAMES]
    return any(k == r or k.startswith(r + " ") for k in keys for r in words)


# ----------------------------------------------------------------------------- templates
@dataclass
class TemplateSet:
    """Rest-frame templates on one log10-lambda grid; flux is 0 outside each one's coverage."""

    loglam0: float                  # log10 Angstrom of grid pixel 0
    dlog: float
    flux: np.ndarray                # (n_templates, n_grid), each normalised to median 1
    covered: np.ndarray             # (n_templates, n_grid) bool
    names: list[str]
    classes: list[str]
    subclasses: list[str]
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.names)

    @property
    def rest_range_aa(self) -> tuple[float, float]:
        cols = np.flatnonzero(self.covered.any(0))
        return 10 ** (self.loglam0 + self.dlog * cols[0]), 10 ** (self.loglam0 + self.dlog * cols[-1])

    @classmethod
    def from_spectra(cls, spectra: list[Spectrum], names, classes, subclasses, redshifts,
                     dlog: float = REST_DLOG10) -> "TemplateSet":
        """Each spectrum (observed at ``redshifts``) moved to rest frame and resampled."""
        rest = []
        for s, z in zip(spectra, redshifts):
            m = s.mask
            lam = s.wavelength.to_value(u.AA)[m] / (1 + z)
            order = np.argsort(lam)
            rest.append((np.log10(lam[order]), s.flux[m][order]))
        lo = min(r[0][0] for r in rest)
        hi = max(r[0][-1] for r in rest)
        n = int(np.ceil((hi - lo) / dlog)) + 1
        grid = lo + dlog * np.arange(n)
        flux = np.zeros((len(rest), n))
        covered = np.zeros((len(rest), n), dtype=bool)
        for i, (ll, f) in enumerate(rest):
            inside = (grid >= ll[0]) & (grid <= ll[-1])
            # Masked pixels inside a template's range are bridged (interp), not holes.
            flux[i, inside] = np.interp(grid[inside], ll, f)
            scale = np.median(np.abs(flux[i, inside])) or 1.0
            flux[i] /= scale
            covered[i] = inside
        digest = hashlib.sha256()
        for nm, (ll, f) in zip(names, rest):
            digest.update(nm.encode())
            digest.update(np.ascontiguousarray(ll).tobytes())
            digest.update(np.ascontiguousarray(f).tobytes())
        return cls(lo, dlog, flux, covered, list(names), list(classes), list(subclasses),
                   digest.hexdigest()[:16])

    def subset(self, idx) -> "TemplateSet":
        idx = list(idx)
        return TemplateSet(self.loglam0, self.dlog, self.flux[idx], self.covered[idx],
                           [self.names[i] for i in idx], [self.classes[i] for i in idx],
                           [self.subclasses[i] for i in idx], self.fingerprint)


def train_templates(dataset: str | Path | None = None) -> TemplateSet:
    """The real spectra of the TRAIN split of a dataset (default: the sample sky) as templates.
    Built in about a second; kept for the process (keyed by the records' file and its mtime)."""
    from astrovlm.config import sample_dir
    from astrovlm.data.records import dataset_dir

    root = dataset_dir(dataset or sample_dir())
    records = root / "spectra.jsonl"
    if not records.exists():
        from astrovlm.errors import NotFoundError

        raise NotFoundError("no spectra.jsonl: build the sample sky with 'astrovlm data sample'", path=root)
    return _train_templates(str(root), records.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _train_templates(root: str, _mtime: int) -> TemplateSet:
    from astrovlm.data.readers import read_spectrum
    from astrovlm.data.records import SpectrumRecord, read_jsonl

    recs = read_jsonl(Path(root) / "spectra.jsonl", SpectrumRecord)
    chosen = [r for r in recs if r.split == "train" and not r.simulated
              and not is_reserved(r.spectrum_id, r.template, r.object_id)]
    spectra = [read_spectrum(Path(root) / r.path) for r in chosen]
    keep = [i for i, s in enumerate(spectra)
            if not is_reserved(s.meta.get("OBJECT"), s.meta.get("TEMPLATE")) and s.mask.sum() >= MIN_PIXELS]
    if not keep:
        raise BadArgumentError("the dataset has no real train-split spectra to use as templates", path=root)
    log.debug("template fit: %d train templates from %s", len(keep), root)
    return TemplateSet.from_spectra([spectra[i] for i in keep], [chosen[i].template or chosen[i].spectrum_id for i in keep],
                                    [chosen[i].spectral_class for i in keep], [chosen[i].subclass for i in keep],
                                    [chosen[i].redshift for i in keep])


# ----------------------------------------------------------------------------- the data
@dataclass
class _Data:
    loglam: np.ndarray      # log10 Angstrom of the usable pixels, increasing
    flux: np.ndarray        # scaled to median |flux| ~ 1
    ivar: np.ndarray
    tilt: np.ndarray        # (N_TILT, n) Legendre polynomials over the pixels' range
    ivar_estimated: bool


def _as_f_lambda(spec: Spectrum) -> tuple[np.ndarray, np.ndarray | None]:
    """Flux (and ivar) per unit wavelength: an F_nu spectrum is multiplied by c / lambda^2
    (templates are F_lambda; the tilt polynomial could not absorb a lambda^-2)."""
    flux, ivar = spec.flux, spec.ivar
    if not spec.flux_unit:
        return flux, ivar
    try:
        unit = u.Unit(spec.flux_unit, parse_strict="silent")
        is_fnu = unit.is_equivalent(u.Jy) or unit.is_equivalent(u.erg / u.s / u.cm**2 / u.Hz)
    except (ValueError, TypeError):
        return flux, ivar
    if not is_fnu:
        return flux, ivar
    factor = 1.0 / spec.wavelength.to_value(u.AA) ** 2
    return flux * factor, None if ivar is None else ivar / factor**2


def _prepare(spec: Spectrum, n_tilt: int) -> _Data:
    lam = spec.wavelength.to_value(u.AA)
    flux, ivar = _as_f_lambda(spec)
    good = spec.mask & (lam > 0)
    inside = good & (lam >= WAVE_RANGE_AA[0]) & (lam <= WAVE_RANGE_AA[1])
    if good.sum() and not inside.any():
        raise BadArgumentError(
            f"all {int(good.sum())} usable pixels ({lam[good].min():.4g}-{lam[good].max():.4g} Angstrom) lie "
            f"outside the {WAVE_RANGE_AA[0]:.0f}-{WAVE_RANGE_AA[1]:.0f} Angstrom (0.1-2.6 micron) the template "
            "fit works in", field="wavelength")
    if inside.sum() < MIN_PIXELS:
        raise BadArgumentError(
            f"only {int(inside.sum())} usable pixels (finite flux, ivar > 0, 0.1-2.6 micron); the template fit "
            f"needs at least {MIN_PIXELS}", field="flux")
    order = np.argsort(lam[inside])
    loglam = np.log10(lam[inside][order])
    f = flux[inside][order]
    # A constant ivar says nothing of the noise level: it is what a file without errors gets
    # (astrovlm's writer stores 1.0; the RVSAO composites and FAST spectra have none).
    estimated = ivar is None or np.ptp(ivar[inside]) == 0
    if estimated:
        # The scatter of neighbouring pixels (MAD of first differences / sqrt 2).
        sigma = 1.4826 * np.median(np.abs(np.diff(f))) / np.sqrt(2) or 1.0
        w = np.full_like(f, 1 / sigma**2)
    else:
        w = ivar[inside][order]
    scale = np.median(np.abs(f)) or 1.0
    f, w = f / scale, w * scale**2
    x = 2 * (loglam - loglam[0]) / max(loglam[-1] - loglam[0], 1e-12) - 1
    tilt = np.polynomial.legendre.legvander(x, n_tilt - 1).T
    return _Data(loglam, f, w, tilt, estimated)


def _binned(data: _Data, dlog: float = SCAN_DLOG10) -> _Data:
    """The spectrum in log-lambda bins of ``dlog`` (inverse-variance weighted) for the coarse
    scan; a spectrum already that coarse is returned as it is. The refinement uses all pixels."""
    if np.median(np.diff(data.loglam)) >= 0.6 * dlog:
        return data
    which = np.floor((data.loglam - data.loglam[0]) / dlog).astype(np.int64)
    w = np.bincount(which, data.ivar)
    keep = w > 0
    wf = np.bincount(which, data.ivar * data.flux)[keep]
    wl = np.bincount(which, data.ivar * data.loglam)[keep]
    w = w[keep]
    loglam = wl / w
    x = 2 * (loglam - data.loglam[0]) / max(data.loglam[-1] - data.loglam[0], 1e-12) - 1
    tilt = np.polynomial.legendre.legvander(x, data.tilt.shape[0] - 1).T
    return _Data(loglam, wf / w, w, tilt, data.ivar_estimated)


# ----------------------------------------------------------------------------- chi^2(z)
def _spans(ts: TemplateSet) -> np.ndarray:
    """(n_templates, 2) grid indices of each template's first and last covered pixel."""
    first = ts.covered.argmax(1)
    last = ts.covered.shape[1] - 1 - ts.covered[:, ::-1].argmax(1)
    return np.stack([first, last], 1)


def _chi2_grid(data: _Data, ts: TemplateSet, zs: np.ndarray, coarse: bool = False,
               fixed_run: bool = False, chunk_elems: int = 3_000_000):
    """chi^2 over all the spectrum's pixels, the pixels the template covers, and its mean
    amplitude, each (n_templates, n_z).

    Covered pixels: template x tilt polynomial (linear least squares). Pixels the template
    does not reach at that z: a smooth continuum (a polynomial of the same order, its own
    least squares), so light with features the template has no model of costs chi^2 and a
    featureless stretch does not. Trials below ``MIN_COVERAGE`` get chi^2 = inf.
    ``coarse``: the template's nearest pixel instead of linear interpolation (the scan; the
    refinement interpolates). ``fixed_run``: the template models the same pixels at every z
    (those it covers at all of them), so chi^2(z) has no steps where a pixel changes model:
    the refinement's choice, where the minimum's shape gives z_err.
    """
    nt, nz, npix = len(ts), len(zs), len(data.flux)
    k = data.tilt.shape[0]
    w, f, P = data.ivar, data.flux, data.tilt
    wpp = (w * P[:, None, :] * P[None, :, :]).reshape(k * k, npix)          # (k*k, npix)
    wfp = w * f * P                                                           # (k, npix)
    wff = w * f * f
    # Prefix sums over pixels: the sums over any contiguous run of pixels in O(1).
    cum = lambda a: np.concatenate([np.zeros(a.shape[:-1] + (1,)), np.cumsum(a, -1)], -1)  # noqa: E731
    c_pp, c_fp, c_ff = cum(wpp), cum(wfp), cum(wff)
    span = _spans(ts)
    # float64 throughout: chi^2 is a small difference of large sums at high S/N.
    tflux, wpp_t, wfp_t = ts.flux, np.ascontiguousarray(wpp.T), np.ascontiguousarray(wfp.T)
    eye = np.eye(k)
    chi2 = np.full((nt, nz), np.inf)
    ncov = np.zeros((nt, nz), dtype=np.int64)
    amp = np.zeros((nt, nz))
    step = nz if fixed_run else max(1, chunk_elems // max(nt * npix, 1))
    for s in range(0, nz, step):
        z = zs[s:s + step]
        nzc = len(z)
        shift = np.log10(1 + z)
        pos = (data.loglam[None, :] - shift[:, None] - ts.loglam0) / ts.dlog    # (nzc, npix)
        if coarse:
            tz = tflux[:, np.clip(np.rint(pos).astype(np.int64), 0, ts.flux.shape[1] - 1)]
        else:
            i0 = np.clip(np.floor(pos).astype(np.int64), 0, ts.flux.shape[1] - 2)
            frac = pos - i0
            tz = tflux[:, i0] * (1 - frac) + tflux[:, i0 + 1] * frac            # (nt, nzc, npix)
        # Covered pixels are one run per (template, z), exactly those where the sampled
        # template is not 0 (it is 0 outside its span): find the run's ends by bisection.
        # Every pixel is in one of the two models, never both (at high S/N a pixel counted
        # twice would lower chi^2 by its own weight).
        edge = 0.5 if coarse else 1.0
        lo_ll = ts.loglam0 + ts.dlog * (span[:, 0] - edge)
        hi_ll = ts.loglam0 + ts.dlog * (span[:, 1] + edge)
        a = np.searchsorted(data.loglam, lo_ll[:, None] + shift[None, :], "right")  # (nt, nzc)
        b = np.searchsorted(data.loglam, hi_ll[:, None] + shift[None, :], "left")
        if fixed_run:
            a = np.broadcast_to(a.max(1, keepdims=True), a.shape)
            b = np.broadcast_to(b.min(1, keepdims=True), b.shape)
            pix = np.arange(npix)
            tz = tz * ((pix >= a[..., None]) & (pix < b[..., None]))
        flat = tz.reshape(nt * nzc, npix)
        m = ((flat * flat) @ wpp_t).reshape(nt, nzc, k, k)
        bb = (flat @ wfp_t).reshape(nt, nzc, k)
        n = b - a
        ff_cov = c_ff[b] - c_ff[a]
        enough = n >= max(MIN_COVERAGE * npix, k + 1)
        m[~enough] = eye
        scale = np.maximum(np.einsum("tzkk->tz", m), 1e-30)[..., None, None]
        coef = np.linalg.solve(m + 1e-10 * scale * eye, bb[..., None])[..., 0]
        c2_cov = ff_cov - np.einsum("tzk,tzk->tz", bb, coef)
        # A model must add light: a negative amplitude is no fit (its chi^2 is the data's own).
        c2_cov = np.where(coef[..., 0] <= 0, ff_cov, c2_cov)
        # The rest of the pixels: a smooth continuum of their own.
        mu = (c_pp[:, -1][None, None] - (c_pp[:, b] - c_pp[:, a]).transpose(1, 2, 0)).reshape(nt, nzc, k, k)
        bu = c_fp[:, -1][None, None] - (c_fp[:, b] - c_fp[:, a]).transpose(1, 2, 0)
        ffu = c_ff[-1] - ff_cov
        su = np.maximum(np.einsum("tzkk->tz", mu), 1e-30)[..., None, None]
        cu = np.linalg.solve(mu + 1e-10 * su * eye, bu[..., None])[..., 0]
        c2_unc = np.where(n < npix, np.maximum(ffu - np.einsum("tzk,tzk->tz", bu, cu), 0.0), 0.0)
        chi2[:, s:s + nzc] = np.where(enough, np.maximum(c2_cov, 0.0) + c2_unc, np.inf)
        ncov[:, s:s + nzc] = n
        amp[:, s:s + nzc] = coef[..., 0]
    return chi2, ncov, amp


def z_grid(kind: str, z_range: tuple[float, float] | None = None) -> np.ndarray:
    lo, hi, step = Z_GRIDS[kind]
    if z_range is not None:
        lo, hi = max(lo, z_range[0]), min(hi, z_range[1])
        if hi < lo:
            return np.zeros(0)
    return np.expm1(np.arange(np.log1p(lo), np.log1p(hi) + step / 2, step))


# ----------------------------------------------------------------------------- the result
def _rounded(x: float, digits: int = 7):
    """JSON-safe: None where there is no number (z_err at a grid limit has no curvature)."""
    return round(float(x), digits) if np.isfinite(x) else None


@dataclass
class TemplateMatch:
    template: str
    spectral_class: str
    subclass: str
    z: float
    z_err: float
    chi2: float             # over all the spectrum's usable pixels
    npix_covered: int       # of them, those the template reaches at z
    dof: int                # usable pixels minus fitted coefficients
    score: float            # chi2 + UNCOVERED_PENALTY per uncovered pixel: what ranks matches

    @property
    def rchi2(self) -> float:
        return self.chi2 / max(self.dof, 1)

    def to_dict(self) -> dict:
        return {"template": self.template, "class": self.spectral_class, "subclass": self.subclass,
                "z": round(self.z, 6), "z_err": _rounded(self.z_err), "chi2": round(self.chi2, 2),
                "rchi2": round(self.rchi2, 4), "npix_covered": self.npix_covered,
                "score": round(self.score, 2)}


@dataclass
class TemplateFitResult:
    best: TemplateMatch
    per_class: dict[str, TemplateMatch]          # best match of each class, best first
    candidates: list[TemplateMatch]              # the refined minima, best first
    npix: int
    delta_chi2: float = float("inf")             # to the next minimum of another class or z (>= 1000 km/s)
    zwarn: int = 0
    warnings: list[str] = field(default_factory=list)
    ivar_estimated: bool = False
    n_templates: int = 0
    templates_fingerprint: str = ""

    @property
    def spectral_class(self) -> str:
        return self.best.spectral_class

    @property
    def subclass(self) -> str:
        return self.best.subclass

    @property
    def z(self) -> float:
        return self.best.z

    @property
    def z_err(self) -> float:
        return self.best.z_err

    @property
    def delta_chi2_class(self) -> float:
        """Score (chi^2 + coverage penalty) of the best other class minus the best's (inf when
        one class fits at all)."""
        scores = [m.score for m in self.per_class.values()]
        return float(scores[1] - scores[0]) if len(scores) > 1 else float("inf")

    def class_likelihood(self, temperature: float = 1.0) -> dict[str, float]:
        """exp(-delta chi^2 / (2 T)) over the classes that fit, normalised (T = 1: the
        likelihood ratio itself; larger T tempers it for templates that are not the source)."""
        d = np.array([m.score for m in self.per_class.values()])
        p = np.exp(-(d - d.min()) / (2 * temperature))
        p /= p.sum()
        return {c: float(x) for c, x in zip(self.per_class, p)}

    def to_dict(self) -> dict:
        fin = lambda x: round(x, 3) if np.isfinite(x) else None  # noqa: E731
        return {"class": self.spectral_class, "subclass": self.subclass, "z": round(self.z, 6),
                "z_err": _rounded(self.z_err), "template": self.best.template,
                "chi2": round(self.best.chi2, 2), "rchi2": round(self.best.rchi2, 4),
                "delta_chi2": fin(self.delta_chi2), "delta_chi2_class": fin(self.delta_chi2_class),
                "zwarn": self.zwarn, "warnings": self.warnings, "npix": self.npix,
                "ivar_estimated": self.ivar_estimated,
                "best_by_class": [m.to_dict() for m in self.per_class.values()],
                "candidates": [m.to_dict() for m in self.candidates],
                "n_templates": self.n_templates, "templates_fingerprint": self.templates_fingerprint,
                "method": f"chi-square template fit over a redshift grid ({N_TILT} Legendre tilt terms)"}


# ----------------------------------------------------------------------------- the fit
def _local_minima(c: np.ndarray) -> np.ndarray:
    finite = np.isfinite(c)
    left = np.r_[np.inf, c[:-1]]
    right = np.r_[c[1:], np.inf]
    return np.flatnonzero(finite & (c <= left) & (c <= right))


def _refine(data: _Data, ts1: TemplateSet, z0: float, step: float, kind: str):
    """Fine scan of one template around a coarse minimum (moved along while the minimum sits
    at the window's edge); parabola through the lowest three points."""
    lo, hi, _ = Z_GRIDS[kind]
    centre = np.log1p(z0)
    for _ in range(4):
        zs = np.unique(np.clip(np.expm1(centre + np.linspace(-1.5 * step, 1.5 * step, 31)), lo, hi))
        chi2, ncov, amp = _chi2_grid(data, ts1, zs, fixed_run=True)
        c = chi2[0]
        if not np.isfinite(c).any():
            return None
        i = int(np.nanargmin(np.where(np.isfinite(c), c, np.nan)))
        at_window_edge = i in (0, len(zs) - 1) and lo < zs[i] < hi
        if not at_window_edge:
            break
        centre = np.log1p(zs[i])
    z_best, c_best, z_err = zs[i], c[i], np.nan
    if 0 < i < len(zs) - 1 and np.isfinite(c[i - 1:i + 2]).all():
        x, y = zs[i - 1:i + 2], c[i - 1:i + 2]
        a, bq, cq = np.polyfit(x - x[1], y, 2)
        if a > 0:
            zv = -bq / (2 * a)
            if abs(zv) <= (x[2] - x[0]):
                z_best, c_best = x[1] + zv, cq - bq**2 / (4 * a)
            z_err = 1 / np.sqrt(a)         # chi^2 rises by 1 at z_best +- z_err
    return float(z_best), float(z_err), float(max(c_best, 0.0)), int(ncov[0, i]), float(amp[0, i]), \
        bool(i == 0 or i == len(zs) - 1)


def fit_spectrum(spectrum, templates: TemplateSet | None = None, *, z_range: tuple[float, float] | None = None,
                 classes: list[str] | None = None, n_tilt: int = N_TILT,
                 uncovered_penalty: float = UNCOVERED_PENALTY) -> TemplateFitResult:
    """Fit ``spectrum`` (a ``Spectrum`` or a file) with every template over its redshift grid.

    ``templates``: default the sample sky's train-split real spectra (``train_templates``).
    ``z_range``: limit the trial redshifts (each kind keeps its own grid inside it).
    ``classes``: fit only templates of these classes. ``uncovered_penalty``: see the module.
    """
    if not isinstance(spectrum, Spectrum):
        from astrovlm.data.readers import read_spectrum

        spectrum = read_spectrum(spectrum)
    ts = templates if templates is not None else train_templates()
    if classes is not None:
        unknown = set(classes) - set(ts.classes)
        if unknown:
            raise BadArgumentError(f"no templates of class {', '.join(sorted(unknown))} (have "
                                   f"{', '.join(sorted(set(ts.classes)))})", field="classes")
        ts = ts.subset([i for i, c in enumerate(ts.classes) if c in classes])
    data = _prepare(spectrum, n_tilt)
    npix = len(data.flux)
    scan = _binned(data)

    coarse = []   # (score, template index, z, kind, step)
    for kind in ("star", "galaxy", "quasar"):
        idx = [i for i, c in enumerate(ts.classes) if kind_of(c) == kind]
        zs = z_grid(kind, z_range)
        if not idx or not len(zs):
            continue
        chi2, ncov, _ = _chi2_grid(scan, ts.subset(idx), zs, coarse=True)
        # The penalty in the spectrum's own pixels (the scan's are binned).
        eff = chi2 + uncovered_penalty * npix * (1 - ncov / len(scan.flux))
        step = Z_GRIDS[kind][2]
        for row, ti in enumerate(idx):
            for j in _local_minima(eff[row]):
                coarse.append((float(eff[row, j]), ti, float(zs[j]), kind, step))
    if not coarse:
        lo, hi = ts.rest_range_aa
        lam = 10 ** data.loglam
        raise BadArgumentError(
            f"the spectrum ({lam[0]:.0f}-{lam[-1]:.0f} Angstrom, {npix} usable pixels) is not covered by any "
            f"template (rest {lo:.0f}-{hi:.0f} Angstrom) over at least {MIN_COVERAGE:.0%} of its pixels at any "
            "trial redshift", field="wavelength")
    coarse.sort(key=lambda c: c[0])
    # Refine the best minima, and the best of each class so every class has its figure.
    pick, seen_class = [], set()
    for c in coarse:
        cls = ts.classes[c[1]]
        if len(pick) < N_REFINE or cls not in seen_class:
            if not any(p[1] == c[1] and abs(p[2] - c[2]) < 3 * c[4] for p in pick):
                pick.append(c)
                seen_class.add(cls)
    matches, at_edge, amps = [], {}, {}
    for _, ti, z0, kind, step in pick:
        got = _refine(data, ts.subset([ti]), z0, step, kind)
        if got is None:
            continue
        z, z_err, c2, ncov, amp, edge = got
        lo, hi, _ = Z_GRIDS[kind]
        m = TemplateMatch(ts.names[ti], ts.classes[ti], ts.subclasses[ti], z, z_err, c2, ncov,
                          npix - 2 * n_tilt, c2 + uncovered_penalty * (npix - ncov))
        at_edge[id(m)] = edge and (z <= lo + 1e-9 or z >= hi - 1e-9)
        amps[id(m)] = amp
        matches.append(m)
    matches.sort(key=lambda m: m.score)
    # Distinct minima: the same template within 1000 km/s is one solution (redrock's rule).
    distinct = []
    for m in matches:
        if not any(d.template == m.template and abs(d.z - m.z) / (1 + m.z) < 1000 / 299792.458 for d in distinct):
            distinct.append(m)
    per_class: dict[str, TemplateMatch] = {}
    for m in distinct:
        per_class.setdefault(m.spectral_class, m)
    best = distinct[0]
    warn = []
    if best.npix_covered < 0.6 * npix:
        warn.append("LITTLE_COVERAGE")
    second = next((m for m in distinct[1:] if m.spectral_class != best.spectral_class
                   or abs(m.z - best.z) / (1 + best.z) >= 1000 / 299792.458), None)
    delta = float("inf") if second is None else second.score - best.score
    if delta < DELTA_CHI2_WARN:
        warn.append("SMALL_DELTA_CHI2")
    if amps.get(id(best), 1.0) <= 0:
        warn.append("NEGATIVE_MODEL")
    if at_edge.get(id(best)):
        warn.append("Z_FITLIMIT")
    zwarn = sum(1 << ZWARN_BITS[w] for w in warn)
    return TemplateFitResult(best, per_class, distinct[:8], npix, delta, zwarn, warn, data.ivar_estimated,
                             len(ts), ts.fingerprint)


def fit_or_reason(spectrum, **kwargs) -> dict:
    """``fit_spectrum(...).to_dict()``, or ``{"error": why}`` where no fit can be made (a
    spectrum the templates do not cover still has its zero-shot answer)."""
    from astrovlm.errors import AstroVLMError

    try:
        return fit_spectrum(spectrum, **kwargs).to_dict()
    except AstroVLMError as exc:
        return {"error": str(exc)}


def fit_summary(fit: dict) -> str:
    """One line for a person (``fit_or_reason``'s dict): the class, z and its error, how firm
    the class is, and any ZWARNING; ``astrovlm classify`` and the app's Classify tab say it."""
    if "error" in fit:
        return f"template fit: not made ({fit['error']})"
    flags = f"  ZWARNING {fit['zwarn']}: {', '.join(fit['warnings'])}" if fit["warnings"] else ""
    dc = fit["delta_chi2_class"]
    err = "(no curvature: at the grid's limit)" if fit["z_err"] is None else f"{fit['z_err']:.5f}"
    return (f"template fit: {fit['class']} ({fit['subclass']}), z = {fit['z']:.5f} +- {err}"
            f"{'' if dc is None else f', delta chi2 to the next class {dc:.1f}'}{flags}")


__all__ = ["TemplateSet", "TemplateMatch", "TemplateFitResult", "fit_spectrum", "fit_or_reason", "fit_summary",
           "train_templates", "ZWARN_BITS", "Z_GRIDS", "is_reserved"]
