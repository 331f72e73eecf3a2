"""``SkyApp``: what the page can do, as plain Python over the library (no Gradio here).

It holds the sample sky, the shipped encoder, the default index and the assistant, and
answers the page's questions with small view objects (a gallery's pictures and captions,
a classification, an object's page). Opening it builds what is missing (the sample sky,
the index) with progress printed, so the app starts with no further step.

Uploads are checked in the server from their bytes (``uploads``) and decoded in a worker
process under a time and a memory budget (``sandbox``); only the encoder runs here.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from astrovlm.errors import AstroVLMError, BadArgumentError, NotFoundError
from astrovlm.webapp import formatting as fmt
from astrovlm.webapp.previews import Previews
from astrovlm.webapp.sandbox import Decoded, Sandbox
from astrovlm.webapp.uploads import check_request, check_text, public_error, upload_path

log = logging.getLogger("astrovlm.webapp")

MAX_K = 48
OBJECT_IMAGE_SIZE = 640
MAX_LABELS = 24
MAX_QUERY_CHARS = 500
MAX_MESSAGE_CHARS = 20_000   # the assistant cuts a long question itself, and says so


# ------------------------------------------------------------------------------ views
@dataclass
class Picture:
    """One picture of a gallery: a PNG on the server and its caption."""

    path: str
    caption: str
    object_id: str | None = None


@dataclass
class Gallery:
    pictures: list[Picture] = field(default_factory=list)
    note: str = ""                          # Markdown shown above the gallery
    hits: list[dict] = field(default_factory=list)

    def gallery(self) -> list[tuple[str, str]]:
        return [(p.path, p.caption) for p in self.pictures]

    def object_ids(self) -> list[str | None]:
        return [p.object_id for p in self.pictures]


@dataclass
class Classification:
    probabilities: dict[str, float]         # fused, for gr.Label
    contributions: dict[str, float]         # modality -> share of the decision
    note: str
    previews: list[tuple[str, str]]
    result: dict = field(default_factory=dict)


@dataclass
class ObjectPage:
    object_id: str
    title: str
    facts: str
    passages: str
    image: str | None
    spectrum: str | None
    neighbours: Gallery


# ------------------------------------------------------------------------------ the app
class SkyApp:
    """The page's functions over one ``Sky`` (dataset, encoder, index, resolver, retriever)
    and, loaded in the background, its assistant."""

    def __init__(self, sky, previews: Previews, assistant_loader: Callable | None = None,
                 sandbox: Sandbox | None = None):
        self.sky = sky
        self.dataset, self.encoder, self.index = sky.dataset, sky.encoder, sky.index
        self.resolver, self.retriever = sky.resolver, sky.retriever
        self.previews = previews
        self.sandbox = sandbox or Sandbox()
        # Encoder calls from the page's workers take turns: one call already uses both cores,
        # and Hugging Face fast tokenizers have failed ("Already borrowed") when shared by
        # threads.
        self._encoder_lock = threading.Lock()
        self._images_of: dict[str, list] = {}
        self._spectra_of: dict[str, list] = {}
        for rec in self.dataset.images:
            self._images_of.setdefault(rec.object_id, []).append(rec)
        for rec in self.dataset.spectra:
            # real spectra first: the object page shows an observation before a simulation
            self._spectra_of.setdefault(rec.object_id, []).append(rec)
        for recs in self._spectra_of.values():
            recs.sort(key=lambda r: (r.simulated, r.spectrum_id))
        self._assistant = None
        self._assistant_error: str | None = None
        self._assistant_ready = threading.Event()
        self._assistant_loader = assistant_loader
        if assistant_loader is None:
            self._assistant_error = "the assistant is not loaded in this app"
            self._assistant_ready.set()

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(cls, build: bool = True, load_assistant: bool = True,
             encoder_path: str | Path | None = None, assistant_path: str | Path | None = None,
             allow_other_encoder: bool = False) -> "SkyApp":
        """The sample sky, the shipped encoder, the default index and the assistant, from
        ``$ASTROVLM_HOME`` (``Sky.open``); the sample sky and the index are built first if
        missing (or if the index was built by another encoder). ``encoder_path`` /
        ``assistant_path``: your own trained folders instead of the shipped weights."""
        from astrovlm.sky import Sky

        sky = Sky.open(encoder=encoder_path, build=build)
        loader = None
        if load_assistant:
            def loader(app):
                return app.sky.assistant(assistant_path, allow_other_encoder=allow_other_encoder)
        app = cls(sky, Previews(), loader)
        app.sandbox.warm()
        if load_assistant:
            app.start_assistant()
        return app

    def start_assistant(self) -> None:
        """Load the assistant in the background: the page is usable (search, classify) while
        the language model loads; the chat waits for it."""
        def run():
            t0 = time.perf_counter()
            try:
                self._assistant = self._assistant_loader(self)
                log.info("assistant ready (%.0f s)", time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001 - reported on the page, search still works
                log.exception("the assistant failed to load")
                self._assistant_error = f"the assistant could not be loaded: {exc}"
            finally:
                self._assistant_ready.set()

        threading.Thread(target=run, name="assistant-loader", daemon=True).start()

    def describe(self) -> str:
        counts = self.index.counts()
        return (f"Search, classify and ask about the **sample sky**: {len(self.dataset.objects)} "
                f"objects, {counts.get('image', 0)} images, {counts.get('spectrum', 0)} spectra and "
                f"{counts.get('text', 0)} passages in one embedding space. Scores are cosine "
                f"similarities; simulated spectra are marked *simulated*.")

    @property
    def allowed_paths(self) -> list[str]:
        """The only folder the server may serve files from: the rendered previews."""
        return [str(self.previews.root.resolve())]

    # ---------------------------------------------------------------- search
    def search_text(self, query: str, modality: str = "image", k: int = 12) -> Gallery:
        query = check_text(query, "query", MAX_QUERY_CHARS)
        if not query:
            raise BadArgumentError("type a description to search for", field="query")
        mod, k = _search_modality(modality), _check_k(k)
        with self._encoder_lock:
            result = self.retriever.text(query, modality=mod, k=k, per_object=PER_SOURCE)
        shown = f"'{query[:80]}'"
        return self._gallery(result, f"{_what(mod)} for {shown}")

    def search_file(self, upload, modality: str | None = None, k: int = 12) -> Gallery:
        """Search with an uploaded image or spectrum; by default get the other modality back."""
        k = _check_k(k)
        path, upload = self._read_upload(upload)
        kind = upload.kind
        target = ("spectrum" if kind == "image" else "image") if modality in (None, "") else modality
        mod = _search_modality(target)
        try:
            own = self._upload_preview(path, upload, f"your spectrum: {path.name}")
            with self._encoder_lock:
                result = self.retriever.query(**{kind: upload.item}, modality=mod, k=k,
                                              per_object=PER_SOURCE)
        except AstroVLMError as exc:
            raise public_error(exc, path) from None
        view = self._gallery(result, f"{_what(mod)} nearest to your {kind} *{path.name}*")
        view.pictures.insert(0, Picture(str(own), f"your {kind}: {path.name}", None))
        return view

    def _read_upload(self, upload) -> tuple[Path, Decoded]:
        """One upload checked from its bytes (``uploads.check_request``), then decoded in the
        sandbox (a worker process with a deadline and a memory limit)."""
        (path,) = check_request([upload])
        try:
            return path, self.sandbox.read(path)
        except AstroVLMError as exc:
            raise public_error(exc, path) from None

    def _upload_preview(self, path: Path, upload: Decoded, title: str) -> Path:
        if upload.kind == "image":
            return self.previews.upload_image(path, upload.thumbnail_image())
        return self.previews.upload_spectrum(upload.spectrum, path, title=title)

    def _gallery(self, result, what: str) -> Gallery:
        pictures, hits, passages = [], [], []
        for hit in result.hits:
            hits.append(hit.to_dict())
            if hit.modality == "text":
                passages.append(hit)
                continue
            picture = self._picture(hit)
            if picture is not None:
                pictures.append(picture)
        note = f"**{len(result.hits)} {what}.**"
        if result.reason:
            note += f" {result.reason}."
        if passages:
            note += "\n\n" + "\n".join(fmt.passage_line(h) for h in passages)
        return Gallery(pictures, note, hits)

    def _picture(self, hit) -> Picture | None:
        if not hit.preview or not Path(hit.preview).exists():
            return None
        try:
            if hit.modality == "image":
                path = self.previews.image(hit.preview)
            else:
                path = self.previews.spectrum(hit.preview, title=fmt.spectrum_title(hit))
        except AstroVLMError as exc:
            log.warning("no preview for %s: %s", hit.item_id, exc)
            return None
        return Picture(str(path), fmt.caption(hit), hit.object_id)

    # ---------------------------------------------------------------- classify
    def label_sets(self) -> list[str]:
        return ["image classes", "spectral classes", "radio morphologies"]

    def label_set(self, name: str | None) -> str:
        from astrovlm.encoders.zeroshot import DEFAULT_LABELS

        key = {"image classes": "image", "spectral classes": "spectrum",
               "radio morphologies": "radio"}.get(name or "")
        return ", ".join(DEFAULT_LABELS[key]) if key else ""

    def classify(self, uploads, labels: str | list | None = None, band: str = "optical") -> Classification:
        """Zero-shot classification of an image and/or a spectrum of one object; ``band``
        "radio" reads the image as a radio map (radio morphologies by default)."""
        if band not in ("optical", "radio"):
            raise BadArgumentError(f"band must be optical or radio, not {band!r}", field="band")
        files = [u for u in (uploads if isinstance(uploads, (list, tuple)) else [uploads])
                 if upload_path(u) is not None]
        if not files:
            raise BadArgumentError("upload an image or a spectrum to classify", field="file")
        if len(files) > 2:
            raise BadArgumentError("upload at most two files: one image and one spectrum of the same "
                                "object", field="file")
        label_list = _parse_labels(labels)
        items, previews, names = {}, [], {}
        for path in check_request(files):   # count and total size before decoding either
            try:
                upload = self.sandbox.read(path, band=band)
            except AstroVLMError as exc:
                raise public_error(exc, path) from None
            kind = upload.kind
            if kind in names:
                raise BadArgumentError(f"two {kind}s given ({names[kind]} and {path.name}); give at most "
                                    "one image and one spectrum", field="file")
            names[kind], items[kind] = path.name, upload.item
            try:
                previews.append((str(self._upload_preview(path, upload, f"spectrum: {path.name}")),
                                 f"{kind}: {path.name}"))
            except AstroVLMError as exc:
                raise public_error(exc, path) from None
        try:
            with self._encoder_lock:
                result = self.retriever.classify(**items, labels=label_list, band=band)
        except AstroVLMError as exc:
            raise public_error(exc, None) from None
        best = result.label
        drove = ", ".join(f"{m} {share:.0%}" for m, share in
                          sorted(result.contributions.items(), key=lambda kv: -kv[1]))
        note = (f"**Most likely: {best}** (p = {result.probabilities[best]:.2f}) from "
                f"{' and '.join(f'the {m} *{names[m]}*' for m in names)}. "
                f"Share of the decision: {drove}.")
        if len(result.per_modality) > 1:
            note += "\n\n" + "\n".join(
                f"- {m} alone: {max(p, key=p.get)} (p = {max(p.values()):.2f})"
                for m, p in result.per_modality.items())
        details = result.to_dict()
        if "spectrum" in items:  # the chi-square fit beside the zero-shot answer, as the CLI gives it
            from astrovlm.encoders.template_fit import fit_or_reason, fit_summary

            details["template_fit"] = fit_or_reason(items["spectrum"])
            line = fit_summary(details["template_fit"])
            note += "\n\n" + line[:1].upper() + line[1:]  # not capitalize(): "K5", "ZWARNING" keep their case
        return Classification(dict(result.probabilities), dict(result.contributions), note, previews, details)

    # ---------------------------------------------------------------- object page
    def resolve(self, name: str) -> tuple[str, object]:
        """(object id, SkyObject) for a name: the offline resolver first (M57, NGC 6720, Ring
        Nebula, HD 37043), then the names stored in the index."""
        name = check_text(name, "object", 100)
        if not name:
            raise BadArgumentError("type an object name, e.g. M57 or NGC 6720", field="object")
        # The catalog first (an object the sample sky lacks still gets a page of facts), then
        # the names stored in the index (e.g. an ingested file's OBJECT card).
        try:
            obj = self.resolver.resolve(name)
            return obj.object_id, self.dataset.get_object(obj.object_id) or obj
        except NotFoundError as exc:
            try:
                object_id = self.retriever.resolve(name)
            except NotFoundError:
                raise NotFoundError(str(exc).replace("field 'name': ", ""), field="object") from None
            return object_id, self.dataset.get_object(object_id)

    def object_view(self, name: str) -> ObjectPage:
        """Everything about one object: facts, image, spectrum, passages, nearest neighbours."""
        object_id, obj = self.resolve(name)
        own_items = self.index.items_of_object(object_id)
        text_hits, neighbours = [], None
        if own_items:
            from astrovlm.index.search import fuse

            # the object's own vectors (no encoder call): its nearest passages and objects
            query = fuse(self.index.vectors(own_items))
            text_hits = self.retriever.nearest(query, k=6, modality="text").hits
            neighbours = self.retriever.similar(object_id, k=8, modality=["image", "spectrum"])
        title = fmt.object_title(obj, object_id)
        image = spectrum = None
        images = self._images_of.get(object_id, [])
        if images:
            image = str(self.previews.image(self.dataset.path(images[0].path), size=OBJECT_IMAGE_SIZE))
        spectra = self._spectra_of.get(object_id, [])
        if spectra:
            rec = spectra[0]
            spectrum = str(self.previews.spectrum(self.dataset.path(rec.path),
                                                  title=fmt.record_spectrum_title(obj, rec), wide=True))
        facts = fmt.facts_markdown(obj, images, spectra)
        if not own_items:
            facts += ("\n\n*This object is in the catalog but not in the sample sky: no image, "
                      "spectrum or neighbours.*")
        passages = self._passages_markdown(object_id, text_hits)
        nb = self._gallery(neighbours, "nearest objects") if neighbours is not None else Gallery()
        return ObjectPage(object_id, title, facts, passages, image, spectrum, nb)

    def _passages_markdown(self, object_id: str, text_hits) -> str:
        own = [p for p in self.dataset.passages if p.object_id == object_id]
        lines = ["### Catalog and literature"]
        for p in own[:3]:
            lines.append(f"**{p.title or 'Catalog card'}** ({p.source}): {fmt.clip(p.text, 600)}")
        seen = {f"text:{p.passage_id}" for p in own}
        for h in text_hits:
            if h.item_id in seen:
                continue
            m = h.metadata
            lines.append(f"*{m.get('source') or 'passage'}* (similarity {h.score:.2f}): "
                         f"{fmt.clip(m.get('caption', ''), 400)}")
        if len(lines) == 1:
            lines.append("No passage about this object.")
        return "\n\n".join(lines)

    # ---------------------------------------------------------------- chat
    def wait_for_assistant(self, timeout: float | None = None):
        if not self._assistant_ready.wait(timeout):
            return None
        if self._assistant is None:
            raise NotFoundError(self._assistant_error or "the assistant is not available")
        return self._assistant

    def chat(self, message, history: list, subjects: list | None = None) -> Iterator[tuple]:
        """Stream the assistant's answer into the chat: yields (history, input box, subjects).

        ``message`` is the MultimodalTextbox value ``{"text": ..., "files": [...]}`` (or a
        plain string from a script); ``subjects`` are the object ids the conversation is about
        (so that "Where is it?" follows "What is M57?"). The answer ends with its sources,
        each a link (``?object=ID``) that opens the object's page."""
        text, files = _message_parts(message)
        if not text and not files:
            raise BadArgumentError("type a question", field="message")
        attachment = kind = item = None
        if files:
            if len(files) > 1:
                raise BadArgumentError("attach one file per question", field="file")
            attachment, upload = self._read_upload(files[0])
            kind, item = upload.kind, upload.item
        question = text or f"What is this {kind}?"
        history = [_plain_message(m) for m in history or [] if m]
        past = _question_answer_pairs(history)
        if attachment is not None:
            preview = self._upload_preview(attachment, upload, f"your spectrum: {attachment.name}")
            history.append({"role": "user", "content": {"path": str(preview),
                                                        "alt_text": f"{kind}: {attachment.name}"}})
        history.append({"role": "user", "content": question})
        history.append({"role": "assistant", "content": ""})
        subjects = list(subjects or [])
        yield history, None, subjects
        # Wait for the language model in short steps, yielding between them: Gradio can only
        # cancel a generator (the Stop button) at a yield.
        while self.wait_for_assistant(timeout=0.5) is None:
            history[-1]["content"] = "*Loading the language model (first start only) ...*"
            yield history, None, subjects
        assistant = self.wait_for_assistant()
        history[-1]["content"] = ""
        # A subject the sample sky does not hold (M66 from a catalog answer) by its catalog id.
        about = [o for o in (self.dataset.get_object(i) or assistant.context.resolve(i) for i in subjects)
                 if o is not None]
        try:
            with self._encoder_lock:  # retrieval encodes the question and the attachment
                stream = assistant.ask(question, **{kind: item} if kind else {}, history=past,
                                       subjects=about, stream=True)
            shown = ""
            try:
                for piece in stream:
                    shown += piece
                    history[-1]["content"] = shown
                    yield history, None, subjects
            finally:  # Stop closes this generator: the answer's generation ends with it
                stream.close()
        except AstroVLMError as exc:
            raise public_error(exc, attachment) from None
        answer = stream.answer
        if answer.objects:
            subjects = list(answer.objects)
        history[-1]["content"] = fmt.answer_markdown(answer)
        yield history, None, subjects

    def ask(self, question: str, timeout: float | None = 600) -> dict:
        """One question, no chat state: the ``Answer`` as a dict (text, sources, notes)."""
        question = check_text(question, "question", MAX_MESSAGE_CHARS)
        if not question:
            raise BadArgumentError("type a question", field="question")
        assistant = self.wait_for_assistant(timeout)
        if assistant is None:
            raise NotFoundError("the language model is still loading; try again in a minute")
        with self._encoder_lock:
            stream = assistant.ask(question, stream=True)
        return stream.result().to_dict()


# ------------------------------------------------------------------------------ helpers
def _question_answer_pairs(history: list[dict]) -> list[tuple[str, str]]:
    """(question, answer) pairs of earlier turns, answers without their sources list."""
    pairs, question = [], None
    for m in history:
        if not isinstance(m.get("content"), str):
            continue
        if m["role"] == "user":
            question = m["content"]
        elif m["role"] == "assistant" and question is not None:
            pairs.append((question, m["content"].split("\n\n" + fmt.SOURCES_HEADING)[0].strip()))
            question = None
    return pairs


def _message_parts(message) -> tuple[str, list]:
    if message is None:
        return "", []
    if isinstance(message, str):
        return check_text(message, "message", MAX_MESSAGE_CHARS), []
    if isinstance(message, dict):
        text = message.get("text")
        return (check_text(text if isinstance(text, str) else str(text or ""), "message",
                           MAX_MESSAGE_CHARS), list(message.get("files") or []))
    raise BadArgumentError("the message must be text or {'text': ..., 'files': [...]}", field="message")


def _plain_message(m) -> dict:
    """A chat message in the plain form: content as a string where it is text."""
    if not isinstance(m, dict):
        m = {"role": getattr(m, "role", "assistant"), "content": getattr(m, "content", "")}
    content = m.get("content")
    if isinstance(content, list):  # Gradio 6 sends [{"type": "text", "text": ...}, ...]
        texts = [c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text"]
        if len(texts) == len(content):
            content = "\n".join(texts)
        elif len(content) == 1:
            content = content[0]
    return {"role": m.get("role", "assistant"), "content": content}


def _parse_labels(labels) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [x for x in labels.split(",")]
        if not any(x.strip() for x in labels):
            return None
    labels = list(labels)
    if len(labels) > MAX_LABELS:
        raise BadArgumentError(f"give at most {MAX_LABELS} labels, got {len(labels)}", field="labels")
    if any(len(str(x)) > 100 for x in labels):
        raise BadArgumentError("a label is longer than 100 characters", field="labels")
    return [check_text(str(x), "labels", 100) for x in labels]


def _search_modality(modality) -> list[str] | str:
    m = (modality or "image").strip().lower()
    if m in ("any", "both", "image + spectrum"):
        return ["image", "spectrum"]
    if m not in ("image", "spectrum", "text"):
        raise BadArgumentError(f"unknown modality '{modality}' (choose image, spectrum, text or any)",
                            field="modality")
    return m


# A gallery shows at most this many items of one object or template: twelve noisy copies of
# one template spectrum, or four images of one nebula, tell a user less than twelve answers.
PER_SOURCE = 2


def _check_k(k) -> int:
    try:
        k = int(k)
    except (TypeError, ValueError):
        raise BadArgumentError(f"k must be a whole number, got {k!r}", field="k") from None
    if not 1 <= k <= MAX_K:
        raise BadArgumentError(f"k must be between 1 and {MAX_K}, got {k}", field="k")
    return k


def _what(mod) -> str:
    if isinstance(mod, list):
        return "images and spectra"
    return {"image": "images", "spectrum": "spectra", "text": "passages"}[mod]


