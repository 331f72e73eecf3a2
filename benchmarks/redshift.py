"""Redshift and class from the chi-square template fit, on the VAL and TEST splits, in one run.

The fit (``astrovlm.encoders.template_fit``) uses only the sample sky's TRAIN-split real
spectra as templates; every spectrum scored here comes from a val/test template, so no
spectrum is fitted by its own template (leave-template-out, as the sample's split is by
template). Three sets per split:

- real: the sample's real spectra of the split (RVSAO; their z is the catalogued one, almost
  all stars and composites at z ~ 0, so R^2 is not informative there: dz and class are);
- simulated (sample): the sample sky's simulated spectra of the split (flagged simulated;
  stars z < 2e-4, galaxies 0-0.5, quasars 0-3);
- simulated (galaxies 0-1): fresh simulated observations of the split's galaxy templates by
  ``astrovlm.data.simulate`` (z uniform 0-1 where the template covers >= 40% of the detector,
  S/N 5-60 log-uniform, R 1000-3000, E(B-V) 0-0.3), all SIMULATED.

Metrics (as SDSS/DESI and AstroCLIP report them): R^2 of z, outlier rate |dz|/(1+z) > 0.01,
median |dz|/(1+z), class accuracy over the 9 coarse spectrum classes, the ZWARNING rate and
the outlier rate among ZWARNING = 0. References in the same run: the k-NN probe on the
encoder's spectrum embeddings (AstroCLIP's, distance-weighted, k=64; gallery = the train
split's spectra: real, sample simulated and fresh simulated galaxies 0-1), the encoder's
zero-shot class, and chance (the train median z; the train majority class; 1/9).

Fusion: the template fit's class likelihood exp(-delta chi2 / 2T) times the zero-shot
probabilities, T chosen on VAL (class accuracy), reported on TEST.

Timing: template fits per second, wall clock, on this machine's 2 CPU cores, shared with
other jobs (the load average is recorded beside it).

Run: python benchmarks/redshift.py [--dataset DIR] [--model DIR] [--galaxies-per-template 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from astrovlm.config import sample_dir  # noqa: E402
from astrovlm.data.readers import read_spectrum  # noqa: E402
from astrovlm.data.records import SkyDataset  # noqa: E402
from astrovlm.data.simulate import simulate_spectrum  # noqa: E402
from astrovlm.data.spectrum import Spectrum  # noqa: E402
from astrovlm.encoders.template_fit import fit_spectrum, is_reserved, train_templates  # noqa: E402
from astrovlm.errors import AstroVLMError  # noqa: E402

OUTLIER = 0.01
TEMPERATURES = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)


def rest_frame(spec: Spectrum, z: float) -> Spectrum:
    return Spectrum(spec.wavelength / (1 + z), spec.flux * (1 + z), spec.ivar, spec.flux_unit, dict(spec.meta))


def fresh_galaxies(ds, split: str, per_template: int, rng) -> list[tuple[Spectrum, float, str]]:
    """Simulated observations (z 0-1) of the split's real galaxy templates: (spectrum, z, class)."""
    out = []
    for r in ds.spectra:
        if r.split != split or r.simulated or r.spectral_class != "galaxy":
            continue
        rest = rest_frame(read_spectrum(ds.path(r.path)), r.redshift)
        lam = rest.wavelength.value[rest.mask]
        made, tries = 0, 0
        while made < per_template and tries < 50 * per_template:
            tries += 1
            z = float(rng.uniform(0.0, 1.0))
            overlap = min(lam.max() * (1 + z), 9200) - max(lam.min() * (1 + z), 3800)
            if overlap < 0.4 * (9200 - 3800):
                continue
            try:
                s = simulate_spectrum(rest, redshift=z, snr=float(np.exp(rng.uniform(np.log(5), np.log(60)))),
                                      resolution=float(rng.uniform(1000, 3000)), ebv=float(rng.uniform(0, 0.3)),
                                      rng=rng)
            except AstroVLMError:
                continue
            s.meta["SIMULAT"] = True
            out.append((s, z, "galaxy"))
            made += 1
    return out


def sample_set(ds, split: str, simulated: bool) -> list[tuple[Spectrum, float, str]]:
    return [(read_spectrum(ds.path(r.path)), float(r.redshift), r.spectral_class) for r in ds.spectra
            if r.split == split and r.simulated == simulated and not is_reserved(r.spectrum_id, r.template)]


def embed_each(enc, specs) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (zeros where the encoder refuses a spectrum: too little of it on its
    3600-10400 Angstrom grid) and which ones it took."""
    out, ok = np.zeros((len(specs), enc.embed_dim), dtype=np.float32), np.zeros(len(specs), dtype=bool)
    for i, s in enumerate(specs):
        try:
            out[i] = enc.encode_spectra([s])[0]
            ok[i] = True
        except AstroVLMError:
            pass
    return out, ok


def z_metrics(z_true: np.ndarray, z_pred: np.ndarray, prefix: str) -> dict:
    dz = np.abs(z_pred - z_true) / (1 + z_true)
    var = ((z_true - z_true.mean()) ** 2).sum()
    r2 = 1 - ((z_pred - z_true) ** 2).sum() / var if var > 0 else float("nan")
    return {f"{prefix}_r2": round(float(r2), 4), f"{prefix}_outlier_rate": round(float((dz > OUTLIER).mean()), 4),
            f"{prefix}_median_abs_dz_1pz": float(f"{np.median(dz):.3g}")}


def knn(sims: np.ndarray, z_gal: np.ndarray, c_gal: np.ndarray, classes: list[str], k: int = 64):
    from astrovlm.encoders.probes import knn_regression

    k = min(k, sims.shape[1])
    z = knn_regression(sims, z_gal, k)
    idx = np.argsort(-sims, axis=1)[:, :k]
    w = 1 / np.clip(1 - np.take_along_axis(sims, idx, 1), 1e-6, None)
    votes = np.zeros((len(sims), len(classes)))
    for j in range(k):
        np.add.at(votes, (np.arange(len(sims)), c_gal[idx[:, j]]), w[:, j])
    return z, votes.argmax(1)


def fused_class(fit_loglik: np.ndarray, zs_prob: np.ndarray, temperature: float) -> np.ndarray:
    """argmax of log p_zeroshot + loglik_template / T (T = inf: zero-shot alone)."""
    return (np.log(np.clip(zs_prob, 1e-12, 1)) + fit_loglik / temperature).argmax(1)


def penalty_sweep(args, penalties=(0.0, 0.3, 1.0, 3.0, 10.0)):
    """VAL only: the template fit's class accuracy and outlier rate for each penalty."""
    ds = SkyDataset(args.dataset or sample_dir())
    templates = train_templates(ds.root)
    items = (sample_set(ds, "val", False) + sample_set(ds, "val", True)
             + fresh_galaxies(ds, "val", args.galaxies_per_template, np.random.default_rng(0)))
    fig = {}
    for lam in penalties:
        acc, out = [], []
        for s, z, c in items:
            try:
                f = fit_spectrum(s, templates, uncovered_penalty=lam)
                acc.append(f.spectral_class == c)
                out.append(abs(f.z - z) / (1 + z) > OUTLIER)
            except AstroVLMError:
                acc.append(False)
                out.append(True)
        fig[f"val_penalty_{lam:g}_class_accuracy"] = round(float(np.mean(acc)), 4)
        fig[f"val_penalty_{lam:g}_outlier_rate"] = round(float(np.mean(out)), 4)
        print(lam, fig[f"val_penalty_{lam:g}_class_accuracy"], fig[f"val_penalty_{lam:g}_outlier_rate"], flush=True)
    write_results("redshift_penalty_val", fig, n=len(items))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", help="dataset folder (default: the sample sky)")
    ap.add_argument("--model", help="encoder folder (default: shipped)")
    ap.add_argument("--galaxies-per-template", type=int, default=15)
    ap.add_argument("--penalty-sweep", action="store_true",
                    help="instead: class accuracy and outlier rate on VAL for each uncovered-pixel penalty "
                         "(how template_fit.UNCOVERED_PENALTY was chosen); writes redshift_penalty_val.json")
    args = ap.parse_args(argv)
    if args.penalty_sweep:
        return penalty_sweep(args)
    from astrovlm.encoders import AlignedEncoder
    from astrovlm.encoders.zeroshot import DEFAULT_LABELS, predict

    ds = SkyDataset(args.dataset or sample_dir())
    classes = DEFAULT_LABELS["spectrum"]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    templates = train_templates(ds.root)
    fig = {"templates_n": len(templates), "templates_build_s": round(time.perf_counter() - t0, 2),
           "templates_fingerprint": templates.fingerprint, "outlier_threshold_dz_1pz": OUTLIER}

    sets = {}
    for split in ("val", "test"):
        sets[f"{split}_real"] = sample_set(ds, split, simulated=False)
        sets[f"{split}_simulated_sample"] = sample_set(ds, split, simulated=True)
        sets[f"{split}_simulated_galaxies_z0to1"] = fresh_galaxies(ds, split, args.galaxies_per_template, rng)
    gallery = (sample_set(ds, "train", False) + sample_set(ds, "train", True)
               + fresh_galaxies(ds, "train", args.galaxies_per_template, rng))

    enc = AlignedEncoder.from_pretrained(args.model)
    g_emb, g_ok = embed_each(enc, [s for s, _, _ in gallery])
    g_emb = g_emb[g_ok]
    g_z = np.array([z for _, z, _ in gallery])[g_ok]
    g_c = np.array([classes.index(c) for _, _, c in gallery])[g_ok]
    fig["knn_gallery_n"] = int(g_ok.sum())
    chance_z = float(np.median(g_z))
    majority = int(np.bincount(g_c, minlength=len(classes)).argmax())

    fit_seconds, n_fits, per_set = 0.0, 0, {}
    for name, items in sets.items():
        specs = [s for s, _, _ in items]
        z_true = np.array([z for _, z, _ in items])
        c_true = np.array([classes.index(c) for _, _, c in items])
        fits, t = [], time.perf_counter()
        for s in specs:
            try:
                fits.append(fit_spectrum(s, templates))
            except AstroVLMError as exc:   # counted as a miss, not dropped
                print(f"{name}: no fit: {exc}", file=sys.stderr)
                fits.append(None)
        fit_seconds += time.perf_counter() - t
        n_fits += len(specs)
        z_fit = np.array([f.z if f else chance_z for f in fits])
        c_fit = np.array([classes.index(f.spectral_class) if f else majority for f in fits])
        loglik = np.full((len(items), len(classes)), -1e6)
        for i, f in enumerate(fits):
            if f:
                best = min(m.score for m in f.per_class.values())
                for c, m in f.per_class.items():
                    loglik[i, classes.index(c)] = -(m.score - best) / 2
        # Spectra the encoder refuses count as misses of the references (chance z, uniform p).
        emb, ok = embed_each(enc, specs)
        zs_prob = np.full((len(specs), len(classes)), 1 / len(classes))
        z_knn, c_knn = np.full(len(specs), chance_z), np.full(len(specs), majority)
        if ok.any():
            zs_prob[ok] = predict(enc, emb[ok], classes, "spectrum")
            z_knn[ok], c_knn[ok] = knn(emb[ok] @ g_emb.T, g_z, g_c, classes)
        fig[f"{name}_encoder_refused_n"] = int((~ok).sum())
        fig[f"{name}_n"] = len(items)
        fig.update(z_metrics(z_true, z_fit, f"{name}_templatefit"))
        fig[f"{name}_templatefit_class_accuracy"] = round(float((c_fit == c_true).mean()), 4)
        zwarn = np.array([(f.zwarn if f else 1) != 0 for f in fits])
        fig[f"{name}_templatefit_zwarn_rate"] = round(float(zwarn.mean()), 4)
        good = ~zwarn
        if good.any():
            dz = np.abs(z_fit - z_true) / (1 + z_true)
            fig[f"{name}_templatefit_outlier_rate_zwarn0"] = round(float((dz[good] > OUTLIER).mean()), 4)
        fig.update(z_metrics(z_true, z_knn, f"{name}_knn"))
        fig[f"{name}_knn_class_accuracy"] = round(float((c_knn == c_true).mean()), 4)
        fig[f"{name}_zeroshot_class_accuracy"] = round(float((zs_prob.argmax(1) == c_true).mean()), 4)
        fig.update(z_metrics(z_true, np.full_like(z_true, chance_z), f"{name}_chance"))
        fig[f"{name}_chance_class_accuracy_majority"] = round(float((c_true == majority).mean()), 4)
        per_set[name] = (loglik, zs_prob, c_true)
        print(f"{name}: n={len(items)} fit acc {fig[f'{name}_templatefit_class_accuracy']} "
              f"outliers {fig[f'{name}_templatefit_outlier_rate']} R2 {fig[f'{name}_templatefit_r2']}", flush=True)
    fig["chance_class_accuracy_uniform"] = round(1 / len(classes), 4)

    # Fusion: T chosen on VAL (all val sets together), reported on TEST.
    def pooled(split):
        parts = [per_set[n] for n in per_set if n.startswith(split + "_")]
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))

    val_ll, val_p, val_c = pooled("val")
    test_ll, test_p, test_c = pooled("test")
    acc = {t: float((fused_class(val_ll, val_p, t) == val_c).mean()) for t in TEMPERATURES}
    acc[float("inf")] = float((val_p.argmax(1) == val_c).mean())
    best_t = max(acc, key=lambda t: (acc[t], t))            # ties: the softer one
    fig["fusion_val_accuracy_by_temperature"] = {str(t): round(a, 4) for t, a in acc.items()}
    fig["fusion_temperature_chosen_on_val"] = best_t if np.isfinite(best_t) else "inf (zero-shot alone)"
    pred = test_p.argmax(1) if not np.isfinite(best_t) else fused_class(test_ll, test_p, best_t)
    fig["fusion_test_class_accuracy"] = round(float((pred == test_c).mean()), 4)
    fig["fusion_test_templatefit_alone_class_accuracy"] = round(float((test_ll.argmax(1) == test_c).mean()), 4)
    fig["fusion_test_zeroshot_alone_class_accuracy"] = round(float((test_p.argmax(1) == test_c).mean()), 4)
    fig["fusion_test_n"] = int(len(test_c))

    fig["templatefit_spectra_per_s"] = round(n_fits / fit_seconds, 3)
    fig["templatefit_seconds_per_spectrum"] = round(fit_seconds / n_fits, 3)
    fig["timing_note"] = (f"wall clock on {os.cpu_count()} CPU cores shared with other jobs "
                          f"(load average {os.getloadavg()[0]:.1f} at the end)")
    fig["simulated_note"] = "sets named simulated_* are simulated spectra (astrovlm.data.simulate), labelled so"
    write_results("redshift", fig, n=n_fits)


if __name__ == "__main__":
    main()
