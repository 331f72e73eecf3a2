"""The index's rows: what each stored vector is, and which rows are still alive.

A row number is a vector's FAISS id (int64, never reused). Each row has metadata columns
(which object, which modality, where on the sky, class, credit, preview path, ...) and an
``extra`` dict for anything else given with it. Deleting a row keeps its number taken and
marks it dead. Filters become boolean masks over the rows here, from numpy copies of the
columns that are cached until the next change.
"""

from __future__ import annotations

import json
from typing import Iterable, Mapping

import numpy as np

from astrovlm.errors import BadArgumentError, NotFoundError, UnreadableError
from astrovlm.index.filters import MODALITIES, SkyFilter, cone_mask

# Metadata columns and their empty values. Anything else given with a vector is kept in "extra".
STR_COLUMNS = ("item_id", "object_id", "name", "modality", "source", "coarse_class", "otype",
               "credit", "license", "preview", "caption", "split")
FLOAT_COLUMNS = ("ra_deg", "dec_deg")
BOOL_COLUMNS = ("simulated",)
COLUMNS = STR_COLUMNS + FLOAT_COLUMNS + BOOL_COLUMNS
META_COLUMNS = tuple(c for c in COLUMNS if c != "item_id")
_MODALITY_CODE = {m: i for i, m in enumerate(MODALITIES)}


def column_defaults() -> dict:
    d = {c: None for c in STR_COLUMNS + FLOAT_COLUMNS}
    d["simulated"] = False
    return d


def check_metadata(metadata, n: int):
    """Metadata (a list of row dicts, or a dict of columns) -> (columns dict of lists,
    extras list), checked: item ids, modality names, positions in range, JSON-able extras."""
    defaults = column_defaults()
    if isinstance(metadata, Mapping):
        lengths = {k: len(v) for k, v in metadata.items()}
        if any(v != n for v in lengths.values()):
            raise BadArgumentError(f"metadata columns must each have {n} entries, got {lengths}",
                                   field="metadata")
        cols = {c: list(metadata[c]) if c in metadata else [defaults[c]] * n for c in COLUMNS}
        others = [k for k in metadata if k not in COLUMNS]
        extra = [{k: metadata[k][i] for k in others} or None for i in range(n)] if others else [None] * n
    else:
        rows = list(metadata)
        if len(rows) != n:
            raise BadArgumentError(f"{n} vectors but {len(rows)} metadata rows", field="metadata")
        cols = {c: [r.get(c, defaults[c]) for r in rows] for c in COLUMNS}
        extra = [{k: v for k, v in r.items() if k not in COLUMNS} or None for r in rows]
    for i, item_id in enumerate(cols["item_id"]):
        if not isinstance(item_id, str) or not item_id.strip():
            raise BadArgumentError(f"row {i} has no item_id (a non-empty string)", field="item_id")
    bad = set(cols["modality"]) - set(MODALITIES)
    if bad:
        raise BadArgumentError(f"unknown modality {sorted(map(str, bad))[0]!r} "
                               f"(choose from {', '.join(MODALITIES)})", field="modality")
    for c in STR_COLUMNS:
        if c not in ("item_id", "modality"):
            cols[c] = [None if v is None else str(v) for v in cols[c]]
    for c in FLOAT_COLUMNS:
        vals = np.array([np.nan if v is None else v for v in cols[c]], dtype="float64")
        lo, hi = (0.0, 360.0) if c == "ra_deg" else (-90.0, 90.0)
        out = np.isfinite(vals) & ((vals < lo) | (vals > hi))
        if out.any():
            raise BadArgumentError(f"row {int(np.flatnonzero(out)[0])} has {c}={vals[out][0]} "
                                   f"outside [{lo}, {hi}]", field=c)
        cols[c] = [v if v == v else None for v in vals.tolist()]  # missing -> None
    cols["simulated"] = [bool(v) for v in cols["simulated"]]
    for e in extra:
        if e:
            try:
                json.dumps(e)
            except TypeError as exc:
                raise BadArgumentError(f"extra metadata must be JSON-able ({exc})", field="metadata") from None
    return cols, extra


class RowStore:
    """Item ids, object ids and metadata columns by row, the alive mask, and filter masks."""

    def __init__(self):
        self.cols: dict[str, list] = {c: [] for c in COLUMNS}
        self.extra: list[dict | None] = []
        self.alive: list[bool] = []
        self.row_of: dict[str, int] = {}   # live item id -> row
        self._np: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.row_of)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.row_of

    @property
    def next_row(self) -> int:
        """The row number the next added vector gets (dead rows keep theirs)."""
        return len(self.alive)

    @property
    def item_ids(self) -> list:
        """The item-id column, by row (dead rows included)."""
        return self.cols["item_id"]

    def value(self, column: str, row: int):
        return self.cols[column][row]

    def row(self, item_id: str) -> int:
        try:
            return self.row_of[item_id]
        except KeyError:
            raise NotFoundError(f"item '{item_id}' is not in the index", field="item_id") from None

    def meta(self, row: int) -> dict:
        cols = self.cols
        meta = {c: cols[c][row] for c in META_COLUMNS}
        extra = self.extra[row]
        if extra:
            meta.update(extra)
        return meta

    def rows_alive(self) -> np.ndarray:
        """Row numbers of the live vectors, ascending (int64)."""
        return np.flatnonzero(self.alive_mask()).astype("int64")

    def alive_mask(self) -> np.ndarray:
        return self.array("_alive")

    def counts(self) -> dict:
        """Live vectors per modality."""
        mods, alive = self.array("modality"), self.alive_mask()
        return {m: int(np.count_nonzero(alive & (mods == i))) for i, m in enumerate(MODALITIES)}

    def items_of_object(self, object_id: str, modality=None) -> list[str]:
        f = SkyFilter.make(modality=modality)
        mask = self.alive_mask() & (self.array("object_id") == str(object_id))
        if f.modality:
            mask &= np.isin(self.array("modality"), [_MODALITY_CODE[m] for m in f.modality])
        items = self.cols["item_id"]
        return [items[r] for r in np.flatnonzero(mask)]

    def object_ids(self) -> list[str]:
        ids = self.array("object_id")[self.alive_mask()]
        return sorted({o for o in ids.tolist() if o})

    def object_names(self) -> list[tuple[str, str | None]]:
        """(object id, name) of every live row that has an object id, in row order."""
        names, objects = self.cols["name"], self.cols["object_id"]
        return [(objects[r], names[r]) for r in np.flatnonzero(self.alive_mask()) if objects[r]]

    def mask(self, f: SkyFilter) -> np.ndarray:
        """True for the live rows the filter keeps."""
        mask = self.alive_mask().copy()
        if f.modality:
            mask &= np.isin(self.array("modality"), [_MODALITY_CODE[m] for m in f.modality])
        if f.object_type:
            t = f.object_type
            coarse, otype = self.array("coarse_class"), self.array("otype")
            mask &= (coarse == t) | (np.char.find(otype, t) >= 0)
        if f.center is not None:
            mask &= cone_mask(self.array("ra_deg"), self.array("dec_deg"), f.center, f.radius)
        if f.exclude_objects:
            mask &= ~np.isin(self.array("object_id"), list(f.exclude_objects))
        return mask

    def array(self, name: str) -> np.ndarray:
        """A column as a numpy array (cached until the next change); "_alive" is the alive mask,
        "modality" comes as int8 codes (the position in ``MODALITIES``)."""
        arr = self._np.get(name)
        if arr is None:
            if name == "_alive":
                arr = np.array(self.alive, dtype=bool)
            elif name == "modality":
                arr = np.array([_MODALITY_CODE.get(m, -1) for m in self.cols["modality"]], dtype="int8")
            elif name in FLOAT_COLUMNS:
                arr = np.array(self.cols[name], dtype="float64")
            elif name in ("coarse_class", "otype"):
                arr = np.array([(v or "").lower() for v in self.cols[name]], dtype=str)
            else:
                arr = np.array([v or "" for v in self.cols[name]], dtype=object)
            self._np[name] = arr
        return arr

    # ------------------------------------------------------------------ changing
    def refuse_present(self, item_ids: Iterable[str]) -> None:
        """Raise if an item id is already live here, or given twice."""
        seen = set()
        for item_id in item_ids:
            if item_id in self.row_of or item_id in seen:
                raise BadArgumentError(f"item '{item_id}' is already in the index (use upsert to replace it)",
                                       field="item_id")
            seen.add(item_id)

    def append(self, cols: dict, extra: list) -> np.ndarray:
        """Append checked rows (``check_metadata``'s output); returns their row numbers."""
        start, n = self.next_row, len(extra)
        for c in COLUMNS:
            self.cols[c].extend(cols[c])
        self.extra.extend(extra)
        self.alive.extend([True] * n)
        self.row_of.update(zip(cols["item_id"], range(start, start + n)))
        self.changed()
        return np.arange(start, start + n, dtype="int64")

    def kill(self, item_ids: Iterable[str], missing_ok: bool = False) -> np.ndarray:
        """Mark items dead; returns their row numbers."""
        if isinstance(item_ids, str):
            item_ids = [item_ids]
        item_ids = list(dict.fromkeys(item_ids))
        unknown = [i for i in item_ids if i not in self.row_of]
        if unknown and not missing_ok:
            shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise NotFoundError(f"{len(unknown)} item(s) not in the index: {shown}", field="item_id")
        rows = np.array([self.row_of.pop(i) for i in item_ids if i in self.row_of], dtype="int64")
        for r in rows.tolist():
            self.alive[r] = False
        self.changed()
        return rows

    def changed(self) -> None:
        self._np.clear()

    # ------------------------------------------------------------------ on disk
    def to_table(self):
        """The live rows as a pyarrow table: ``row`` + the columns + ``extra`` (JSON)."""
        import pyarrow as pa

        live = self.rows_alive()
        data = {"row": pa.array(live, type=pa.int64())}
        for c in STR_COLUMNS:
            col = self.cols[c]
            data[c] = pa.array([col[r] for r in live], type=pa.string())
        for c in FLOAT_COLUMNS:
            data[c] = pa.array(self.array(c)[live], type=pa.float64(), from_pandas=True)  # NaN -> null
        data["simulated"] = pa.array([bool(self.cols["simulated"][r]) for r in live], type=pa.bool_())
        data["extra"] = pa.array([json.dumps(self.extra[r]) if self.extra[r] else None for r in live],
                                 type=pa.string())
        return pa.table(data)

    @classmethod
    def from_columns(cls, data: dict, next_row: int, where=None) -> "RowStore":
        """Rows back from ``to_table``'s columns (a dict of lists). ``next_row``: the row the
        next vector gets (rows deleted last are not in the table). ``where``: for errors."""
        missing = [c for c in ("row", *COLUMNS) if c not in data]
        if missing:
            raise UnreadableError(f"metadata lacks column(s) {', '.join(missing)}", path=where)
        self = cls()
        rows = data["row"]
        n_rows = max(next_row, (max(rows) + 1) if rows else 0)
        for c in FLOAT_COLUMNS:
            data[c] = [None if (v is not None and v != v) else v for v in data[c]]
        if rows == list(range(n_rows)):
            # Nothing was ever deleted (the usual case): the columns are the rows, in order.
            self.cols = {c: data[c] for c in COLUMNS}
            self.alive = [True] * n_rows
        else:
            defaults = column_defaults()
            self.cols = {c: [defaults[c]] * n_rows for c in COLUMNS}
            self.alive = [False] * n_rows
            for c in COLUMNS:
                col = self.cols[c]
                for r, v in zip(rows, data[c]):
                    col[r] = v
            for r in rows:
                self.alive[r] = True
        self.extra = [None] * n_rows
        for r, e in zip(rows, data.get("extra") or [None] * len(rows)):
            if e:
                self.extra[r] = json.loads(e)
        self.row_of = dict(zip(data["item_id"], rows))
        if len(self.row_of) != len(rows):
            raise UnreadableError("metadata has duplicate item ids", path=where)
        return self

    @classmethod
    def of_columns(cls, cols: dict, extra: list) -> "RowStore":
        """Rows 0..n-1 from checked columns (``check_metadata``'s output)."""
        self = cls()
        self.append(cols, extra)
        return self
