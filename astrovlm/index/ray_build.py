"""``astrovlm index build --engine ray``: embed with Ray Data, build a sharded IVF-PQ index.

1. The dataset's items (the same ``dataset_items`` as the local engine) become a Ray
   Dataset; ``map_batches`` runs ``EmbedBatch`` actors, each holding one encoder (one GPU
   per actor when the cluster has GPUs, CPU threads otherwise).
2. An IVF-PQ quantizer is trained once, on a sample of the embeddings.
3. The vectors are cut into shards; each shard is added to a copy of the trained (empty)
   index by a Ray task. Because every shard shares the quantizer, their inverted lists
   line up, and ``faiss.contrib.ondisk.merge_ondisk`` merges them into one on-disk
   ``index.ivfdata`` without holding all the lists in memory.
4. The merged index and the metadata are saved as an ordinary ``CrossModalIndex`` folder.

Ray is optional (the ``scale`` extra): it is imported here only, when asked for.
On a cluster: ``ray start --head`` on one machine, ``ray start --address HEAD:6379`` on the
others, then ``RAY_ADDRESS=HEAD:6379 astrovlm index build --engine ray`` (see index/README.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import faiss
import numpy as np

from astrovlm.config import default_index_dir, sample_dir
from astrovlm.errors import AstroVLMError, BadArgumentError, NotFoundError, UnreadableError
from astrovlm.index import factory
from astrovlm.index.build import dataset_items, encode_payloads, load_encoder, tune_on_text
from astrovlm.index.persist import IVFDATA_FILE, stdout_to_stderr
from astrovlm.index.store import CrossModalIndex

log = logging.getLogger(__name__)

MIN_IVFPQ = 256          # PQ trains 256 centroids per sub-quantizer: fewer vectors cannot
TRAIN_SAMPLE = 100_000   # vectors the quantizer is trained on (k-means needs no more)


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (plain 'ray' lacks Ray Data's pyarrow)
    except ImportError:
        raise NotFoundError("the Ray engine needs Ray Data: pip install 'astrovlm[scale]' "
                            "(or pip install 'ray[data]')", field="engine") from None
    return ray


def start_ray(address: str | None = None, num_cpus: int | None = None):
    """Join the cluster at ``address`` / ``$RAY_ADDRESS``, or start a local Ray."""
    ray = import_ray()
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        kwargs = {"include_dashboard": False, "log_to_driver": False}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), **kwargs)
    return ray


class EmbedBatch:
    """A Ray Data actor: loads the encoder once, then embeds batch after batch."""

    def __init__(self, encoder_path: str | None, root: str, threads: int = 1):
        import torch

        torch.set_num_threads(max(1, threads))
        self.encoder = load_encoder(encoder_path)
        if torch.cuda.is_available():
            self.encoder.to("cuda")
        self.root = Path(root)

    def __call__(self, batch: dict) -> dict:
        rows, mods, payloads = batch["row"], batch["modality"], batch["payload"]
        out = np.zeros((len(rows), self.encoder.embed_dim), dtype="float32")
        errors = np.array([""] * len(rows), dtype=object)
        for modality in ("image", "spectrum", "text"):
            idx = np.flatnonzero(mods == modality)
            if idx.size == 0:
                continue
            items = [str(self.root / payloads[i]) if modality != "text" else str(payloads[i]) for i in idx]
            try:
                out[idx] = encode_payloads(self.encoder, modality, items)
            except AstroVLMError:
                for i, p in zip(idx, items):
                    try:
                        out[i] = encode_payloads(self.encoder, modality, [p])[0]
                    except AstroVLMError as exc:
                        errors[i] = str(exc)
        return {"row": rows, "vector": out, "error": errors}


def embed_with_ray(ray, items, root: Path, encoder_path: str | None, dim: int, batch_size: int = 32,
                   actors: int | None = None, threads: int = 1, progress: bool = True):
    """Embed ``items`` on the cluster. Returns (vectors in item order, skipped items)."""
    gpus = int(ray.cluster_resources().get("GPU", 0))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    if actors is None:
        # Leave a CPU for Ray Data's own read and output tasks.
        actors = gpus if gpus else max(1, (cpus - 1) // max(1, threads))
    records = [{"row": i, "modality": it.modality, "payload": it.payload} for i, it in enumerate(items)]
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    dataset = ray.data.from_items(records, override_num_blocks=max(1, min(len(records) // batch_size, 4 * actors)))
    resources = {"num_gpus": 1} if gpus else {"num_cpus": threads}
    embedded = dataset.map_batches(
        EmbedBatch, fn_constructor_kwargs={"encoder_path": encoder_path, "root": str(root), "threads": threads},
        batch_size=batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors), **resources)
    vectors = np.zeros((len(items), dim), dtype="float32")
    skipped = []
    for batch in embedded.iter_batches(batch_format="numpy", batch_size=None):
        vectors[batch["row"]] = batch["vector"]
        for r, err in zip(batch["row"], batch["error"]):
            if err:
                skipped.append({"item_id": items[int(r)].item_id, "reason": str(err)})
    return vectors, skipped


def _add_shard(trained: np.ndarray, x: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Ray task: add one shard to a copy of the trained empty index; return it serialised
    (bytes travel through the object store, so workers need no shared disk)."""
    index = faiss.deserialize_index(trained)
    index.add_with_ids(np.ascontiguousarray(x, dtype="float32"), np.ascontiguousarray(ids, dtype="int64"))
    return faiss.serialize_index(index)


def build_sharded_ivfpq(ray, vectors: np.ndarray, ids: np.ndarray, workdir: Path, shards: int = 4,
                        recall_target: float = 0.95, seed: int = 0) -> faiss.IndexIVFPQ:
    """Train one IVF-PQ quantizer, fill shards in Ray tasks, merge them on disk.

    The result's inverted lists live in ``workdir/index.ivfdata`` (memory-mapped)."""
    n, dim = vectors.shape
    if n < MIN_IVFPQ:
        raise BadArgumentError(f"IVF-PQ needs at least {MIN_IVFPQ} vectors, got {n}", field="kind")
    workdir.mkdir(parents=True, exist_ok=True)
    index = factory.make_ivfpq(dim, factory.ivf_nlist(n), factory.pq_m(dim, recall_target))
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(n, size=min(n, TRAIN_SAMPLE), replace=False)]
    index.train(np.ascontiguousarray(sample))
    trained = ray.put(faiss.serialize_index(index))
    add_shard = ray.remote(_add_shard)
    bounds = np.linspace(0, n, min(shards, n) + 1).astype(int)
    refs = [add_shard.remote(trained, vectors[a:b], ids[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    shard_paths = []
    for i, ref in enumerate(refs):
        p = workdir / f"shard{i:03d}.faiss"
        faiss.write_index(faiss.deserialize_index(ray.get(ref)), str(p))
        shard_paths.append(str(p))
    from faiss.contrib.ondisk import merge_ondisk

    with stdout_to_stderr():  # the on-disk lists report their resizing on stdout
        merge_ondisk(index, shard_paths, str(workdir / IVFDATA_FILE))
    for p in shard_paths:
        os.unlink(p)
    return index


def build_index_ray(dataset: str | Path | None = None, encoder: str | Path | None = None,
                    out: str | Path | None = None, recall_target: float = 0.95, batch_size: int = 32,
                    shards: int | None = None, actors: int | None = None, threads: int = 1,
                    address: str | None = None, num_cpus: int | None = None,
                    progress: bool = True) -> tuple[CrossModalIndex, dict]:
    """The Ray counterpart of ``build.build_index``: same items, same metadata, an IVF-PQ
    index merged from shards (an exact flat index when there are too few vectors to train one)."""
    from astrovlm.data.records import SkyDataset, dataset_dir

    t0 = time.perf_counter()
    root = dataset_dir(dataset if dataset is not None else sample_dir())
    if dataset is None and not (root / "objects.jsonl").exists():
        raise NotFoundError("the sample sky is not built yet; run 'astrovlm data sample' first", path=root)
    ds = SkyDataset(root)
    items = dataset_items(ds)
    if not items:
        raise NotFoundError("the dataset has no images, spectra or passages to index", path=root)
    if encoder is not None and not isinstance(encoder, (str, Path)):
        raise BadArgumentError("the Ray engine loads the encoder in each actor: give its folder",
                            field="encoder")
    probe = load_encoder(encoder)  # fails here, clearly, before the cluster starts work
    fingerprint, dim = probe.fingerprint, probe.embed_dim
    del probe
    ray = start_ray(address, num_cpus)
    enc_path = None if encoder is None else str(Path(encoder).resolve())
    vectors, skipped = embed_with_ray(ray, items, root.resolve(), enc_path, dim, batch_size, actors,
                                      threads, progress)
    t_embed = time.perf_counter() - t0
    bad = {s["item_id"] for s in skipped}
    keep = [i for i, it in enumerate(items) if it.item_id not in bad]
    if not keep:
        raise UnreadableError(f"no item could be embedded (first problem: {skipped[0]['reason']})", path=root)
    x = vectors[keep]
    meta = [items[i].metadata for i in keep]
    out = Path(out) if out is not None else default_index_dir()
    index = CrossModalIndex(dim, fingerprint, kind="ivfpq", recall_target=recall_target,
                            dataset_root=root.resolve())
    workdir = out.parent / f".{out.name}.ray-work"
    shutil.rmtree(workdir, ignore_errors=True)
    note = None
    try:
        if len(x) >= MIN_IVFPQ:
            n_shards = shards or max(2, int(ray.cluster_resources().get("CPU", 2)))
            merged = build_sharded_ivfpq(ray, x, np.arange(len(x), dtype="int64"), workdir, n_shards,
                                         recall_target)
            index.attach(merged, "ivfpq", meta, ondisk=workdir / IVFDATA_FILE)
            texts = [i for i, m in enumerate(meta) if m["modality"] == "text"]
            if texts:
                tune_on_text(index, x, texts)
            else:
                index.tune()
        else:
            note = f"{len(x)} vectors are too few to train IVF-PQ (needs {MIN_IVFPQ}); built an exact index"
            n_shards = 0
            index = CrossModalIndex(dim, fingerprint, kind="flat", dataset_root=root.resolve())
            index.add(x, meta)
        index.save(out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {"dataset": str(root.resolve()), "engine": "ray", "kind": index.kind, "count": len(index),
               "counts": index.counts(), "shards": n_shards, "skipped": skipped, "fingerprint": fingerprint,
               "embed_seconds": round(t_embed, 2), "tuning": index.tuning, "path": str(out),
               "ray_resources": {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")},
               "seconds": round(time.perf_counter() - t0, 2)}
    if note:
        summary["note"] = note
    return CrossModalIndex.load(out, expected_fingerprint=fingerprint), summary

