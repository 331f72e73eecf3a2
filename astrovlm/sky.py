"""``Sky.open``: the one way to open astrovlm's pieces together, every fingerprint checked.

    >>> from astrovlm import Sky
    >>> sky = Sky.open()                       # sample sky, shipped encoder, default index
    >>> sky.retriever.text("an edge-on spiral galaxy", modality="image", k=5)
    >>> sky.retriever.classify(image="m57.fits").label
    >>> sky.resolver.resolve("Whirlpool Galaxy").object_id          # 'NGC5194'
    >>> sky.assistant().ask("What kind of object is M57?").text

A ``Sky`` holds the dataset, the aligned encoder, the cross-modal index built by that
encoder and the ``Retriever`` over them, with one name resolver (OpenNGC, the KStars stars
and the dataset's own objects, compared by the one name key of ``astrovlm.data.names``). Opening checks
that the index and the zero-shot calibration were made by the loaded encoder, and
``assistant()`` checks that the assistant's projectors were trained on it
(``astrovlm.assistant.model.check_encoder``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from astrovlm.errors import IncompatibleError, NotFoundError, UnreadableError

log = logging.getLogger(__name__)


@dataclass
class Sky:
    dataset: object          # astrovlm.data.records.SkyDataset
    encoder: object          # astrovlm.encoders.AlignedEncoder
    index: object            # astrovlm.index.CrossModalIndex, built by ``encoder``
    retriever: object        # astrovlm.index.search.Retriever over them

    @property
    def resolver(self):
        """The one name resolver (made on first use: indexing 140k names takes a few seconds,
        which a plain search does not need)."""
        return self.retriever.resolver

    @classmethod
    def open(cls, home: str | Path | None = None, *, dataset: str | Path | None = None,
             encoder=None, index: str | Path | None = None, build: bool = False,
             progress: bool = True) -> "Sky":
        """Open a dataset, an encoder and its index.

        ``home``: the data home (default ``$ASTROVLM_HOME``, else ``~/.astrovlm``);
        ``dataset``: a dataset folder (default: the home's sample sky); ``encoder``: an
        ``AlignedEncoder`` or its folder (default: the shipped weights); ``index``: an index
        folder (default: the home's index of the sample sky). With ``build=True`` a missing
        sample sky is built, and an index that is missing, unreadable or made by another
        encoder is (re)built in place; otherwise each is a clear error.
        """
        from astrovlm.config import data_home
        from astrovlm.encoders import AlignedEncoder
        from astrovlm.index import CrossModalIndex
        from astrovlm.index.search import Retriever

        home = Path(home).expanduser() if home is not None else data_home()
        index_dir = Path(index) if index is not None else home / "index" / "sample"
        ds = idx = None
        if dataset is not None or index is None:
            # the cheap check first: a missing dataset is said before the encoder loads
            ds = _open_dataset(Path(dataset) if dataset is not None else home / "sample",
                               build=build and dataset is None, sample=dataset is None, progress=progress)
        if encoder is None or isinstance(encoder, (str, Path)):
            encoder = AlignedEncoder.from_pretrained(encoder)
        if ds is None:
            # A named index knows the dataset it was built from.
            idx = CrossModalIndex.load(index_dir, expected_fingerprint=encoder.fingerprint)
            ds = _open_dataset(Path(idx.dataset_root) if idx.dataset_root else home / "sample",
                               build=False, sample=not idx.dataset_root, progress=progress)
        if idx is None:
            idx = _open_index(index_dir, ds, encoder, build=build, progress=progress)
        return cls(ds, encoder, idx, Retriever(encoder, idx, dataset=ds))

    def assistant(self, path: str | Path | None = None, *, language_model: str | None = None,
                  allow_other_encoder: bool = False, **kwargs):
        """The assistant (the shipped weights, or the folder ``path``) over this sky.

        Its projectors must have been trained on this encoder's image and spectrum towers;
        otherwise it is refused with an ``IncompatibleError`` naming both fingerprints, or,
        with ``allow_other_encoder=True``, loaded with a warning.
        """
        from astrovlm.assistant.model import AstroLlava
        from astrovlm.assistant.rag import Assistant

        model = AstroLlava.from_pretrained(path, language_model=language_model)
        return Assistant(model, self.dataset, retriever=self.retriever, resolver=self.resolver,
                         allow_other_encoder=allow_other_encoder, **kwargs)

    def __repr__(self) -> str:
        return (f"Sky({self.dataset.root}: {len(self.dataset.objects)} objects; encoder "
                f"{self.encoder.fingerprint}; index {len(self.index)} vectors)")


def _open_dataset(root: Path, build: bool, sample: bool, progress: bool):
    from astrovlm.data.records import SkyDataset, dataset_dir

    root = dataset_dir(root)  # a build killed between its last two renames left '.NAME.old'
    if sample and not (root / "manifest.json").exists():
        if not build:
            raise NotFoundError("the sample sky is not built; run 'astrovlm data sample' (or "
                                "start the app without --no-build)", path=root)
        from astrovlm.data.sample import build_sample_sky

        log.info("building the sample sky in %s (first start only) ...", root)
        t0 = time.perf_counter()
        build_sample_sky(root, progress=progress)
        log.info("sample sky built in %.0f s", time.perf_counter() - t0)
    ds = SkyDataset(root)
    log.info("%r", ds)
    return ds


def _open_index(index_dir: Path, ds, encoder, build: bool, progress: bool):
    """The index in ``index_dir``, checked against ``encoder``; (re)built from ``ds`` when
    ``build`` is set and it is missing, unreadable or made by another encoder."""
    from astrovlm.index import CrossModalIndex

    try:
        return CrossModalIndex.load(index_dir, expected_fingerprint=encoder.fingerprint)
    except (NotFoundError, UnreadableError, IncompatibleError) as exc:
        if not build:
            raise
        from astrovlm.index.build import build_index

        log.info("the index %s; building it in %s ...",
                 "is missing" if isinstance(exc, NotFoundError) else f"cannot be used ({exc})", index_dir)
        idx, summary = build_index(ds.root, encoder=encoder, out=index_dir, progress=progress)
        log.info("index built: %d vectors in %s s", summary["count"], summary["seconds"])
        return idx
