"""Opening a bank as "auto": the writer when nobody else writes, else a reader of what is committed so far.

Also a bank that another process is still creating: a reader is told to wait, a writer finishes the creation.
"""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from longwatch.memory import BankBusy, BankInputError, ClipRecord, MemoryBank
from longwatch.memory.store import DB, MARKER
from longwatch.errors import BankError


def _add(bank: MemoryBank, video: str, i: int) -> None:
    vec = np.zeros(8, np.float32)
    vec[i % 8] = 1.0
    bank.add(ClipRecord(video, i, 2.0 * i, 2.0 * i + 2, caption=f"{video} {i}"), {"text": vec},
             {"memory": np.full((2, 4), i, np.float16)})


def test_auto_writes_alone_and_reads_beside_another_writer(tmp_path):
    root = tmp_path / "bank"
    with MemoryBank(root, readonly="auto") as first:  # nobody else: it creates the bank and writes
        assert not first.readonly and first.reader_note is None
        first.add_video("talk")
        _add(first, "talk", 0)
        with pytest.raises(BankBusy, match="another writer holds this bank"):
            MemoryBank(root)
        with MemoryBank(root, readonly="auto") as second:
            assert second.readonly and "another process" in second.reader_note
            assert [c.clip_index for c in second.clips("talk")] == [0]
            _add(first, "talk", 1)
            assert [c.clip_index for c in second.clips("talk")] == [0, 1]  # each query sees the newest commit
            assert second.search(np.eye(8, dtype=np.float32)[1], 1)[0].record.clip_index == 1
            with pytest.raises(BankError, match="opened read-only"):
                second.delete("talk")
    with MemoryBank(root, readonly="auto") as again:  # the writer has gone: the next "auto" writes
        assert not again.readonly
        assert again.delete("talk") == 2
    with pytest.raises(BankInputError, match="readonly must be"):
        MemoryBank(root, readonly="yes")


def test_a_bank_being_created_is_not_read_half_made(tmp_path):
    root = tmp_path / "bank"
    root.mkdir()
    sqlite3.connect(root / DB).close()  # what a creating writer leaves before its tables and marker exist
    (root / "writer.lock").touch()
    for kwargs in ({"readonly": True}, {"create": False}):
        with pytest.raises(BankError, match="still being created"):
            MemoryBank(root, **kwargs)
    assert not (root / MARKER).exists()
    with MemoryBank(root) as bank:  # a writer finishes the interrupted creation
        bank.add_video("talk")
        _add(bank, "talk", 0)
    assert (root / MARKER).exists()
    with MemoryBank(root, readonly=True) as reader:
        assert reader.stats()["clips"] == 1




def test_a_pinned_snapshot_sees_no_commit_until_it_ends_and_does_not_stall_a_delete(tmp_path):
    root = tmp_path / "bank"
    with MemoryBank(root) as writer:
        for video in ("talk", "other"):
            writer.add_video(video)
            _add(writer, video, 0)
        with MemoryBank(root, readonly=True) as reader:
            with reader.snapshot():
                ids = [c.record_id for c in reader.clips("talk")]
                _add(writer, "talk", 1)
                start = time.monotonic()
                writer.delete("other")  # its checkpoint waits a moment for the pinned snapshot, not 30 s
                assert time.monotonic() - start < 10
                assert [c.clip_index for c in reader.clips("talk")] == [0]
                assert [v.video_id for v in reader.videos()] == ["talk", "other"]
                assert [h.record_id for h in reader.search(np.eye(8, dtype=np.float32)[0], 5, videos="talk")] == ids
                assert reader.tokens(ids, "memory")[0].shape == (2, 4)
            assert [c.clip_index for c in reader.clips("talk")] == [0, 1]
            assert [v.video_id for v in reader.videos()] == ["talk"]
