"""Astronomy definitions and a long manual, as literature passages.

- GCIDE (Debian ``dict-gcide``, GPL): every sense tagged "(Astron.)", with its headword.
- WordNet 3.0 (Debian ``wordnet-base``, WordNet licence): astronomy synsets: members of the
  astronomy/astrophysics topic domain, glosses marked "(astronomy)", celestial bodies,
  stars and constellations (hyponyms and instances below them), telescopes, astronomers.
- The GNU Astronomy Utilities manual (Debian ``gnuastro`` 0.19, GFDL): the info manual split
  by node (section), long sections chunked as ``literature.chunk_text`` does.

Short descriptive text: what a user types. GCIDE and WordNet are part of the sample sky's
literature; the Gnuastro manual is not (yet).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from astrovlm.data.sources import debian
from astrovlm.data.sources.literature import LiteratureChunk, chunk_text
from astrovlm.errors import UnreadableError

GCIDE_CREDIT = "GNU Collaborative International Dictionary of English 0.48 (Webster 1913 + additions)"
GCIDE_LICENSE = "GPL-3+"
WORDNET_CREDIT = "WordNet 3.0, Princeton University"
WORDNET_LICENSE = "WordNet 3.0 licence (free use with the copyright notice)"
GNUASTRO_CREDIT = "GNU Astronomy Utilities 0.19 manual (Akhlaghi et al., Free Software Foundation)"
GNUASTRO_LICENSE = "GFDL-1.3+ (no invariant sections)"

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TAG = "(Astron.)"
# Source marks at a sense's end: [1913 Webster], [PJC], [WordNet 1.5], [Webster 1913 Suppl.]
_MARKS = re.compile(r"\[(?:1913 Webster|Webster 1913[^\]]*|PJC|WordNet[^\]]*|Century Dict\.|RP|F)\]")


def gcide_definitions(*, progress: bool = True) -> list[LiteratureChunk]:
    """One passage per "(Astron.)" sense of GCIDE."""
    share = debian.package_root("dict-gcide", progress=progress) / "usr" / "share" / "dictd"
    try:
        with gzip.open(share / "gcide.dict.dz", "rb") as fh:  # dictzip is gzip-compatible
            text = fh.read()
        index = (share / "gcide.index").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise UnreadableError(f"cannot read GCIDE ({exc})", path=share) from None
    out, seen = [], set()
    for line in index:
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith("00-database"):
            continue
        span = (_b64(parts[1]), _b64(parts[2]))
        if span in seen:
            continue
        seen.add(span)
        entry = text[span[0]:span[0] + span[1]].decode("utf-8", errors="replace")
        if _TAG not in entry:
            continue
        head = entry.split("\\", 1)[0].strip() or parts[0]
        for i, (title, sense) in enumerate(_astron_senses(entry, head)):
            out.append(LiteratureChunk(
                passage_id=f"gcide:{head}#{i}:{span[0]}", source_id=f"gcide:{head}", title=title,
                text=f"{title}: {sense}", source="GCIDE (dict-gcide)", credit=GCIDE_CREDIT,
                license=GCIDE_LICENSE))
    return out


def _astron_senses(entry: str, head: str) -> list[tuple[str, str]]:
    out = []
    for para in re.split(r"\n\s*\n", entry):
        if _TAG not in para:
            continue
        flat = re.sub(r"\s+", " ", _MARKS.sub("", para)).strip()
        before, _, after = flat.partition(_TAG)
        m = re.match(r"^\s*\{([^}]+)\}", before)
        title = m.group(1) if m else head
        sense = re.sub(r"^[\s,.;:]+", "", after)
        sense = re.sub(r"\{([^}]*)\}", r"\1", sense)
        sense = re.sub(r"\s--\s?[A-Z][\w.&' ]*\.$", "", sense).strip()  # a trailing --Author.
        sense = re.sub(r"\s*Syn:.*$", "", sense).strip()
        if len(sense.split()) >= 4:
            out.append((title, sense))
    return out


def _b64(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 64 + _B64.index(ch)
    return n


def wordnet_definitions(*, progress: bool = True) -> list[LiteratureChunk]:
    """One passage per astronomy synset of WordNet (nouns)."""
    path = debian.package_root("wordnet-base", progress=progress) / "usr" / "share" / "wordnet" / "data.noun"
    syn = _read_wordnet(path)
    words = {}
    for off, (ws, _, _) in syn.items():
        for w in ws:
            words.setdefault(w.lower(), []).append(off)
    pick = set()
    for domain in ("astronomy", "astrophysics"):
        for off in words.get(domain, []):
            pick |= {t for s, t in syn[off][1] if s == "-c"}
    pick |= {off for off, (_, _, gloss) in syn.items() if "(astronomy)" in gloss}
    roots = [o for w in ("celestial_body", "telescope", "astronomer") for o in words.get(w, [])]
    roots += [o for o in words.get("constellation", []) if "stars" in syn[o][2]]
    roots += [o for o in words.get("star", []) if "celestial body" in syn[o][2]]
    pick |= _below(syn, roots)
    out = []
    for off in sorted(pick):
        ws, _, gloss = syn[off]
        names = [w.replace("_", " ") for w in ws]
        title = names[0]
        also = f" (also: {', '.join(names[1:])})" if len(names) > 1 else ""
        out.append(LiteratureChunk(
            passage_id=f"wordnet:{off}", source_id=f"wordnet:{off}", title=title,
            text=f"{title}{also}: {gloss}", source="WordNet 3.0 (wordnet-base) data.noun",
            credit=WORDNET_CREDIT, license=WORDNET_LICENSE))
    return out


def _read_wordnet(path: Path) -> dict:
    """offset -> (words, noun pointers [(symbol, offset)], gloss) from a WordNet data file."""
    syn = {}
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise UnreadableError(f"cannot read WordNet ({exc})", path=path) from None
    for line in lines:
        if line.startswith("  "):  # the licence header
            continue
        head, _, gloss = line.partition(" | ")
        p = head.split()
        n = int(p[3], 16)
        k = 4 + 2 * n
        ptrs = [(p[k + 1 + 4 * i], p[k + 2 + 4 * i]) for i in range(int(p[k])) if p[k + 3 + 4 * i] == "n"]
        syn[p[0]] = ([p[4 + 2 * i] for i in range(n)], ptrs, gloss.strip())
    return syn


def _below(syn: dict, roots) -> set[str]:
    """The roots with every hyponym and instance below them."""
    seen, stack = set(), list(roots)
    while stack:
        off = stack.pop()
        if off in seen or off not in syn:
            continue
        seen.add(off)
        stack += [t for s, t in syn[off][1] if s in ("~", "~i")]
    return seen


_SKIP_NODES = re.compile(r"(?i)^(top|index|gnu free documentation license|gnu general public license)$")


def gnuastro_manual(*, progress: bool = True) -> list[LiteratureChunk]:
    """The Gnuastro manual, one or more passages per info node (menus and the licence text dropped)."""
    info = debian.package_root("gnuastro", progress=progress) / "usr" / "share" / "info"
    files = sorted(info.glob("gnuastro.info-*.gz"), key=lambda p: int(p.name.split("-")[-1].split(".")[0]))
    if not files:
        raise UnreadableError("no gnuastro.info-N.gz files in the gnuastro package", path=info)
    out = []
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8", errors="replace") as fh:
            body = fh.read()
        for node in body.split("\x1f")[1:]:
            m = re.match(r"\s*File: [^,]+,\s+Node: ([^,\n]+)", node)
            if not m or _SKIP_NODES.match(m.group(1).strip()):
                continue
            title = m.group(1).strip()
            text = node.split("\n", 2)[2] if node.count("\n") >= 2 else ""
            text = re.sub(r"(?m)^\* Menu:.*$|^\* [^\n]*::.*$|^[*=\-]{3,}\s*$", "", text)
            sid = f"gnuastro:{title}"
            for i, chunk in enumerate(chunk_text(text)):
                if len(chunk.split()) >= 20:
                    out.append(LiteratureChunk(f"{sid}#{i}", sid, title, chunk,
                                               f"Gnuastro 0.19 manual: {title}", GNUASTRO_CREDIT,
                                               GNUASTRO_LICENSE))
    return out


def definitions(*, progress: bool = True) -> list[LiteratureChunk]:
    return gcide_definitions(progress=progress) + wordnet_definitions(progress=progress) + \
        gnuastro_manual(progress=progress)
