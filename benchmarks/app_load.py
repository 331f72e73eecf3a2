"""Load on the web app: 32 concurrent clients on loopback for 60 s against search and chat.

Starts the real app (``python app.py``) on 127.0.0.1 and a free port (or uses --url, which
must be a loopback address), then runs N client threads, each with its own gradio_client:
most search by text (``/search_text``: encoder + FAISS + thumbnails), some chat
(``/chat``: retrieval + the language model, streamed). Each client sends one request at a
time until the duration is over or it has sent --max-requests; a request still running at
the end is waited for up to --grace seconds, then counted as an error. The run stops by
itself.

Reported: requests and errors (target 0) per endpoint, p50/p95 latency, throughput, the
chat's aggregate answer tokens/s (each answer's text, without its notes and sources list,
re-tokenised at the client with SmolLM2's tokenizer, over the run's wall time), and the
server process's peak resident memory (VmHWM) and RSS sampled during the run.

    python benchmarks/app_load.py                    # 32 clients, 60 s, 8 of them chatting
    python benchmarks/app_load.py --clients 8 --duration 20 --chat-clients 2
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SEARCHES = ["a spiral galaxy seen face-on", "an edge-on galaxy with a dust lane",
            "a globular cluster", "a planetary nebula", "an open star cluster",
            "an emission nebula with dark lanes", "a quasar spectrum with broad lines",
            "the spectrum of a cool M type star", "an elliptical galaxy", "a supernova remnant"]
QUESTIONS = ["What kind of object is M57 and where is it?", "What is M13?",
             "In which constellation is M31?", "What type of galaxy is M51?",
             "Is M42 a nebula or a star cluster?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(log: Path, queue_size: int | None) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    if queue_size:
        cmd += ["--queue-size", str(queue_size)]
    out = open(log, "w")
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=out, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(url + "gradio_api/info", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise SystemExit(f"the app did not start in 900 s; see {log}")


def wait_for_assistant(url: str, timeout: float = 600) -> float:
    """One question before the clock starts, so the load is not a cold start."""
    from gradio_client import Client

    t0 = time.perf_counter()
    Client(url, verbose=False).predict(QUESTIONS[0], api_name="/ask")
    return time.perf_counter() - t0


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = {"search": [], "chat": []}
        self.errors: dict[str, list[str]] = {"search": [], "chat": []}
        self.answer_tokens = 0
        self._tokenizer = None

    def ok(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latency[kind].append(seconds)

    def answer(self, markdown: str) -> None:
        """Count an answer's tokens: its text before the notes and the sources list."""
        from astrovlm.webapp.formatting import SOURCES_HEADING

        text = markdown.split("\n\n" + SOURCES_HEADING)[0].split("\n\n*Note: ")[0].strip()
        with self.lock:  # one tokenizer, used by one client thread at a time
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                from astrovlm.assistant.lm import ensure_smollm2_cached

                self._tokenizer = AutoTokenizer.from_pretrained(ensure_smollm2_cached())
            self.answer_tokens += len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def fail(self, kind: str, why: str) -> None:
        with self.lock:
            self.errors[kind].append(why[:200])


def client_loop(i: int, url: str, kind: str, stop_at: float, max_requests: int, rec: Recorder) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False, download_files=False)
    except Exception as exc:  # noqa: BLE001 - a client that cannot connect is an error
        rec.fail(kind, f"connect: {type(exc).__name__}: {exc}")
        return
    n = 0
    while time.monotonic() < stop_at and n < max_requests:
        t0 = time.perf_counter()
        try:
            if kind == "search":
                gallery, note, *_ = client.predict(SEARCHES[(i + n) % len(SEARCHES)], "image", 12,
                                                   api_name="/search_text")
                if not gallery:
                    raise RuntimeError(f"empty result: {note}")
            else:
                question = QUESTIONS[(i + n) % len(QUESTIONS)]
                history, *_ = client.predict({"text": question, "files": []}, [], api_name="/chat")
                answer = history[-1]["content"]
                text = answer[0]["text"] if isinstance(answer, list) else str(answer)
                if "Sources" not in text and "does not say" not in text:
                    raise RuntimeError(f"answer without sources: {text[:120]!r}")
                rec.answer(text)
            rec.ok(kind, time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - every failure is counted
            rec.fail(kind, f"{type(exc).__name__}: {exc}")
        n += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--chat-clients", type=int, default=8, help="how many of the clients chat")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--max-requests", type=int, default=1000, help="per client")
    ap.add_argument("--grace", type=float, default=240.0,
                    help="seconds to wait for requests still running at the end")
    ap.add_argument("--url", help="an app already running on this machine (loopback only)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server's process id (for memory)")
    ap.add_argument("--queue-size", type=int, default=None, help="passed to app.py")
    args = ap.parse_args()
    if not 0 <= args.chat_clients <= args.clients:
        raise SystemExit("--chat-clients must be between 0 and --clients")

    import psutil

    log = REPO / "benchmarks" / "results" / "app_load.server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = None
    if args.url:
        host = urllib.parse.urlsplit(args.url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("--url must be a loopback address (this benchmark never leaves the machine)")
        url = args.url.rstrip("/") + "/"
        server = psutil.Process(args.server_pid) if args.server_pid else None
    else:
        t0 = time.perf_counter()
        proc, url = start_app(log, args.queue_size)
        print(f"app started in {time.perf_counter() - t0:.1f} s at {url}", flush=True)
        server = psutil.Process(proc.pid)
    try:
        warm = wait_for_assistant(url) if args.chat_clients else 0.0
        print(f"first answer (warm-up) in {warm:.1f} s; loading {args.clients} clients for "
              f"{args.duration:.0f} s", flush=True)
        rss = []
        rec = Recorder()
        stop_at = time.monotonic() + args.duration
        threads = [threading.Thread(target=client_loop, daemon=True,
                                    args=(i, url, "chat" if i < args.chat_clients else "search",
                                          stop_at, args.max_requests, rec))
                   for i in range(args.clients)]
        t_start = time.perf_counter()
        for t in threads:
            t.start()
        hard_stop = time.monotonic() + args.duration + args.grace
        while any(t.is_alive() for t in threads) and time.monotonic() < hard_stop:
            if server is not None:
                try:
                    rss.append(server.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.5)
        wall = time.perf_counter() - t_start
        stuck = sum(t.is_alive() for t in threads)
        for _ in range(stuck):
            rec.fail("chat" if args.chat_clients else "search", "still running after the grace period")
        peak_hwm = _vm_hwm(server.pid) if server is not None else None
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    figures = {"clients": args.clients, "chat_clients": args.chat_clients,
               "duration_s": args.duration, "wall_s": round(wall, 1)}
    total = errors = 0
    for kind in ("search", "chat"):
        lat = np.array(rec.latency[kind])
        n_err = len(rec.errors[kind])
        total += len(lat) + n_err
        errors += n_err
        figures[f"{kind}_requests"] = int(len(lat) + n_err)
        figures[f"{kind}_errors"] = n_err
        if len(lat):
            figures[f"{kind}_p50_s"] = round(float(np.percentile(lat, 50)), 3)
            figures[f"{kind}_p95_s"] = round(float(np.percentile(lat, 95)), 3)
            figures[f"{kind}_per_s"] = round(len(lat) / wall, 2)
    if rec.latency["chat"]:
        figures["chat_answer_tokens"] = rec.answer_tokens
        figures["chat_tokens_per_s"] = round(rec.answer_tokens / wall, 2)
    figures["errors"] = errors
    figures["error_rate"] = round(errors / max(total, 1), 4)
    if rss:
        figures["server_rss_peak_sampled_mb"] = round(max(rss) / 2**20, 1)
        figures["server_rss_median_mb"] = round(float(np.median(rss)) / 2**20, 1)
    if peak_hwm:
        figures["server_peak_rss_mb"] = round(peak_hwm / 2**20, 1)
    figures["warmup_first_answer_s"] = round(warm, 2)
    figures["cpu_count"] = os.cpu_count()
    # other work on the machine slows every request: say how busy it was (this run included)
    figures["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    for kind in ("search", "chat"):
        for why in sorted(set(rec.errors[kind]))[:5]:
            print(f"{kind} error: {why}")
    write_results("app_load", figures, n=total)


def _vm_hwm(pid: int) -> int | None:
    """The process's peak resident set size (Linux /proc VmHWM), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


if __name__ == "__main__":
    main()
