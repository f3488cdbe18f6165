"""One writer and many readers, as processes and as threads: readers never error and never see partial clips.

Every clip's content is a function of (video, clip index), so a reader can check each record it is handed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np

from longwatch.memory import ClipRecord, MemoryBank

COMMON = """
import numpy as np
VIDEOS = ["v0", "v1", "scratch"]

def content(video, i):
    rng = np.random.default_rng(1000 * VIDEOS.index(video) + i)
    vec = rng.normal(size=24).astype(np.float32)
    return vec / np.linalg.norm(vec), np.full((2 + i % 4, 8), i, np.float16)
"""

WRITER = COMMON + """
import pathlib, sys, time
from longwatch.memory import ClipRecord, MemoryBank
sync = pathlib.Path(sys.argv[2])
while len(list(sync.glob("ready-*"))) < int(sys.argv[4]):  # start once every reader is searching
    time.sleep(0.05)
bank = MemoryBank(sys.argv[1])
stop, i = time.time() + float(sys.argv[3]), 0
while time.time() < stop:
    for video in ("v0", "v1"):
        vec, mem = content(video, i)
        bank.add(ClipRecord(video, i, i, i + 1, caption=f"{video}/{i}"), {"text": vec}, {"memory": mem})
    if i % 5 == 4:
        vec, mem = content("scratch", i)
        bank.add_many([(ClipRecord("scratch", i + j, i, i + 1, caption=f"scratch/{i + j}"), {"text": vec},
                        {"memory": np.full((2 + (i + j) % 4, 8), i + j, np.float16)}) for j in range(3)])
    if i % 25 == 24:
        bank.delete("scratch")  # readers must cope with a video vanishing under them
        bank.add_video("scratch")
    if i % 10 == 9:
        bank.flush()
    i += 1
bank.close()
(sync / "done").touch()
print(i)
"""

READER = COMMON + """
import json, pathlib, sys, time
import torch  # imported before the clock starts: tokens() returns tensors
from longwatch.memory import MemoryBank
bank = MemoryBank(sys.argv[1], readonly=True)
sync = pathlib.Path(sys.argv[2])
rng = np.random.default_rng(int(sys.argv[3]))
searches, checked, seen, finishing = 0, 0, [0], False
while not finishing:
    finishing = (sync / "done").exists()  # one last round after the writer closed
    q = rng.normal(size=24).astype(np.float32)
    hits = bank.search(q / np.linalg.norm(q), 10)
    hits += bank.search(content("v0", int(rng.integers(0, 50)))[0], 5, videos=["v0", "v1"])
    searches += 2
    stable = [h for h in hits if h.record.video_id != "scratch"]
    for h in hits:
        assert h.record.caption == f"{h.record.video_id}/{h.record.clip_index}", h
        assert h.record.tokens["memory"].n == 2 + h.record.clip_index % 4, h
    for h, mem in zip(stable, bank.tokens([h.record_id for h in stable], "memory")):
        want = content(h.record.video_id, h.record.clip_index)[1]
        assert np.array_equal(mem.numpy(), want), (h, mem)
        checked += 1
    n = sum(v.clips for v in bank.videos() if v.video_id != "scratch")
    assert n >= seen[-1], f"committed clips went backwards: {n} < {seen[-1]}"
    seen.append(n)
    (sync / f"ready-{sys.argv[3]}").touch()
print(json.dumps({"searches": searches, "checked": checked, "clips_seen": seen[-1]}))
"""


def test_one_writer_process_two_reader_processes(tmp_path):
    root = tmp_path / "bank"
    with MemoryBank(root) as bank:
        for video in ("v0", "v1", "scratch"):
            bank.add_video(video)
        scope: dict = {}
        exec(COMMON, scope)  # the same content() the processes use
        vec, mem = scope["content"]("v0", 1000)
        bank.add(ClipRecord("v0", 1000, 0, 1, caption="v0/1000"), {"text": vec}, {"memory": mem})
    sync, seconds, readers = tmp_path / "sync", "3", (1, 2)
    sync.mkdir()
    args = [str(root), str(sync)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, *args, seconds, str(len(readers))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    procs += [subprocess.Popen([sys.executable, "-c", READER, *args, str(seed)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for seed in readers]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    rounds = int(outs[0][0])
    reports = [json.loads(out) for out, _ in outs[1:]]
    assert rounds > 5, "the writer barely wrote"
    for r in reports:
        assert r["searches"] > 10 and r["checked"] > 0, reports
    with MemoryBank(root) as bank:
        assert bank.stats()["clips"] == sum(v.clips for v in bank.videos())
        assert bank.last_clip("v1") == rounds - 1


def test_reader_threads_share_a_bank_with_the_writer(tmp_path):
    root, errors, done = tmp_path / "bank", [], threading.Event()
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(400, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    writer = MemoryBank(root)
    writer.add_video("v")
    reader = MemoryBank(root, readonly=True)

    def read(bank: MemoryBank, seed: int) -> None:
        pick = np.random.default_rng(seed)
        try:
            while not done.is_set():
                for h in bank.search(vecs[int(pick.integers(0, 400))], 5) if bank.spaces() else []:
                    assert h.record.caption == f"clip {h.record.clip_index}"
                    (tok,) = bank.tokens([h.record_id], "memory")
                    assert float(tok[0, 0]) == h.record.clip_index
        except Exception as e:  # noqa: BLE001 - reported to the main thread below
            errors.append(e)

    threads = [threading.Thread(target=read, args=(b, i)) for i, b in enumerate((writer, writer, reader, reader))]
    for t in threads:
        t.start()
    for i in range(400):
        writer.add(ClipRecord("v", i, i, i + 1, caption=f"clip {i}"), {"text": vecs[i]},
                   {"memory": np.full((1, 4), i, np.float32)})
    done.set()
    for t in threads:
        t.join()
    assert not errors, errors
    assert reader.search(vecs[399], 1)[0].record.clip_index == 399
    reader.close()
    writer.close()
