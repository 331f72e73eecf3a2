"""``astrovlm classify``, ``astrovlm embed`` and ``astrovlm encoders export-text``: the aligned
encoders from the shell."""

from __future__ import annotations

import argparse
from pathlib import Path

from astrovlm.cli import add_json_flag, emit


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classify", help="zero-shot classify an image or spectrum file from text labels",
                       description="Zero-shot classification of a FITS/PNG/JPEG image or a FITS spectrum "
                                   "against text labels. Give --image and --spectrum of one object to fuse "
                                   "both; the answer says how much each modality contributed. A spectrum "
                                   "also gets a chi-square template fit over a redshift grid (class, z +- "
                                   "err, the best templates' chi2), beside the zero-shot answer.")
    p.add_argument("file", nargs="?", help="an image or spectrum file (its kind is detected)")
    p.add_argument("--image", help="an image file of the object")
    p.add_argument("--spectrum", help="a spectrum file of the same object")
    p.add_argument("--labels", help='comma-separated labels, e.g. "spiral galaxy,planetary nebula"; '
                                    "default: the coarse classes of the modality")
    p.add_argument("--views", type=int, choices=(1, 4, 8), default=8,
                   help="test-time views of an image: 8 (default) averages its 4 quarter turns and their "
                        "mirror images, the sky having no 'up'; 1 is 8 times faster")
    p.add_argument("--band", choices=("optical", "radio"), default="optical",
                   help="the image's band: radio maps (FIRST-like continuum images) are read by the "
                        "radio head, with radio morphologies as the default labels")
    p.add_argument("--model", help="an encoder folder (default: the shipped one)")
    add_json_flag(p)
    p.set_defaults(func=run_classify)

    p = sub.add_parser("embed", help="embed files or texts into the shared space",
                       description="Print embeddings (L2-normalised) of files and/or texts.")
    p.add_argument("files", nargs="*", help="image or spectrum files")
    p.add_argument("--text", action="append", default=[], help="a text to embed (repeatable)")
    p.add_argument("--out", help="write the vectors to this .npy file instead of printing them")
    p.add_argument("--model", help="an encoder folder (default: the shipped one)")
    add_json_flag(p)
    p.set_defaults(func=run_embed)

    group = sub.add_parser("encoders", help="export the encoders for other tools",
                           description="Write the encoders in the formats of other tools.")
    group.set_defaults(func=lambda args: group.print_help())
    encoders_sub = group.add_subparsers(dest="encoders_command", metavar="COMMAND")
    p = encoders_sub.add_parser(
        "export-text", help="the text tower as a sentence-transformers folder",
        description="Write the text tower (all-MiniLM-L6-v2 + astrovlm's head) to DIR so that "
                    "sentence_transformers.SentenceTransformer(DIR) gives the same L2-normalised "
                    "vectors as astrovlm. Copies the MiniLM weights (90 MB) from the installed package.")
    p.add_argument("dir", help="the folder to write (replaced if it exists)")
    p.add_argument("--model", help="an encoder folder (default: the shipped one)")
    add_json_flag(p)
    p.set_defaults(func=run_export_text)


def _text(result: dict) -> str:
    lines = [f"{result['label']}"]
    for lab, p in sorted(result["probabilities"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {p:6.1%}  {'#' * int(round(p * 30)):<30}  {lab}")
    if len(result["contributions"]) > 1:
        lines.append("contributions: " + ", ".join(f"{m} {c:.0%}" for m, c in result["contributions"].items()))
    if "template_fit" in result:
        lines.append(_template_fit_text(result["template_fit"]))
    return "\n".join(lines)


def _template_fit_text(fit: dict) -> str:
    from astrovlm.encoders.template_fit import fit_summary

    lines = [fit_summary(fit)]
    for m in fit.get("best_by_class", [])[:4]:
        lines.append(f"  chi2 {m['chi2']:12.1f}  (reduced {m['rchi2']:8.3f})  z={m['z']:.5f}  "
                     f"{m['class']}: {m['template']}")
    return "\n".join(lines)


def run_classify(args) -> int:
    from astrovlm.encoders import AlignedEncoder
    from astrovlm.encoders.zeroshot import classify, modality_of
    from astrovlm.errors import BadArgumentError

    image, spectrum = args.image, args.spectrum
    if args.file:
        if modality_of(args.file) == "image":
            image = image or args.file
        else:
            spectrum = spectrum or args.file
    if image is None and spectrum is None:
        raise BadArgumentError("give a FILE, --image or --spectrum")
    encoder = AlignedEncoder.from_pretrained(args.model)
    labels = args.labels if args.labels is not None else None
    result = classify(encoder, image=image, spectrum=spectrum, labels=labels, views=args.views,
                      band=args.band).to_dict()
    result["files"] = {k: v for k, v in (("image", image), ("spectrum", spectrum)) if v}
    if spectrum is not None:
        from astrovlm.encoders.template_fit import fit_or_reason

        result["template_fit"] = fit_or_reason(spectrum)
    emit(result, args.json, _text)
    return 0


def run_embed(args) -> int:
    import numpy as np

    from astrovlm.encoders import AlignedEncoder
    from astrovlm.encoders.zeroshot import modality_of
    from astrovlm.errors import BadArgumentError

    if not args.files and not args.text:
        raise BadArgumentError("give files to embed or --text")
    encoder = AlignedEncoder.from_pretrained(args.model)
    rows, vectors = [], []
    for f in args.files:
        kind = modality_of(f)
        vectors.append(encoder.encode(kind, [f])[0])
        rows.append({"input": f, "modality": kind})
    if args.text:
        vectors.extend(encoder.encode_text(args.text))
        rows.extend({"input": t, "modality": "text"} for t in args.text)
    matrix = np.stack(vectors).astype(np.float32)
    if args.out:
        out = Path(args.out)
        tmp = out.with_name(f".{out.name}.tmp.npy")
        np.save(tmp, matrix)
        tmp.replace(out)
        result = {"out": str(out), "shape": list(matrix.shape), "inputs": rows,
                  "fingerprint": encoder.fingerprint}
        emit(result, args.json, lambda r: f"wrote {r['shape'][0]} x {r['shape'][1]} vectors to {r['out']}")
    else:
        for row, v in zip(rows, matrix):
            row["vector"] = [round(float(x), 6) for x in v]
        result = {"dim": encoder.embed_dim, "fingerprint": encoder.fingerprint, "embeddings": rows}
        emit(result, args.json, lambda r: "\n".join(
            f"{e['modality']:8s} {e['input'][:50]:50s} [{', '.join(f'{x:.3f}' for x in e['vector'][:4])}, ...]"
            for e in r["embeddings"]))
    return 0


def run_export_text(args) -> int:
    import json

    from astrovlm.encoders.text_export import META_FILE, export_text_tower

    folder = export_text_tower(args.dir, args.model)
    result = {"dir": str(folder), **json.loads((folder / META_FILE).read_text())}
    emit(result, args.json, lambda r: f"wrote the text tower ({r['embed_dim']}-d, encoder "
                                      f"{r['encoder_fingerprint']}) to {r['dir']}\n"
                                      f"load it with SentenceTransformer({r['dir']!r})")
    return 0
