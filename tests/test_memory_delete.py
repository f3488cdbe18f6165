"""Deleting a video gives its disk back: bank.sqlite shrinks by what the video added, its shard folder goes.

Also for a bank file made before auto_vacuum was INCREMENTAL, which its first delete converts.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from longwatch.memory import ClipRecord, MemoryBank


def _add_video(bank: MemoryBank, video: str, n: int, seed: int) -> None:
    """n clips with a 256-d text vector, a caption, OCR text and a token tensor each, in batches of 500."""
    rng = np.random.default_rng(seed)
    bank.add_video(video, f"/videos/{video}.mp4")
    for start in range(0, n, 500):
        batch = []
        for i in range(start, min(n, start + 500)):
            vec = rng.normal(size=256).astype(np.float32)
            batch.append((ClipRecord(video, i, 4.0 * i, 4.0 * i + 4, caption=f"{video} clip {i} " * 8,
                                     ocr_text=f"slide {i}", meta={"i": i}),
                          {"text": vec / np.linalg.norm(vec)}, {"memory": np.full((4, 16), i % 7, np.float16)}))
        bank.add_many(batch)


def _sqlite_bytes(root) -> int:
    return sum(p.stat().st_size for p in root.glob("bank.sqlite*"))


@pytest.mark.parametrize("made", ["new", "before-auto-vacuum"])
def test_deleting_a_large_video_gives_its_sqlite_pages_and_shards_back(tmp_path, made):
    root = tmp_path / "bank"
    with MemoryBank(root, durable=False) as bank:
        _add_video(bank, "small", 20, seed=1)
    if made == "before-auto-vacuum":
        with sqlite3.connect(root / "bank.sqlite", isolation_level=None) as conn:
            conn.executescript("PRAGMA auto_vacuum=NONE; VACUUM;")
            assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
        conn.close()
    base = _sqlite_bytes(root)
    with MemoryBank(root, durable=False) as bank:
        _add_video(bank, "large", 3000, seed=2)
        large_vid = bank._vid("large")
    grown = _sqlite_bytes(root)  # a clean close checkpoints the WAL into bank.sqlite
    assert grown - base > 2_000_000, "the large video should add megabytes"
    assert (root / "shards" / f"v{large_vid}" / "memory.tok").exists()
    with MemoryBank(root, durable=False) as bank:
        assert bank.delete("large") == 3000
        assert _sqlite_bytes(root) - base <= 0.2 * (grown - base), "an open bank shrinks at the delete"
        assert bank._db().execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # the next delete is incremental
        assert [v.video_id for v in bank.videos()] == ["small"]
        assert [c.clip_index for c in bank.clips("small")] == list(range(20))
    shrunk = _sqlite_bytes(root)
    assert grown - shrunk >= 0.8 * (grown - base), f"sqlite {base} -> {grown} -> {shrunk} bytes"
    assert not (root / "shards" / f"v{large_vid}").exists()
    with MemoryBank(root, readonly=True) as reader:
        assert reader.stats()["clips"] == 20 and not reader.repaired


def test_a_writer_opening_a_bank_gives_back_pages_left_free_by_earlier_deletes(tmp_path):
    """Banks whose deletes freed one page per delete (the old bug) shrink the next time a writer opens them."""
    root = tmp_path / "bank"
    with MemoryBank(root, durable=False) as bank:
        _add_video(bank, "small", 20, seed=1)
    base = _sqlite_bytes(root)
    with sqlite3.connect(root / "bank.sqlite", isolation_level=None) as conn:  # free pages, as the old delete left
        conn.execute("CREATE TABLE junk(b BLOB)")
        conn.executemany("INSERT INTO junk VALUES (?)", [(bytes(4000),)] * 1000)
        conn.execute("DROP TABLE junk")
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] > 900
    conn.close()
    assert _sqlite_bytes(root) > base + 3_000_000
    with MemoryBank(root, readonly=True) as reader:  # a reader leaves the file alone
        assert reader.stats()["clips"] == 20
    assert _sqlite_bytes(root) > base + 3_000_000
    with MemoryBank(root, durable=False) as bank:
        assert bank.stats()["clips"] == 20
    assert _sqlite_bytes(root) <= base + 100_000
