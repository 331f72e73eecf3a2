"""Build the assistant's training examples from the sample sky (TRAIN split; VAL for validation).

Two files per split, JSON lines, one example each: ``{"kind", "messages", "answer",
"features": {modality: [D floats]}, "object_id"}``.

- ``stage1_<split>.jsonl`` (projector alignment): an image or spectrum, its encoder vector
  spliced in, and one of its captions (``astrovlm.encoders.captions``) as the answer.
- ``stage2_<split>.jsonl`` (instruction tuning): questions whose contexts are built by the
  assistant's own retrieval (``Assistant.retrieve``: catalog card, observation, literature,
  attachment analysis), so training prompts look exactly like the prompts at run time, plus
  distractor cards of other objects at random positions. The answers are short, state the
  catalog fact as the card writes it, and cite the card's number:
    * catalog facts: type, constellation, position, Hubble type, redshift, magnitude,
      aliases, size, spectral type;
    * questions the context does not answer (missing fields, distances, discoverers, an
      object whose card is absent) -> "The context does not say.";
    * follow-ups that name no object ("Which constellation is it in?") after a first turn;
    * "what is this?" for an image or spectrum with its real encoder vector: the answer is
      the object's true class, kept only when the context supports it (zero-shot class,
      runner-up or a neighbour names it), so the model learns to choose among the evidence
      and never to state what the context does not hold;
    * definitions from literature passages ("What is parallax?").

Retrieval here may only reach the split being built (neighbours, literature), and the
object asked about is left out of its own neighbours, as for held-out objects at test time.

    python training/assistant/make_data.py --out training/runs/assistant/data
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from astrovlm.assistant.prompts import NOT_IN_CONTEXT, Source, build_messages  # noqa: E402
from astrovlm.assistant.rag import Assistant, Embedding, _shown_count  # noqa: E402
from astrovlm.data import cards  # noqa: E402
from astrovlm.data.records import IMAGE_CLASSES, SPECTRUM_CLASSES, SkyDataset  # noqa: E402
from astrovlm.encoders.captions import image_captions, spectrum_captions  # noqa: E402

FACT_QUESTIONS = {
    "type": ["What kind of object is {n}?", "What type of object is {n}?", "What is {n}?"],
    "constellation": ["Which constellation is {n} in?", "In which constellation is {n}?",
                      "In what constellation can I find {n}?"],
    "where": ["Where is {n}?", "Where is {n} in the sky?", "What are the coordinates of {n}?"],
    "kind_where": ["What kind of object is {n} and where is it?", "What is {n} and where is it?"],
    "hubble": ["What is the Hubble type of {n}?", "What is the morphological type of {n}?"],
    "redshift": ["What is the redshift of {n}?", "What redshift does {n} have?"],
    "magnitude": ["How bright is {n}?", "What is the magnitude of {n}?", "What is the apparent magnitude of {n}?"],
    "aliases": ["What are other names for {n}?", "What else is {n} called?", "What are the aliases of {n}?"],
    "size": ["How large is {n} on the sky?", "What is the angular size of {n}?"],
    "spectral": ["What is the spectral type of {n}?", "What spectral type is {n}?"],
}
FIELD_WEIGHTS = {"type": 2.0, "constellation": 2.0, "hubble": 4.0, "redshift": 2.5, "magnitude": 2.0,
                 "aliases": 2.0, "where": 1.0, "kind_where": 1.0, "size": 0.5, "spectral": 1.5}
FOLLOW_UPS = {
    "constellation": ["Which constellation is it in?", "In which constellation is it?"],
    "magnitude": ["How bright is it?", "What is its magnitude?"],
    "where": ["Where is it?", "What are its coordinates?"],
    "type": ["What kind of object is it?"],
    "redshift": ["What is its redshift?"],
}
NEVER_IN_CARDS = ["How far away is {n}?", "Who discovered {n}?", "How old is {n}?", "What is the mass of {n}?",
                  "When was {n} discovered?", "How many stars are in {n}?", "What is the distance to {n}?",
                  "What is the temperature of {n}?"]
# Questions for a field the card lacks; the answer is then "The context does not say."
MISSING_FIELD = {"hubble": "hubble_type", "redshift": "redshift", "magnitude": "v_mag", "size": "major_axis_arcmin",
                 "spectral": "spectral_type", "constellation": "constellation"}
IMAGE_QUESTIONS = ["What is this?", "What kind of object is this?", "What does this image show?",
                   "What type of object is in this image?", "Can you identify this object?"]
SPECTRUM_QUESTIONS = ["What is this?", "What kind of object is this spectrum from?", "What does this spectrum show?",
                      "What type of object has this spectrum?", "Classify this spectrum."]


def article(words: str) -> str:
    return cards.article(words)


def kind_words(obj) -> str:
    """The object's kind exactly as its card words it."""
    if obj.otype == "star" and obj.spectral_type:
        return f"star of spectral type {obj.spectral_type}"
    return obj.otype


def fact_answer(field: str, obj, name: str, c: int, pronoun: bool = False) -> str | None:
    """The answer to a fact question, or None if the card does not hold the fact."""
    subj = "It" if pronoun else name
    pos = cards.position_text(obj.ra_deg, obj.dec_deg) if obj.ra_deg is not None else None
    kind = kind_words(obj)
    if field == "type":
        return f"{subj} is {article(kind)} {kind} [{c}]."
    if field == "constellation":
        return obj.constellation and f"{subj} is in the constellation {obj.constellation} [{c}]."
    if field == "where":
        if pos is None:
            return None
        return f"{subj} is in {obj.constellation}, at {pos} [{c}]." if obj.constellation else f"{subj} is at {pos} [{c}]."
    if field == "kind_where":
        if obj.constellation:
            return f"{subj} is {article(kind)} {kind} in {obj.constellation} [{c}]."
        return pos and f"{subj} is {article(kind)} {kind} at {pos} [{c}]."
    if field == "hubble":
        return obj.hubble_type and obj.otype != "star" and f"{subj} has Hubble type {obj.hubble_type} [{c}]."
    if field == "redshift":
        return obj.redshift is not None and obj.otype != "star" and \
            f"The redshift of {'it' if pronoun else name} is {cards.format_number(obj.redshift, 6)} [{c}]."
    if field == "magnitude":
        if obj.v_mag is not None:
            return f"{subj} has V magnitude {cards.format_number(obj.v_mag)} [{c}]."
        return obj.b_mag is not None and f"{subj} has B magnitude {cards.format_number(obj.b_mag)} [{c}]."
    if field == "aliases":
        from astrovlm.data.resolver import name_key

        # the names in the card the assistant reads (Assistant._card_source: every designation)
        shown = [obj.name] + cards._shown_aliases(obj, fill=True)
        others = [a for a in shown if name_key(a) != name_key(name)]
        return others and f"{subj} is also known as {', '.join(others)} [{c}]."
    if field == "size":
        if not obj.major_axis_arcmin:
            return None
        size = cards.format_number(obj.major_axis_arcmin, 1)
        if obj.minor_axis_arcmin:
            size += f" x {cards.format_number(obj.minor_axis_arcmin, 1)}"
        return f"{subj} measures {size} arcmin [{c}]."
    if field == "spectral":
        return obj.otype == "star" and obj.spectral_type and f"{subj} has spectral type {obj.spectral_type} [{c}]."
    raise ValueError(field)


_CLASS_RE = {c: re.compile(r"(?<!planetary )\b" + re.escape(c.lower()) + r"\b") if c == "nebula"
             else re.compile(r"\b" + re.escape(c.lower()) + r"s?\b") for c in set(IMAGE_CLASSES) | set(SPECTRUM_CLASSES)}


def supports(text: str, cls: str) -> bool:
    """Does the attachment's context line name this class (zero-shot, runner-up or neighbour)?"""
    return bool(_CLASS_RE[cls].search(text.lower()))


class ExampleMaker:
    def __init__(self, ds: SkyDataset, helper: Assistant, split: str, rng: random.Random):
        self.ds, self.helper, self.split, self.rng = ds, helper, split, rng
        self.objects = [o for o in ds.objects if o.split == split]
        self.cards = {p.object_id: p for p in ds.passages if p.kind == "catalog_card"}
        self.counts: Counter = Counter()
        self._vectors: dict[str, object] = {}

    def indexed(self, modality: str, records) -> list:
        """Records the index holds (the index build skips files the encoder cannot read,
        e.g. a spectrum with no pixels in the encoder's wavelength range)."""
        prefix = "image:" if modality == "image" else "spectrum:"
        key = (lambda r: r.image_id) if modality == "image" else (lambda r: r.spectrum_id)
        keep = [r for r in records if prefix + key(r) in self.helper.retriever.index]
        self.counts[f"{modality}:not_indexed"] += len(records) - len(keep)
        return keep

    def vectors(self, modality: str, records) -> None:
        """Encode a split's images or spectra once, in batches (both stages reuse them)."""
        todo = [r for r in records if r.path not in self._vectors]
        if not todo:
            return
        enc = self.helper.retriever.encoder
        paths = [self.ds.path(r.path) for r in todo]
        encode = enc.encode_images if modality == "image" else enc.encode_spectra
        vecs = encode(paths, batch_size=32, progress=True)
        self._vectors.update({r.path: v for r, v in zip(todo, vecs)})

    # ----- helpers
    def card_source(self, obj) -> Source:
        return self.helper.context.card_source(obj)

    def names_for(self, obj) -> list[str]:
        """Names a user may type that resolve to this object (name and shown aliases)."""
        out = []
        for n in [obj.name] + cards._shown_aliases(obj):
            try:
                if self.helper.resolver.resolve(n).object_id == obj.object_id:
                    out.append(n)
            except Exception:
                pass
        return out

    def distractors(self, obj, n: int) -> list[Source]:
        same = [o for o in self.objects if o.coarse_class == obj.coarse_class and o.object_id != obj.object_id]
        pool = same if same and self.rng.random() < 0.5 else [o for o in self.objects if o.object_id != obj.object_id]
        return [self.card_source(o) for o in self.rng.sample(pool, min(n, len(pool)))]

    def example(self, kind, question, sources, answer, history=(), features=None, object_id=None):
        attachments = tuple(m for m in ("image", "spectrum") if features and m in features)
        messages, _ = build_messages(question, sources, list(history), attachments)
        self.counts[kind] += 1
        return {"kind": kind, "messages": messages, "answer": answer,
                "features": {m: [round(float(x), 6) for x in v] for m, v in (features or {}).items()},
                "object_id": object_id}

    def with_distractors(self, r_sources: list[Source], obj, p: float = 0.5) -> tuple[list[Source], int | None]:
        """Insert 0-2 distractor cards at random places; return sources and the card's number."""
        sources = list(r_sources)
        if self.rng.random() < p:
            for d in self.distractors(obj, self.rng.choice([1, 2])):
                sources.insert(self.rng.randrange(len(sources) + 1), d)
        shown = _shown_count(sources)
        for i, s in enumerate(sources[:shown], 1):
            if s.kind == "catalog_card" and s.object_id == obj.object_id:
                return sources, i
        return sources, None

    # ----- example kinds
    def facts(self, per_object: int) -> list[dict]:
        out = []
        for obj in tqdm(self.objects, desc=f"facts ({self.split})", unit="object"):
            names = self.names_for(obj)
            if not names:
                continue
            # Weighted order without repeats: the benchmark's facts first, rarer ones less often.
            fields = [f for f in FACT_QUESTIONS if f != "spectral" or obj.otype == "star"]
            fields.sort(key=lambda f: self.rng.random() ** (1.0 / FIELD_WEIGHTS[f]), reverse=True)
            made = 0
            for field in fields:
                if made >= per_object:
                    break
                name = self.rng.choice(names)
                question = self.rng.choice(FACT_QUESTIONS[field]).format(n=name)
                r = self.helper.retrieve(question)
                if not r.objects or r.objects[0].object_id != obj.object_id:
                    continue
                sources, c = self.with_distractors(r.sources, obj)
                if c is None:
                    continue
                answer = fact_answer(field, obj, name, c)
                if not answer:
                    continue
                out.append(self.example(f"fact:{field}", question, sources, answer, object_id=obj.object_id))
                made += 1
        return out

    def unanswerable(self, n: int) -> list[dict]:
        out = []
        objs = self.rng.sample(self.objects, min(n, len(self.objects)))
        for obj in objs:
            names = self.names_for(obj)
            if not names:
                continue
            name = self.rng.choice(names)
            missing = [f for f, attr in MISSING_FIELD.items() if getattr(obj, attr) in (None, "", 0)
                       and not (f == "spectral" and obj.otype != "star")
                       and not (f == "magnitude" and obj.b_mag is not None)]
            roll = self.rng.random()
            if roll < 0.45 and missing:
                field = self.rng.choice(missing)
                question, kind = self.rng.choice(FACT_QUESTIONS[field]).format(n=name), f"none:{field}"
            else:
                question, kind = self.rng.choice(NEVER_IN_CARDS).format(n=name), "none:never"
            r = self.helper.retrieve(question)
            if not r.objects or r.objects[0].object_id != obj.object_id:
                continue
            sources, _ = self.with_distractors(r.sources, obj, p=0.3)
            if roll > 0.85:
                # The asked object's card is missing: only other objects are in the context.
                sources = [s for s in sources if s.object_id != obj.object_id] + self.distractors(obj, 2)
                kind = "none:absent"
            out.append(self.example(kind, question, sources, NOT_IN_CONTEXT, object_id=obj.object_id))
        return out

    def follow_ups(self, n: int) -> list[dict]:
        out = []
        for obj in self.rng.sample(self.objects, min(n, len(self.objects))):
            names = self.names_for(obj)
            if not names:
                continue
            name = self.rng.choice(names)
            first_field, second_field = self.rng.sample(list(FOLLOW_UPS), 2)
            q1 = self.rng.choice(FACT_QUESTIONS[first_field]).format(n=name)
            a1 = fact_answer(first_field, obj, name, 1)
            q2 = self.rng.choice(FOLLOW_UPS[second_field])
            if not a1:
                continue
            r = self.helper.retrieve(q2, subjects=[obj])
            sources, c = self.with_distractors(r.sources, obj, p=0.3)
            if c is None:
                continue
            a2 = fact_answer(second_field, obj, name, c, pronoun=True) or NOT_IN_CONTEXT
            out.append(self.example(f"follow:{second_field}", q2, sources, a2, history=[(q1, a1)],
                                    object_id=obj.object_id))
        return out

    def attachments(self, modality: str, limit: int) -> list[dict]:
        out = []
        if modality == "image":
            items = [(rec, self.ds.get_object(rec.object_id)) for rec in self.ds.images if rec.split == self.split]
            items = [(rec, o) for rec, o in items if o is not None and o.coarse_class in IMAGE_CLASSES]
        else:
            items = [(rec, self.ds.get_object(rec.object_id)) for rec in self.ds.spectra if rec.split == self.split]
        ok = {id(r) for r in self.indexed(modality, [rec for rec, _ in items])}
        items = [(rec, o) for rec, o in items if id(rec) in ok]
        self.rng.shuffle(items)
        items = items[:limit]
        self.vectors(modality, [rec for rec, _ in items])
        for rec, obj in tqdm(items, desc=f"{modality}s ({self.split})", unit=modality):
            truth = obj.coarse_class if modality == "image" else rec.spectral_class
            question = self.rng.choice(IMAGE_QUESTIONS if modality == "image" else SPECTRUM_QUESTIONS)
            self.helper.context.exclude_objects = {rec.object_id} if rec.object_id else set()
            kw = {modality: Embedding(self._vectors[rec.path])}
            r = self.helper.retrieve(question, **kw)
            self.helper.context.exclude_objects = set()
            att = next(i for i, s in enumerate(r.sources, 1) if s.kind == "attachment")
            if not supports(r.sources[att - 1].text, truth):
                self.counts[f"{modality}:unsupported"] += 1
                continue
            if modality == "image":
                answer = f"This looks like {article(truth)} {truth} [{att}]."
            else:
                answer = f"This is the spectrum of {article(truth)} {truth} [{att}]."
            out.append(self.example(f"{modality}:what", question, r.sources, answer,
                                    features={modality: r.features[modality][0]}, object_id=rec.object_id))
        return out

    def literature(self) -> list[dict]:
        """Definitions: "What is parallax?" answered by the first sentence of its article."""
        out = []
        for p in self.ds.passages:
            if p.kind != "literature" or p.split != self.split or not p.passage_id.endswith("#0"):
                continue
            if "sky culture" in p.title:
                continue
            first = re.split(r"(?<=[.!?])\s", p.text.strip(), maxsplit=1)[0]
            if not 30 <= len(first) <= 200:
                continue
            topic = " ".join(w if w.isupper() else w.lower() for w in re.sub(r"^The ", "", p.title).split())
            question = self.rng.choice(["What is {t}?", "Explain {t}.", "What does the term {t} mean?"]).format(
                t=topic)
            r = self.helper.retrieve(question)
            lit = Source(p.passage_id, p.title, "literature", p.text, None, p.credit)
            sources = [s for s in r.sources if s.id != p.passage_id]
            sources.insert(self.rng.randrange(len(sources) + 1), lit)
            shown = _shown_count(sources)
            c = next((i for i, s in enumerate(sources[:shown], 1) if s.id == p.passage_id), None)
            if c is None:
                continue
            out.append(self.example("literature", question, sources, f"{first.rstrip('.!?')} [{c}]."))
        return out

    def captions(self, per_image: int, spectra_limit: int, modalities=("image", "spectrum")) -> list[dict]:
        """Stage 1: attachment -> caption (no retrieval, no context)."""
        out = []
        images = [(rec, self.ds.get_object(rec.object_id)) for rec in self.ds.images
                  if rec.split == self.split and "image" in modalities]
        images = [(rec, o) for rec, o in images if o is not None]
        ok = {id(r) for r in self.indexed("image", [rec for rec, _ in images])}
        images = [(rec, o) for rec, o in images if id(rec) in ok]
        self.vectors("image", [rec for rec, _ in images])
        for rec, obj in images:
            vec = self._vectors[rec.path]
            card = self.cards.get(obj.object_id)
            caps = image_captions(obj, card.text if card else None)
            for cap in self.rng.sample(caps, min(per_image, len(caps))):
                out.append(self._caption_example("image", vec, cap, obj.object_id))
        spectra = self.indexed("spectrum", [rec for rec in self.ds.spectra
                                            if rec.split == self.split and "spectrum" in modalities])
        self.rng.shuffle(spectra)
        spectra = spectra[:spectra_limit]
        self.vectors("spectrum", spectra)
        for rec in spectra:
            vec = self._vectors[rec.path]
            obj = self.ds.get_object(rec.object_id)
            caps = spectrum_captions(rec.spectral_class, rec.subclass, rec.redshift, obj.name if obj else "")
            for cap in self.rng.sample(caps, min(2, len(caps))):
                out.append(self._caption_example("spectrum", vec, cap, rec.object_id))
        return out

    def _caption_example(self, modality, vec, caption, object_id):
        self.counts[f"caption:{modality}"] += 1
        messages = [{"role": "system", "content": "Describe the attached observation."},
                    {"role": "user", "content": f"<{modality}>"}]
        return {"kind": f"caption:{modality}", "messages": messages, "answer": caption,
                "features": {modality: [round(float(x), 6) for x in vec]}, "object_id": object_id}


def write(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", help="dataset folder (default: the sample sky)")
    p.add_argument("--index", help="index folder (default: the sample sky's index)")
    p.add_argument("--encoder", help="encoder folder (default: the shipped encoder)")
    p.add_argument("--out", default=str(ROOT / "training" / "runs" / "assistant" / "data"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--facts-per-object", type=int, default=3)
    p.add_argument("--unanswerable", type=int, default=170, help="examples per 545 train objects (scaled)")
    p.add_argument("--follow-ups", type=int, default=60)
    p.add_argument("--images", type=int, default=260)
    p.add_argument("--spectra", type=int, default=140)
    p.add_argument("--caption-spectra", type=int, default=200)
    p.add_argument("--only", choices=("image", "spectrum"),
                   help="only the examples with this attachment (captions and 'what is this?'): "
                        "the data of stage3_reproject.yaml, in minutes instead of the whole set's ~25")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    from astrovlm.sky import Sky

    sky = Sky.open(dataset=args.dataset, encoder=args.encoder, index=args.index)
    build(sky, Path(args.out), args)
    return 0


def build(sky, out: Path, args) -> dict:
    """Write stage1/stage2 example files for the train and val splits, and summary.json.
    ``sky``: ``Sky.open(...)`` (its index was checked against its encoder on opening)."""
    ds, encoder = sky.dataset, sky.encoder
    out.mkdir(parents=True, exist_ok=True)
    summary = {"dataset": str(ds.root), "only": getattr(args, "only", None),
               "encoder_fingerprint": encoder.fingerprint,
               "encoder_towers": {m: encoder.tower_fingerprint(m) for m in ("image", "spectrum")},
               "seed": args.seed}
    for split in ("train", "val"):
        rng = random.Random(f"{args.seed}:{split}")
        helper = Assistant(None, ds, sky.retriever, sky.resolver, allowed_splits={split})
        maker = ExampleMaker(ds, helper, split, rng)
        small = 1.0 if split == "train" else 0.3
        scale = len(maker.objects) / 545 * (1.0 if split == "train" else 0.6)
        only = getattr(args, "only", None)
        if only:  # one projector's examples (stage 3): its captions and its "what is this?"
            stage1 = maker.captions(per_image=3 if split == "train" else 1,
                                    spectra_limit=int(args.caption_spectra * small),
                                    modalities=(only,))
            stage2 = maker.attachments(only, int((args.images if only == "image" else args.spectra) * small))
        else:
            stage1 = maker.captions(per_image=3 if split == "train" else 1,
                                    spectra_limit=int(args.caption_spectra * small))
            stage2 = (maker.facts(args.facts_per_object if split == "train" else 1)
                      + maker.unanswerable(int(args.unanswerable * scale))
                      + maker.follow_ups(int(args.follow_ups * scale))
                      + maker.attachments("image", int(args.images * small))
                      + maker.attachments("spectrum", int(args.spectra * small))
                      + maker.literature())
        rng.shuffle(stage1)
        rng.shuffle(stage2)
        write(out / f"stage1_{split}.jsonl", stage1)
        write(out / f"stage2_{split}.jsonl", stage2)
        summary[split] = {"stage1": len(stage1), "stage2": len(stage2), "kinds": dict(sorted(maker.counts.items()))}
        print(f"{split}: {len(stage1)} stage-1 and {len(stage2)} stage-2 examples", flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    sys.exit(main())
