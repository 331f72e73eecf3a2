"""Stage 4 of the encoder recipe: a radio band for the image tower.

Radio continuum maps (FIRST, 1.4 GHz) look nothing like the optical images the image head
learned: frozen ImageNet features of them separate radio morphologies only so far
(``benchmarks/backbone_ab.py``), and the image head maps them all to one place (zero-shot
morphology at chance). This stage gives the image tower a band-aware head: radio images go
through the same frozen EfficientNet-Lite0 backbone and a projection head of their own
(``radio_head``) into the shared space. Everything else is locked (the script checks it
comes out bit-identical), so every optical image, spectrum and text embedding, the index's
vectors of them, the zero-shot calibration and the assistant's projectors stay valid.

Data: the FIRST radio-galaxy images of ``firstgalaxydata`` (FRI, FRII, compact, bent), the
package's own train split; its valid split is VAL; its test split is the outside set and is
never read here (``first.for_training``). Each image is read as ``first.to_pil`` makes it
(centre crop, percentile stretch, blanks at 0), in 4 quarter turns (the sky has no up).
Losses: ``ClipLoss`` against captions in plain words (several per class, none the
benchmark's prompts) and the class-prompt term over the radio classes
(``DEFAULT_LABELS["radio"]``, with the image prompt templates), as stage 1 does for optical
classes.

Run:  python training/encoders/train_radio.py --config training/encoders/radio.yaml
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train as stage1  # noqa: E402  (the stage-1 recipe's helpers)

from astrovlm.encoders.model import AlignedEncoder  # noqa: E402
from astrovlm.encoders.preprocess import dihedral_views, image_to_tensor  # noqa: E402
from astrovlm.encoders.towers import ProjectionHead  # noqa: E402
from astrovlm.encoders.zeroshot import DEFAULT_LABELS  # noqa: E402

TRAINED = ("radio_head.",)
# FIRST's classes -> astrovlm's radio labels
LABEL_OF = {"FRI": "FR I radio galaxy", "FRII": "FR II radio galaxy", "compact": "compact radio source",
            "bent": "bent-tail radio galaxy"}
# Captions in plain words, several per class (the class prompts are the labels' phrases)
CAPTIONS = {
    "FR I radio galaxy": ["a radio image of a galaxy with jets that fade with distance from the core",
                          "an FR I radio galaxy", "a core-brightened radio source with diffuse plumes",
                          "a low-power radio galaxy, brightest at its centre"],
    "FR II radio galaxy": ["a classical double radio source with edge-brightened lobes",
                           "an FR II radio galaxy", "a radio galaxy with two lobes that end in hot spots",
                           "a powerful radio galaxy, brightest at the tips of its lobes"],
    "compact radio source": ["an unresolved radio source", "a point-like radio source",
                             "a compact radio source, barely larger than the beam",
                             "a radio map with a single unresolved blob"],
    "bent-tail radio galaxy": ["a bent-tail radio galaxy", "a wide-angle tail radio galaxy in a cluster",
                               "a head-tail radio galaxy with jets swept back",
                               "a radio galaxy whose jets curve to one side"],
}


def load_features(model, records, views: int, desc: str) -> torch.Tensor:
    """(N, views, 1280) frozen backbone features of each image's quarter turns."""
    from astrovlm.data.sources import first

    out = []
    for i in tqdm(range(0, len(records), 16), desc=desc, unit="batch"):
        pixels = torch.stack([image_to_tensor(first.to_pil(r)) for r in records[i:i + 16]])
        with torch.no_grad():
            f = model.image_features(dihedral_views(pixels, views))
        out.append(f.view(len(pixels), views, -1))
    return torch.cat(out)


@torch.no_grad()
def val_accuracy(model, feats, truth, cls) -> dict:
    one = (model.embed_image_features(feats[:, 0], "radio") @ cls.T).argmax(1).numpy()
    mean = F.normalize(model.embed_image_features(feats.flatten(0, 1), "radio").view(*feats.shape[:2], -1)
                       .mean(1), dim=-1)
    four = (mean @ cls.T).argmax(1).numpy()
    bal = np.mean([(four[truth == k] == k).mean() for k in np.unique(truth)])
    return {"val_radio_zeroshot_acc": float((one == truth).mean()),
            "val_radio_zeroshot_acc_4views": float((four == truth).mean()),
            "val_radio_zeroshot_balanced_4views": float(bal)}


def main(argv=None):
    args = stage1.stage_args(argv, __doc__, "radio.yaml", "encoder", "steps=300")
    cfg, out_dir, run_dir = stage1.stage_config(args)
    accelerator = Accelerator()
    rng = stage1.seed_everything(cfg["seed"] + accelerator.process_index)
    t0 = time.time()
    from astrovlm.data.sources import first

    model = AlignedEncoder.from_pretrained(stage1.resolve_path(cfg["init_from"]))
    base_fingerprint = model.fingerprint
    torch.manual_seed(cfg["seed"] + accelerator.process_index)  # the fresh head, whatever the folder held
    head = model.config["head"]
    model.config["radio_tower"] = {
        "backbone": "the image tower's (frozen, shared)", "head": "its own projection head",
        "data": "FIRST radio-galaxy images (PyPI firstgalaxydata 0.2.1), the package's train split",
        "preprocess": "astrovlm.data.sources.first.to_pil (centre crop 150 px, 1-99.5 percentile stretch)"}
    model.radio_head = ProjectionHead(model.config["image_tower"]["feature_dim"], model.embed_dim,
                                      head["hidden"], head["dropout"])
    locked = stage1.lock_all_but(model, TRAINED)

    every = first.for_training(progress=True)
    train = [r for r in every if r.split == "train"][:cfg.get("max_images") or None]
    val = [r for r in every if r.split == "valid"][:cfg.get("max_images") or None]
    labels = DEFAULT_LABELS["radio"]
    y_train = torch.tensor([labels.index(LABEL_OF[r.label]) for r in train])
    y_val = np.array([labels.index(LABEL_OF[r.label]) for r in val])
    accelerator.print(f"FIRST train {len(train)}, val {len(val)}; encoder {base_fingerprint}")
    views = cfg["views"]
    f_train = load_features(model, train, views, "radio train features")
    f_val = load_features(model, val, views, "radio val features")
    cache = stage1.TextCache(model)
    cache.add(stage1.prompt_texts("image", labels)
              + [c for caps in CAPTIONS.values() for c in caps])
    with torch.no_grad():
        cls = stage1.class_embeddings(model, cache, "image", labels)  # the image prompts
        cap_emb = {lab: model.embed_text_features(cache(CAPTIONS[lab])) for lab in labels}
    scale = model.logit_scale.exp().clamp(max=100).detach()

    model, core, opt, sched, clip_loss, trainable = stage1.prepare_training(accelerator, model, cfg)
    core.eval()
    core.radio_head.train()
    history, w = [], cfg["loss_weights"]
    bar = tqdm(range(cfg["steps"]), desc="training radio", unit="step")
    for step in bar:
        idx = torch.from_numpy(rng.choice(len(train), size=cfg["batch_size"], replace=False))
        view = torch.from_numpy(rng.integers(views, size=len(idx)))
        emb = core.embed_image_features(f_train[idx, view], "radio")
        target = y_train[idx]
        # one caption per image; CLIP's negatives are the other images' captions, so same-class
        # pairs are soft: each class's captions are few, and the prompt term carries the class
        caps = torch.stack([cap_emb[labels[int(t)]][int(rng.integers(len(CAPTIONS[labels[int(t)]])))]
                            for t in target])
        losses = {"loss_radio_text": clip_loss(emb, caps, scale),
                  "loss_radio_prompts": F.cross_entropy(scale * emb @ cls.T, target)}
        row = stage1.optimizer_step(accelerator, opt, sched, trainable, losses, w, step)
        if (step + 1) % cfg["eval_every"] == 0 or step + 1 == cfg["steps"]:
            core.radio_head.eval()
            row.update(val_accuracy(core, f_val, y_val, cls))
            core.radio_head.train()
            stage1.log_row(accelerator, row)
        history.append(row)
        bar.set_postfix(loss=f"{row['loss_total']:.3f}")

    core.eval()
    stage1.check_locked(core, locked, "the radio stage")
    last = history[-1]
    core.config["training"]["radio"] = {
        "recipe": "training/encoders/train_radio.py", "config": cfg, "seed": cfg["seed"],
        "init_fingerprint": base_fingerprint, "train_images": len(train), "val_images": len(val),
        "val": {k: v for k, v in last.items() if k.startswith("val_")},
        "minutes": round((time.time() - t0) / 60, 1)}
    stage1.carry_calibration(core, base_fingerprint)  # optical image scores unchanged (checked)
    if accelerator.is_main_process:
        stage1.save_run(core, out_dir, run_dir, history, "_radio")
        accelerator.print(f"saved {out_dir} ({core.fingerprint}) in {core.config['training']['radio']['minutes']} "
                          f"min; val: {core.config['training']['radio']['val']}")


if __name__ == "__main__":
    sys.exit(main())
