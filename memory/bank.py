"""MemoryBank: one record per clip in SQLite, search vectors in FAISS, token tensors in memory-mapped shards.

One writer (held by a file lock) and any number of readers (threads or processes); a clip is fully in or not.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np

from longwatch.memory import store
from longwatch.memory.index import IndexConfig, VectorIndex
from longwatch.memory.ingest import IngestMixin
from longwatch.memory.query import QueryMixin
from longwatch.memory.records import BankBusy, BankInputError, BankWarning, VideoRecord, check_video_id
from longwatch.memory.shards import Shards
from longwatch.errors import BankError

LOCK = store.LOCK
INDEX_DIR = "index"
CHECKPOINT_WAIT_MS = 1000


class MemoryBank(IngestMixin, QueryMixin):
    """A persistent, crash-safe bank of clip memories across many videos.

    Args:
        root: the bank's folder (created when missing and `create`).
        create: allow creating a new bank at `root`.
        readonly: open as a reader: no lock taken, sees new commits of the writer before each query. "auto":
            the writer when the lock is free, else a reader beside the process that holds it; `reader_note`
            then says why (for a command to tell its user once).
        index: how each vector space's FAISS index is chosen (exact below a size threshold).
        durable: fsync every commit (SQLite synchronous=FULL); off trades power-loss durability for speed.
    """

    def __init__(self, root: str | Path, create: bool = True, readonly: bool | Literal["auto"] = False,
                 index: IndexConfig | None = None, durable: bool = True):
        if readonly not in (True, False, "auto"):
            raise BankInputError(f"readonly must be True, False or 'auto' (found: {readonly!r})")
        self.root = Path(root)
        self.readonly = readonly is True
        self.reader_note: str | None = None
        self.config = index or IndexConfig()
        self.repaired: Counter = Counter()  # what the last open had to fix after a crash
        self._lock = threading.RLock()
        self._depth = 0  # nesting of _snapshot(); the outermost one owns the read transaction
        self._lockfd: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._indexes: dict[str, VectorIndex] = {}
        self._dims: dict[str, int] = {}
        self._unsaved: Counter = Counter()
        self._vids: dict[str, int] = {}
        self._ends: dict[tuple[int, str], int] = {}
        new = store.check_root(self.root, create, self.readonly)
        try:
            if not self.readonly:
                self._open_writer(auto=readonly == "auto")
            if self.readonly and new:  # "auto" lost the race to create it: read once it is ready
                store.check_root(self.root, False, True)
            self._conn = store.connect(self.root, self.readonly, durable)
            if new and not self.readonly:
                store.write_marker(self.root)
            self.shards = Shards(self.root)
            if not self.readonly:
                self._recover()
            with self._snapshot():
                self._data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
                self._deletes = self._meta_deletes()
                self._load_indexes()
        except BaseException:
            self.close()
            raise

    # --- open / close -------------------------------------------------------------------------------------
    def _open_writer(self, auto: bool) -> None:
        try:
            self._take_writer_lock()
        except BankBusy:
            if not auto:
                raise
            self.readonly = True
            self.reader_note = (f"{self.root}: another process (e.g. `longwatch ingest`) is writing this bank; "
                                f"reading the clips it has committed so far")
        except BankError:
            if not auto:
                raise
            self.readonly = True
            self.reader_note = f"{self.root}: this bank's folder is not writable; opened it read-only"

    def _take_writer_lock(self) -> None:
        try:
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise BankError(f"{self.root}: cannot write to this bank (found: {e.strerror} on {LOCK}). Open it with "
                            f"MemoryBank(root, readonly=True) to search it, or copy it to a writable folder.") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BankBusy(f"{self.root}: another writer holds this bank (found: {LOCK} locked by another process, "
                           f"e.g. a running `longwatch ingest`, `watch` or `serve`). Open it with readonly=True "
                           f"(or 'auto') to read while it writes, or wait for the writer to finish.") from None
        self._lockfd = fd

    def _recover(self) -> None:
        """Cut torn shard tails, drop shard folders of deleted videos, remove half-written index caches."""
        live = {vid for (vid,) in self._conn.execute("SELECT vid FROM videos")}
        for vid, folder in self.shards.video_dirs().items():
            if vid not in live:
                self.shards.drop_video(vid)
                self.repaired["orphan_shard_dirs"] += 1
                continue
            for path in folder.glob("*.tok"):
                if self.shards.truncate(vid, path.stem, self._end(vid, path.stem)):
                    self.repaired["torn_shard_tails"] += 1
        for tmp in (self.root / INDEX_DIR).glob("*.tmp"):
            tmp.unlink()
            self.repaired["partial_index_files"] += 1
        if self._conn.execute("PRAGMA freelist_count").fetchone()[0] and self._incremental():
            self._conn.executescript("PRAGMA incremental_vacuum;")  # pages earlier deletes left free (see _reclaim)

    def close(self) -> None:
        """Save index caches (writer), close SQLite, release the writer lock. Safe to call twice."""
        with self._lock:
            if self._conn is not None:
                try:
                    if not self.readonly:
                        self.flush()
                finally:
                    self._conn.close()
                    self._conn = None
            if self._lockfd is not None:
                os.close(self._lockfd)  # closing the descriptor releases the flock
                self._lockfd = None

    def __enter__(self) -> MemoryBank:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BankError(f"{self.root}: this MemoryBank is closed. Open it again with MemoryBank(root).")
        return self._conn

    def _writable(self) -> None:
        if self.readonly:
            raise BankError(f"{self.root}: opened read-only. Open with MemoryBank(root) (one writer at a time) to write.")
        self._db()

    def _meta_deletes(self) -> int:
        return int(self._db().execute("SELECT value FROM meta WHERE key='deletes'").fetchone()[0])

    def _end(self, vid: int, kind: str) -> int:
        """Committed end of a (video, kind) shard: bytes past it are not referenced by any record."""
        if (vid, kind) not in self._ends:
            row = self._db().execute("SELECT max(offset + nbytes) FROM tokens WHERE vid=? AND kind=?",
                                     (vid, kind)).fetchone()
            self._ends[(vid, kind)] = row[0] or 0
        return self._ends[(vid, kind)]

    # --- indexes: caches of the vectors in SQLite ---------------------------------------------------------
    def _index_path(self, space: str) -> Path:
        return self.root / INDEX_DIR / f"{space}.faiss"

    def _load_indexes(self) -> None:
        self._indexes.clear()
        for space, dim, n in self._db().execute("SELECT space, dim, n FROM spaces").fetchall():
            self._dims[space] = dim
            self._indexes[space] = self._open_index(space, dim, n)

    def _open_index(self, space: str, dim: int, n: int) -> VectorIndex:
        """The cached index when its stamp matches SQLite (plus vectors added since), else a rebuild."""
        path, idx, problem = self._index_path(space), None, None
        if path.exists():
            try:
                header, payload = store.read_cache(path)
                if header["deletes"] == self._deletes and header["dim"] == dim:
                    newer = self._db().execute(f"SELECT count(*) FROM vec_{space} WHERE id > ?",
                                               (header["max_id"],)).fetchone()[0]
                    if header["ntotal"] + newer == n:
                        idx = VectorIndex.from_bytes(payload, header, self.config)
                    elif not self.readonly:  # a reader's snapshot may simply predate the writer's newest cache
                        problem = f"holds {header['ntotal']} vectors up to id {header['max_id']}, SQLite has {n}"
            except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
                problem = f"is damaged ({e})"
        if problem:
            warnings.warn(f"{path}: index cache {problem}; rebuilding it from {store.DB} ({n} vectors)",
                          BankWarning, stacklevel=3)
            self.repaired["rebuilt_indexes"] += 1
        if idx is None:
            idx = VectorIndex(dim, self.config)
            idx.build(*store.read_vectors(self._db(), space, dim))
            self._unsaved[space] = max(1, n)
        else:
            ids, vecs = store.read_vectors(self._db(), space, dim, after=idx.max_id)
            idx.add(ids, vecs)
            self._unsaved[space] += len(ids)
        if not self.readonly:
            if idx.stale_for(idx.ntotal):  # e.g. grown past the threshold, or opened with another IndexConfig
                idx.build(*store.read_vectors(self._db(), space, dim))
                self._unsaved[space] = max(1, idx.ntotal)
            if problem or self._unsaved[space]:
                self._save(space, idx)
        return idx

    def _save(self, space: str, idx: VectorIndex) -> None:
        path = self._index_path(space)
        path.parent.mkdir(exist_ok=True)
        store.write_cache(path, dict(idx.state(), deletes=self._deletes, space=space), idx.to_bytes())
        self._unsaved[space] = 0

    def flush(self) -> None:
        """Write every index cache that lags behind SQLite (temp file + fsync + rename)."""
        with self._lock:
            self._writable()
            for space, idx in self._indexes.items():
                if self._unsaved[space] or not self._index_path(space).exists():
                    self._save(space, idx)

    def reindex(self, space: str | None = None) -> None:
        """Rebuild indexes from SQLite now (e.g. after a bulk load), choosing the kind by current size."""
        with self._lock:
            self._writable()
            for name in [space] if space else list(self._indexes):
                idx = self._indexes[name]
                idx.build(*store.read_vectors(self._db(), name, idx.dim))
                self._save(name, idx)

    def _refresh(self) -> None:
        """Readers: pick up what the writer committed up to the current snapshot (new clips, deletes, new spaces)."""
        if not self.readonly:
            return
        with self._snapshot():
            version = self._db().execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version:
                return
            self._data_version = version
            deletes = self._meta_deletes()
            if deletes != self._deletes:
                self._deletes = deletes
                self._vids.clear()  # a deleted video re-added has a new vid
                self._load_indexes()
                return
            for space, dim, n in self._db().execute("SELECT space, dim, n FROM spaces").fetchall():
                if space not in self._indexes:
                    self._dims[space] = dim
                    self._indexes[space] = self._open_index(space, dim, n)
                else:
                    idx = self._indexes[space]
                    idx.add(*store.read_vectors(self._db(), space, dim, after=idx.max_id))

    @contextmanager
    def _snapshot(self):
        """A reader runs each public query in one read transaction, i.e. one WAL snapshot.

        Autocommit would give every SELECT its own snapshot, and a commit landing between two of them shows
        half a clip: its row from before a delete and its token entries from after it. Nested uses join the
        outermost transaction. The writer needs none: its own threads are serialised by self._lock.
        """
        if not self.readonly or self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db().execute("BEGIN")
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            if self._conn is not None:
                self._conn.execute("COMMIT")

    @contextmanager
    def snapshot(self):
        """Pin one snapshot across several queries (an answer's clips, search and tokens): a reader sees no commit
        made meanwhile, so what one query returned is still there for the next. Holds the bank's lock."""
        with self._reading():
            yield self

    @contextmanager
    def _reading(self):
        """Every query: the bank lock, one snapshot, and a reader caught up with it before anything is read."""
        with self._lock, self._snapshot():
            self._refresh()
            yield self._db()

    # --- videos -------------------------------------------------------------------------------------------
    def add_video(self, video_id: str, source: str = "", info: dict | None = None) -> VideoRecord:
        """Register a video (idempotent: an existing video is returned unchanged)."""
        check_video_id(video_id)
        with self._lock:
            self._writable()
            self._db().execute("INSERT OR IGNORE INTO videos(video_id, source, info, created) VALUES (?,?,?,?)",
                               (video_id, str(source), json.dumps(info or {}, default=str), time.time()))
            return self.video(video_id)

    def _vid(self, video_id: str) -> int:
        check_video_id(video_id)  # first: an unhashable or hostile id never reaches the cache or SQLite
        if video_id not in self._vids:
            row = self._db().execute("SELECT vid FROM videos WHERE video_id=?", (video_id,)).fetchone()
            if row is None:
                known = [v for (v,) in self._db().execute("SELECT video_id FROM videos ORDER BY vid LIMIT 5")]
                raise BankInputError(f"video {video_id!r} is not in the bank (found: {known or 'no videos'}"
                                     f"{' ...' if len(known) == 5 else ''}). Add it with bank.add_video() or "
                                     f"pick one from bank.videos().")
            self._vids[video_id] = row[0]
        return self._vids[video_id]

    def last_clip(self, video_id: str) -> int | None:
        """Highest committed clip index of a video; None when it has none or is not in the bank. Resume after it."""
        check_video_id(video_id)
        with self._reading():
            row = self._db().execute("SELECT max(c.clip_index) FROM clips c JOIN videos v USING(vid) "
                                     "WHERE v.video_id=?", (video_id,)).fetchone()
            return row[0]

    def add_gap(self, video_id: str, t0: float, t1: float, reason: str) -> None:
        """Record that [t0, t1] seconds of a video could not be decoded, so it is reported, never hidden."""
        if not (np.isfinite(t0) and np.isfinite(t1) and 0 <= t0 <= t1):
            raise BankInputError(f"gap times t0={t0}, t1={t1}: need finite 0 <= t0 <= t1")
        with self._lock:
            self._writable()
            self._db().execute("INSERT INTO gaps(vid, t0, t1, reason) VALUES (?,?,?,?)",
                               (self._vid(video_id), float(t0), float(t1), str(reason)))

    def mark_complete(self, video_id: str) -> None:
        with self._lock:
            self._writable()
            self._db().execute("UPDATE videos SET complete=1 WHERE vid=?", (self._vid(video_id),))

    def delete(self, video_id: str) -> int:
        """Remove a video's records, vectors and shard files (space reclaimed); returns the clips removed."""
        with self._lock:
            self._writable()
            vid, db = self._vid(video_id), self._db()
            ids = np.array([i for (i,) in db.execute("SELECT id FROM clips WHERE vid=?", (vid,))], np.int64)
            db.execute("BEGIN IMMEDIATE")
            try:
                for space in self._dims:
                    cur = db.execute(f"DELETE FROM vec_{space} WHERE id IN (SELECT id FROM clips WHERE vid=?)", (vid,))
                    db.execute("UPDATE spaces SET n = n - ? WHERE space=?", (cur.rowcount, space))
                for table in ("tokens", "gaps", "clips", "videos"):
                    db.execute(f"DELETE FROM {table} WHERE vid=?", (vid,))
                db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='deletes'")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._deletes = self._meta_deletes()
            del self._vids[video_id]
            for key in [k for k in self._ends if k[0] == vid]:
                del self._ends[key]
            self.shards.drop_video(vid)
            for space, idx in self._indexes.items():
                idx.remove(ids)
                self._save(space, idx)
            self._reclaim()
            return len(ids)

    def _incremental(self) -> bool:
        return self._db().execute("PRAGMA auto_vacuum").fetchone()[0] == store.AUTO_VACUUM_INCREMENTAL

    def _reclaim(self) -> None:
        """Give the pages a delete freed back to the filesystem.

        Python's execute() steps a statement once, and `PRAGMA incremental_vacuum` frees one page per step, so
        it runs through executescript(), which steps to the end. A bank whose file predates auto_vacuum
        (it only takes effect before the first table exists) is converted by one full VACUUM; VACUUM is an
        ordinary write transaction in WAL mode, so readers keep their snapshots meanwhile.
        """
        db = self._db()
        if not self._incremental():
            db.executescript(f"PRAGMA auto_vacuum={store.AUTO_VACUUM_INCREMENTAL}; VACUUM;")
        else:
            db.executescript("PRAGMA incremental_vacuum;")
        # Shrinks both files now. It waits for readers' open snapshots, so briefly: a reader pinning one (see
        # snapshot()) must not stall the writer; a later checkpoint or close then shrinks the files instead.
        db.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            db.execute(f"PRAGMA busy_timeout={store.BUSY_TIMEOUT_S * 1000}")
