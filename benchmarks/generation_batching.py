"""Batched vs one-at-a-time generation: aggregate tokens/s for concurrent users, same prompts, same run.

The shipped assistant over the sample sky builds its real prompts (system prompt,
retrieved and numbered sources, the question) for N questions; then, in one process:

- ``sequential``: the answers one after another through ``AstroLlava.stream`` (transformers'
  ``generate``; what the app did before batching);
- ``batched``: the N answers at once, each streamed from its own thread, through
  ``batching.BatchedGenerator`` (one forward pass per step over all active answers);
- whether each batched answer's text equals its sequential text (greedy both ways);
- single-request end-to-end latency (retrieval + prompt + generation + answer check,
  ``Assistant.ask``) with the batching loop and without it, alternating, p50 of each: a
  lone user must not be slower through the loop.

Aggregate tokens/s = all new tokens / wall time from the first request to the last answer
(prefill included: answers stop at the model's end-of-turn, most well before the limit);
decode-only tokens/s leaves the prefills out (both ways, prefills run one prompt at a time).
The app is not started. The machine may be shared: the figures are this run's, with the
load average printed beside them.

    python benchmarks/generation_batching.py                      # 8 requests, up to 160 new tokens
    python benchmarks/generation_batching.py --requests 4 --max-new-tokens 64 --latency-runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

QUESTIONS = ["What kind of object is M57 and where is it?", "What is M13?",
             "In which constellation is M31?", "What type of galaxy is M51?",
             "Is M42 a nebula or a star cluster?", "How bright is M45, and what is it?",
             "What is NGC 7000?", "Tell me about M87.", "What kind of object is M1?",
             "Where is the Whirlpool Galaxy?"]


def prompts_for(assistant, questions):
    """The messages ``Assistant.ask`` would give the model for each question (no attachments)."""
    from astrovlm.assistant.prompts import build_messages

    out = []
    for q in questions:
        r = assistant.retrieve(q)
        messages, _ = build_messages(r.question, r.sources, [], ())
        out.append(messages)
    return out


def run_sequential(model, prompts, max_new_tokens):
    """Also the decode-only figures: the tokens after each first token, and their time."""
    texts, tokens, decode_tokens, decode_s = [], 0, 0, 0.0
    t0 = time.perf_counter()
    for messages in prompts:
        stats: dict = {}
        texts.append("".join(model.stream(messages, {}, max_new_tokens, stats=stats)).strip())
        tokens += stats["new_tokens"]
        decode_tokens += stats["new_tokens"] - 1
        decode_s += time.perf_counter() - stats["first_token_time"]
    return texts, tokens, time.perf_counter() - t0, decode_tokens / max(decode_s, 1e-9)


def run_batched(generator, prompts, max_new_tokens):
    texts, stats = [None] * len(prompts), [dict() for _ in prompts]

    def one(i):
        texts[i] = "".join(generator.stream(prompts[i], {}, max_new_tokens, stats=stats[i])).strip()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return texts, sum(s["new_tokens"] for s in stats), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=8, help="concurrent requests (and the max batch)")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--latency-runs", type=int, default=5, help="single-request asks per path")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args()

    import torch

    from astrovlm.assistant.batching import BatchedGenerator
    from astrovlm.assistant.rag import Assistant
    from astrovlm.sky import Sky

    torch.set_num_threads(args.threads)
    sky = Sky.open(build=False)
    batched_assistant = sky.assistant(max_new_tokens=args.max_new_tokens, max_batch=args.requests)
    model = batched_assistant.model
    plain_assistant = Assistant(model, sky.dataset, retriever=sky.retriever, resolver=sky.resolver,
                                max_new_tokens=args.max_new_tokens, batching=False)
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.requests)]
    prompts = prompts_for(batched_assistant, questions)
    prompt_tokens = [model.count_tokens(m) for m in prompts]
    print(f"{len(prompts)} prompts, {min(prompt_tokens)}-{max(prompt_tokens)} prompt tokens; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    model.generate(prompts[0], max_new_tokens=4)   # warm-up outside the timings
    seq_texts, seq_tokens, seq_s, seq_decode = run_sequential(model, prompts, args.max_new_tokens)
    print(f"sequential: {seq_tokens} tokens in {seq_s:.1f} s = {seq_tokens / seq_s:.2f} tokens/s", flush=True)
    generator = BatchedGenerator(model, max_batch=args.requests)
    bat_texts, bat_tokens, bat_s = run_batched(generator, prompts, args.max_new_tokens)
    print(f"batched:    {bat_tokens} tokens in {bat_s:.1f} s = {bat_tokens / bat_s:.2f} tokens/s "
          f"(peak batch {generator.peak_batch}, {generator.steps} batched steps)", flush=True)
    bat_decode = generator.decode_tokens / max(generator.decode_s, 1e-9)
    print(f"decode only (no prefill): sequential {seq_decode:.2f} tokens/s, batched {bat_decode:.2f} tokens/s "
          f"(prefills {generator.prefill_s:.1f} s of the batched run)", flush=True)
    generator.close()
    same = sum(a == b for a, b in zip(seq_texts, bat_texts))
    for q, a, b in zip(questions, seq_texts, bat_texts):
        if a != b:
            print(f"DIFFERENT for {q!r}:\n  sequential {a!r}\n  batched    {b!r}")

    latency = {"batched": [], "plain": []}
    for i in range(args.latency_runs):
        q = QUESTIONS[i % len(QUESTIONS)]
        pair = (("batched", batched_assistant), ("plain", plain_assistant))
        for name, assistant in pair if i % 2 == 0 else pair[::-1]:   # neither always goes first
            t0 = time.perf_counter()
            assistant.ask(q)
            latency[name].append(time.perf_counter() - t0)
    batched_assistant.generator.close()
    print(f"single request p50: batched loop {statistics.median(latency['batched']):.2f} s, "
          f"generate() {statistics.median(latency['plain']):.2f} s", flush=True)

    figures = {
        "requests": args.requests, "max_new_tokens": args.max_new_tokens,
        "prompt_tokens_mean": round(statistics.mean(prompt_tokens), 1),
        "sequential_tokens": seq_tokens, "sequential_s": round(seq_s, 2),
        "sequential_tokens_per_s": round(seq_tokens / seq_s, 2),
        "batched_tokens": bat_tokens, "batched_s": round(bat_s, 2),
        "batched_tokens_per_s": round(bat_tokens / bat_s, 2),
        "speedup": round((bat_tokens / bat_s) / (seq_tokens / seq_s), 2),
        "batched_peak_batch": generator.peak_batch,
        "sequential_decode_tokens_per_s": round(seq_decode, 2),
        "batched_decode_tokens_per_s": round(bat_decode, 2),
        "batched_prefill_s": round(generator.prefill_s, 2),
        "identical_answers": same, "answers_compared": len(prompts),
        "single_request_p50_s_batched_loop": round(statistics.median(latency["batched"]), 3),
        "single_request_p50_s_generate": round(statistics.median(latency["plain"]), 3),
        "latency_runs": args.latency_runs, "torch_threads": args.threads,
        "cpu_count": os.cpu_count(), "load_average_1min_end": round(os.getloadavg()[0], 2),
    }
    write_results("generation_batching", figures, n=len(prompts))


if __name__ == "__main__":
    main()
