"""Claim: text-to-image retrieval on the sample sky answers in well under a second once
loaded; the cold start (a fresh process's first answer) is measured and reported.

- cold: wall time of ``astrovlm search "QUERY" --modality image -k 10 --json`` in a fresh
  process (Python start, imports, encoder and index load, one query), several runs;
- load: ``Sky.open()`` in this process (dataset + encoder + index);
- warm: p50/p95 of in-process ``Retriever.text(query, modality="image", k=10)`` after load
  (text encoding + index search) with ``--threads`` torch threads and with one, and of
  the index search alone;
- and, as a sanity check of what comes back, the share of the top-10 images whose coarse
  class matches a "a photo of a CLASS" query.

Needs the sample sky and its index (``astrovlm data sample``; ``astrovlm index build``).

    python benchmarks/search_latency.py [--index DIR] [--cold-runs 3]
Writes benchmarks/results/search_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "search_latency.json"

QUERIES = [
    "an edge-on spiral galaxy", "a face-on spiral galaxy with bright arms", "an elliptical galaxy",
    "a globular cluster of old stars", "a loose open cluster of young blue stars",
    "a planetary nebula with a central white dwarf", "a red emission nebula", "a supernova remnant",
    "a dark nebula in front of glowing gas", "an interacting pair of galaxies", "a barred spiral galaxy",
    "a reflection nebula around bright stars", "a ring-shaped nebula", "a dense star cluster",
    "a dwarf galaxy", "a galaxy with a dust lane", "the Orion nebula", "a bipolar planetary nebula",
    "a star-forming region with HII gas", "a lenticular galaxy",
]
CLASS_PROMPTS = {"galaxy": "a photo of a galaxy", "globular cluster": "a photo of a globular cluster",
                 "open cluster": "a photo of an open cluster", "planetary nebula": "a photo of a planetary nebula",
                 "nebula": "a photo of a nebula"}


def cold_start(query: str, index: str | None, encoder: str | None, runs: int) -> list[float]:
    exe = shutil.which("astrovlm", path=str(Path(sys.executable).parent)) or None
    cmd = [exe] if exe else [sys.executable, "-m", "astrovlm"]
    cmd += ["search", query, "--modality", "image", "-k", "10", "--json"]
    if index:
        cmd += ["--index", index]
    if encoder:
        cmd += ["--encoder", encoder]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        times.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise SystemExit(f"cold run failed: {proc.stderr.strip()[-500:]}")
        hits = json.loads(proc.stdout)["hits"]
        assert len(hits) == 10 and all(h["modality"] == "image" for h in hits)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", help="index folder (default: the sample sky's index)")
    ap.add_argument("--encoder", help="encoder folder (default: the shipped encoder)")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5, help="passes over the warm query list")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    cold = cold_start(QUERIES[0], args.index, args.encoder, args.cold_runs)
    print(f"cold start: {', '.join(f'{t:.2f}' for t in cold)} s", flush=True)

    from astrovlm.sky import Sky

    t = time.perf_counter()
    sky = Sky.open(index=args.index, encoder=args.encoder).retriever
    load_s = time.perf_counter() - t
    for q in QUERIES[:3]:  # warm-up
        sky.text(q, modality="image", k=10)
    end_to_end, search_only = [], []
    for _ in range(args.repeats):
        for q in QUERIES:
            t = time.perf_counter()
            res = sky.text(q, modality="image", k=10)
            end_to_end.append(time.perf_counter() - t)
            v = sky.encoder.encode_text([q])[0]
            t = time.perf_counter()
            sky.index.search(v, k=10, modality="image")
            search_only.append(time.perf_counter() - t)
            assert len(res) == 10
    # The same with one torch thread: for one short query, a second thread mostly waits
    # (and on a busy machine waits long), so a search service may well pin it to one.
    torch.set_num_threads(1)
    one_thread = []
    for _ in range(args.repeats):
        for q in QUERIES:
            t = time.perf_counter()
            sky.text(q, modality="image", k=10)
            one_thread.append(time.perf_counter() - t)
    torch.set_num_threads(args.threads)
    precision = {}
    for cls, prompt in CLASS_PROMPTS.items():
        hits = sky.text(prompt, modality="image", k=10).hits
        precision[cls] = float(np.mean([h.metadata.get("coarse_class") == cls for h in hits]))
    e2e, so = np.array(end_to_end) * 1000, np.array(search_only) * 1000
    out = {
        "n": len(sky.index), "n_images": sky.index.counts()["image"], "index_kind": sky.index.kind,
        "cold_start_s_median": round(float(np.median(cold)), 3), "cold_start_s_min": round(min(cold), 3),
        "cold_start_s_max": round(max(cold), 3), "cold_runs": len(cold),
        "load_s": round(load_s, 3),
        "warm_text_to_image_p50_ms": round(float(np.percentile(e2e, 50)), 2),
        "warm_text_to_image_p95_ms": round(float(np.percentile(e2e, 95)), 2),
        "warm_text_to_image_1thread_p50_ms": round(float(np.percentile(np.array(one_thread) * 1000, 50)), 2),
        "warm_text_to_image_1thread_p95_ms": round(float(np.percentile(np.array(one_thread) * 1000, 95)), 2),
        "warm_index_search_p50_ms": round(float(np.percentile(so, 50)), 3),
        "warm_index_search_p95_ms": round(float(np.percentile(so, 95)), 3),
        "warm_queries": len(e2e), "threads": args.threads,
        "class_prompt_precision_at_10_mean": round(float(np.mean(list(precision.values()))), 3),
        **{f"class_prompt_precision_at_10_{k.replace(' ', '_')}": v for k, v in precision.items()},
        "encoder_fingerprint": sky.encoder.fingerprint,
        "command": "python benchmarks/search_latency.py " + " ".join(argv or sys.argv[1:]),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
