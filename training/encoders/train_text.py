"""Stage 3 of the encoder recipe: the text head, retrained against locked image and spectrum towers.

After stage 2, image and spectrum embeddings are what the index stores and what the
assistant's projectors read. Here both are locked (the script checks they come out
bit-identical) and only the text head trains, from a fresh seed, so that text meets them
better. The reason is the catalog card: a long text whose frozen MiniLM features are mostly
name, coordinates and magnitudes. Stage 1 paired cards with images, and its head learned the
380 training cards by heart rather than how to read one: on VAL, a card retrieved its image
less well than the card's own type phrase did ("a spiral galaxy (Hubble type Sc)", 0.42 vs
0.56 top-10%). One more term fixes that: a card's embedding should agree with the centroid
of its object's plain captions (class, names, type, Hubble type, size; the centroid is held
fixed within a step). Continuing stage 1's head, or tuning MiniLM itself with LoRA, did not
(training/encoders/README.md has the VAL table). The other terms of stage 1 stay, so
captions and class prompts stay aligned with both locked towers; the zero-shot temperatures
are refitted on VAL. TEST is never read.

Run:  python training/encoders/train_text.py --config training/encoders/text.yaml
  or: accelerate launch training/encoders/train_text.py --config training/encoders/text.yaml
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train as stage1  # noqa: E402  (the stage-1 recipe's data and evaluation helpers)

from astrovlm.config import sample_dir  # noqa: E402
from astrovlm.data.records import SkyDataset  # noqa: E402
from astrovlm.encoders import zeroshot  # noqa: E402
from astrovlm.encoders.captions import spectrum_captions  # noqa: E402
from astrovlm.encoders.model import AlignedEncoder  # noqa: E402
from astrovlm.encoders.probes import match_ranks  # noqa: E402
from astrovlm.encoders.towers import ProjectionHead  # noqa: E402
from astrovlm.encoders.zeroshot import DEFAULT_LABELS  # noqa: E402

TRAINED = ("text_head.",)


class CardToImage:
    """VAL catalog card -> image retrieval: PAPERCLIP's top-10% accuracy (one image per object)."""

    def __init__(self, ds, val_items, val_feats, model, cache):
        cards = {p.object_id: p.text for p in ds.passages if p.kind == "catalog_card"}
        first = {}
        for i, (_, obj, _) in enumerate(val_items):
            first.setdefault(obj.object_id, i)
        objs = [o for o in first if o in cards]
        with torch.no_grad():
            self.gallery = model.embed_image_features(val_feats[[first[o] for o in objs], 0])
        self.cards = cache([cards[o] for o in objs])
        self.top = max(1, int(np.ceil(0.1 * len(objs))))

    @torch.no_grad()
    def top10pct(self, model) -> float:
        ranks = match_ranks((model.embed_text_features(self.cards) @ self.gallery.T).numpy())
        return float((ranks < self.top).mean()) if len(ranks) else float("nan")


def refit_image_calibration(core, ds, val_items, views: int) -> dict:
    """zero_shot.json for the new text head: the softmax temperature of the library's pooled
    image scores (``zeroshot.class_scores``, ``views`` test-time views), fitted on VAL."""
    labels = DEFAULT_LABELS["image"]
    emb = core.encode_images([ds.path(rec.path) for rec, _, _ in val_items], views=views, progress=True)
    truth = np.array([labels.index(obj.coarse_class) for _, obj, _ in val_items])
    temp = stage1.fit_temperature(zeroshot.class_scores(core, emb, labels, "image"), truth)
    return {"fitted_on": f"validation split, {len(val_items)} images (training/encoders/train_text.py)",
            "image": {"temperature": round(temp, 6), "views": views,
                      "scores": "zeroshot.class_scores: logsumexp over SUBCLASS_PHRASES"}}


def main(argv=None):
    args = stage1.stage_args(argv, __doc__, "text.yaml", "stage-2", "loss_weights.card_consistency=0")
    cfg, out_dir, run_dir = stage1.stage_config(args)
    s1_cfg = yaml.safe_load(stage1.resolve_path(cfg["stage1_config"]).read_text())
    accelerator = Accelerator()
    rng = stage1.seed_everything(cfg["seed"] + accelerator.process_index)
    t0 = time.time()

    ds = SkyDataset(cfg["dataset"] or sample_dir())
    model = AlignedEncoder.from_pretrained(stage1.resolve_path(cfg["init_from"]))
    model.eval()
    base_fingerprint = model.fingerprint
    # a fresh text head, seeded after loading: the recipe gives the same result whichever
    # text head the folder held (a stage-2 or a stage-3 folder)
    torch.manual_seed(cfg["seed"] + accelerator.process_index)
    head = model.config["head"]
    model.text_head = ProjectionHead(model.config["text_tower"]["feature_dim"], model.embed_dim, head["hidden"],
                                     head["dropout"])
    locked = stage1.lock_all_but(model, TRAINED)

    # locked towers: their embeddings of the training data are constants, computed once
    train_items, val_items = stage1.image_items(ds, "train"), stage1.image_items(ds, "val")
    views = s1_cfg["image"]["views_per_image"] if cfg["image"]["views_per_image"] is None \
        else cfg["image"]["views_per_image"]
    train_feats, val_feats = stage1.image_feature_cache(model, ds, train_items, val_items, views,
                                                        s1_cfg["seed"], run_dir, accelerator.print)
    sp_cfg = cfg["spectrum"]
    train_spec, val_spec = stage1.spectrum_templates(ds, "train"), stage1.spectrum_templates(ds, "val")
    pool = stage1.SpectrumPool(train_spec, sp_cfg, rng, sp_cfg["pool_per_template"], model.spectrum_grid)
    with torch.no_grad():
        img = model.embed_image_features(train_feats.flatten(0, 1)).view(len(train_items), views, -1)
        spec = torch.stack([model.embed_spectra(pool.x[t]) for t in range(len(pool.x))])
    cards = {p.object_id: p.text for p in ds.passages if p.kind == "catalog_card"}
    carded = [i for i, (_, obj, caps) in enumerate(train_items)   # image_captions puts the card last
              if obj.object_id in cards and caps[-1] == cards[obj.object_id] and len(caps) > 1]
    accelerator.print(f"train: {len(train_items)} images ({len(carded)} with a catalog card), {len(train_spec)} "
                      f"real spectra; val: {len(val_items)} images, {len(val_spec)} spectra; stage 2: "
                      f"{base_fingerprint}")
    cache = stage1.TextCache(model)
    cache.add([c for _, _, caps in train_items for c in caps] + stage1.prompt_texts("image")
              + stage1.prompt_texts("spectrum")
              + [c for rec, _, name in train_spec for z in stage1.caption_redshifts(sp_cfg, rec)
                 for c in spectrum_captions(rec.spectral_class, rec.subclass, z, name)])
    card_val = CardToImage(ds, val_items, val_feats, model, cache)
    scale = model.logit_scale.exp().clamp(max=100).detach()

    model, core, opt, sched, clip_loss, trainable = stage1.prepare_training(accelerator, model, cfg)
    w = cfg["loss_weights"]
    img_labels = torch.tensor([DEFAULT_LABELS["image"].index(o.coarse_class) for _, o, _ in train_items])
    history = []
    core.eval()
    core.text_head.train()
    bar = tqdm(range(cfg["steps"]), desc="training text", unit="step")
    for step in bar:
        losses = {}
        bs = min(cfg["image"]["batch_size"], len(train_items))
        idx = rng.choice(len(train_items), size=bs, replace=False)
        caps = stage1.unique_batch([train_items[i][2] for i in idx], rng, cfg["image"]["card_weight"])
        txt = core.embed_text_features(cache(caps))
        im = img[idx, rng.integers(views, size=len(idx))]
        losses["loss_image_text"] = clip_loss(im, txt, scale)
        cls_img = stage1.class_embeddings(core, cache, "image")
        losses["loss_image_prompts"] = F.cross_entropy(scale * im @ cls_img.T, img_labels[idx])
        if w.get("card_consistency") and carded:
            cidx = rng.choice(carded, size=min(bs, len(carded)), replace=False)
            card = core.embed_text_features(cache([train_items[i][2][-1] for i in cidx]))
            with torch.no_grad():   # the centroid of the object's plain captions, held fixed
                target = torch.stack([F.normalize(core.embed_text_features(cache(train_items[i][2][:-1])).mean(0),
                                                  dim=-1) for i in cidx])
            losses["loss_card_consistency"] = (1 - (card * target).sum(-1)).mean()
        tidx = rng.choice(len(train_spec), size=sp_cfg["batch_size"], replace=len(train_spec) < sp_cfg["batch_size"])
        j = torch.from_numpy(rng.integers(pool.n, size=len(tidx)))
        t = torch.as_tensor(tidx)
        sp, zs = spec[t, j], pool.z[t, j]
        scaps = [spectrum_captions(train_spec[i][0].spectral_class, train_spec[i][0].subclass, float(z),
                                   train_spec[i][2]) for i, z in zip(tidx, zs)]
        stx = core.embed_text_features(cache(stage1.unique_batch(scaps, rng, 0.0)))
        losses["loss_spectrum_text"] = clip_loss(sp, stx, scale)
        cls_sp = stage1.class_embeddings(core, cache, "spectrum")
        sp_labels = torch.tensor([DEFAULT_LABELS["spectrum"].index(train_spec[i][0].spectral_class) for i in tidx])
        losses["loss_spectrum_prompts"] = F.cross_entropy(scale * sp @ cls_sp.T, sp_labels)
        row = stage1.optimizer_step(accelerator, opt, sched, trainable, losses, w, step)
        if (step + 1) % cfg["eval_every"] == 0 or step + 1 == cfg["steps"]:
            metrics = stage1.evaluate(core, cache, val_feats, val_items, val_spec)
            core.eval()   # evaluate() leaves every module in training mode
            row.update({k: v for k, v in metrics.items() if not k.startswith("_")})
            row["val_card_to_image_top10pct"] = card_val.top10pct(core)
            core.text_head.train()
            stage1.log_row(accelerator, row)
        history.append(row)
        bar.set_postfix(loss=f"{row['loss_total']:.3f}")

    final = metrics   # the evaluation of the last step (always run) holds the val similarities
    core.eval()
    stage1.check_locked(core, locked, "stage 3")
    zs = core.config["zero_shot"]
    if "_image_sims" in final:
        zs["temperature_image"] = stage1.fit_temperature(*final["_image_sims"])
    if "_spectrum_sims" in final:
        zs["temperature_spectrum"] = stage1.fit_temperature(*final["_spectrum_sims"])
    last = history[-1]
    core.config["training"]["stage3"] = {
        "recipe": "training/encoders/train_text.py", "config": cfg, "seed": cfg["seed"],
        "stage2_fingerprint": base_fingerprint, "train_images": len(train_items), "train_cards": len(carded),
        "val": {k: last[k] for k in last if k.startswith("val_")},
        "minutes": round((time.time() - t0) / 60, 1),
    }
    core.reset_fingerprints()
    # text embeddings changed, so the pooled image temperature is refitted (not carried over)
    core.zero_shot_calibration = {"encoder_fingerprint": core.fingerprint,
                                  **refit_image_calibration(core, ds, val_items, cfg["zero_shot_views"])}
    if accelerator.is_main_process:
        stage1.save_run(core, out_dir, run_dir, history, "_text")
        accelerator.print(f"saved {out_dir} ({core.fingerprint}) in {core.config['training']['stage3']['minutes']} "
                          f"min; val: {core.config['training']['stage3']['val']}; zero-shot "
                          f"{core.zero_shot_calibration['image']}")


if __name__ == "__main__":
    sys.exit(main())
