"""The outside set: real items kept out of all training, tuning and model choice.

``benchmarks/outside_set.py`` chooses them (SpeX spectra held out by source, flux standards
held out by star, with the Sun and Vega reserved, FIRST images of the package's own test
split) and writes ``benchmarks/data/outside_set.json``. The sources' ``for_training()``
leave these ids out by default, so a training recipe cannot use them by accident.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from astrovlm.errors import NotFoundError, UnreadableError

ENV_PATH = "ASTROVLM_OUTSIDE_SET"


def outside_set_path() -> Path:
    """``$ASTROVLM_OUTSIDE_SET``, else ``benchmarks/data/outside_set.json`` of the checkout."""
    env = os.environ.get(ENV_PATH)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "outside_set.json"


def load_outside_set(path: str | Path | None = None) -> dict:
    path = Path(path) if path else outside_set_path()
    return _load(str(path), path.stat().st_mtime_ns if path.exists() else 0)


def load_outside_ids(path: str | Path | None = None) -> frozenset[str]:
    """The ids of every outside item (``spex:...``, ``calspec:...``, ``first:...``)."""
    return frozenset(item["id"] for item in load_outside_set(path)["items"])


@lru_cache(maxsize=4)
def _load(path: str, _mtime: int) -> dict:
    p = Path(path)
    if not p.exists():
        # Failing closed: training without the list could train on the outside set.
        raise NotFoundError("the outside set is missing; build it with "
                            "'python benchmarks/outside_set.py' before any training", path=p)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        ids = [item["id"] for item in data["items"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnreadableError(f"not an outside-set file ({exc})", path=p) from None
    if len(set(ids)) != len(ids):
        raise UnreadableError("repeated ids in the outside set", path=p)
    return data
