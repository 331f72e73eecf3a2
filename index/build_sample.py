"""Recipe: build the default cross-modal index of the sample sky.

    python index/build_sample.py                    # local engine -> $ASTROVLM_HOME/index/sample
    python index/build_sample.py --engine ray       # Ray Data + sharded IVF-PQ (RAY_ADDRESS for a cluster)
    python index/build_sample.py --out index/built/sample --encoder path/to/encoder

The same as ``astrovlm index build``; this file is the recipe a reader opens to see which
dataset, encoder and settings make the default index. It builds the sample sky first if
it is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    from astrovlm.config import default_index_dir, sample_dir
    from astrovlm.errors import AstroVLMError

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default=None, help="dataset folder (default: the sample sky)")
    ap.add_argument("--out", default=None, help=f"index folder (default: {default_index_dir()})")
    ap.add_argument("--encoder", default=None, help="encoder folder (default: the shipped encoder)")
    ap.add_argument("--engine", choices=("local", "ray"), default="local")
    ap.add_argument("--kind", default="auto", choices=("auto", "flat", "hnsw", "ivfpq"))
    ap.add_argument("--recall", type=float, default=0.95)
    args = ap.parse_args(argv)

    try:
        # Backbone loaders print to stdout; keep stdout for the summary.
        with contextlib.redirect_stdout(sys.stderr):
            summary = _build(args, sample_dir())
    except AstroVLMError as exc:
        print(f"build_sample: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


def _build(args, default_dataset: Path) -> dict:
    dataset = Path(args.dataset) if args.dataset else default_dataset
    if args.dataset is None and not (dataset / "manifest.json").exists():
        from astrovlm.data.sample import build_sample_sky

        print(f"building the sample sky into {dataset} first", file=sys.stderr)
        build_sample_sky(dataset)
    if args.engine == "ray":
        from astrovlm.index.ray_build import build_index_ray

        _, summary = build_index_ray(dataset, args.encoder, args.out, recall_target=args.recall)
    else:
        from astrovlm.index.build import build_index

        _, summary = build_index(dataset, args.encoder, args.out, kind=args.kind, recall_target=args.recall)
    return summary


if __name__ == "__main__":
    sys.exit(main())
