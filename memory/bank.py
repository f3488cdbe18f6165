"""MemoryBank: one record per clip and its evidence in SQLite, search vectors in FAISS, tokens in memory-mapped shards.

One writer (held by a file lock) and any number of readers (threads or processes); a clip is fully in or not.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np

from longwatch.errors import BankError
from longwatch.memory import store
from longwatch.memory.index import IndexConfig
from longwatch.memory.evidence import EvidenceTimeline
from longwatch.memory.indexes import VectorIndexes
from longwatch.memory.recordstore import RecordStore
from longwatch.memory.records import (BankBusy, BankInputError, ClipRecord, EvidenceHit, EvidenceRecord, Gap, Hit,
                                      VideoRecord, check_video_id)
from longwatch.memory.shards import Shards, check_kind
from longwatch.memory.validate import check_vector, prepare_batch

LOCK = store.LOCK


class MemoryBank:
    """A persistent, crash-safe bank of clip memories across many videos.

    Three parts, each with its own state: the SQLite record store (the truth), the vector indexes (caches of
    its vectors) and the token shards. This class orders their steps and owns the writer lock, the lock that
    serialises its threads and a reader's snapshot.

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
        self._records: RecordStore | None = None
        new = store.check_root(self.root, create, self.readonly)
        try:
            if not self.readonly:
                self._open_writer(auto=readonly == "auto")
            if self.readonly and new:  # "auto" lost the race to create it: read once it is ready
                store.check_root(self.root, False, True)
            self._records = RecordStore(self.root, self.readonly, durable)
            self.shards = Shards(self.root)
            self._evidence = EvidenceTimeline(self._records)
            self._indexes = VectorIndexes(self.root, self._records, self.config, self.readonly, self.repaired)
            if new and not self.readonly:
                store.write_marker(self.root)
            if not self.readonly:
                self._recover()
            with self._snapshot():
                self._data_version = self._records.data_version()
                self._indexes.load()
        except BaseException:
            self.close()
            raise

    # --- open / close -------------------------------------------------------------------------------------
    def _open_writer(self, auto: bool) -> None:
        try:
            self._lockfd = store.take_writer_lock(self.root)
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

    def _recover(self) -> None:
        """Cut torn shard tails, drop shard folders of deleted videos, remove half-written index caches."""
        self.repaired.update(self.shards.recover(self._records.live_vids(), self._records.shard_end))
        self._indexes.remove_partial_files()
        self._records.vacuum_leftovers()

    def close(self) -> None:
        """Save index caches (writer), close SQLite, release the writer lock. Safe to call twice."""
        with self._lock:
            if self._records is not None and self._records.is_open:
                try:
                    if not self.readonly:
                        self.flush()
                finally:
                    self._records.close()
            if self._lockfd is not None:
                os.close(self._lockfd)  # closing the descriptor releases the flock
                self._lockfd = None

    def __enter__(self) -> MemoryBank:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _db(self) -> sqlite3.Connection:
        """The SQLite connection; BankError once closed."""
        return self._records.db

    def _vid(self, video_id: str) -> int:
        return self._records.vid(video_id)

    def _writable(self) -> None:
        if self.readonly:
            raise BankError(f"{self.root}: opened read-only. Open with MemoryBank(root) (one writer at a time) to write.")
        self._db()

    # --- snapshots ----------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Readers: pick up what the writer committed up to the current snapshot (new clips, deletes, new spaces)."""
        if not self.readonly:
            return
        with self._snapshot():
            version = self._records.data_version()
            if version == self._data_version:
                return
            self._data_version = version
            if self._records.deletes() != self._indexes.deletes:
                self._records.forget_vids()  # a deleted video re-added has a new vid
                self._indexes.load()
            else:
                self._indexes.catch_up()

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
            if self._records.is_open:
                self._records.db.execute("COMMIT")

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

    # --- writes -------------------------------------------------------------------------------------------
    def add_video(self, video_id: str, source: str = "", info: dict | None = None) -> VideoRecord:
        """Register a video (idempotent: an existing video is returned unchanged)."""
        check_video_id(video_id)
        with self._lock:
            self._writable()
            self._records.add_video(video_id, source, info)
            return self.video(video_id)

    def add_gap(self, video_id: str, t0: float, t1: float, reason: str) -> None:
        """Record that [t0, t1] seconds of a video could not be decoded, so it is reported, never hidden."""
        if not (np.isfinite(t0) and np.isfinite(t1) and 0 <= t0 <= t1):
            raise BankInputError(f"gap times t0={t0}, t1={t1}: need finite 0 <= t0 <= t1")
        with self._lock:
            self._writable()
            self._records.add_gap(video_id, t0, t1, reason)

    def mark_complete(self, video_id: str) -> None:
        with self._lock:
            self._writable()
            self._records.mark_complete(video_id)

    def add(self, record: ClipRecord, vectors: dict[str, np.ndarray], tokens: dict | None = None) -> int:
        """Commit one clip atomically: record, one vector per space, token tensors [N, D] per kind. Returns its id.

        `record.evidence` commits with it; `vectors["evidence"]` then holds their unit vectors, float32 [n, D]."""
        return self.add_many([(record, vectors, tokens)])[0]

    def add_many(self, items: list[tuple[ClipRecord, dict, dict | None]]) -> list[int]:
        """Commit several clips in one transaction (all or none): one fsync per shard file and one per commit.

        Order: validate all -> append tokens to shards (fsync) -> one SQLite transaction -> indexes. A crash
        before the commit leaves shard bytes no record points to, which the next open cuts off.
        """
        with self._lock:
            self._writable()
            records = self._records
            prepared, new_dims, evidence_dim = prepare_batch(items, records.vid, self._indexes.dims,
                                                             records.evidence_dim())
            chunks: dict[tuple[int, str], list[tuple[int, bytes]]] = {}
            for i, clip in enumerate(prepared):
                for kind, (data, *_) in clip.tokens.items():
                    chunks.setdefault((clip.vid, kind), []).append((i, data))
            offsets: dict[tuple[int, str], int] = {}
            try:
                for (vid, kind), group in chunks.items():
                    offs = self.shards.append(vid, kind, records.shard_end(vid, kind), [data for _, data in group])
                    offsets.update({(i, kind): off for (i, _), off in zip(group, offs)})
                ids = records.commit_clips(prepared, offsets, new_dims, evidence_dim)
            except BaseException:
                for vid, kind in chunks:
                    self.shards.truncate(vid, kind, records.shard_end(vid, kind))
                raise
            for (vid, kind), group in chunks.items():
                i, data = group[-1]
                records.set_shard_end(vid, kind, offsets[(i, kind)] + len(data))
            self._indexes.add([(rid, clip.vectors) for rid, clip in zip(ids, prepared)])
            return ids

    def delete(self, video_id: str) -> int:
        """Remove a video's records, vectors and shard files (space reclaimed); returns the clips removed.

        Order: SQLite first (one transaction), so a crash leaves at most files no record points to.
        """
        with self._lock:
            self._writable()
            vid, ids = self._records.delete_video(video_id, list(self._indexes.dims))
            self.shards.drop_video(vid)
            self._indexes.remove(ids)
            self._records.reclaim()
            return len(ids)

    def flush(self) -> None:
        """Write every index cache that lags behind SQLite (temp file + fsync + rename)."""
        with self._lock:
            self._writable()
            self._indexes.flush()

    def reindex(self, space: str | None = None) -> None:
        """Rebuild indexes from SQLite now (e.g. after a bulk load), choosing the kind by current size."""
        with self._lock:
            self._writable()
            self._indexes.reindex(space)

    # --- reads --------------------------------------------------------------------------------------------
    def last_clip(self, video_id: str) -> int | None:
        """Highest committed clip index of a video; None when it has none or is not in the bank. Resume after it."""
        check_video_id(video_id)
        with self._reading():
            return self._records.last_clip(video_id)

    def search(self, vec, k: int = 10, space: str = "text", videos: list[str] | str | None = None,
               time_range: tuple[float, float] | None = None) -> list[Hit]:
        """Top-k clips by inner product with `vec[D]`, best first.

        `videos` and `time_range` (clips overlapping [t0, t1] seconds) restrict the candidates; a restricted
        set of up to 50k clips (e.g. one video) is scored exactly whatever the archive-wide index is.
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise BankInputError(f"k must be a positive integer, got {k!r}")
        with self._reading():
            dims = self._indexes.dims
            if space not in dims:
                raise BankInputError(f"no vectors in space {space!r} (spaces: {sorted(dims) or 'none yet'}). "
                                     f"Search a space the bank was filled with.")
            q = check_vector(vec, space, dims, None, "query")
            idx = self._indexes[space]
            subset = None
            if videos is not None or time_range is not None:
                subset = self._records.candidates(space, videos, time_range, idx.max_id)
                if not len(subset):
                    return []
            scores, ids = idx.search(q[None], int(k), subset)
            found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
            records = self._records.record_map([i for i, _ in found])
            # An id the writer deleted after our index was caught up has no record: drop it.
            return [Hit(i, s, records[i]) for i, s in found if i in records]

    def search_evidence(self, vec, text: str, k: int = 20, videos=None, kinds=None,
                        time_range: tuple[float, float] | None = None) -> list[EvidenceHit]:
        """Top-k evidence, best first: exact dense top-k (cosine with `vec[D]`) and full-text top-k (bm25 over the
        words of `text`, codes and numbers included, never as query syntax) fused by reciprocal rank (k=60).
        `videos`, `kinds` and `time_range` (evidence overlapping [t0, t1] seconds) restrict both lists."""
        with self._reading():
            return self._evidence.search(vec, text, k, videos, kinds, time_range)

    def evidence(self, video_id: str, kinds=None, time_range=None) -> list[EvidenceRecord]:
        """A video's evidence (all, or of `kinds` overlapping `time_range`) in time order: t0, kind, id."""
        with self._reading():
            return self._evidence.timeline(video_id, kinds, time_range)

    def evidence_counts(self, video_id: str) -> dict[str, int]:
        """How many pieces of evidence of each kind a video has (every kind listed, zeros included)."""
        with self._reading():
            return self._evidence.counts(video_id)

    def records(self, ids: list[int]) -> list[ClipRecord]:
        """Records of the given ids, in that order."""
        ids = [int(i) for i in ids]
        with self._reading():
            found = self._records.record_map(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise BankInputError(f"record ids {missing[:10]} are not in the bank (deleted, or never committed)")
        return [found[i] for i in ids]

    def clips(self, video_id: str) -> list[ClipRecord]:
        """All committed clips of a video, ordered by clip index."""
        with self._reading():
            ids = self._records.clip_ids(video_id)
            found = self._records.record_map(ids)
        return [found[i] for i in ids if i in found]

    def tokens(self, ids: list[int], kind: str) -> list:
        """Token tensors [N, D] (torch, dtype as stored) of the given records, viewing the memory-mapped shards."""
        check_kind(kind)
        ids = [int(i) for i in ids]
        with self._reading():
            rows = self._records.token_locations(ids, kind)
            missing = [i for i in ids if i not in rows]
            if missing:
                kinds = self._records.token_kinds()
                raise BankInputError(f"records {missing[:10]} have no {kind!r} tokens (kinds in this bank: "
                                     f"{kinds or 'none'}; a record may also have been deleted)")
            try:
                return self.shards.read(kind, [rows[i] for i in ids])
            except FileNotFoundError as e:
                raise BankError(f"{e.filename}: a shard vanished while reading (its video was deleted meanwhile). "
                                f"Search again.") from e

    def videos(self) -> list[VideoRecord]:
        with self._reading():
            return self._records.videos()

    def video(self, video_id: str) -> VideoRecord:
        with self._reading():
            return self._records.video(video_id)

    def gaps(self, video_id: str) -> list[Gap]:
        """Time ranges of `video_id` that could not be decoded, in time order."""
        with self._reading():
            return self._records.gaps(video_id)

    def spaces(self) -> dict[str, int]:
        """Vector space name -> dimension."""
        with self._reading():
            return self._indexes.dims

    def stats(self) -> dict:
        """Counts (evidence per kind), per-space index kind and measured recall, and bytes on disk per part."""
        with self._reading():
            sql_bytes = sum(p.stat().st_size for p in self.root.glob(f"{store.DB}*"))
            index_bytes, shard_bytes = self._indexes.nbytes(), self.shards.nbytes()
            return {
                **self._records.counts(),
                "evidence": self._evidence.counts(),
                "spaces": self._indexes.states(),
                "bytes": {"sqlite": sql_bytes, "index": index_bytes, "shards": shard_bytes,
                          "total": sql_bytes + index_bytes + shard_bytes},
                "repaired": dict(self.repaired),
            }
