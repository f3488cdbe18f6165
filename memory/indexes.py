"""The bank's vector indexes: one FAISS index per space, kept as caches of the vectors SQLite holds.

Each cache file is stamped (delete count, vectors, max id) so an open takes it, tops it up, or rebuilds it.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from longwatch.memory import store
from longwatch.memory.index import IndexConfig, VectorIndex
from longwatch.memory.recordstore import RecordStore
from longwatch.memory.records import BankWarning

INDEX_DIR = "index"
PERSIST_MIN = 10_000  # unsaved vectors before an index cache is rewritten during ingest (also at 1/4 growth)


class VectorIndexes:
    """The in-memory indexes of every space and their cache files under `root/index/<space>.faiss`.

    `deletes` is the delete count the indexes (and the caches they write) reflect; `repaired` is the bank's
    counter of what opening had to fix, shared so a reader's later rebuild is counted too.
    """

    def __init__(self, root: Path, records: RecordStore, config: IndexConfig, readonly: bool, repaired: Counter):
        self.folder = root / INDEX_DIR
        self.records = records
        self.config = config
        self.readonly = readonly
        self.repaired = repaired
        self.deletes = 0
        self._indexes: dict[str, VectorIndex] = {}
        self._unsaved: Counter = Counter()

    def __contains__(self, space: str) -> bool:
        return space in self._indexes

    def __getitem__(self, space: str) -> VectorIndex:
        return self._indexes[space]

    @property
    def dims(self) -> dict[str, int]:
        """Space name -> dimension."""
        return {space: idx.dim for space, idx in self._indexes.items()}

    def _path(self, space: str) -> Path:
        return self.folder / f"{space}.faiss"

    # --- opening and catching up ----------------------------------------------------------------------------
    def remove_partial_files(self) -> None:
        """Drop temp files a crash left mid-write (the cache they were replacing is intact)."""
        for tmp in self.folder.glob("*.tmp"):
            tmp.unlink()
            self.repaired["partial_index_files"] += 1

    def load(self) -> None:
        """(Re)open every space's index as of the records' current state."""
        self.deletes = self.records.deletes()
        self._indexes.clear()
        for space, dim, n in self.records.spaces():
            self._indexes[space] = self._open(space, dim, n)

    def catch_up(self) -> None:
        """Readers, when no delete happened: add what the writer committed since (new vectors, new spaces)."""
        for space, dim, n in self.records.spaces():
            if space not in self._indexes:
                self._indexes[space] = self._open(space, dim, n)
            else:
                idx = self._indexes[space]
                idx.add(*self.records.read_vectors(space, dim, after=idx.max_id))

    def _open(self, space: str, dim: int, n: int) -> VectorIndex:
        """The cached index when its stamp matches SQLite (plus vectors added since), else a rebuild."""
        path, idx, problem = self._path(space), None, None
        if path.exists():
            try:
                header, payload = store.read_cache(path)
                if header["deletes"] == self.deletes and header["dim"] == dim:
                    newer = self.records.count_vectors_after(space, header["max_id"])
                    if header["ntotal"] + newer == n:
                        idx = VectorIndex.from_bytes(payload, header, self.config)
                    elif not self.readonly:  # a reader's snapshot may simply predate the writer's newest cache
                        problem = f"holds {header['ntotal']} vectors up to id {header['max_id']}, SQLite has {n}"
            except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
                problem = f"is damaged ({e})"
        if problem:
            # stacklevel: the MemoryBank call that opened the bank (MemoryBank.__init__ -> load -> _open).
            warnings.warn(f"{path}: index cache {problem}; rebuilding it from {store.DB} ({n} vectors)",
                          BankWarning, stacklevel=3)
            self.repaired["rebuilt_indexes"] += 1
        if idx is None:
            idx = VectorIndex(dim, self.config)
            idx.build(*self.records.read_vectors(space, dim))
            self._unsaved[space] = max(1, n)
        else:
            ids, vecs = self.records.read_vectors(space, dim, after=idx.max_id)
            idx.add(ids, vecs)
            self._unsaved[space] += len(ids)
        if not self.readonly:
            if idx.stale_for(idx.ntotal):  # e.g. grown past the threshold, or opened with another IndexConfig
                idx.build(*self.records.read_vectors(space, dim))
                self._unsaved[space] = max(1, idx.ntotal)
            if problem or self._unsaved[space]:
                self._save(space, idx)
        return idx

    # --- the writer's updates ---------------------------------------------------------------------------------
    def add(self, clips: list[tuple[int, dict[str, np.ndarray]]]) -> None:
        """Mirror committed (record id, vector per space) pairs; rebuild or persist an index that outgrew its cache."""
        per_space: dict[str, list] = defaultdict(list)
        for rid, vectors in clips:
            for space, a in vectors.items():
                per_space[space].append((rid, a))
        for space, pairs in per_space.items():
            if space not in self._indexes:
                self._indexes[space] = VectorIndex(len(pairs[0][1]), self.config)
            idx = self._indexes[space]
            idx.add(np.array([r for r, _ in pairs], np.int64), np.stack([a for _, a in pairs]))
            self._unsaved[space] += len(pairs)
            if idx.stale_for(idx.ntotal):
                idx.build(*self.records.read_vectors(space, idx.dim))
                self._save(space, idx)
            elif self._unsaved[space] >= max(PERSIST_MIN, idx.ntotal // 4):
                self._save(space, idx)

    def remove(self, ids: np.ndarray) -> None:
        """Drop a deleted video's ids (already gone from SQLite) and restamp every cache with the new delete count."""
        self.deletes = self.records.deletes()
        for space, idx in self._indexes.items():
            idx.remove(ids)
            self._save(space, idx)

    def _save(self, space: str, idx: VectorIndex) -> None:
        path = self._path(space)
        path.parent.mkdir(exist_ok=True)
        store.write_cache(path, dict(idx.state(), deletes=self.deletes, space=space), idx.to_bytes())
        self._unsaved[space] = 0

    def flush(self) -> None:
        """Write every cache that lags behind SQLite (temp file + fsync + rename)."""
        for space, idx in self._indexes.items():
            if self._unsaved[space] or not self._path(space).exists():
                self._save(space, idx)

    def reindex(self, space: str | None = None) -> None:
        """Rebuild indexes from SQLite, choosing the kind by current size."""
        for name in [space] if space else list(self._indexes):
            idx = self._indexes[name]
            idx.build(*self.records.read_vectors(name, idx.dim))
            self._save(name, idx)

    # --- what stats() reports -------------------------------------------------------------------------------
    def states(self) -> dict[str, dict]:
        return {space: dict(idx.state(), space=space) for space, idx in self._indexes.items()}

    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.faiss"))
