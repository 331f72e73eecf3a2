"""Simulated observations of a real template spectrum: the sample sky's variants.

Each real RVSAO template gets ``n`` variants drawn from the observing conditions of its
class (redshift, S/N, resolution, reddening), reproducible from the template's name, and
made by ``astrovlm.data.simulate.simulate_spectrum``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from astrovlm.data.sources import rvsao
from astrovlm.errors import AstroVLMError

N_SIMULATED = 8

# Simulated observing conditions per spectral class: (z range, S/N range, R range, E(B-V) max).
STAR_Z = (0.0, 2e-4)                  # radial velocities up to 60 km/s (the simulator wants z >= 0)
GALAXY_Z = (0.0, 0.5)
QUASAR_Z = (0.0, 3.0)
SNR_RANGE = (5.0, 60.0)               # log-uniform
RESOLUTION_RANGE = (1000.0, 3000.0)
EBV_MAX = 0.3


def _rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big"))


def _feasible_z(rest, z_range: tuple[float, float]) -> np.ndarray:
    from astrovlm.data.simulate import INSTRUMENT_MAX_AA, INSTRUMENT_MIN_AA

    w = rest.wavelength.value[rest.mask]
    lo, hi = float(w.min()), float(w.max())
    zs = np.linspace(z_range[0], z_range[1], 2001)
    overlap = np.minimum(hi * (1 + zs), INSTRUMENT_MAX_AA) - np.maximum(lo * (1 + zs), INSTRUMENT_MIN_AA)
    # At least 40% of the instrument's range covered, so the class is visible.
    return zs[overlap >= 0.4 * (INSTRUMENT_MAX_AA - INSTRUMENT_MIN_AA)]


def simulate_variants(rs: rvsao.RealSpectrum, n: int) -> list[tuple[object, dict]]:
    """``n`` simulated observations of one real template, reproducible from its name."""
    from astrovlm.data.simulate import simulate_spectrum

    rng = _rng_for(rs.name)
    rest = rs.rest_frame()
    rest.meta["TEMPLATE"] = rs.name
    if rs.spectral_class in ("galaxy", "quasar"):
        zs = _feasible_z(rest, GALAXY_Z if rs.spectral_class == "galaxy" else QUASAR_Z)
        if len(zs) == 0:
            return []
    out = []
    for _ in range(n):
        if rs.spectral_class in ("galaxy", "quasar"):
            step = zs[1] - zs[0] if len(zs) > 1 else 0.0
            z = float(np.clip(rng.choice(zs) + rng.uniform(-step / 2, step / 2), 0, None))
        else:
            z = float(rng.uniform(*STAR_Z))
        params = {"redshift": z,
                  "snr": float(np.exp(rng.uniform(np.log(SNR_RANGE[0]), np.log(SNR_RANGE[1])))),
                  "resolution": float(rng.uniform(*RESOLUTION_RANGE)),
                  "ebv": float(rng.uniform(0, EBV_MAX))}
        try:
            spec = simulate_spectrum(rest, rng=rng, **params)
        except AstroVLMError:
            continue  # this draw left too little of the template on the detector
        out.append((spec, params))
    return out


def simulation_manifest(n_simulated: int) -> dict:
    """How the variants were drawn, for the manifest."""
    return {
        "variants_per_template": n_simulated, "simulator": "astrovlm.data.simulate.simulate_spectrum",
        "star_redshift": list(STAR_Z), "galaxy_redshift": list(GALAXY_Z), "quasar_redshift": list(QUASAR_Z),
        "snr_log_uniform": list(SNR_RANGE), "resolution": list(RESOLUTION_RANGE), "ebv_max": EBV_MAX,
        "note": "every simulated spectrum has simulated=true, its template and its parameters",
    }
