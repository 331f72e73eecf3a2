"""Shared by the benchmark scripts: where results go and how they are written."""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def write_results(name: str, figures: dict, n: int) -> Path:
    """benchmarks/results/NAME.json: flat metric -> number, plus n, the command and the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {**figures, "n": n, "command": command_line(),
           "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
           "date": time.strftime("%Y-%m-%d")}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(path)
    print(json.dumps(out, indent=2))
    return path
