"""The bank's write side: validate a batch of clips, append tokens to shards, commit records and vectors.

Mixed into MemoryBank. Order per batch: validate all -> shards (fsync) -> one SQLite transaction -> indexes.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import defaultdict

import numpy as np

from longwatch.memory import store
from longwatch.memory.index import VectorIndex
from longwatch.memory.records import BankInputError, ClipRecord
from longwatch.memory.shards import as_token_bytes, check_kind

PERSIST_MIN = 10_000  # unsaved vectors before an index cache is rewritten during ingest (also at 1/4 growth)


class IngestMixin:
    """add / add_many over a MemoryBank's shards, SQLite and in-memory indexes."""

    def add(self, record: ClipRecord, vectors: dict[str, np.ndarray], tokens: dict | None = None) -> int:
        """Commit one clip atomically: record, one vector per space, token tensors [N, D] per kind. Returns its id."""
        return self.add_many([(record, vectors, tokens)])[0]

    def add_many(self, items: list[tuple[ClipRecord, dict, dict | None]]) -> list[int]:
        """Commit several clips in one transaction (all or none): one fsync per shard file and one per commit."""
        with self._lock:
            self._writable()
            prepared, new_dims = self._prepare(items)
            chunks: dict[tuple[int, str], list[tuple[int, bytes]]] = defaultdict(list)
            for i, (_, vid, _, toks, _) in enumerate(prepared):
                for kind, (data, *_) in toks.items():
                    chunks[(vid, kind)].append((i, data))
            offsets: dict[tuple[int, str], int] = {}
            try:
                for (vid, kind), group in chunks.items():
                    offs = self.shards.append(vid, kind, self._end(vid, kind), [data for _, data in group])
                    offsets.update({(i, kind): off for (i, _), off in zip(group, offs)})
                ids = self._commit(prepared, offsets, new_dims)
            except BaseException:
                for vid, kind in chunks:
                    self.shards.truncate(vid, kind, self._end(vid, kind))
                raise
            for (vid, kind), group in chunks.items():
                i, data = group[-1]
                self._ends[(vid, kind)] = offsets[(i, kind)] + len(data)
            self._index_new(prepared, ids, new_dims)
            return ids

    def _prepare(self, items) -> tuple[list, dict[str, int]]:
        """Validate everything before anything is written: a refused batch leaves the bank untouched."""
        prepared, new_dims, seen = [], {}, set()
        for item in items:
            record, vectors, tokens = item
            if not isinstance(record, ClipRecord):
                raise TypeError(f"expected a ClipRecord, got {type(record).__name__}")
            vid, where = self._vid(record.video_id), f"clip {record.clip_index} of {record.video_id!r}"
            key = (vid, int(record.clip_index))
            if key in seen:
                raise BankInputError(f"{where} appears twice in one batch")
            seen.add(key)  # a clip already committed is caught by the UNIQUE constraint inside the transaction
            if not (math.isfinite(record.t0) and math.isfinite(record.t1) and record.t0 <= record.t1):
                raise BankInputError(f"{where} has times t0={record.t0}, t1={record.t1}; need finite t0 <= t1")
            try:
                meta = json.dumps(record.meta)
            except (TypeError, ValueError) as e:
                raise BankInputError(f"{where}: meta is not JSON-serialisable ({e})") from e
            vecs = {}
            for space, v in (vectors or {}).items():
                store.check_space(space)
                vecs[space] = self._check_vector(v, space, new_dims, where)
            toks = {check_kind(kind): as_token_bytes(kind, x) for kind, x in (tokens or {}).items()}
            prepared.append((record, vid, vecs, toks, meta))
        return prepared, new_dims

    def _check_vector(self, v, space: str, new_dims: dict[str, int] | None, where: str) -> np.ndarray:
        try:
            a = np.asarray(v, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise BankInputError(f"{where}: vector for space {space!r} is not numeric ({e})") from e
        if a.ndim == 2 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 1 or a.shape[0] == 0:
            raise BankInputError(f"{where}: vector for space {space!r} has shape {a.shape}; expected [D]")
        dim = self._dims.get(space) or (new_dims or {}).get(space)
        if dim is None and new_dims is not None:
            new_dims[space] = dim = a.shape[0]
        if dim is None:
            raise BankInputError(f"no vectors in space {space!r} (spaces: {sorted(self._dims) or 'none yet'})")
        if a.shape[0] != dim:
            raise BankInputError(f"{where}: vector for space {space!r} has dim {a.shape[0]}, but this bank's "
                                 f"{space!r} vectors are {dim}-d. Use the same embedder, or another space name.")
        if not np.isfinite(a).all():
            raise BankInputError(f"{where}: vector for space {space!r} contains NaN or inf; refusing to store it")
        return a

    def _commit(self, prepared, offsets, new_dims) -> list[int]:
        db, ids = self._db(), []
        db.execute("BEGIN IMMEDIATE")
        try:
            for space, dim in new_dims.items():
                db.execute(f"CREATE TABLE IF NOT EXISTS vec_{space}(id INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
                db.execute("INSERT INTO spaces(space, dim, n) VALUES (?, ?, 0)", (space, dim))
            vec_rows, tok_rows = defaultdict(list), []
            for i, (rec, vid, vecs, toks, meta) in enumerate(prepared):
                try:
                    rid = db.execute("INSERT INTO clips(vid, clip_index, t0, t1, caption, ocr_text, meta) "
                                     "VALUES (?,?,?,?,?,?,?)", (vid, int(rec.clip_index), float(rec.t0),
                                                                float(rec.t1), str(rec.caption), str(rec.ocr_text),
                                                                meta)).lastrowid
                except sqlite3.IntegrityError:
                    db.execute("ROLLBACK")
                    raise BankInputError(f"clip {rec.clip_index} of {rec.video_id!r} is already in the bank (last "
                                         f"committed clip: {self.last_clip(rec.video_id)}). Resume after "
                                         f"bank.last_clip().") from None
                for space, a in vecs.items():
                    vec_rows[space].append((rid, a.tobytes()))
                for kind, (data, n, d, dtype) in toks.items():
                    tok_rows.append((rid, kind, vid, offsets[(i, kind)], len(data), n, d, dtype))
                ids.append(rid)
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

    def _index_new(self, prepared, ids: list[int], new_dims: dict[str, int]) -> None:
        """Mirror a commit into the in-memory indexes; rebuild or persist one that has outgrown its cache."""
        self._dims.update(new_dims)
        per_space: dict[str, list] = defaultdict(list)
        for (_, _, vecs, _, _), rid in zip(prepared, ids):
            for space, a in vecs.items():
                per_space[space].append((rid, a))
        for space, pairs in per_space.items():
            if space not in self._indexes:
                self._indexes[space] = VectorIndex(self._dims[space], self.config)
            idx = self._indexes[space]
            idx.add(np.array([r for r, _ in pairs], np.int64), np.stack([a for _, a in pairs]))
            self._unsaved[space] += len(pairs)
            if idx.stale_for(idx.ntotal):
                idx.build(*store.read_vectors(self._db(), space, idx.dim))
                self._save(space, idx)
            elif self._unsaved[space] >= max(PERSIST_MIN, idx.ntotal // 4):
                self._save(space, idx)
