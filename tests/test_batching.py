"""Batched generation: many requests through one loop give the answers each would get alone.

These run the real SmolLM2-135M-Instruct (the LM the assistant ships on), with fresh
projectors, so the prompts, their lengths and the greedy choices are the real ones.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from test_assistant import small_sky, smollm2_dir, tiny_lm_dir, tiny_model  # noqa: F401  (fixtures)

from astrovlm.assistant.batching import BatchedGenerator, GenerationCancelled
from astrovlm.assistant.prompts import SYSTEM_PROMPT
from astrovlm.errors import BadArgumentError

torch.set_num_threads(2)

QUESTIONS = ["What kind of object is M57?", "Where is M13, and how bright is it?",
             "Explain in one sentence what a globular cluster is made of and how old it is.",
             "<image>\nQuestion: What is this?"]


def chat(question: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]


def features_for(question: str) -> dict:
    if "<image>" not in question:
        return {}
    return {"image": np.random.default_rng(0).normal(size=(1, 256)).astype("float32")}


@pytest.fixture(scope="module")
def real_model(smollm2_dir):  # noqa: F811
    from astrovlm.assistant.model import AssistantConfig, AstroLlava

    torch.manual_seed(0)
    return AstroLlava.build(AssistantConfig(), lora=False)


def stream_all(generator, questions, max_new_tokens, results, stats):
    """Stream every question from its own thread, as the app's chat users do."""
    def run(i, q):
        stats[i] = {}
        results[i] = "".join(generator.stream(chat(q), features_for(q), max_new_tokens, stats=stats[i]))

    threads = [threading.Thread(target=run, args=(i, q)) for i, q in enumerate(questions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return threads


def test_batched_answers_equal_one_at_a_time_greedy_answers(real_model):
    alone = [real_model.generate(chat(q), features_for(q), max_new_tokens=12) for q in QUESTIONS]
    results, stats = {}, {}
    with BatchedGenerator(real_model, max_batch=8) as generator:
        stream_all(generator, QUESTIONS, 12, results, stats)
        assert generator.peak_batch >= 2   # they did share forward passes
    # Texts, not logits: a padded batch may round fp32 logits differently in the last ulp.
    assert [results[i].strip() for i in range(len(QUESTIONS))] == alone
    for s in stats.values():
        assert 1 <= s["new_tokens"] <= 12 and s["first_token_time"] is not None and s["prompt_tokens"] > 20


def test_more_requests_than_slots_all_stream_to_the_end(real_model):
    questions = [f"Name one famous object in the constellation number {i}." for i in range(5)]
    results, stats = {}, {}
    with BatchedGenerator(real_model, max_batch=2) as generator:
        threads = stream_all(generator, questions, 6, results, stats)
        assert generator.peak_batch == 2 and generator.active == 0
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 5 and all(results[i] for i in range(5))
    assert all(s["new_tokens"] == 6 or s["stopped"] for s in stats.values())


def test_a_closed_stream_stops_and_frees_its_slot_for_the_next_request(real_model):
    with BatchedGenerator(real_model, max_batch=1) as generator:
        long_stats, next_stats = {}, {}
        long = generator.stream(chat("Write a long essay about every planet."), max_new_tokens=400,
                                stats=long_stats)
        next(long), next(long)
        waiting = generator.submit(chat("What is M57?"), max_new_tokens=5, stats=next_stats)
        long.close()   # what the app's Stop does
        # With one slot, the waiting request can only run once the closed one has left.
        assert waiting.done.wait(60), "the waiting request never got the freed slot"
        assert waiting.error is None and next_stats["new_tokens"] >= 1
        assert long_stats["new_tokens"] < 60 and not long_stats["stopped"]
        assert generator.active == 0


def test_an_error_in_one_request_fails_that_request_only(real_model):
    with BatchedGenerator(real_model) as generator:
        bad = generator.stream(chat("No placeholder here."), {"image": np.zeros((1, 256), "float32")},
                               max_new_tokens=5)
        good_stats = {}
        good = generator.stream(chat("What is M13?"), max_new_tokens=5, stats=good_stats)
        with pytest.raises(BadArgumentError, match="placeholder"):
            "".join(bad)
        assert "".join(good) and good_stats["new_tokens"] >= 1
        assert generator.generate(chat("And M31?"), max_new_tokens=3)   # the loop still runs


def test_shutdown_ends_requests_in_flight_and_joins_the_thread(real_model):
    generator = BatchedGenerator(real_model)
    running = generator.stream(chat("Write a long essay about every planet."), max_new_tokens=400)
    next(running)
    t0 = time.perf_counter()
    generator.close()
    assert not generator._thread.is_alive() and time.perf_counter() - t0 < 30
    with pytest.raises(GenerationCancelled):
        "".join(running)
    with pytest.raises(GenerationCancelled):
        generator.submit(chat("What is M57?"))


def test_concurrent_assistant_answers_equal_unbatched_answers(real_model, small_sky):  # noqa: F811
    from astrovlm.assistant.rag import Assistant
    from astrovlm.data.resolver import NameResolver

    resolver = NameResolver(objects=small_sky.objects)
    questions = ["What kind of object is M57?", "In which constellation is M13?"]
    plain = Assistant(real_model, small_sky, resolver=resolver, max_new_tokens=16, batching=False)
    expected = [plain.ask(q).text for q in questions]
    batched = Assistant(real_model, small_sky, resolver=resolver, max_new_tokens=16)
    answers = {}
    threads = [threading.Thread(target=lambda i=i, q=q: answers.__setitem__(i, batched.ask(q)))
               for i, q in enumerate(questions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # The answer check and the citations run on the batched text as on the plain one.
    assert [answers[i].text for i in range(2)] == expected
    assert all(answers[i].timings["prompt_tokens"] > 20 for i in range(2))
    assert batched.generator.peak_batch >= 1
    batched.generator.close()


def test_an_idle_loop_lets_its_thread_go_and_a_new_request_starts_another(real_model, monkeypatch):
    import astrovlm.assistant.batching as batching

    monkeypatch.setattr(batching, "IDLE_EXIT_S", 0.2)
    generator = BatchedGenerator(real_model)
    assert generator.generate(chat("What is M57?"), max_new_tokens=2)
    first = generator._thread
    first.join(10)   # an idle thread would otherwise keep the model alive for ever
    assert not first.is_alive() and generator._thread is None
    assert generator.generate(chat("What is M13?"), max_new_tokens=2)
    generator.close()


def test_the_assistant_batches_for_the_model_it_holds_now(real_model, small_sky, tiny_lm_dir):  # noqa: F811
    from astrovlm.assistant.rag import Assistant

    assistant = Assistant(real_model, small_sky, max_new_tokens=3)
    assert isinstance(assistant.generator, BatchedGenerator) and assistant.generator.model is real_model
    assistant.model = tiny_model(tiny_lm_dir)   # as the CLI swaps in its llama.cpp backend
    assert assistant.generator.model is assistant.model
    assert assistant.ask("What is M57?").timings["new_tokens"] >= 1
    assert Assistant(real_model, small_sky, batching=False).generator is real_model
