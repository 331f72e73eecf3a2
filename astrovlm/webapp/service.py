"""``SkyApp``: what the page can do, as plain Python over the library (no Gradio here).

It holds the sample sky, the shipped encoder, the default index and the assistant, and
answers the page's questions with small view objects (a gallery's pictures and captions,
a classification, an object's page). Opening it builds what is missing (the sample sky,
the index) with progress printed, so the app starts with no further step.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from astrovlm.errors import AstroVLMError
from astrovlm.webapp.previews import Previews
from astrovlm.webapp.uploads import check_upload, public_error, upload_path

log = logging.getLogger("astrovlm.webapp")

MAX_K = 48
OBJECT_IMAGE_SIZE = 640
MAX_LABELS = 24


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
    def __init__(self, dataset, search, previews: Previews, assistant_loader: Callable | None = None,
                 resolver=None):
        from astrovlm.data.resolver import NameResolver

        self.dataset = dataset
        # One offline name resolver (OpenNGC, the KStars stars, the sample's objects) for the
        # object pages and the assistant.
        self.resolver = resolver if resolver is not None else NameResolver.from_dataset(dataset.root)
        self.sky = search                   # astrovlm.index.search.SkySearch
        self.encoder = search.encoder
        self.index = search.index
        self.previews = previews
        # Encoder calls from the page's workers take turns: one call already uses both cores,
        # and Hugging Face fast tokenizers have failed ("Already borrowed") when shared by
        # threads.
        self._encoder_lock = threading.Lock()
        self._images_of: dict[str, list] = {}
        self._spectra_of: dict[str, list] = {}
        for rec in dataset.images:
            self._images_of.setdefault(rec.object_id, []).append(rec)
        for rec in dataset.spectra:
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
    def open(cls, build: bool = True, load_assistant: bool = True, say: Callable = print,
             encoder_path: str | Path | None = None, assistant_path: str | Path | None = None,
             ) -> "SkyApp":
        """The sample sky, the shipped encoder, the default index and the assistant, from
        ``$ASTROVLM_HOME``; the sample sky and the index are built first if missing (or if
        the index was built by another encoder). ``encoder_path`` / ``assistant_path``: your
        own trained folders instead of the shipped weights."""
        from astrovlm.config import default_index_dir, sample_dir
        from astrovlm.data.records import SkyDataset
        from astrovlm.encoders import AlignedEncoder
        from astrovlm.index import CrossModalIndex
        from astrovlm.index.search import SkySearch

        root = sample_dir()
        if not (root / "manifest.json").exists():
            if not build:
                raise AstroVLMError("the sample sky is not built; run 'astrovlm data sample'", path=root)
            from astrovlm.data.sample import build_sample_sky

            say(f"astrovlm: building the sample sky in {root} (first start only) ...")
            t0 = time.perf_counter()
            build_sample_sky(root, progress=True)
            say(f"astrovlm: sample sky built in {time.perf_counter() - t0:.0f} s")
        dataset = SkyDataset(root)
        say(f"astrovlm: {dataset!r}")
        encoder = AlignedEncoder.from_pretrained(encoder_path)
        index_dir = default_index_dir()
        try:
            index = CrossModalIndex.load(index_dir, expected_fingerprint=encoder.fingerprint)
        except AstroVLMError as exc:
            if not build:
                raise
            from astrovlm.index.build import build_index

            why = "is missing" if not index_dir.exists() else f"cannot be used ({exc})"
            say(f"astrovlm: the default index {why}; building it in {index_dir} ...")
            index, summary = build_index(root, encoder=encoder, out=index_dir, progress=True)
            say(f"astrovlm: index built: {summary['count']} vectors in {summary['seconds']} s")
        search = SkySearch(encoder, index)
        loader = (lambda app: _load_assistant(app, assistant_path)) if load_assistant else None
        app = cls(dataset, search, Previews(), loader)
        if load_assistant:
            app.start_assistant(say)
        return app

    def start_assistant(self, say: Callable = print) -> None:
        """Load the assistant in the background: the page is usable (search, classify) while
        the language model loads; the chat waits for it."""
        def run():
            t0 = time.perf_counter()
            try:
                self._assistant = self._assistant_loader(self)
                say(f"astrovlm: assistant ready ({time.perf_counter() - t0:.0f} s)")
            except Exception as exc:  # noqa: BLE001 - reported on the page, search still works
                log.exception("the assistant failed to load")
                self._assistant_error = f"the assistant could not be loaded: {exc}"
                say(f"astrovlm: {self._assistant_error}")
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
        if not isinstance(query, str) or not query.strip():
            raise AstroVLMError("type a description to search for", field="query")
        mod, k = _search_modality(modality), _check_k(k)
        with self._encoder_lock:
            result = self.sky.text(query.strip()[:500], modality=mod, k=_fetch(k))
        shown = f"'{query.strip()[:80]}'"
        return self._gallery(_varied(result, k), f"{_what(mod)} for {shown}")

    def search_file(self, upload, modality: str | None = None, k: int = 12) -> Gallery:
        """Search with an uploaded image or spectrum; by default get the other modality back."""
        path, kind = check_upload(upload)
        target = ("spectrum" if kind == "image" else "image") if modality in (None, "") else modality
        mod, k = _search_modality(target), _check_k(k)
        try:
            if kind == "image":
                own = self.previews.upload_image(path)
                with self._encoder_lock:
                    result = self.sky.image(path, modality=mod, k=_fetch(k))
            else:
                spectrum = _read_spectrum(path)
                own = self.previews.upload_spectrum(spectrum, path, title=f"your spectrum: {path.name}")
                with self._encoder_lock:
                    result = self.sky.spectrum(spectrum, modality=mod, k=_fetch(k))
        except AstroVLMError as exc:
            raise public_error(exc, path) from None
        view = self._gallery(_varied(result, k), f"{_what(mod)} nearest to your {kind} *{path.name}*")
        view.pictures.insert(0, Picture(str(own), f"your {kind}: {path.name}", None))
        return view

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
            note += "\n\n" + "\n".join(_passage_line(h) for h in passages)
        return Gallery(pictures, note, hits)

    def _picture(self, hit) -> Picture | None:
        meta = hit.metadata
        if not hit.preview or not Path(hit.preview).exists():
            return None
        try:
            if hit.modality == "image":
                path = self.previews.image(hit.preview)
            else:
                path = self.previews.spectrum(hit.preview, title=_spectrum_title(hit))
        except AstroVLMError as exc:
            log.warning("no preview for %s: %s", hit.item_id, exc)
            return None
        return Picture(str(path), _caption(hit), hit.object_id)

    # ---------------------------------------------------------------- classify
    def label_sets(self) -> list[str]:
        return ["image classes", "spectral classes"]

    def label_set(self, name: str | None) -> str:
        from astrovlm.encoders.zeroshot import DEFAULT_LABELS

        key = {"image classes": "image", "spectral classes": "spectrum"}.get(name or "")
        return ", ".join(DEFAULT_LABELS[key]) if key else ""

    def classify(self, uploads, labels: str | list | None = None) -> Classification:
        """Zero-shot classification of an image and/or a spectrum of one object."""
        from astrovlm.encoders.zeroshot import classify

        files = [u for u in (uploads if isinstance(uploads, (list, tuple)) else [uploads])
                 if upload_path(u) is not None]
        if not files:
            raise AstroVLMError("upload an image or a spectrum to classify", field="file")
        if len(files) > 2:
            raise AstroVLMError("upload at most two files: one image and one spectrum of the same "
                                "object", field="file")
        image = spectrum = None
        previews, names = [], {}
        for upload in files:
            path, kind = check_upload(upload)
            if kind in names:
                raise AstroVLMError(f"two {kind}s given ({names[kind]} and {path.name}); give at most "
                                    "one image and one spectrum", field="file")
            names[kind] = path.name
            try:
                if kind == "image":
                    image = path
                    previews.append((str(self.previews.upload_image(path)), f"image: {path.name}"))
                else:
                    spectrum = _read_spectrum(path)
                    previews.append((str(self.previews.upload_spectrum(
                        spectrum, path, title=f"spectrum: {path.name}")), f"spectrum: {path.name}"))
            except AstroVLMError as exc:
                raise public_error(exc, path) from None
        label_list = _parse_labels(labels)
        try:
            with self._encoder_lock:
                result = classify(self.encoder, image=image, spectrum=spectrum, labels=label_list)
        except AstroVLMError as exc:
            raise public_error(exc, image) from None
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
        return Classification(dict(result.probabilities), dict(result.contributions), note, previews,
                              result.to_dict())

    # ---------------------------------------------------------------- object page
    def resolve(self, name: str) -> tuple[str, object]:
        """(object id, SkyObject) for a name: the offline resolver first (M57, NGC 6720, Ring
        Nebula, HD 37043), then the names stored in the index."""
        if not isinstance(name, str) or not name.strip():
            raise AstroVLMError("type an object name, e.g. M57 or NGC 6720", field="object")
        name = name.strip()[:100]
        try:
            obj = self.resolver.resolve(name)
            return obj.object_id, self.dataset.get_object(obj.object_id) or obj
        except AstroVLMError as exc:
            try:
                object_id = self.sky.resolve(name)
            except AstroVLMError:
                raise AstroVLMError(str(exc).replace("field 'name': ", ""), field="object") from None
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
            text_hits = self.index.search(query, k=6, modality="text").hits
            neighbours = self.sky.similar(object_id, k=8, modality=["image", "spectrum"])
        title = _object_title(obj, object_id)
        image = spectrum = None
        images = self._images_of.get(object_id, [])
        if images:
            image = str(self.previews.image(self.dataset.path(images[0].path), size=OBJECT_IMAGE_SIZE))
        spectra = self._spectra_of.get(object_id, [])
        if spectra:
            rec = spectra[0]
            spectrum = str(self.previews.spectrum(self.dataset.path(rec.path),
                                                  title=_record_spectrum_title(obj, rec), wide=True))
        facts = _facts_markdown(obj, images, spectra)
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
            lines.append(f"**{p.title or 'Catalog card'}** ({p.source}): {_clip(p.text, 600)}")
        seen = {f"text:{p.passage_id}" for p in own}
        for h in text_hits:
            if h.item_id in seen:
                continue
            m = h.metadata
            lines.append(f"*{m.get('source') or 'passage'}* (similarity {h.score:.2f}): "
                         f"{_clip(m.get('caption', ''), 400)}")
        if len(lines) == 1:
            lines.append("No passage about this object.")
        return "\n\n".join(lines)

    # ---------------------------------------------------------------- chat
    def wait_for_assistant(self, timeout: float | None = None):
        if not self._assistant_ready.wait(timeout):
            return None
        if self._assistant is None:
            raise AstroVLMError(self._assistant_error or "the assistant is not available")
        return self._assistant

    def chat(self, message, history: list, subjects: list | None = None) -> Iterator[tuple]:
        """Stream the assistant's answer into the chat: yields (history, input box, subjects).

        ``message`` is the MultimodalTextbox value ``{"text": ..., "files": [...]}`` (or a
        plain string from a script); ``subjects`` are the object ids the conversation is about
        (so that "Where is it?" follows "What is M57?"). The answer ends with its sources,
        each a link (``?object=ID``) that opens the object's page."""
        text, files = _message_parts(message)
        if not text and not files:
            raise AstroVLMError("type a question", field="message")
        attachment = kind = None
        item = None
        if files:
            if len(files) > 1:
                raise AstroVLMError("attach one file per question", field="file")
            attachment, kind = check_upload(files[0])
            item = attachment if kind == "image" else _public_read_spectrum(attachment)
        question = text or f"What is this {kind}?"
        history = [_plain_message(m) for m in history or [] if m]
        past = _question_answer_pairs(history)
        if attachment is not None:
            preview = (self.previews.upload_image(attachment) if kind == "image" else
                       self.previews.upload_spectrum(item, attachment,
                                                     title=f"your spectrum: {attachment.name}"))
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
        about = [o for o in (self.dataset.get_object(i) for i in subjects) if o is not None]
        try:
            with self._encoder_lock:  # retrieval encodes the question and the attachment
                stream = assistant.ask(question, **{kind: item} if kind else {}, history=past,
                                       subjects=about, stream=True)
            shown = ""
            for piece in stream:
                shown += piece
                history[-1]["content"] = shown
                yield history, None, subjects
        except AstroVLMError as exc:
            raise public_error(exc, attachment) from None
        answer = stream.answer
        if answer.objects:
            subjects = list(answer.objects)
        history[-1]["content"] = _answer_markdown(answer)
        yield history, None, subjects

    def ask(self, question: str, timeout: float | None = 600) -> dict:
        """One question, no chat state: the ``Answer`` as a dict (text, sources, notes)."""
        assistant = self.wait_for_assistant(timeout)
        if assistant is None:
            raise AstroVLMError("the language model is still loading; try again in a minute")
        with self._encoder_lock:
            stream = assistant.ask(question, stream=True)
        return stream.result().to_dict()


# ------------------------------------------------------------------------------ helpers
def _load_assistant(app: SkyApp, path: str | Path | None = None):
    """The shipped assistant (or the one saved at ``path``) over the app's own dataset,
    index, encoder and resolver."""
    from astrovlm.assistant import Assistant, AstroLlava

    return Assistant(AstroLlava.from_pretrained(path), app.dataset, app.index, app.encoder, app.resolver)


SOURCES_HEADING = "**Sources**"


def _answer_markdown(answer) -> str:
    text = answer.text or "(no answer)"
    notes = "".join(f"\n\n*Note: {n}.*" for n in answer.notes)
    return text + notes + _sources_markdown(answer.sources)


def _question_answer_pairs(history: list[dict]) -> list[tuple[str, str]]:
    """(question, answer) pairs of earlier turns, answers without their sources list."""
    pairs, question = [], None
    for m in history:
        if not isinstance(m.get("content"), str):
            continue
        if m["role"] == "user":
            question = m["content"]
        elif m["role"] == "assistant" and question is not None:
            pairs.append((question, m["content"].split("\n\n" + SOURCES_HEADING)[0].strip()))
            question = None
    return pairs


def _message_parts(message) -> tuple[str, list]:
    if message is None:
        return "", []
    if isinstance(message, str):
        return message.strip(), []
    if isinstance(message, dict):
        return str(message.get("text") or "").strip(), list(message.get("files") or [])
    raise AstroVLMError("the message must be text or {'text': ..., 'files': [...]}", field="message")


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


def _sources_markdown(sources) -> str:
    if not sources:
        return ""
    lines = ["", "", SOURCES_HEADING]
    for i, s in enumerate(sources, 1):
        d = s.to_dict() if hasattr(s, "to_dict") else dict(s)
        title = d.get("title") or d.get("id")
        oid = d.get("object_id")
        credit = f" — {d['credit']}" if d.get("credit") else ""
        kind = f" ({d['kind'].replace('_', ' ')})" if d.get("kind") else ""
        if oid:
            lines.append(f"{i}. [{title}](?object={_url_quote(oid)}){kind}{credit}")
        else:
            lines.append(f"{i}. {title}{kind}{credit}")
    return "\n".join(lines)


def _url_quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")


def _read_spectrum(path: Path):
    from astrovlm.data.readers import read_spectrum

    return read_spectrum(path)


def _public_read_spectrum(path: Path):
    try:
        return _read_spectrum(path)
    except AstroVLMError as exc:
        raise public_error(exc, path) from None


def _parse_labels(labels) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [x for x in labels.split(",")]
        if not any(x.strip() for x in labels):
            return None
    labels = list(labels)
    if len(labels) > MAX_LABELS:
        raise AstroVLMError(f"give at most {MAX_LABELS} labels, got {len(labels)}", field="labels")
    if any(len(str(x)) > 100 for x in labels):
        raise AstroVLMError("a label is longer than 100 characters", field="labels")
    return labels


def _search_modality(modality) -> list[str] | str:
    m = (modality or "image").strip().lower()
    if m in ("any", "both", "image + spectrum"):
        return ["image", "spectrum"]
    if m not in ("image", "spectrum", "text"):
        raise AstroVLMError(f"unknown modality '{modality}' (choose image, spectrum, text or any)",
                            field="modality")
    return m


PER_SOURCE = 2      # a gallery shows at most this many items of one object or template


def _fetch(k: int) -> int:
    """How many hits to ask the index for, so that k remain after ``_varied``."""
    return k * 4


def _varied(result, k: int):
    """The best ``k`` hits with at most ``PER_SOURCE`` per object (or per template, for
    spectra of no catalogued object): twelve noisy copies of one template spectrum, or four
    images of one nebula, tell a user less than twelve different answers."""
    from astrovlm.index import SearchResult

    kept, count = [], {}
    for hit in result.hits:
        key = hit.object_id or hit.metadata.get("template") or hit.item_id
        if count.get(key, 0) >= PER_SOURCE:
            continue
        count[key] = count.get(key, 0) + 1
        kept.append(hit)
        if len(kept) == k:
            break
    reason = result.reason if not kept else None
    if kept and len(kept) < k:
        reason = f"only {len(kept)} match (at most {PER_SOURCE} per object or template)"
    return SearchResult(kept, k, reason, result.filter)


def _check_k(k) -> int:
    try:
        k = int(k)
    except (TypeError, ValueError):
        raise AstroVLMError(f"k must be a whole number, got {k!r}", field="k") from None
    if not 1 <= k <= MAX_K:
        raise AstroVLMError(f"k must be between 1 and {MAX_K}, got {k}", field="k")
    return k


def _what(mod) -> str:
    if isinstance(mod, list):
        return "images and spectra"
    return {"image": "images", "spectrum": "spectra", "text": "passages"}[mod]


def _caption(hit) -> str:
    """'M57 · 0.412 · planetary nebula' (score first: long captions are cut in the gallery);
    spectra say so, and simulated ones are flagged."""
    m = hit.metadata
    kind = m.get("otype") or m.get("coarse_class") or ""
    what = "" if hit.modality == "image" else f" · {hit.modality}"
    z = m.get("redshift")
    if z and z > 0.001:
        what += f" z={z:.3f}"
    sim = " · simulated" if m.get("simulated") else ""
    return f"{_hit_name(hit)} · {hit.score:.3f}{what}{sim} · {kind}"


def _hit_name(hit) -> str:
    """An object's name; a template spectrum (no object) by its template's name."""
    m = hit.metadata
    if m.get("name") or hit.object_id:
        return m.get("name") or hit.object_id
    if m.get("template"):
        return f"template {m['template']}"
    return hit.item_id.split(":", 1)[-1]


def _spectrum_title(hit) -> str:
    meta = hit.metadata
    z = meta.get("redshift")
    sim = " [simulated]" if meta.get("simulated") else ""
    ztxt = f" (z = {z:.4g})" if z and z > 0.001 else ""
    # short: a gallery cell is narrow, and the caption carries the type
    return f"{_clip(_hit_name(hit), 40)}{ztxt}{sim}"


def _record_spectrum_title(obj, rec) -> str:
    name = obj.name if obj else (rec.object_id or rec.spectrum_id)
    sim = " [simulated]" if rec.simulated else ""
    z = f" (z = {rec.redshift:.4g})" if rec.redshift and rec.redshift > 0.001 else ""
    return f"{name} {rec.subclass or rec.spectral_class}{z}{sim}"


def _passage_line(hit) -> str:
    m = hit.metadata
    return f"- *{m.get('source') or 'passage'}* (score {hit.score:.3f}): {_clip(m.get('caption', ''), 300)}"


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _object_title(obj, object_id: str) -> str:
    if obj is None:
        return f"## {object_id}"
    other = [a for a in obj.aliases if a != obj.name][:4]
    aka = f" ({', '.join(other)})" if other else ""
    return f"## {obj.name}{aka}\n{obj.otype}"


def _facts_markdown(obj, images, spectra) -> str:
    rows = []
    if obj is not None:
        coord = obj.coord
        if coord is not None:
            rows.append(("Position (ICRS)", coord.to_string("hmsdms", precision=1)))
        for label, value in (("Type", obj.otype), ("Class", obj.coarse_class),
                             ("Constellation", obj.constellation), ("Hubble type", obj.hubble_type),
                             ("Spectral type", obj.spectral_type),
                             ("Redshift", f"{obj.redshift:.5g}" if obj.redshift is not None else None),
                             ("V magnitude", f"{obj.v_mag:.2f}" if obj.v_mag is not None else None),
                             ("B magnitude", f"{obj.b_mag:.2f}" if obj.b_mag is not None else None),
                             ("Size", _size(obj)), ("Aliases", ", ".join(obj.aliases[:8]) or None),
                             ("Catalog", obj.source or None)):
            if value not in (None, ""):
                rows.append((label, str(value)))
    rows.append(("Images", str(len(images))))
    n_sim = sum(1 for r in spectra if r.simulated)
    rows.append(("Spectra", f"{len(spectra)}" + (f" ({n_sim} simulated)" if n_sim else "")))
    credits = sorted({r.credit for r in images[:1] + spectra[:1] if r.credit})
    if credits:
        rows.append(("Credit", "; ".join(credits)))
    body = "\n".join(f"| {k} | {v.replace('|', '/')} |" for k, v in rows)
    return "### Catalog facts\n| Fact | Value |\n|---|---|\n" + body


def _size(obj) -> str | None:
    if obj.major_axis_arcmin is None:
        return None
    if obj.minor_axis_arcmin is None:
        return f"{obj.major_axis_arcmin:.3g} arcmin"
    return f"{obj.major_axis_arcmin:.3g} × {obj.minor_axis_arcmin:.3g} arcmin"
