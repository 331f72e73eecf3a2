"""What the assistant reads before it answers: numbered sources gathered for one question.

``ContextBuilder.gather`` turns a question (and an optional image or spectrum) into a
``Retrieval``: each named object's catalog card, one of its observations, the nearest
literature passages and, for an attachment, its zero-shot class and nearest catalogued
objects. Every index query goes through the one ``Retriever`` the CLI and the app use, and
the attachment's class is the ``Retriever.classify`` call of ``astrovlm classify``.

The catalog outranks users' own text: sources are ordered cards and observations first,
then built-in literature, then user passages (``source_rank``), and a user passage that
contradicts a question's object's card is marked and its contradicting statements left out
(``consistency.contradictions``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from astrovlm.assistant.consistency import CONTRADICTS, contradictions, without
from astrovlm.assistant.mentions import find_names
from astrovlm.assistant.prompts import Source, defuse_controls, neutralise
from astrovlm.errors import BadArgumentError, NotFoundError
from astrovlm.index.lexical import reciprocal_rank_fusion

MAX_QUESTION_CHARS = 500
USER_SOURCE = "user file:"   # the source of a passage a user ingested (astrovlm data ingest)


def is_user_passage(src: Source) -> bool:
    return src.kind == "literature" and str(src.extra.get("source", "")).startswith(USER_SOURCE)


def source_rank(src: Source) -> int:
    """Context order: catalog cards, observations and attachments first, then the built-in
    literature, then users' own passages, so that the catalog outranks user text on its own
    fields and the character budget drops user text first."""
    if src.kind != "literature":
        return 0
    return 2 if is_user_passage(src) else 1


@dataclass
class Embedding:
    """An attachment given as its aligned-encoder vector (already encoded), not as a file."""

    vector: object   # (D,) or (1, D) float array


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
    readings: list[str] = field(default_factory=list)     # which object an ambiguous name was taken as


HYBRID_POOL = 20       # dense hits (and 3x as many BM25 hits) fused for a general question
HYBRID_RERANK = 16     # of the fused list, the first this many are reranked
RERANK_CHARS = 400     # of each passage: its opening says what it is about, and costs less
SKY_CULTURE = "Stellarium sky culture"
# a question about sky lore may be answered from the sky-culture texts; one about physics not
LORE_WORDS = re.compile(r"\b(myth\w*|legend\w*|lore|folklore|cultures?|traditions?|tales?|stor(y|ies)|"
                        r"ancient|named after|name[sd]? (of|for)|asterisms?|figures?|gods?|"
                        r"goddess\w*|people|tribes?|calendar\w*|navigat\w*)\b", re.I)


DEFINITIONS = ("GCIDE", "WordNet")
DEFINITIONS_SKIP = 4   # extra dense hits fetched for an object's question, as definitions are skipped


def is_definition(passage) -> bool:
    return str(passage.source or "").startswith(DEFINITIONS)


def is_sky_culture(passage) -> bool:
    return str(passage.source or "").startswith(SKY_CULTURE)


def _literature(passage, score: float) -> Source:
    return Source(passage.passage_id, passage.title or passage.source, "literature", passage.text,
                  passage.object_id, passage.credit, score, {"source": passage.source})


class ContextBuilder:
    """Gathers the numbered sources for a question from a dataset, a retriever and a resolver.

    Without a retriever (no encoder or index) the sources are catalog cards alone and
    attachments are refused.
    """

    def __init__(self, dataset=None, retriever=None, resolver=None, *,
                 max_question_chars: int = MAX_QUESTION_CHARS, k_literature: int = 2,
                 literature_min_score: float = 0.5, exclude_objects=(), allowed_splits=None):
        self.dataset, self.retriever = dataset, retriever
        if resolver is None and dataset is not None:
            from astrovlm.data.resolver import NameResolver

            resolver = NameResolver.from_dataset(dataset)
        self.resolver = resolver
        self.max_question_chars = max_question_chars
        self.k_literature = k_literature
        # With an object or an attachment in hand, a literature passage joins the context only
        # if it is this close to the question: loosely related text costs prompt tokens and
        # distracts a small model. General questions always get the nearest passages.
        self.literature_min_score = literature_min_score
        # Objects never to retrieve as neighbours (a benchmark asking about held-out objects).
        self.exclude_objects = set(exclude_objects)
        # Splits that neighbours and literature may come from (None: all). Training data uses
        # {"train"}; a benchmark on held-out objects keeps their own data out of the neighbours.
        self.allowed_splits = set(allowed_splits) if allowed_splits else None
        passages = dataset.passages if dataset is not None else []
        self._passages = {p.passage_id: p for p in passages}
        self._cards = {p.object_id: p for p in passages if p.kind == "catalog_card" and p.object_id}
        self._card_texts: dict[str, str] = {}   # object id -> the card text the model reads
        self._lexical_index = None               # BM25 over the literature, built when first asked

    # ------------------------------------------------------------------ the question
    def check_question(self, question) -> tuple[str, bool, list[str]]:
        if not isinstance(question, str) or not question.strip():
            raise BadArgumentError("the question is empty", field="question")
        question = " ".join(defuse_controls(question).split())
        if not question:
            raise BadArgumentError("the question has no words", field="question")
        if len(question) <= self.max_question_chars:
            return question, False, []
        cut = question[:self.max_question_chars].rsplit(" ", 1)[0] or question[:self.max_question_chars]
        return cut, True, [f"the question was {len(question)} characters long and was cut to the "
                           f"first {len(cut)}"]

    def resolve_names(self, question: str) -> tuple[list, list[str]]:
        """SkyObjects the question names, and notes on names that resolve to nothing (and on
        how a one-word or shared name was read)."""
        objects, notes, readings = self.read_names(question)
        return objects, notes + readings

    def read_names(self, question: str) -> tuple[list, list[str], list[str]]:
        """(objects, notes on unknown names, readings): a reading says which object a name
        in context ("Triangulum", "the Pinwheel") or a shared common name was taken as."""
        from astrovlm.assistant.names_in_context import read_one_word_names

        objects, notes, readings, taken = [], [], [], []
        if self.resolver is None:
            return objects, notes, readings
        for name in find_names(question, self.resolver):
            at = question.lower().find(name.lower())
            if at >= 0:
                taken.append((at, at + len(name)))
            obj = self.resolve(name)
            if obj is None:
                close = self._suggest(name)
                notes.append(f"no object named '{name}' was found in the catalog"
                             + (f"; close names: {', '.join(close)}" if close else ""))
            elif all(o.object_id != obj.object_id for o in objects):
                objects.append(obj)
                others = self.resolver.shared_with(name) if hasattr(self.resolver, "shared_with") else []
                if others:
                    readings.append(f"I took '{name}' to mean {obj.name} (the name is also used for "
                                    f"{', '.join(others)}).")
        for obj, reading in read_one_word_names(question, self.resolver, taken):
            if all(o.object_id != obj.object_id for o in objects):
                objects.append(obj)
                readings.append(reading)
        return objects, notes, readings

    def resolve(self, name: str):
        """The SkyObject called ``name``, or None if the resolver knows no such name."""
        try:
            return self.resolver.resolve(name)
        except (NotFoundError, BadArgumentError):
            return None

    def _suggest(self, name: str) -> list[str]:
        got = self.resolver.suggest(name)
        return [str(getattr(g, "name", g)) for g in list(got or [])[:5]]

    # ------------------------------------------------------------------ gathering
    def gather(self, question, image=None, spectrum=None, subjects=()) -> Retrieval:
        """Everything the prompt will hold. ``subjects``: objects carried over from earlier
        turns of a chat, used when this question names none ("Where is it?")."""
        question, truncated, notes = self.check_question(question)
        objects, name_notes, readings = self.read_names(question)
        notes += name_notes + readings
        if not objects and subjects and not name_notes and image is None and spectrum is None:
            objects = list(subjects)  # "Where is it?" (an attachment is a new subject)
        sources: list[Source] = [self.card_source(o) for o in objects]
        r = Retrieval(question, sources, objects, notes, truncated, readings=readings)
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
                                                min_score=self.literature_min_score if focused else None))
        sources.sort(key=source_rank)   # stable: the order within each rank stays
        self._flag_contradictions(r)
        return r

    def _flag_contradictions(self, r: Retrieval) -> None:
        """A user passage that states a type, constellation or number of a question's object
        that the object's card contradicts is marked, and the contradicting sentences are
        left out: the small model would repeat them."""
        for src in r.sources:
            if not is_user_passage(src):
                continue
            # read with its instructions removed: those are the filter's to remove and report
            shown = neutralise(src.text)[0]
            found = [c for obj in r.objects
                     for c in contradictions(obj, shown, about=src.object_id == obj.object_id)]
            if not found:
                continue
            src.text = f"{CONTRADICTS} {without(src.text, found)}".strip()
            src.title = without(src.title, found) or "user passage"   # a title is a file's first line
            src.extra["contradicts"] = [c.__dict__ for c in found]
            r.notes.append(f"a user passage ({src.extra['source']}) contradicts the catalog on "
                           + "; ".join(c.describe() for c in found)
                           + ": it is marked in the context and those statements are left out")

    def card_source(self, obj) -> Source:
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

    def _attachment_sources(self, r: Retrieval, modality: str, item) -> None:
        """Encode an attachment; add its zero-shot class and nearest catalogued objects."""
        if self.retriever is None:
            raise BadArgumentError(f"an attached {modality} needs the aligned encoder and its index, "
                                   "which are not loaded (open them with Sky.open)", field=modality)
        encoder = self.retriever.encoder
        if isinstance(item, Embedding):
            vec = np.asarray(item.vector, dtype=np.float32).reshape(1, -1)
            if vec.shape[1] != encoder.embed_dim:
                raise BadArgumentError(f"the {modality} vector has {vec.shape[1]} dimensions, the encoder "
                                       f"{encoder.embed_dim}", field=modality)
        elif modality == "image":
            vec = encoder.encode_images([item])
        else:
            vec = encoder.encode_spectra([item])
        # The projector reads the plain (one-view) vector it was trained on; the class named in
        # the context is the one `astrovlm classify` and the Classify tab give for this file.
        r.features[modality] = vec
        if modality == "image" and not isinstance(item, Embedding):
            result = self.retriever.classify(image=item)
        else:
            result = self.retriever.classify(embeddings={modality: vec})
        ranked = sorted(result.probabilities.items(), key=lambda t: -t[1])
        info = {"modality": modality, "zero_shot": ranked[0][0],
                "probabilities": {lab: round(v, 4) for lab, v in ranked}, "neighbours": []}
        text = (f"Zero-shot class of the attached {modality}: {ranked[0][0]} (p={ranked[0][1]:.2f}; "
                f"next {ranked[1][0]}, p={ranked[1][1]:.2f}).")
        neighbours = self.retriever.nearest(vec[0], k=2, modality=modality, per_object=1,
                                            splits=self.allowed_splits,
                                            exclude_objects=self.exclude_objects).hits
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
                src = self.card_source(obj)
                src.score = h.score
                r.sources.append(src)

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
        if self.retriever is None:
            return None
        index = self.retriever.index
        items = index.items_of_object(obj.object_id, modality=("image", "spectrum"))
        if not items:
            return None
        meta = index.item(items[0])
        modality = meta.get("modality", "image")
        what = meta.get("caption") or f"{modality} of {obj.name}"
        flag = " (simulated)" if meta.get("simulated") else ""
        text = f"{what}{flag}. Source: {meta.get('source') or 'unknown'}."
        return Source(items[0], f"{modality.capitalize()} of {obj.name}", modality, text, obj.object_id,
                      meta.get("credit") or "")

    def _literature_sources(self, question: str, have: set, k: int, min_score: float | None) -> list[Source]:
        if self.retriever is None or k <= 0:
            return []
        vec = self.retriever.encode_query(text=question)[0]
        if min_score is None:  # a general question: words and vectors together, reranked
            return self._hybrid_literature(question, vec, have, k)
        hits = self.retriever.nearest(vec, k=k + len(have) + DEFINITIONS_SKIP, modality="text",
                                      kinds={"literature"}, splits=self.allowed_splits,
                                      min_score=min_score).hits
        out = []
        for hit in hits:
            passage = self._passage_of(hit)
            if passage is None or passage.passage_id in have or is_definition(passage):
                continue  # a question about an object: its card holds the facts; a dictionary
                # sense is about a word ("constellation"), and distracts from them
            out.append(_literature(passage, hit.score))
            if len(out) >= k:
                break
        return out

    def _hybrid_literature(self, question: str, vec, have: set, k: int) -> list[Source]:
        """The passages for a question about no particular object ("What is a blackbody?"):
        the dense neighbours and the BM25 hits, fused by rank, sky-culture texts only for
        questions about sky lore, then reranked by plain MiniLM sentence similarity (the
        encoder's frozen text backbone: the aligned head is tuned to match text to images
        and spectra, not text to text)."""
        dense = self.retriever.nearest(vec, k=HYBRID_POOL, modality="text", kinds={"literature"},
                                       splits=self.allowed_splits).hits
        dense_ids = [p.passage_id for p in map(self._passage_of, dense) if p is not None]
        lexical_ids = [pid for pid, _ in self._lexical().search(question, k=3 * HYBRID_POOL)
                       if self._allowed(self._passages[pid])]
        lore = bool(LORE_WORDS.search(question))
        pool = [self._passages[pid] for pid in reciprocal_rank_fusion(dense_ids, lexical_ids)
                if pid not in have and (lore or not is_sky_culture(self._passages[pid]))]
        pool = pool[:HYBRID_RERANK]
        if not pool:
            return []
        scores = self._rerank(question, pool)
        ranked = sorted(zip(pool, scores), key=lambda ps: -ps[1])
        return [_literature(p, score) for p, score in ranked[:k]]

    def _lexical(self):
        if self._lexical_index is None:
            from astrovlm.index.lexical import LexicalIndex

            self._lexical_index = LexicalIndex(
                (p.passage_id, p.title, p.text) for p in self._passages.values()
                if p.kind == "literature" and p.text)
        return self._lexical_index

    def _allowed(self, passage) -> bool:
        return self.allowed_splits is None or passage.split in self.allowed_splits

    def _rerank(self, question: str, passages) -> list[float]:
        import torch
        import torch.nn.functional as F

        texts = [question] + [(f"{p.title}. {p.text}" if p.title else p.text)[:RERANK_CHARS]
                              for p in passages]
        with torch.inference_mode():
            feats = F.normalize(self.retriever.encoder.text_features(texts), dim=-1)
        return (feats[1:] @ feats[0]).tolist()

    def _passage_of(self, hit):
        meta = hit.metadata or {}
        for key in (hit.item_id, meta.get("passage_id"), hit.item_id.split(":", 1)[-1]):
            if key and key in self._passages:
                return self._passages[key]
        return None

