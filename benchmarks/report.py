"""Make the README's results table from benchmarks/results/*.json.

Run: python benchmarks/report.py   (rewrites the block between the RESULTS markers in README.md)
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- RESULTS:BEGIN -->", "<!-- RESULTS:END -->"
SKIP = {"n", "command", "machine", "date"}


# The headline: each issue's target next to our figure and the reference measured in the same
# run. (file, key, what, reference key, reference name, target, test) -- rows whose figures are
# missing are left out.
HEADLINE = [
    ("encoders", "image_zeroshot_accuracy", "zero-shot image accuracy (test)",
     "image_linear_probe_accuracy", "linear probe", ">= 0.85", lambda v, r: v >= 0.85),
    ("encoders", "card_to_image_top10pct_accuracy", "catalog card -> image, top-10% accuracy",
     "card_to_image_random_top10pct", "random", ">= 0.9", lambda v, r: v >= 0.9),
    ("encoders", "card_to_image_class_oracle_top10pct",
     "card -> image top-10% that perfect coarse-class knowledge alone would reach", None, None, "reported", None),
    ("encoders", "spectrum_zeroshot_accuracy", "zero-shot typing of real spectra ({spectrum_test_real_n} templates)",
     "spectrum_chance_accuracy_uniform", "chance", ">= 0.9", lambda v, r: v >= 0.9),
    ("encoders", "spectrum_zeroshot_simulated_accuracy", "zero-shot typing of simulated observations of them",
     None, None, "reported", None),
    ("encoders", "redshift_knn_r2", "k-NN redshift R^2", "redshift_linear_head_r2", "linear head",
     ">= 0.99", lambda v, r: v >= 0.99),
    ("index_ann", "ours_p50_ms", "ANN p50 ms, 1M x 256, recall@10 >= 0.95",
     "best_peer_p50_ms", "best peer", "<= 1 ms and <= best peer",
     lambda v, r: v <= 1.0 and (r is None or v <= r)),
    ("search_latency", "warm_text_to_image_p50_ms", "CLI text -> image, warm p50 ms",
     None, None, "well under 1000 ms", lambda v, r: v < 250),
    ("search_latency", "cold_start_s_median", "CLI cold start (first answer), s", None, None, "reported", None),
    ("assistant_qa", "ours_facts_right", "assistant: facts right (held-out objects)",
     "base_retrieval_facts_right", "base SmolLM2 + retrieval", ">= 0.9", lambda v, r: v >= 0.9),
    ("assistant_qa", "ours_cited_relevant", "assistant: cited sources relevant",
     "base_retrieval_answers_citing", "share of the base's answers that cite at all", ">= 0.9",
     lambda v, r: v >= 0.9),
    ("assistant_qa", "ours_e2e_p50_s", "assistant: end-to-end p50 s (<= 96 new tokens)",
     None, None, "<= 3 s", lambda v, r: v <= 3.0),
    ("app_load", "errors", "app: errors, {clients} clients x {duration_s:g} s ({chat_clients} chatting)", None, None, "0",
     lambda v, r: v == 0),
    ("app_load", "chat_p50_s", "app: chat p50 s under that load", None, None, "reported", None),
    ("app_load", "search_p95_s", "app: search p50 / p95 s under that load", None, None, "reported", None),
    ("ingest_throughput", "ingest_files_per_s", "FITS ingest, files/s", "getdata_files_per_s",
     "bare fits.getdata", "reported", None),
]


def headline() -> str:
    rows = ["| figure | astrovlm | reference (same run) | target | met |", "|---|---|---|---|---|"]
    cache: dict[str, dict] = {}
    for name, key, what, ref_key, ref_name, target, test in HEADLINE:
        path = RESULTS / f"{name}.json"
        if name not in cache:
            cache[name] = json.loads(path.read_text()) if path.exists() else {}
        data = cache[name]
        if key not in data:
            continue
        value, ref = data[key], data.get(ref_key) if ref_key else None
        what = what.format(**data)
        if key == "search_p95_s":
            value = f"{data.get('search_p50_s')} / {value}"
        met = "" if test is None else ("yes" if test(value, ref) else "**no**")
        ref_text = f"{ref} ({ref_name})" if ref is not None else ""
        rows.append(f"| {what} | {value} | {ref_text} | {target} | {met} |")
    return "\n".join(rows)


def table() -> str:
    parts = []
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        parts.append(f"**{path.stem}** (n={data.get('n')}; `{data.get('command')}`, {data.get('date', '')})\n")
        parts.append("| metric | value |\n|---|---|")
        for k, v in data.items():
            if k in SKIP or isinstance(v, (dict, list)):
                continue
            parts.append(f"| {k} | {v} |")
        parts.append("")
    return "\n".join(parts)


def main():
    readme = ROOT / "README.md"
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit("README.md has no RESULTS markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = (f"{head}{BEGIN}\nHeadline figures against the issues' targets (details of every run below):\n\n"
           f"{headline()}\n\n{table()}\n{END}{tail}")
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(new)
    tmp.replace(readme)
    print(f"updated {readme} from {len(list(RESULTS.glob('*.json')))} result files")


if __name__ == "__main__":
    main()
