"""Start the web app: the options of ``astrovlm app`` (and ``python app.py``) and the launch.

Opens the sample sky with the shipped encoder and the default index; if the sample sky or
the index is missing from ``$ASTROVLM_HOME`` it is built first. The parser is built without
importing Gradio, so ``astrovlm --help`` stays fast; Gradio loads when the app starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from astrovlm.errors import AstroVLMError
from astrovlm.logs import add_verbosity_arguments, setup_logging

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to your network)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--home", help="data home (default $ASTROVLM_HOME or ~/.astrovlm)")
    p.add_argument("--no-build", action="store_true",
                   help="fail instead of building a missing sample sky or index")
    p.add_argument("--no-assistant", action="store_true",
                   help="do not load the language model (search, classify and object pages only)")
    p.add_argument("--encoder", help="a trained encoder folder (default: the shipped weights)")
    p.add_argument("--assistant", help="a trained assistant folder (default: the shipped weights)")
    p.add_argument("--queue-size", type=int, default=None,
                   help="most requests that may wait in the queue (default 64); more are refused")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = add_arguments(argparse.ArgumentParser(description="astrovlm web app (Gradio)"))
    add_verbosity_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Open the sky and serve it until interrupted. Errors (``AstroVLMError``) propagate."""
    if args.home:
        os.environ["ASTROVLM_HOME"] = os.path.abspath(os.path.expanduser(args.home))

    from astrovlm.webapp import QUEUE_MAX_SIZE, SkyApp, serve

    app = SkyApp.open(build=not args.no_build, load_assistant=not args.no_assistant,
                      encoder_path=args.encoder, assistant_path=args.assistant)
    log.info("serving on http://%s:%s", args.host, args.port)
    serve(app, host=args.host, port=args.port, block=True, queue_size=args.queue_size or QUEUE_MAX_SIZE)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python app.py [options]``: the same as ``astrovlm app [options]``; exit status 2 on
    an expected error (a missing sample sky with --no-build, an unreadable encoder ...)."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return run(args)
    except AstroVLMError as exc:
        print(f"astrovlm: error: {exc}", file=sys.stderr)
        return 2
