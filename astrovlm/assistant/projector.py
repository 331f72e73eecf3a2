"""LLaVA's ``mlp2x_gelu`` projector, from one aligned-encoder vector to a few LM tokens.

The aligned encoders give one pooled vector per image or spectrum (``embed_dim``, 256).
LLaVA projects every patch; here the pooled vector is expanded to ``num_tokens`` visual
tokens by the first linear layer (its output is split into ``num_tokens`` slices), then
each token goes through GELU and the second linear layer, as in mlp2x_gelu. Few tokens
keep prompts, training and generation short on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureProjector(nn.Module):
    """Linear(enc_dim, k*hidden) -> GELU -> Linear(hidden, hidden), giving (B, k, hidden)."""

    def __init__(self, enc_dim: int, hidden: int, num_tokens: int = 2):
        super().__init__()
        if enc_dim <= 0 or hidden <= 0 or num_tokens <= 0:
            raise ValueError("enc_dim, hidden and num_tokens must be positive")
        self.enc_dim, self.hidden, self.num_tokens = enc_dim, hidden, num_tokens
        self.fc1 = nn.Linear(enc_dim, num_tokens * hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() == 1:
            features = features.unsqueeze(0)
        if features.shape[-1] != self.enc_dim:
            raise ValueError(f"expected features of dimension {self.enc_dim}, got {features.shape[-1]}")
        x = self.fc1(features).view(features.shape[0], self.num_tokens, self.hidden)
        return self.fc2(self.act(x))


class ModalityProjectors(nn.Module):
    """One projector per attached modality (``image``, ``spectrum``): the aligned space is
    shared, but what the LM should read from an image and from a spectrum differs."""

    def __init__(self, enc_dim: int, hidden: int, num_tokens: int = 2,
                 modalities: tuple[str, ...] = ("image", "spectrum")):
        super().__init__()
        self.enc_dim, self.hidden, self.num_tokens = enc_dim, hidden, num_tokens
        self.modalities = tuple(modalities)
        self.by_modality = nn.ModuleDict({m: FeatureProjector(enc_dim, hidden, num_tokens)
                                          for m in self.modalities})

    def forward(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        return self.by_modality[modality](features)
