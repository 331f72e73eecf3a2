"""Plain-language text queries against the shipped encoder and index (issue 13): precision@10.

Each query of the held-out set ``benchmarks/data/descriptions.jsonl`` (a user's own words, no
catalog vocabulary: "a dense round swarm of hundreds of thousands of ancient stars") names a
target class; the query goes through the public door, ``Sky.open().retriever.text(query,
modality=..., k=10, splits=...)``, and precision@10 is the fraction of the 10 hits whose class
is the target (an image's object's coarse class; a spectrum's spectral class, the index's
``coarse_class`` metadata).

Reported in the same run, per class and modality, and macro-averaged over classes:
- ``plain``: the held-out descriptions (mean p@10 over each class's descriptions);
- ``catalog``: catalog phrasing ("a globular cluster"), the reference;
- ``chance``: the class's share of the searched items (what a random ranking scores);
each on the TEST split only and on all splits, and each both over raw hits and with one hit per
object (``per_object=1``: a class with one object of many images, such as the Large Magellanic
Cloud's 16, cannot fill the ten alone).

    python benchmarks/text_descriptions.py          # ~1 min on 2 cores (most of it loading)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_results  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SET = Path(__file__).resolve().parent / "data" / "descriptions.jsonl"
SPLITS = {"test": {"test"}, "all": None}


def load_set(path: Path = SET) -> list[dict]:
    return [r for r in map(json.loads, open(path, encoding="utf-8")) if "_meta" not in r]


def searched_classes(ds, index, modality: str, splits) -> Counter:
    """How many indexed items of each class a query of this modality and split searches."""
    out: Counter = Counter()
    if modality == "image":
        for rec in ds.images:
            obj = ds.get_object(rec.object_id)
            if f"image:{rec.image_id}" in index and (splits is None or rec.split in splits):
                out[obj.coarse_class if obj else None] += 1
    else:
        for rec in ds.spectra:
            if f"spectrum:{rec.spectrum_id}" in index and (splits is None or rec.split in splits):
                out[rec.spectral_class] += 1
    return out


def precision_at_10(retriever, text: str, modality: str, target: str, splits, per_object) -> tuple[float, list]:
    res = retriever.text(text, modality=modality, k=10, splits=splits, per_object=per_object)
    classes = [(h.metadata or {}).get("coarse_class") for h in res.hits]
    # fewer than 10 hits count as misses: the ten slots are what the user sees
    return sum(c == target for c in classes) / 10.0, classes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", type=Path, default=SET)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    from astrovlm.sky import Sky

    t0 = time.perf_counter()
    sky = Sky.open(progress=False)
    load_s = time.perf_counter() - t0
    rows = load_set(args.set)
    figures: dict = {"load_s": round(load_s, 2), "n_plain": sum(r["phrasing"] == "plain" for r in rows),
                     "n_catalog": sum(r["phrasing"] == "catalog" for r in rows)}
    answers = []
    t_q = []
    for split_name, splits in SPLITS.items():
        for per_object, tag in ((None, ""), (1, "_per_object")):
            scores: dict = defaultdict(list)     # (modality, class, phrasing) -> p@10 values
            for r in rows:
                t1 = time.perf_counter()
                p, classes = precision_at_10(sky.retriever, r["text"], r["modality"], r["target_class"], splits,
                                             per_object)
                t_q.append(time.perf_counter() - t1)
                scores[(r["modality"], r["target_class"], r["phrasing"])].append(p)
                answers.append({"id": r["id"], "split": split_name, "per_object": per_object, "text": r["text"],
                                "target": r["target_class"], "p_at_10": p, "hit_classes": classes})
            for modality in ("image", "spectrum"):
                counts = searched_classes(sky.dataset, sky.index, modality, splits)
                total = sum(counts.values())
                classes = sorted({c for (m, c, _) in scores if m == modality})
                macro = defaultdict(list)
                for cls in classes:
                    chance = counts.get(cls, 0) / total if total else float("nan")
                    for phrasing in ("plain", "catalog"):
                        v = float(np.mean(scores[(modality, cls, phrasing)]))
                        figures[f"{modality}_{split_name}{tag}_{phrasing}_{cls}"] = round(v, 4)
                        macro[phrasing].append(v)
                    figures[f"{modality}_{split_name}{tag}_chance_{cls}"] = round(chance, 4)
                    macro["chance"].append(chance)
                for phrasing, v in macro.items():
                    figures[f"{modality}_{split_name}{tag}_{phrasing}_macro"] = round(float(np.mean(v)), 4)
                figures[f"{modality}_{split_name}_searched_items"] = total
                print(f"text->{modality} [{split_name}{tag or ', raw hits'}] p@10 macro: plain "
                      f"{figures[f'{modality}_{split_name}{tag}_plain_macro']:.3f}, catalog "
                      f"{figures[f'{modality}_{split_name}{tag}_catalog_macro']:.3f}, chance "
                      f"{figures[f'{modality}_{split_name}{tag}_chance_macro']:.3f}", flush=True)
    figures["query_ms_p50"] = round(float(np.percentile(t_q, 50)) * 1000, 2)
    figures["set"] = "benchmarks/data/descriptions.jsonl (held out, written 2026-12-02 before training)"
    figures["encoder"] = sky.encoder.fingerprint
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "text_descriptions_hits.jsonl", "w", encoding="utf-8") as fh:
        for a in answers:
            fh.write(json.dumps(a) + "\n")
    write_results("text_descriptions", figures, figures["n_plain"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
