"""The assistant on held-out objects: facts right, cited sources relevant, and speed on 2 cores.

Questions are asked about the sample sky's TEST split only (objects never seen in
training): type, constellation, Hubble type, redshift, magnitude and aliases by name, and
"what is this?" for their images and spectra. Three systems answer the same questions in
one run:

- ``ours``: retrieval + the LoRA-tuned SmolLM2 with the projector (the shipped weights);
- ``base_no_retrieval``: SmolLM2-135M-Instruct as it ships, asked the question alone;
- ``base_retrieval``: the same base model given our prompt and retrieved context, no LoRA
  (attachments reach it as the context's text only: it has no trained projector).

For attachment questions the held-out object's own items are kept out of the neighbours
(only TRAIN/VAL items may be retrieved), so "what is this?" is answered from the zero-shot
class and other objects, not by finding the same object.

Scoring (whether the answer states the right fact), after normalising case, accents and
spaces:
- type: the catalog type (e.g. "barred spiral galaxy") or its coarse class ("galaxy"; "star"
  for stars) appears in the answer;
- constellation: the constellation's name appears;
- Hubble type: the catalog's Hubble type appears as a token (e.g. "SBbc");
- redshift: a number in the answer is within 0.5% (or 1e-6) of the catalog redshift;
- magnitude: a number in the answer is within 0.05 mag of the V (or B when no V) magnitude;
- aliases: another catalog name of the object (not the one asked with) appears;
- image / spectrum "what is this?": the FIRST class named in the answer (synonyms mapped,
  e.g. "HII region" -> nebula, "globular star cluster" -> globular cluster) is the true
  coarse class, so listing every class does not score.
Cited-source relevance: of the sources an answer cites ([n]), the fraction whose object is
the asked object or whose text states the fact (by the same matcher).

Speed (ours, greedy, max 96 new tokens, fp32 on the CPU): time to first token, decode
tokens/s, end-to-end time per question (retrieval + prompt + generation) p50/p90, plus the
decode rate of the base model on its long answers.

    python benchmarks/assistant_qa.py                 # ~20 min on 2 cores
    python benchmarks/assistant_qa.py --max-questions 40
    python benchmarks/assistant_qa.py --split val --skip-baselines   # development figures, VAL split
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import unicodedata
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_results  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUESTIONS = {
    "type": ["What kind of object is {n}?", "What type of object is {n}?", "What is {n}?"],
    "constellation": ["Which constellation is {n} in?", "In which constellation is {n}?"],
    "hubble": ["What is the Hubble type of {n}?", "What is the morphological type of {n}?"],
    "redshift": ["What is the redshift of {n}?"],
    "magnitude": ["How bright is {n}?", "What is the magnitude of {n}?"],
    "aliases": ["What are other names for {n}?", "What else is {n} called?"],
}
IMAGE_Q = ["What is this?", "What kind of object is this?", "What does this image show?"]
SPECTRUM_Q = ["What is this?", "What kind of object is this spectrum from?", "What does this spectrum show?"]
BASE_SYSTEM = "You are a helpful astronomy assistant. Answer concisely."

# Class names and synonyms, longest first so "planetary nebula" wins over "nebula".
IMAGE_SYNONYMS = {
    "planetary nebula": "planetary nebula", "globular cluster": "globular cluster",
    "globular star cluster": "globular cluster", "open cluster": "open cluster",
    "open star cluster": "open cluster", "galaxy": "galaxy", "galaxies": "galaxy",
    "hii region": "nebula", "h ii region": "nebula", "emission nebula": "nebula", "reflection nebula": "nebula",
    "dark nebula": "nebula", "supernova remnant": "nebula", "nebula": "nebula", "star cluster with nebula": "nebula",
}
SPECTRUM_SYNONYMS = {
    "o/b star": "O/B star", "ob star": "O/B star", "o star": "O/B star", "b star": "O/B star",
    "o-type": "O/B star", "b-type": "O/B star", "a star": "A star", "a-type": "A star", "f star": "F star",
    "f-type": "F star", "g star": "G star", "g-type": "G star", "k star": "K star", "k-type": "K star",
    "m star": "M star", "m-type": "M star", "white dwarf": "white dwarf", "galaxy": "galaxy",
    "quasar": "quasar", "qso": "quasar",
}


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    return " ".join(text.replace("\u2212", "-").split())


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text.replace("\u2212", "-"))]


def first_class(text: str, synonyms: dict) -> str | None:
    t = " " + norm(text).replace("-", "-") + " "
    best = None
    for phrase, cls in synonyms.items():
        m = re.search(r"(?<![a-z0-9/])" + re.escape(phrase) + r"(?![a-z0-9])", t)
        if m and (best is None or m.start() < best[0] or (m.start() == best[0] and len(phrase) > best[1])):
            best = (m.start(), len(phrase), cls)
    return best[2] if best else None


def states_fact(q: dict, text: str, first_only: bool = True) -> bool:
    """Does ``text`` state the question's fact? (the documented matchers above)"""
    t = norm(text)
    kind, truth = q["kind"], q["truth"]
    if kind == "type":
        return any(norm(x) in t for x in truth)
    if kind == "constellation":
        return norm(truth) in t
    if kind == "hubble":
        return re.search(r"(?<![a-z0-9])" + re.escape(norm(truth)) + r"(?![a-z0-9])", t) is not None
    if kind == "redshift":
        return any(abs(x - truth) <= max(1e-6, 0.005 * abs(truth)) for x in numbers(text))
    if kind == "magnitude":
        return any(abs(x - truth) <= 0.05 for x in numbers(text))
    if kind == "aliases":
        squashed = t.replace(" ", "")
        return any(norm(a).replace(" ", "") in squashed for a in truth)
    if kind in ("image", "spectrum"):
        syn = IMAGE_SYNONYMS if kind == "image" else SPECTRUM_SYNONYMS
        if first_only:
            return first_class(text, syn) == truth
        return any(cls == truth and re.search(r"(?<![a-z0-9/])" + re.escape(p) + r"(?![a-z0-9])", t)
                   for p, cls in syn.items())
    raise ValueError(kind)


# ----------------------------------------------------------------------------- questions
def make_questions(ds, resolver, index, rng: random.Random, max_questions: int,
                   split: str = "test") -> list[dict]:
    from astrovlm.data import cards
    from astrovlm.data.records import IMAGE_CLASSES
    from astrovlm.data.resolver import name_key

    test = [o for o in ds.objects if o.split == split]
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for obj in test:
        names = []
        for n in [obj.name] + cards._shown_aliases(obj):
            try:
                if resolver.resolve(n).object_id == obj.object_id:
                    names.append(n)
            except Exception:
                pass
        if not names:
            continue
        name = rng.choice(names)
        facts = {"type": [obj.otype] + ([obj.coarse_class] if obj.coarse_class in IMAGE_CLASSES else [])
                 + (["star"] if obj.otype == "star" else []),
                 "constellation": obj.constellation,
                 "hubble": obj.hubble_type if obj.otype != "star" else None,
                 "redshift": obj.redshift if obj.otype != "star" else None,
                 "magnitude": obj.v_mag if obj.v_mag is not None else obj.b_mag}
        others = [a for a in [obj.name] + list(obj.aliases) if name_key(a) != name_key(name)]
        facts["aliases"] = others or None
        for kind, truth in facts.items():
            if truth in (None, [], ""):
                continue
            by_kind[kind].append({"kind": kind, "truth": truth, "object_id": obj.object_id, "name": name,
                                  "question": rng.choice(QUESTIONS[kind]).format(n=name)})
    for rec in ds.images:
        obj = ds.get_object(rec.object_id)
        # Only files the encoder reads (the index build skips the others).
        if rec.split == split and obj is not None and obj.coarse_class in IMAGE_CLASSES \
                and f"image:{rec.image_id}" in index:
            by_kind["image"].append({"kind": "image", "truth": obj.coarse_class, "object_id": obj.object_id,
                                     "image": str(ds.path(rec.path)), "question": rng.choice(IMAGE_Q)})
    for rec in ds.spectra:
        if rec.split == split and f"spectrum:{rec.spectrum_id}" in index:
            by_kind["spectrum"].append({"kind": "spectrum", "truth": rec.spectral_class, "object_id": rec.object_id,
                                        "template": rec.template, "simulated": rec.simulated,
                                        "spectrum": str(ds.path(rec.path)), "question": rng.choice(SPECTRUM_Q)})
    # Balanced: the same share for each kind (fewer where fewer exist).
    kinds = sorted(by_kind)
    per = max(1, max_questions // len(kinds))
    out = []
    for kind in kinds:
        items = by_kind[kind]
        rng.shuffle(items)
        out += items[:per]
    return out


# ----------------------------------------------------------------------------- systems
def ask_ours(assistant, q) -> dict:
    assistant.exclude_objects = {q["object_id"]} if q.get("object_id") else set()
    t0 = time.perf_counter()
    ans = assistant.ask(q["question"], q.get("image"), q.get("spectrum"))
    return {"text": ans.text, "answer": ans, "seconds": time.perf_counter() - t0}


def ask_base_alone(model, q) -> dict:
    messages = [{"role": "system", "content": BASE_SYSTEM}, {"role": "user", "content": q["question"]}]
    stats: dict = {}
    t0 = time.perf_counter()
    text = "".join(model.stream(messages, None, 96, stats=stats)).strip()
    end = time.perf_counter()
    first = stats.get("first_token_time") or end
    return {"text": text, "answer": None, "seconds": end - t0, "new_tokens": stats.get("new_tokens", 0),
            "decode_s": end - first}


def cited_relevance(q: dict, answer) -> tuple[int, int]:
    """(relevant, cited) sources of one answer."""
    if answer is None:
        return 0, 0
    relevant = cited = 0
    for n, s in enumerate(answer.context, 1):
        if not any(d["n"] == n and d.get("cited") for d in answer.sources):
            continue
        cited += 1
        same_object = q.get("object_id") and s.object_id == q["object_id"]
        relevant += bool(same_object or states_fact(q, s.text, first_only=False))
    return relevant, cited


def pct(values, p) -> float:
    return float(np.percentile(values, p)) if values else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-questions", type=int, default=126, help="spread evenly over the 8 kinds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", help="assistant folder (default: the shipped weights)")
    ap.add_argument("--dataset", help="dataset folder (default: the sample sky)")
    ap.add_argument("--index", help="index folder (default: the sample sky's index)")
    ap.add_argument("--encoder", help="encoder folder (default: the shipped encoder)")
    ap.add_argument("--skip-baselines", action="store_true", help="only our model (quick checks)")
    ap.add_argument("--tag", help="results name suffix (assistant_qa_TAG.json), to keep a full run beside")
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="whose objects are asked about: test (the held-out figures) or val (development)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    from astrovlm.assistant.model import AssistantConfig, AstroLlava
    from astrovlm.assistant.rag import Assistant
    from astrovlm.sky import Sky

    t_load = time.perf_counter()
    sky = Sky.open(dataset=args.dataset, encoder=args.encoder, index=args.index)
    ds, index, resolver = sky.dataset, sky.index, sky.resolver
    ours_model = AstroLlava.from_pretrained(args.model)
    load_s = time.perf_counter() - t_load
    keep_out = {"train", "val", "test"} - {args.split}  # the asked objects' own items are never neighbours
    ours = Assistant(ours_model, ds, sky.retriever, resolver, allowed_splits=keep_out)
    questions = make_questions(ds, resolver, index, random.Random(args.seed), args.max_questions, args.split)
    print(f"{len(questions)} questions on held-out objects: "
          + ", ".join(f"{k} {sum(q['kind'] == k for q in questions)}" for k in sorted({q['kind'] for q in questions})),
          flush=True)

    systems = {"ours": lambda q: ask_ours(ours, q)}
    if not args.skip_baselines:
        base = AstroLlava.build(AssistantConfig(language_model=ours_model.config.language_model), lora=False).eval()
        base_rag = Assistant(base, ds, sky.retriever, resolver, allowed_splits=keep_out, feed_features=False)
        systems["base_no_retrieval"] = lambda q: ask_base_alone(base, q)
        systems["base_retrieval"] = lambda q: ask_ours(base_rag, q)

    from tqdm.auto import tqdm

    rows = []
    figures: dict = {}
    for name, run in systems.items():
        right = defaultdict(list)
        rel = cit = 0
        for q in tqdm(questions, desc=name, unit="question"):
            got = run(q)
            ok = states_fact(q, got["text"])
            right[q["kind"]].append(ok)
            r, c = cited_relevance(q, got["answer"])
            rel, cit = rel + r, cit + c
            ans = got["answer"]
            rows.append({"system": name, "kind": q["kind"], "question": q["question"], "object_id": q.get("object_id"),
                         "truth": q["truth"], "answer": got["text"], "right": ok,
                         "cited": [s["id"] for s in ans.cited] if ans else [], "seconds": round(got["seconds"], 3),
                         "timings": ans.timings if ans else {"new_tokens": got.get("new_tokens")}})
            if name == "base_no_retrieval" and got.get("new_tokens", 0) > 1:
                figures.setdefault("_base_decode", []).append((got["new_tokens"] - 1) / max(got["decode_s"], 1e-6))
        every = [x for v in right.values() for x in v]
        figures[f"{name}_facts_right"] = round(float(np.mean(every)), 4)
        for kind, v in sorted(right.items()):
            figures[f"{name}_right_{kind}"] = round(float(np.mean(v)), 4)
        if name != "base_no_retrieval":
            figures[f"{name}_cited_relevant"] = round(rel / cit, 4) if cit else 0.0
            answered = [r for r in rows if r["system"] == name]
            figures[f"{name}_answers_citing"] = round(float(np.mean([bool(r["cited"]) for r in answered])), 4)
        print(f"{name}: facts right {figures[f'{name}_facts_right']:.3f}"
              + (f", cited sources relevant {figures.get(f'{name}_cited_relevant', float('nan')):.3f}"
                 if name != "base_no_retrieval" else ""), flush=True)

    mine = [r for r in rows if r["system"] == "ours"]
    ttft = [r["timings"]["first_token_s"] for r in mine]
    e2e = [r["seconds"] for r in mine]
    tps = [r["timings"]["tokens_per_s"] for r in mine if r["timings"].get("tokens_per_s")]
    figures.update({
        "ours_ttft_p50_s": round(pct(ttft, 50), 3), "ours_ttft_p90_s": round(pct(ttft, 90), 3),
        "ours_tokens_per_s_p50": round(pct(tps, 50), 2),
        "ours_e2e_p50_s": round(pct(e2e, 50), 3), "ours_e2e_p90_s": round(pct(e2e, 90), 3),
        "ours_new_tokens_mean": round(float(np.mean([r["timings"]["new_tokens"] for r in mine])), 1),
        "ours_prompt_tokens_mean": round(float(np.mean([r["timings"]["prompt_tokens"] for r in mine])), 1),
        "load_s": round(load_s, 2), "max_new_tokens": 96, "threads": torch.get_num_threads(),
    })
    base_decode = figures.pop("_base_decode", None)
    if base_decode:
        figures["base_tokens_per_s_p50"] = round(pct(base_decode, 50), 2)
    for kind in sorted({q["kind"] for q in questions}):
        figures[f"n_{kind}"] = sum(q["kind"] == kind for q in questions)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "assistant_qa" if args.split == "test" else f"assistant_qa_{args.split}"
    if args.tag:
        name += f"_{args.tag}"
    with open(RESULTS / f"{name}_answers.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, default=str) + "\n")
    write_results(name, figures, len(questions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
