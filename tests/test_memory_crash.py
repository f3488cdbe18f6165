"""Crash safety: a writer process killed with SIGKILL at random moments always leaves a consistent bank.

After every kill the bank reopens without repairs beyond torn tails, counts agree everywhere, every stored
token equals what was written, and the next writer resumes after the last committed clip with no duplicate.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from longwatch.memory import BankWarning, MemoryBank

VIDEOS = ["v0", "v1", "v2"]

# Written out in full so the child needs nothing from the tests folder; content() must match expected() below.
CHILD = """
import random, sys
import numpy as np
from longwatch.memory import ClipRecord, MemoryBank

VIDEOS = ["v0", "v1", "v2"]

def content(video, i):
    rng = np.random.default_rng(1000 * VIDEOS.index(video) + i)
    vec = rng.normal(size=16).astype(np.float32)
    return vec / np.linalg.norm(vec), np.full((1 + i % 5, 8), i, np.float16), rng.normal(size=(i % 3, 4)).astype(np.float32)

def item(video, i):
    vec, mem, det = content(video, i)
    return ClipRecord(video, i, 2.0 * i, 2.0 * i + 2, caption=f"{video}/{i}"), {"text": vec}, {"memory": mem, "detail": det}

bank = MemoryBank(sys.argv[1])
rnd = random.Random(int(sys.argv[2]))
print("ready", flush=True)
while True:
    video = rnd.choice(VIDEOS)
    bank.add_video(video, f"/videos/{video}.mp4")
    last = bank.last_clip(video)
    start = 0 if last is None else last + 1
    r = rnd.random()
    if r < 0.02 and start > 20:
        bank.delete(video)
    elif r < 0.07:
        bank.flush()
    elif r < 0.25:
        bank.add_many([item(video, i) for i in range(start, start + 5)])
    else:
        bank.add(*item(video, start))
"""


def expected(video: str, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 * VIDEOS.index(video) + i)
    vec = rng.normal(size=16).astype(np.float32)
    return vec / np.linalg.norm(vec), np.full((1 + i % 5, 8), i, np.float16), rng.normal(size=(i % 3, 4)).astype(np.float32)


def check_consistent(root) -> int:
    """Reopen as the writer and check every invariant; returns the number of committed clips."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", BankWarning)  # a crash must never leave a cache that looks damaged
        bank = MemoryBank(root)
    with bank:
        db = sqlite3.connect(root / "bank.sqlite")
        one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
        clips = one("SELECT count(*) FROM clips")
        # No vector, token row or shard without its record; no record without its video; equal counts.
        assert one("SELECT count(*) FROM tokens WHERE id NOT IN (SELECT id FROM clips)") == 0
        assert one("SELECT count(*) FROM clips WHERE vid NOT IN (SELECT vid FROM videos)") == 0
        if one("SELECT count(*) FROM sqlite_master WHERE name='vec_text'"):
            assert one("SELECT count(*) FROM vec_text WHERE id NOT IN (SELECT id FROM clips)") == 0
            assert one("SELECT count(*) FROM vec_text") == clips == one("SELECT n FROM spaces WHERE space='text'")
            assert bank.stats()["spaces"]["text"]["ntotal"] == clips
        live = {vid for (vid,) in db.execute("SELECT vid FROM videos")}
        ends = dict(((v, k), e) for v, k, e in db.execute(
            "SELECT vid, kind, max(offset + nbytes) FROM tokens GROUP BY vid, kind"))
        for folder in (root / "shards").glob("v*"):
            assert int(folder.name[1:]) in live, f"orphan shard folder {folder}"
            for f in folder.glob("*.tok"):
                assert f.stat().st_size == ends.get((int(folder.name[1:]), f.stem), 0), f"torn tail kept in {f}"
        for video in bank.videos():
            recs = bank.clips(video.video_id)
            assert [r.clip_index for r in recs] == list(range(len(recs))), "gap or duplicate clip"
            if not recs:
                continue
            ids = [r.record_id for r in recs]
            for rec, mem, det in zip(recs, bank.tokens(ids, "memory"), bank.tokens(ids, "detail")):
                vec, want_mem, want_det = expected(video.video_id, rec.clip_index)
                assert rec.caption == f"{video.video_id}/{rec.clip_index}"
                np.testing.assert_array_equal(mem.numpy(), want_mem)
                np.testing.assert_array_equal(det.numpy(), want_det)
            last = recs[-1]
            hit = bank.search(expected(video.video_id, last.clip_index)[0], 1, videos=[video.video_id])[0]
            assert hit.record_id == last.record_id and hit.score == pytest.approx(1.0, abs=1e-5)
        db.close()
        return clips


def run_trials(root, trials: int, seed: int) -> list[int]:
    rnd, counts = random.Random(seed), []
    for trial in range(trials):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(seed * 1000 + trial)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = child.stdout.readline()
            assert line.strip() == "ready", child.stderr.read()
            time.sleep(rnd.uniform(0.0, 1.0))
            assert child.poll() is None, f"writer died on its own: {child.stderr.read()}"
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
            child.stderr.close()
        counts.append(check_consistent(root))
    return counts


def _assert_progress(counts: list[int]) -> None:
    # Each add fsyncs, so on a busy machine few clips land per trial; some must, or nothing was tested.
    assert max(counts) >= 5, f"the writer hardly committed anything before the kills: {counts}"


def test_sigkill_writer_five_times(tmp_path):
    _assert_progress(run_trials(tmp_path / "bank", trials=5, seed=1))


@pytest.mark.slow
def test_sigkill_writer_twenty_times(tmp_path):
    _assert_progress(run_trials(tmp_path / "bank", trials=20, seed=2))
