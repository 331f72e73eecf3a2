"""Make benchmarks/README.md's tables from benchmarks/results/*.json.

Run: python benchmarks/report.py   (rewrites the HEADLINE and DETAILS blocks of
benchmarks/README.md; the notes between them are written by hand and kept)
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REPORT = ROOT / "benchmarks" / "README.md"
SKIP = {"n", "command", "machine", "date"}


# The headline, at most ~10 rows: our figure next to the reference measured in the same run
# (search latency, token throughput and the first assistant runs are in the details).
# (file, key, what, reference key, reference name, target, test) -- rows whose figures are
# missing are left out; the rest of every file is in the details.
HEADLINE = [
    ("encoders", "image_zeroshot_accuracy", "zero-shot image classification accuracy (TEST split)",
     "image_linear_probe_accuracy", "linear probe", ">= 0.85", lambda v, r: v >= 0.85),
    ("encoders", "spectrum_zeroshot_accuracy", "zero-shot typing of real spectra ({spectrum_test_real_n} templates)",
     "spectrum_chance_accuracy_uniform", "chance", ">= 0.9", lambda v, r: v >= 0.9),
    ("outside_eval", "spex_zero_shot_accuracy", "OUTSIDE SET: zero-shot typing of real near-infrared spectra "
     "(SpeX, {spex_zero_shot_n}, M/L/T and more)", "spex_linear_probe_accuracy", "linear probe", ">= 0.9",
     lambda v, r: v >= 0.9),
    ("outside_eval", "radio_zero_shot_accuracy", "OUTSIDE SET: zero-shot radio morphology (FIRST, "
     "{radio_zero_shot_n}, 4 classes)", "radio_linear_probe_accuracy", "linear probe", ">= 0.85",
     lambda v, r: v >= 0.85),
    ("redshift", "test_simulated_galaxies_z0to1_templatefit_r2", "redshift, chi-square template fit, R^2 "
     "(TEST, {test_simulated_galaxies_z0to1_n} simulated galaxies z 0-1; outliers "
     "{test_simulated_galaxies_z0to1_templatefit_outlier_rate})", "test_simulated_galaxies_z0to1_knn_r2",
     "k-NN on the embedding", ">= 0.99", lambda v, r: v >= 0.99),
    ("index_ann", "ours_p50_ms", "ANN search p50 ms, 1M x 256, recall@10 >= 0.95",
     "best_peer_p50_ms", "best peer", "<= 1 ms and <= best peer",
     lambda v, r: v <= 1.0 and (r is None or v <= r)),
    ("assistant_qa_after", "ours_facts_right", "the same, rerun on today's code and weights (ours only; "
     "spectrum {ours_right_spectrum}, p50 {ours_e2e_p50_s} s)", None, None, ">= 0.9", lambda v, r: v >= 0.9),
    ("text_descriptions", "image_test_plain_macro", "plain-language description -> image, p@10 (TEST split, "
     "held-out set)", "image_test_catalog_macro", "catalog phrasing", "near the catalog phrasing", None),
    ("assistant_open_after2", "ours_score", "the same, after catalog queries, overviews, comparisons, "
     "explanations and verdicts (same LM; {ours_n} questions; answers contradicted {ours_flagged}; "
     "p50 {ours_e2e_p50_s} s)", None, None, ">= 0.85", lambda v, r: v >= 0.85),
    ("app_load", "errors", "web app: errors, {clients} clients x {duration_s:g} s ({chat_clients} chatting; "
     "search p50 / p95 {search_p50_s} / {search_p95_s} s)", None, None, "0", lambda v, r: v == 0),
    ("ingest_throughput", "ingest_files_per_s", "FITS ingest, files/s", "getdata_files_per_s",
     "bare fits.getdata", ">= 0.5x the reference", lambda v, r: r is not None and v >= 0.5 * r),
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


def replace_block(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- {name}:BEGIN -->", f"<!-- {name}:END -->"
    if begin not in text or end not in text:
        raise SystemExit(f"{REPORT} has no {name} markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main():
    text = REPORT.read_text()
    text = replace_block(text, "HEADLINE", headline())
    text = replace_block(text, "DETAILS", table())
    tmp = REPORT.with_name(f".{REPORT.name}.tmp")
    tmp.write_text(text)
    tmp.replace(REPORT)
    print(f"updated {REPORT} from {len(list(RESULTS.glob('*.json')))} result files")


if __name__ == "__main__":
    main()
