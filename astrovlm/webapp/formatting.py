"""How the page shows results: captions, titles, facts tables and answers as Markdown.

Plain functions of hits, records and answers (no app state), so the page, the scripted API
and the tests format a result the same way.
"""

from __future__ import annotations

SOURCES_HEADING = "**Sources**"


def answer_markdown(answer) -> str:
    text = answer.text or "(no answer)"
    notes = "".join(f"\n\n*Note: {n}.*" for n in answer.notes)
    return text + notes + sources_markdown(answer.sources)


def sources_markdown(sources) -> str:
    if not sources:
        return ""
    lines = ["", "", SOURCES_HEADING]
    for i, s in enumerate(sources, 1):
        d = s.to_dict() if hasattr(s, "to_dict") else dict(s)
        title = d.get("title") or d.get("id")
        oid = d.get("object_id")
        credit = f" — {d['credit']}" if d.get("credit") else ""
        kind = f" ({d['kind'].replace('_', ' ')})" if d.get("kind") else ""
        if oid:
            lines.append(f"{i}. [{title}](?object={url_quote(oid)}){kind}{credit}")
        else:
            lines.append(f"{i}. {title}{kind}{credit}")
    return "\n".join(lines)


def url_quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")


def caption(hit) -> str:
    """'M57 · 0.412 · planetary nebula' (score first: long captions are cut in the gallery);
    spectra say so, and simulated ones are flagged."""
    m = hit.metadata
    kind = m.get("otype") or m.get("coarse_class") or ""
    what = "" if hit.modality == "image" else f" · {hit.modality}"
    z = m.get("redshift")
    if z and z > 0.001:
        what += f" z={z:.3f}"
    sim = " · simulated" if m.get("simulated") else ""
    return f"{hit_name(hit)} · {hit.score:.3f}{what}{sim} · {kind}"


def hit_name(hit) -> str:
    """An object's name; a template spectrum (no object) by its template's name."""
    m = hit.metadata
    if m.get("name") or hit.object_id:
        return m.get("name") or hit.object_id
    if m.get("template"):
        return f"template {m['template']}"
    return hit.item_id.split(":", 1)[-1]


def spectrum_title(hit) -> str:
    meta = hit.metadata
    z = meta.get("redshift")
    sim = " [simulated]" if meta.get("simulated") else ""
    ztxt = f" (z = {z:.4g})" if z and z > 0.001 else ""
    # short: a gallery cell is narrow, and the caption carries the type
    return f"{clip(hit_name(hit), 40)}{ztxt}{sim}"


def record_spectrum_title(obj, rec) -> str:
    name = obj.name if obj else (rec.object_id or rec.spectrum_id)
    sim = " [simulated]" if rec.simulated else ""
    z = f" (z = {rec.redshift:.4g})" if rec.redshift and rec.redshift > 0.001 else ""
    return f"{name} {rec.subclass or rec.spectral_class}{z}{sim}"


def passage_line(hit) -> str:
    m = hit.metadata
    return f"- *{m.get('source') or 'passage'}* (score {hit.score:.3f}): {clip(m.get('caption', ''), 300)}"


def clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def object_title(obj, object_id: str) -> str:
    if obj is None:
        return f"## {object_id}"
    other = [a for a in obj.aliases if a != obj.name][:4]
    aka = f" ({', '.join(other)})" if other else ""
    return f"## {obj.name}{aka}\n{obj.otype}"


def facts_markdown(obj, images, spectra) -> str:
    rows = []
    if obj is not None:
        coord = obj.coord
        if coord is not None:
            rows.append(("Position (ICRS)", coord.to_string("hmsdms", precision=1)))
        for label, value in (("Type", obj.otype), ("Class", obj.coarse_class),
                             ("Constellation", obj.constellation), ("Hubble type", obj.hubble_type),
                             ("Spectral type", obj.spectral_type),
                             ("Redshift", f"{obj.redshift:.5g}" if obj.redshift is not None else None),
                             ("V magnitude", f"{obj.v_mag:.2f}" if obj.v_mag is not None else None),
                             ("B magnitude", f"{obj.b_mag:.2f}" if obj.b_mag is not None else None),
                             ("Size", size_text(obj)), ("Aliases", ", ".join(obj.aliases[:8]) or None),
                             ("Catalog", obj.source or None)):
            if value not in (None, ""):
                rows.append((label, str(value)))
    rows.append(("Images", str(len(images))))
    n_sim = sum(1 for r in spectra if r.simulated)
    rows.append(("Spectra", f"{len(spectra)}" + (f" ({n_sim} simulated)" if n_sim else "")))
    credits = sorted({r.credit for r in images[:1] + spectra[:1] if r.credit})
    if credits:
        rows.append(("Credit", "; ".join(credits)))
    body = "\n".join(f"| {k} | {v.replace('|', '/')} |" for k, v in rows)
    return "### Catalog facts\n| Fact | Value |\n|---|---|\n" + body


def size_text(obj) -> str | None:
    if obj.major_axis_arcmin is None:
        return None
    if obj.minor_axis_arcmin is None:
        return f"{obj.major_axis_arcmin:.3g} arcmin"
    return f"{obj.major_axis_arcmin:.3g} × {obj.minor_axis_arcmin:.3g} arcmin"
