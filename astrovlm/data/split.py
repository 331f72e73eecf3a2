"""The train / validation / test split of the sample sky: deterministic, by object.

Rule (also written into manifest.json as ``SPLIT_RULE``):

1. The unit of splitting is the object. Every record of an object (its images, spectra,
   catalog card, simulated spectra of its templates) inherits the object's split, so no
   object is ever in two splits. A spectrum with no sky object (an SDSS class template, a
   quasar composite) is its own unit, named ``template:NAME``; its simulated variants inherit
   its split (leave-template-out: a test template and all its variants are test).
2. Each unit gets a number in [0, 1): the first 8 bytes of sha256(unit id), big-endian,
   divided by 2**64. It depends on the id alone, so it is the same on every machine.
3. Units are stratified by class (the caller's stratum, e.g. "image/galaxy" or
   "spectrum/A star"). Within a stratum the units are ordered by their number; the first
   round(15%) go to test, the next round(15%) to val, the rest to train. A stratum of two or
   more units gets at least one test unit, and of three or more at least one val unit, so
   every class is represented in test.

Test units must never be used for training or tuning.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Mapping

from astrovlm.errors import BadArgumentError

SPLITS = ("train", "val", "test")
FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
SPLIT_RULE = (
    "By object: every record inherits its object's split; spectra without a sky object are "
    "split by template name ('template:NAME') and their simulated variants inherit it. "
    "Unit number u = int(sha256(unit_id)[:8 bytes]) / 2**64. Within each class stratum, units "
    "sorted by u: first round(15%) test, next round(15%) val, rest train (70%); strata of >= 2 "
    "units get >= 1 test unit, of >= 3 units >= 1 val unit.")


def unit_number(unit_id: str) -> float:
    """A stable number in [0, 1) for a unit id (sha256-based)."""
    digest = hashlib.sha256(unit_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def template_unit(template_name: str) -> str:
    return f"template:{template_name}"


def _counts(n: int) -> tuple[int, int]:
    n_test = round(n * FRACTIONS["test"])
    n_val = round(n * FRACTIONS["val"])
    if n >= 2 and n_test == 0:
        n_test = 1
    if n >= 3 and n_val == 0:
        n_val = 1
    return n_test, n_val


def assign_splits(strata: Mapping[str, str]) -> dict[str, str]:
    """Split units: ``{unit_id: stratum}`` -> ``{unit_id: "train" | "val" | "test"}``."""
    groups: dict[str, list[str]] = defaultdict(list)
    for unit, stratum in strata.items():
        if not unit:
            raise BadArgumentError("empty unit id", field="unit_id")
        groups[stratum].append(unit)
    out: dict[str, str] = {}
    for stratum, units in groups.items():
        units.sort(key=lambda u: (unit_number(u), u))
        n_test, n_val = _counts(len(units))
        for i, unit in enumerate(units):
            out[unit] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def split_counts(splits: Mapping[str, str], strata: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """``{stratum: {split: n_units}}`` for the manifest."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {s: 0 for s in SPLITS})
    for unit, split in splits.items():
        out[strata[unit]][split] += 1
    return {k: dict(v) for k, v in sorted(out.items())}
