"""Make the README's results table from benchmarks/results/*.json.

Run: python benchmarks/report.py   (rewrites the block between the RESULTS markers in README.md)
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- RESULTS:BEGIN -->", "<!-- RESULTS:END -->"
SKIP = {"n", "command", "machine", "date"}


def table() -> str:
    parts = []
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        parts.append(f"**{path.stem}** (n={data.get('n')}; `{data.get('command')}`, {data.get('date', '')})\n")
        parts.append("| metric | value |\n|---|---|")
        for k, v in data.items():
            if k in SKIP or isinstance(v, (dict, list)):
                continue
            parts.append(f"| {k} | {v} |")
        parts.append("")
    return "\n".join(parts)


def main():
    readme = ROOT / "README.md"
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit("README.md has no RESULTS markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{table()}\n{END}{tail}"
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(new)
    tmp.replace(readme)
    print(f"updated {readme} from {len(list(RESULTS.glob('*.json')))} result files")


if __name__ == "__main__":
    main()
