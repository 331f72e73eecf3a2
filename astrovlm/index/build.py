"""Build the cross-modal index of a dataset folder with an ``AlignedEncoder`` (local engine).

Every image, spectrum and passage of the dataset becomes one vector with its metadata:
the object it shows (name, catalog type, coarse class, position), its credit and licence,
whether it is simulated, and a ``preview`` path relative to the dataset. ``dataset_items``
is shared with the Ray engine, so both engines index the same items the same way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from astrovlm.config import default_index_dir, sample_dir
from astrovlm.errors import AstroVLMError, NotFoundError, UnreadableError
from astrovlm.index.store import CrossModalIndex

log = logging.getLogger(__name__)

CAPTION_CHARS = 160


@dataclass
class IndexItem:
    """One thing to embed: what to feed the encoder (``payload``) and what to store with it."""

    item_id: str
    modality: str
    payload: str             # a path relative to the dataset (image, spectrum) or the text itself
    metadata: dict = field(default_factory=dict)

    def to_record(self) -> dict:
        return {"item_id": self.item_id, "modality": self.modality, "payload": self.payload}


def dataset_items(ds) -> list[IndexItem]:
    """The items of a ``SkyDataset`` to index, in a fixed order (images, spectra, passages)."""
    items = []
    for rec in ds.images:
        obj = ds.get_object(rec.object_id)
        meta = _object_meta(obj, rec.ra_deg, rec.dec_deg)
        meta.update(source=rec.source, credit=rec.credit, license=rec.license, simulated=rec.simulated,
                    preview=rec.path, split=rec.split, caption=meta.get("name") or rec.image_id,
                    fov_deg=rec.fov_deg)
        items.append(IndexItem(f"image:{rec.image_id}", "image", rec.path,
                               _finish(f"image:{rec.image_id}", rec.object_id, "image", meta)))
    for rec in ds.spectra:
        obj = ds.get_object(rec.object_id)
        meta = _object_meta(obj)
        meta.update(source=rec.source, credit=rec.credit, license=rec.license, simulated=rec.simulated,
                    preview=rec.path, split=rec.split, coarse_class=rec.spectral_class,
                    otype=rec.subclass or meta.get("otype") or rec.spectral_class,
                    caption=" ".join(x for x in (meta.get("name"), rec.subclass or rec.spectral_class,
                                                 f"z={rec.redshift:.3f}" if rec.redshift else "") if x),
                    redshift=rec.redshift, snr=rec.snr, template=rec.template or None)
        items.append(IndexItem(f"spectrum:{rec.spectrum_id}", "spectrum", rec.path,
                               _finish(f"spectrum:{rec.spectrum_id}", rec.object_id, "spectrum", meta)))
    for rec in ds.passages:
        if not rec.text or not rec.text.strip():
            continue
        obj = ds.get_object(rec.object_id)
        meta = _object_meta(obj)
        text = " ".join(rec.text.split())
        meta.update(source=rec.source, credit=rec.credit, license=rec.license, split=rec.split,
                    caption=(rec.title + ": " if rec.title else "") + text[:CAPTION_CHARS],
                    kind=rec.kind)
        items.append(IndexItem(f"text:{rec.passage_id}", "text", rec.text,
                               _finish(f"text:{rec.passage_id}", rec.object_id, "text", meta)))
    return items


def _object_meta(obj, ra=None, dec=None) -> dict:
    if obj is None:
        return {"ra_deg": ra, "dec_deg": dec}
    return {"name": obj.name, "otype": obj.otype, "coarse_class": obj.coarse_class,
            "ra_deg": ra if ra is not None else obj.ra_deg,
            "dec_deg": dec if dec is not None else obj.dec_deg,
            "constellation": obj.constellation}


def _finish(item_id, object_id, modality, meta) -> dict:
    out = {"item_id": item_id, "object_id": object_id, "modality": modality}
    out.update({k: v for k, v in meta.items() if v is not None})
    return out


def embed_items(encoder, items: list[IndexItem], root: Path, batch_size: int = 32,
                progress: bool = True) -> tuple[np.ndarray, list[dict]]:
    """Encode items batch by batch (grouped by modality). Returns the vectors in item order
    (rows of skipped items are zero) and the skipped items with the reason."""
    from tqdm.auto import tqdm

    vectors = np.zeros((len(items), encoder.embed_dim), dtype="float32")
    ok = np.zeros(len(items), dtype=bool)
    skipped = []
    bar = tqdm(total=len(items), desc="embedding", unit="item", disable=not progress)
    for modality in ("image", "spectrum", "text"):
        idx = [i for i, it in enumerate(items) if it.modality == modality]
        for start in range(0, len(idx), batch_size):
            batch = idx[start:start + batch_size]
            payloads = [_payload(items[i], root) for i in batch]
            try:
                vectors[batch] = encode_payloads(encoder, modality, payloads)
                ok[batch] = True
            except AstroVLMError:
                # One bad file should not sink the build: retry one by one, skip the bad ones.
                for i, p in zip(batch, payloads):
                    try:
                        vectors[i] = encode_payloads(encoder, modality, [p])[0]
                        ok[i] = True
                    except AstroVLMError as exc:
                        skipped.append({"item_id": items[i].item_id, "reason": str(exc)})
            bar.update(len(batch))
    bar.close()
    return vectors, skipped


def encode_payloads(encoder, modality: str, payloads: list) -> np.ndarray:
    if modality == "image":
        return encoder.encode_images(payloads, batch_size=len(payloads))
    if modality == "spectrum":
        return encoder.encode_spectra(payloads, batch_size=len(payloads))
    return encoder.encode_text(payloads, batch_size=len(payloads))


def _payload(item: IndexItem, root: Path):
    return str(root / item.payload) if item.modality in ("image", "spectrum") else item.payload


def build_index(dataset: str | Path | None = None, encoder=None, out: str | Path | None = None,
                kind: str = "auto", recall_target: float = 0.95, batch_size: int = 32,
                progress: bool = True, save: bool = True) -> tuple[CrossModalIndex, dict]:
    """Embed every item of ``dataset`` (default: the sample sky) and index it.

    ``encoder``: an ``AlignedEncoder``, the folder of one, or None for the shipped encoder.
    Writes the index to ``out`` (default ``default_index_dir()``) when ``save``.
    Returns the index and a summary (counts, skipped items, timings, where it was written).
    """
    from astrovlm.data.records import SkyDataset, dataset_dir

    t0 = time.perf_counter()
    root = dataset_dir(dataset if dataset is not None else sample_dir())
    if dataset is None and not (root / "objects.jsonl").exists():
        raise NotFoundError("the sample sky is not built yet; run 'astrovlm data sample' first", path=root)
    ds = SkyDataset(root)
    encoder = load_encoder(encoder)
    items = dataset_items(ds)
    if not items:
        raise NotFoundError("the dataset has no images, spectra or passages to index", path=root)
    vectors, skipped = embed_items(encoder, items, root, batch_size, progress)
    t_embed = time.perf_counter() - t0
    bad = {s["item_id"] for s in skipped}
    keep = [i for i, it in enumerate(items) if it.item_id not in bad]
    if not keep:
        raise UnreadableError(f"no item could be embedded (first problem: {skipped[0]['reason']})", path=root)
    index = CrossModalIndex(encoder.embed_dim, encoder.fingerprint, kind=kind, recall_target=recall_target,
                            dataset_root=root.resolve())
    index.add(vectors[keep], [items[i].metadata for i in keep])
    # The index's rows are the positions in ``keep`` (it was empty before this add).
    tune_on_text(index, vectors[keep], [j for j, i in enumerate(keep) if items[i].modality == "text"])
    summary = {"dataset": str(root.resolve()), "engine": "local", "kind": index.kind, "count": len(index),
               "counts": index.counts(), "skipped": skipped, "fingerprint": encoder.fingerprint,
               "embed_seconds": round(t_embed, 2), "tuning": index.tuning}
    if save:
        path = Path(out) if out is not None else default_index_dir()
        index.save(path)
        summary["path"] = str(path)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return index, summary


def tune_on_text(index: CrossModalIndex, vectors: np.ndarray, text_rows: list[int], n: int = 200) -> None:
    """Tune a graph or IVF index on text vectors: users query in words, and text vectors sit
    apart from image and spectrum vectors (the modality gap), where graph search is harder
    than for queries taken from the stored vectors themselves.

    ``vectors``: the index's vectors in row order (row i is ``vectors[i]``); ``text_rows``:
    the rows of the stored text vectors. Each one queries with its own row left out of the
    answers: a stored vector finds itself at once, a user's new sentence does not."""
    if index.kind not in ("hnsw", "ivfpq") or not text_rows:
        return
    rng = np.random.default_rng(0)
    pick = rng.choice(text_rows, size=min(n, len(text_rows)), replace=False)
    index.tune(queries=vectors[pick], query_rows=pick)


def load_encoder(encoder):
    if encoder is None or isinstance(encoder, (str, Path)):
        from astrovlm.encoders import AlignedEncoder

        return AlignedEncoder.from_pretrained(encoder)
    return encoder
