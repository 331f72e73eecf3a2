"""astrovlm in the browser: ``python app.py`` and open http://127.0.0.1:7860

Starts on the sample sky with the shipped encoder and the default index; if the sample sky
or the index is missing from ``$ASTROVLM_HOME`` it is built first (progress printed).
The Gradio API of every function is in the README ("The app").
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="astrovlm web app (Gradio)")
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
    args = p.parse_args(argv)
    if args.home:
        os.environ["ASTROVLM_HOME"] = os.path.abspath(os.path.expanduser(args.home))

    from astrovlm.errors import AstroVLMError
    from astrovlm.webapp import QUEUE_MAX_SIZE, SkyApp, serve

    try:
        app = SkyApp.open(build=not args.no_build, load_assistant=not args.no_assistant,
                          encoder_path=args.encoder, assistant_path=args.assistant)
    except AstroVLMError as exc:
        print(f"astrovlm: error: {exc}", file=sys.stderr)
        return 2
    print(f"astrovlm: serving on http://{args.host}:{args.port}", flush=True)
    serve(app, host=args.host, port=args.port, block=True, queue_size=args.queue_size or QUEUE_MAX_SIZE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
