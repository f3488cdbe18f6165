"""MemoryBank behaviour a pipeline relies on: add/search/tokens/delete across videos, reopen, and bad inputs.

Search is checked against brute-force numpy over the same seeded vectors.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from longwatch.memory.shards import ALIGN
from longwatch.memory import BankInputError, BankWarning, ClipRecord, IndexConfig, MemoryBank
from longwatch.errors import BankError


def unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    v = rng.normal(size=shape).astype(np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def fill(bank: MemoryBank, videos: dict[str, int], dim: int = 32, seed: int = 0) -> dict[int, np.ndarray]:
    """Add `n` clips per video with text vectors and bf16/fp16 tokens; returns record id -> text vector."""
    rng, out = np.random.default_rng(seed), {}
    for video, n in videos.items():
        bank.add_video(video, f"/videos/{video}.mp4", {"fps": 30.0})
        for i in range(n):
            vec = unit(rng, dim)
            rid = bank.add(ClipRecord(video, i, 4.0 * i, 4.0 * i + 4, caption=f"{video} clip {i}", meta={"i": i}),
                           {"text": vec, "visual": unit(rng, 8)},
                           {"memory": torch.full((3 + i % 4, 16), float(i), dtype=torch.bfloat16),
                            "detail": np.full((i % 3, 8), i, np.float16)})
            out[rid] = vec
    return out


def brute(vecs: dict[int, np.ndarray], q: np.ndarray, k: int) -> list[int]:
    ids = np.array(list(vecs))
    scores = np.stack(list(vecs.values())) @ q
    return [int(i) for i in ids[np.argsort(-scores, kind="stable")[:k]]]


def test_search_tokens_and_filters_match_brute_force(tmp_path):
    rng = np.random.default_rng(1)
    with MemoryBank(tmp_path / "bank") as bank:
        vecs = fill(bank, {"a": 40, "b": 30, "c": 10})
        q = unit(rng, 32)
        hits = bank.search(q, k=10)
        assert [h.record_id for h in hits] == brute(vecs, q, 10)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        # Per-video and time-window search are exact over that subset.
        b_ids = {h.record_id for h in bank.search(q, k=100, videos=["b"])}
        assert len(b_ids) == 30 and all(r.video_id == "b" for r in bank.records(sorted(b_ids)))
        sub = {i: v for i, v in vecs.items() if i in b_ids}
        assert [h.record_id for h in bank.search(q, 5, videos="b")] == brute(sub, q, 5)
        window = bank.search(q, 100, videos=["a", "c"], time_range=(10.0, 20.0))
        assert {(h.record.video_id, h.record.clip_index) for h in window} == {
            (v, i) for v in "ac" for i in (2, 3, 4, 5)}
        # Tokens come back with shape and dtype as stored, per record, in the order asked.
        hit = bank.search(q, 1, videos="a")[0]
        (mem,) = bank.tokens([hit.record_id], "memory")
        i = hit.record.clip_index
        assert mem.dtype == torch.bfloat16 and mem.shape == (3 + i % 4, 16) and bool((mem == i).all())
        ids = [h.record_id for h in hits]
        for rid, det, rec in zip(ids, bank.tokens(ids, "detail"), bank.records(ids)):
            assert det.dtype == torch.float16 and det.shape == (rec.clip_index % 3, 8)
            assert rec.tokens["detail"].n == rec.clip_index % 3
        # A second space has its own index.
        assert bank.spaces() == {"text": 32, "visual": 8}
        assert len(bank.search(unit(rng, 8), 3, space="visual")) == 3


def test_tokens_are_memory_mapped_views_not_copies(tmp_path):
    with MemoryBank(tmp_path / "bank") as bank:
        fill(bank, {"a": 3})
        t0, t1, t2 = bank.tokens([1, 2, 3], "memory")
        # Consecutive clips sit back to back (64-byte aligned) in one mapping of the shard: views, not copies.
        assert t1.data_ptr() - t0.data_ptr() == -(-t0.numel() * 2 // ALIGN) * ALIGN
        assert t2.data_ptr() - t1.data_ptr() == -(-t1.numel() * 2 // ALIGN) * ALIGN
        t2.fill_(-1)  # a caller scribbling on its tensor must not change the bank (copy-on-write map)
        assert bool((bank.tokens([3], "memory")[0] == 2).all())


def test_reopen_resume_videos_and_stats(tmp_path):
    root = tmp_path / "bank"
    with MemoryBank(root) as bank:
        vecs = fill(bank, {"a": 12, "b": 5})
        bank.mark_complete("b")
    with MemoryBank(root) as bank:
        assert bank.last_clip("a") == 11 and bank.last_clip("nope") is None
        assert [(v.video_id, v.clips, v.last_clip, v.complete) for v in bank.videos()] == [
            ("a", 12, 11, False), ("b", 5, 4, True)]
        assert bank.video("a").duration == 48.0 and bank.video("a").info == {"fps": 30.0}
        assert [c.clip_index for c in bank.clips("a")] == list(range(12))
        assert bank.add_video("a", "other").source == "/videos/a.mp4"  # idempotent
        q = next(iter(vecs.values()))
        assert bank.search(q, 1)[0].record_id == next(iter(vecs))
        s = bank.stats()
        assert s["videos"] == 2 and s["clips"] == 17 and s["spaces"]["text"]["ntotal"] == 17
        assert s["bytes"]["total"] == s["bytes"]["sqlite"] + s["bytes"]["index"] + s["bytes"]["shards"] > 0
        assert not bank.repaired  # a clean close leaves nothing to repair


def test_delete_removes_everything_and_reclaims_space(tmp_path):
    root = tmp_path / "bank"
    with MemoryBank(root) as bank:
        vecs = fill(bank, {"big": 300, "small": 5})
        before = bank.stats()["bytes"]
        big_ids = [c.record_id for c in bank.clips("big")]
        assert bank.delete("big") == 300
        after = bank.stats()["bytes"]
        assert after["shards"] < before["shards"] and after["sqlite"] < before["sqlite"]
        assert not (root / "shards" / "v1").exists()
        q = vecs[big_ids[0]]
        assert all(h.record.video_id == "small" for h in bank.search(q, 10))
        with pytest.raises(BankInputError, match="not in the bank"):
            bank.records(big_ids[:1])
        with pytest.raises(BankInputError, match="'big' is not in the bank"):
            bank.search(q, 3, videos=["big"])
        bank.add_video("big")  # re-adding starts afresh, under new record ids
        assert bank.last_clip("big") is None
    with MemoryBank(root) as bank:
        assert bank.stats()["spaces"]["text"]["ntotal"] == 5 and not bank.repaired


def test_approximate_index_past_threshold_survives_reopen(tmp_path):
    root, cfg = tmp_path / "bank", IndexConfig(approx="ivf", approx_threshold=2000)
    rng = np.random.default_rng(3)
    centers = unit(rng, 50, 32)
    x = centers[rng.integers(0, 50, 3000)] + rng.normal(0, 0.05, (3000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    with MemoryBank(root, index=cfg) as bank:
        bank.add_video("v")
        ids = bank.add_many([(ClipRecord("v", i, i, i + 1), {"text": x[i]}, None) for i in range(3000)])
        assert bank.stats()["spaces"]["text"]["kind"] == "ivf"
    with MemoryBank(root, index=cfg) as bank:
        st = bank.stats()["spaces"]["text"]
        assert st["kind"] == "ivf" and st["ntotal"] == 3000 and st["recall"] >= 0.95
        vec_of = dict(zip(ids, x))
        got = [h.record_id for h in bank.search(x[17], 10, videos=["v"])]
        assert got == brute(vec_of, x[17], 10)  # per-video search stays exact
        # Clips added to a trained IVF index are searchable at once, archive-wide and per video.
        bank.add_video("w")
        y = unit(rng, 20, 32)
        new = bank.add_many([(ClipRecord("w", i, i, i + 1), {"text": y[i]}, None) for i in range(20)])
        assert bank.stats()["spaces"]["text"]["kind"] == "ivf"
        assert [bank.search(y[i], 1)[0].record_id for i in range(20)] == new
        vec_of.update(zip(new, y))
        assert [h.record_id for h in bank.search(y[3], 10, videos=["w", "v"])] == brute(vec_of, y[3], 10)


# --- bad inputs: clear errors, nothing lost --------------------------------------------------------------

def test_bad_vectors_and_records_are_refused_without_writing(tmp_path):
    root = tmp_path / "bank"
    rng = np.random.default_rng(4)
    with MemoryBank(root) as bank:
        fill(bank, {"a": 4})
        before = bank.stats()
        good = {"text": unit(rng, 32)}
        bad_cases = [
            (ClipRecord("a", 9, 0, 1), {"text": unit(rng, 31)}, None, "dim 31.*32-d"),
            (ClipRecord("a", 9, 0, 1), {"text": np.full(32, np.nan, np.float32)}, None, "NaN or inf"),
            (ClipRecord("a", 9, 0, 1), {"text": np.full(32, np.inf, np.float32)}, None, "NaN or inf"),
            (ClipRecord("zz", 0, 0, 1), good, None, "'zz' is not in the bank"),
            (ClipRecord("a", 2, 0, 1), good, None, "already in the bank.*last committed clip: 3"),
            (ClipRecord("a", 9, 5, 1), good, None, "t0 <= t1"),
            (ClipRecord("a", 9, 0, 1), good, {"memory": np.zeros((2, 2, 2), np.float16)}, r"expected \[N, D\]"),
            (ClipRecord("a", 9, 0, 1), good, {"memory": torch.tensor([[float("nan")]])}, "NaN or inf"),
            (ClipRecord("a", 9, 0, 1), good, {"memory": np.zeros((2, 2), np.int64)}, "dtype int64"),
            (ClipRecord("a", 9, 0, 1), good, {"bad kind!": np.zeros((2, 2), np.float16)}, "not a valid name"),
            (ClipRecord("a", 9, 0, 1), {"drop table": unit(rng, 4)}, None, "not a valid name"),
        ]
        for rec, vecs, toks, msg in bad_cases:
            with pytest.raises(BankInputError, match=msg):
                bank.add(rec, vecs, toks)
        # A batch with one bad clip commits none of them.
        with pytest.raises(BankInputError, match="NaN"):
            bank.add_many([(ClipRecord("a", 10, 0, 1), good, {"memory": np.ones((2, 16), np.float16)}),
                           (ClipRecord("a", 11, 0, 1), {"text": np.full(32, np.nan, np.float32)}, None)])
        assert bank.stats()["clips"] == before["clips"] and bank.last_clip("a") == 3
        for q, msg in [(unit(rng, 8), "dim 8"), (np.full(32, np.nan), "NaN"), ("text", "not numeric")]:
            with pytest.raises(BankInputError, match=msg):
                bank.search(q, 3)
        with pytest.raises(BankInputError, match="no vectors in space 'ocr'"):
            bank.search(unit(rng, 32), 3, space="ocr")
        with pytest.raises(BankInputError, match="no 'svlm' tokens"):
            bank.tokens([1], "svlm")
        with pytest.raises(BankInputError, match="'zz' is not in the bank"):
            bank.delete("zz")
        # The shard files hold only committed bytes: the refused batch's tokens were cut off again.
        assert bank.add(ClipRecord("a", 4, 16, 20), good, {"memory": np.ones((2, 16), np.float16)}) > 0
        assert bool((bank.tokens([bank.clips("a")[-1].record_id], "memory")[0] == 1).all())
    with MemoryBank(root) as bank:
        assert bank.stats()["clips"] == before["clips"] + 1 and not bank.repaired


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "stale"])
def test_damaged_index_file_is_rebuilt_with_a_warning(tmp_path, damage):
    root = tmp_path / "bank"
    with MemoryBank(root) as bank:
        vecs = fill(bank, {"a": 30})
    path = root / "index" / "text.faiss"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:])
    elif damage == "garbage":
        path.write_bytes(b"not an index at all")
    else:  # a cache whose stamp disagrees with SQLite's counts (e.g. copied from another bank)
        assert b'"ntotal": 30' in data
        path.write_bytes(data.replace(b'"ntotal": 30', b'"ntotal": 29'))
    with pytest.warns(BankWarning, match="rebuilding it from bank.sqlite"):
        bank = MemoryBank(root)
    with bank:
        assert bank.repaired["rebuilt_indexes"] == 1
        q = next(iter(vecs.values()))
        assert bank.search(q, 1)[0].record_id == next(iter(vecs))
        assert bank.stats()["spaces"]["text"]["ntotal"] == bank.stats()["clips"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt cache was saved: the next open is quiet
        MemoryBank(root).close()


def test_folders_that_are_not_banks(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(BankError, match=r"not a memory bank \(found: cat.jpg"):
        MemoryBank(tmp_path / "photos")
    (tmp_path / "file.txt").write_text("hi")
    with pytest.raises(BankError, match="found: a file"):
        MemoryBank(tmp_path / "file.txt")
    with pytest.raises(BankError, match="no memory bank here"):
        MemoryBank(tmp_path / "missing", readonly=True)
    with pytest.raises(BankError, match="no memory bank here"):
        MemoryBank(tmp_path / "missing", create=False)
    assert list((tmp_path / "photos").iterdir()) == [tmp_path / "photos" / "cat.jpg"]  # untouched
    MemoryBank(tmp_path / "bank").close()
    (tmp_path / "bank" / "bank.sqlite").write_bytes(b"garbage" * 100)
    with pytest.raises(BankError, match="cannot read the bank's database"):
        MemoryBank(tmp_path / "bank")


def test_one_writer_at_a_time_and_readonly_handles(tmp_path):
    root = tmp_path / "bank"
    with MemoryBank(root) as bank:
        fill(bank, {"a": 3})
        with pytest.raises(BankError, match="another writer holds this bank"):
            MemoryBank(root)
        with MemoryBank(root, readonly=True) as reader:
            assert reader.stats()["clips"] == 3
            with pytest.raises(BankError, match="opened read-only"):
                reader.add_video("b")
            bank.add(ClipRecord("a", 3, 12, 16), {"text": unit(np.random.default_rng(0), 32)}, None)
            assert reader.stats()["clips"] == 4  # a reader sees each commit on its next query
            assert reader.stats()["spaces"]["text"]["ntotal"] == 4
    bank.close()  # closing twice is harmless
    with pytest.raises(BankError, match="closed"):
        bank.videos()


READONLY_CHILD = """
import site, sys
site.addsitedir(sys.argv[2])  # the project's venv, for an interpreter run as another user
import numpy as np
from longwatch.memory import MemoryBank
from longwatch.errors import BankError
try:
    MemoryBank(sys.argv[1])
    print("opened for writing")
except BankError as e:
    print("refused:", e)
with MemoryBank(sys.argv[1], readonly=True) as bank:
    print("clips", bank.stats()["clips"], "hit", bank.search(np.ones(32, np.float32) / 32 ** 0.5, 1)[0].record_id)
"""


def _demote() -> None:
    os.setgid(65534)
    os.setuid(65534)


def _python_for_nobody(site_dir: str) -> str | None:
    """An interpreter an unprivileged user may run (the venv's may live under /root) that imports the bank."""
    for exe in (sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"):
        try:
            probe = subprocess.run([exe, "-c", f"import site; site.addsitedir({site_dir!r}); import longwatch.memory"],
                                   preexec_fn=_demote, capture_output=True, timeout=60)
        except OSError:
            continue
        if probe.returncode == 0:
            return exe
    return None


def test_read_only_folder():
    """A bank in a folder the user cannot write: writing is refused with a hint, reading works."""
    import site
    import tempfile

    site_dir = site.getsitepackages()[0]
    root = tempfile.mkdtemp(prefix="lw-ro-")  # under /tmp, reachable by an unprivileged user
    try:
        with MemoryBank(f"{root}/bank") as bank:
            fill(bank, {"a": 5})
        os.chmod(root, 0o755)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)
        if os.geteuid() == 0:  # root ignores permissions: run the child as nobody
            exe, demote = _python_for_nobody(site_dir), _demote
            if exe is None:
                pytest.skip("no interpreter an unprivileged user can run")
        else:
            exe, demote = sys.executable, None
            os.chmod(f"{root}/bank", 0o555)
        out = subprocess.run([exe, "-c", READONLY_CHILD, f"{root}/bank", site_dir], capture_output=True,
                             text=True, timeout=120, preexec_fn=demote, env={**os.environ, "HOME": root})
        assert out.returncode == 0, out.stderr
        assert "refused:" in out.stdout and "readonly=True" in out.stdout, out.stdout
        assert "clips 5 hit" in out.stdout
    finally:
        os.chmod(f"{root}/bank", 0o755)
        subprocess.run(["rm", "-rf", root], check=True)


@pytest.mark.parametrize("bad", ["../../victim/thesis", "a/b", "*", "", ".hidden", "nul\x00byte", "x" * 129,
                                 "sp ace", "back\\slash"])
def test_invalid_video_ids_are_refused_before_anything_is_written(tmp_path, bad):
    from longwatch.memory import InvalidVideoId

    outside = tmp_path / "victim" / "thesis.txt"
    outside.parent.mkdir()
    outside.write_text("keep me")
    with MemoryBank(tmp_path / "bank") as bank:
        fill(bank, {"ok-video": 2})
        for call in (lambda: bank.add_video(bad), lambda: bank.delete(bad), lambda: bank.video(bad),
                     lambda: bank.add_gap(bad, 0.0, 1.0, "damaged")):
            with pytest.raises(InvalidVideoId, match="not allowed|must be a string"):
                call()
        assert [v.video_id for v in bank.videos()] == ["ok-video"]
    assert outside.read_text() == "keep me"


def test_gaps_are_stored_listed_and_deleted_with_their_video(tmp_path):
    with MemoryBank(tmp_path / "bank") as bank:
        fill(bank, {"damaged": 3, "fine": 2})
        bank.add_gap("damaged", 12.0, 16.5, "undecodable frames")
        bank.add_gap("damaged", 4.0, 8.0, "undecodable frames")
        with pytest.raises(BankInputError):
            bank.add_gap("damaged", 9.0, 3.0, "backwards")
        assert [(g.t0, g.t1) for g in bank.video("damaged").gaps] == [(4.0, 8.0), (12.0, 16.5)]
        assert {v.video_id: len(v.gaps) for v in bank.videos()} == {"damaged": 2, "fine": 0}
        bank.delete("damaged")
        bank.add_video("damaged")
        assert bank.gaps("damaged") == []
    with MemoryBank(tmp_path / "bank", readonly=True) as reader:
        assert reader.video("fine").gaps == []
