"""``astrovlm app``: the web app (Gradio) on the sample sky, from an installed wheel."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    # launch.py holds the options (shared with ``python app.py``) and imports Gradio only in run().
    from astrovlm.webapp.launch import add_arguments

    p = sub.add_parser("app", help="start the web app (search, classify, chat) in the browser",
                       description="astrovlm web app (Gradio): starts on the sample sky with the shipped "
                                   "encoder and the default index, building a missing one first; then "
                                   "open http://127.0.0.1:7860")
    add_arguments(p)
    p.set_defaults(func=run_app)


def run_app(args) -> int:
    from astrovlm.webapp.launch import run

    return run(args)
