"""Train the aligned encoders (image / spectrum / text heads + spectrum CNN) on the sample sky.

Top to bottom: load the train split, cache frozen backbone features (images: several sky
views each; captions: every phrasing once), then train with open_clip's ClipLoss under
accelerate, evaluate on the validation split, fit the zero-shot temperatures on it, and
save the folder (config + safetensors) that ships in astrovlm/weights/encoder.
The test split is never read here.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator
from open_clip.loss import ClipLoss
from tqdm.auto import tqdm

from astrovlm.config import sample_dir
from astrovlm.data.readers import read_spectrum
from astrovlm.data.records import SkyDataset
from astrovlm.data.simulate import simulate_spectrum
from astrovlm.encoders.captions import image_captions, pick, spectrum_captions
from astrovlm.encoders.model import DEFAULT_CONFIG, AlignedEncoder
from astrovlm.encoders.preprocess import grid_of, image_to_tensor, load_rgb, sky_augmentations, spectrum_to_tensor
from astrovlm.encoders.zeroshot import DEFAULT_LABELS, TEMPLATES, label_phrase

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=str(Path(__file__).with_name("config.yaml")))
    p.add_argument("--steps", type=int, help="override the config's steps")
    p.add_argument("--output", help="override the output folder")
    return p.parse_args(argv)


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


# ----- data -------------------------------------------------------------------------------
def image_items(ds: SkyDataset, split: str):
    cards = {p.object_id: p.text for p in ds.passages if p.kind == "catalog_card"}
    items = []
    for rec in ds.images:
        obj = ds.get_object(rec.object_id)
        if rec.split != split or obj is None or obj.coarse_class not in DEFAULT_LABELS["image"]:
            continue
        items.append((rec, obj, image_captions(obj, cards.get(obj.object_id))))
    return items


def image_feature_cache(model, ds, train_items, val_items, views: int, seed: int, run_dir: Path, log=print):
    """(train (n, views, 1280), val (n, 1, 1280)) backbone features of the sky views.

    The backbone is frozen, so they are a pure function of the data, the view count and the
    seed: kept on disk in ``run_dir`` for the next run of a recipe (stage 3 reads stage 1's).
    """
    manifest = ds.root / "manifest.json"
    data_hash = json.loads(manifest.read_text()).get("content_hash", "") if manifest.exists() else ""
    feat_file = Path(run_dir) / f"image_features-{data_hash[-12:]}-{views}-{seed}.pt"
    if data_hash and feat_file.exists():
        log(f"reusing cached image features {feat_file}")
        return torch.load(feat_file)
    view_rng = np.random.default_rng(seed + 1)  # its own stream: cached or not, same run
    train_feats = cache_image_features(model, ds, train_items, views, view_rng, "train images (views)")
    val_feats = cache_image_features(model, ds, val_items, 1, view_rng, "val images")
    if data_hash:
        torch.save((train_feats, val_feats), feat_file)
    return train_feats, val_feats


def apply_overrides(cfg: dict, items: list[str]) -> dict:
    """``--set key.sub=value`` overrides (values parsed as YAML) into a recipe's config."""
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set wants KEY=VALUE, not {item!r}")
        *parents, last = key.split(".")
        node = cfg
        for k in parents:
            node = node.setdefault(k, {})
        node[last] = yaml.safe_load(value)
    return cfg


@torch.no_grad()
def cache_image_features(model, ds, items, views: int, rng, desc: str) -> torch.Tensor:
    """(n_items, views, 1280) backbone features; view 0 is the plain image."""
    out = torch.zeros(len(items), views, model.config["image_tower"]["feature_dim"])
    for i, (rec, _, _) in enumerate(tqdm(items, desc=desc, unit="image")):
        img = load_rgb(ds.path(rec.path))
        pics = [img] + (sky_augmentations(img, rng, views - 1) if views > 1 else [])
        pixels = torch.stack([image_to_tensor(p) for p in pics])
        out[i] = model.image_features(pixels)
    return out


def spectrum_templates(ds: SkyDataset, split: str):
    """The real spectra of a split, read once (the simulator draws variants of them)."""
    out = []
    for rec in ds.spectra:
        if rec.split == split and not rec.simulated and rec.spectral_class in DEFAULT_LABELS["spectrum"]:
            obj = ds.get_object(rec.object_id)
            out.append((rec, read_spectrum(ds.path(rec.path)), obj.name if obj else ""))
    return out


def caption_redshifts(cfg, rec) -> list[float]:
    """Every redshift a caption of this template can show (captions round it), so that all
    caption features are computed once, before training."""
    lo, hi = cfg["redshift"][class_kind(rec.spectral_class)]
    zs = [(1 + rec.redshift) * (1 + z) - 1 for z in np.linspace(lo, hi, 600)]
    return sorted({round(z, 2) if z < 0.5 else round(z, 1) for z in zs})


def class_kind(spectral_class: str) -> str:
    return {"galaxy": "galaxy", "quasar": "quasar"}.get(spectral_class, "star")


def draw_spectrum(rec, spec, cfg, rng, grid=None):
    """One simulated observation of a real template: (tensor on the tower's ``grid``, total
    redshift)."""
    lo, hi = cfg["redshift"][class_kind(rec.spectral_class)]
    for _ in range(10):
        z_sim = float(rng.uniform(lo, hi))
        try:
            sim = simulate_spectrum(spec, redshift=z_sim, snr=float(rng.uniform(*cfg["snr"])),
                                    resolution=float(rng.uniform(*cfg["resolution"])),
                                    ebv=float(rng.uniform(*cfg["ebv"])), rng=rng)
            x = spectrum_to_tensor(sim, grid=grid)
        except ValueError:
            continue  # this redshift moved the template off the instrument: draw again
        return x, (1 + rec.redshift) * (1 + z_sim) - 1
    raise RuntimeError(f"could not simulate {rec.spectrum_id}")


class SpectrumPool:
    """Simulated observations of each training template, drawn once and sampled per step.

    Simulating on the fly costs more than the network's step on a CPU; a pool of a few
    hundred views per template gives the same variety for a fraction of the time.
    """

    def __init__(self, templates, cfg, rng, per_template: int, grid=None):
        grid = grid_of() if grid is None else grid
        self.x = torch.zeros(len(templates), per_template, 2, len(grid))
        self.z = torch.zeros(len(templates), per_template)
        for i, (rec, spec, _) in enumerate(tqdm(templates, desc="simulating spectra", unit="template")):
            for j in range(per_template):
                self.x[i, j], self.z[i, j] = draw_spectrum(rec, spec, cfg, rng, grid)
        self.n = per_template

    def sample(self, template_idx, rng):
        j = torch.from_numpy(rng.integers(self.n, size=len(template_idx)))
        t = torch.as_tensor(np.asarray(template_idx))
        return self.x[t, j], self.z[t, j]


# ----- text ---------------------------------------------------------------------------------
class TextCache:
    """Frozen MiniLM features for every caption, computed once (the text head is what trains)."""

    def __init__(self, model):
        self.model, self.feats = model, {}

    @torch.no_grad()
    def add(self, texts, desc="caching caption features"):
        todo = sorted({t for t in texts if t not in self.feats})
        for i in tqdm(range(0, len(todo), 128), desc=desc, unit="batch", disable=not todo):
            chunk = todo[i:i + 128]
            for t, f in zip(chunk, self.model.text_features(chunk)):
                self.feats[t] = f

    def __call__(self, texts):
        self.add(texts, desc="caching new captions")
        return torch.stack([self.feats[t] for t in texts])


def prompt_texts(modality, labels=None):
    """The zero-shot prompts of ``labels`` (default: the modality's classes), label by label."""
    labels = DEFAULT_LABELS[modality] if labels is None else labels
    return [t.format(label_phrase(lab)) for lab in labels for t in TEMPLATES[modality]]


def class_embeddings(model, cache, modality, labels=None):
    """Class vectors from the zero-shot prompt ensemble of ``modality``'s templates, for
    ``labels`` (default: the modality's default classes), as ``zeroshot.class_vectors``."""
    labels = DEFAULT_LABELS[modality] if labels is None else labels
    emb = model.embed_text_features(cache(prompt_texts(modality, labels)))
    return F.normalize(emb.view(len(labels), len(TEMPLATES[modality]), -1).mean(1), dim=-1)


def unique_batch(captions_per_item, rng, card_weight):
    """One caption per item, no caption twice in a batch (CLIP treats the rest as negatives)."""
    chosen, seen = [], set()
    for caps in captions_per_item:
        c = pick(caps, rng, card_weight)
        if c in seen:  # fall back to the most specific phrasing (the last ones name the object)
            c = next((x for x in reversed(caps) if x not in seen), c)
        seen.add(c)
        chosen.append(c)
    return chosen


def make_optimizer(params, cfg):
    """AdamW with linear warm-up then cosine decay over ``cfg["steps"]`` (both stages)."""
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg["warmup_steps"]) *
        0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg["steps"]))))
    return opt, sched


def optimizer_step(accelerator, opt, sched, trainable, losses: dict, weights: dict, step: int) -> dict:
    """One step on the weighted sum of ``losses`` (``{"loss_<weight key>": tensor}``); returns
    the step's log row (the total and each loss)."""
    total = sum(weights[k[5:]] * v for k, v in losses.items())
    opt.zero_grad()
    accelerator.backward(total)
    sync_gradients(accelerator, trainable)
    opt.step()
    sched.step()
    return {"step": step, "loss_total": float(total.detach()),
            **{k: float(v.detach()) for k, v in losses.items()}}


def carry_calibration(core, base_fingerprint: str) -> None:
    """A stage that leaves optical image embeddings bit-identical (checked) keeps the image
    calibration fitted on val (``zero_shot.json``), re-stamped for the new weights."""
    core.reset_fingerprints()
    if core.zero_shot_calibration:
        core.zero_shot_calibration = dict(core.zero_shot_calibration, encoder_fingerprint=core.fingerprint,
                                          carried_from=base_fingerprint)


def sync_gradients(accelerator, params) -> None:
    """Average gradients over processes. The steps call the unwrapped model (its pieces, not
    one forward), so DDP's own gradient hooks never fire: do their all-reduce here. A no-op
    in one process."""
    if accelerator.num_processes > 1:
        for p in params:
            if p.grad is not None:
                p.grad = accelerator.reduce(p.grad, reduction="mean")


# ----- evaluation ---------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, cache, val_img_feats, val_items, val_spec):
    model.eval()
    out = {}
    if len(val_items):
        cls = class_embeddings(model, cache, "image")
        emb = model.embed_image_features(val_img_feats[:, 0])
        pred = (emb @ cls.T).argmax(1).numpy()
        truth = np.array([DEFAULT_LABELS["image"].index(o.coarse_class) for _, o, _ in val_items])
        out["val_image_zeroshot_acc"] = float((pred == truth).mean())
        out["_image_sims"] = (emb @ cls.T).numpy(), truth
    if val_spec:
        cls = class_embeddings(model, cache, "spectrum")
        x = torch.stack([spectrum_to_tensor(s, grid=model.spectrum_grid) for _, s, _ in val_spec])
        emb = model.embed_spectra(x)
        pred = (emb @ cls.T).argmax(1).numpy()
        truth = np.array([DEFAULT_LABELS["spectrum"].index(r.spectral_class) for r, _, _ in val_spec])
        out["val_spectrum_zeroshot_acc"] = float((pred == truth).mean())
        out["_spectrum_sims"] = (emb @ cls.T).numpy(), truth
    model.train()
    return out


def fit_temperature(sims: np.ndarray, truth: np.ndarray) -> float:
    """The softmax temperature that minimises validation NLL (calibrated probabilities)."""
    best = (math.inf, 0.05)
    for t in np.geomspace(0.005, 1.0, 120):
        logits = sims / t
        logits = logits - logits.max(1, keepdims=True)
        nll = -(logits[np.arange(len(truth)), truth] - np.log(np.exp(logits).sum(1))).mean()
        best = min(best, (nll, float(t)))
    return best[1]


def save_curves(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in history[0] if k.startswith("loss")]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = [h["step"] for h in history]
    for k in keys:
        ax.plot(steps, [h[k] for h in history], label=k, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("astrovlm aligned encoders: training losses")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----- shared with the later stages (train_spectra.py, train_text.py) -----------------------
def resolve_path(path) -> Path:
    """A recipe's path: absolute as given, else relative to the repository root."""
    return Path(path) if Path(path).is_absolute() else ROOT / path


def stage_args(argv, doc: str, config_name: str, init_what: str, set_example: str):
    """The command line of a later stage: its config file and the usual overrides."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(Path(__file__).with_name(config_name)))
    p.add_argument("--steps", type=int, help="override the config's steps")
    p.add_argument("--init-from", help=f"override the {init_what} folder")
    p.add_argument("--output", help="override the output folder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config value, e.g. --set {set_example}")
    return p.parse_args(argv)


def stage_config(args) -> tuple[dict, Path, Path]:
    """A later stage's config with the command line's overrides, its output folder and its
    run folder (created)."""
    cfg = yaml.safe_load(Path(args.config).read_text())
    for key in ("steps", "init_from", "output"):
        if getattr(args, key):
            cfg[key] = getattr(args, key)
    apply_overrides(cfg, args.set)
    out_dir, run_dir = resolve_path(cfg["output"]), resolve_path(cfg["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    return cfg, out_dir, run_dir


def lock_all_but(model, trained: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Freeze every parameter outside the ``trained`` prefixes; returns copies of the locked
    trained tensors, for ``check_locked`` after training."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(trained))
    return {k: v.clone() for k, v in model.trained_state_dict().items() if not k.startswith(trained)}


def check_locked(model, locked: dict[str, torch.Tensor], stage: str) -> None:
    """The promise of a later stage: the parts it locked come out bit-identical."""
    for k, v in model.trained_state_dict().items():
        if k in locked and not torch.equal(v, locked[k]):
            raise RuntimeError(f"{stage} changed the locked tensor {k}")


def prepare_training(accelerator, model, cfg):
    """The optimiser over the trainable parameters, everything wrapped by accelerate, and
    open_clip's ClipLoss across processes: (model, core, opt, sched, clip_loss, trainable),
    ``core`` being the unwrapped model the steps call."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt, sched = make_optimizer(trainable, cfg)
    model, opt, sched = accelerator.prepare(model, opt, sched)
    clip_loss = ClipLoss(rank=accelerator.process_index, world_size=accelerator.num_processes)
    return model, accelerator.unwrap_model(model), opt, sched, clip_loss, trainable


def log_row(accelerator, row: dict) -> None:
    accelerator.print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))


def save_run(core, out_dir: Path, run_dir: Path, history: list[dict], suffix: str = "") -> None:
    """The encoder folder, and the run's loss history (JSON) and curves (PNG)."""
    core.save_pretrained(out_dir)
    (run_dir / f"history{suffix}.json").write_text(json.dumps(history))
    save_curves(history, run_dir / f"loss_curves{suffix}.png")


# ----- main ---------------------------------------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    cfg = yaml.safe_load(Path(args.config).read_text())
    if args.steps:
        cfg["steps"] = args.steps
    out_dir = Path(args.output or cfg["output"])
    out_dir = out_dir if out_dir.is_absolute() else ROOT / out_dir
    run_dir = ROOT / cfg["run_dir"]
    run_dir.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator()
    # each process draws its own batches (process 0 = the single-process run); DDP gives
    # every process process 0's initial weights
    rng = seed_everything(cfg["seed"] + accelerator.process_index)
    t0 = time.time()

    ds = SkyDataset(cfg["dataset"] or sample_dir())
    model = AlignedEncoder(DEFAULT_CONFIG)
    model.eval()

    train_items, val_items = image_items(ds, "train"), image_items(ds, "val")
    train_feats, val_feats = image_feature_cache(model, ds, train_items, val_items, cfg["image"]["views_per_image"],
                                                 cfg["seed"], run_dir, accelerator.print)
    train_spec, val_spec = spectrum_templates(ds, "train"), spectrum_templates(ds, "val")
    pairs = [(i, j) for i, (_, o, _) in enumerate(train_items)
             for j, (r, _, _) in enumerate(train_spec) if r.object_id == o.object_id]
    accelerator.print(f"train: {len(train_items)} images, {len(train_spec)} real spectra, {len(pairs)} "
                      f"image-spectrum pairs; val: {len(val_items)} images, {len(val_spec)} spectra")

    pool = SpectrumPool(train_spec, cfg["spectrum"], rng, cfg["spectrum"]["pool_per_template"], model.spectrum_grid)
    cache = TextCache(model)
    cache.add([c for _, _, caps in train_items for c in caps] + prompt_texts("image") + prompt_texts("spectrum")
              + [c for rec, _, name in train_spec for z in caption_redshifts(cfg["spectrum"], rec)
                 for c in spectrum_captions(rec.spectral_class, rec.subclass, z, name)])

    model, core, opt, sched, clip_loss, trainable = prepare_training(accelerator, model, cfg)
    w = cfg["loss_weights"]
    img_labels = torch.tensor([DEFAULT_LABELS["image"].index(o.coarse_class) for _, o, _ in train_items])
    history = []
    model.train()
    core.image_backbone.eval()  # frozen: keep its batch-norm statistics
    core.text_backbone.eval()
    bar = tqdm(range(cfg["steps"]), desc="training", unit="step")
    for step in bar:
        scale = core.logit_scale.exp().clamp(max=100)
        losses = {}
        # images <-> captions, and images vs the class prompts
        idx = rng.choice(len(train_items), size=min(cfg["image"]["batch_size"], len(train_items)), replace=False)
        views = rng.integers(cfg["image"]["views_per_image"], size=len(idx))
        img = core.embed_image_features(train_feats[idx, views])
        caps = unique_batch([train_items[i][2] for i in idx], rng, cfg["image"]["card_weight"])
        txt = core.embed_text_features(cache(caps))
        losses["loss_image_text"] = clip_loss(img, txt, scale)
        cls_img = class_embeddings(core, cache, "image")
        losses["loss_image_prompts"] = F.cross_entropy(scale * img @ cls_img.T, img_labels[idx])
        # spectra <-> captions, class prompts, redshift
        tidx = rng.choice(len(train_spec), size=min(cfg["spectrum"]["batch_size"], len(train_spec)),
                          replace=len(train_spec) < cfg["spectrum"]["batch_size"])
        xs, zs = pool.sample(tidx, rng)
        scaps = [spectrum_captions(train_spec[i][0].spectral_class, train_spec[i][0].subclass, float(z),
                                   train_spec[i][2]) for i, z in zip(tidx, zs)]
        sp = core.embed_spectra(xs)
        stx = core.embed_text_features(cache(unique_batch(scaps, rng, 0.0)))
        losses["loss_spectrum_text"] = clip_loss(sp, stx, scale)
        cls_sp = class_embeddings(core, cache, "spectrum")
        sp_labels = torch.tensor([DEFAULT_LABELS["spectrum"].index(train_spec[i][0].spectral_class) for i in tidx])
        losses["loss_spectrum_prompts"] = F.cross_entropy(scale * sp @ cls_sp.T, sp_labels)
        z_true = torch.log1p(zs)
        losses["loss_redshift"] = F.mse_loss(core.redshift_head(sp).squeeze(-1), z_true)
        # the real image-spectrum pairs of the same object
        if len(pairs) >= 2:
            pi = [pairs[k] for k in rng.permutation(len(pairs))[:8]]
            pimg = core.embed_image_features(train_feats[[a for a, _ in pi], rng.integers(cfg["image"]["views_per_image"], size=len(pi))])
            psp, _ = pool.sample([b for _, b in pi], rng)
            losses["loss_image_spectrum"] = clip_loss(pimg, core.embed_spectra(psp), scale)
        row = {**optimizer_step(accelerator, opt, sched, trainable, losses, w, step),
               "logit_scale": float(scale.detach())}
        if (step + 1) % cfg["eval_every"] == 0 or step + 1 == cfg["steps"]:
            metrics = evaluate(core, cache, val_feats, val_items, val_spec)
            row.update({k: v for k, v in metrics.items() if not k.startswith("_")})
            log_row(accelerator, row)
        history.append(row)
        bar.set_postfix(loss=f"{row['loss_total']:.3f}")

    core.eval()
    final = evaluate(core, cache, val_feats, val_items, val_spec)
    zero_shot = {}
    if "_image_sims" in final:
        zero_shot["temperature_image"] = fit_temperature(*final["_image_sims"])
    if "_spectrum_sims" in final:
        zero_shot["temperature_spectrum"] = fit_temperature(*final["_spectrum_sims"])
    core.config["zero_shot"] = zero_shot
    core.config["training"] = {
        "recipe": "training/encoders/train.py", "config": cfg, "seed": cfg["seed"],
        "dataset_hash": json.loads((ds.root / "manifest.json").read_text()).get("content_hash")
        if (ds.root / "manifest.json").exists() else None,
        "train_images": len(train_items), "train_spectra_templates": len(train_spec),
        "val": {k: v for k, v in final.items() if not k.startswith("_")},
        "minutes": round((time.time() - t0) / 60, 1),
    }
    if accelerator.is_main_process:
        save_run(core, out_dir, run_dir, history)
        accelerator.print(f"saved {out_dir} in {core.config['training']['minutes']} min; "
                          f"val: {core.config['training']['val']}; temperatures {zero_shot}")


if __name__ == "__main__":
    sys.exit(main())
