"""Malformed files through the readers, the preprocessing and the CLI: nothing may escape but
an ``AstroVLMError``, nothing may hang, nothing may blow up memory.

    python benchmarks/fuzz_readers.py [--seed 0] [--cases 10000] [--cli 30]

Each case is one file from ``tests/fuzzing.py`` (seeded: case i of seed s is the same file on
every run), read by ``sniff``, the reader its kind needs (with ``image_to_tensor`` /
``spectrum_to_tensor``), and one other reader that must refuse it. The calls run in worker
processes (``--workers``, each replaced after ``--per-worker`` cases) under an address-space
limit (``resource.setrlimit(RLIMIT_AS)``) of ``--memory-gib`` above what the imports already
map (torch alone maps ~3 GiB of address space it never touches), with a per-call alarm of
``--timeout`` seconds; a worker that stops answering is killed and its call counted as a hang,
one that dies as a crash. Then a sample of CLI calls (``classify FILE``, ``search --image`` /
``--spectrum FILE``, ``data ingest DIR``) runs under the same memory limit above the CLI's
own baseline; a call is clean when it exits 0, or 2 with one error line and no traceback.

Writes benchmarks/results/fuzz_readers.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing import connection, get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzzing  # noqa: E402

from _common import write_results  # noqa: E402

THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}


class CallTimeout(BaseException):
    """Raised by the alarm; a BaseException, so no reader's last line can swallow it."""


def _alarm(*_):
    raise CallTimeout()


def vm_size() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmSize"):
            return int(line.split()[1]) * 1024
    return 0


def worker(conn, seed: int, cases: list[int], folder: str, timeout: int, memory: int) -> None:
    import torch  # noqa: F401  (imported before the limit: it maps ~3 GiB it never touches)

    import astrovlm.data.readers  # noqa: F401
    import astrovlm.encoders.preprocess  # noqa: F401

    limit = vm_size() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    folder = Path(folder) / f"w{os.getpid()}"
    folder.mkdir(exist_ok=True)
    for i in cases:
        conn.send(("case", i, None, None, 0.0))
        signal.alarm(timeout)
        try:
            case = fuzzing.make_case(seed, i, folder)
        except CallTimeout:
            conn.send(("result", i, "generate", "generator-hang", float(timeout)))
            continue
        except MemoryError:
            conn.send(("result", i, "generate", "generator-memory", 0.0))
            continue
        except Exception as exc:  # a bug of the generator, not of the readers: counted apart
            conn.send(("result", i, "generate", f"generator-error: {type(exc).__name__}: {exc}", 0.0))
            continue
        finally:
            signal.alarm(0)
        for reader in fuzzing.readers_for(case):
            conn.send(("start", i, reader, case["seed_kind"] + "/" + case["mutation"], 0.0))
            t0 = time.perf_counter()
            signal.alarm(timeout)
            try:
                result = fuzzing.outcome(reader, case["path"])
            except CallTimeout:
                result = "hang"
            finally:
                signal.alarm(0)
            conn.send(("result", i, reader, result, time.perf_counter() - t0))
        _remove(case["path"], folder)
    conn.send(("done", None, None, None, 0.0))


def _remove(path: str, folder: Path) -> None:
    p = Path(path)
    target = p.parent if p.parent != folder else p
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)
    else:
        try:
            target.unlink()
        except OSError:
            pass


def run_readers(args, folder: Path) -> tuple[collections.Counter, dict, list]:
    """All cases through the readers in worker processes; (outcomes, by reader, failures)."""
    ctx = get_context("fork")
    todo = [list(range(a, min(a + args.per_worker, args.cases)))
            for a in range(0, args.cases, args.per_worker)]
    outcomes, by_reader, failures = collections.Counter(), collections.defaultdict(collections.Counter), []
    live = {}  # conn -> [process, cases, current (case, reader, what), last message time, done set]
    t_start = time.time()
    n_done = 0
    while todo or live:
        while todo and len(live) < args.workers:
            cases = todo.pop(0)
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=worker, args=(child, args.seed, cases, str(folder), args.timeout,
                                                    args.memory_gib << 30), daemon=True)
            proc.start()
            child.close()
            live[parent] = [proc, cases, None, time.time(), set()]
        for conn in connection.wait(list(live), timeout=2.0):
            state = live[conn]
            try:
                kind, i, reader, result, dt = conn.recv()
            except (EOFError, OSError):
                _lost(conn, state, live, todo, outcomes, by_reader, failures, "died")
                continue
            state[3] = time.time()
            if kind == "case":
                state[2] = (i, "generate", "generating the case")
            elif kind == "start":
                state[2] = (i, reader, result)
            elif kind == "result":
                state[2] = (i, "generate", "between calls")
                state[4].add(i)
                outcomes[_category(result)] += 1
                by_reader[reader][_category(result)] += 1
                if not result.startswith(("ok", "error:")):
                    failures.append({"case": i, "reader": reader, "outcome": result[:300], "seconds": round(dt, 1)})
                    print(f"case {i} {reader}: {result[:200]}", flush=True)
                if dt > args.timeout / 2:
                    print(f"case {i} {reader}: slow, {dt:.1f} s ({result[:80]})", flush=True)
            elif kind == "done":
                n_done += len(state[1])
                state[0].join(5)
                del live[conn]
                conn.close()
                print(f"{n_done}/{args.cases} cases, {time.time() - t_start:.0f} s", flush=True)
        for conn, state in list(live.items()):  # silent past the alarm: a hang in C code
            if time.time() - state[3] > args.timeout + 30:
                state[0].kill()
                _lost(conn, state, live, todo, outcomes, by_reader, failures, "hang")
    return outcomes, by_reader, failures


def _lost(conn, state, live, todo, outcomes, by_reader, failures, what):
    """A worker that died or hung: count its current call, requeue the rest of its cases."""
    proc, cases, current, _, done = state
    proc.join(5)
    if what == "died" and proc.exitcode is not None and proc.exitcode < 0:
        what = f"died (signal {-proc.exitcode})"
    if current is not None:
        i, reader, label = current  # counted, and not requeued: a case is tried once
        outcomes[what.split(" ")[0]] += 1
        by_reader[reader][what.split(" ")[0]] += 1
        failures.append({"case": i, "reader": reader, "outcome": f"{what} on {label}"})
        print(f"case {i} {reader}: {what} on {label}", flush=True)
        done.add(i)
    rest = [c for c in cases if c not in done and (current is None or c != current[0])]
    if rest:
        todo.insert(0, rest)
    del live[conn]
    conn.close()


def _category(result: str) -> str:
    if result.startswith(("raw:", "unnamed:", "generator-error:")):
        return result.split(":")[0]
    return result


# --- the CLI sample ---------------------------------------------------------------------

def _cli_baseline_vm() -> int:
    """Address space a CLI process maps once it has imported what classify/search import."""
    code = ("import torch, astrovlm.cli, astrovlm.encoders, astrovlm.data.readers;"
            "print([l for l in open('/proc/self/status') if l.startswith('VmSize')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **THREADS}, check=True)
    return int(out.stdout.strip()) * 1024


def run_cli(args, folder: Path) -> tuple[collections.Counter, list, dict]:
    limit = _cli_baseline_vm() + (args.memory_gib << 30)

    def preexec():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, **THREADS, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(ROOT)}
    index = args.index
    cli_folder = folder / "cli"
    cli_folder.mkdir()
    # the files: cases of the same run past the in-process ones, images and spectra
    files = {"image": [], "spectrum": []}
    i = args.cases
    while min(len(v) for v in files.values()) < args.cli:
        case = fuzzing.make_case(args.seed, i, cli_folder)
        kind = fuzzing.readers_for(case)[1]
        if kind == "read_image":
            files["image"].append(case["path"])
        elif kind == "read_spectrum":
            files["spectrum"].append(case["path"])
        i += 1
    n_ingest = max(1, args.cli // 6)
    n_search = max(1, args.cli // 6) if index else 0
    n_classify = args.cli - n_ingest - 2 * n_search
    calls = []
    for j in range(n_classify):
        calls.append(["classify", files["image" if j % 2 else "spectrum"][j]])
    for j in range(n_search):
        calls.append(["search", "--image", files["image"][-1 - j], "--index", index])
        calls.append(["search", "--spectrum", files["spectrum"][-1 - j], "--index", index])
    for j in range(n_ingest):
        d = cli_folder / f"ingest{j}"
        d.mkdir()
        for k in range(8):
            case = fuzzing.make_case(args.seed, i, d)
            i += 1
            del case
        calls.append(["data", "ingest", str(d), "--out", str(cli_folder / f"out{j}")])
    outcomes, failures, seconds = collections.Counter(), [], []
    for call in calls:
        t0 = time.time()
        try:
            p = subprocess.run([sys.executable, "-m", "astrovlm", *call], capture_output=True, text=True,
                               env=env, preexec_fn=preexec, timeout=args.cli_timeout, cwd=folder)
            dt = time.time() - t0
            err = p.stderr.strip()
            if p.returncode == 0:
                what = "ok"
            elif p.returncode == 2 and "Traceback" not in err:
                what = "error"
            elif "MemoryError" in err or p.returncode in (-9, -6, 137):
                what = "memory"
            else:
                what = "raw"
        except subprocess.TimeoutExpired:
            dt, what, err = time.time() - t0, "hang", ""
        seconds.append(dt)
        outcomes[what] += 1
        print(f"cli {call[0]} {' '.join(call[1:3])[:90]}: {what} ({dt:.1f} s)"
              + (f" {err.splitlines()[-1][:160]}" if what != "ok" and err else ""), flush=True)
        if what not in ("ok", "error"):
            failures.append({"cli": call, "outcome": what, "stderr": err[-400:]})
    return outcomes, failures, {"cli_seconds_max": round(max(seconds), 1) if seconds else 0.0,
                                "cli_seconds_median": round(sorted(seconds)[len(seconds) // 2], 1) if seconds else 0.0,
                                "cli_address_space_limit_gib": round(limit / 2**30, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=int, default=10000, help="generated inputs through the readers")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--per-worker", type=int, default=500, help="cases before a worker is replaced")
    ap.add_argument("--timeout", type=int, default=30, help="seconds a reader call may take")
    ap.add_argument("--memory-gib", type=int, default=4, help="address space above the imports' own")
    ap.add_argument("--cli", type=int, default=30, help="CLI calls in the sample (0: none)")
    ap.add_argument("--cli-timeout", type=int, default=120,
                    help="seconds a CLI call may take (each loads the encoder: ~10-30 s on 2 busy CPUs)")
    default_index = Path(os.environ.get("ASTROVLM_TEST_HOME", Path.home() / ".astrovlm-test")) / "index" / "sample"
    ap.add_argument("--index", default=str(default_index) if default_index.exists() else None,
                    help="index for the search calls (default: the tests' sample-sky index)")
    ap.add_argument("--name", default="fuzz_readers", help="results file name")
    args = ap.parse_args()
    os.environ.update(THREADS)

    folder = Path(tempfile.mkdtemp(prefix="astrovlm-fuzz-"))
    t0 = time.time()
    try:
        fuzzing.prepare(folder)
        outcomes, by_reader, failures = run_readers(args, folder)
        reader_seconds = time.time() - t0
        cli_outcomes, cli_failures, cli_figures = (run_cli(args, folder) if args.cli
                                                   else (collections.Counter(), [], {}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    calls = sum(outcomes.values())
    figures = {
        "seed": args.seed, "inputs": args.cases, "reader_calls": calls,
        "raw_exceptions": outcomes["raw"] + outcomes["unnamed"],
        "errors_not_naming_the_file": outcomes["unnamed"],
        "hangs_over_timeout": outcomes["hang"], "memory_blowups": outcomes["memory"] + outcomes["died"],
        "read_ok": outcomes["ok"],
        "generator_failures": sum(v for k, v in outcomes.items() if k.startswith("generator")),
        **{f"clean_errors_{k.split(':')[1]}": v for k, v in sorted(outcomes.items()) if k.startswith("error:")},
        "clean_errors_total": sum(v for k, v in outcomes.items() if k.startswith("error:")),
        **{f"{r}_{k.replace(':', '_')}": v for r, c in sorted(by_reader.items()) for k, v in sorted(c.items())},
        "timeout_seconds": args.timeout, "address_space_gib_above_imports": args.memory_gib,
        "reader_run_seconds": round(reader_seconds, 1),
        "cli_calls": sum(cli_outcomes.values()), "cli_clean": cli_outcomes["ok"] + cli_outcomes["error"],
        "cli_ok": cli_outcomes["ok"], "cli_clean_errors": cli_outcomes["error"],
        "cli_raw_tracebacks": cli_outcomes["raw"], "cli_hangs": cli_outcomes["hang"],
        "cli_memory_blowups": cli_outcomes["memory"], "cli_timeout_seconds": args.cli_timeout, **cli_figures,
        "run_seconds": round(time.time() - t0, 1),
    }
    write_results(args.name, figures, n=args.cases)
    if failures or cli_failures:
        out = Path(__file__).resolve().parent / "results" / f"{args.name}_failures.jsonl"
        out.write_text("".join(json.dumps(f) + "\n" for f in failures + cli_failures))
        print(f"{len(failures) + len(cli_failures)} failures listed in {out}")


if __name__ == "__main__":
    main()
