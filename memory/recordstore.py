"""The bank's SQLite record store: videos, clips, vectors, token locations and gaps as rows, read and written.

Holds the connection and two writer caches (video row ids, committed shard ends); knows nothing of FAISS or files.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from longwatch.errors import BankError
from longwatch.memory import store
from longwatch.memory.records import BankInputError, ClipRecord, Gap, TokenRef, VideoRecord, check_video_id
from longwatch.memory.validate import PreparedClip

CHECKPOINT_WAIT_MS = 1000
_CHUNK = 500  # ids per `IN (...)` query, under SQLite's bound-parameter limit

_VIDEO_SQL = ("SELECT v.video_id, v.source, v.info, v.complete, count(c.id), max(c.clip_index), max(c.t1), v.created "
              "FROM videos v LEFT JOIN clips c USING(vid)")
_CLIP_SQL = ("SELECT c.id, v.video_id, c.clip_index, c.t0, c.t1, c.caption, c.ocr_text, c.meta "
             "FROM clips c JOIN videos v USING(vid)")


def _video(row) -> VideoRecord:
    video_id, source, info, complete, clips, last, duration, created = row
    return VideoRecord(video_id, source, json.loads(info), bool(complete), clips, last, duration, created)


def _chunks(ids: list[int]):
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


class RecordStore:
    """One SQLite connection to a bank's `bank.sqlite`; the caller serialises its threads and owns transactions
    that span several calls (a reader's snapshot)."""

    def __init__(self, root: Path, readonly: bool, durable: bool):
        self.root = root
        self._conn: sqlite3.Connection | None = store.connect(root, readonly, durable)
        self._vids: dict[str, int] = {}
        self._ends: dict[tuple[int, str], int] = {}

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    @property
    def db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BankError(f"{self.root}: this MemoryBank is closed. Open it again with MemoryBank(root).")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- bookkeeping ----------------------------------------------------------------------------------------
    def data_version(self) -> int:
        """Changes whenever another connection commits (SQLite's PRAGMA data_version)."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def deletes(self) -> int:
        """How many videos were ever deleted: index caches are stamped with it, readers watch it."""
        return int(self.db.execute("SELECT value FROM meta WHERE key='deletes'").fetchone()[0])

    def spaces(self) -> list[tuple[str, int, int]]:
        """(space, dim, vector count) of every vector space."""
        return self.db.execute("SELECT space, dim, n FROM spaces").fetchall()

    def live_vids(self) -> set[int]:
        return {vid for (vid,) in self.db.execute("SELECT vid FROM videos")}

    def read_vectors(self, space: str, dim: int, after: int = 0) -> tuple[np.ndarray, np.ndarray]:
        return store.read_vectors(self.db, space, dim, after)

    def count_vectors_after(self, space: str, after: int) -> int:
        return self.db.execute(f"SELECT count(*) FROM vec_{space} WHERE id > ?", (after,)).fetchone()[0]

    def vid(self, video_id: str) -> int:
        """The row id of a video (cached: a deleted video re-added gets a new one, see forget_vids)."""
        check_video_id(video_id)  # first: an unhashable or hostile id never reaches the cache or SQLite
        if video_id not in self._vids:
            row = self.db.execute("SELECT vid FROM videos WHERE video_id=?", (video_id,)).fetchone()
            if row is None:
                known = [v for (v,) in self.db.execute("SELECT video_id FROM videos ORDER BY vid LIMIT 5")]
                raise BankInputError(f"video {video_id!r} is not in the bank (found: {known or 'no videos'}"
                                     f"{' ...' if len(known) == 5 else ''}). Add it with bank.add_video() or "
                                     f"pick one from bank.videos().")
            self._vids[video_id] = row[0]
        return self._vids[video_id]

    def forget_vids(self) -> None:
        self._vids.clear()

    def shard_end(self, vid: int, kind: str) -> int:
        """Committed end of a (video, kind) shard: bytes past it are not referenced by any record."""
        if (vid, kind) not in self._ends:
            row = self.db.execute("SELECT max(offset + nbytes) FROM tokens WHERE vid=? AND kind=?",
                                  (vid, kind)).fetchone()
            self._ends[(vid, kind)] = row[0] or 0
        return self._ends[(vid, kind)]

    def set_shard_end(self, vid: int, kind: str, end: int) -> None:
        """Called once the rows referencing bytes up to `end` are committed."""
        self._ends[(vid, kind)] = end

    # --- writes ---------------------------------------------------------------------------------------------
    def add_video(self, video_id: str, source: str, info: dict | None) -> None:
        self.db.execute("INSERT OR IGNORE INTO videos(video_id, source, info, created) VALUES (?,?,?,?)",
                        (video_id, str(source), json.dumps(info or {}, default=str), time.time()))

    def add_gap(self, video_id: str, t0: float, t1: float, reason: str) -> None:
        self.db.execute("INSERT INTO gaps(vid, t0, t1, reason) VALUES (?,?,?,?)",
                        (self.vid(video_id), float(t0), float(t1), str(reason)))

    def mark_complete(self, video_id: str) -> None:
        self.db.execute("UPDATE videos SET complete=1 WHERE vid=?", (self.vid(video_id),))

    def evidence_dim(self) -> int | None:
        """Dimension of the bank's evidence vectors; None before the first evidence is committed."""
        row = self.db.execute("SELECT value FROM meta WHERE key='evidence_dim'").fetchone()
        return None if row is None else int(row[0])

    def commit_clips(self, prepared: list[PreparedClip], offsets: dict[tuple[int, str], int],
                     new_dims: dict[str, int], evidence_dim: int | None) -> list[int]:
        """Insert clips, their vectors, token locations and evidence in one transaction (all or none); their ids.

        `offsets[(i, kind)]` is where clip i's `kind` tokens were appended in its video's shard.
        """
        db, ids = self.db, []
        db.execute("BEGIN IMMEDIATE")
        try:
            for space, dim in new_dims.items():
                db.execute(f"CREATE TABLE IF NOT EXISTS vec_{space}(id INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
                db.execute("INSERT INTO spaces(space, dim, n) VALUES (?, ?, 0)", (space, dim))
            vec_rows, tok_rows, evidence_vecs = defaultdict(list), [], []
            for i, clip in enumerate(prepared):
                rec = clip.record
                try:
                    rid = db.execute("INSERT INTO clips(vid, clip_index, t0, t1, caption, ocr_text, meta) "
                                     "VALUES (?,?,?,?,?,?,?)", (clip.vid, int(rec.clip_index), float(rec.t0),
                                                                float(rec.t1), str(rec.caption), str(rec.ocr_text),
                                                                clip.meta)).lastrowid
                except sqlite3.IntegrityError:
                    db.execute("ROLLBACK")
                    raise BankInputError(f"clip {rec.clip_index} of {rec.video_id!r} is already in the bank (last "
                                         f"committed clip: {self.last_clip(rec.video_id)}). Resume after "
                                         f"bank.last_clip().") from None
                for space, a in clip.vectors.items():
                    vec_rows[space].append((rid, a.tobytes()))
                for kind, (data, n, d, dtype) in clip.tokens.items():
                    tok_rows.append((rid, kind, clip.vid, offsets[(i, kind)], len(data), n, d, dtype))
                for row, vec in zip(clip.evidence, clip.evidence_vectors):
                    eid = db.execute("INSERT INTO evidence(vid, clip_id, kind, t0, t1, text, context, meta) "
                                     "VALUES (?,?,?,?,?,?,?,?)", (clip.vid, rid, *row)).lastrowid
                    evidence_vecs.append((eid, vec.tobytes()))
                ids.append(rid)
            if evidence_vecs:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('evidence_dim', ?)", (str(evidence_dim),))
                db.executemany("INSERT INTO evidence_vec(id, vec) VALUES (?, ?)", evidence_vecs)
            for space, rows in vec_rows.items():
                db.executemany(f"INSERT INTO vec_{space}(id, vec) VALUES (?, ?)", rows)
                db.execute("UPDATE spaces SET n = n + ? WHERE space=?", (len(rows), space))
            db.executemany("INSERT INTO tokens VALUES (?,?,?,?,?,?,?,?)", tok_rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return ids

    def delete_video(self, video_id: str, spaces: list[str]) -> tuple[int, np.ndarray]:
        """Remove a video's rows in one transaction and bump the delete count; (its row id, its clips' ids)."""
        vid, db = self.vid(video_id), self.db
        ids = np.array([i for (i,) in db.execute("SELECT id FROM clips WHERE vid=?", (vid,))], np.int64)
        db.execute("BEGIN IMMEDIATE")
        try:
            for space in spaces:
                cur = db.execute(f"DELETE FROM vec_{space} WHERE id IN (SELECT id FROM clips WHERE vid=?)", (vid,))
                db.execute("UPDATE spaces SET n = n - ? WHERE space=?", (cur.rowcount, space))
            db.execute("DELETE FROM evidence_vec WHERE id IN (SELECT id FROM evidence WHERE vid=?)", (vid,))
            for table in ("evidence", "tokens", "gaps", "clips", "videos"):  # evidence rows drop their FTS rows
                db.execute(f"DELETE FROM {table} WHERE vid=?", (vid,))
            db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='deletes'")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        del self._vids[video_id]
        for key in [k for k in self._ends if k[0] == vid]:
            del self._ends[key]
        return vid, ids

    def _incremental(self) -> bool:
        return self.db.execute("PRAGMA auto_vacuum").fetchone()[0] == store.AUTO_VACUUM_INCREMENTAL

    def vacuum_leftovers(self) -> None:
        """On open: free the pages earlier deletes left (see reclaim)."""
        if self.db.execute("PRAGMA freelist_count").fetchone()[0] and self._incremental():
            self.db.executescript("PRAGMA incremental_vacuum;")

    def reclaim(self) -> None:
        """Give the pages a delete freed back to the filesystem.

        Python's execute() steps a statement once, and `PRAGMA incremental_vacuum` frees one page per step, so
        it runs through executescript(), which steps to the end. A bank whose file predates auto_vacuum
        (it only takes effect before the first table exists) is converted by one full VACUUM; VACUUM is an
        ordinary write transaction in WAL mode, so readers keep their snapshots meanwhile.
        """
        db = self.db
        if not self._incremental():
            db.executescript(f"PRAGMA auto_vacuum={store.AUTO_VACUUM_INCREMENTAL}; VACUUM;")
        else:
            db.executescript("PRAGMA incremental_vacuum;")
        # Shrinks both files now. It waits for readers' open snapshots, so briefly: a reader pinning one (see
        # MemoryBank.snapshot()) must not stall the writer; a later checkpoint or close then shrinks the files.
        db.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            db.execute(f"PRAGMA busy_timeout={store.BUSY_TIMEOUT_S * 1000}")

    # --- reads ----------------------------------------------------------------------------------------------
    def last_clip(self, video_id: str) -> int | None:
        return self.db.execute("SELECT max(c.clip_index) FROM clips c JOIN videos v USING(vid) WHERE v.video_id=?",
                               (video_id,)).fetchone()[0]

    def candidates(self, space: str, videos, time_range, max_id: int) -> np.ndarray:
        """Ids of clips with a `space` vector, up to max_id, in the given videos and overlapping time_range."""
        sql, args = f"SELECT c.id FROM clips c JOIN vec_{space} x ON x.id = c.id WHERE c.id <= ?", [max_id]
        if videos is not None:
            vids = [self.vid(v) for v in ([videos] if isinstance(videos, str) else videos)]
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
        return np.array([i for (i,) in self.db.execute(sql, args)], np.int64)

    def record_map(self, ids: list[int]) -> dict[int, ClipRecord]:
        """Records (with their token refs) of those ids that exist."""
        out: dict[int, ClipRecord] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for rid, video_id, index, t0, t1, caption, ocr, meta in self.db.execute(
                    f"{_CLIP_SQL} WHERE c.id IN ({marks})", chunk):
                out[rid] = ClipRecord(video_id, index, t0, t1, caption, ocr, json.loads(meta), rid)
            for rid, kind, n, d, dtype in self.db.execute(
                    f"SELECT id, kind, n, d, dtype FROM tokens WHERE id IN ({marks})", chunk):
                if rid in out:
                    out[rid].tokens[kind] = TokenRef(kind, n, d, dtype)
        return out

    def clip_ids(self, video_id: str) -> list[int]:
        """Ids of a video's clips, ordered by clip index."""
        return [i for (i,) in self.db.execute("SELECT id FROM clips WHERE vid=? ORDER BY clip_index",
                                              (self.vid(video_id),))]

    def token_locations(self, ids: list[int], kind: str) -> dict[int, tuple[int, int, int, int, str]]:
        """id -> (vid, offset, n, d, dtype) of the `kind` tokens of those ids that have them."""
        rows: dict[int, tuple] = {}
        for chunk in _chunks(ids):
            for rid, vid, off, n, d, dtype in self.db.execute(
                    f"SELECT id, vid, offset, n, d, dtype FROM tokens WHERE kind=? AND id IN "
                    f"({','.join('?' * len(chunk))})", [kind, *chunk]):
                rows[rid] = (vid, off, n, d, dtype)
        return rows

    def token_kinds(self) -> list[str]:
        return sorted({k for (k,) in self.db.execute("SELECT DISTINCT kind FROM tokens")})

    def videos(self) -> list[VideoRecord]:
        videos = [_video(r) for r in self.db.execute(f"{_VIDEO_SQL} GROUP BY v.vid ORDER BY v.vid")]
        gaps: dict[str, list[Gap]] = {}
        for video_id, t0, t1, reason in self.db.execute(
                "SELECT v.video_id, g.t0, g.t1, g.reason FROM gaps g JOIN videos v USING(vid) ORDER BY g.t0"):
            gaps.setdefault(video_id, []).append(Gap(t0, t1, reason))
        for v in videos:
            v.gaps = gaps.get(v.video_id, [])
        return videos

    def video(self, video_id: str) -> VideoRecord:
        row = self.db.execute(f"{_VIDEO_SQL} WHERE v.vid=? GROUP BY v.vid", (self.vid(video_id),)).fetchone()
        record = _video(row)
        record.gaps = self.gaps(video_id)
        return record

    def gaps(self, video_id: str) -> list[Gap]:
        rows = self.db.execute("SELECT t0, t1, reason FROM gaps WHERE vid=? ORDER BY t0", (self.vid(video_id),))
        return [Gap(t0, t1, reason) for t0, t1, reason in rows]

    def counts(self) -> dict[str, int]:
        one = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
        return {"videos": one("SELECT count(*) FROM videos"), "clips": one("SELECT count(*) FROM clips")}
