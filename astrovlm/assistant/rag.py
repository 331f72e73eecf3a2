"""Retrieval-augmented answering: names -> objects -> sources -> prompt -> answer.

For a question, ``Assistant``:

1. finds the object names it mentions (``find_names``: M57, NGC 6720, IC 434, HD 37043,
   "Ring Nebula") and resolves them offline (``NameResolver``); a name that resolves to
   nothing is reported with close names;
2. gathers numbered sources: each object's catalog card, one of its observations from the
   index, the nearest literature passages to the question (text vectors), and, for an
   attached image or spectrum, its zero-shot class and nearest catalogued objects;
3. builds the chat prompt (system prompt first, retrieved text fenced as data) and lets the
   model answer, feeding the attachment's encoder vector to the projector as well;
4. returns an ``Answer`` with the sources it was given (``[n]`` in the text is
   ``sources[n-1]``), which of them it cited, and notes on anything it changed or could not do.

The encoder and the index are optional: without them the assistant answers from catalog
cards alone (and cannot take attachments).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from astrovlm.assistant.prompts import (NOT_IN_CONTEXT, Source, build_messages, cited_numbers,
                                        defuse_controls)
from astrovlm.data.names import GREEK
from astrovlm.errors import AstroVLMError

MAX_QUESTION_CHARS = 500
MAX_HISTORY_TURNS = 3

# Catalog designations, written the ways people type them ("M57", "M 57", "NGC6720", "IC 434").
_DESIGNATION = re.compile(
    r"\b(?:(M|Messier)\s?-?(\d{1,3})|(NGC|IC)\s?-?(\d{1,5})\s?([A-Z])?|(HD|HR|HIP)\s?-?(\d{1,6}))\b")
# Common names that look like names even when the catalog lacks them ("Blue Fox Nebula"):
# capitalised words ending in a kind of object. They are reported if they resolve to nothing.
_COMMON_NAME = re.compile(r"\b((?:[A-Z][\w'’-]+\s){1,3}(?:Nebula|Galaxy|Cluster|Cloud))\b")
_WORD = re.compile(r"[A-Za-z0-9][\w'’+-]*")
_GREEK = set(GREEK.values())
# Capitalised words that start questions or name kinds of object, never an object alone.
_STOP = {"the", "a", "an", "what", "which", "where", "is", "are", "tell", "me", "about", "how", "why",
         "who", "and", "of", "in", "this", "that", "does", "do", "give", "describe", "can", "could",
         "please", "its", "it", "list", "show", "find", "compare", "spiral", "elliptical", "irregular",
         "lenticular", "barred", "planetary", "open", "globular", "dark", "emission", "reflection",
         "star", "galaxy", "nebula", "cluster", "i", "my", "you", "here", "there", "than", "with"}


def _overlaps(span, taken) -> bool:
    return any(a < span[1] and span[0] < b for a, b in taken)


def find_names(text: str, resolver=None) -> list[str]:
    """Object names mentioned in ``text``, in reading order, without repeats.

    Catalog designations (M57, NGC 6720, IC 434, HD 37043) are found by pattern. With a
    resolver, runs of up to four capitalised words ("Ring Nebula", "Whirlpool Galaxy",
    "Sirius", "alpha CMa") are looked up in it, longest first; capitalised phrases ending in
    Nebula/Galaxy/Cluster/Cloud are kept even when unknown, so they can be reported.
    """
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for m in _DESIGNATION.finditer(text):
        if m.group(2):
            found.append((m.start(), f"M{int(m.group(2))}"))
        elif m.group(4):
            found.append((m.start(), f"{m.group(3)} {int(m.group(4))}{m.group(5) or ''}"))
        else:
            found.append((m.start(), f"{m.group(6)} {int(m.group(7))}"))
        taken.append(m.span())
    if resolver is not None:
        words = list(_WORD.finditer(text))
        for n in (4, 3, 2, 1):
            for i in range(len(words) - n + 1):
                first = words[i].group()
                if first.lower() in _STOP or not (first[0].isupper() or first.lower() in _GREEK):
                    continue
                if n == 1 and (len(first) < 3 or first.isdigit()):
                    continue
                span = (words[i].start(), words[i + n - 1].end())
                if _overlaps(span, taken):
                    continue
                candidate = text[span[0]:span[1]]
                if candidate in resolver:
                    found.append((span[0], candidate))
                    taken.append(span)
    for m in _COMMON_NAME.finditer(text):
        parts = m.group(1).split()
        while parts and parts[0].lower() in _STOP:
            parts = parts[1:]
        if len(parts) < 2:
            continue  # "Nebula" alone, or "Planetary Nebula" as a kind, is not a name
        span = (m.end() - len(" ".join(parts)), m.end())
        if not _overlaps(span, taken):
            found.append((span[0], " ".join(parts)))
            taken.append(span)
    out, seen = [], set()
    for _, name in sorted(found):
        key = name.lower().replace(" ", "")
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out


@dataclass
class Embedding:
    """An attachment given as its aligned-encoder vector (already encoded), not as a file."""

    vector: object   # (D,) or (1, D) float array


@dataclass
class Answer:
    """An answer and where it came from. ``[n]`` in ``text`` refers to ``sources[n-1]``."""

    text: str
    sources: list[dict] = field(default_factory=list)   # id, title, kind, object_id, credit (+cited)
    truncated: bool = False                             # the question was cut to the length limit
    notes: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)    # object ids the question was resolved to
    attachment: dict | None = None                      # zero-shot class and neighbours of an attachment
    timings: dict = field(default_factory=dict)         # seconds and token counts
    context: list = field(default_factory=list, repr=False)  # the Source objects shown (with text)

    @property
    def cited(self) -> list[dict]:
        return [s for s in self.sources if s.get("cited")]

    def to_dict(self) -> dict:
        return {"text": self.text, "sources": self.sources, "truncated": self.truncated,
                "notes": self.notes, "objects": self.objects, "attachment": self.attachment,
                "timings": self.timings}


@dataclass
class Retrieval:
    """What the assistant gathered for one question before generating."""

    question: str
    sources: list[Source]
    objects: list = field(default_factory=list)          # SkyObjects
    notes: list[str] = field(default_factory=list)
    truncated: bool = False
    features: dict = field(default_factory=dict)          # modality -> (1, D) numpy vector
    attachment: dict | None = None


class StreamingAnswer:
    """Iterate to get the answer's text in pieces; ``.answer`` holds the ``Answer`` after."""

    def __init__(self, pieces: Iterator[str], finish):
        self._pieces, self._finish = pieces, finish
        self.answer: Answer | None = None

    def __iter__(self):
        chunks = []
        for piece in self._pieces:
            chunks.append(piece)
            yield piece
        self.answer = self._finish("".join(chunks))

    def result(self) -> Answer:
        """Drain the stream (if not yet) and return the answer."""
        if self.answer is None:
            for _ in self:
                pass
        return self.answer


class Assistant:
    """Answers questions about celestial objects from retrieved, cited sources."""

    def __init__(self, model, dataset=None, index=None, encoder=None, resolver=None, *,
                 max_question_chars: int = MAX_QUESTION_CHARS, max_new_tokens: int = 96,
                 k_literature: int = 2, literature_min_score: float = 0.5, feed_features: bool = True,
                 exclude_objects=(),
                 allowed_splits=None):
        if max_new_tokens < 1 or max_new_tokens > 512:
            raise AstroVLMError("max_new_tokens must be between 1 and 512", field="max_new_tokens")
        if index is not None and encoder is not None and index.fingerprint != encoder.fingerprint:
            raise AstroVLMError(f"the index was built with another encoder ({index.fingerprint}, not "
                                f"{encoder.fingerprint}); rebuild it with 'astrovlm index build'", field="index")
        self.model, self.dataset, self.index, self.encoder = model, dataset, index, encoder
        if resolver is None and dataset is not None:
            from astrovlm.data.resolver import NameResolver

            resolver = NameResolver.from_dataset(dataset.root)
        self.resolver = resolver
        self.max_question_chars = max_question_chars
        self.max_new_tokens = max_new_tokens
        self.k_literature = k_literature
        # With an object or an attachment in hand, a literature passage joins the context only
        # if it is this close to the question: loosely related text costs prompt tokens and
        # distracts a small model. General questions always get the nearest passages.
        self.literature_min_score = literature_min_score
        # False for a language model whose projector was never trained (the no-LoRA baseline):
        # the attachment then reaches it only as text in the context.
        self.feed_features = feed_features
        # Objects never to retrieve as neighbours (a benchmark asking about held-out objects).
        self.exclude_objects = set(exclude_objects)
        # Splits that neighbours and literature may come from (None: all). Training data uses
        # {"train"}; a benchmark on held-out objects keeps their own data out of the neighbours.
        self.allowed_splits = set(allowed_splits) if allowed_splits else None
        self._passages = {p.passage_id: p for p in dataset.passages} if dataset is not None else {}
        self._card_texts: dict[str, str] = {}   # object id -> the card text the model reads
        self._cards = {p.object_id: p for p in (dataset.passages if dataset is not None else [])
                       if p.kind == "catalog_card" and p.object_id}
        self._class_vectors: dict = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_defaults(cls, model_path=None, dataset_root=None, index_dir=None, encoder_path=None,
                      *, language_model: str | None = None, **kwargs) -> "Assistant":
        """The shipped model over the sample sky, its index and the shipped encoder.

        A missing index or encoder is not fatal: answers then come from catalog cards only.
        """
        from astrovlm.assistant.model import AstroLlava
        from astrovlm.config import default_index_dir, sample_dir
        from astrovlm.data.records import SkyDataset

        model = AstroLlava.from_pretrained(model_path, language_model=language_model)
        dataset = SkyDataset(dataset_root or sample_dir())
        encoder = index = None
        try:
            from astrovlm.encoders.model import AlignedEncoder

            encoder = AlignedEncoder.from_pretrained(encoder_path)
        except AstroVLMError:
            if encoder_path is not None:
                raise
        index_dir = Path(index_dir or default_index_dir())
        if encoder is not None and index_dir.exists():
            from astrovlm.index import CrossModalIndex

            index = CrossModalIndex.load(index_dir)
        return cls(model, dataset, index, encoder, **kwargs)

    # ------------------------------------------------------------------ the question
    def check_question(self, question) -> tuple[str, bool, list[str]]:
        if not isinstance(question, str) or not question.strip():
            raise AstroVLMError("the question is empty", field="question")
        question = " ".join(defuse_controls(question).split())
        if not question:
            raise AstroVLMError("the question has no words", field="question")
        if len(question) <= self.max_question_chars:
            return question, False, []
        cut = question[:self.max_question_chars].rsplit(" ", 1)[0] or question[:self.max_question_chars]
        return cut, True, [f"the question was {len(question)} characters long and was cut to the "
                           f"first {len(cut)}"]

    def resolve_names(self, question: str) -> tuple[list, list[str]]:
        """SkyObjects the question names, and notes on names that resolve to nothing."""
        objects, notes = [], []
        if self.resolver is None:
            return objects, notes
        for name in find_names(question, self.resolver):
            obj = self._resolve(name)
            if obj is None:
                close = self._suggest(name)
                notes.append(f"no object named '{name}' was found in the catalog"
                             + (f"; close names: {', '.join(close)}" if close else ""))
            elif all(o.object_id != obj.object_id for o in objects):
                objects.append(obj)
        return objects, notes

    def _resolve(self, name: str):
        try:
            return self.resolver.resolve(name)
        except AstroVLMError:
            return None

    def _suggest(self, name: str) -> list[str]:
        try:
            got = self.resolver.suggest(name)
        except AstroVLMError:
            return []
        return [str(getattr(g, "name", g)) for g in list(got or [])[:5]]

    # ------------------------------------------------------------------ retrieval
    def retrieve(self, question, image=None, spectrum=None, subjects=()) -> Retrieval:
        """Everything the prompt will hold. ``subjects``: objects carried over from earlier
        turns of a chat, used when this question names none ("Where is it?")."""
        question, truncated, notes = self.check_question(question)
        objects, name_notes = self.resolve_names(question)
        notes += name_notes
        if not objects and subjects and not name_notes and image is None and spectrum is None:
            objects = list(subjects)  # "Where is it?" (an attachment is a new subject)
        sources: list[Source] = [self._card_source(o) for o in objects]
        r = Retrieval(question, sources, objects, notes, truncated)
        for modality, item in (("image", image), ("spectrum", spectrum)):
            if item is not None:
                self._attachment_sources(r, modality, item)
        if objects:
            obs = self._observation_source(objects[0])
            if obs is not None:
                sources.append(obs)
        focused = bool(objects) or image is not None or spectrum is not None
        sources.extend(self._literature_sources(question, {s.id for s in sources},
                                                k=1 if focused else self.k_literature,
                                                min_score=self.literature_min_score if focused else -1.0))
        return r

    def _card_source(self, obj) -> Source:
        from astrovlm.data.cards import catalog_card

        # A card written from the catalog record is rewritten with its cross-identifications
        # (stored cards name only common names and M/NGC/IC/HD numbers: "What else is NGC 1023
        # called?" needs PGC/UGC); a card written some other way is used as stored.
        card = self._cards.get(obj.object_id)
        text = self._card_texts.get(obj.object_id)
        if text is None:  # astropy's angle formatting makes a card cost milliseconds: once each
            if card is None or card.text == catalog_card(obj):
                text = catalog_card(obj, every_designation=True)
            else:
                text = card.text
            self._card_texts[obj.object_id] = text
        if card is not None:
            return Source(card.passage_id, card.title or obj.name, "catalog_card", text,
                          obj.object_id, card.credit)
        return Source(f"card:{obj.object_id}", obj.name or obj.object_id, "catalog_card",
                      text, obj.object_id, obj.source)

    def _need_encoder(self, what: str):
        if self.encoder is None:
            raise AstroVLMError(f"an attached {what} needs the aligned encoder, which is not loaded "
                                "(train it or pass encoder=...)", field=what)

    def _attachment_sources(self, r: Retrieval, modality: str, item) -> None:
        """Encode an attachment; add its zero-shot class and nearest catalogued objects."""
        self._need_encoder(modality)
        from astrovlm.encoders import zeroshot

        if isinstance(item, Embedding):
            import numpy as np

            vec = np.asarray(item.vector, dtype=np.float32).reshape(1, -1)
            if vec.shape[1] != self.encoder.embed_dim:
                raise AstroVLMError(f"the {modality} vector has {vec.shape[1]} dimensions, the encoder "
                                    f"{self.encoder.embed_dim}", field=modality)
        elif modality == "image":
            vec = self.encoder.encode_images([item])
        else:
            vec = self.encoder.encode_spectra([item])
        r.features[modality] = vec
        labels = zeroshot.DEFAULT_LABELS[modality]
        if modality not in self._class_vectors:
            self._class_vectors[modality] = zeroshot.class_vectors(self.encoder, labels, modality)
        p = zeroshot.probabilities(vec, self._class_vectors[modality],
                                   zeroshot.temperature(self.encoder, modality))[0]
        ranked = sorted(zip(labels, p.tolist()), key=lambda t: -t[1])
        info = {"modality": modality, "zero_shot": ranked[0][0],
                "probabilities": {lab: round(v, 4) for lab, v in ranked}, "neighbours": []}
        text = (f"Zero-shot class of the attached {modality}: {ranked[0][0]} (p={ranked[0][1]:.2f}; "
                f"next {ranked[1][0]}, p={ranked[1][1]:.2f}).")
        neighbours = []
        if self.index is not None:
            res = self.index.search(vec[0], k=48, modality=modality, exclude_objects=self.exclude_objects)
            seen = set()
            for hit in res:
                if not self._allowed(hit):
                    continue
                key = hit.object_id or (hit.metadata or {}).get("caption") or hit.item_id
                if key not in seen:
                    seen.add(key)
                    neighbours.append(hit)
                if len(neighbours) == 2:
                    break
        if neighbours:
            text += " Nearest catalogued " + ("images" if modality == "image" else "spectra") + ": " + "; ".join(
                f"{self._object_label(h)} (similarity {h.score:.2f})" for h in neighbours) + "."
        info["neighbours"] = [{"object_id": h.object_id, "item_id": h.item_id, "score": round(h.score, 4),
                               "name": h.metadata.get("name")} for h in neighbours]
        r.attachment = info if r.attachment is None else {**r.attachment, modality: info}
        r.sources.append(Source(f"attachment:{modality}", f"Attached {modality}", "attachment", text,
                                None, "", None, {"zero_shot": ranked[0][0]}))
        for h in neighbours[:1]:
            obj = self.dataset.get_object(h.object_id) if self.dataset is not None else None
            if obj is not None and all(s.object_id != obj.object_id for s in r.sources):
                src = self._card_source(obj)
                src.score = h.score
                r.sources.append(src)

    def _allowed(self, hit) -> bool:
        return self.allowed_splits is None or (hit.metadata or {}).get("split") in self.allowed_splits

    def _object_label(self, hit) -> str:
        """"NGC 7009, planetary nebula" for a catalogued object; the class for an anonymous
        (e.g. simulated) spectrum."""
        meta = hit.metadata or {}
        obj = self.dataset.get_object(hit.object_id) if self.dataset is not None else None
        kind = (obj.otype if obj else None) or meta.get("otype") or meta.get("coarse_class") or "object"
        if hit.modality == "spectrum" and meta.get("coarse_class"):
            kind = meta["coarse_class"] if kind in ("star", "object") else kind
        name = (obj.name if obj else None) or meta.get("name")
        if not name:
            cls = meta.get("coarse_class") or "spectrum"
            return f"{'an' if cls[0].lower() in 'aeiou' else 'a'} {cls}" + (" (simulated)" if meta.get("simulated") else "")
        return f"{name}, {kind}"

    def _observation_source(self, obj) -> Source | None:
        """One image or spectrum of the object from the index, so the answer can point to data."""
        if self.index is None:
            return None
        items = self.index.items_of_object(obj.object_id, modality=("image", "spectrum"))
        if not items:
            return None
        meta = self.index.item(items[0])
        modality = meta.get("modality", "image")
        what = meta.get("caption") or f"{modality} of {obj.name}"
        flag = " (simulated)" if meta.get("simulated") else ""
        text = f"{what}{flag}. Source: {meta.get('source') or 'unknown'}."
        return Source(items[0], f"{modality.capitalize()} of {obj.name}", modality, text, obj.object_id,
                      meta.get("credit") or "")

    def _literature_sources(self, question: str, have: set, k: int, min_score: float) -> list[Source]:
        if self.index is None or self.encoder is None or k <= 0:
            return []
        vec = self.encoder.encode_text([question])[0]
        out = []
        # Catalog cards share the text modality: look deep enough to find literature among them.
        for hit in self.index.search(vec, k=48, modality="text"):
            if not self._allowed(hit):
                continue
            if hit.score < min_score:
                break  # hits come best first
            passage = self._passage_of(hit)
            if passage is None or passage.kind != "literature" or passage.passage_id in have:
                continue
            out.append(Source(passage.passage_id, passage.title or passage.source, "literature", passage.text,
                              passage.object_id, passage.credit, hit.score))
            if len(out) >= k:
                break
        return out

    def _passage_of(self, hit):
        meta = hit.metadata or {}
        for key in (hit.item_id, meta.get("passage_id"), hit.item_id.split(":", 1)[-1]):
            if key and key in self._passages:
                return self._passages[key]
        return None

    # ------------------------------------------------------------------ answering
    def ask(self, question, image=None, spectrum=None, *, history=(), subjects=(), stream: bool = False):
        """Answer a question (with an optional image and/or spectrum file or object).

        Returns an ``Answer``; with ``stream=True`` a ``StreamingAnswer`` to iterate over.
        """
        t0 = time.perf_counter()
        r = self.retrieve(question, image, spectrum, subjects)
        t_retrieved = time.perf_counter()
        attachments = tuple(m for m in ("image", "spectrum") if m in r.features)
        fed = tuple(m for m in attachments if self.feed_features and m in self.model.placeholder_ids)
        messages, removed = build_messages(r.question, r.sources, list(history)[-MAX_HISTORY_TURNS:], fed)
        if removed:
            r.notes.append(f"{removed} instruction-like line(s) in the retrieved text were removed")
        if not r.sources:
            r.notes.append("nothing was retrieved for this question")
        features = {m: r.features[m] for m in fed}
        stats: dict = {}
        pieces = self.model.stream(messages, features, self.max_new_tokens, stats=stats)

        def finish(text: str) -> Answer:
            t_end = time.perf_counter()
            return self._answer(text.strip(), r, stats, t0, t_retrieved, t_end,
                                self.model.count_tokens(messages))

        streaming = StreamingAnswer(pieces, finish)
        return streaming if stream else streaming.result()

    def _answer(self, text, r: Retrieval, stats, t0, t_retrieved, t_end, prompt_tokens) -> Answer:
        shown = r.sources[:_shown_count(r.sources)]
        cited = cited_numbers(text, len(shown))
        sources = []
        for i, s in enumerate(shown, 1):
            d = s.to_dict()
            d["n"], d["cited"] = i, i in cited
            sources.append(d)
        notes = list(r.notes)
        n_new = stats.get("new_tokens", 0)
        if n_new >= self.max_new_tokens and not stats.get("stopped"):
            notes.append(f"the answer stopped at the {self.max_new_tokens}-token limit")
        if text and NOT_IN_CONTEXT.lower() not in text.lower() and shown and not cited:
            notes.append("the answer cites no source")
        first = stats.get("first_token_time")
        gen_s = t_end - t_retrieved
        timings = {"retrieval_s": round(t_retrieved - t0, 4),
                   "first_token_s": round((first - t0) if first else t_end - t0, 4),
                   "total_s": round(t_end - t0, 4), "prompt_tokens": prompt_tokens,
                   "new_tokens": n_new,
                   # decode rate: the tokens after the first, over the time after the first
                   "tokens_per_s": round((n_new - 1) / max(t_end - first, 1e-6), 2) if first and n_new > 1
                   else None, "generation_s": round(gen_s, 4)}
        return Answer(text, sources, r.truncated, notes, [o.object_id for o in r.objects], r.attachment,
                      timings, shown)


def _shown_count(sources: list[Source]) -> int:
    """How many sources made it into the context (build_context drops those past its budget)."""
    from astrovlm.assistant.prompts import build_context

    context, _ = build_context(sources)
    return sum(1 for i in range(1, len(sources) + 1) if f"\n[{i}] " in context)


class ChatSession:
    """A conversation: earlier questions and answers go into the prompt (the last few turns),
    and objects named earlier stay the subject until another is named."""

    def __init__(self, assistant: Assistant):
        self.assistant = assistant
        self.history: list[tuple[str, str]] = []
        self.subjects: list = []

    def ask(self, question, image=None, spectrum=None, stream: bool = False):
        result = self.assistant.ask(question, image, spectrum, history=self.history,
                                    subjects=self.subjects, stream=stream)
        if stream:
            return _RecordingStream(result, self, question)
        self._record(question, result)
        return result

    def _record(self, question, answer: Answer) -> None:
        self.history.append((question, answer.text))
        if answer.objects and self.assistant.dataset is not None:
            self.subjects = [self.assistant.dataset.get_object(o) for o in answer.objects
                             if self.assistant.dataset.get_object(o) is not None] or self.subjects
        elif answer.objects and self.assistant.resolver is not None:
            self.subjects = [o for o in (self.assistant._resolve(i) for i in answer.objects) if o]

    def reset(self) -> None:
        self.history.clear()
        self.subjects = []


class _RecordingStream(StreamingAnswer):
    def __init__(self, inner: StreamingAnswer, session: ChatSession, question):
        self.inner, self.session, self.question = inner, session, question
        self.answer = None

    def __iter__(self):
        yield from self.inner
        self.answer = self.inner.answer
        self.session._record(self.question, self.answer)
