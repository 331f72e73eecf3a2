"""The assistant on the held-out open-question set (issue 14): facts stated, contradictions,
cited sources, refusals, per kind, and end-to-end latency.

The set, ``benchmarks/data/open_questions.jsonl``, was written before any training (see its
builder, ``benchmarks/build_open_questions.py``): 239 questions in 11 kinds about objects of the
sample sky's TEST split and about concepts. Systems, in the same run, through the public API
(``Sky.open()`` then ``sky.assistant()``; two-turn questions through ``ChatSession``):

- ``ours``: the shipped assistant (retrieval + LoRA-tuned SmolLM2 + projectors);
- ``base_retrieval``: SmolLM2-135M-Instruct as it ships, with the same retrieval and prompt
  (no LoRA, attachments as context text only), built as ``benchmarks/assistant_qa.py`` does.

As in assistant_qa, retrieval may only bring TRAIN/VAL observations (``allowed_splits``), so an
attachment's own object is never found as its neighbour; catalog cards of named objects are
shown as always.

Grading (``benchmarks/open_grading.py``, documented there): per answer a score (the share of
its expected facts / verdict / count / list items / refusal that it states), contradictions
(a wrong type, constellation, number, winner, verdict, count or list item, a restated false
claim, an answer where the sources cannot answer), and whether it refused. Per system, per kind
and overall: mean score, share of answers flagged with a contradiction, contradictions per
answer, refusal rate (on no_answer: the score; elsewhere: refusals of answerable questions),
cited sources relevant (of the [n] sources cited, the share about the asked objects or stating
an expected fact), share of answers citing, and end-to-end seconds p50 (retrieval + generation,
both turns for a follow-up).

    python benchmarks/assistant_open.py --limit 10 --systems ours      # timing check
    python benchmarks/assistant_open.py --systems ours                 # the whole set, ~ see JSON
    python benchmarks/assistant_open.py --limit 66 --systems base_retrieval --tag base
    python benchmarks/assistant_open.py --kinds count,list
    python benchmarks/assistant_open.py --regrade        # the saved answers, graded again
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_results  # noqa: E402
from assistant_qa import pct  # noqa: E402
from open_grading import grade, source_relevant  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SET = Path(__file__).resolve().parent / "data" / "open_questions.jsonl"
SYSTEMS = ("ours", "base_retrieval")


def load_set(path: Path = SET) -> list[dict]:
    return [r for r in map(json.loads, open(path, encoding="utf-8")) if "_meta" not in r]


def stratified(questions: list[dict], limit: int | None) -> list[dict]:
    """The first ``limit`` questions taken round-robin over the kinds (in file order), so a
    subset keeps every kind in about equal share."""
    if not limit or limit >= len(questions):
        return questions
    by_kind: dict[str, list] = defaultdict(list)
    for q in questions:
        by_kind[q["kind"]].append(q)
    out, i = [], 0
    while len(out) < limit:
        for kind in sorted(by_kind):
            if i < len(by_kind[kind]) and len(out) < limit:
                out.append(by_kind[kind][i])
        i += 1
    return out


def ask(assistant, q: dict, root: Path) -> dict:
    """Ask one question (both turns of a follow-up) and time it end to end."""
    from astrovlm.assistant.rag import ChatSession

    att = q.get("attachment") or {}
    image = str(root / att["image"]) if "image" in att else None
    spectrum = str(root / att["spectrum"]) if "spectrum" in att else None
    from astrovlm.assistant.rag import Answer
    from astrovlm.errors import AstroVLMError

    t0 = time.perf_counter()
    first = None
    try:
        if "turns" in q:
            chat = ChatSession(assistant)
            first = chat.ask(q["turns"][0], image, spectrum)
            for turn in q["turns"][1:]:
                answer = chat.ask(turn)
        else:
            answer = assistant.ask(q["question"], image, spectrum)
    except AstroVLMError as exc:  # what the CLI and the app show for it: graded as the answer
        answer = Answer(str(exc), notes=["error"])
    return {"answer": answer, "first": first, "seconds": time.perf_counter() - t0}


def cited(q: dict, answer) -> tuple[int, int]:
    """(relevant, cited) sources of one answer."""
    rel = n = 0
    for i, s in enumerate(answer.context, 1):
        if any(d["n"] == i and d.get("cited") for d in answer.sources):
            n += 1
            rel += source_relevant(q, s)
    return rel, n


def summarise(rows: list[dict], prefix: str) -> dict:
    out = {}
    if not rows:
        return out
    answerable = [r for r in rows if r["kind"] != "no_answer"]
    out[f"{prefix}_score"] = round(float(np.mean([r["score"] for r in rows])), 4)
    out[f"{prefix}_flagged"] = round(float(np.mean([r["flagged"] for r in rows])), 4)
    out[f"{prefix}_contradictions_per_answer"] = round(float(np.mean([len(r["contradictions"]) for r in rows])), 4)
    if answerable:
        out[f"{prefix}_refused_answerable"] = round(float(np.mean([r["refused"] for r in answerable])), 4)
    rel, n = sum(r["cited_relevant"] for r in rows), sum(r["cited_n"] for r in rows)
    out[f"{prefix}_cited_relevant"] = round(rel / n, 4) if n else None
    out[f"{prefix}_answers_citing"] = round(float(np.mean([r["cited_n"] > 0 for r in rows])), 4)
    out[f"{prefix}_e2e_p50_s"] = round(pct([r["seconds"] for r in rows], 50), 3)
    out[f"{prefix}_n"] = len(rows)
    return out


def same_subset(rows: list[dict]) -> dict:
    """``ours`` on exactly the questions the base model answered (when it got a smaller subset),
    so the two compare on the same questions."""
    base_ids = {r["id"] for r in rows if r["system"] == "base_retrieval"}
    ours = [r for r in rows if r["system"] == "ours"]
    if not base_ids or not ours or base_ids == {r["id"] for r in ours}:
        return {}
    return summarise([r for r in ours if r["id"] in base_ids], "ours_on_base_subset")


def regrade(out_name: str, set_path: Path) -> int:
    """Grade the saved answers again with the current grader (no model runs) and rewrite the
    summaries of ``results/OUT_NAME.json``; cited-source figures are kept as measured."""
    qs = {q["id"]: q for q in load_set(set_path)}
    answers = RESULTS / f"{out_name}_answers.jsonl"
    rows = [json.loads(x) for x in open(answers, encoding="utf-8")]
    for r in rows:
        r.update(grade(qs[r["id"]], r["answer"]))
        if "first_answer" in r:
            first_q = {"expected": {"facts": qs[r["id"]]["expected"].get("first_turn_facts", [])}}
            r["first_turn_score"] = grade(first_q, r["first_answer"])["score"]
    old = json.loads((RESULTS / f"{out_name}.json").read_text())
    figures = {k: v for k, v in old.items() if k not in ("n", "command", "machine", "date")}
    for system in sorted({r["system"] for r in rows}):
        mine = [r for r in rows if r["system"] == system]
        figures.update(summarise(mine, system))
        for kind in sorted({r["kind"] for r in mine}):
            figures.update(summarise([r for r in mine if r["kind"] == kind], f"{system}_{kind}"))
    figures.update(same_subset(rows))
    figures["answered_by"] = old.get("answered_by", old.get("command"))
    tmp = answers.with_name(f".{answers.name}.tmp")
    tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(answers)
    write_results(out_name, figures, old.get("n", len(rows)))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, help="at most N questions, stratified over the kinds")
    ap.add_argument("--kinds", help="comma-separated kinds (default: all)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {SYSTEMS}")
    ap.add_argument("--limit-base", type=int, help="a smaller stratified subset for base_retrieval")
    ap.add_argument("--set", type=Path, default=SET)
    ap.add_argument("--tag", default="", help="results name suffix (assistant_open_TAG.json)")
    ap.add_argument("--regrade", action="store_true",
                    help="grade the saved answers again with the current grader (no model runs)")
    args = ap.parse_args(argv)
    if args.regrade:
        return regrade("assistant_open" + (f"_{args.tag}" if args.tag else ""), args.set)
    systems = [s for s in args.systems.split(",") if s]
    if set(systems) - set(SYSTEMS):
        ap.error(f"unknown systems {set(systems) - set(SYSTEMS)}")

    import torch

    torch.set_num_threads(2)
    from astrovlm.assistant.model import AssistantConfig, AstroLlava
    from astrovlm.assistant.rag import Assistant
    from astrovlm.sky import Sky

    questions = load_set(args.set)
    if args.kinds:
        kinds = set(args.kinds.split(","))
        questions = [q for q in questions if q["kind"] in kinds]
    n_set = len(questions)
    questions = stratified(questions, args.limit)
    t_load = time.perf_counter()
    sky = Sky.open(progress=False)
    keep_out = {"train", "val"}                      # no TEST observation is retrieved
    ours = sky.assistant(allowed_splits=keep_out)
    load_s = time.perf_counter() - t_load
    runners = {}
    if "ours" in systems:
        runners["ours"] = (ours, questions)
    if "base_retrieval" in systems:
        base = AstroLlava.build(AssistantConfig(language_model=ours.model.config.language_model), lora=False).eval()
        runners["base_retrieval"] = (Assistant(base, sky.dataset, sky.retriever, sky.resolver,
                                               allowed_splits=keep_out, feed_features=False),
                                     stratified(questions, args.limit_base))
    root = Path(sky.dataset.root)
    print(f"{len(questions)} of {n_set} questions; systems {list(runners)}", flush=True)

    from tqdm.auto import tqdm

    RESULTS.mkdir(parents=True, exist_ok=True)
    out_name = "assistant_open" + (f"_{args.tag}" if args.tag else "")
    tmp = RESULTS / f".{out_name}_answers.jsonl.tmp"
    partial = open(tmp, "w", encoding="utf-8")     # row by row: a run stopped early keeps its answers
    rows, figures = [], {}
    for name, (assistant, qs) in runners.items():
        for q in tqdm(qs, desc=name, unit="question"):
            got = ask(assistant, q, root)
            ans = got["answer"]
            g = grade(q, ans.text)
            rel, n = cited(q, ans)
            row = {"system": name, "id": q["id"], "kind": q["kind"], "question": q.get("question") or q["turns"],
                   "answer": ans.text, **g, "cited_relevant": rel, "cited_n": n,
                   "cited": [s["id"] for s in ans.cited], "seconds": round(got["seconds"], 3),
                   "notes": ans.notes, "timings": ans.timings}
            if got["first"] is not None:
                row["first_answer"] = got["first"].text
                first_q = {"expected": {"facts": q["expected"].get("first_turn_facts", [])}}
                row["first_turn_score"] = grade(first_q, got["first"].text)["score"]
            rows.append(row)
            partial.write(json.dumps(row, default=str) + "\n")
            partial.flush()
        mine = [r for r in rows if r["system"] == name]
        figures.update(summarise(mine, name))
        for kind in sorted({r["kind"] for r in mine}):
            figures.update(summarise([r for r in mine if r["kind"] == kind], f"{name}_{kind}"))
        print(f"{name}: score {figures[f'{name}_score']:.3f}, flagged {figures[f'{name}_flagged']:.3f}, "
              f"cited relevant {figures[f'{name}_cited_relevant']}, e2e p50 {figures[f'{name}_e2e_p50_s']} s",
              flush=True)
        figures[f"{name}_coverage"] = ("full set" if len(qs) == n_set else
                                       f"stratified subset: {len(qs)} of {n_set} (round-robin over kinds, file order)")
    figures.update(same_subset(rows))
    figures.update({"load_s": round(load_s, 2), "max_new_tokens": ours.max_new_tokens,
                    "threads": torch.get_num_threads(), "set_size": n_set,
                    "set": "benchmarks/data/open_questions.jsonl (held out, written 2026-12-02 before training)"})
    partial.close()
    tmp.replace(RESULTS / f"{out_name}_answers.jsonl")
    write_results(out_name, figures, len(questions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
