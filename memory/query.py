"""The bank's read side: search, records, clips, token tensors, videos and stats.

Mixed into MemoryBank; every query runs in one snapshot (see MemoryBank._snapshot), caught up to it first.
"""

from __future__ import annotations

import json

import numpy as np

from longwatch.memory.records import BankInputError, ClipRecord, Gap, Hit, TokenRef, VideoRecord
from longwatch.memory.shards import check_kind
from longwatch.errors import BankError

_CHUNK = 500  # ids per `IN (...)` query, under SQLite's bound-parameter limit

_VIDEO_SQL = ("SELECT v.video_id, v.source, v.info, v.complete, count(c.id), max(c.clip_index), max(c.t1), v.created "
              "FROM videos v LEFT JOIN clips c USING(vid)")
_CLIP_SQL = ("SELECT c.id, v.video_id, c.clip_index, c.t0, c.t1, c.caption, c.ocr_text, c.meta "
             "FROM clips c JOIN videos v USING(vid)")


def _video(row) -> VideoRecord:
    video_id, source, info, complete, clips, last, duration, created = row
    return VideoRecord(video_id, source, json.loads(info), bool(complete), clips, last, duration, created)


class QueryMixin:
    """search / records / clips / tokens / videos / stats over a MemoryBank's SQLite, indexes and shards."""

    def search(self, vec, k: int = 10, space: str = "text", videos: list[str] | str | None = None,
               time_range: tuple[float, float] | None = None) -> list[Hit]:
        """Top-k clips by inner product with `vec[D]`, best first.

        `videos` and `time_range` (clips overlapping [t0, t1] seconds) restrict the candidates; a restricted
        set of up to 50k clips (e.g. one video) is scored exactly whatever the archive-wide index is.
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise BankInputError(f"k must be a positive integer, got {k!r}")
        with self._reading():
            if space not in self._indexes:
                raise BankInputError(f"no vectors in space {space!r} (spaces: {sorted(self._indexes) or 'none yet'}). "
                                     f"Search a space the bank was filled with.")
            q = self._check_vector(vec, space, None, "query")
            idx = self._indexes[space]
            subset = None
            if videos is not None or time_range is not None:
                subset = self._candidates(space, videos, time_range, idx.max_id)
                if not len(subset):
                    return []
            scores, ids = idx.search(q[None], int(k), subset)
            found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
            records = self._record_map([i for i, _ in found])
            # An id the writer deleted after our index was caught up has no record: drop it.
            return [Hit(i, s, records[i]) for i, s in found if i in records]

    def _candidates(self, space: str, videos, time_range, max_id: int) -> np.ndarray:
        sql, args = f"SELECT c.id FROM clips c JOIN vec_{space} x ON x.id = c.id WHERE c.id <= ?", [max_id]
        if videos is not None:
            vids = [self._vid(v) for v in ([videos] if isinstance(videos, str) else videos)]
            if not vids:
                return np.zeros(0, np.int64)
            sql += f" AND c.vid IN ({','.join('?' * len(vids))})"
            args += vids
        if time_range is not None:
            t0, t1 = (float(t) for t in time_range)
            if not t0 <= t1:
                raise BankInputError(f"time_range {time_range!r} must be (t0, t1) with t0 <= t1, in seconds")
            sql += " AND c.t1 >= ? AND c.t0 <= ?"
            args += [t0, t1]
        return np.array([i for (i,) in self._db().execute(sql, args)], np.int64)

    def _record_map(self, ids: list[int]) -> dict[int, ClipRecord]:
        out: dict[int, ClipRecord] = {}
        db = self._db()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for rid, video_id, index, t0, t1, caption, ocr, meta in db.execute(
                    f"{_CLIP_SQL} WHERE c.id IN ({marks})", chunk):
                out[rid] = ClipRecord(video_id, index, t0, t1, caption, ocr, json.loads(meta), rid)
            for rid, kind, n, d, dtype in db.execute(
                    f"SELECT id, kind, n, d, dtype FROM tokens WHERE id IN ({marks})", chunk):
                if rid in out:
                    out[rid].tokens[kind] = TokenRef(kind, n, d, dtype)
        return out

    def records(self, ids: list[int]) -> list[ClipRecord]:
        """Records of the given ids, in that order."""
        ids = [int(i) for i in ids]
        with self._reading():
            found = self._record_map(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise BankInputError(f"record ids {missing[:10]} are not in the bank (deleted, or never committed)")
        return [found[i] for i in ids]

    def clips(self, video_id: str) -> list[ClipRecord]:
        """All committed clips of a video, ordered by clip index."""
        with self._reading():
            vid = self._vid(video_id)
            ids = [i for (i,) in self._db().execute("SELECT id FROM clips WHERE vid=? ORDER BY clip_index", (vid,))]
            found = self._record_map(ids)
        return [found[i] for i in ids if i in found]

    def tokens(self, ids: list[int], kind: str) -> list:
        """Token tensors [N, D] (torch, dtype as stored) of the given records, viewing the memory-mapped shards."""
        check_kind(kind)
        ids = [int(i) for i in ids]
        with self._reading():
            rows: dict[int, tuple] = {}
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                for rid, vid, off, n, d, dtype in self._db().execute(
                        f"SELECT id, vid, offset, n, d, dtype FROM tokens WHERE kind=? AND id IN "
                        f"({','.join('?' * len(chunk))})", [kind, *chunk]):
                    rows[rid] = (vid, off, n, d, dtype)
            missing = [i for i in ids if i not in rows]
            if missing:
                kinds = sorted({k for (k,) in self._db().execute("SELECT DISTINCT kind FROM tokens")})
                raise BankInputError(f"records {missing[:10]} have no {kind!r} tokens (kinds in this bank: "
                                     f"{kinds or 'none'}; a record may also have been deleted)")
            try:
                return self.shards.read(kind, [rows[i] for i in ids])
            except FileNotFoundError as e:
                raise BankError(f"{e.filename}: a shard vanished while reading (its video was deleted meanwhile). "
                                f"Search again.") from e

    def videos(self) -> list[VideoRecord]:
        with self._reading():
            videos = [_video(r) for r in self._db().execute(f"{_VIDEO_SQL} GROUP BY v.vid ORDER BY v.vid")]
            gaps: dict[str, list[Gap]] = {}
            for video_id, t0, t1, reason in self._db().execute(
                    "SELECT v.video_id, g.t0, g.t1, g.reason FROM gaps g JOIN videos v USING(vid) ORDER BY g.t0"):
                gaps.setdefault(video_id, []).append(Gap(t0, t1, reason))
            for v in videos:
                v.gaps = gaps.get(v.video_id, [])
            return videos

    def video(self, video_id: str) -> VideoRecord:
        with self._reading():
            row = self._db().execute(f"{_VIDEO_SQL} WHERE v.vid=? GROUP BY v.vid", (self._vid(video_id),)).fetchone()
            record = _video(row)
            record.gaps = self.gaps(video_id)
            return record

    def gaps(self, video_id: str) -> list[Gap]:
        """Time ranges of `video_id` that could not be decoded, in time order."""
        with self._reading():
            rows = self._db().execute("SELECT t0, t1, reason FROM gaps WHERE vid=? ORDER BY t0", (self._vid(video_id),))
            return [Gap(t0, t1, reason) for t0, t1, reason in rows]

    def spaces(self) -> dict[str, int]:
        """Vector space name -> dimension."""
        with self._reading():
            return dict(self._dims)

    def stats(self) -> dict:
        """Counts, per-space index kind and measured recall, and bytes on disk per part."""
        with self._reading() as db:
            sql_bytes = sum(p.stat().st_size for p in self.root.glob("bank.sqlite*"))
            index_bytes = sum(p.stat().st_size for p in (self.root / "index").glob("*.faiss"))
            shard_bytes = self.shards.nbytes()
            return {
                "videos": db.execute("SELECT count(*) FROM videos").fetchone()[0],
                "clips": db.execute("SELECT count(*) FROM clips").fetchone()[0],
                "spaces": {s: dict(idx.state(), space=s) for s, idx in self._indexes.items()},
                "bytes": {"sqlite": sql_bytes, "index": index_bytes, "shards": shard_bytes,
                          "total": sql_bytes + index_bytes + shard_bytes},
                "repaired": dict(self.repaired),
            }
