"""Real spectra beyond the sample sky for the spectrum tower: the SpeX Prism Library
(near-infrared, 0.65-2.55 um: M, L and T dwarfs, giants, a few galaxies) and the flux
standards (CALSPEC and friends, ultraviolet to near-infrared), as the sources'
``for_training()`` give them: the outside set, the Sun and Vega are never among them.

Each is read once and put on the tower's grid. A fixed part of the sources (by SpeX source
or by standard star, so no star is on both sides) is kept for VAL; the rest trains.
Classes are the sources' coarse classes; a class of fewer than ``MIN_TRAIN`` training
spectra is left out (unclassified, "other", the odd F star).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from astrovlm.encoders.preprocess import spectrum_to_tensor
from astrovlm.errors import AstroVLMError

MIN_TRAIN = 5
SKIP_CLASSES = {"", "other", "unclassified", "Y dwarf"}


@dataclass
class RealSpectra:
    x: torch.Tensor          # (N, 2, pixels) on the tower's grid
    labels: list[str]        # coarse class of each
    subtypes: list[str]      # the spectral type as the source gives it ("L4 beta", "DA2.4")
    names: list[str]
    bands: list[str]         # "near-infrared" (SpeX), "ultraviolet to near-infrared" (standards)
    group: list[str]         # the star or source: what the VAL split is drawn by
    ids: list[str]           # the source's spectrum id ("spex:...", "calspec:...")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx) -> "RealSpectra":
        idx = list(idx)
        return RealSpectra(self.x[idx], *([getattr(self, f)[i] for i in idx]
                                          for f in ("labels", "subtypes", "names", "bands", "group", "ids")))


def _is_val(group: str, fraction: float) -> bool:
    return int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) / 16**8 < fraction


def load(grid, val_fraction: float = 0.15, sources=("spex", "calspec"), progress: bool = True
         ) -> tuple[RealSpectra, RealSpectra, dict]:
    """(train, val, summary) of the real spectra of ``sources`` the tower can read."""
    from astrovlm.data.sources import calspec, spex

    rows = []
    if "spex" in sources:
        for r in spex.for_training(progress=progress):
            rows.append((r, spex.read_spectrum, r.coarse_class, r.spectral_type, r.name,
                         "near-infrared", f"spex:{r.source_key}"))
    if "calspec" in sources:
        for r in calspec.for_training(progress=progress):
            if not r.simulated:  # models are not observations
                rows.append((r, calspec.read_spectrum, r.coarse_class, r.spectral_type, r.star,
                             "ultraviolet to near-infrared", f"star:{r.star_key}"))
    xs, keep, unread = [], [], 0
    for row in tqdm(rows, desc="reading real spectra", unit="spectrum", disable=not progress):
        rec, read, cls = row[:3]
        if cls in SKIP_CLASSES:
            continue
        try:
            xs.append(spectrum_to_tensor(read(rec), name=rec.spectrum_id, grid=grid))
        except AstroVLMError:
            unread += 1
            continue
        keep.append(row)
    every = RealSpectra(torch.stack(xs), *([row[i] for row in keep] for i in range(2, 7)),
                        [row[0].spectrum_id for row in keep])
    val_idx = [i for i, g in enumerate(every.group) if _is_val(g, val_fraction)]
    train_idx = [i for i in range(len(every)) if i not in set(val_idx)]
    counts = Counter(every.labels[i] for i in train_idx)
    classes = {c for c, n in counts.items() if n >= MIN_TRAIN}
    train = every.subset([i for i in train_idx if every.labels[i] in classes])
    val = every.subset([i for i in val_idx if every.labels[i] in classes])
    summary = {"train": len(train), "val": len(val), "unreadable_or_off_grid": unread,
               "train_classes": dict(sorted(Counter(train.labels).items())),
               "val_classes": dict(sorted(Counter(val.labels).items())),
               "val_fraction": val_fraction, "sources": list(sources)}
    return train, val, summary
