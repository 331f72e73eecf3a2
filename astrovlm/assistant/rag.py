"""Retrieval-augmented answering: names -> objects -> sources -> prompt -> answer.

For a question, ``Assistant``:

1. finds the object names it mentions (``mentions.find_names``: M57, NGC 6720, IC 434,
   HD 37043, "Ring Nebula") and resolves them offline; a name that resolves to nothing is
   reported with close names;
2. gathers numbered sources (``context.ContextBuilder``): each object's catalog card, one of
   its observations from the index, the nearest literature passages to the question, and,
   for an attached image or spectrum, its zero-shot class and nearest catalogued objects;
3. builds the chat prompt (system prompt first, retrieved text fenced as data) and lets the
   model answer, feeding the attachment's encoder vector to the projector as well;
4. checks the answer against the catalog: a type/class or constellation of a named object
   that its card contradicts is replaced by the card's statement, with a note;
5. returns an ``Answer`` with the sources it was given (``[n]`` in the text is
   ``sources[n-1]``), which of them it cited, and notes on anything it changed or could not do.

Open it through ``Sky.open().assistant()``, which checks that the model's projectors were
trained on the loaded encoder. Without a retriever the assistant answers from catalog cards
alone (and cannot take attachments).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

from astrovlm.assistant.consistency import check_answer
from astrovlm.assistant.context import (MAX_QUESTION_CHARS, ContextBuilder, Embedding,  # noqa: F401
                                        Retrieval)
from astrovlm.assistant.mentions import find_names  # noqa: F401  (part of the public face)
from astrovlm.assistant.prompts import NOT_IN_CONTEXT, Source, build_messages, cited_numbers
from astrovlm.errors import BadArgumentError

log = logging.getLogger(__name__)
MAX_HISTORY_TURNS = 3
_GENERATOR_LOCK = threading.Lock()


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

    def close(self) -> None:
        """Stop generating (the app's Stop): a batched request leaves the batch at once."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()

    def result(self) -> Answer:
        """Drain the stream (if not yet) and return the answer."""
        if self.answer is None:
            for _ in self:
                pass
        return self.answer


class Assistant:
    """Answers questions about celestial objects from retrieved, cited sources.

    ``model``: an ``AstroLlava`` (or anything with its ``stream`` / ``count_tokens``);
    ``retriever``: the ``Retriever`` of ``Sky.open`` (None: catalog cards only). The
    remaining keywords shape the context (see ``ContextBuilder``) and the answer.
    ``batching``: answer concurrent questions through one batched generation loop
    (``batching.BatchedGenerator``, up to ``max_batch`` at once) when the model allows it.
    """

    def __init__(self, model, dataset=None, retriever=None, resolver=None, *,
                 max_question_chars: int = MAX_QUESTION_CHARS, max_new_tokens: int = 96,
                 k_literature: int = 2, literature_min_score: float = 0.5, feed_features: bool = True,
                 exclude_objects=(), allowed_splits=None, allow_other_encoder: bool = False,
                 batching: bool = True, max_batch: int = 8):
        if max_new_tokens < 1 or max_new_tokens > 512:
            raise BadArgumentError("max_new_tokens must be between 1 and 512", field="max_new_tokens")
        self.model, self.dataset, self.retriever = model, dataset, retriever
        self.context = ContextBuilder(dataset, retriever, resolver, max_question_chars=max_question_chars,
                                      k_literature=k_literature, literature_min_score=literature_min_score,
                                      exclude_objects=exclude_objects, allowed_splits=allowed_splits)
        self.max_new_tokens = max_new_tokens
        # Catalog queries, named stars and derived facts: answered from rows and astropy.
        from astrovlm.assistant.direct import DirectAnswers

        self.direct = DirectAnswers(self.context, dataset)
        self._batching, self._max_batch, self._generator = batching, max_batch, None
        # False for a language model whose projector was never trained (the no-LoRA baseline):
        # the attachment then reaches it only as text in the context.
        self.feed_features = feed_features
        # What the encoder check found (empty when the projectors were trained on this encoder).
        self.encoder_warnings: list[str] = []
        if model is not None and retriever is not None and feed_features and hasattr(model, "config"):
            from astrovlm.assistant.model import check_encoder

            self.encoder_warnings = check_encoder(model.config, retriever.encoder,
                                                  allow_other=allow_other_encoder)
            for w in self.encoder_warnings:
                log.warning("%s", w)

    @property
    def generator(self):
        """What generates the answers: one loop that batches the questions in flight (a lone
        question runs alone in it), or the model itself where it cannot be batched. Follows
        ``self.model`` if it is swapped (the CLI's llama.cpp backend)."""
        if self._batching and getattr(self._generator, "model", None) is not self.model:
            from astrovlm.assistant.batching import BatchedGenerator, supports_batching

            with _GENERATOR_LOCK:
                if getattr(self._generator, "model", None) is not self.model:
                    self._generator = (BatchedGenerator(self.model, max_batch=self._max_batch)
                                       if supports_batching(self.model) else None)
        return self._generator if self._generator is not None else self.model

    @property
    def resolver(self):
        return self.context.resolver

    def retrieve(self, question, image=None, spectrum=None, subjects=()) -> Retrieval:
        """The numbered sources this question would be answered from (no generation)."""
        return self.context.gather(question, image, spectrum, subjects)

    # ------------------------------------------------------------------ answering
    def ask(self, question, image=None, spectrum=None, *, history=(), subjects=(), stream: bool = False):
        """Answer a question (with an optional image and/or spectrum file or object).

        Returns an ``Answer``; with ``stream=True`` a ``StreamingAnswer`` to iterate over.
        """
        t0 = time.perf_counter()
        if image is None and spectrum is None:
            checked, truncated, notes = self.context.check_question(question)
            composed = self.direct.answer(checked, subjects)
            if composed is not None:
                return self._direct(composed, truncated, notes, t0, stream)
        r = self.retrieve(question, image, spectrum, subjects)
        t_retrieved = time.perf_counter()
        attachments = tuple(m for m in ("image", "spectrum") if m in r.features)
        fed = tuple(m for m in attachments if self.feed_features and m in self.model.placeholder_ids)
        messages, removed = build_messages(r.question, r.sources, list(history)[-MAX_HISTORY_TURNS:], fed)
        if removed:
            r.notes.append(f"{removed} instruction-like sentence(s) in the retrieved text were removed")
        if not r.sources:
            r.notes.append("nothing was retrieved for this question")
        features = {m: r.features[m] for m in fed}
        stats: dict = {}
        pieces = self.generator.stream(messages, features, self.max_new_tokens, stats=stats)
        if r.readings:   # say which object a name in context was taken as, before the answer
            pieces = _after(" ".join(r.readings) + " ", pieces)

        def finish(text: str) -> Answer:
            t_end = time.perf_counter()
            return self._answer(text.strip(), r, stats, t0, t_retrieved, t_end,
                                stats.get("prompt_tokens") or self.model.count_tokens(messages))

        streaming = StreamingAnswer(pieces, finish)
        return streaming if stream else streaming.result()

    def _direct(self, composed, truncated: bool, notes: list[str], t0: float, stream: bool):
        """An answer composed from catalog rows and computations: its sentences are the pieces."""
        t_composed = time.perf_counter()

        def finish(text: str) -> Answer:
            cited = cited_numbers(text, len(composed.sources))
            sources = []
            for i, s in enumerate(composed.sources, 1):
                d = s.to_dict()
                d["n"], d["cited"] = i, i in cited
                sources.append(d)
            t_end = time.perf_counter()
            timings = {"retrieval_s": round(t_composed - t0, 4), "first_token_s": round(t_composed - t0, 4),
                       "total_s": round(t_end - t0, 4), "prompt_tokens": 0, "new_tokens": 0,
                       "tokens_per_s": None, "generation_s": 0.0, "composed": True}
            return Answer(text.strip(), sources, truncated, list(notes) + list(composed.notes),
                          [o.object_id for o in composed.objects], None, timings, list(composed.sources))

        pieces = [s + " " for s in composed.sentences]
        streaming = StreamingAnswer(iter(pieces), finish)
        return streaming if stream else streaming.result()

    def _answer(self, text, r: Retrieval, stats, t0, t_retrieved, t_end, prompt_tokens) -> Answer:
        shown = r.sources[:_shown_count(r.sources)]
        # The answer check: a type or constellation the object's card contradicts is not
        # given as the answer; the card's own statement is (a stream has shown the first text).
        cards = {s.object_id: i for i, s in enumerate(shown, 1) if s.kind == "catalog_card" and s.object_id}
        text, repaired = check_answer(text, r.objects, cards)
        cited = cited_numbers(text, len(shown))
        sources = []
        for i, s in enumerate(shown, 1):
            d = s.to_dict()
            d["n"], d["cited"] = i, i in cited
            sources.append(d)
        notes = list(r.notes) + repaired
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


def _after(first: str, pieces: Iterator[str]) -> Iterator[str]:
    yield first
    yield from pieces


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
            # An object the sample sky does not hold (M66 from a catalog answer) by its catalog id.
            found = [self.assistant.dataset.get_object(o) or self.assistant.context.resolve(o)
                     for o in answer.objects]
            self.subjects = [o for o in found if o is not None] or self.subjects
        elif answer.objects and self.assistant.resolver is not None:
            self.subjects = [o for o in (self.assistant.context.resolve(i) for i in answer.objects) if o]

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

    def close(self) -> None:
        self.inner.close()
