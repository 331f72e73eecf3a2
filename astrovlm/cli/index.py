"""``astrovlm index build|info``, ``astrovlm search`` and ``astrovlm similar``: thin over
``astrovlm.index``."""

from __future__ import annotations

import argparse
import contextlib
import sys

from astrovlm.cli import add_json_flag, emit
from astrovlm.errors import BadArgumentError


def add_commands(sub) -> None:
    p_index = sub.add_parser("index", help="build or inspect the cross-modal index")
    isub = p_index.add_subparsers(dest="index_command", metavar="SUBCOMMAND")
    p_index.set_defaults(func=lambda args: p_index.print_help())

    b = isub.add_parser("build", help="embed a dataset's images, spectra and passages and index them")
    b.add_argument("--dataset", help="dataset folder (default: the sample sky)")
    b.add_argument("--out", help="index folder to write (default: $ASTROVLM_HOME/index/sample)")
    b.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process; ray: Ray Data actors + sharded IVF-PQ (set RAY_ADDRESS "
                        "for a cluster)")
    b.add_argument("--kind", choices=("auto", "flat", "hnsw", "ivfpq"), default="auto",
                   help="index type (local engine; auto: exact below 50k vectors, HNSW above)")
    b.add_argument("--recall", type=float, default=0.95, help="recall@10 target the search is tuned to")
    b.add_argument("--encoder", help="encoder folder (default: the shipped encoder)")
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument("--shards", type=int, help="Ray engine: number of IVF-PQ shards")
    b.add_argument("--ray-address", help="Ray engine: cluster address (default $RAY_ADDRESS or a local Ray)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_json_flag(b)
    b.set_defaults(func=cmd_build)

    i = isub.add_parser("info", help="what an index holds")
    i.add_argument("path", nargs="?", help="index folder (default: the sample sky's index)")
    add_json_flag(i)
    i.set_defaults(func=cmd_info)

    s = sub.add_parser("search", help="search the sky by words, an image or a spectrum",
                       description="Search the index. Give a text query, --image FILE or --spectrum "
                                   "FILE (several together make one fused query).")
    s.add_argument("query", nargs="?", help='text query, e.g. "an edge-on spiral galaxy"')
    s.add_argument("--image", help="query image (FITS, PNG, JPEG)")
    s.add_argument("--spectrum", help="query spectrum (FITS or text table)")
    _add_filters(s)
    s.set_defaults(func=cmd_search)

    m = sub.add_parser("similar", help="objects similar to an object (all its images, spectra and texts)")
    m.add_argument("object", help="object name or id, e.g. M51, 'NGC 5194'")
    m.add_argument("--use", action="append", choices=("image", "spectrum", "text"),
                   help="use only these modalities of the object for the query (repeatable)")
    _add_filters(m)
    m.set_defaults(func=cmd_similar)


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--modality", choices=("image", "spectrum", "text", "all"), default=None,
                   help="return only this modality")
    p.add_argument("-k", type=int, default=10, help="how many results (default 10)")
    p.add_argument("--type", dest="object_type", help="object type: a coarse class ('galaxy') or a "
                                                      "catalog type word ('spiral')")
    p.add_argument("--cone", help='"RA DEC RADIUS": degrees or sexagesimal, radius with a unit '
                                  '(e.g. "83.8 -5.4 2deg")')
    p.add_argument("--index", help="index folder (default: the sample sky's index)")
    p.add_argument("--encoder", help="encoder folder (default: the shipped encoder)")
    add_json_flag(p)


def _filters(args) -> dict:
    from astrovlm.index.filters import parse_cone

    out = {"object_type": args.object_type}
    if args.cone:
        out["center"], out["radius"] = parse_cone(args.cone)
    return out


def cmd_build(args) -> int:
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the summary (--json)
        summary = _build(args)
    emit(summary, args.json, _build_text)
    return 0


def _build(args) -> dict:
    progress = not args.no_progress
    if args.engine == "ray":
        from astrovlm.index.ray_build import build_index_ray

        if args.kind not in ("auto", "ivfpq"):
            raise BadArgumentError("the Ray engine builds a sharded IVF-PQ index (use --kind auto or ivfpq)",
                                field="--kind")
        _, summary = build_index_ray(args.dataset, args.encoder, args.out, recall_target=args.recall,
                                     batch_size=args.batch_size, shards=args.shards,
                                     address=args.ray_address, progress=progress)
    else:
        from astrovlm.index.build import build_index

        _, summary = build_index(args.dataset, args.encoder, args.out, kind=args.kind,
                                 recall_target=args.recall, batch_size=args.batch_size, progress=progress)
    return summary


def _build_text(s: dict) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in s["counts"].items())
    lines = [f"indexed {s['count']} items ({counts}) in {s['seconds']} s ({s['engine']} engine, "
             f"index kind: {s['kind']})", f"written to {s['path']}"]
    if s.get("note"):
        lines.append(s["note"])
    if s["skipped"]:
        lines.append(f"skipped {len(s['skipped'])} item(s), e.g. {s['skipped'][0]['item_id']}: "
                     f"{s['skipped'][0]['reason']}")
    return "\n".join(lines)


def cmd_info(args) -> int:
    import json
    from pathlib import Path

    from astrovlm.config import default_index_dir
    from astrovlm.index import CrossModalIndex

    path = Path(args.path) if args.path else default_index_dir()
    index = CrossModalIndex.load(path, verify=True)
    config = json.loads((path / "config.json").read_text())
    info = {"path": str(path), "kind": index.kind, "count": len(index), "counts": index.counts(),
            "dim": index.dim, "fingerprint": index.fingerprint, "search_params": index.search_params,
            "tuning": index.tuning, "dataset": index.dataset_root, "created": config.get("created"),
            "objects": len(index.object_ids())}
    emit(info, args.json, lambda d: "\n".join(f"{k}: {v}" for k, v in d.items()))
    return 0


def _load_search(args):
    from astrovlm.sky import Sky

    # Pretrained-backbone loaders print to stdout; keep stdout for the answer (--json).
    with contextlib.redirect_stdout(sys.stderr):
        return Sky.open(index=args.index, encoder=args.encoder).retriever


def cmd_search(args) -> int:
    if args.query is None and not args.image and not args.spectrum:
        raise BadArgumentError("give a text query, --image FILE or --spectrum FILE", field="query")
    if args.query is not None and not args.query.strip():
        raise BadArgumentError("the query text is empty", field="query")
    filters = _filters(args)  # checked before the (slow) encoder load
    modality = None if args.modality == "all" else args.modality
    sky = _load_search(args)
    res = sky.query(text=args.query, image=args.image, spectrum=args.spectrum, modality=modality,
                    k=args.k, **filters)
    emit(res.to_dict(), args.json, _hits_text)
    return 0


def cmd_similar(args) -> int:
    filters = _filters(args)
    modality = None if args.modality == "all" else args.modality
    sky = _load_search(args)
    res = sky.similar(args.object, k=args.k, modality=modality, use=args.use, **filters)
    emit(res.to_dict(), args.json, _hits_text)
    return 0


def _hits_text(d: dict) -> str:
    lines = []
    if d.get("filter", {}).get("object_id"):
        lines.append(f"objects similar to {d['filter']['object_id']}:")
    for rank, h in enumerate(d["hits"], 1):
        m = h["metadata"]
        who = m.get("name") or h["object_id"] or "-"
        what = m.get("otype") or m.get("coarse_class") or ""
        sim = " [simulated]" if m.get("simulated") else ""
        lines.append(f"{rank:>3}. {h['score']:.3f}  {h['modality']:<8} {who:<18} {what}{sim}")
        caption = m.get("caption")
        if caption and caption != who:
            lines.append(f"       {caption[:100]}")
        if h.get("preview"):
            lines.append(f"       {h['preview']}")
    if d.get("reason"):
        lines.append(f"note: {d['reason']}")
    return "\n".join(lines) if lines else "no results"
