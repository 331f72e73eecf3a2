"""Start the real app (``python app.py``) on 127.0.0.1 and a free port, for the app tests.

Not a test module: test_app_unit.py and test_app_browser.py share it. The server runs in
its own process with the test data home, Gradio's upload folder in a temp dir, and its
output in ``server.log`` there (shown if it fails to start). ``$ASTROVLM_TEST_APP_ARGS``
adds arguments to app.py (e.g. ``--encoder DIR --assistant DIR`` for your own weights).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 900   # a first start builds the index of the sample sky


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    home: Path
    tmp_root: str
    log: Path
    queue_max_size: int
    _client: object = field(default=None, repr=False)

    @property
    def previews(self) -> str:
        return str((self.home / "cache" / "app").resolve())

    @property
    def client(self):
        if self._client is None:
            from gradio_client import Client

            self._client = Client(self.url, verbose=False, download_files=str(Path(self.tmp_root) / "dl"))
        return self._client

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(home: Path, tmp: Path, queue_size: int | None = None, assistant: bool = True):
    import httpx

    port = free_port()
    tmp = Path(tmp)
    (tmp / "gradio").mkdir(parents=True, exist_ok=True)
    log = tmp / "server.log"
    env = dict(os.environ, ASTROVLM_HOME=str(home), GRADIO_TEMP_DIR=str(tmp / "gradio"),
               GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    cmd = [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    if queue_size is not None:
        cmd += ["--queue-size", str(queue_size)]
    if not assistant:
        cmd.append("--no-assistant")
    # e.g. "--encoder DIR --assistant DIR": test the app with your own trained folders
    cmd += shlex.split(os.environ.get("ASTROVLM_TEST_APP_ARGS", ""))
    from astrovlm.webapp import QUEUE_MAX_SIZE

    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=out, stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}/", proc, Path(home), str(tmp), log,
                       queue_size or QUEUE_MAX_SIZE)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with code {proc.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(server.url + "gradio_api/info", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start in {START_TIMEOUT_S} s:\n{server.log_tail()}")
            time.sleep(1.0)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
