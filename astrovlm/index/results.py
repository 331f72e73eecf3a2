"""What a search returns: ``Hit`` (one stored vector, its score and what it is) and
``SearchResult`` (the hits, best first, and why there are fewer than asked for)."""

from __future__ import annotations

from dataclasses import dataclass, field


class _Unread:
    """Marks a Hit field not yet read from its index; one instance, which a pickled (or
    copied) Hit keeps, so the field is still read on first use after loading."""

    __slots__ = ()

    def __reduce__(self):
        return "_UNREAD"

    def __repr__(self) -> str:
        return "<unread>"


_UNREAD = _Unread()
_new_object = object.__new__


class Hit:
    """One search result: a stored vector, how close it is, and what it is.

    ``object_id``, ``modality``, ``metadata`` and ``preview`` are read from the index when
    first asked for, so a search whose caller only wants ids and scores does not pay for
    them: on a large index each column read is a cache miss, and ten hits' worth of them
    are a visible part of a 0.1 ms query. (Row numbers are never reused, so a row's
    columns still say the same later.)
    """

    __slots__ = ("score", "item_id", "_object_id", "_modality", "_metadata", "_preview", "_index", "_row")

    def __init__(self, score: float, item_id: str, object_id: str | None, modality: str,
                 metadata: dict | None = None, preview: str | None = None, *, index=None, row: int = -1):
        self.score, self.item_id, self._object_id, self._modality = float(score), item_id, object_id, modality
        self._metadata, self._preview, self._index, self._row = metadata, preview, index, row

    @classmethod
    def of_rows(cls, index, item_ids: list, scores: list, rows: list) -> "list[Hit]":
        """The hits of one search of ``index`` (a ``CrossModalIndex``), from FAISS's scores
        and row ids; ``item_ids`` is its row store's item-id column. Rows of -1 are missing
        results (a graph walk or the probed lists found fewer than asked for)."""
        # Built in one loop, with no __init__ call per hit: a search makes ten of these per
        # query, and the calls with keywords and float() (the scores are floats already,
        # from ndarray.tolist()) cost a third of a small index's search.
        new, hits = _new_object, []
        for score, row in zip(scores, rows):
            if row >= 0:
                hit = new(cls)
                hit.score, hit.item_id, hit._index, hit._row = score, item_ids[row], index, row
                hit._object_id = hit._modality = _UNREAD
                hit._metadata = hit._preview = None
                hits.append(hit)
        return hits

    @property
    def object_id(self) -> str | None:
        if self._object_id is _UNREAD:
            self._object_id = self._index.rows.value("object_id", self._row)
        return self._object_id

    @object_id.setter
    def object_id(self, value: str | None) -> None:
        self._object_id = value

    @property
    def modality(self) -> str:
        if self._modality is _UNREAD:
            self._modality = self._index.rows.value("modality", self._row)
        return self._modality

    @modality.setter
    def modality(self, value: str) -> None:
        self._modality = value

    @property
    def metadata(self) -> dict:
        """object name, class, type, position, source, credit, licence, simulated, caption, ..."""
        if self._metadata is None:
            self._metadata = self._index.rows.meta(self._row) if self._index is not None else {}
        return self._metadata

    @property
    def preview(self) -> str | None:
        """Path of the image / spectrum file (absolute when the dataset folder is known)."""
        if self._preview is None and self._index is not None:
            self._preview = self._index.preview_path(self.metadata.get("preview"))
        return self._preview

    def to_dict(self) -> dict:
        return {"score": round(float(self.score), 6), "item_id": self.item_id,
                "object_id": self.object_id, "modality": self.modality,
                "preview": self.preview, "metadata": self.metadata}

    def __repr__(self) -> str:
        return (f"Hit(score={self.score:.4f}, item_id={self.item_id!r}, object_id={self.object_id!r}, "
                f"modality={self.modality!r})")


@dataclass
class SearchResult:
    """Hits, best first, and why there are fewer than asked for (if there are)."""

    hits: list[Hit]
    k: int                                    # what was asked for
    reason: str | None = None                 # e.g. "no item matches the filter (...)"
    filter: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self):
        return iter(self.hits)

    def __getitem__(self, i):
        return self.hits[i]

    def to_dict(self) -> dict:
        return {"k": self.k, "returned": len(self.hits), "reason": self.reason,
                "filter": self.filter, "hits": [h.to_dict() for h in self.hits]}
