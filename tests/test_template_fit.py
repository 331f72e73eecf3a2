"""The chi-square template fit: redshift and class from the sample sky's train-split templates."""

from __future__ import annotations

import json

import astropy.units as u
import numpy as np
import pytest

from astrovlm.data.readers import read_spectrum
from astrovlm.data.simulate import simulate_spectrum
from astrovlm.data.spectrum import Spectrum
from astrovlm.encoders.template_fit import ZWARN_BITS, fit_spectrum, is_reserved, train_templates
from astrovlm.errors import BadArgumentError, UnreadableError

pytestmark = pytest.mark.sample


def _real(sky, template):
    rec = next(r for r in sky.spectra if r.template == template and not r.simulated)
    return rec, read_spectrum(sky.path(rec.path))


def test_templates_are_the_train_split_real_spectra_and_never_the_reserved_stars(sample_sky):
    ts = train_templates(sample_sky.root)
    train = {r.template for r in sample_sky.spectra if not r.simulated and r.split == "train"}
    held_out = {r.template for r in sample_sky.spectra if not r.simulated and r.split != "train"}
    assert set(ts.names) <= train and not set(ts.names) & held_out
    assert len(ts) >= 30 and {"galaxy", "quasar", "M star"} <= set(ts.classes)
    assert not any(is_reserved(n) for n in ts.names)
    for name in ("Vega", "alpha Lyr", "alpha_lyr_stis_010", "HD 172167", "Sun", "sun_reference_stis_002",
                 "calspec:alpha_lyr_mod_004"):
        assert is_reserved(name), name
    assert not is_reserved("sdssGstar2") and not is_reserved("HD 126053") and not is_reserved("HR 70010")


def test_recovers_the_redshift_of_a_template_moved_to_known_z_within_its_error(sample_sky):
    rec, galaxy = _real(sample_sky, "sdssDR2temp023")          # a train-split galaxy template
    rest = Spectrum(galaxy.wavelength / (1 + rec.redshift), galaxy.flux, galaxy.ivar)
    pulls = []
    for seed, z_true in ((1, 0.137), (2, 0.42)):
        obs = simulate_spectrum(rest, redshift=z_true, snr=15, resolution=1800, ebv=0.1, rng=seed)
        fit = fit_spectrum(obs, train_templates(sample_sky.root))
        assert fit.spectral_class == "galaxy"
        assert 0 < fit.z_err < 1e-3
        pulls.append(abs(fit.z - z_true) / fit.z_err)
        assert fit.to_dict()["best_by_class"][0]["template"] == fit.best.template
    assert max(pulls) < 4, pulls          # within the chi^2 = min + 1 error (4 sigma over the draws)


def test_classes_of_real_train_templates(sample_sky):
    ts = train_templates(sample_sky.root)
    for template in ("sdssM3star", "sdssWDstar", "HewettWild2010", "sdssDR2temp028", "F8"):
        rec, spec = _real(sample_sky, template)
        fit = fit_spectrum(spec, ts)
        assert fit.spectral_class == rec.spectral_class, (template, fit.to_dict())
        assert fit.best.template == template
        assert abs(fit.z - rec.redshift) < 3e-4
        assert fit.delta_chi2_class > 0


def test_masked_pixels_are_ignored(sample_sky):
    ts = train_templates(sample_sky.root)
    _, spec = _real(sample_sky, "sdssM3star")
    rng = np.random.default_rng(3)
    bad = rng.random(len(spec)) < 0.2
    flux = spec.flux.copy()
    flux[bad] = rng.choice([1e6, -1e6, np.nan], bad.sum())
    ivar = np.where(bad, 0.0, spec.ivar)
    noisy = fit_spectrum(Spectrum(spec.wavelength, flux, ivar), ts)
    clean = fit_spectrum(Spectrum(spec.wavelength[~bad], spec.flux[~bad], spec.ivar[~bad]), ts)
    assert noisy.npix == clean.npix == int((~bad & spec.mask).sum())
    assert noisy.best.template == clean.best.template
    assert noisy.z == pytest.approx(clean.z, abs=1e-9)
    assert noisy.best.chi2 == pytest.approx(clean.best.chi2, rel=1e-9)


def test_any_grid_and_frequency_axes_give_the_same_fit(sample_sky, tmp_path):
    ts = train_templates(sample_sky.root)
    _, spec = _real(sample_sky, "sdssM3star")
    lam = spec.wavelength.to_value(u.AA)
    # A linear grid, resampled from the log-linear one: the fit does not care.
    lin = np.linspace(lam[0], lam[-1], 2500)
    linear = Spectrum(lin * u.AA, np.interp(lin, lam, spec.flux), np.full(lin.size, np.median(spec.ivar)))
    # A frequency axis (Hz) with F_nu in Jy, as a table file: read, converted, fitted.
    nu = (spec.wavelength).to_value(u.Hz, equivalencies=u.spectral())
    fnu = spec.flux * lam**2                      # F_nu is F_lambda * lambda^2 (up to a constant)
    path = tmp_path / "fnu.ecsv"
    from astropy.table import Table

    Table({"wave": nu * u.Hz, "flux": fnu * u.Jy}).write(path, format="ascii.ecsv")
    by_freq = fit_spectrum(path, ts)
    # F_nu is turned into F_lambda before the fit: the same chi^2 as the F_lambda spectrum's.
    as_fnu = Spectrum(spec.wavelength, fnu, spec.ivar / lam**4, flux_unit="Jy")
    assert fit_spectrum(as_fnu, ts).best.chi2 == pytest.approx(fit_spectrum(spec, ts).best.chi2, rel=1e-6)
    # A constant ivar (or none, as in the table) carries no noise level: it is estimated.
    assert fit_spectrum(linear, ts).ivar_estimated and by_freq.ivar_estimated
    assert not fit_spectrum(spec, ts).ivar_estimated
    for fit in (fit_spectrum(linear, ts), by_freq):
        assert fit.spectral_class == "M star"
        assert fit.best.template == "sdssM3star"
        assert abs(fit.z) < 3e-4


def test_refuses_spectra_it_cannot_fit_with_clear_errors(sample_sky, tmp_path):
    ts = train_templates(sample_sky.root)
    flat = lambda lam: Spectrum(lam * u.AA, 1 + 0.1 * np.sin(lam / 50), np.full(lam.size, 100.0))  # noqa: E731
    with pytest.raises(BadArgumentError, match="outside the 1000-26000 Angstrom"):
        fit_spectrum(flat(np.linspace(30000, 50000, 800)), ts)
    with pytest.raises(BadArgumentError, match="only 30 usable pixels"):
        fit_spectrum(flat(np.linspace(4000, 8000, 30)), ts)
    # K band: no star template reaches 2 micron at a star's redshift.
    with pytest.raises(BadArgumentError, match="not covered by any template"):
        fit_spectrum(flat(np.linspace(20000, 25000, 500)), ts, classes=["M star", "K star"])
    with pytest.raises(BadArgumentError, match="no templates of class"):
        fit_spectrum(flat(np.linspace(4000, 8000, 500)), ts, classes=["comet"])
    # A spectral axis in velocity is no wavelength, frequency or energy: the reader says so.
    path = tmp_path / "velocity.ecsv"
    from astropy.table import Table

    Table({"wavelength": np.linspace(-500, 500, 300) * u.km / u.s, "flux": np.ones(300)}).write(
        path, format="ascii.ecsv")
    with pytest.raises(UnreadableError, match="unit 'km / s' is not a wavelength, frequency"):
        fit_spectrum(path, ts)


def test_a_close_second_minimum_raises_small_delta_chi2(sample_sky):
    ts = train_templates(sample_sky.root)
    rng = np.random.default_rng(0)
    lam = np.exp(np.linspace(np.log(4000), np.log(8000), 1500))
    # Pure noise around a flat line: nothing to tell one template or redshift from another.
    noise = Spectrum(lam * u.AA, 1 + rng.normal(0, 1, lam.size), np.ones(lam.size))
    fit = fit_spectrum(noise, ts)
    assert "SMALL_DELTA_CHI2" in fit.warnings
    assert fit.zwarn & (1 << ZWARN_BITS["SMALL_DELTA_CHI2"])


def test_cli_classify_json_includes_the_template_fit(sample_sky, tmp_path, capsys):
    from astrovlm.cli import main

    rec = next(r for r in sample_sky.spectra if r.simulated and r.split == "test" and r.spectral_class == "galaxy")
    assert main(["classify", str(sample_sky.path(rec.path)), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    fit = out["template_fit"]
    assert {"class", "subclass", "z", "z_err", "chi2", "rchi2", "delta_chi2_class", "zwarn",
            "best_by_class"} <= set(fit)
    assert fit["best_by_class"][0]["chi2"] <= fit["best_by_class"][-1]["chi2"]
    assert abs(fit["z"] - rec.redshift) / (1 + rec.redshift) < 0.01
    assert "label" in out                       # the zero-shot answer is still there, beside it


def test_a_reserved_star_or_a_held_out_spectrum_never_becomes_a_template(sample_sky, tmp_path):
    import shutil

    # A dataset whose train split holds a spectrum named Vega, one of the Sun, and a val one.
    rows = []
    for name, split in (("sdssM3star", "train"), ("alpha_lyr_stis_010", "train"), ("Sun", "train"),
                        ("sdssGstar2", "val")):
        rec, _ = _real(sample_sky, "sdssM3star" if name not in ("sdssGstar2",) else name)
        shutil.copy(sample_sky.path(rec.path), tmp_path / f"{name}.fits")
        rows.append({"spectrum_id": f"test:{name}", "object_id": None, "path": f"{name}.fits",
                     "spectral_class": rec.spectral_class, "template": name, "split": split})
    (tmp_path / "objects.jsonl").write_text("")
    (tmp_path / "spectra.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert train_templates(tmp_path).names == ["sdssM3star"]
