"""Many users at once: one generation loop that batches the requests waiting for the model.

``BatchedGenerator`` owns the language model in one background thread. Requests queue up;
at each step boundary the waiting ones join (up to ``max_batch``): each is prefilled alone
(batch 1, exactly as ``generate`` would) and its KV cache is then left-padded and stacked
onto the running batch's. Every step is then one forward pass over all active sequences,
with a 2-D attention mask that hides the padding and explicit position ids, so each row
sees the keys and positions it would see alone. Decoding is greedy, as ``AstroLlava``'s;
a row leaves the batch as soon as it hits a stop token, its ``max_new_tokens`` or is
cancelled, and its slot is free for the next step.

Why not transformers' own continuous batching (``generate_batch`` / ``init_continuous_batching``):
it takes token ids only, and the assistant's prompts are ``inputs_embeds`` with projected
image and spectrum vectors spliced in (LLaVA-style); prefilling alone and batching the
decode keeps that splice untouched.

Each request streams through its own ``TextIteratorStreamer`` (text in pieces, as
``AstroLlava.stream``); closing the stream (the app's Stop) cancels the request. An error
in one request's prefill fails that request only; an error in a batched step fails the
rows of that step and the loop goes on with the next requests.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch
from transformers import TextIteratorStreamer

from astrovlm.errors import AstroVLMError, BadArgumentError, IncompatibleError

log = logging.getLogger(__name__)

MAX_BATCH = 8
MAX_WAIT_S = 0.005   # how long an idle loop waits for company before starting a request
# An idle loop's thread ends after this long (the next request starts another): a thread
# blocked for ever would keep its model, and every assistant made and dropped, alive.
IDLE_EXIT_S = 10.0
_STOP, _IDLE = object(), object()


class GenerationCancelled(AstroVLMError):
    """The request was cancelled, or the generator shut down, before it finished."""


@dataclass(eq=False)
class Request:
    """One answer being generated: its prompt, its stream of text and its counters."""

    messages: list
    features: dict
    max_new_tokens: int
    stats: dict
    streamer: TextIteratorStreamer
    tokens: list[int] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    _cancelled: bool = False

    def cancel(self) -> None:
        """Stop generating; the slot is freed at the next step boundary."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled


@dataclass
class _Row:
    """A request in the running batch: where its next token goes."""

    request: Request
    length: int          # real (unpadded) tokens in its cache
    next_token: int      # the token to feed at the next step


class BatchedGenerator:
    """Greedy generation for many requests through one batched decode loop.

    ``model`` is an ``AstroLlava`` (``lm``, ``tokenizer``, ``chat_ids``, ``embed``,
    ``stop_ids``). ``stream`` has ``AstroLlava.stream``'s signature, so the assistant can
    use either. The thread starts with the first request; ``close`` ends it.
    """

    def __init__(self, model, max_batch: int = MAX_BATCH, max_wait_s: float = MAX_WAIT_S):
        if max_batch < 1:
            raise BadArgumentError("max_batch must be at least 1", field="max_batch")
        self.model, self.max_batch, self.max_wait_s = model, max_batch, max_wait_s
        self.stop_ids = set(model.stop_ids)
        self._queue: queue.Queue = queue.Queue()
        self._rows: list[_Row] = []
        self._cache = None
        self._mask: torch.Tensor | None = None   # (rows, cache length): 1 real, 0 padding
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        # What the loop did (for tests and benchmarks): decode steps, the largest batch,
        # seconds in prefills and in decode steps, and the tokens the decode steps made.
        self.steps = self.peak_batch = self.decode_tokens = 0
        self.prefill_s = self.decode_s = 0.0

    # ------------------------------------------------------------------ the caller's side
    def submit(self, messages: list[dict], features: dict | None = None, max_new_tokens: int = 96,
               stats: dict | None = None) -> Request:
        if max_new_tokens < 1:
            raise BadArgumentError("max_new_tokens must be at least 1", field="max_new_tokens")
        if self._closed:
            raise GenerationCancelled("the generator has been shut down")
        stats = {} if stats is None else stats
        stats.update(new_tokens=0, first_token_time=None, stopped=False)
        streamer = TextIteratorStreamer(self.model.tokenizer, skip_prompt=False, skip_special_tokens=True)
        request = Request(messages, dict(features or {}), max_new_tokens, stats, streamer)
        self._queue.put(request)   # before the thread check: see _take_waiting's idle exit
        self._ensure_thread()
        return request

    def stream(self, messages: list[dict], features: dict | None = None, max_new_tokens: int = 96,
               stats: dict | None = None) -> Iterator[str]:
        """Yield the answer in pieces; closing the iterator early cancels the request."""
        request = self.submit(messages, features, max_new_tokens, stats)
        try:
            yield from request.streamer
        finally:
            if not request.done.is_set():
                request.cancel()
        request.done.wait()
        if request.error is not None:
            raise request.error

    def generate(self, messages: list[dict], features: dict | None = None, max_new_tokens: int = 96) -> str:
        return "".join(self.stream(messages, features, max_new_tokens)).strip()

    def count_tokens(self, messages: list[dict]) -> int:
        return self.model.count_tokens(messages)

    @property
    def active(self) -> int:
        """Requests in the running batch now."""
        return len(self._rows)

    def close(self, timeout: float | None = 30) -> None:
        """Finish the loop: requests still queued or running end with ``GenerationCancelled``."""
        self._closed = True
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="astrovlm-generation", daemon=True)
                self._thread.start()

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                joining = self._take_waiting()
                if joining is _IDLE:
                    return   # nothing running, nothing queued: a new request starts a new thread
                if joining is None:
                    break
                try:
                    for request in joining:
                        self._join(request)
                    self._drop_cancelled()
                    if self._rows:
                        self._step()
                except Exception as exc:  # noqa: BLE001 - a bug here must not hang every caller
                    log.exception("the generation loop failed; its requests end with the error")
                    for r in joining + [row.request for row in self._rows]:
                        self._finish(r, exc)
                    self._rows, self._cache, self._mask = [], None, None
        for row in self._rows:
            self._finish(row.request, GenerationCancelled("the generator was shut down"))
        self._rows, self._cache, self._mask = [], None, None
        while True:   # requests that came after the stop mark
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                self._finish(item, GenerationCancelled("the generator was shut down"))

    def _take_waiting(self) -> list[Request] | None:
        """The requests that join at this step boundary (None: shut down; ``_IDLE``: the
        thread may end, nothing has come for ``IDLE_EXIT_S``). An idle loop
        blocks for the first one, then waits ``max_wait_s`` for others to start with it;
        a running loop takes only those already waiting."""
        taken: list[Request] = []
        idle = not self._rows
        deadline = 0.0
        while len(taken) < self.max_batch - len(self._rows):
            try:
                if idle and not taken:
                    item = self._queue.get(timeout=IDLE_EXIT_S)
                elif idle:
                    item = self._queue.get(timeout=max(deadline - time.perf_counter(), 0))
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                if idle and not taken and self._exit_if_still_idle():
                    return _IDLE
                if idle and not taken:
                    continue
                break
            if item is _STOP:
                self._refuse(taken)
                return None
            taken.append(item)
            if len(taken) == 1:
                deadline = time.perf_counter() + self.max_wait_s
        return taken

    def _exit_if_still_idle(self) -> bool:
        # Under the start lock: a request put before this check is seen here; one put after
        # it finds no thread and starts a new one.
        with self._start_lock:
            if self._queue.empty():
                self._thread = None
                return True
        return False

    def _refuse(self, requests: list[Request]) -> None:
        for r in requests:
            self._finish(r, GenerationCancelled("the generator was shut down"))

    def _join(self, request: Request) -> None:
        """Prefill one request alone and, unless it is already finished, add it to the batch."""
        if request.cancelled:
            self._finish(request)
            return
        t0 = time.perf_counter()
        try:
            from transformers import DynamicCache

            ids = torch.tensor([self.model.chat_ids(request.messages)], device=self.model.device)
            features = {m: (f if torch.is_tensor(f) else torch.as_tensor(f)).reshape(-1, self.model.config.enc_dim)
                        for m, f in request.features.items() if f is not None}
            embeds = self.model.embed(ids, features)
            request.stats["prompt_tokens"] = ids.shape[1]
            cache = DynamicCache(config=self.model.lm.config)
            n = ids.shape[1]
            out = self.model.lm(inputs_embeds=embeds, attention_mask=torch.ones_like(ids),
                                position_ids=torch.arange(n, device=ids.device).unsqueeze(0),
                                cache=cache, use_cache=True, logits_to_keep=1)
            token = int(out.logits[0, -1].argmax())
            odd = [type(la).__name__ for la in cache.layers if type(la).__name__ != "DynamicLayer"]
            if odd:   # sliding-window or static layers cannot be stacked as below
                raise IncompatibleError(f"batched generation needs full-attention caches (found {odd[0]})",
                                        field="language_model")
        except Exception as exc:  # noqa: BLE001 - this request fails, the loop goes on
            log.warning("a generation request failed in its prefill: %s", exc)
            self._finish(request, exc)
            return
        finally:
            self.prefill_s += time.perf_counter() - t0
        if self._emit(request, token):
            return
        self._merge(cache, _Row(request, n, token))

    def _merge(self, cache, row: _Row) -> None:
        """Stack a prefilled cache onto the batch's, left-padding the shorter side."""
        if self._cache is None:
            self._cache, self._mask = cache, torch.ones(1, row.length, dtype=torch.long)
            self._rows = [row]
            return
        width = max(self._mask.shape[1], row.length)
        old_pad, new_pad = width - self._mask.shape[1], width - row.length
        for mine, theirs in zip(self._cache.layers, cache.layers):
            mine.keys = torch.cat([_pad_left(mine.keys, old_pad), _pad_left(theirs.keys, new_pad)])
            mine.values = torch.cat([_pad_left(mine.values, old_pad), _pad_left(theirs.values, new_pad)])
        new_mask = torch.zeros(1, width, dtype=torch.long)
        new_mask[:, new_pad:] = 1
        self._mask = torch.cat([torch.nn.functional.pad(self._mask, (old_pad, 0)), new_mask])
        self._rows.append(row)
        self.peak_batch = max(self.peak_batch, len(self._rows))

    def _step(self) -> None:
        """One forward pass over every active row; each row gets its next greedy token."""
        rows = self._rows
        self.peak_batch = max(self.peak_batch, len(rows))
        device = self.model.device
        t0 = time.perf_counter()
        try:
            ids = torch.tensor([[r.next_token] for r in rows], device=device)
            positions = torch.tensor([[r.length] for r in rows], device=device)
            self._mask = torch.cat([self._mask, torch.ones(len(rows), 1, dtype=torch.long)], dim=1)
            out = self.model.lm(input_ids=ids, attention_mask=self._mask.to(device), position_ids=positions,
                                cache=self._cache, use_cache=True)
            tokens = out.logits[:, -1].argmax(dim=-1).tolist()
        except Exception as exc:  # noqa: BLE001 - these rows fail, the loop goes on
            log.warning("a batched generation step failed for %d request(s): %s", len(rows), exc)
            for r in rows:
                self._finish(r.request, exc)
            self._rows, self._cache, self._mask = [], None, None
            return
        self.steps += 1
        self.decode_tokens += len(rows)
        self.decode_s += time.perf_counter() - t0
        keep = []
        for i, (row, token) in enumerate(zip(rows, tokens)):
            row.length += 1
            row.next_token = token
            if not self._emit(row.request, token):
                keep.append(i)
        if len(keep) < len(rows):
            self._select(keep)

    def _emit(self, request: Request, token: int) -> bool:
        """Hand one new token to its request; True when the request is finished."""
        stats = request.stats
        if stats["first_token_time"] is None:
            stats["first_token_time"] = time.perf_counter()
        stats["new_tokens"] += 1
        request.tokens.append(token)
        try:
            request.streamer.put(torch.tensor([token]))
        except Exception as exc:  # noqa: BLE001 - a decode failure ends this request only
            self._finish(request, exc)
            return True
        if token in self.stop_ids:
            stats["stopped"] = True
        if stats["stopped"] or stats["new_tokens"] >= request.max_new_tokens or request.cancelled:
            self._finish(request)
            return True
        return False

    def _drop_cancelled(self) -> None:
        keep = [i for i, r in enumerate(self._rows) if not r.request.cancelled]
        for r in self._rows:
            if r.request.cancelled:
                self._finish(r.request)
        if len(keep) < len(self._rows):
            self._select(keep)

    def _select(self, keep: list[int]) -> None:
        """Keep only these rows (a finished or cancelled row leaves at once), and drop the
        cache columns that are padding in every remaining row."""
        if not keep:
            self._rows, self._cache, self._mask = [], None, None
            return
        index = torch.tensor(keep)
        self._rows = [self._rows[i] for i in keep]
        mask = self._mask[index]
        start = int(mask.any(dim=0).long().argmax())   # first column some row uses
        self._mask = mask[:, start:]
        for layer in self._cache.layers:
            layer.keys = layer.keys[index.to(layer.keys.device), :, start:]
            layer.values = layer.values[index.to(layer.values.device), :, start:]

    def _finish(self, request: Request, error: BaseException | None = None) -> None:
        if request.done.is_set():
            return
        request.error = error
        try:
            request.streamer.end()
        except Exception:  # noqa: BLE001 - the stream must be closed whatever the decoder says
            request.streamer.text_queue.put(request.streamer.stop_signal)
        request.done.set()


def _pad_left(t: torch.Tensor, n: int) -> torch.Tensor:
    """Zero keys/values in front along the sequence axis (they are masked out)."""
    return torch.nn.functional.pad(t, (0, 0, n, 0)) if n else t


def supports_batching(model) -> bool:
    """Whether ``model`` is a transformers-backed assistant model the loop can drive."""
    return all(hasattr(model, a) for a in ("lm", "embed", "chat_ids", "stop_ids", "tokenizer"))
