"""Every bank entry point that takes a video id refuses an invalid one with InvalidVideoId, before touching anything.

Ids are names in SQLite only: shard folders are named by the integer row id, so no id ever becomes a path.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from longwatch.memory import ClipRecord, InvalidVideoId, MemoryBank

BAD = ["../../victim/thesis", "a/b", "..", "*", "v?", "[ab]", "nul\x00byte", "x" * 129, "", ".hidden", "tab\tid",
       "C:\\victim", "ünïcode", 7, None, ["ok-video"]]


def _tree(root) -> dict[str, int]:
    """Every file under `root` with its size: the whole bank's state on disk."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = os.path.getsize(path)
    return out


def _clip(video_id, i: int = 5):
    vec = np.zeros(8, np.float32)
    vec[0] = 1.0
    return ClipRecord(video_id, i, 4.0 * i, 4.0 * i + 4, caption="x"), {"text": vec}, {"memory": np.ones((2, 4),
                                                                                                       np.float16)}


def _entry_points(bank: MemoryBank, bad) -> dict:
    q = np.ones(8, np.float32) / np.sqrt(8)
    return {
        "add_video": lambda: bank.add_video(bad, "/videos/x.mp4"),
        "add": lambda: bank.add(*_clip(bad)),
        "add_many": lambda: bank.add_many([_clip("ok-video", 9), _clip(bad)]),  # the good one is not kept either
        "add_gap": lambda: bank.add_gap(bad, 0.0, 1.0, "damaged"),
        "mark_complete": lambda: bank.mark_complete(bad),
        "delete": lambda: bank.delete(bad),
        "video": lambda: bank.video(bad),
        "clips": lambda: bank.clips(bad),
        "gaps": lambda: bank.gaps(bad),
        "last_clip": lambda: bank.last_clip(bad),
        "search filter": lambda: bank.search(q, 3, videos=[bad]),
        "search filter among good": lambda: bank.search(q, 3, videos=["ok-video", bad]),
    }


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_every_entry_point_refuses_an_invalid_id_and_changes_nothing(tmp_path, bad):
    outside = tmp_path / "victim" / "thesis.txt"
    outside.parent.mkdir()
    outside.write_text("keep me")
    root = tmp_path / "bank"
    with MemoryBank(root) as bank:
        bank.add_video("ok-video")
        for i in range(3):
            bank.add(*_clip("ok-video", i))
        bank.flush()
        before = _tree(root)
        for name, call in _entry_points(bank, bad).items():
            with pytest.raises(InvalidVideoId, match="not allowed|must be a string"):
                call()
            assert _tree(root) == before, f"{name} touched the bank"
        assert [(v.video_id, v.clips) for v in bank.videos()] == [("ok-video", 3)]
        assert bank.last_clip("ok-video") == 2
    with MemoryBank(root, readonly=True) as reader:  # a reader's entry points refuse the same ids
        for name in ("video", "clips", "gaps", "last_clip", "search filter"):
            with pytest.raises(InvalidVideoId):
                _entry_points(reader, bad)[name]()
    assert outside.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["bank", "victim"]


def test_shard_folders_are_named_by_row_id_never_by_video_id(tmp_path):
    root = tmp_path / "bank"
    names = ["lecture-01", "lecture..01", "a.b.c", "-dash", "x" * 128]
    with MemoryBank(root) as bank:
        for name in names:
            bank.add_video(name)
            bank.add(*_clip(name, 0))
        vids = {name: bank._vid(name) for name in names}
    assert sorted(os.listdir(root / "shards")) == sorted(f"v{vid}" for vid in vids.values())
    assert not any(name in path for path in _tree(root) for name in names)
    with MemoryBank(root) as bank:
        bank.delete("lecture..01")
        assert not (root / "shards" / f"v{vids['lecture..01']}").exists()
        assert {v.video_id for v in bank.videos()} == set(names) - {"lecture..01"}
