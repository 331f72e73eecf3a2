"""AstroLlava: a stock Hugging Face causal LM that can read images and spectra.

The LLaVA trick, kept thin: each attached image or spectrum is encoded by the aligned
encoders (one vector), projected to ``num_visual_tokens`` LM embeddings, and spliced into
``inputs_embeds`` where its placeholder tokens (``<image>`` / ``<spectrum>``, repeated k
times) stand; those positions are masked out of the labels. The LM itself is untouched
apart from LoRA adapters (peft) on its attention projections.

The placeholders are added to the tokenizer as special tokens but not to the LM's embedding
matrix: their ids are always replaced before the embedding lookup, so the vocabulary, the
output head and the saved adapter stay those of the base model (the adapter is ~2 MB).

A saved model is a folder::

    config.json                 AssistantConfig (language model name, dims, LoRA settings)
    projector.safetensors       the modality projectors
    adapter/                    peft adapter (adapter_config.json + adapter_model.safetensors)
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterator

import torch
from torch import nn
from transformers import TextIteratorStreamer

from astrovlm.assistant.lm import DEFAULT_LM, load_language_model
from astrovlm.assistant.projector import ModalityProjectors
from astrovlm.config import atomic_directory, atomic_write_json
from astrovlm.errors import BadArgumentError, IncompatibleError, NotFoundError

PLACEHOLDERS = {"image": "<image>", "spectrum": "<spectrum>"}
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights" / "assistant"
IGNORE_INDEX = -100


@dataclass
class AssistantConfig:
    language_model: str = DEFAULT_LM
    enc_dim: int = 256
    num_visual_tokens: int = 2
    modalities: list[str] = field(default_factory=lambda: ["image", "spectrum"])
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    encoder_fingerprint: str | None = None   # the aligned encoder the projectors were trained on
    # That encoder's tower fingerprints (modality -> AlignedEncoder.tower_fingerprint): a
    # projector stays valid on an encoder whose tower for its modality is bit-identical.
    encoder_towers: dict = field(default_factory=dict)
    # Encoders the model was not trained on but was measured with after training, each
    # {"encoder", "towers", "checked_by", "figures", "note"}: loaded with a warning that says so.
    checked_with: list = field(default_factory=list)
    trained: dict = field(default_factory=dict)  # what training wrote (stages, data, steps)

    @classmethod
    def from_dict(cls, d: dict) -> "AssistantConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def check_encoder(config: AssistantConfig, encoder, allow_other: bool = False) -> list[str]:
    """Check that the assistant's projectors read the vectors they were trained on.

    Returns warnings (empty when all is well). A projector is valid when the encoder is the
    one it was trained on, or when that encoder's tower for its modality is bit-identical
    (a later training stage retrained only other towers). Otherwise the model is refused with
    an ``IncompatibleError`` naming both fingerprints, unless the pair was measured after
    training (``config.checked_with``) or ``allow_other`` is set: then it loads with a warning.
    """
    trained_on = config.encoder_fingerprint
    if trained_on is None or trained_on == encoder.fingerprint:
        return []  # no record (an untrained baseline) or the very encoder
    stale = [m for m in config.modalities
             if config.encoder_towers.get(m) != encoder.tower_fingerprint(m)]
    if not stale:
        return []
    what = "; ".join(f"the {m} projector was trained on {m} tower "
                     f"{config.encoder_towers.get(m) or 'unrecorded'}, the loaded encoder's is "
                     f"{encoder.tower_fingerprint(m)}" for m in stale)
    head = (f"the assistant was trained on encoder {trained_on}, not on the loaded encoder "
            f"{encoder.fingerprint}: {what}")
    checked = next((c for c in config.checked_with if c.get("encoder") == encoder.fingerprint), None)
    if checked is not None:
        figures = ", ".join(f"{k} {v}" for k, v in (checked.get("figures") or {}).items())
        return [f"{head}. This pair was measured after training ({checked.get('checked_by', '?')}: "
                f"{figures or 'no figures recorded'}); {checked.get('note', '')}".rstrip("; ")
                + ". Retrain the assistant (training/assistant/) to remove this warning."]
    if allow_other:
        return [f"{head}. Loaded anyway (allow_other_encoder): answers about attachments may be wrong."]
    raise IncompatibleError(f"{head}. Retrain the assistant on this encoder (training/assistant/), or "
                            "load it anyway with allow_other_encoder=True (--allow-other-encoder)",
                            field="encoder_fingerprint")


class AstroLlava(nn.Module):
    """A causal LM + modality projectors + (optionally) LoRA adapters."""

    def __init__(self, lm, tokenizer, config: AssistantConfig | None = None, lora: bool = True):
        super().__init__()
        self.config = config or AssistantConfig()
        self.tokenizer = tokenizer
        unknown = set(self.config.modalities) - set(PLACEHOLDERS)
        if unknown:
            raise BadArgumentError(f"unknown modalities {sorted(unknown)} (known: {sorted(PLACEHOLDERS)})",
                                field="modalities")
        # add_tokens(special_tokens=True) is the same call in transformers 4 and 5 (the
        # add_special_tokens keywords were renamed between them).
        from tokenizers import AddedToken

        new = [PLACEHOLDERS[m] for m in self.config.modalities if PLACEHOLDERS[m] not in tokenizer.get_vocab()]
        tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in new],
                             special_tokens=True)
        self.placeholder_ids = {m: tokenizer.convert_tokens_to_ids(PLACEHOLDERS[m])
                                for m in self.config.modalities}
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.end_of_turn_id = end_of_turn_id(tokenizer)
        hidden = lm.get_input_embeddings().embedding_dim
        self.projectors = ModalityProjectors(self.config.enc_dim, hidden,
                                             self.config.num_visual_tokens, tuple(self.config.modalities))
        self.projectors.to(dtype=lm.get_input_embeddings().weight.dtype)
        self.merged = False
        if lora:
            from peft import LoraConfig, get_peft_model

            with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
                warnings.simplefilter("ignore", FutureWarning)
                lm = get_peft_model(lm, LoraConfig(
                    r=self.config.lora_r, lora_alpha=self.config.lora_alpha,
                    lora_dropout=self.config.lora_dropout,
                    target_modules=list(self.config.lora_target_modules), task_type="CAUSAL_LM"))
        self.lm = lm
        self._quiet_generation_config()

    # ----------------------------------------------------------------- building
    @classmethod
    def build(cls, config: AssistantConfig | None = None, lora: bool = True) -> "AstroLlava":
        """A fresh model: the named LM, new projectors, new LoRA adapters."""
        config = config or AssistantConfig()
        lm, tokenizer = load_language_model(config.language_model)
        return cls(lm, tokenizer, config, lora=lora)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, *, merge: bool = True,
                        trainable: bool = False, language_model: str | None = None) -> "AstroLlava":
        """Load a saved folder (None = the weights shipped in astrovlm/weights/assistant).

        ``merge`` folds the LoRA weights into the LM for faster inference (the adapter can no
        longer be saved or switched off). ``language_model`` overrides the base LM's location.
        """
        from peft import PeftModel
        from safetensors.torch import load_file

        path = Path(path) if path is not None else SHIPPED_DIR
        if not (path / "config.json").exists():
            hint = (" (the shipped assistant weights are missing: train them with "
                    "'python training/assistant/train.py')" if path == SHIPPED_DIR else "")
            raise NotFoundError(f"not a saved assistant model (no config.json){hint}", path=path)
        config = AssistantConfig.from_dict(json.loads((path / "config.json").read_text()))
        lm, tokenizer = load_language_model(language_model or config.language_model)
        model = cls(lm, tokenizer, config, lora=False)
        adapter = path / "adapter"
        if (adapter / "adapter_config.json").exists():
            model.lm = PeftModel.from_pretrained(model.lm, str(adapter), is_trainable=trainable)
        if not (path / "projector.safetensors").exists():
            raise NotFoundError("projector.safetensors is missing", path=path)
        model.projectors.load_state_dict(load_file(str(path / "projector.safetensors")), strict=True)
        if merge and not trainable and hasattr(model.lm, "merge_and_unload"):
            model.lm = model.lm.merge_and_unload()
            model.merged = True
        model._quiet_generation_config()
        return model.eval()

    def save_pretrained(self, path: str | Path) -> Path:
        """Write config.json, projector.safetensors and the peft adapter, atomically."""
        from safetensors.torch import save_file

        if self.merged:
            raise BadArgumentError("this model's LoRA weights were merged into the LM; load it with "
                                "merge=False to save the adapter", path=path)
        path = Path(path)
        with atomic_directory(path) as tmp:
            atomic_write_json(tmp / "config.json", asdict(self.config))
            state = {k: v.detach().contiguous().cpu() for k, v in self.projectors.state_dict().items()}
            save_file(state, str(tmp / "projector.safetensors"), metadata={"format": "pt"})
            if hasattr(self.lm, "peft_config"):
                self.lm.save_pretrained(str(tmp / "adapter"))
                (tmp / "adapter" / "README.md").unlink(missing_ok=True)  # peft's empty model card
            # Temp files are created private (0600/0700); a saved model is for everyone to read.
            for p in [tmp, *tmp.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)
        return path

    # ----------------------------------------------------------------- prompts
    @property
    def device(self) -> torch.device:
        return self.lm.get_input_embeddings().weight.device

    def expand_placeholders(self, text: str) -> str:
        """Each ``<image>`` / ``<spectrum>`` becomes k copies: one per visual token."""
        for m in self.config.modalities:
            tok = PLACEHOLDERS[m]
            text = text.replace(tok, tok * self.config.num_visual_tokens)
        return text

    def chat_ids(self, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
        """Token ids of a chat (system/user/assistant messages) in the LM's own template."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)
        return self.tokenizer(self.expand_placeholders(text), add_special_tokens=False)["input_ids"]

    def training_example(self, messages: list[dict], answer: str) -> tuple[list[int], list[int]]:
        """(input_ids, labels) for one example: the loss is on the answer and its end token only."""
        prompt = self.chat_ids(messages, add_generation_prompt=True)
        target = self.tokenizer(answer.strip(), add_special_tokens=False)["input_ids"] + [self.end_of_turn_id]
        return prompt + target, [IGNORE_INDEX] * len(prompt) + target

    @property
    def stop_ids(self) -> list[int]:
        """Generation stops at the end of the assistant's turn, or at the LM's end token."""
        return list(dict.fromkeys(i for i in (self.end_of_turn_id, self.tokenizer.eos_token_id) if i is not None))

    # ----------------------------------------------------------------- splicing
    def embed(self, input_ids: torch.Tensor, features: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Token embeddings with projected features written over the placeholder positions.

        ``features[modality]`` holds one row per placeholder occurrence in the batch, in
        reading order (row by row, left to right).
        """
        features = features or {}
        embedding = self.lm.get_input_embeddings()
        k = self.config.num_visual_tokens
        masks = {m: input_ids == pid for m, pid in self.placeholder_ids.items()}
        any_placeholder = torch.zeros_like(input_ids, dtype=torch.bool)
        for mask in masks.values():
            any_placeholder |= mask
        # Placeholder ids may lie beyond the LM's vocabulary: look up a harmless id instead.
        safe_ids = input_ids.masked_fill(any_placeholder, self.tokenizer.pad_token_id or 0)
        embeds = embedding(safe_ids)
        for m, mask in masks.items():
            n_slots = int(mask.sum())
            feats = features.get(m)
            n_feats = 0 if feats is None else (1 if feats.dim() == 1 else feats.shape[0])
            if n_slots != n_feats * k:
                raise BadArgumentError(f"the prompt has {n_slots // k if k else 0} {PLACEHOLDERS[m]} "
                                    f"placeholder(s) ({n_slots} tokens) but {n_feats} {m} feature "
                                    f"vector(s) were given", field=m)
            if n_slots == 0:
                continue
            proj = self.projectors(m, feats.to(device=embeds.device, dtype=embeds.dtype))
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), proj.reshape(-1, proj.shape[-1]))
        return embeds

    def forward(self, input_ids, attention_mask=None, labels=None, features=None):
        """Returns (loss, logits). The logits are computed only from the first labelled
        position on: the output head over 49k tokens is most of a small LM's cost."""
        embeds = self.embed(input_ids, features)
        if labels is None:
            out = self.lm(inputs_embeds=embeds, attention_mask=attention_mask)
            return None, out.logits
        labels = labels.clone()
        for pid in self.placeholder_ids.values():
            labels[input_ids == pid] = IGNORE_INDEX
        labelled = (labels != IGNORE_INDEX).any(dim=0).nonzero()
        if len(labelled) == 0:
            raise BadArgumentError("a training batch has no labelled tokens", field="labels")
        length = input_ids.shape[1]
        keep = length - int(labelled[0]) + 1
        out = self.lm(inputs_embeds=embeds, attention_mask=attention_mask, logits_to_keep=keep)
        logits = out.logits[:, :-1].float()
        target = labels[:, length - keep + 1:]
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                           ignore_index=IGNORE_INDEX)
        return loss, out.logits

    # ----------------------------------------------------------------- generation
    def _quiet_generation_config(self) -> None:
        # Greedy decoding: clear sampling defaults so generate() does not warn about them.
        gc = getattr(self.lm, "generation_config", None)
        if gc is not None:
            gc.do_sample = False
            gc.temperature = None
            gc.top_p = None
            gc.top_k = None
            if gc.pad_token_id is None:
                gc.pad_token_id = self.tokenizer.pad_token_id

    def _generate_kwargs(self, messages, features, max_new_tokens):
        ids = torch.tensor([self.chat_ids(messages)], device=self.device)
        features = {m: (f if torch.is_tensor(f) else torch.as_tensor(f)).reshape(-1, self.config.enc_dim)
                    for m, f in (features or {}).items() if f is not None}
        return dict(inputs_embeds=self.embed(ids, features), attention_mask=torch.ones_like(ids),
                    max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                    eos_token_id=self.stop_ids,
                    pad_token_id=self.tokenizer.pad_token_id), ids.shape[1]

    @torch.inference_mode()
    def generate(self, messages: list[dict], features: dict | None = None,
                 max_new_tokens: int = 96) -> str:
        """Greedy answer to a chat; ``features`` maps modality -> (n, enc_dim) vectors."""
        kwargs, _ = self._generate_kwargs(messages, features, max_new_tokens)
        out = self.lm.generate(**kwargs)
        return self.tokenizer.decode(out[0], skip_special_tokens=True).strip()

    def stream(self, messages: list[dict], features: dict | None = None,
               max_new_tokens: int = 96, stats: dict | None = None) -> Iterator[str]:
        """Yield the answer in pieces as they are generated (TextIteratorStreamer).

        ``stats``, if given, is filled with ``first_token_time`` (perf_counter), ``new_tokens``
        and ``stopped`` (the end token was generated)."""
        with torch.inference_mode():
            kwargs, _ = self._generate_kwargs(messages, features, max_new_tokens)
        stats = {} if stats is None else stats
        streamer = _CountingStreamer(self.tokenizer, stats, self.stop_ids)
        errors: list[BaseException] = []

        def run():
            try:
                with torch.inference_mode():
                    self.lm.generate(**kwargs, streamer=streamer)
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if errors:
            raise errors[0]

    def count_tokens(self, messages: list[dict]) -> int:
        return len(self.chat_ids(messages))



def end_of_turn_id(tokenizer) -> int:
    """The token that closes an assistant turn in the LM's chat template (ChatML's
    ``<|im_end|>``). Training ends each answer with it and generation stops at it: the
    tokenizer's ``eos_token`` is not a safe stand-in, since converters (GGUF among them)
    do not agree on it."""
    probe = "ASTROVLM_PROBE"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "q"},
                                          {"role": "assistant", "content": probe}], tokenize=False)
    after = tokenizer(text.split(probe, 1)[-1], add_special_tokens=False)["input_ids"]
    return after[0] if after else tokenizer.eos_token_id


class _CountingStreamer(TextIteratorStreamer):
    """A TextIteratorStreamer that also notes when the first token came, and how many came."""

    def __init__(self, tokenizer, stats: dict, stop_ids: list[int]):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.stats, self.stop_ids = stats, set(stop_ids)
        stats.update(new_tokens=0, first_token_time=None, stopped=False)

    def put(self, value):
        if not (self.skip_prompt and self.next_tokens_are_prompt):
            if self.stats["first_token_time"] is None:
                self.stats["first_token_time"] = time.perf_counter()
            ids = value.reshape(-1).tolist()
            self.stats["new_tokens"] += len(ids)
            if self.stop_ids.intersection(ids):
                self.stats["stopped"] = True
        super().put(value)
