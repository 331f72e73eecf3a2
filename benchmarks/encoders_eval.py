"""How good are the aligned encoders? All figures on the held-out TEST split, in one run.

- zero-shot image classification over the coarse classes (accuracy, balanced accuracy,
  confusion matrix PNG) the way ``astrovlm classify`` does it (``zeroshot.embed`` with its
  test-time views, ``zeroshot.class_scores``; chosen on val by zeroshot_ablation.py), with
  chance and a supervised linear probe on the frozen ImageNet features (trained on the train
  split) as references;
- text-to-image retrieval of held-out objects from their catalog cards: recall@1/5/10 and
  PAPERCLIP's top-10% accuracy, with what perfect coarse-class knowledge alone would reach;
- zero-shot typing of the held-out real spectra (leave-template-out), and of simulated
  observations of the same templates;
- k-NN redshift R^2 (AstroCLIP's probe: distance-weighted, k=64) on simulated spectra of
  held-out templates, neighbours drawn from simulated spectra of training templates;
- image-to-spectrum retrieval on the real pairs of the same object;
- encoding throughput on this CPU (1 view, as the index embeds; and the zero-shot views).

Run: python benchmarks/encoders_eval.py [--model DIR] [--dataset DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_results  # noqa: E402

from astrovlm.config import sample_dir  # noqa: E402
from astrovlm.data.readers import read_spectrum  # noqa: E402
from astrovlm.data.records import SkyDataset  # noqa: E402
from astrovlm.data.simulate import simulate_spectrum  # noqa: E402
from astrovlm.encoders import AlignedEncoder  # noqa: E402
from astrovlm.encoders import zeroshot  # noqa: E402
from astrovlm.encoders.probes import knn_regression, match_ranks  # noqa: E402
from astrovlm.encoders.zeroshot import DEFAULT_LABELS, class_vectors  # noqa: E402


def balanced_accuracy(truth, pred, n):
    recalls = [np.mean(pred[truth == c] == c) for c in range(n) if np.any(truth == c)]
    return float(np.mean(recalls))


def confusion_png(truth, pred, labels, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.zeros((len(labels), len(labels)), int)
    for t, p in zip(truth, pred):
        m[t, p] += 1
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, m[i, j], ha="center", va="center", color="black" if m[i, j] < m.max() / 2 else "white")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def image_set(ds, split):
    rows = []
    for rec in ds.images:
        obj = ds.get_object(rec.object_id)
        if rec.split == split and obj is not None and obj.coarse_class in DEFAULT_LABELS["image"]:
            rows.append((rec, obj))
    return rows


def linear_probe(encoder, ds, train, test):
    """Logistic regression on frozen EfficientNet features (mean of 4 rotations), as the field guide."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from astrovlm.encoders.preprocess import image_to_tensor, load_rgb, square_on_sky

    def feats(rows):
        out = []
        with torch.inference_mode():
            for rec, _ in rows:
                img = square_on_sky(load_rgb(ds.path(rec.path)))
                views = torch.stack([image_to_tensor(img.rotate(a)) for a in (0, 90, 180, 270)])
                out.append(encoder.image_features(views).mean(0).numpy())
        return np.array(out)

    labels = DEFAULT_LABELS["image"]
    xtr, xte = feats(train), feats(test)
    ytr = np.array([labels.index(o.coarse_class) for _, o in train])
    scaler = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=3000, C=0.5, class_weight="balanced").fit(scaler.transform(xtr), ytr)
    return clf.predict(scaler.transform(xte))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="encoder folder (default: shipped)")
    ap.add_argument("--dataset", help="dataset folder (default: the sample sky)")
    ap.add_argument("--sims-per-template", type=int, default=40)
    args = ap.parse_args(argv)
    ds = SkyDataset(args.dataset or sample_dir())
    enc = AlignedEncoder.from_pretrained(args.model)
    fig = {}
    rng = np.random.default_rng(0)

    # --- zero-shot image classification ------------------------------------------------
    labels = DEFAULT_LABELS["image"]
    test, train = image_set(ds, "test"), image_set(ds, "train")
    t = time.perf_counter()
    img_emb = enc.encode_images([ds.path(r.path) for r, _ in test], progress=True)   # 1 view, as the index
    fig["image_encode_per_s"] = round(len(test) / (time.perf_counter() - t), 1)
    t = time.perf_counter()
    zs_emb = zeroshot.embed(enc, "image", [ds.path(r.path) for r, _ in test], progress=True)
    fig["image_zeroshot_views"] = zeroshot.IMAGE_VIEWS
    fig["image_zeroshot_encode_per_s"] = round(len(test) / (time.perf_counter() - t), 1)
    truth = np.array([labels.index(o.coarse_class) for _, o in test])
    pred = zeroshot.predict(enc, zs_emb, labels, "image").argmax(1)
    fig["image_zeroshot_accuracy"] = round(float((pred == truth).mean()), 4)
    fig["image_zeroshot_balanced_accuracy"] = round(balanced_accuracy(truth, pred, len(labels)), 4)
    fig["image_test_n"] = len(test)
    fig["image_chance_accuracy_uniform"] = round(1 / len(labels), 4)
    fig["image_chance_accuracy_majority"] = round(float(np.bincount(truth).max() / len(truth)), 4)
    probe = linear_probe(enc, ds, train, test)
    fig["image_linear_probe_accuracy"] = round(float((probe == truth).mean()), 4)
    fig["image_linear_probe_balanced_accuracy"] = round(balanced_accuracy(truth, probe, len(labels)), 4)
    confusion_png(truth, pred, labels, RESULTS / "encoders_image_confusion.png",
                  f"zero-shot, held-out images (n={len(test)})")

    # --- text (catalog card) -> image retrieval for held-out objects ---------------------
    cards = {p.object_id: p.text for p in ds.passages if p.kind == "catalog_card"}
    first = {}
    for i, (rec, obj) in enumerate(test):
        first.setdefault(obj.object_id, i)
    objs = [o for o in first if o in cards]
    gallery = img_emb[[first[o] for o in objs]]
    q = enc.encode_text([cards[o] for o in objs])
    ranks = match_ranks(q @ gallery.T)
    n = len(objs)
    top = max(1, int(np.ceil(0.1 * n)))
    for k in (1, 5, 10):
        fig[f"card_to_image_recall@{k}"] = round(float((ranks < k).mean()), 4)
    fig["card_to_image_top10pct_accuracy"] = round(float((ranks < top).mean()), 4)
    fig["card_to_image_random_top10pct"] = round(top / n, 4)
    # What perfect class knowledge alone would give: every image of the card's coarse class
    # ranked first, in random order within the class. Beating it needs within-class identity.
    klass = [next(o.coarse_class for _, o in test if o.object_id == oid) for oid in objs]
    per_class = {c: klass.count(c) for c in set(klass)}
    fig["card_to_image_class_oracle_top10pct"] = round(float(np.mean([min(1.0, top / per_class[c])
                                                                      for c in klass])), 4)
    fig["card_to_image_n"] = n

    # --- spectra: zero-shot typing of held-out real spectra ------------------------------
    slabels = DEFAULT_LABELS["spectrum"]
    real_test = [r for r in ds.spectra if r.split == "test" and not r.simulated and r.spectral_class in slabels]
    spectra = [read_spectrum(ds.path(r.path)) for r in real_test]
    t = time.perf_counter()
    s_emb = enc.encode_spectra(spectra)
    s_truth = np.array([slabels.index(r.spectral_class) for r in real_test])
    s_pred = (s_emb @ class_vectors(enc, slabels, "spectrum").T).argmax(1)
    fig["spectrum_zeroshot_accuracy"] = round(float((s_pred == s_truth).mean()), 4)
    fig["spectrum_test_real_n"] = len(real_test)
    fig["spectrum_chance_accuracy_uniform"] = round(1 / len(slabels), 4)
    confusion_png(s_truth, s_pred, slabels, RESULTS / "encoders_spectrum_confusion.png",
                  f"zero-shot, held-out real spectra (n={len(real_test)})")

    # --- k-NN redshift on simulated spectra (train templates -> held-out templates) ------
    def simulate_set(split):
        out_x, out_z, out_c = [], [], []
        zr = {"galaxy": (0.0, 0.5), "quasar": (0.0, 3.0)}
        for r in ds.spectra:
            if r.split != split or r.simulated or r.spectral_class not in slabels:
                continue
            base = read_spectrum(ds.path(r.path))
            lo, hi = zr.get(r.spectral_class, (0.0, 0.001))
            made = 0
            while made < args.sims_per_template:
                z = float(rng.uniform(lo, hi))
                try:
                    s = simulate_spectrum(base, redshift=z, snr=float(rng.uniform(5, 50)),
                                          resolution=float(rng.uniform(600, 3000)), ebv=float(rng.uniform(0, 0.3)),
                                          rng=rng)
                    x = enc.encode_spectra([s])  # raises if too few pixels on the grid
                except ValueError:
                    continue
                out_x.append(x[0])
                out_z.append((1 + r.redshift) * (1 + z) - 1)
                out_c.append(slabels.index(r.spectral_class))
                made += 1
        return np.array(out_x), np.array(out_z), np.array(out_c)

    t = time.perf_counter()
    xtr, ztr, _ = simulate_set("train")
    xte, zte, cte = simulate_set("test")
    # typing again, on the simulated observations of the held-out templates (noise, redshift,
    # resolution, reddening): a steadier figure than the 10 real spectra, of the same templates
    sim_pred = (xte @ class_vectors(enc, slabels, "spectrum").T).argmax(1)
    fig["spectrum_zeroshot_simulated_accuracy"] = round(float((sim_pred == cte).mean()), 4)
    k = 64
    zhat = knn_regression(xte @ xtr.T, ztr, k)
    fig["redshift_knn_r2"] = round(float(1 - ((zhat - zte) ** 2).sum() / ((zte - zte.mean()) ** 2).sum()), 4)
    zhead = np.expm1(enc.predict_redshift(xte))
    fig["redshift_linear_head_r2"] = round(float(1 - ((zhead - zte) ** 2).sum() / ((zte - zte.mean()) ** 2).sum()), 4)
    fig["redshift_knn_k"] = k
    fig["redshift_test_n"] = len(zte)
    fig["redshift_train_n"] = len(ztr)

    # --- image -> spectrum on the real pairs ---------------------------------------------
    real_spec = [r for r in ds.spectra if not r.simulated and r.object_id]
    pairs = [(i, r) for r in real_spec for i in ds.images if i.object_id == r.object_id]
    if pairs:
        specs = {r.spectrum_id: r for r in ds.spectra if not r.simulated}
        gallery_ids, rows = [], []
        for sid, rec in specs.items():
            try:  # a few real spectra (rest-frame UV composites) miss the common grid entirely
                rows.append(enc.encode_spectra([read_spectrum(ds.path(rec.path))])[0])
                gallery_ids.append(sid)
            except ValueError:
                continue
        g = np.array(rows)
        pairs = [(i, r) for i, r in pairs if r.spectrum_id in gallery_ids]
        qi = enc.encode_images([ds.path(i.path) for i, _ in pairs])
        ranks = []
        for row, (_, r) in zip(qi @ g.T, pairs):
            ranks.append(int((row > row[gallery_ids.index(r.spectrum_id)]).sum()))
        ranks = np.array(ranks)
        fig["image_to_spectrum_pairs_n"] = len(pairs)
        fig["image_to_spectrum_gallery_n"] = len(gallery_ids)
        fig["image_to_spectrum_recall@1"] = round(float((ranks < 1).mean()), 4)
        fig["image_to_spectrum_recall@5"] = round(float((ranks < 5).mean()), 4)
        fig["image_to_spectrum_median_rank"] = float(np.median(ranks) + 1)
        fig["image_to_spectrum_heldout_pairs_n"] = sum(1 for i, _ in pairs if i.split == "test")

    # --- throughput ----------------------------------------------------------------------
    spec_batch = spectra * max(1, 256 // max(1, len(spectra)))
    t = time.perf_counter()
    enc.encode_spectra(spec_batch)
    fig["spectrum_encode_per_s"] = round(len(spec_batch) / (time.perf_counter() - t), 1)
    write_results("encoders", fig, n=len(test) + len(real_test))


if __name__ == "__main__":
    main()
