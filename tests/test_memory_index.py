"""Each index kind against brute-force numpy on seeded synthetic keys: exact ids for flat, recall for IVF/HNSW.

Keys are clustered like real caption embeddings; queries are fresh draws from the same mixture.
"""

from __future__ import annotations

import numpy as np
import pytest

from longwatch.memory.index import IndexConfig, VectorIndex


def clustered(n: int, d: int, seed: int, centers: int = 2000, spread: float = 0.8) -> np.ndarray:
    """n unit vectors from `centers` Gaussian clusters (noise norm ~ spread x centre norm); fixed centres."""
    c = np.random.default_rng(7).normal(size=(centers, d)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    x = c[rng.integers(0, centers, n)] + rng.normal(0, spread / np.sqrt(d), (n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force(q: np.ndarray, x: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = q @ x.T
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), axis=1), 1)
    return np.take_along_axis(s, top, 1), ids[top]


def recall_at(truth: np.ndarray, got: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(t, g)) / len(t) for t, g in zip(truth, got)]))


def test_flat_matches_brute_force_ids_exactly():
    x, q = clustered(5000, 48, seed=1), clustered(50, 48, seed=2)
    ids = np.arange(100, 100 + len(x)) * 3  # record ids are not row numbers
    idx = VectorIndex(48)
    idx.build(ids[:2000], x[:2000])
    idx.add(ids[2000:], x[2000:])
    assert idx.kind == "flat" and idx.ntotal == 5000
    want_s, want_i = brute_force(q, x, ids, 10)
    got_s, got_i = idx.search(q, 10)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_subset_search_is_exact_for_any_index(kind):
    """Per-video search: a restricted candidate set is scored exactly even when the archive index is IVF."""
    x, q = clustered(20_000, 32, seed=3), clustered(20, 32, seed=4)
    ids = np.arange(1, len(x) + 1)
    idx = VectorIndex(32, IndexConfig(approx_threshold=1000 if kind == "ivf" else 10**9))
    idx.build(ids, x)
    assert idx.kind == kind
    subset = ids[5000:5900]  # one video of 900 clips
    want_s, want_i = brute_force(q, x[5000:5900], subset, 10)
    got_s, got_i = idx.search(q, 10, subset=subset)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-5)


def test_ivf_recall_at_1e5_and_removal():
    n, d = 100_000, 64
    x, q = clustered(n, d, seed=5), clustered(200, d, seed=6)
    ids = np.arange(1, n + 1)
    idx = VectorIndex(d, IndexConfig(approx="ivf", approx_threshold=50_000))
    idx.build(ids, x)
    assert idx.kind == "ivf" and idx.recall >= 0.95
    _, truth = brute_force(q, x, ids, 10)
    _, got = idx.search(q, 10)
    assert recall_at(truth, got) >= 0.95
    # Removing a video's ids: they never come back, and the rest is still found.
    gone = ids[:30_000]
    idx.remove(gone)
    assert idx.ntotal == n - len(gone)
    _, got = idx.search(q, 10)
    assert not np.isin(got, gone).any()
    _, truth = brute_force(q, x[30_000:], ids[30_000:], 10)
    assert recall_at(truth, got) >= 0.95


def _hnsw_recall(n: int, d: int) -> float:
    x, q = clustered(n, d, seed=8), clustered(100, d, seed=9)
    ids = np.arange(1, n + 1)
    idx = VectorIndex(d, IndexConfig(approx="hnsw", approx_threshold=1000, hnsw_m=16))
    idx.build(ids, x)
    assert idx.kind == "hnsw"
    _, truth = brute_force(q, x, ids, 10)
    _, got = idx.search(q, 10)
    return recall_at(truth, got)


def test_hnsw_recall_small():
    assert _hnsw_recall(5000, 32) >= 0.95


@pytest.mark.slow
def test_hnsw_recall_at_1e5():
    assert _hnsw_recall(100_000, 64) >= 0.95


def test_roundtrip_through_bytes_keeps_results():
    x, q = clustered(30_000, 32, seed=10), clustered(10, 32, seed=11)
    ids = np.arange(1, len(x) + 1)
    idx = VectorIndex(32, IndexConfig(approx_threshold=10_000))
    idx.build(ids, x)
    back = VectorIndex.from_bytes(idx.to_bytes(), idx.state(), idx.config)
    assert (back.kind, back.probe, back.max_id) == (idx.kind, idx.probe, idx.max_id)
    np.testing.assert_array_equal(back.search(q, 10)[1], idx.search(q, 10)[1])
