"""Turn a user's folder of files into an astrovlm dataset (the form in ``records``).

Each file is sniffed and read with the readers; what it holds lands in the dataset:

- images (FITS, PNG, JPEG) -> ``images/USER-IMG-nnnn.fits`` (or ``.png``, ``.jpg``): the
  file itself, copied, is the record's path. Its display is made by whoever shows it, the
  way any FITS image is shown (asinh stretch, north up: ``Cutout.to_rgb``; the app caches
  its thumbnails), and the encoder reads the same pixels.
- spectra (FITS in any layout the readers know, text, tables) -> ``spectra/USER-SPEC-nnnn.fits``
  written with ``Spectrum.to_fits`` (WAVELENGTH [Angstrom], FLUX, IVAR).
- catalogs -> ``tables/<name>.parquet``; their rows name the objects found at their positions.
- text and Markdown -> passages (paragraph chunks), linked to an object when the file is
  named after one (``m51.md`` beside ``m51.fits``).

Files of the same object are grouped into one ``SkyObject`` (ids ``USER-0001``...) by sky
position (friends-of-friends within ``radius``: FITS WCS centre, header RA/Dec) and by the
OBJECT keyword. Users' data has no train/val/test split: every record is "train" (the
split of the sample sky is for training astrovlm; ingested data is searched, not learned from).

Each file is opened and parsed once: the sniff that decides its kind hands the reader the
open FITS file (``readers.sniffed``). Files are read and written in worker
processes (one per CPU not wholly busy; one for a folder of under 32 files). A record's number is
its file's place in the folder's sorted listing (``USER-IMG-0007`` is the 7th file; the
numbers of bad files, catalogs and texts are not used by a record), so a worker writes each
file under its final name and the dataset does not depend on the number of workers. Each
file has a budget: ``file_timeout`` seconds and
``memory_mb`` of address space (``RLIMIT_AS`` in the worker); a file that overruns it is
reported ("took longer than 60 s", "needs more than 1536 MB"), what it wrote is removed and
its worker is replaced. Bad files are skipped and reported at the end; the rest is written.

Only regular files are read. Symbolic links are not followed (``follow_links=True``, the
CLI's ``--follow-links``, follows links to files that stay inside the folder; a link out of
the folder, a link to a folder, a FIFO, a device or a socket is never read): each one
skipped is listed with the bad files, with its reason. The dataset is written by the one
dataset writer (``astrovlm.data.writer``: the same checksums and content hash as the sample
sky, so ``astrovlm data info --verify`` checks it) and swapped in at the end, so an
interrupted ingest leaves the previous one intact.
"""

from __future__ import annotations

import math
import os
import re
import signal
import stat
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np

from astrovlm.data.crossmatch import check_radius, crossmatch, group_by_position
from astrovlm.data.names import is_generic_name, name_key
from astrovlm.data.readers import (
    catalog_coords, read_catalog, read_image, read_spectrum, read_text, sniffed)
from astrovlm.data.readers.catalog import CLASS_COLUMNS, NAME_COLUMNS, REDSHIFT_COLUMNS, find_column
from astrovlm.data.records import (
    IMAGE_CLASSES, SPECTRUM_CLASSES, ImageRecord, Passage, SkyObject, SpectrumRecord)
from astrovlm.data.writer import DatasetWriter
from astrovlm.errors import AstroVLMError, BadArgumentError, NotFoundError, UnreadableError

SPLIT = "train"
SPLIT_NOTE = ("users' data has no train/val/test split; every ingested record is 'train' "
              "(it is searched and asked about, not used to evaluate astrovlm)")
POOL_MIN_FILES = 32   # fewer files than this are read in this process: no pool to start
IN_FLIGHT = 2         # jobs sent ahead to each worker: it never waits on this process
PASSAGE_CHARS = 1200
SOURCE = "user data (astrovlm data ingest)"
_SKIP_FILES = {".ds_store", "thumbs.db", "desktop.ini"}
FILE_TIMEOUT_S = 60.0   # per-file time budget
MEMORY_MB = 1536        # per-file address-space budget of a worker, above what it holds at start
_MEMORY_MB = None       # the budget in force in this (worker) process, for the message


@dataclass
class _Item:
    """What one good file contributed: enough to group it, without keeping its pixels."""

    rel: str
    kind: str
    coord: tuple | None = None      # (RA, Dec) in ICRS degrees, or None
    name: str | None = None
    record: object = None           # ImageRecord / SpectrumRecord (object_id filled later)
    meta: dict = field(default_factory=dict)
    digests: dict = field(default_factory=dict)   # their sha256, taken as they were written


def _group_key(name: str | None) -> str:
    """The name key of an OBJECT card, or '' for one that names a frame type ("flat", "sky")."""
    return "" if is_generic_name(name) else name_key(name)


def coarse_spectral_class(meta: dict) -> str:
    """One of SPECTRUM_CLASSES from SDSS-style CLASS/SUBCLASS/SPEC_CLN, or 'unknown'."""
    cls = str(meta.get("CLASS", "") or "").strip().upper()
    sub = str(meta.get("SUBCLASS", "") or meta.get("SPTYPE", "") or meta.get("MKTYPE", "")
              or "").strip().upper()
    cln = meta.get("SPEC_CLN")
    if cls in ("QSO", "QUASAR") or cln in (3, 4):
        return "quasar"
    if cls == "GALAXY" or cln in (2, 7):
        return "galaxy"
    if sub.startswith(("WD", "D")) and cls in ("STAR", ""):
        return "white dwarf"
    if sub[:1] in ("O", "B") and cls in ("STAR", ""):
        return "O/B star"
    if sub[:1] in ("A", "F", "G", "K", "M") and cls in ("STAR", ""):
        return f"{sub[0]} star"
    return "unknown"


def _coarse_object_class(otype: str) -> str:
    t = otype.lower()
    for cls in IMAGE_CLASSES + SPECTRUM_CLASSES:
        if cls in t:
            return cls
    if t in ("qso", "agn") or "quasar" in t:
        return "quasar"
    if "star" in t:
        return "star"
    if "supernova" in t or t in ("sn", "snia", "sn ia"):
        return "supernova"
    return "other"


def _walk(folder: Path, out: Path, follow_links: bool = False) -> tuple[list[Path], list[dict]]:
    """The regular files under ``folder`` to read (hidden ones and the output left out), and
    ``[{"path", "error"}]`` for what is refused: symbolic links (unless ``follow_links``, and
    then only those to files inside the folder: such a file is read through its target),
    links to folders (never descended), FIFOs, devices and sockets (never opened)."""
    files, refused = [], []

    def refuse(path: Path, why: str) -> None:
        refused.append({"path": path.relative_to(folder).as_posix(), "error": f"{path}: {why}"})

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            path = here / name
            if name.startswith(".") or path == out:
                continue  # hidden, or the dataset being replaced lives inside the folder
            if path.is_symlink():
                refuse(path, "a symbolic link to a folder: not followed")
            else:
                keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            path = here / name
            if name.startswith(".") or name.lower() in _SKIP_FILES:
                continue
            try:
                mode = os.lstat(path).st_mode
            except OSError as exc:
                refuse(path, f"cannot be read ({exc.strerror})")
                continue
            if stat.S_ISLNK(mode):
                target = Path(os.path.realpath(path))
                if not follow_links:
                    refuse(path, f"a symbolic link (to {target}): not followed (links are not "
                                 "followed by default; --follow-links follows those inside the folder)")
                elif folder not in target.parents:
                    refuse(path, f"a symbolic link out of the folder (to {target}): not followed")
                elif not target.is_file():
                    refuse(path, f"a symbolic link to something that is not a regular file ({target})")
                elif not (target == out or out in target.parents):
                    files.append(path)
            elif not stat.S_ISREG(mode):
                kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                        else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special")
                refuse(path, f"{kind} file, not a regular file: not read")
            else:
                files.append(path)
    files.sort()
    refused.sort(key=lambda b: b["path"])
    return files, refused


def _unique(w: DatasetWriter, folder: str, stem: str, suffix: str) -> str:
    rel, n = f"{folder}/{stem}{suffix}", 2
    while w.path(rel).exists():
        rel, n = f"{folder}/{stem}-{n}{suffix}", n + 1
    return rel


def _full_suffix(path: Path) -> str:
    name = path.name.lower()
    for s in (".fits.gz", ".fit.gz", ".fts.gz"):
        if name.endswith(s):
            return s
    return path.suffix.lower() or ".dat"


def ingest_folder(folder: str | Path, out: str | Path, radius=5 * u.arcsec,
                  progress: bool = True, workers: int | None = None, follow_links: bool = False,
                  file_timeout: float | None = FILE_TIMEOUT_S,
                  memory_mb: int | None = MEMORY_MB) -> dict:
    """Ingest every file under ``folder`` into a dataset at ``out``; return a report
    ``{"ok": n, "bad": [{"path", "error"}], "images": ..., "spectra": ..., ...}``.

    ``workers``: processes that read and write the files (default: one per CPU not wholly busy,
    ``workers_default``). The dataset is the same whatever the number.
    ``file_timeout`` (seconds) and ``memory_mb`` (address space) are each file's budget;
    both None with ``workers=1`` reads the files in this process, without budgets.
    ``follow_links``: read links to files inside the folder (never out of it)."""
    from tqdm.auto import tqdm

    radius = check_radius(radius)
    workers = workers_default() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise BadArgumentError(f"workers must be a whole number >= 1, not {workers!r}", field="workers")
    folder, out = Path(folder).expanduser().resolve(), Path(out).expanduser().resolve()
    if not folder.is_dir():
        raise NotFoundError("is not a folder", path=folder)
    if out == folder or out in folder.parents:
        raise BadArgumentError("the output must not be the input folder or a folder above it",
                               path=out)
    for name, value in (("file_timeout", file_timeout), ("memory_mb", memory_mb)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not value > 0):
            raise BadArgumentError(f"must be a positive number or None, not {value!r}", field=name)
    files, refused = _walk(folder, out, follow_links)
    if not files and not refused:
        raise NotFoundError("folder has no files to ingest", path=folder)
    t0 = time.perf_counter()
    bad: list[dict] = list(refused)
    items: list[_Item] = []
    catalogs: list[dict] = []
    texts: list[tuple[str, str]] = []
    with DatasetWriter(out) as w:
        jobs = [(k, Path(os.path.realpath(path)) if path.is_symlink() else path,
                 path.relative_to(folder).as_posix(), w.files) for k, path in enumerate(files)]
        budget = (file_timeout, memory_mb)
        for kind, rel, got in tqdm(_run(jobs, workers, budget), total=len(jobs), desc="ingest",
                                   unit="file", disable=not progress):
            if kind == "bad":
                bad.append({"path": rel, "error": got})
            elif kind in ("image", "spectrum"):
                w.files.add_digests(got.digests)
                got.digests = {}
                items.append(got)
            elif kind == "catalog":
                catalogs.append(_ingest_catalog(got, rel, w))
            else:
                texts.append((rel, got))
        bad.sort(key=lambda b: b["path"])
        n_ok = len(items) + len(catalogs) + len(texts)
        if n_ok == 0:
            raise UnreadableError(f"no readable files ({len(bad)} bad; first: "
                                  f"{bad[0]['error'] if bad else 'none'})", path=folder)
        _remove_strays(w.files, items)
        objects = _group(items, catalogs, radius)
        passages = _passages(texts, objects, items)
        report = {
            "ok": n_ok, "bad": bad,
            "images": sum(i.kind == "image" for i in items),
            "spectra": sum(i.kind == "spectrum" for i in items),
            "catalogs": len(catalogs), "texts": len(texts),
            "objects": len(objects), "passages": len(passages),
            "catalog_rows": int(sum(c["rows"] for c in catalogs)),
            "objects_named_by_catalog": int(sum(1 for o in objects if "catalog" in (o.notes or ""))),
            "radius_arcsec": float(radius.to_value(u.arcsec)),
            "split": SPLIT, "split_note": SPLIT_NOTE,
            "source_folder": str(folder), "out": str(out),
            "budget": {"file_timeout_s": file_timeout, "memory_mb": memory_mb},
            "links": "followed inside the folder" if follow_links else "not followed",
        }
        manifest = {
            "kind": "user ingest", "source": SOURCE, "source_folder": str(folder),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "counts": {k: report[k] for k in ("images", "spectra", "catalogs", "texts", "objects",
                                              "passages", "catalog_rows")},
            "bad_files": len(bad), "split_note": SPLIT_NOTE,
            "tables": [c["table"] for c in catalogs],
            "credits": "the user's own files; see each record's 'source'",
        }
        w.finish(objects, [i.record for i in items if i.kind == "image"],
                 [i.record for i in items if i.kind == "spectrum"], passages, manifest)
        report["seconds"] = round(time.perf_counter() - t0, 3)
        w.write_json("summary.json", report)
    return report


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers_default() -> int:
    """Worker processes for ingest: the CPUs not wholly busy (CPUs less the 1-minute load
    average, rounded up), at least 1. A CPU busy part of the time still lends a worker its
    idle part (measured on 2 CPUs with another process spinning: 2 workers 662 files/s, 1
    worker 514), and the load average counts this process's own start-up; where every CPU
    is busy, more processes would only take turns with the other work."""
    n = cpus()
    try:
        idle = n - os.getloadavg()[0]
    except (OSError, AttributeError):  # no load average on this system
        idle = n
    return max(1, min(n, math.ceil(idle)))


def _run(jobs: list, workers: int, budget: tuple = (None, None)):
    """``_one_file`` over the jobs, results in the jobs' order: in ``workers`` processes (one
    for fewer than ``POOL_MIN_FILES`` files), each file under the ``(seconds, MB)`` budget;
    in this process when there is neither a budget nor more than one worker."""
    if workers <= 1 and budget == (None, None):
        yield from map(_one_file, jobs)
        return
    if len(jobs) < POOL_MIN_FILES:
        workers = 1
    yield from _BudgetedWorkers(min(workers, len(jobs)), *budget).map(jobs)


class _BudgetedWorkers:
    """Worker processes that read one file at a time, each under a deadline and an
    address-space limit; a worker whose file overruns either is replaced."""

    def __init__(self, n: int, seconds: float | None, memory_mb: int | None):
        import multiprocessing

        # fork where there is one: a worker starts with astrovlm and astropy already imported
        methods = multiprocessing.get_all_start_methods()
        self.context = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.n, self.seconds, self.memory_mb = n, seconds, memory_mb

    def _start(self):
        ours, theirs = self.context.Pipe()
        proc = self.context.Process(target=_worker_main, args=(theirs, self.memory_mb), daemon=True)
        proc.start()
        theirs.close()
        return proc, ours

    def map(self, jobs: list):
        """Results in the jobs' order. Each worker holds up to ``IN_FLIGHT`` jobs, so it
        starts its next file while this process takes in the last one's answer (one at a
        time, a worker waited on this process for every file); a file's time budget runs
        from when its worker reaches it."""
        from multiprocessing.connection import wait

        pending, results, next_out = deque(range(len(jobs))), {}, 0
        workers = [self._start() for _ in range(self.n)]
        queued: dict = {}    # conn -> deque of its job indices, the first one being read
        started: dict = {}   # conn -> when its worker reached its first job
        procs = {conn: proc for proc, conn in workers}
        for _, conn in workers:
            queued[conn] = deque()

        def replace(conn) -> None:
            """The worker on ``conn`` is killed (its first job overran or killed it); the
            jobs queued behind it go back to the front of the line, in order."""
            proc, ks = procs.pop(conn), queued.pop(conn)
            ks.popleft()  # the job that overran: reported, not retried
            pending.extendleft(reversed(ks))
            started.pop(conn, None)
            new_proc, new_conn = self._replace(proc, conn)
            procs[new_conn], queued[new_conn] = new_proc, deque()

        try:
            while next_out < len(jobs):
                for depth in range(1, IN_FLIGHT + 1):  # fill every worker to one, then two
                    for conn in list(queued):
                        if pending and len(queued[conn]) < depth:
                            k = pending.popleft()
                            conn.send(jobs[k])
                            if not queued[conn]:
                                started[conn] = time.monotonic()
                            queued[conn].append(k)
                while next_out in results:
                    yield results.pop(next_out)
                    next_out += 1
                busy = [conn for conn, ks in queued.items() if ks]
                if not busy:
                    continue
                wait_s = None
                if self.seconds is not None:
                    wait_s = max(0.0, min(started[c] for c in busy) + self.seconds - time.monotonic())
                for conn in wait(busy, timeout=wait_s):
                    k = queued[conn][0]
                    try:
                        result = conn.recv()
                    except (EOFError, OSError):
                        results[k] = ("bad", jobs[k][2], self._died(jobs[k], procs[conn]))
                        replace(conn)
                        continue
                    if result[0] == "interrupt":
                        raise KeyboardInterrupt
                    results[k] = result
                    if result[0] == "bad" and result[2].endswith(_OVERRUN):
                        replace(conn)
                        continue
                    queued[conn].popleft()
                    started[conn] = time.monotonic()  # it reads the next one now
                now = time.monotonic()
                for conn in [c for c, ks in queued.items() if ks]:
                    if self.seconds is not None and now >= started[conn] + self.seconds:
                        k = queued[conn][0]
                        results[k] = ("bad", jobs[k][2],
                                      f"{jobs[k][1]}: took longer than {self.seconds:g} s (the "
                                      f"per-file time budget){_OVERRUN}")
                        replace(conn)
            while next_out in results:
                yield results.pop(next_out)
                next_out += 1
        finally:  # done, or stopped (Ctrl-C, an error): no worker outlives the ingest
            for conn, proc in procs.items():
                _stop(proc, conn, kill=bool(queued.get(conn)))

    def _died(self, job, proc) -> str:
        proc.join(5)
        code = proc.exitcode
        how = (f"signal {signal.Signals(-code).name}" if code is not None and code < 0
               and -code in signal.valid_signals() else f"exit status {code}")
        hint = f"; it may need more than {self.memory_mb:g} MB" if self.memory_mb else ""
        return f"{job[1]}: the reader's process died ({how}){hint}{_OVERRUN}"

    def _replace(self, proc, conn):
        """Kill a worker (its file overran its budget) and start another. What it wrote of the
        file is removed with every file no record names (``_remove_strays``)."""
        _stop(proc, conn, kill=True)
        return self._start()


_OVERRUN = "; skipped, its worker replaced"


def _stop(proc, conn, kill: bool = False) -> None:
    if not kill:
        try:
            conn.send(None)  # done: the worker returns
        except (OSError, ValueError):
            kill = True
    if not kill:
        proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join(5)
    conn.close()


def _worker_main(conn, memory_mb) -> None:
    """A worker: files from ``conn`` one at a time, ``_one_file``'s answer back. Ctrl-C is
    the parent's to handle (it stops the workers); memory beyond the budget is refused."""
    global _MEMORY_MB
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if memory_mb:
        _limit_address_space(memory_mb)
        _MEMORY_MB = memory_mb
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            result = _one_file(job)
        except KeyboardInterrupt:
            conn.send(("interrupt", job[2], None))
            return
        except Exception as exc:  # noqa: BLE001  (a reader bug: report it, keep going)
            result = ("bad", job[2], f"{job[1]}: unexpected {type(exc).__name__}: {exc}")
        try:
            conn.send(result)
        except MemoryError:
            conn.send(("bad", job[2], f"{job[1]}: {_memory_message()}"))
            return


def _die_with_parent() -> None:
    """On Linux, a worker gets SIGKILL when the ingest process dies (``kill -9`` of it), so
    that it does not finish a file into a folder nobody will swap in."""
    try:
        import ctypes

        import multiprocessing

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        parent = multiprocessing.parent_process()
        if parent is not None and os.getppid() != parent.pid:  # it died before the prctl
            os._exit(1)
    except (OSError, AttributeError):
        pass


def _limit_address_space(memory_mb: float) -> None:
    """``RLIMIT_AS`` at what this process holds now plus ``memory_mb`` (Linux; elsewhere the
    limit is not enforced and only the time budget holds)."""
    try:
        import resource

        with open("/proc/self/statm") as fh:
            held = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = held + int(memory_mb * 2**20)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _memory_message() -> str:
    if _MEMORY_MB:
        return f"needs more than {_MEMORY_MB:g} MB (the per-file memory budget){_OVERRUN}"
    return "ran out of memory"


def _one_file(job) -> tuple[str, str, object]:
    """Read one file and write what it holds (``(kind, rel, what)``): an image or spectrum
    is written under its record's id (``_record_id``: the file's place ``k`` in the listing);
    a catalog's table and a text's words come back to be written here. A bad file is
    ``("bad", rel, its error)``, and leaves nothing behind."""
    k, path, rel, files = job
    written: list[str] = []
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # changed since the walk
            return "bad", rel, f"{path}: no longer a regular file: not read"
        with sniffed(path) as found:  # the file is opened once, here
            if found.kind in ("image", "spectrum"):
                ingest = _ingest_image if found.kind == "image" else _ingest_spectrum
                item = ingest(found, rel, files, _record_id(found.kind, k), written)
                item.digests = files.take_digests(written)
                return found.kind, rel, item
            if found.kind == "catalog":
                return "catalog", rel, (path, read_catalog(path, hdul=found.hdul, table=found.table))
            return "text", rel, read_text(path)
    except AstroVLMError as exc:
        _remove(files, written)
        return "bad", rel, str(exc)
    except MemoryError:
        _remove(files, written)
        return "bad", rel, f"{path}: {_memory_message()}"
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        # a reader bug or an exotic file must not stop a batch; report it plainly
        _remove(files, written)
        return "bad", rel, f"{path}: unexpected {type(exc).__name__}: {exc}"
    except BaseException:
        _remove(files, written)
        raise


def _remove(files, written: list[str]) -> None:
    for rel in written:
        (files.root / rel).unlink(missing_ok=True)


def _record_id(kind: str, k: int) -> str:
    """The id of the record the ``k``-th file of the listing (from 0) makes."""
    return f"USER-{'IMG' if kind == 'image' else 'SPEC'}-{k + 1:04d}"


def _remove_strays(files, items: list[_Item]) -> None:
    """Remove what no record names from images/ and spectra/: the remains of a file whose
    worker was killed or died mid-write."""
    kept = {item.record.path for item in items}
    for folder in ("images", "spectra"):
        for path in (files.root / folder).glob("*"):
            if path.is_file() and f"{folder}/{path.name}" not in kept:
                path.unlink()


def _ingest_image(found, rel: str, w, image_id: str, written: list) -> _Item:
    # the record is the file itself, copied: a FITS image's display rendering is made when
    # something first shows it (the app's previews, cached) and the encoder reads the FITS,
    # stretched as every FITS image is; rendering a PNG of each at ingest doubled its CPU
    cutout = read_image(found.path, hdul=found.hdul)
    written.append(f"images/{image_id}{_full_suffix(found.path)}")
    target = w.copy(found.path, written[-1])
    coord = cutout.radec_deg  # ICRS degrees, or None
    fov = cutout.fov()
    record = ImageRecord(
        image_id=image_id, object_id=None, path=target,
        credit="user's own data", license="", source=f"user file: {rel}",
        ra_deg=None if coord is None else coord[0], dec_deg=None if coord is None else coord[1],
        fov_deg=None if fov is None else float(fov.to_value(u.deg)),
        simulated=False, split=SPLIT)
    return _Item(rel=rel, kind="image", coord=coord, name=cutout.name, record=record)


def _ingest_spectrum(found, rel: str, w, spectrum_id: str, written: list) -> _Item:
    spectrum = read_spectrum(found.path, hdul=found.hdul, table=found.table)
    spectrum.meta.setdefault("ORIGFILE", Path(rel).name)
    written.append(f"spectra/{spectrum_id}.fits")
    path = w.write_spectrum(spectrum, written[-1])
    meta = spectrum.meta
    coord = None
    if meta.get("RA") is not None and meta.get("DEC") is not None:
        coord = (float(meta["RA"]), float(meta["DEC"]))  # the readers give ICRS degrees
    z = _finite(meta.get("Z"))
    snr = None
    if spectrum.ivar is not None:
        good = spectrum.mask
        snr = float(np.median(np.abs(spectrum.flux[good]) * np.sqrt(spectrum.ivar[good])))
    record = SpectrumRecord(
        spectrum_id=spectrum_id, object_id=None, path=path,
        spectral_class=coarse_spectral_class(meta),
        subclass=str(meta.get("SUBCLASS", "") or ""), redshift=z if z is not None else 0.0,
        snr=snr, credit="user's own data", source=f"user file: {rel}", simulated=False,
        split=SPLIT)
    name = meta.get("OBJECT") or meta.get("OBJNAME")
    return _Item(rel=rel, kind="spectrum", coord=coord, name=str(name) if name else None,
                 record=record, meta={"Z": z, "CLASS": meta.get("CLASS")})


def _finite(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _ingest_catalog(read, rel: str, w: DatasetWriter) -> dict:
    path, table = read
    coords = None
    if table.meta.get("ra_column"):
        try:
            coords = catalog_coords(table, path=path)
        except AstroVLMError:
            coords = None  # the table is still kept; it just names no object by position
    target_rel = _unique(w, "tables", re.sub(r"[^\w\-]+", "_", Path(rel).stem) or "catalog", ".parquet")
    target = w.path(target_rel)
    clean = table.copy(copy_data=False)
    clean.meta = {"source_file": rel}
    for name in clean.colnames:
        col = clean[name]
        if col.dtype.kind == "O":
            clean[name] = [str(v) for v in col]
    try:
        clean.write(target, format="parquet")
    except Exception as exc:  # pyarrow refuses some column types; say which file
        raise UnreadableError(f"catalog could not be written as Parquet ({type(exc).__name__}: "
                            f"{str(exc)[:160]})", path=path) from None
    name_col = find_column(table, NAME_COLUMNS)
    by_name = {}
    if name_col is not None:
        for k, value in enumerate(table[name_col]):
            by_name.setdefault(_group_key(str(value)), k)
    by_name.pop("", None)
    return {"rel": rel, "table": target_rel, "rows": len(table), "data": table,
            "coords": coords, "by_name": by_name}


def _group(items: list[_Item], catalogs: list[dict], radius) -> list[SkyObject]:
    """Union files into objects by position (friends-of-friends) and by OBJECT name."""
    from astropy.coordinates import SkyCoord

    n = len(items)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i, j):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    placed = [i for i, it in enumerate(items) if it.coord is not None]
    if placed:
        radec = np.array([items[i].coord for i in placed], dtype=float)
        coords = SkyCoord(radec[:, 0] * u.deg, radec[:, 1] * u.deg, frame="icrs")
        labels = group_by_position(coords, radius)
        first = {}
        for k, lab in enumerate(labels):
            if lab in first:
                union(first[lab], placed[k])
            else:
                first[lab] = placed[k]
    by_name: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        key = _group_key(it.name)
        if key:
            by_name.setdefault(key, []).append(i)
    for members in by_name.values():
        for j in members[1:]:
            a, b = items[members[0]].coord, items[j].coord
            # the same name a degree apart is two targets that share a label, not one object
            if a is None or b is None or _separation_deg(a, b) < 1.0:
                union(members[0], j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    objects = []
    for number, (root, members) in enumerate(sorted(groups.items(), key=lambda kv: kv[1][0]), 1):
        object_id = f"USER-{number:04d}"
        for i in members:
            items[i].record.object_id = object_id
        objects.append(_make_object(object_id, [items[i] for i in members], catalogs, radius))
    return objects


def _separation_deg(a: tuple, b: tuple) -> float:
    """The angle between two (RA, Dec) in degrees (Vincenty's formula, as astropy's)."""
    ra1, dec1, ra2, dec2 = np.radians([a[0], a[1], b[0], b[1]])
    sd, cd = np.sin(ra2 - ra1), np.cos(ra2 - ra1)
    s1, c1, s2, c2 = np.sin(dec1), np.cos(dec1), np.sin(dec2), np.cos(dec2)
    return float(np.degrees(np.arctan2(np.hypot(c2 * sd, c1 * s2 - s1 * c2 * cd), s1 * s2 + c1 * c2 * cd)))


def _mean_radec(coords) -> tuple[float, float]:
    """The mean direction of some (RA, Dec) in degrees (unit vectors summed: safe across RA = 0)."""
    ra = np.radians([c[0] for c in coords])
    dec = np.radians([c[1] for c in coords])
    x, y, z = np.sum(np.cos(dec) * np.cos(ra)), np.sum(np.cos(dec) * np.sin(ra)), np.sum(np.sin(dec))
    return float(np.degrees(np.arctan2(y, x)) % 360.0), float(np.degrees(np.arctan2(z, np.hypot(x, y))))


def _make_object(object_id: str, members: list[_Item], catalogs: list[dict], radius) -> SkyObject:
    names = [m.name for m in members if _group_key(m.name)]
    # fibre positions of spectra are more precise than image centres
    spec_coords = [m.coord for m in members if m.kind == "spectrum" and m.coord is not None]
    all_coords = [m.coord for m in members if m.coord is not None]
    ra = dec = None
    if spec_coords or all_coords:
        ra, dec = _mean_radec(spec_coords or all_coords)
    z_values = [m.meta.get("Z") for m in members if m.meta.get("Z") is not None]
    redshift = float(np.median(z_values)) if z_values else None
    otype, notes = "", []
    classes = [str(m.meta.get("CLASS")).strip() for m in members if m.meta.get("CLASS")]
    if classes:
        otype = classes[0].lower()
    row = _catalog_row(ra, dec, names, catalogs, radius)
    if row is not None:
        cat_name, cat_type, cat_z, cat_file = row
        if cat_name and not names:
            names.append(cat_name)
        elif cat_name and _group_key(cat_name) not in {_group_key(n) for n in names}:
            names.append(cat_name)
        otype = otype or (cat_type or "").lower()
        redshift = redshift if redshift is not None else cat_z
        notes.append(f"named by catalog {cat_file}")
    if ra is None and row is None:
        notes.append("position unknown")
    display = names[0] if names else Path(members[0].rel).stem
    aliases = sorted({n for n in names[1:] if _group_key(n) != _group_key(display)})
    notes.append(f"ingested from {len(members)} file(s): " + ", ".join(m.rel for m in members[:5])
                 + (" ..." if len(members) > 5 else ""))
    return SkyObject(object_id=object_id, name=display, otype=otype or "unknown",
                     coarse_class=_coarse_object_class(otype) if otype else "other",
                     ra_deg=ra, dec_deg=dec, aliases=aliases, redshift=redshift,
                     notes="; ".join(notes), split=SPLIT, source=SOURCE)


def _catalog_row(ra, dec, names, catalogs, radius):
    """(name, type, redshift, table) of the catalog row at this position or with this name."""
    from astropy.coordinates import SkyCoord

    keys = {_group_key(n) for n in names} - {""}
    for cat in catalogs:
        table = cat["data"]
        row = None
        if ra is not None and cat["coords"] is not None:
            pairs = crossmatch(SkyCoord(ra * u.deg, dec * u.deg), cat["coords"], radius, nearest=True)
            if len(pairs):
                row = table[int(pairs.idx_b[0])]
        name_col = find_column(table, NAME_COLUMNS)
        if row is None:
            hit = next((cat["by_name"][k] for k in sorted(keys) if k in cat["by_name"]), None)
            row = None if hit is None else table[hit]
        if row is None:
            continue
        type_col, z_col = find_column(table, CLASS_COLUMNS), find_column(table, REDSHIFT_COLUMNS)
        name = str(row[name_col]).strip() if name_col is not None else None
        otype = str(row[type_col]).strip() if type_col is not None else None
        z = _finite(row[z_col]) if z_col is not None else None
        return name or None, otype or None, z, cat["table"]
    return None


def _passages(texts, objects: list[SkyObject], items: list[_Item]) -> list[Passage]:
    """Paragraph chunks of each text file; linked to an object when the file is named after
    it or after one of its files (``m51.md`` beside ``m51.fits``)."""
    by_key = {}
    for obj in objects:
        for n in [obj.name, *obj.aliases]:
            if _group_key(n):
                by_key.setdefault(_group_key(n), obj.object_id)
    for it in items:
        by_key.setdefault(_group_key(Path(it.rel).stem), it.record.object_id)
    passages = []
    for t, (rel, text) in enumerate(texts, 1):
        title = _title(text) or Path(rel).stem
        object_id = by_key.get(_group_key(Path(rel).stem))
        for k, chunk in enumerate(_chunks(text), 1):
            passages.append(Passage(passage_id=f"USER-TXT-{t:04d}-{k:03d}", text=chunk, title=title,
                                    source=f"user file: {rel}", kind="literature",
                                    object_id=object_id, credit="user's own text", split=SPLIT))
    return passages


def _title(text: str) -> str:
    for line in text.splitlines():
        s = line.strip()
        if s:
            return s.lstrip("#").strip()[:120]
    return ""


def _chunks(text: str, limit: int = PASSAGE_CHARS) -> list[str]:
    """Paragraphs packed into chunks of at most ``limit`` characters (long ones split on
    sentence ends), so each passage is one retrievable idea."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces = []
    for p in paragraphs:
        while len(p) > limit:
            cut = p.rfind(". ", 0, limit)
            cut = cut + 1 if cut > limit // 3 else limit
            pieces.append(p[:cut].strip())
            p = p[cut:].strip()
        if p:
            pieces.append(p)
    chunks, current = [], ""
    for piece in pieces:
        if current and len(current) + 2 + len(piece) > limit:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks
