"""The assistant: a LLaVA-style model over a stock causal LM, answering from retrieved sources.

- ``lm``         loading the language model (SmolLM2 from its offline GGUF, cached once)
- ``projector``  LLaVA's mlp2x_gelu, from an aligned-encoder vector to a few LM tokens
- ``model``      ``AstroLlava``: placeholder splicing, LoRA (peft), save/load, streaming
- ``prompts``    the system prompt, numbered sources, retrieved text kept as data
- ``mentions``   which objects a question names (designations, common and star names)
- ``context``    ``ContextBuilder``: the numbered sources for a question, through the one retriever
- ``rag``        ``Assistant`` / ``ChatSession`` / ``Answer``: answer from the sources and cite them
- ``direct``     questions answered from catalog rows and astropy, not generated (the router):
  ``catalog_parse`` (question -> query), ``catalog_query`` (the tables), ``catalog_answer``
  (rows -> cited sentences), ``stars`` (a named star's parallax distance), ``derived``
  (Planck18 distances, physical size, altitude/azimuth), ``constellations``,
  ``names_in_context`` ("Triangulum" the galaxy or the constellation, "the Pinwheel"),
  ``overview`` (object overviews and comparisons)
- ``batching``   ``BatchedGenerator``: one loop that generates concurrent answers in one batch
- ``llamacpp``   an optional llama.cpp backend for the text-only path

    >>> from astrovlm import Sky
    >>> Sky.open().assistant().ask("What kind of object is M57 and where is it?").text
    >>> Sky.open().assistant().ask("List the open clusters in Auriga brighter than 7.").text
"""

from __future__ import annotations

_EXPORTS = {
    "AstroLlava": "astrovlm.assistant.model",
    "AssistantConfig": "astrovlm.assistant.model",
    "Assistant": "astrovlm.assistant.rag",
    "ChatSession": "astrovlm.assistant.rag",
    "Answer": "astrovlm.assistant.rag",
    "find_names": "astrovlm.assistant.mentions",
    "ContextBuilder": "astrovlm.assistant.context",
    "Embedding": "astrovlm.assistant.context",
    "check_encoder": "astrovlm.assistant.model",
    "load_language_model": "astrovlm.assistant.lm",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # Lazy: importing the package should not load torch/transformers until they are used.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
