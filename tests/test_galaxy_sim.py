"""Simulated galaxy spectra from real stellar spectra: populations, velocity dispersion,
emission lines, redshift and an instrument; always flagged simulated; Sun and Vega refused."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest

from astrovlm.data.galaxy_sim import (
    INSTRUMENTS, KINDS, build_library, library_from_dataset, simulate_galaxy)
from astrovlm.data.spectrum import Spectrum
from astrovlm.errors import BadArgumentError


@pytest.fixture(scope="module")
def library(sample_sky):
    return library_from_dataset(sample_sky)  # the TRAIN split's real stars


def test_the_library_holds_train_split_stars_of_every_population(library, sample_sky):
    train = {r.spectrum_id for r in sample_sky.spectra if r.split == "train" and not r.simulated}
    names = [n for got in library.names.values() for n in got]
    assert names and set(names) <= train
    assert all(len(rows) for rows in library.spectra.values())
    assert {'O/B star', 'A star', 'G star'} <= set(library.spectra)


def test_every_kind_is_simulated_flagged_and_reproducible(library):
    for kind in KINDS:
        a = simulate_galaxy(library, 3, kind=kind, redshift=0.1)
        b = simulate_galaxy(library, 3, kind=kind, redshift=0.1)
        assert a.meta["SIMULAT"] is True and a.meta["CLASS"] == "galaxy" and a.meta["SUBCLASS"] == kind
        assert np.array_equal(a.flux, b.flux) and a.mask.sum() > 1000


def test_pixels_no_star_covers_are_masked_not_invented(library):
    lo, hi = library.wavelength[0], library.wavelength[-1]
    got = simulate_galaxy(library, 1, kind="spiral", redshift=0.5, instrument="SDSS-like")
    lam = got.wavelength.to_value(u.AA)
    rest = lam[got.mask] / 1.5
    assert rest.min() >= lo * 0.999 and rest.max() <= hi * 1.001   # only where stars have flux
    assert not got.mask[lam < 3700 * 1.5].any() and got.mask.sum() > 1000
    assert got.ivar is not None and np.all(got.ivar[~got.mask] == 0)


def test_star_formation_lights_halpha_at_the_redshift_and_ellipticals_stay_dark(library):
    z = 0.08
    def peak(kind):
        s = simulate_galaxy(library, 5, kind=kind, redshift=z, snr=200, instrument="SDSS-like", sigma_kms=150)
        lam = s.wavelength.to_value(u.AA)
        at = np.abs(lam - 6564.61 * (1 + z)) < 4
        side = (np.abs(lam - 6564.61 * (1 + z)) > 60) & (np.abs(lam - 6564.61 * (1 + z)) < 120)
        return s.flux[at].max() / np.median(s.flux[side])
    assert peak("starburst") > 2.0 and peak("elliptical") < 1.2


def test_velocity_dispersion_smooths_the_absorption_lines(library):
    def roughness(sigma):
        s = simulate_galaxy(library, 9, kind="elliptical", redshift=0.05, sigma_kms=sigma, snr=1e5,
                            instrument="VLT-like")
        f = s.flux[s.mask]
        return np.std(f[2:] - 2 * f[1:-1] + f[:-2]) / np.median(f)
    assert roughness(350) < 0.5 * roughness(60)


def test_the_sun_and_vega_are_refused_and_bad_parameters_named(library):
    sun = Spectrum(np.linspace(3000, 9000, 600) * u.AA, np.ones(600))
    with pytest.raises(BadArgumentError, match="reserved"):
        build_library([(sun, "G star", "sun_reference_stis_002")])
    with pytest.raises(BadArgumentError, match="reserved"):
        build_library([(sun, "A star", "alpha_lyr_stis_011")])
    with pytest.raises(BadArgumentError, match="kind"):
        simulate_galaxy(library, 0, kind="irregular blob")
    with pytest.raises(BadArgumentError, match="redshift"):
        simulate_galaxy(library, 0, redshift=3.0)
    assert set(INSTRUMENTS) == {"SDSS-like", "DESI-like", "VLT-like"}
