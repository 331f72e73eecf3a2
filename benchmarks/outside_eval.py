"""The shipped encoders on the OUTSIDE SET: real files that no training, tuning or model choice
has used (``benchmarks/outside_set.py``; ``astrovlm.data.sources.outside``). These are the
figures issue 13 asks for, measured on the encoders as they ship now: the "before" column of
its retrain. References in the same run: a supervised linear probe on the same embeddings,
trained on each source's ``for_training()`` items (never the outside ones), and chance.

- **radio morphology** (FIRST, FRI / FRII / compact / bent): zero-shot from prompts in words
  ("a radio galaxy with edge-brightened lobes"), 1 view; the probe is trained on FIRST's own
  train split;
- **real spectra, coarse classes with L and T** (SpeX outside sources, 0.65-2.55 um): zero-shot
  over the classes the outside set holds; the spectrum tower reads 3600-10400 A, so only the
  red end of a SpeX spectrum reaches it (a spectrum with too little there is counted apart);
- **flux standards** (CALSPEC, ESO, NOAO, X-shooter outside stars, with the Sun and Vega):
  zero-shot stellar class over the classes they hold.

Every figure is printed and saved (``benchmarks/results/outside_eval.json``). Nothing here
trains an encoder; the probe is a reference, not a model we ship.

    python benchmarks/outside_eval.py          # ~5 min on 2 cores (first run fetches the sources)
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from _common import write_results  # noqa: E402

# Radio morphologies in plain words (the zero-shot prompts; FIRST's class names mean nothing to
# a text tower that never saw them).
RADIO_PHRASES = {
    "FRI": "a radio galaxy whose jets are brightest near the core and fade outwards",
    "FRII": "a radio galaxy with edge-brightened lobes and hot spots far from the core",
    "compact": "a compact, unresolved radio source",
    "bent": "a radio galaxy with bent jets, a head-tail or wide-angle tail source",
}
MIN_CLASS = 3  # a class with fewer outside items is reported but not scored


def _scores(truth: list[str], pred: list[str]) -> dict:
    from sklearn.metrics import balanced_accuracy_score

    t, p = np.asarray(truth), np.asarray(pred)
    return {"accuracy": round(float(np.mean(t == p)), 4) if len(t) else None,
            "balanced_accuracy": round(float(balanced_accuracy_score(t, p)), 4) if len(t) else None,
            "n": int(len(t))}


def _probe(train_x, train_y, test_x) -> list[str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(max_iter=3000, C=0.5, class_weight="balanced").fit(scaler.transform(train_x), train_y)
    return list(clf.predict(scaler.transform(test_x)))


def _zero_shot(encoder, emb: np.ndarray, labels: list[str], modality: str, phrases=None) -> list[str]:
    from astrovlm.encoders.zeroshot import class_vectors, phrase_vectors

    classes = (phrase_vectors(encoder, [phrases[lab] for lab in labels], modality) if phrases
               else class_vectors(encoder, labels, modality))
    return [labels[i] for i in (emb @ classes.T).argmax(1)]


def radio(encoder, outside: frozenset) -> dict:
    """FIRST morphology, the images read as radio (``band="radio"``) where the encoder has a
    radio head, else through the optical image head (encoders before it)."""
    from astrovlm.data.sources import first

    every = first.read_catalog(progress=True)
    test = [r for r in every if r.image_id in outside]
    train = [r for r in first.for_training(exclude=outside) if r.split == "train"]
    band = "radio" if "radio" in encoder.bands else "optical"
    e_test = encoder.encode_images([first.to_pil(r) for r in test], progress=True, band=band)
    e_train = encoder.encode_images([first.to_pil(r) for r in train], progress=True, band=band)
    labels = sorted(RADIO_PHRASES)
    truth = [r.label for r in test]
    out = {"zero_shot": _scores(truth, _zero_shot(encoder, e_test, labels, "image", RADIO_PHRASES)),
           "linear_probe": _scores(truth, _probe(e_train, [r.label for r in train], e_test)),
           "chance": round(1 / len(labels), 4), "classes": dict(Counter(truth)), "n_train": len(train),
           "band": band}
    return out


def _spectra(encoder, records, read) -> tuple[np.ndarray, list, int]:
    """Embeddings of the records the spectrum tower can read, those records, and how many it cannot."""
    from astrovlm.errors import AstroVLMError

    vecs, kept, unread = [], [], 0
    for rec in records:
        try:
            vecs.append(encoder.encode_spectra([read(rec)])[0])
            kept.append(rec)
        except AstroVLMError:
            unread += 1  # too little of it on the tower's 3600-10400 A grid
    return (np.array(vecs) if vecs else np.zeros((0, encoder.embed_dim), np.float32)), kept, unread


def spectra_eval(encoder, name: str, test, train, read) -> dict:
    e_test, test, unread = _spectra(encoder, test, read)
    e_train, train, _ = _spectra(encoder, train, read)
    counts = Counter(r.coarse_class for r in test)
    labels = sorted(c for c, n in counts.items() if n >= MIN_CLASS)
    keep = [i for i, r in enumerate(test) if r.coarse_class in labels]
    truth = [test[i].coarse_class for i in keep]
    zs = _zero_shot(encoder, e_test[keep], labels, "spectrum") if keep else []
    tr = [i for i, r in enumerate(train) if r.coarse_class in labels]
    probe = _probe(e_train[tr], [train[i].coarse_class for i in tr], e_test[keep]) if keep and tr else []
    # galaxy versus star (the figure): of the real galaxy spectra, how many zero-shot
    # calls a galaxy; of the stars, how many it calls anything but a galaxy or a quasar
    extragalactic = ("galaxy", "quasar")
    galaxies = [p == "galaxy" for t, p in zip(truth, zs) if t == "galaxy"]
    stars = [p not in extragalactic for t, p in zip(truth, zs) if t not in extragalactic]
    return {"zero_shot": _scores(truth, zs), "linear_probe": _scores(truth, probe) if probe else None,
            "chance": round(1 / max(len(labels), 1), 4), "classes": dict(counts), "scored_classes": labels,
            "not_on_the_tower_grid": unread, "n_train": len(tr),
            "galaxies_called_galaxy": round(float(np.mean(galaxies)), 4) if galaxies else None,
            "galaxies_n": len(galaxies),
            "stars_called_star": round(float(np.mean(stars)), 4) if stars else None, "stars_n": len(stars)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="encoder folder (default: the shipped encoder)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    from astrovlm.data.sources import calspec, spex
    from astrovlm.data.sources.outside import load_outside_ids
    from astrovlm.encoders import AlignedEncoder

    encoder = AlignedEncoder.from_pretrained(args.model) if args.model else AlignedEncoder.from_pretrained()
    outside = load_outside_ids()
    figures: dict = {"encoder": encoder.fingerprint}
    parts = {"radio": radio(encoder, outside)}
    sp_all = spex.read_catalog(progress=True)
    sp_test = [r for r in sp_all if r.spectrum_id in outside and r.coarse_class not in ("other", "unclassified")]
    sp_train = [r for r in spex.for_training(exclude=outside) if r.coarse_class not in ("other", "unclassified")]
    parts["spex"] = spectra_eval(encoder, "spex", sp_test, sp_train, spex.read_spectrum)
    st_all = calspec.read_catalog(progress=True)
    st_test = [r for r in st_all if (r.spectrum_id in outside or r.reserved) and r.coarse_class and not r.simulated]
    st_train = [r for r in calspec.for_training(exclude=outside) if r.coarse_class and not r.simulated]
    parts["standards"] = spectra_eval(encoder, "standards", st_test, st_train, calspec.read_spectrum)
    for part, got in parts.items():
        for key, value in got.items():
            if isinstance(value, dict) and "accuracy" in value:
                figures[f"{part}_{key}_accuracy"] = value["accuracy"]
                figures[f"{part}_{key}_balanced_accuracy"] = value["balanced_accuracy"]
                figures[f"{part}_{key}_n"] = value["n"]
            elif isinstance(value, (int, float, str)) or value is None:
                figures[f"{part}_{key}"] = value
        figures[f"{part}_classes"] = ", ".join(f"{k} {v}" for k, v in sorted(got["classes"].items()))
    for part, got in parts.items():
        zs, lp = got["zero_shot"], got["linear_probe"] or {}
        print(f"{part:10s} zero-shot {zs['accuracy']} (balanced {zs['balanced_accuracy']}, n={zs['n']}); "
              f"linear probe {lp.get('accuracy')}; chance {got['chance']}", flush=True)
    write_results("outside_eval", figures, n=sum(g["zero_shot"]["n"] for g in parts.values()))
    return figures


if __name__ == "__main__":
    main(sys.argv[1:] or None)
