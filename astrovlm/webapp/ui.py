"""The page: four tabs (Search, Classify, Chat, Object) wired to a ``SkyApp``.

Every handler is wrapped so that an expected problem (``AstroVLMError``: a bad file, an
empty query, an unknown object) reaches the page as a plain message, and anything else
as a short notice while its traceback goes to the server log only. Each event has an
``api_name``, so the same functions are the app's scripted API (docs/app_api.md).
"""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

from astrovlm.errors import AstroVLMError
from astrovlm.webapp.sandbox import MAX_READERS
from astrovlm.webapp.uploads import MAX_UPLOAD_MB, UPLOAD_SUFFIXES

# Chats answered at once: the assistant's batched generation loop (assistant.batching,
# MAX_BATCH) runs up to 8 answers in one forward pass per token; more wait in the queue.
LLM_CONCURRENCY = 8

log = logging.getLogger("astrovlm.webapp")

SEARCH_MODALITIES = ["image", "spectrum", "any", "text"]
FILE_TARGETS = ["other modality", "image", "spectrum", "any"]
CSS = """
#status-line p {margin: 0.2em 0;}
.astro-sources {font-size: 0.92em;}
"""


def _page_error(exc: BaseException) -> gr.Error:
    if isinstance(exc, AstroVLMError):
        return gr.Error(str(exc), print_exception=False)
    log.exception("unexpected error in the app")
    return gr.Error(f"Something went wrong on the server ({type(exc).__name__}); the details "
                    "are in the server log.", print_exception=False)


def on_page(fn):
    """Turn exceptions into messages on the page (also for generator handlers)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - every error becomes a message
                raise _page_error(exc) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _page_error(exc) from None
    return wrapper


def build_blocks(app) -> gr.Blocks:
    """The Gradio Blocks of the app, over a ``SkyApp`` (see ``astrovlm.webapp.service``)."""
    upload_note = (f"FITS, PNG or JPEG ({', '.join(UPLOAD_SUFFIXES)}), up to {MAX_UPLOAD_MB} MB")

    with gr.Blocks(title="astrovlm", delete_cache=(3600, 7200)) as demo:
        gr.Markdown(f"# astrovlm\n{app.describe()}", elem_id="header")
        with gr.Tabs(selected="search", elem_id="tabs") as tabs:
            # ---------------------------------------------------------------- Search
            with gr.Tab("Search", id="search", elem_id="tab-search"):
                with gr.Row():
                    query = gr.Textbox(label="Describe what you are looking for",
                                       placeholder="an edge-on spiral galaxy with a dust lane",
                                       scale=4, elem_id="search-query")
                    with gr.Column(scale=1, min_width=160):
                        search_btn = gr.Button("Search", variant="primary", elem_id="search-btn")
                        search_stop = gr.Button("Stop", variant="stop", size="sm", elem_id="search-stop")
                with gr.Row():
                    modality = gr.Radio(SEARCH_MODALITIES, value="image", label="Show",
                                        elem_id="search-modality")
                    k = gr.Slider(1, 48, value=12, step=1, label="How many (k)", elem_id="search-k")
                with gr.Accordion("... or search with your own image or spectrum", open=True):
                    with gr.Row():
                        query_file = gr.File(label=f"Image or spectrum: {upload_note}",
                                              file_types=list(UPLOAD_SUFFIXES), file_count="single",
                                              elem_id="search-file", scale=3, height=140)
                        with gr.Column(scale=1):
                            file_target = gr.Radio(FILE_TARGETS, value="other modality",
                                                   label="Get back", elem_id="search-file-target")
                            file_btn = gr.Button("Search with this file", elem_id="search-file-btn")
                search_status = gr.Markdown(label="Status", elem_id="search-status")
                gallery = gr.Gallery(label="Results", columns=4, height="auto", object_fit="contain",
                                     elem_id="search-gallery", allow_preview=True)
                search_ids = gr.State([])

            # ---------------------------------------------------------------- Classify
            with gr.Tab("Classify", id="classify", elem_id="tab-classify"):
                gr.Markdown("Upload an image and/or a spectrum of one object; astrovlm scores "
                            "each label from text prompts (zero-shot) and, with both, says how "
                            "much each modality drove the answer.")
                with gr.Row():
                    with gr.Column(scale=1):
                        cls_files = gr.File(label=f"Image and/or spectrum: {upload_note}",
                                            file_types=list(UPLOAD_SUFFIXES), file_count="multiple",
                                            elem_id="classify-file", height=160)
                        label_set = gr.Dropdown(app.label_sets(), value=None, label="Pick a label set",
                                                elem_id="classify-labelset")
                        labels = gr.Textbox(label="Labels, comma-separated (empty: the default "
                                                  "set for the file)", elem_id="classify-labels")
                        band = gr.Radio(["optical", "radio"], value="optical", label="Image band (radio: "
                                        "a continuum map, classed by radio morphology)",
                                        elem_id="classify-band")
                        cls_btn = gr.Button("Classify", variant="primary", elem_id="classify-btn")
                    with gr.Column(scale=1):
                        probs = gr.Label(label="Probabilities", num_top_classes=12,
                                         elem_id="classify-probs")
                        drivers = gr.Label(label="Which modality drove the answer",
                                           elem_id="classify-contrib")
                        cls_note = gr.Markdown(label="Summary", elem_id="classify-status")
                        cls_preview = gr.Gallery(label="What was classified", columns=2,
                                                 height=300, object_fit="contain",
                                                 elem_id="classify-preview")

            # ---------------------------------------------------------------- Chat
            with gr.Tab("Chat", id="chat", elem_id="tab-chat"):
                chatbot = gr.Chatbot(label="astrovlm assistant", height=460, elem_id="chatbot",
                                     placeholder="Ask about an object of the sample sky, e.g. "
                                                 "*What kind of object is M57 and where is it?* "
                                                 "You can attach an image or a spectrum.")
                chat_in = gr.MultimodalTextbox(
                    placeholder="Ask a question (attach a FITS/PNG/JPEG file if you like)",
                    file_types=list(UPLOAD_SUFFIXES), file_count="single", stop_btn=True,
                    show_label=False, elem_id="chat-input", sources=["upload"])
                chat_subjects = gr.State([])
                with gr.Row():
                    chat_stop = gr.Button("Stop", variant="stop", size="sm", elem_id="chat-stop")
                    chat_clear = gr.Button("New conversation", size="sm", elem_id="chat-clear")

            # ---------------------------------------------------------------- Object
            with gr.Tab("Object", id="object", elem_id="tab-object"):
                with gr.Row():
                    obj_name = gr.Textbox(label="Object name or id",
                                          placeholder="M57, NGC 6720, Ring Nebula, HD 37043",
                                          scale=4, elem_id="object-name")
                    obj_btn = gr.Button("Show", variant="primary", scale=1, elem_id="object-btn")
                obj_title = gr.Markdown(label="Object", elem_id="object-title")
                with gr.Row():
                    obj_image = gr.Image(label="Image", type="filepath", interactive=False,
                                         elem_id="object-image", height=360)
                    obj_spec = gr.Image(label="Spectrum", type="filepath", interactive=False,
                                        elem_id="object-spectrum", height=360)
                with gr.Row():
                    obj_facts = gr.Markdown(label="Catalog facts", elem_id="object-facts")
                    obj_text = gr.Markdown(label="Catalog and literature", elem_id="object-passages")
                gr.Markdown("### Nearest neighbours")
                obj_nb = gr.Gallery(label="Similar objects", columns=6, height="auto",
                                    object_fit="contain", elem_id="object-neighbours")
                nb_ids = gr.State([])

        # -------------------------------------------------------------------- events
        def search_text(query, modality, k):
            view = app.search_text(query, modality, k)
            return view.gallery(), view.note, view.object_ids()

        def search_file(file, get_back, k):
            view = app.search_file(file, None if get_back == "other modality" else get_back, k)
            return view.gallery(), view.note, view.object_ids()

        ev_q = gr.on([search_btn.click, query.submit], on_page(search_text),
                     [query, modality, k], [gallery, search_status, search_ids],
                     api_name="search_text", concurrency_id="encoder")
        # Uploads wait for their sandboxed reading in a group of their own: a file that takes
        # its whole time budget to fail does not hold a slot that text searches need.
        ev_f = file_btn.click(on_page(search_file), [query_file, file_target, k],
                              [gallery, search_status, search_ids], api_name="search_file",
                              concurrency_id="upload", concurrency_limit=MAX_READERS)
        search_stop.click(None, None, None, cancels=[ev_q, ev_f])

        def classify(files, labels, band="optical"):
            view = app.classify(files, labels, band=band or "optical")
            return view.probabilities, view.contributions, view.note, view.previews

        cls_btn.click(on_page(classify), [cls_files, labels, band],
                      [probs, drivers, cls_note, cls_preview], api_name="classify",
                      concurrency_id="upload", concurrency_limit=MAX_READERS)
        label_set.change(lambda name: app.label_set(name), label_set, labels, api_visibility="private",
                         queue=False)

        def chat(message, history, subjects):
            yield from app.chat(message, history, subjects)

        ev_chat = chat_in.submit(on_page(chat), [chat_in, chatbot, chat_subjects],
                                 [chatbot, chat_in, chat_subjects], api_name="chat",
                                 concurrency_id="llm", concurrency_limit=LLM_CONCURRENCY)
        chat_stop.click(None, None, None, cancels=[ev_chat])
        chat_in.stop(None, None, None, cancels=[ev_chat])
        chat_clear.click(lambda: ([], None, []), None, [chatbot, chat_in, chat_subjects],
                         api_visibility="private", queue=False)

        # Scripted use without the page's state: one question in, the answer as JSON out.
        def ask(question: str) -> dict:
            """Answer one question about the sample sky; returns text, sources, notes."""
            return app.ask(question)

        gr.api(on_page(ask), api_name="ask", concurrency_id="llm", concurrency_limit=LLM_CONCURRENCY)

        def show_object(name):
            view = app.object_view(name)
            missing = [w for w, v in (("image", view.image), ("spectrum", view.spectrum)) if not v]
            title = view.title
            if missing:
                title += f"\n\n*No {' or '.join(missing)} of this object in the sample sky.*"
            return (title, gr.Image(view.image, visible=bool(view.image)),
                    gr.Image(view.spectrum, visible=bool(view.spectrum)), view.facts, view.passages,
                    view.neighbours.gallery(), view.neighbours.object_ids())

        obj_outputs = [obj_title, obj_image, obj_spec, obj_facts, obj_text, obj_nb, nb_ids]
        gr.on([obj_btn.click, obj_name.submit], on_page(show_object), obj_name, obj_outputs,
              api_name="object", concurrency_id="encoder")

        # Clicking a result opens its object page.
        def open_selected(ids, evt: gr.SelectData):
            object_id = ids[evt.index] if ids and evt.index is not None and evt.index < len(ids) else None
            if not object_id:  # a template spectrum or the user's own file: no object page
                return (gr.skip(), gr.skip(), *[gr.skip()] * len(obj_outputs))
            return (gr.Tabs(selected="object"), object_id, *show_object(object_id))

        for source, ids in ((gallery, search_ids), (obj_nb, nb_ids)):
            source.select(on_page(open_selected), ids, [tabs, obj_name, *obj_outputs],
                          api_visibility="private")

        # A link like ?object=NGC6720 (the chat's sources use them) opens that object's page.
        def from_url(request: gr.Request):
            name = (request.query_params.get("object") or "").strip() if request else ""
            if not name:
                return (gr.Tabs(), gr.Textbox(), *[gr.skip()] * len(obj_outputs))
            return (gr.Tabs(selected="object"), name, *show_object(name))

        demo.load(on_page(from_url), None, [tabs, obj_name, *obj_outputs], api_visibility="private")
    return demo
