"""An optional llama.cpp backend for the text-only path (``pip install astrovlm[llamacpp]``).

It runs SmolLM2's own GGUF (Q4_1) through llama-cpp-python, about three times faster than
transformers on two cores. It has the generation interface of ``AstroLlava`` (``stream``,
``generate``, ``count_tokens``) but no projector: attachments reach it only as text in the
context. The LoRA adapter is applied through a GGUF LoRA file written from the peft
adapter (``export_lora_gguf``), so the answers are those of the tuned model.

llama-cpp-python builds from source; on this project's machines the portable build works:
``CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF"
pip install llama-cpp-python``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterator

from astrovlm.errors import BadArgumentError, IncompatibleError, NotFoundError, UnreadableError


def _llama_class():
    try:
        from llama_cpp import Llama
    except ImportError:
        raise NotFoundError(
            "the llama.cpp backend needs llama-cpp-python: CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DGGML_AVX2=ON "
            "-DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF\" pip install llama-cpp-python", field="backend") from None
    return Llama


def _permute_rows(w, n_head: int):
    """llama.cpp stores q (and k) with the rotary halves interleaved, as convert_hf_to_gguf does."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def export_lora_gguf(adapter_dir: str | Path, out: str | Path, n_head: int) -> Path:
    """Write a peft LoRA adapter (q_proj/v_proj/k_proj/o_proj of a Llama-family model) as a
    llama.cpp LoRA GGUF (the layout of llama.cpp's convert_lora_to_gguf.py)."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    adapter_dir, out = Path(adapter_dir), Path(out)
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    state = load_file(str(adapter_dir / "adapter_model.safetensors"))
    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}
    tmp = out.with_name(f".{out.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), arch="llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(cfg["lora_alpha"]))
    count = 0
    for key, a in sorted(state.items()):
        if ".lora_A." not in key:
            continue
        b = state[key.replace(".lora_A.", ".lora_B.")]
        layer = int(key.split(".layers.")[1].split(".")[0])
        proj = key.split(".lora_A.")[0].rsplit(".", 1)[-1]
        if proj not in names:
            raise IncompatibleError(f"the llama.cpp export does not know LoRA target '{proj}'", path=adapter_dir)
        if proj == "q_proj":
            b = _permute_rows(b, n_head)
        base = f"blk.{layer}.{names[proj]}.weight"
        writer.add_tensor(f"{base}.lora_a", np.ascontiguousarray(a.astype(np.float32)))
        writer.add_tensor(f"{base}.lora_b", np.ascontiguousarray(b.astype(np.float32)))
        count += 1
    if not count:
        raise UnreadableError("no LoRA tensors in the adapter", path=adapter_dir)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)
    return out


class LlamaCppModel:
    """SmolLM2's GGUF through llama.cpp, with the tuned LoRA applied; text only."""

    placeholder_ids: dict = {}   # no projector: attachments go in as text

    def __init__(self, gguf_path: str | Path, lora_path: str | Path | None = None, n_ctx: int = 2048,
                 n_threads: int | None = None):
        Llama = _llama_class()
        self.llm = Llama(model_path=str(gguf_path), lora_path=str(lora_path) if lora_path else None,
                         n_ctx=n_ctx, n_threads=n_threads or min(2, os.cpu_count() or 1), verbose=False)

    @classmethod
    def from_assistant_model(cls, model=None, folder: str | Path | None = None) -> "LlamaCppModel":
        """The llama.cpp twin of a saved assistant (its base must be the default SmolLM2)."""
        from astrovlm.assistant.lm import cached_lm_dir, is_default_lm, smollm2_gguf_path
        from astrovlm.assistant.model import SHIPPED_DIR, AssistantConfig

        folder = Path(folder) if folder else SHIPPED_DIR
        config = model.config if model is not None else AssistantConfig.from_dict(
            json.loads((folder / "config.json").read_text()))
        if not is_default_lm(config.language_model):
            raise BadArgumentError("the llama.cpp backend runs SmolLM2's GGUF only; this assistant is built on "
                                f"'{config.language_model}'", field="backend")
        lora = None
        if (folder / "adapter" / "adapter_config.json").exists():
            n_head = json.loads((cached_lm_dir() / "config.json").read_text())["num_attention_heads"] \
                if (cached_lm_dir() / "config.json").exists() else 9
            lora = cached_lm_dir().parent / f"{folder.name}-lora-{_stamp(folder)}.gguf"
            if not lora.exists():
                export_lora_gguf(folder / "adapter", lora, n_head)
        return cls(smollm2_gguf_path(), lora)

    def count_tokens(self, messages: list[dict]) -> int:
        return len(self.llm.tokenize(self._prompt(messages).encode(), add_bos=False, special=True))

    def _prompt(self, messages: list[dict]) -> str:
        # SmolLM2's chat template (ChatML), written out so that prompts match transformers'.
        return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + \
            "<|im_start|>assistant\n"

    def stream(self, messages: list[dict], features=None, max_new_tokens: int = 96,
               stats: dict | None = None) -> Iterator[str]:
        if features:
            raise BadArgumentError("the llama.cpp backend is text-only: it cannot take image or spectrum "
                                "features", field="backend")
        stats = {} if stats is None else stats
        stats.update(new_tokens=0, first_token_time=None, stopped=False)
        for chunk in self.llm.create_completion(self._prompt(messages), max_tokens=max_new_tokens,
                                                temperature=0.0, top_k=1, stop=["<|im_end|>"], stream=True):
            choice = chunk["choices"][0]
            piece = choice.get("text", "")
            if piece:
                if stats["first_token_time"] is None:
                    stats["first_token_time"] = time.perf_counter()
                stats["new_tokens"] += 1
                yield piece
            if choice.get("finish_reason") == "stop":
                stats["stopped"] = True

    def generate(self, messages: list[dict], features=None, max_new_tokens: int = 96) -> str:
        return "".join(self.stream(messages, features, max_new_tokens)).strip()


def _stamp(folder: Path) -> str:
    """A short hash of the adapter weights, so a retrained adapter gets a new GGUF."""
    import hashlib

    h = hashlib.sha256((folder / "adapter" / "adapter_model.safetensors").read_bytes())
    return h.hexdigest()[:12]
