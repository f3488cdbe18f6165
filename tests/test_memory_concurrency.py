"""One writer and many readers, as processes and as threads: readers never error and never see partial clips.

Every clip's content is a function of (video, clip index), so a reader can check each record it is handed.
The process test runs in rounds (one round: a clip of each stable video and a 3-clip scratch batch; every other
round the scratch video is deleted and re-added) under a CPU burner, because the races it guards show under load.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

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
sync, rounds = pathlib.Path(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 120
while len(list(sync.glob("ready-*"))) < int(sys.argv[4]):  # start once every reader is searching
    assert time.monotonic() < deadline, "readers never became ready"
    time.sleep(0.02)
bank = MemoryBank(sys.argv[1], durable=False)  # fsync is not under test: more rounds per second are
for i in range(rounds):
    for video in ("v0", "v1"):
        vec, mem = content(video, i)
        bank.add(ClipRecord(video, i, i, i + 1, caption=f"{video}/{i}"), {"text": vec}, {"memory": mem})
    batch = []
    for j in range(3):
        vec, mem = content("scratch", 3 * i + j)
        batch.append((ClipRecord("scratch", 3 * i + j, i, i + 1, caption=f"scratch/{3 * i + j}"),
                      {"text": vec}, {"memory": mem}))
    bank.add_many(batch)
    if i % 2 == 1:
        # Readers must cope with a video vanishing under them; a delete landing between two of a reader's
        # SELECTs is what showed clips without their token entries (KeyError 'memory').
        bank.delete("scratch")
        bank.add_video("scratch")
    if i % 10 == 9:
        bank.flush()
bank.close()
(sync / "done").touch()
print(rounds)
"""

READER = COMMON + """
import json, pathlib, sys, time
import torch  # imported before the writer starts: tokens() returns tensors
from longwatch.memory import MemoryBank
from longwatch.errors import BankError
bank = MemoryBank(sys.argv[1], readonly=True)
sync = pathlib.Path(sys.argv[2])
rng = np.random.default_rng(int(sys.argv[3]))
searches, checked, seen, finishing = 0, 0, [0], False
deadline = time.monotonic() + 240
while not finishing:
    assert time.monotonic() < deadline, "the writer never finished"
    finishing = (sync / "done").exists()  # one last round after the writer closed
    q = rng.normal(size=24).astype(np.float32)
    hits = bank.search(q / np.linalg.norm(q), 10)
    hits += bank.search(content("v0", int(rng.integers(0, 50)))[0], 5, videos=["v0", "v1"])
    searches += 2
    for h in hits:  # a hit's record, vector and token entry come from one commit, scratch clips included
        assert h.record.caption == f"{h.record.video_id}/{h.record.clip_index}", h
        assert h.record.tokens["memory"].n == 2 + h.record.clip_index % 4, h
    stable = [h for h in hits if h.record.video_id != "scratch"]
    for h, mem in zip(stable, bank.tokens([h.record_id for h in stable], "memory")):
        assert np.array_equal(mem.numpy(), content(h.record.video_id, h.record.clip_index)[1]), (h, mem)
        checked += 1
    try:
        scratch = bank.clips("scratch")
    except BankError as e:  # between delete("scratch") and add_video("scratch"), two commits
        assert "not in the bank" in str(e), e
        scratch = []
    for c in scratch:
        assert c.caption == f"scratch/{c.clip_index}" and c.tokens["memory"].n == 2 + c.clip_index % 4, c
    try:  # a re-added scratch has a new row id and shard folder: its tokens must be its own
        mems = bank.tokens([c.record_id for c in scratch], "memory")
    except BankError as e:  # deleted since clips() returned: refused with a typed error, never wrong bytes
        assert "deleted" in str(e), e
        mems = []
    for c, mem in zip(scratch, mems):
        assert np.array_equal(mem.numpy(), content("scratch", c.clip_index)[1]), (c, mem)
    clips = bank.clips("v1")
    assert [c.clip_index for c in clips] == list(range(len(clips))), "a gap in committed clips"
    assert all(c.tokens["memory"].n == 2 + c.clip_index % 4 for c in clips)
    n = sum(v.clips for v in bank.videos() if v.video_id != "scratch")
    assert n >= seen[-1], f"committed clips went backwards: {n} < {seen[-1]}"
    seen.append(n)
    (sync / f"ready-{sys.argv[3]}").touch()
print(json.dumps({"searches": searches, "checked": checked, "clips_seen": seen[-1]}))
"""

BURNER = """
import sys, time
end = time.monotonic() + float(sys.argv[1])  # never outlives its test, even if the kill is missed
while time.monotonic() < end:
    pass
"""


def _writer_and_readers(tmp_path, rounds: int, readers: tuple[int, ...], timeout: float) -> None:
    root = tmp_path / "bank"
    with MemoryBank(root) as bank:
        for video in ("v0", "v1", "scratch"):
            bank.add_video(video)
        scope: dict = {}
        exec(COMMON, scope)  # the same content() the processes use
        vec, mem = scope["content"]("v0", 1000)
        bank.add(ClipRecord("v0", 1000, 0, 1, caption="v0/1000"), {"text": vec}, {"memory": mem})
    sync = tmp_path / "sync"
    sync.mkdir()
    args = [str(root), str(sync)]
    procs = [subprocess.Popen([sys.executable, "-c", BURNER, str(timeout)])]
    try:
        procs.append(subprocess.Popen([sys.executable, "-c", WRITER, *args, str(rounds), str(len(readers))],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        procs += [subprocess.Popen([sys.executable, "-c", READER, *args, str(seed)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for seed in readers]
        end = time.monotonic() + timeout
        outs = [p.communicate(timeout=max(1.0, end - time.monotonic())) for p in procs[1:]]
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
    for p, (out, err) in zip(procs[1:], outs):
        assert p.returncode == 0, err
    assert int(outs[0][0]) == rounds
    reports = [json.loads(out) for out, _ in outs[1:]]
    for r in reports:
        assert r["searches"] > 4 and r["checked"] > 0, reports
    with MemoryBank(root) as bank:
        assert bank.stats()["clips"] == sum(v.clips for v in bank.videos())
        assert bank.last_clip("v1") == rounds - 1


def test_writer_and_reader_processes_under_cpu_load(tmp_path):
    _writer_and_readers(tmp_path, rounds=20, readers=(1, 2), timeout=120)


@pytest.mark.slow
def test_writer_and_reader_processes_under_cpu_load_many_rounds(tmp_path):
    _writer_and_readers(tmp_path, rounds=300, readers=(1, 2), timeout=1200)


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
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a reader thread hung"
    assert not errors, errors
    assert reader.search(vecs[399], 1)[0].record.clip_index == 399
    reader.close()
    writer.close()
