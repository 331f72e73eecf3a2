"""The astrovlm web app (Gradio): search, classify, chat and object pages over the library.

The library never imports this package; ``astrovlm app`` and ``app.py`` (both through
``launch``) and the tests do.

- ``launch``    the app's command-line options and start-up (``astrovlm app``, ``python app.py``)
- ``service``   ``SkyApp``: the app's operations as plain Python (no Gradio)
- ``ui``        the Gradio Blocks page wired to a ``SkyApp``
- ``uploads``   size and type limits for users' files and text, checked on their bytes
- ``sandbox``   uploads decoded in a worker process, under a time and a memory budget
- ``previews``  thumbnails and spectrum plots, cached (the only folder the server serves)
"""

from __future__ import annotations

import os

# Offline first: no usage reporting to Gradio's servers.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from astrovlm.webapp.service import SkyApp  # noqa: E402
from astrovlm.webapp.uploads import MAX_UPLOAD_MB  # noqa: E402

# Queue bounds: at most this many requests wait; more are told the queue is full. Search and
# classification (encoder, FAISS: tens of ms) run two at a time, the assistant one at a time
# (generation uses both cores).
QUEUE_MAX_SIZE = 64
DEFAULT_CONCURRENCY = 2


def make_demo(app: SkyApp, queue_size: int = QUEUE_MAX_SIZE):
    """The Gradio Blocks of ``app`` with its queue bounds set."""
    from astrovlm.webapp.ui import build_blocks

    demo = build_blocks(app)
    demo.queue(default_concurrency_limit=DEFAULT_CONCURRENCY, max_size=queue_size)
    return demo


def launch_options(app: SkyApp, host: str = "127.0.0.1", port: int | None = None) -> dict:
    """``demo.launch`` arguments: what may be served, upload limits, no external requests."""
    import gradio as gr
    from starlette.middleware import Middleware

    from astrovlm.webapp.ui import CSS
    from astrovlm.webapp.uploads import RequestSizeLimit

    system_fonts = ["ui-sans-serif", "system-ui", "sans-serif"]  # no Google Fonts request
    return dict(
        server_name=host, server_port=port,
        allowed_paths=app.allowed_paths,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        show_error=False,           # handlers raise gr.Error with a message; nothing else leaks
        ssr_mode=False, share=False, mcp_server=False, pwa=False, inbrowser=False,
        theme=gr.themes.Soft(font=system_fonts, font_mono=["ui-monospace", "monospace"]),
        css=CSS,
        app_kwargs={"middleware": [Middleware(RequestSizeLimit)]},  # one request's total upload
    )


def serve(app: SkyApp, host: str = "127.0.0.1", port: int | None = None, block: bool = True,
          queue_size: int = QUEUE_MAX_SIZE):
    """Start the server; with ``block=False`` return the running Blocks (tests, benchmarks)."""
    demo = make_demo(app, queue_size)
    demo.launch(prevent_thread_lock=not block, quiet=not block, **launch_options(app, host, port))
    return demo


__all__ = ["SkyApp", "make_demo", "launch_options", "serve", "QUEUE_MAX_SIZE", "MAX_UPLOAD_MB"]
