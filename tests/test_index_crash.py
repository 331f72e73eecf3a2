"""A process killed while it saves an index leaves the previous index intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from astrovlm.index import CrossModalIndex

# The child builds a big flat index (300k x 256 float32, ~300 MB) and saves it over the
# existing folder; the parent kills it as soon as the new index file is being written.
CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from astrovlm.index import CrossModalIndex

    n = 300_000
    x = np.full((n, 256), 1 / 16, dtype="float32")
    x[:, 0] += np.linspace(0, 1, n, dtype="float32")
    index = CrossModalIndex(256, "fp-v2", kind="flat")
    index.add(x, {"item_id": [f"big{i}" for i in range(n)], "modality": ["image"] * n})
    print("saving", flush=True)
    index.save(sys.argv[1])
    print("saved", flush=True)
""")


def small_index():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 256)).astype("float32")
    index = CrossModalIndex(256, "fp-v1")
    index.add(x, [{"item_id": f"v1-{i}", "modality": "text", "caption": f"first version {i}"}
                  for i in range(50)])
    return index, x


def test_kill_during_save_keeps_previous_index(tmp_path):
    path = tmp_path / "ix"
    index, x = small_index()
    index.save(path)
    before = [h.item_id for h in index.search(x[3], k=5)]

    env = dict(os.environ, OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    killed_mid_write = False
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        partial = [p / "index.faiss" for p in tmp_path.glob(".ix.tmp-*") if (p / "index.faiss").exists()]
        if partial and partial[0].stat().st_size > 0:
            os.kill(child.pid, signal.SIGKILL)
            killed_mid_write = True
            break
        time.sleep(0.002)
    child.wait(timeout=30)
    out = child.stdout.read().decode()
    assert killed_mid_write, f"the child finished before it could be killed: {out}"
    assert child.returncode == -signal.SIGKILL and "saved" not in out

    # The half-written folder is there, the index folder is the old one, whole.
    assert list(tmp_path.glob(".ix.tmp-*"))
    back = CrossModalIndex.load(path, expected_fingerprint="fp-v1")
    assert len(back) == 50 and back.item("v1-3")["caption"] == "first version 3"
    assert [h.item_id for h in back.search(x[3], k=5)] == before

    # The next save clears the leftover temp folder.
    back.save(path)
    assert not list(tmp_path.glob(".ix.tmp-*"))
    assert len(CrossModalIndex.load(path)) == 50


def test_crash_between_the_two_renames_falls_back_to_the_previous_folder(tmp_path):
    # atomic_directory moves the old folder aside, then moves the new one in; a crash between
    # the two leaves only '.ix.old'. Loading finds it there.
    path = tmp_path / "ix"
    index, x = small_index()
    index.save(path)
    os.replace(path, tmp_path / ".ix.old")
    back = CrossModalIndex.load(path)
    assert len(back) == 50
    assert back.search(x[0], k=1)[0].item_id == "v1-0"
