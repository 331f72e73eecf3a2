"""``kill -9`` of ``astrovlm data ingest`` and ``astrovlm index build``, at every rename they
make and at seeded random moments: after each kill the folder loads whole, and it is either
the version from before the run (the same records, the same vectors) or the complete new
one; a half-written folder is never taken for whole.

Each command runs in a child ``python -c`` under a shim that wraps ``os.replace`` and
``os.rename`` (in the command's own process; worker processes are not counted) and sends
itself SIGKILL right before or right after the N-th call, for every N the command makes.
Each run writes the other of two versions (folders A and B alternate), so every kill has
something to lose, and the leftovers of one kill (a ``.tmp-`` folder, a ``.NAME.old``) are
what the next run starts from.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from astrovlm.data.checksums import RECORD_FILES
from astrovlm.data.ingest import ingest_folder
from astrovlm.data.records import SkyDataset
from fits_fixtures import DEC0, RA0, make_image, make_png, make_sdss_table, make_wcs_1d

pytestmark = pytest.mark.slow

SEED = 15
RANDOM_KILLS = 20
REPO = Path(__file__).resolve().parents[1]

# The child: a zygote that imports astrovlm (and, for the index, loads the encoder) once,
# then for each request (a JSON line on stdin) forks a process that runs the CLI's ``main``
# on the request's arguments under the rename shim, and answers (a JSON line on stdout) with
# the process's exit status (negative: the signal) and how long it ran. The shim kills the
# process right before or right after its N-th rename (``kill_at``, ``when``); with
# ``kill_after`` the zygote sends SIGKILL after that many seconds; ``count`` writes how many
# renames an uninterrupted run made. Only the imports and the encoder's load are shared:
# everything the command writes happens in the killed process.
ZYGOTE = textwrap.dedent("""
    import json, os, signal, sys, time, traceback
    from astrovlm.cli import main
    import astrovlm.data.ingest, astrovlm.index.build as build
    if os.environ.get("PRELOAD_ENCODER"):
        encoder, load = build.load_encoder(None), build.load_encoder
        build.load_encoder = lambda e: encoder if e is None else load(e)

    def shim(at, when):
        me, calls = os.getpid(), [0]

        def wrap(real):
            def renamed(*args, **kwargs):
                if os.getpid() != me:  # a worker process: not the command's renames
                    return real(*args, **kwargs)
                calls[0] += 1
                if calls[0] == at and when == "before":
                    os.kill(me, signal.SIGKILL)
                result = real(*args, **kwargs)
                if calls[0] == at and when == "after":
                    os.kill(me, signal.SIGKILL)
                return result
            return renamed

        os.replace, os.rename = wrap(os.replace), wrap(os.rename)
        return calls

    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(log, 1)
            os.dup2(log, 2)
            calls = shim(req.get("kill_at", 0), req.get("when", "before"))
            try:
                code = main(req["args"])
            except SystemExit as exc:
                code = exc.code
            except BaseException:
                traceback.print_exc()
                code = 99
            if req.get("count"):
                open(req["count"], "w").write(str(calls[0]))
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code or 0)
        deadline = None if req.get("kill_after") is None else t0 + req["kill_after"]
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if deadline is not None and time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = None
            time.sleep(0.001)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status),
                          "seconds": time.monotonic() - t0}), flush=True)
""")


class Zygote:
    def __init__(self, tmp: Path, preload_encoder: bool = False):
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        if preload_encoder:
            env["PRELOAD_ENCODER"] = "1"
        self.tmp = tmp
        self.proc = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", ZYGOTE], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, args: list[str], **kill) -> dict:
        req = {"args": args, "log": str(self.tmp / "child.log"), **kill}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the zygote died"
        answer = json.loads(line)
        answer["log"] = (self.tmp / "child.log").read_text(errors="replace")[-2000:]
        return answer

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _count(zygote: Zygote, args: list[str]) -> tuple[int, float]:
    """(renames, seconds) of an uninterrupted run."""
    count_file = zygote.tmp / "count.txt"
    done = zygote.run(args, count=str(count_file))
    assert done["code"] == 0, done["log"]
    return int(count_file.read_text()), done["seconds"]


def _kill_plan(n_renames: int, seconds: float):
    """Every rename, before and after; then seeded random moments over a run's length until
    RANDOM_KILLS of them landed before the run ended (a run's length varies with the load;
    ``landed`` is told after each, at most 3x as many tries)."""
    for n in range(1, n_renames + 1):
        for when in ("before", "after"):
            yield {"kill_at": n, "when": when}
    rng, landed = random.Random(SEED), [0]
    for _ in range(3 * RANDOM_KILLS):
        if landed[0] >= RANDOM_KILLS:
            return
        yield {"kill_after": round(rng.uniform(0.0, seconds), 3), "landed": landed}


def _survive(zygote: Zygote, args_for, load, versions: dict, current: str, out: Path) -> dict:
    """Run the plan; after each kill the loaded version must be the previous or the new one.
    Returns counts (``found_in_old``: kills after which only ``.NAME.old`` was left)."""
    stats = {"runs": 0, "killed": 0, "random_kills": 0, "previous": 0, "new": 0, "found_in_old": 0}
    n_renames, seconds = _count(zygote, args_for(other(current)))
    current = other(current)
    assert load() == versions[current]
    for kill in _kill_plan(n_renames, seconds):
        target = other(current)
        landed = kill.pop("landed", None)
        done = zygote.run(args_for(target), **kill)
        stats["runs"] += 1
        stats["killed"] += done["code"] == -signal.SIGKILL
        if landed is not None:
            landed[0] += done["code"] == -signal.SIGKILL
            stats["random_kills"] = landed[0]
        assert done["code"] in (0, -signal.SIGKILL), (kill, done["log"])
        stats["found_in_old"] += not out.exists() and (out.parent / f".{out.name}.old").is_dir()
        got = load()  # whole (checked), and which version
        assert got in (versions[current], versions[target]), kill
        which = "previous" if got == versions[current] else "new"
        stats[which] += 1
        if done["code"] == 0:
            assert which == "new", kill  # a run that finished left the new version
        current = target if which == "new" else current
    # an uninterrupted run after all that kills cleans up and swaps in
    target = other(current)
    assert zygote.run(args_for(target))["code"] == 0
    assert load() == versions[target]
    stats["renames"], stats["seconds_per_run"] = n_renames, round(seconds, 2)
    return stats


def other(name: str) -> str:
    return "B" if name == "A" else "A"


def _folders(tmp: Path) -> dict:
    """Two small folders whose datasets differ in every record file; the same kinds of file
    in each, so that an ingest of either makes the same number of renames."""
    a, b = tmp / "A", tmp / "B"
    a.mkdir()
    b.mkdir()
    make_image(a / "m51.fits", obj="M51")
    make_sdss_table(a / "spec-m51.fits", z=0.0015, ra=RA0 + 2 / 3600, dec=DEC0)
    make_png(a / "sketch.png")
    (a / "notes.md").write_text("# Notes\n\nM51 is a grand-design spiral.\n")
    make_image(b / "ngc1.fits", obj="NGC 1", ra=RA0 + 1, dec=DEC0)
    make_wcs_1d(b / "star.fits")
    make_png(b / "drawing.png", size=(30, 20))
    (b / "log.md").write_text("# Observing log\n\nClear skies over NGC 1.\n")
    return {"A": a, "B": b}


def _dataset_version(out: Path):
    ds = SkyDataset(out, verify=True)  # raises if anything is missing, cut short or changed
    return tuple((ds.root / name).read_bytes() for name in RECORD_FILES)


def test_kill_9_of_data_ingest_keeps_a_whole_dataset(tmp_path):
    folders = _folders(tmp_path)
    out = tmp_path / "dataset"
    versions = {}
    for name in ("B", "A"):  # each version once, as an uninterrupted run makes it
        ingest_folder(folders[name], out, progress=False, workers=1)
        versions[name] = _dataset_version(out)
    assert versions["A"] != versions["B"]

    def args_for(name):
        return ["data", "ingest", str(folders[name]), "--out", str(out), "--workers", "1", "--json"]

    zygote = Zygote(tmp_path)
    try:
        stats = _survive(zygote, args_for, lambda: _dataset_version(out), versions, "A", out)
    finally:
        zygote.close()
    print("ingest", json.dumps(stats))
    assert stats["random_kills"] >= RANDOM_KILLS and stats["killed"] >= 2 * stats["renames"] + RANDOM_KILLS
    assert stats["previous"] and stats["new"] and stats["found_in_old"]


def test_kill_9_of_index_build_keeps_a_whole_index(tmp_path):
    from astrovlm.index import CrossModalIndex

    folders = _folders(tmp_path)
    datasets = {}
    for name in ("A", "B"):
        datasets[name] = tmp_path / f"ds{name}"
        ingest_folder(folders[name], datasets[name], progress=False, workers=1)
    out = tmp_path / "index"

    def version():
        index = CrossModalIndex.load(out)  # checks every file's size and SHA-256
        return index.dataset_root, len(index), tuple(sorted(index.object_ids())), index.counts()

    def args_for(name):
        return ["index", "build", "--dataset", str(datasets[name]), "--out", str(out),
                "--no-progress", "--json"]

    zygote = Zygote(tmp_path, preload_encoder=True)
    try:
        versions = {}
        for name in ("B", "A"):
            done = zygote.run(args_for(name))
            assert done["code"] == 0, done["log"]
            versions[name] = version()
        assert versions["A"] != versions["B"]
        stats = _survive(zygote, args_for, version, versions, "A", out)
    finally:
        zygote.close()
    print("index", json.dumps(stats))
    assert stats["random_kills"] >= RANDOM_KILLS and stats["killed"] >= 2 * stats["renames"] + RANDOM_KILLS
    assert stats["previous"] and stats["new"] and stats["found_in_old"]

