"""``astrovlm ask`` and ``astrovlm chat``: questions answered from retrieved, cited sources."""

from __future__ import annotations

import sys

from astrovlm.cli import add_json_flag, emit
from astrovlm.errors import AstroVLMError


def add_commands(sub) -> None:
    p = sub.add_parser("ask", help="ask about a celestial object (optionally with an image or spectrum)",
                       description="Answer a question from the catalog, observations and literature of "
                                   "the sample sky (or your dataset), citing the sources. Example: "
                                   "astrovlm ask \"What kind of object is M57 and where is it?\"")
    p.add_argument("question", help="the question, in quotes")
    _common(p)
    p.add_argument("--no-stream", action="store_true", help="print the answer when it is complete")
    add_json_flag(p)
    p.set_defaults(func=_ask)

    c = sub.add_parser("chat", help="a conversation with the assistant (REPL)",
                       description="Ask questions in turn; earlier turns are remembered. Commands: "
                                   "/image FILE, /spectrum FILE (attach to the next question), "
                                   "/reset, /quit.")
    _common(c)
    c.set_defaults(func=_chat)


def _common(p) -> None:
    p.add_argument("--image", metavar="FILE", help="an image of the object (FITS, PNG, JPEG)")
    p.add_argument("--spectrum", metavar="FILE", help="a spectrum of the object (FITS)")
    p.add_argument("--model", metavar="DIR", help="a saved assistant folder (default: the shipped weights)")
    p.add_argument("--language-model", metavar="NAME",
                   help="base causal LM (folder or hub name) under the adapter; default: the one it was trained on")
    p.add_argument("--dataset", metavar="DIR", help="dataset folder (default: the sample sky)")
    p.add_argument("--index", metavar="DIR", help="index folder (default: the sample sky's index)")
    p.add_argument("--encoder", metavar="DIR", help="aligned encoder folder (default: the shipped encoder)")
    p.add_argument("--allow-other-encoder", action="store_true",
                   help="load an assistant whose projectors were trained on another encoder (with a warning)")
    p.add_argument("--max-new-tokens", type=int, default=96, help="longest answer, in tokens (default 96)")
    p.add_argument("--backend", choices=("transformers", "llamacpp"), default="transformers",
                   help="llamacpp: run the GGUF through llama-cpp-python (text only; needs the extra)")


def _assistant(args):
    from astrovlm.sky import Sky

    # The default sample sky and its index are built on first use, as the app does; a dataset
    # or index you name must exist.
    default = args.dataset is None and args.index is None
    sky = Sky.open(dataset=args.dataset, index=args.index, encoder=args.encoder, build=default)
    assistant = sky.assistant(args.model, language_model=args.language_model,
                              max_new_tokens=args.max_new_tokens,
                              allow_other_encoder=args.allow_other_encoder)
    if args.backend == "llamacpp":
        from astrovlm.assistant.llamacpp import LlamaCppModel

        assistant.model = LlamaCppModel.from_assistant_model(assistant.model)
    return assistant


def _format(answer) -> str:
    lines = [answer.text, ""]
    for s in answer.sources:
        mark = "*" if s.get("cited") else " "
        credit = f" - {s['credit']}" if s.get("credit") else ""
        lines.append(f"{mark}[{s['n']}] {s['title']} ({s['kind']}, {s['id']}){credit}")
    for note in answer.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines).rstrip()


def _print_streamed(answer_stream) -> None:
    for piece in answer_stream:
        print(piece, end="", flush=True)
    answer = answer_stream.answer
    print()
    rest = _format(answer).split("\n", 1)
    if len(rest) > 1:
        print(rest[1])


def _ask(args) -> int:
    assistant = _assistant(args)
    if args.json or args.no_stream:
        answer = assistant.ask(args.question, args.image, args.spectrum)
        emit(answer.to_dict(), args.json, _format(answer))
    else:
        _print_streamed(assistant.ask(args.question, args.image, args.spectrum, stream=True))
    return 0


def _chat(args) -> int:
    from astrovlm.assistant.rag import ChatSession

    session = ChatSession(_assistant(args))
    image, spectrum = args.image, args.spectrum
    print("astrovlm chat: ask about celestial objects; /image FILE, /spectrum FILE, /reset, /quit")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            print()
            return 0
        if not line:
            continue
        if line in ("/quit", "/exit"):
            return 0
        if line == "/reset":
            session.reset()
            image = spectrum = None
            print("(history cleared)")
            continue
        if line.startswith(("/image ", "/spectrum ")):
            cmd, _, path = line.partition(" ")
            if cmd == "/image":
                image = path.strip()
            else:
                spectrum = path.strip()
            print(f"(attached {path.strip()} to the next question)")
            continue
        try:
            print("astrovlm> ", end="", flush=True)
            _print_streamed(session.ask(line, image, spectrum, stream=True))
        except AstroVLMError as exc:
            print(f"\nastrovlm: error: {exc}", file=sys.stderr)
        image = spectrum = None
