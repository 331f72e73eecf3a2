"""Inference-side variants of zero-shot image classification, measured on the VALIDATION split.

The encoder's weights are fixed; only what happens at inference changes:

- test-time augmentation: 1, 4 (quarter turns) or 8 (and mirrored) views of each image,
  embeddings averaged (``AlignedEncoder.encode_images(views=...)``);
- prompts: the shipped templates or an extended set; one phrase per class, or several
  sub-class phrases per class ("a spiral galaxy", "an H II region", ...) pooled into the
  class by the mean of their vectors, the max of their cosines, or a logsumexp of the
  cosines at the calibrated temperature.

Each variant gets val accuracy, balanced accuracy, galaxy recall and the NLL at a
temperature refitted on val (training/encoders/train.py's ``fit_temperature``). The test
split is never read: pick on val here, then run encoders_eval.py once.

Run: python benchmarks/zeroshot_ablation.py [--model DIR] [--dataset DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "training" / "encoders"))
from _common import write_results  # noqa: E402
from encoders_eval import balanced_accuracy, image_set  # noqa: E402
from train import fit_temperature  # noqa: E402

from astrovlm.config import sample_dir  # noqa: E402
from astrovlm.data.records import SkyDataset  # noqa: E402
from astrovlm.encoders import AlignedEncoder  # noqa: E402
from astrovlm.encoders.preprocess import dihedral_views, image_to_tensor  # noqa: E402
from astrovlm.encoders import zeroshot  # noqa: E402
from astrovlm.encoders.model import SHIPPED, ZERO_SHOT_FILE  # noqa: E402
from astrovlm.encoders.zeroshot import CLASS_PHRASES, DEFAULT_LABELS, IMAGE_TEMPLATES, SUBCLASS_PHRASES  # noqa: E402

LABELS = DEFAULT_LABELS["image"]

EXTRA_TEMPLATES = (
    "a photograph of {} taken through a telescope.",
    "an astrophotograph of {}.",
    "a colour image of {}.",
    "a survey image of {}.",
    "a close-up telescope image of {}.",
    "a long-exposure image of {}.",
)

def view_embeddings(enc, paths, batch: int = 4) -> np.ndarray:
    """(n, 8, D) normalised embeddings of the 8 dihedral views (views 0-3: the quarter turns)."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(paths), batch):
            pixels = torch.stack([image_to_tensor(p) for p in paths[i:i + batch]])
            emb = enc.embed_image_features(enc.image_features(dihedral_views(pixels, 8)))
            out.append(emb.view(len(pixels), 8, -1).numpy())
    return np.concatenate(out)


def pooled(view_emb: np.ndarray, views: int) -> np.ndarray:
    e = view_emb[:, :views].mean(1)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def phrase_vectors(enc, phrases, templates) -> np.ndarray:
    """(n_phrases, D): each phrase's template ensemble, normalised (as zeroshot.class_vectors)."""
    prompts = [t.format(p) for p in phrases for t in templates]
    e = enc.encode_text(prompts).reshape(len(phrases), len(templates), -1).mean(1)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def class_scores(enc, emb, templates, phrases_of, pool, temp) -> np.ndarray:
    """(n, n_labels) cosine-like scores: one vector per class, or sub-class phrases pooled."""
    cols = []
    for lab in LABELS:
        vecs = phrase_vectors(enc, phrases_of[lab], templates)
        if pool == "mean":
            v = vecs.mean(0)
            cols.append(emb @ (v / np.linalg.norm(v)))
            continue
        sims = emb @ vecs.T
        if pool == "max":
            cols.append(sims.max(1))
        elif pool == "lse":  # soft max at the calibrated temperature, minus log(n) so counts do not add
            cols.append(temp * (np.logaddexp.reduce(sims / temp, axis=1) - np.log(sims.shape[1])))
        else:
            raise ValueError(pool)
    return np.stack(cols, 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="encoder folder (default: shipped)")
    ap.add_argument("--dataset", help="dataset folder (default: the sample sky)")
    ap.add_argument("--cache", help="an .npz to keep the val view embeddings in between runs (keyed by "
                                    "the encoder's fingerprint and the image paths)")
    ap.add_argument("--write-calibration", action="store_true",
                    help="write the val-fitted temperature of the default recipe to the folder's zero_shot.json")
    args = ap.parse_args(argv)
    ds = SkyDataset(args.dataset or sample_dir())
    enc = AlignedEncoder.from_pretrained(args.model)
    temp = float(enc.config.get("zero_shot", {}).get("temperature_image", 0.07))
    val = image_set(ds, "val")
    paths = [ds.path(r.path) for r, _ in val]
    truth = np.array([LABELS.index(o.coarse_class) for _, o in val])

    key = f"{enc.fingerprint}:{hashlib.sha256(chr(10).join(map(str, paths)).encode()).hexdigest()[:16]}"
    cache = Path(args.cache) if args.cache else None
    if cache and cache.exists() and str(np.load(cache)["key"]) == key:
        view_emb, tower_per_s = np.load(cache)["emb"], float(np.load(cache)["per_s"])
    else:
        t = time.perf_counter()
        view_emb = view_embeddings(enc, paths)
        tower_per_s = len(paths) * 8 / (time.perf_counter() - t)
        if cache:
            np.savez(cache, key=key, emb=view_emb, per_s=tower_per_s)
    # the library path gives the same vectors
    for v in (1, 4, 8):
        lib = enc.encode_images(paths[:3], views=v)
        assert np.allclose(lib, pooled(view_emb[:3], v), atol=1e-5), v

    prompt_sets = {
        "shipped": (IMAGE_TEMPLATES, {lab: [CLASS_PHRASES[lab]] for lab in LABELS}),
        "extended_templates": (IMAGE_TEMPLATES + EXTRA_TEMPLATES, {lab: [CLASS_PHRASES[lab]] for lab in LABELS}),
    }
    variants, preds = [], {}
    for pname, (templates, single) in prompt_sets.items():
        for pool in ("single", "mean", "max", "lse"):
            phrases_of = single if pool == "single" else SUBCLASS_PHRASES
            for views in (1, 4, 8):
                emb = pooled(view_emb, views)
                scores = class_scores(enc, emb, templates, phrases_of, "mean" if pool == "single" else pool, temp)
                pred = scores.argmax(1)
                preds[f"{pname}/{pool}/views{views}"] = pred
                t_fit = fit_temperature(scores, truth)
                logits = scores / t_fit
                logits -= logits.max(1, keepdims=True)
                nll = float(-(logits[np.arange(len(truth)), truth] - np.log(np.exp(logits).sum(1))).mean())
                gal = LABELS.index("galaxy")
                variants.append({
                    "name": f"{pname}/{pool}/views{views}", "templates": pname, "pooling": pool, "views": views,
                    "val_accuracy": round(float((pred == truth).mean()), 4),
                    "val_balanced_accuracy": round(balanced_accuracy(truth, pred, len(LABELS)), 4),
                    "val_galaxy_recall": round(float((pred[truth == gal] == gal).mean()), 4),
                    "val_galaxy_as_nebula": int(((truth == gal) & (pred == LABELS.index("nebula"))).sum()),
                    "val_nll_refit": round(nll, 4), "val_temperature_refit": round(t_fit, 4),
                })
                print(f"{variants[-1]['name']:40s} acc {variants[-1]['val_accuracy']:.4f}  "
                      f"bal {variants[-1]['val_balanced_accuracy']:.4f}  galaxy {variants[-1]['val_galaxy_recall']:.3f}  "
                      f"nll {nll:.3f}  T {t_fit:.4f}")

    # the library's default recipe (zeroshot.class_scores, IMAGE_VIEWS views) is one of the variants
    lib_scores = zeroshot.class_scores(enc, pooled(view_emb, zeroshot.IMAGE_VIEWS), LABELS, "image")
    lib_name = f"shipped/lse/views{zeroshot.IMAGE_VIEWS}"
    assert np.array_equal(lib_scores.argmax(1), preds[lib_name]), "library recipe != ablation variant"
    lib_temp = fit_temperature(lib_scores, truth)
    if args.write_calibration:
        folder = Path(args.model) if args.model else SHIPPED
        record = {"encoder_fingerprint": enc.fingerprint,
                  "fitted_on": f"validation split, {len(val)} images (benchmarks/zeroshot_ablation.py)",
                  "image": {"temperature": round(lib_temp, 6), "views": zeroshot.IMAGE_VIEWS,
                            "scores": "zeroshot.class_scores: logsumexp over SUBCLASS_PHRASES"}}
        (folder / ZERO_SHOT_FILE).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {folder / ZERO_SHOT_FILE}: temperature {lib_temp:.4f}")

    base = next(v for v in variants if v["name"] == "shipped/single/views1")
    ok_base = preds[base["name"]] == truth
    for v in variants:  # paired with the baseline: images it fixes and images it breaks
        ok = preds[v["name"]] == truth
        v["val_fixed_vs_baseline"], v["val_broken_vs_baseline"] = int((ok & ~ok_base).sum()), int((~ok & ok_base).sum())
    # best on val: accuracy, then balanced accuracy, then fewer views (cheaper), then NLL
    best = max(variants, key=lambda v: (v["val_accuracy"], v["val_balanced_accuracy"], -v["views"], -v["val_nll_refit"]))
    fig = {
        "val_n": len(val),
        "image_tower_views_per_s": round(tower_per_s, 1),
        "baseline": base["name"], "baseline_val_accuracy": base["val_accuracy"],
        "baseline_val_balanced_accuracy": base["val_balanced_accuracy"],
        "library_default": lib_name, "library_default_val_temperature": round(lib_temp, 4),
        "best": best["name"], "best_val_accuracy": best["val_accuracy"],
        "best_val_balanced_accuracy": best["val_balanced_accuracy"],
        "variants": variants,
    }
    write_results("zeroshot_ablation", fig, n=len(val))


if __name__ == "__main__":
    main()
