"""``astrovlm data sample|info|resolve|show|ingest``: thin over ``astrovlm.data``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from astrovlm.cli import add_json_flag, emit
from astrovlm.errors import BadArgumentError, NotFoundError


def add_commands(sub) -> None:
    p = sub.add_parser("data", help="build, inspect and ingest datasets (the sample sky, your files)")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: p.print_help())

    s = dsub.add_parser("sample", help="build the real multimodal sample sky",
                        description="Fetch the real sources (Debian stellarium-data, iraf-rvsao, "
                                    "kstars-data; OpenNGC from pyongc) and build the sample sky: "
                                    "images, spectra (real and simulated), texts, tables, splits.")
    s.add_argument("--out", help="where to write it (default: $ASTROVLM_HOME/sample)")
    s.add_argument("--simulated", type=int, default=None, metavar="N",
                   help="simulated variants per real spectrum (default 8)")
    add_json_flag(s)
    s.set_defaults(func=cmd_sample)

    i = dsub.add_parser("info", help="summarise an existing dataset")
    i.add_argument("path", nargs="?", help="dataset folder (default: the sample sky)")
    i.add_argument("--verify", action="store_true", help="recompute the content hash and check it")
    add_json_flag(i)
    i.set_defaults(func=cmd_info)

    r = dsub.add_parser("resolve", help="resolve an object name offline (M51, 'Whirlpool Galaxy', HD 37043)")
    r.add_argument("name", help="object name")
    add_json_flag(r)
    r.set_defaults(func=cmd_resolve)

    w = dsub.add_parser("show", help="an object's catalog facts and what the dataset holds of it")
    w.add_argument("object", help="object name or id")
    w.add_argument("--dataset", help="dataset folder (default: the sample sky)")
    add_json_flag(w)
    w.set_defaults(func=cmd_show)

    g = dsub.add_parser("ingest", help="turn a folder of your files into a dataset",
                        description="Read FITS images and spectra, catalogs, PNG/JPEG and text under "
                                    "DIR and cross-match them by sky position. Bad files are "
                                    "skipped and listed at the end; the rest is written. Only "
                                    "regular files are read: symbolic links are not followed "
                                    "(see --follow-links), FIFOs and devices are never opened. "
                                    "Each file is read in a worker process under a time and a "
                                    "memory budget. An interrupted ingest leaves the previous "
                                    "dataset in place.")
    g.add_argument("folder", metavar="DIR", help="folder to ingest")
    g.add_argument("--out", help="dataset folder to write (default: DIR-astrovlm beside DIR)")
    g.add_argument("--radius", default="5arcsec", help="cross-match radius with a unit (default 5arcsec)")
    g.add_argument("--follow-links", action="store_true",
                   help="read symbolic links to files inside DIR (default: links are not followed; "
                        "a link out of DIR is never followed)")
    g.add_argument("--file-timeout", type=float, default=None, metavar="S",
                   help="seconds one file may take (default 60)")
    g.add_argument("--memory-mb", type=float, default=None, metavar="MB",
                   help="memory one file may need, in MB of address space (default 1536)")
    g.add_argument("--workers", type=int, default=None, help="worker processes (default: the CPUs not wholly busy)")
    add_json_flag(g)
    g.set_defaults(func=cmd_ingest)


def _dataset_root(path: str | None) -> Path:
    from astrovlm.config import sample_dir
    from astrovlm.data.records import dataset_dir

    root = dataset_dir(path if path else sample_dir())
    if not (root / "objects.jsonl").exists():
        hint = "build it with 'astrovlm data sample'" if not path else "not an astrovlm dataset"
        raise NotFoundError(f"no dataset here; {hint}", path=root)
    return root


# --- sample -------------------------------------------------------------------------------------

def cmd_sample(args) -> int:
    from astrovlm.data.sample import build_sample_sky
    from astrovlm.data.variants import N_SIMULATED

    n = N_SIMULATED if args.simulated is None else args.simulated
    if n < 0:
        raise BadArgumentError("must be 0 or more", field="--simulated")
    summary = build_sample_sky(args.out, progress=True, n_simulated=n)
    emit(summary, args.json, format_summary)
    return 0


def _classes(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items() if v)


def format_summary(s: dict) -> str:
    if "objects" not in s:  # a damaged dataset whose records cannot be counted
        return "\n".join([f"dataset   {s.get('root', '')}", _verified_line(s)] + _problem_lines(s))
    tables = s.get("tables", {})
    splits = s.get("splits", {})
    n_classes = sum(1 for k, v in s.get("image_classes", {}).items() if v and k not in ("other", "unmatched"))
    rows = [
        ("dataset", s.get("path") or s.get("root", "")),
        ("objects", s.get("objects")),
        ("images (real)", f"{s.get('images')} over {n_classes} classes: {_classes(s.get('image_classes', {}))}"),
        ("spectra (real)", f"{s.get('spectra_real')}: {_classes(s.get('spectrum_classes_real', {}))}"),
        ("spectra (simulated)", s.get("spectra_simulated")),
        ("real image+spectrum", ", ".join(s.get("real_image_spectrum_pairs", [])) or "none"),
        ("literature", f"{s.get('passages_literature')} passages, {s.get('literature_words')} words"),
        ("catalog cards", s.get("catalog_cards")),
        ("tables", _classes(tables)),
    ]
    for name in ("objects", "images", "spectra", "passages"):
        if name in splits:
            sp = splits[name]
            rows.append((f"split: {name}", " / ".join(f"{k} {sp.get(k, 0)}" for k in ("train", "val", "test"))))
    if s.get("seconds") is not None:
        rows.append(("built in", f"{s['seconds']} s"))
    if s.get("content_hash"):
        rows.append(("content hash", s["content_hash"]))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    if "verified" in s:
        lines += [_verified_line(s, width)] + _problem_lines(s)
    return "\n".join(lines)


def _verified_line(s: dict, width: int = 8) -> str:
    verdict = "yes: files match the manifest" if s["verified"] else "NO: files differ from the manifest"
    return f"{'verified':<{width}}  {verdict}"


def _problem_lines(s: dict) -> list[str]:
    return [f"  {p['path']}: {p['problem']}" for p in s.get("problems", [])]


# --- info -------------------------------------------------------------------------------------

def cmd_info(args) -> int:
    from astrovlm.config import sample_dir
    from astrovlm.data.checksums import verify_dataset
    from astrovlm.data.manifest import dataset_summary
    from astrovlm.data.records import dataset_dir
    from astrovlm.errors import UnreadableError

    root = dataset_dir(args.path if args.path else sample_dir())
    if args.verify and (root / "manifest.json").exists():
        # --verify reports the damage itself, so the summary is made without the open check
        try:
            summary = dataset_summary(root, check=False) if (root / "objects.jsonl").exists() \
                else {"root": str(root)}
        except UnreadableError:  # a record file that does not parse: the check names it
            summary = {"root": str(root)}
    else:
        summary = dataset_summary(_dataset_root(args.path))
    if args.verify:
        check = verify_dataset(root)
        summary["verified"], summary["problems"] = check["ok"], check["problems"]
    emit(summary, args.json, format_summary)
    return 0 if summary.get("verified", True) else 1


# --- resolve and show ----------------------------------------------------------------------------

def _resolver(dataset: str | None = None):
    from astrovlm.data.resolver import NameResolver

    return NameResolver.from_dataset(dataset)


def cmd_resolve(args) -> int:
    from astrovlm.data.cards import catalog_card

    obj = _resolver().resolve(args.name)
    result = asdict(obj)
    result["card"] = catalog_card(obj)
    emit(result, args.json, lambda r: f"{r['name']}  [{r['object_id']}]\n{r['card']}")
    return 0


def cmd_show(args) -> int:
    from astrovlm.config import sample_dir
    from astrovlm.data.cards import catalog_card
    from astrovlm.data.records import SkyDataset, dataset_dir

    obj = _resolver(args.dataset).resolve(args.object)
    result = {"object": asdict(obj), "card": catalog_card(obj), "images": [], "spectra": [], "in_dataset": False}
    root = dataset_dir(args.dataset if args.dataset else sample_dir())
    if (root / "objects.jsonl").exists():
        ds = SkyDataset(root)
        result["in_dataset"] = ds.get_object(obj.object_id) is not None
        result["images"] = [{"image_id": r.image_id, "path": str(ds.path(r.path)), "credit": r.credit,
                             "split": r.split} for r in ds.images if r.object_id == obj.object_id]
        result["spectra"] = [{"spectrum_id": s.spectrum_id, "path": str(ds.path(s.path)),
                              "class": s.spectral_class, "subclass": s.subclass, "simulated": s.simulated,
                              "split": s.split} for s in ds.spectra if s.object_id == obj.object_id]
    emit(result, args.json, format_show)
    return 0


def format_show(r: dict) -> str:
    o = r["object"]
    facts = [("id", o["object_id"]), ("type", o["otype"]), ("class", o["coarse_class"]),
             ("constellation", o.get("constellation")), ("RA, Dec (deg)",
             f"{o['ra_deg']:.5f}, {o['dec_deg']:+.5f}" if o.get("ra_deg") is not None else None),
             ("Hubble type", o.get("hubble_type")), ("spectral type", o.get("spectral_type")),
             ("V mag", o.get("v_mag")), ("B mag", o.get("b_mag")), ("redshift", o.get("redshift")),
             ("size (arcmin)", " x ".join(f"{v:g}" for v in (o.get("major_axis_arcmin"), o.get("minor_axis_arcmin")) if v)
              or None), ("aliases", ", ".join(o.get("aliases", [])[:8]) or None),
             ("source", o.get("source")), ("split", o.get("split") if r.get("in_dataset") else None)]
    lines = [o["name"], ""] + [f"  {k:<14} {v}" for k, v in facts if v not in (None, "")]
    lines += ["", r["card"]]
    if r.get("images"):
        lines += ["", f"images ({len(r['images'])}):"] + [f"  {i['path']}  ({i['credit']})" for i in r["images"]]
    if r.get("spectra"):
        lines += ["", f"spectra ({len(r['spectra'])}):"] + [
            f"  {s['path']}  {s['class']}, {s['subclass']}{' (simulated)' if s['simulated'] else ''}"
            for s in r["spectra"]]
    if not r.get("in_dataset"):
        lines += ["", "(not in the sample sky; facts from the catalogs)"]
    return "\n".join(lines)


# --- ingest -------------------------------------------------------------------------------------

def parse_radius(text: str):
    import astropy.units as u

    try:
        q = u.Quantity(text)
    except (TypeError, ValueError):
        raise BadArgumentError(f"'{text}' is not an angle with a unit, e.g. 5arcsec or 0.01deg",
                            field="--radius") from None
    if q.unit.physical_type != "angle":
        raise BadArgumentError(f"'{text}' is not an angle (give a unit, e.g. 5arcsec)", field="--radius")
    if q.value <= 0:
        raise BadArgumentError(f"'{text}' must be positive", field="--radius")
    return q


def cmd_ingest(args) -> int:
    from astrovlm.data.ingest import ingest_folder

    folder = Path(args.folder).expanduser()
    out = Path(args.out).expanduser() if args.out else folder.parent / f"{folder.name}-astrovlm"
    from astrovlm.data.ingest import FILE_TIMEOUT_S, MEMORY_MB

    for name, value in (("--file-timeout", args.file_timeout), ("--memory-mb", args.memory_mb)):
        if value is not None and not value > 0:
            raise BadArgumentError("must be positive", field=name)
    report = ingest_folder(folder, out, parse_radius(args.radius), workers=args.workers,
                           follow_links=args.follow_links,
                           file_timeout=args.file_timeout or FILE_TIMEOUT_S,
                           memory_mb=args.memory_mb or MEMORY_MB)
    emit(report, args.json, format_ingest)
    return 0


def format_ingest(r: dict) -> str:
    lines = [f"{k}: {v}" for k, v in r.items() if k != "bad" and not isinstance(v, (dict, list))]
    for k, v in r.items():
        if isinstance(v, dict):
            lines.append(f"{k}: " + ", ".join(f"{a} {b}" for a, b in v.items()))
    bad = r.get("bad") or []
    if bad:
        lines.append(f"bad files ({len(bad)}):")
        lines += [f"  {b.get('path')}: {b.get('error')}" for b in bad]
    return "\n".join(lines)
