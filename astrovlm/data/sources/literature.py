"""The literature corpus: real texts chunked into passages of about 120-200 words.

Sources: the KStars AstroInfo articles, KStars' planet facts and the English descriptions of
Stellarium's sky cultures (HTML stripped; link and reference lists dropped). Chunks follow
paragraphs, and a paragraph longer than the limit is cut at sentence ends, so a passage
never stops mid-sentence. Each passage keeps its source id, title, author and licence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from pathlib import Path

from astrovlm.data.sources import kstars, stellarium

MIN_WORDS = 120
MAX_WORDS = 200


@dataclass
class LiteratureChunk:
    passage_id: str
    source_id: str          # the document, e.g. "kstars-astroinfo:blackbody"
    title: str
    text: str
    source: str             # human-readable origin, e.g. "KStars AstroInfo: blackbody.docbook"
    credit: str
    license: str


def _words(text: str) -> int:
    return len(text.split())


def _sentences(paragraph: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", paragraph) if s.strip()]


def chunk_text(text: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> list[str]:
    """Split text (paragraphs separated by blank lines) into passages of min..max words.

    Short texts stay whole; a last piece shorter than ``min_words / 2`` joins the one before
    if that stays under ``max_words * 1.25``.
    """
    units: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = re.sub(r"\s+", " ", para).strip()
        if not para:
            continue
        if _words(para) <= max_words:
            units.append(para)
        else:
            units.extend(_sentences(para))
    chunks: list[str] = []
    current: list[str] = []
    for unit in units:
        n = sum(_words(u) for u in current)
        if current and n >= min_words or current and n + _words(unit) > max_words:
            chunks.append(" ".join(current))
            current = []
        current.append(unit)
    if current:
        last = " ".join(current)
        if chunks and _words(last) < min_words / 2 and _words(chunks[-1]) + _words(last) <= max_words * 1.25:
            chunks[-1] = chunks[-1] + " " + last
        else:
            chunks.append(last)
    return chunks


_DROP_SECTIONS = re.compile(r"(?i)^(external links?|links|references?|bibliography|sources?|"
                            r"further reading|authors?|credits?|acknowledg\w*|license|notes)$")


def html_to_text(html: str) -> str:
    """Plain text of a sky-culture description: paragraphs kept, link/reference lists dropped."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", html)
    parts = re.split(r"(?is)(<h\d[^>]*>.*?</h\d>)", html)
    keep, dropping = [], False
    for part in parts:
        m = re.match(r"(?is)<h\d[^>]*>(.*?)</h\d>", part)
        if m:
            heading = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", m.group(1)))).strip()
            dropping = bool(_DROP_SECTIONS.match(heading))
            if not dropping and heading:
                keep.append(f"\n\n{heading}.\n\n")
            continue
        if not dropping:
            keep.append(part)
    body = "".join(keep)
    body = re.sub(r"(?i)<br\s*/?>", "\n", body)
    body = re.sub(r"(?i)</?(p|div|li|ul|ol|table|tr|blockquote)\b[^>]*>", "\n\n", body)
    body = unescape(re.sub(r"<[^>]+>", " ", body))
    paras = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", body)]
    # Drop stray one-word lines (image captions, list bullets).
    return "\n\n".join(p for p in paras if _words(p) > 2)


def _chunks_of(source_id: str, title: str, text: str, source: str, credit: str,
               license: str) -> list[LiteratureChunk]:
    return [LiteratureChunk(f"{source_id}#{i}", source_id, title, chunk, source, credit, license)
            for i, chunk in enumerate(chunk_text(text))]


def literature_corpus(kstars_root: Path, stellarium_root: Path) -> list[LiteratureChunk]:
    """All literature passages, in a fixed order."""
    out: list[LiteratureChunk] = []
    for art in kstars.astroinfo_articles(kstars_root):
        out += _chunks_of(art.source_id, art.title, art.text,
                          f"KStars AstroInfo: {art.path.name}", art.author, art.license)
    for art in kstars.planet_facts(kstars_root):
        out += _chunks_of(art.source_id, art.title, art.text, "KStars PlanetFacts.dat",
                          art.author, art.license)
    for sc in stellarium.skyculture_texts(stellarium_root):
        text = html_to_text(sc.html)
        if _words(text) < 20:
            continue
        out += _chunks_of(f"stellarium-skyculture:{sc.culture}", f"{sc.name} sky culture", text,
                          f"Stellarium sky culture: {sc.culture}/description.en.utf8",
                          sc.author, sc.license)
    return out
