"""Stage 2 of the encoder recipe: the spectrum tower, trained against the locked shared space.

Stage 1 (train.py) trains all heads together. Here, as in LiT ("locked-image tuning"), the
image and text heads and the logit scale of the stage-1 folder are frozen and a new,
position-aware spectrum tower (derived continuum-relative and wavelength-coordinate
inputs, wavelength-binned pooling; see ``SpectrumCNN``) is trained from scratch to meet
them. Image and text embeddings therefore stay bit-identical: the index's image and text
vectors, the zero-shot image calibration and the assistant's image projector all remain
valid; only spectrum vectors change.

The tower reads one log-wavelength grid from the ultraviolet to the K band (1000-26000
Angstrom; masked where a spectrum has no data). Its data: simulated observations of the
sample sky's 36 real optical training templates (redshift, S/N, resolution, reddening;
stage 1's simulator), and real spectra beyond the sample sky (``real_spectra``: the SpeX
Prism Library's near-infrared M, L and T dwarfs, giants and galaxies, and the flux
standards; the outside set, the Sun and Vega never among them), each batch half of each.
Every spectrum gets a mild flux-calibration tilt, a power law in wavelength; a real one may
also lose one end of its coverage, as a user's spectrum of one band would. (Rest-frame
blends of neighbouring templates were tried and dropped: no better typing on val, worse
redshifts.) Choices are made on the VAL split: the sample's 9 real VAL templates and
simulated observations of them, and the real spectra of the VAL sources. TEST is never read.

Run:  python training/encoders/train_spectra.py --config training/encoders/spectra.yaml
  or: accelerate launch training/encoders/train_spectra.py --config training/encoders/spectra.yaml
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_spectra  # noqa: E402  (SpeX and the flux standards on the tower's grid)
import train as stage1  # noqa: E402  (the stage-1 recipe's data and evaluation helpers)

from astrovlm.config import sample_dir  # noqa: E402
from astrovlm.data.records import SkyDataset  # noqa: E402
from astrovlm.encoders.captions import spectrum_captions  # noqa: E402
from astrovlm.encoders.model import AlignedEncoder  # noqa: E402
from astrovlm.encoders.probes import knn_regression  # noqa: E402
from astrovlm.encoders.towers import ProjectionHead, SpectrumCNN  # noqa: E402
from astrovlm.encoders.zeroshot import DEFAULT_LABELS  # noqa: E402

TRAINED = ("spectrum_tower.", "spectrum_head.", "redshift_head.")
# Classes that one spectrum can rightly be given together: in the class-prompt term a
# spectrum's compatible classes are not counted against it (an M dwarf is an M star; a
# giant here is a K or M giant; a hot subdwarf is a hot O/B-type star).
COMPATIBLE = {"M dwarf": {"M star", "giant", "carbon star"}, "M star": {"M dwarf", "giant"},
              "giant": {"K star", "M star", "M dwarf", "carbon star"}, "K star": {"giant"},
              "carbon star": {"giant", "M dwarf"}, "hot subdwarf": {"O/B star"},
              "O/B star": {"hot subdwarf"}}


# ----- data ----------------------------------------------------------------------------------
def tilt(x: torch.Tensor, rng, max_slope: float, ln_span: float) -> torch.Tensor:
    """Multiply each flux by (lambda / lambda_mid)^alpha, |alpha| <= max_slope, and
    renormalise to the median as spectrum_to_tensor does: flux-calibration and reddening
    errors that the simulator's E(B-V) alone does not span."""
    if max_slope <= 0:
        return x
    flux, mask = x[:, 0], x[:, 1]
    u = torch.linspace(-0.5, 0.5, x.shape[-1]) * ln_span
    alpha = torch.from_numpy(rng.uniform(-max_slope, max_slope, size=len(x))).float()[:, None]
    f = flux * torch.exp(alpha * u)
    med = torch.nanmedian(torch.where(mask > 0, f.abs(), torch.nan), dim=1).values.clamp(min=1e-6)[:, None]
    return torch.stack([(f / med).clamp(-10, 50) * mask, mask], dim=1)


def crop_coverage(x: torch.Tensor, rng, p: float, max_fraction: float) -> torch.Tensor:
    """With probability ``p``, mask one end of a spectrum's coverage (up to ``max_fraction``
    of its good pixels) and renormalise: the tower then also meets partial spectra."""
    if p <= 0:
        return x
    out = x.clone()
    for i in range(len(x)):
        good = torch.nonzero(x[i, 1] > 0).squeeze(-1)
        if len(good) < 200 or rng.random() >= p:
            continue
        cut = int(len(good) * rng.uniform(0.1, max_fraction))
        drop = good[:cut] if rng.random() < 0.5 else good[len(good) - cut:]
        out[i, :, drop] = 0
        kept = out[i, 0][out[i, 1] > 0]
        out[i, 0] = (out[i, 0] / kept.abs().median().clamp(min=1e-6)).clamp(-10, 50) * out[i, 1]
    return out


def compatible_mask(labels: list[str]) -> torch.Tensor:
    """(n, n) True where class j is compatible with class i (left out of i's negatives)."""
    return torch.tensor([[b in COMPATIBLE.get(a, ()) for b in labels] for a in labels])


def prompt_loss(emb, target, cls, compatible, scale) -> torch.Tensor:
    logits = (scale * emb @ cls.T).masked_fill(compatible[target], -torch.inf)
    return F.cross_entropy(logits, target)


def redshift_neighbours(emb, labels, log1pz, scale, sigma: float) -> torch.Tensor:
    """Rank-N-Contrast-style term: among spectra of the same class in the batch, the
    softmax over embedding similarities should follow closeness in ln(1 + z). The captions
    bin redshift (0.01, then 0.1) and CLIP pulls a bin together; this orders spectra within
    it, which is what a k-NN redshift estimate reads. Stars (all near z = 0) are left out."""
    same = labels[:, None] == labels[None, :]
    same.fill_diagonal_(False)
    spread = (log1pz[:, None] - log1pz[None, :]).abs()
    anchors = same.any(1) & (log1pz > 0.01)
    if anchors.sum() == 0:
        return emb.sum() * 0
    target = torch.where(same, -spread / sigma, -torch.inf)[anchors].softmax(1)
    logits = torch.where(same, scale * emb @ emb.T, -torch.inf)[anchors]
    logp = logits.log_softmax(1)
    return -(target * torch.where(target > 0, logp, 0)).sum(1).mean()


# ----- evaluation ------------------------------------------------------------------------------
@torch.no_grad()
def val_simulated(model, pool, val_templates, cfg, cls_sp, rng, grid, per_template=20, k=64) -> dict:
    """On simulated observations of the VAL templates: AstroCLIP's redshift probe
    (distance-weighted k-NN against the training pool) and zero-shot typing accuracy."""
    xs, zs, labels = [], [], []
    for rec, spec, _ in val_templates:
        for _ in range(per_template):
            x, z = stage1.draw_spectrum(rec, spec, cfg, rng, grid)
            xs.append(x)
            zs.append(z)
            labels.append(DEFAULT_LABELS["spectrum"].index(rec.spectral_class))
    q = model.embed_spectra(torch.stack(xs))
    zq = np.array(zs)
    typing = float(((q @ cls_sp.T).argmax(1).numpy() == np.array(labels)).mean())
    j = torch.arange(0, pool.n, max(1, pool.n // 40))
    g = torch.cat([model.embed_spectra(pool.x[t, j]) for t in range(len(pool.x))]).numpy()
    zg = pool.z[:, j].reshape(-1).numpy()
    zhat = knn_regression(q.numpy() @ g.T, zg, k)
    r2 = float(1 - ((zhat - zq) ** 2).sum() / ((zq - zq.mean()) ** 2).sum())
    return {"val_redshift_knn_r2": r2, "val_simulated_typing_acc": typing}


@torch.no_grad()
def val_real(model, real_val, cache) -> dict:
    """Zero-shot typing of the VAL sources' real spectra over the classes VAL holds (three or
    more spectra), as ``benchmarks/outside_eval.py`` scores the outside set."""
    if real_val is None or not len(real_val):
        return {}
    counts = Counter(real_val.labels)
    labels = sorted(c for c, n in counts.items() if n >= 3)
    keep = [i for i, lab in enumerate(real_val.labels) if lab in labels]
    emb = model.embed_spectra(real_val.x[keep])
    pred = (emb @ stage1.class_embeddings(model, cache, "spectrum", labels).T).argmax(1).numpy()
    truth = np.array([labels.index(real_val.labels[i]) for i in keep])
    per_class = [float((pred[truth == k] == k).mean()) for k in range(len(labels))]
    return {"val_real_zeroshot_acc": float((pred == truth).mean()),
            "val_real_zeroshot_balanced_acc": float(np.mean(per_class))}


# ----- main ------------------------------------------------------------------------------------
def main(argv=None):
    args = stage1.stage_args(argv, __doc__, "spectra.yaml", "stage-1", "spectrum.tilt=0.5")
    cfg, out_dir, run_dir = stage1.stage_config(args)
    accelerator = Accelerator()
    # each process draws its own batches (process 0 = the single-process run); DDP gives
    # every process process 0's initial weights
    rng = stage1.seed_everything(cfg["seed"] + accelerator.process_index)
    t0 = time.time()

    ds = SkyDataset(cfg["dataset"] or sample_dir())
    model = AlignedEncoder.from_pretrained(stage1.resolve_path(cfg["init_from"]))
    base_fingerprint = model.fingerprint
    # A fresh spectrum tower, head and redshift readout on the locked space. Seeded here, so
    # their initial weights do not depend on which tower the folder held (loading builds one):
    # run on a stage-1 or a stage-2 folder, the recipe gives the same result.
    torch.manual_seed(cfg["seed"] + accelerator.process_index)
    model.config["spectrum_tower"].update(cfg["spectrum_tower"])
    st, head = model.config["spectrum_tower"], model.config["head"]
    grid = model.spectrum_grid
    ln_span = math.log(grid[-1] / grid[0])   # for the tilt's power law
    model.spectrum_tower = SpectrumCNN(tuple(st["channels"]), st["kernel"], derived_inputs=st["derived_inputs"],
                                       position_bins=st["position_bins"], continuum_pixels=st["continuum_pixels"])
    model.spectrum_head = ProjectionHead(model.spectrum_tower.out_dim, model.embed_dim, head["hidden"],
                                         head["dropout"])
    model.redshift_head = torch.nn.Linear(model.embed_dim, 1)
    locked = stage1.lock_all_but(model, TRAINED)

    sp_cfg = cfg["spectrum"]
    train_spec, val_spec = stage1.spectrum_templates(ds, "train"), stage1.spectrum_templates(ds, "val")
    train_items = stage1.image_items(ds, "train")
    pairs = [(i, j) for i, (_, o, _) in enumerate(train_items)
             for j, (r, _, _) in enumerate(train_spec) if r.object_id == o.object_id]
    accelerator.print(f"train: {len(train_spec)} real spectra, {len(pairs)} image-spectrum pairs; "
                      f"val: {len(val_spec)} real spectra; stage 1: {base_fingerprint}")
    pool = stage1.SpectrumPool(train_spec, sp_cfg, rng, sp_cfg["pool_per_template"], grid)
    real_cfg = cfg.get("real") or {}
    real_train = real_val = None
    if real_cfg.get("sources"):
        real_train, real_val, real_summary = real_spectra.load(grid, real_cfg["val_fraction"],
                                                               tuple(real_cfg["sources"]))
        accelerator.print(f"real spectra beyond the sample: {real_summary}")
    labels_all = list(DEFAULT_LABELS["spectrum"])
    labels_all += sorted({c for c in (real_train.labels if real_train else [])} - set(labels_all))
    compatible = compatible_mask(labels_all)
    real_caps = [] if real_train is None else [
        spectrum_captions(c, sub, 0.0, name, band) for c, sub, name, band in
        zip(real_train.labels, real_train.subtypes, real_train.names, real_train.bands)]
    real_target = None if real_train is None else torch.tensor([labels_all.index(c) for c in real_train.labels])
    real_by_class = {} if real_train is None else {
        c: [i for i, lab in enumerate(real_train.labels) if lab == c] for c in set(real_train.labels)}
    cache = stage1.TextCache(model)
    cache.add(stage1.prompt_texts("spectrum") + [c for caps in real_caps for c in caps]
              + [c for rec, _, name in train_spec for z in stage1.caption_redshifts(sp_cfg, rec)
                 for c in spectrum_captions(rec.spectral_class, rec.subclass, z, name)])
    with torch.no_grad():   # locked: the class prompts and the paired images are constants here
        cls_sp = stage1.class_embeddings(model, cache, "spectrum")
        cls_all = stage1.class_embeddings(model, cache, "spectrum", labels_all)
        pair_img = None
        if len(pairs) >= 2:
            plain = stage1.cache_image_features(model, ds, [train_items[i] for i, _ in pairs], 1,
                                                np.random.default_rng(cfg["seed"]), "paired images")
            pair_img = model.embed_image_features(plain[:, 0])
    scale = model.logit_scale.exp().clamp(max=100).detach()

    model, core, opt, sched, clip_loss, trainable = stage1.prepare_training(accelerator, model, cfg)
    w = cfg["loss_weights"]
    history = []
    core.eval()
    core.spectrum_tower.train()
    core.spectrum_head.train()
    bar = tqdm(range(cfg["steps"]), desc="training spectra", unit="step")
    for step in bar:
        losses = {}
        tidx = rng.choice(len(train_spec), size=sp_cfg["batch_size"], replace=len(train_spec) < sp_cfg["batch_size"])
        xs, zs = pool.sample(tidx, rng)
        xs = tilt(xs, rng, sp_cfg["tilt"], ln_span)
        scaps = [spectrum_captions(train_spec[i][0].spectral_class, train_spec[i][0].subclass, float(z),
                                   train_spec[i][2]) for i, z in zip(tidx, zs)]
        labels = torch.tensor([labels_all.index(train_spec[i][0].spectral_class) for i in tidx])
        n_sim = len(tidx)
        if real_train is not None:  # class-balanced: every class as often, its spectra at random
            classes = rng.choice(sorted(real_by_class), size=real_cfg["per_batch"])
            ridx = [int(rng.choice(real_by_class[k])) for k in classes]
            xr = crop_coverage(tilt(real_train.x[ridx], rng, sp_cfg["tilt"], ln_span), rng,
                               real_cfg["crop_p"], real_cfg["crop_max"])
            xs = torch.cat([xs, xr])
            scaps += [real_caps[i] for i in ridx]
            labels = torch.cat([labels, real_target[ridx]])
        sp_all = core.embed_spectra(xs)
        sp = sp_all[:n_sim]
        with torch.no_grad():
            stx = core.embed_text_features(cache(stage1.unique_batch(scaps, rng, 0.0)))
        losses["loss_spectrum_text"] = clip_loss(sp_all, stx, scale)
        losses["loss_spectrum_prompts"] = prompt_loss(sp_all, labels, cls_all, compatible, scale)
        labels = labels[:n_sim]
        losses["loss_redshift"] = F.mse_loss(core.redshift_head(sp).squeeze(-1), torch.log1p(zs))
        if w.get("redshift_neighbours"):
            losses["loss_redshift_neighbours"] = redshift_neighbours(sp, labels, torch.log1p(zs), scale,
                                                                     cfg["redshift_neighbours_sigma"])
        if pair_img is not None:
            pick = rng.permutation(len(pairs))[:8]
            psp, _ = pool.sample([pairs[k][1] for k in pick], rng)
            psp = core.embed_spectra(tilt(psp, rng, sp_cfg["tilt"], ln_span))
            losses["loss_image_spectrum"] = clip_loss(pair_img[pick], psp, scale)
        row = stage1.optimizer_step(accelerator, opt, sched, trainable, losses, w, step)
        if (step + 1) % cfg["eval_every"] == 0 or step + 1 == cfg["steps"]:
            metrics = stage1.evaluate(core, cache, None, [], val_spec)
            core.eval()   # evaluate() leaves every module in training mode
            row["val_spectrum_zeroshot_acc"] = metrics["val_spectrum_zeroshot_acc"]
            row.update(val_simulated(core, pool, val_spec, sp_cfg, cls_sp, np.random.default_rng(7), grid))
            row.update(val_real(core, real_val, cache))
            core.spectrum_tower.train()
            core.spectrum_head.train()
            stage1.log_row(accelerator, row)
        history.append(row)
        bar.set_postfix(loss=f"{row['loss_total']:.3f}")

    final = metrics   # the evaluation of the last step (always run) holds the val similarities
    core.eval()
    stage1.check_locked(core, locked, "stage 2")
    core.config["zero_shot"]["temperature_spectrum"] = stage1.fit_temperature(*final["_spectrum_sims"])
    last = history[-1]
    core.config["training"]["stage2"] = {
        "recipe": "training/encoders/train_spectra.py", "config": cfg, "seed": cfg["seed"],
        "stage1_fingerprint": base_fingerprint, "train_spectra_templates": len(train_spec),
        "val": {k: last[k] for k in ("val_spectrum_zeroshot_acc", "val_redshift_knn_r2",
                                     "val_simulated_typing_acc", "val_real_zeroshot_acc",
                                     "val_real_zeroshot_balanced_acc") if k in last},
        "real_spectra": real_summary if real_train is not None else None,
        "prompt_classes": labels_all,
        "minutes": round((time.time() - t0) / 60, 1),
    }
    stage1.carry_calibration(core, base_fingerprint)  # image embeddings unchanged (checked above)
    if accelerator.is_main_process:
        stage1.save_run(core, out_dir, run_dir, history, "_spectra")
        accelerator.print(f"saved {out_dir} ({core.fingerprint}) in {core.config['training']['stage2']['minutes']} "
                          f"min; val: {core.config['training']['stage2']['val']}")


if __name__ == "__main__":
    sys.exit(main())
