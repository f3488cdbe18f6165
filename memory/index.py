"""One vector space's FAISS index keyed by record id: exact below a size threshold, IVF or HNSW above.

The index is a cache of vectors held durably in SQLite; `to_bytes`/`from_bytes` carry it to disk and back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# A filtered search over at most this many candidates reconstructs them and scores exactly: per-video sets
# (an hour of 4 s clips is 900 entries) stay exact whatever the archive-wide index is.
EXACT_SUBSET_MAX = 50_000
MIN_APPROX = 1000


def faiss_module():
    """faiss, imported on first use (its import costs ~0.3 s)."""
    import faiss

    return faiss


def gpu_count() -> int:
    """Number of CUDA devices faiss can use; 0 with faiss-cpu or without a GPU."""
    faiss = faiss_module()
    try:
        return int(faiss.get_num_gpus())
    except (AttributeError, RuntimeError):
        return 0


@dataclass
class IndexConfig:
    """How a space's index is chosen. `approx` is used from `approx_threshold` vectors on."""

    approx: str = "ivf"  # "ivf" | "hnsw"
    approx_threshold: int = 100_000
    tune_recall: float = 0.97  # tuned on a sample with margin so held-out recall@10 stays >= 0.95
    hnsw_m: int = 32

    def __post_init__(self):
        if self.approx not in ("ivf", "hnsw"):
            raise ValueError(f"approx must be 'ivf' or 'hnsw', got {self.approx!r}")
        if self.approx_threshold < 1:
            raise ValueError(f"approx_threshold must be >= 1, got {self.approx_threshold}")


def ivf_nlist(n: int) -> int:
    """Inverted lists for n vectors: ~2 sqrt(n), so each list holds ~sqrt(n)/2 vectors and training stays cheap."""
    return int(min(65536, max(16, 2 * math.sqrt(n))))


class VectorIndex:
    """Inner-product search over (record id, vector[D]) pairs of one space."""

    def __init__(self, dim: int, config: IndexConfig | None = None):
        self.dim = dim
        self.config = config or IndexConfig()
        self.kind = "flat"
        self.trained_n = 0  # how many vectors the approximate index was built from
        self.probe = 0  # nprobe (IVF) or efSearch (HNSW) found by tuning
        self.recall = 1.0  # recall@10 measured on the tuning sample
        self.max_id = 0
        self._index = self._new_flat()
        self._gpu = None

    # --- building -----------------------------------------------------------------------------------------
    def _new_flat(self):
        faiss = faiss_module()
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def wanted_kind(self, n: int) -> str:
        # Below MIN_APPROX vectors k-means has too little to train on, and exact search is fast anyway.
        return "flat" if n < max(self.config.approx_threshold, MIN_APPROX) else self.config.approx

    def stale_for(self, n: int) -> bool:
        """True when n vectors call for another index type or a much larger IVF than the one trained."""
        if self.wanted_kind(n) != self.kind:
            return True
        return self.kind == "ivf" and n >= 4 * self.trained_n

    def build(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Replace the index with one fit for len(ids) vectors; approximate kinds are tuned for recall."""
        faiss = faiss_module()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        kind = self.wanted_kind(len(ids))
        if kind == "flat":
            index = self._new_flat()
        elif kind == "ivf":
            nlist = ivf_nlist(len(ids))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.spherical = True  # centroids on the unit sphere suit cosine keys
            index.cp.niter = 10  # k-means converges enough for list assignment; 25 rounds cost 2.5x the time
            # A hash-table direct map lets exact filtered search reconstruct any id, and keeps remove_ids working.
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
            rng = np.random.default_rng(0)
            sample = vecs[rng.choice(len(vecs), min(len(vecs), 40 * nlist), replace=False)]
            index.train(sample)
        else:
            inner = faiss.IndexHNSWFlat(self.dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = 80
            index = faiss.IndexIDMap2(inner)
        if len(ids):
            index.add_with_ids(vecs, ids)
        self._index, self.kind, self._gpu = index, kind, None
        self.trained_n = len(ids)
        self.max_id = int(ids.max()) if len(ids) else 0
        self.probe, self.recall = (0, 1.0) if kind == "flat" else self._tune(ids, vecs)

    def _tune(self, ids: np.ndarray, vecs: np.ndarray) -> tuple[int, float]:
        """Smallest nprobe/efSearch whose recall@10 against brute force reaches `tune_recall` on a sample."""
        faiss = faiss_module()
        rng = np.random.default_rng(1)
        nq, k = min(200, len(vecs)), 10
        # Queries near stored keys (noise half a key's norm), as a question lands near the captions that answer it.
        # On clustered keys this sample's recall tracked held-out queries' within 0.01 (benchmarks/memory.py).
        q = vecs[rng.choice(len(vecs), nq, replace=False)] + rng.normal(0, 0.5 / math.sqrt(self.dim), (nq, self.dim))
        q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
        _, rows = faiss.knn(q, vecs, k, metric=faiss.METRIC_INNER_PRODUCT)
        truth = ids[rows]
        limit = self._index.nlist if self.kind == "ivf" else 4096
        # efSearch below 64 let held-out recall fall well under the sample's on small graphs.
        probe, recall = 1 if self.kind == "ivf" else 64, 0.0
        while True:
            self.probe = probe
            _, got = self.search(q, k)
            recall = float(np.mean([len(np.intersect1d(truth[i], got[i])) / k for i in range(nq)]))
            if recall >= self.config.tune_recall or probe >= limit:
                return probe, recall
            probe = min(limit, probe * 2)

    # --- updates ------------------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        if not len(ids):
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), ids)
        self.max_id = max(self.max_id, int(ids.max()))
        self._gpu = None

    def remove(self, ids: np.ndarray) -> None:
        faiss = faiss_module()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return
        if self.kind == "hnsw":
            # HNSW graphs cannot drop nodes: rebuild from the vectors the index itself holds.
            keep = np.setdiff1d(faiss.vector_to_array(self._index.id_map), ids)
            vecs = self.reconstruct(keep)
            self.build(keep, vecs)
            return
        # IVF's hash-table direct map removes only through an IDSelectorArray.
        sel = faiss.IDSelectorArray(ids) if self.kind == "ivf" else faiss.IDSelectorBatch(ids)
        self._index.remove_ids(sel)
        self._gpu = None

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors [len(ids), D] of the given ids (all must be present)."""
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))

    # --- search -------------------------------------------------------------------------------------------
    def search(self, q: np.ndarray, k: int, subset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores[Q, k], ids[Q, k]) for queries q[Q, D]; ids -1 pad missing slots.

        `subset` restricts results to those record ids; up to EXACT_SUBSET_MAX of them are scored exactly.
        """
        faiss = faiss_module()
        q = np.ascontiguousarray(q, dtype=np.float32)
        if subset is not None and len(subset) <= EXACT_SUBSET_MAX:
            return self._exact_subset(q, k, np.asarray(subset, dtype=np.int64))
        params = None
        sel = faiss.IDSelectorBatch(np.ascontiguousarray(subset, dtype=np.int64)) if subset is not None else None
        if self.kind == "ivf":
            params = faiss.SearchParametersIVF(sel=sel, nprobe=self.probe)
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(self.probe, k))
        elif sel is not None:
            params = faiss.SearchParameters(sel=sel)
        index = self._search_index() if params is None else self._index
        # A few queries gain nothing from OpenMP, and its barriers cost 5x when the cores are busy. The setting
        # is per calling thread, so builds and batch searches elsewhere keep their threads.
        threads = faiss.omp_get_max_threads()
        if len(q) < 20:
            faiss.omp_set_num_threads(1)
        try:
            return index.search(q, k, params=params) if params is not None else index.search(q, k)
        finally:
            faiss.omp_set_num_threads(threads)

    def _exact_subset(self, q: np.ndarray, k: int, subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vecs = self.reconstruct(subset)
        scores = q @ vecs.T
        kk = min(k, len(subset))
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_i = np.full((len(q), k), -1, np.int64)
        if kk:
            top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
            order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
            top = np.take_along_axis(top, order, 1)
            out_s[:, :kk] = np.take_along_axis(scores, top, 1)
            out_i[:, :kk] = subset[top]
        return out_s, out_i

    def _search_index(self):
        """A GPU replica of a flat index when a GPU exists (faiss-gpu); the CPU index otherwise."""
        if self.kind != "flat" or gpu_count() == 0:
            return self._index
        if self._gpu is None:
            self._gpu = faiss_module().index_cpu_to_all_gpus(self._index)
        return self._gpu

    # --- persistence --------------------------------------------------------------------------------------
    def to_bytes(self) -> memoryview:
        return memoryview(faiss_module().serialize_index(self._index))

    def state(self) -> dict:
        return {"kind": self.kind, "trained_n": self.trained_n, "probe": self.probe, "recall": self.recall,
                "max_id": self.max_id, "ntotal": self.ntotal, "dim": self.dim}

    @classmethod
    def from_bytes(cls, payload: bytes | memoryview, state: dict, config: IndexConfig | None = None) -> VectorIndex:
        faiss = faiss_module()
        out = cls(int(state["dim"]), config)
        out._index = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        if out._index.d != out.dim or out._index.ntotal != int(state["ntotal"]):
            raise ValueError(f"index holds {out._index.ntotal} x {out._index.d}, header says {state}")
        out.kind, out.trained_n, out.probe = state["kind"], int(state["trained_n"]), int(state["probe"])
        out.recall, out.max_id = float(state["recall"]), int(state["max_id"])
        return out
