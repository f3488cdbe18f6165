"""Memory bank benchmark: add throughput, search latency p50/p99 and recall@10 (exact vs IVF/HNSW), disk bytes.

Run: .venv/bin/python benchmarks/memory.py [--sizes 1e3,1e4,1e5,1e6] [--dims 384,1024] [--centers 4000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from longwatch.memory import ClipRecord, IndexConfig, MemoryBank

KINDS = {"exact": IndexConfig(approx_threshold=10**12), "ivf": IndexConfig(approx="ivf", approx_threshold=1),
         "hnsw": IndexConfig(approx="hnsw", approx_threshold=1)}


def clustered(n: int, d: int, seed: int, centers: int = 4000, spread: float = 0.8) -> np.ndarray:
    """Unit keys from Gaussian clusters (noise norm ~ spread x centre norm), generated in blocks to bound memory."""
    c = np.random.default_rng(7).normal(size=(centers, d)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    rng, out = np.random.default_rng(seed), np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        m = min(n, s + 100_000) - s
        x = c[rng.integers(0, centers, m)] + rng.normal(0, spread / np.sqrt(d), (m, d)).astype(np.float32)
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def fill(root: Path, x: np.ndarray, batch: int = 10_000) -> float:
    """Bulk-load x as one video's clips through add_many; returns clips/s."""
    t = time.perf_counter()
    with MemoryBank(root, index=KINDS["exact"], durable=False) as bank:
        bank.add_video("archive")
        for s in range(0, len(x), batch):
            bank.add_many([(ClipRecord("archive", i, 4.0 * i, 4.0 * i + 4), {"text": x[i]}, None)
                           for i in range(s, min(len(x), s + batch))])
    return len(x) / (time.perf_counter() - t)


def durable_adds(root: Path, d: int, n: int = 200) -> tuple[float, float]:
    """One fsync'd add per clip with 64 bf16 memory tokens of width 576 (SmolVLM-256M's hidden size)."""
    import torch

    rng = np.random.default_rng(0)
    with MemoryBank(root) as bank:
        bank.add_video("v")
        t = time.perf_counter()
        for i in range(n):
            v = rng.normal(size=d).astype(np.float32)
            bank.add(ClipRecord("v", i, i, i + 1, caption=f"clip {i}"), {"text": v / np.linalg.norm(v)},
                     {"memory": torch.randn(64, 576, dtype=torch.bfloat16)})
        rate = n / (time.perf_counter() - t)
        shard_bytes = bank.stats()["bytes"]["shards"] / n
    return rate, shard_bytes


def measure(root: Path, kind: str, queries: np.ndarray, truth: np.ndarray) -> dict:
    """Open the bank with one index kind (rebuilding it from SQLite if needed) and time single-query search."""
    t = time.perf_counter()
    bank = MemoryBank(root, index=KINDS[kind])
    opened = time.perf_counter() - t
    with bank:
        lat, got = [], []
        for q in queries:
            t = time.perf_counter()
            hits = bank.search(q, 10)
            lat.append(time.perf_counter() - t)
            got.append([h.record.clip_index for h in hits])  # clip i holds row i of the keys
        recall = float(np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth.tolist())]))
        st = bank.stats()
        space = st["spaces"]["text"]
        return {"kind": space["kind"], "open_s": opened, "p50_ms": 1e3 * float(np.percentile(lat, 50)),
                "p99_ms": 1e3 * float(np.percentile(lat, 99)), "recall": recall, "probe": space["probe"],
                "bytes_per_entry": st["bytes"]["total"] / st["clips"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1e3,1e4,1e5,1e6")
    ap.add_argument("--dims", default="384,1024")
    ap.add_argument("--max-1024", type=float, default=1e5, help="largest size run at 1024-d (4 GB of keys at 1e6)")
    ap.add_argument("--hnsw-max", type=float, default=1e4, help="largest size with an HNSW build (slow on 2 cores)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--centers", type=int, default=4000, help="clusters in the synthetic keys (more = harder)")
    ap.add_argument("--dir", default=None, help="where to build banks (default: a temp folder, removed after)")
    args = ap.parse_args()
    import faiss

    work = Path(args.dir or tempfile.mkdtemp(prefix="lw-bench-mem-"))
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; banks under {work}")
    rows = []
    for d in (int(v) for v in args.dims.split(",")):
        rate, tok_bytes = durable_adds(work / f"durable-{d}", d)
        shutil.rmtree(work / f"durable-{d}")
        print(f"d={d}: durable add (fsync per clip, 64x576 bf16 tokens) {rate:.0f} clips/s, "
              f"{tok_bytes:.0f} shard bytes/clip")
        for n in (int(float(v)) for v in args.sizes.split(",")):
            if d == 1024 and n > args.max_1024:
                continue
            root = work / f"bank-{d}-{n}"
            x = clustered(n, d, seed=1, centers=args.centers)
            bulk = fill(root, x)
            q = clustered(args.queries, d, seed=2, centers=args.centers)
            _, truth = faiss.knn(q, x, 10, metric=faiss.METRIC_INNER_PRODUCT)
            del x
            kinds = ["exact", "ivf"] + (["hnsw"] if n <= args.hnsw_max else [])
            base = None
            for kind in kinds:
                r = measure(root, kind, q, truth)
                base = base or r["p50_ms"]
                rows.append((d, n, bulk, r, base / r["p50_ms"]))
                print(f"d={d} n={n:>8} {r['kind']:>5}: bulk add {bulk:8.0f}/s  open+build {r['open_s']:6.2f}s  "
                      f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  recall@10 {r['recall']:.3f}  "
                      f"probe {r['probe']}  {r['bytes_per_entry']:.0f} B/entry  x{base / r['p50_ms']:.1f} vs exact",
                      flush=True)
            shutil.rmtree(root)
    print("\n| dim | entries | index | bulk add clips/s | open+build s | p50 ms | p99 ms | recall@10 | speedup vs exact "
          "| disk B/entry |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for d, n, bulk, r, ratio in rows:
        print(f"| {d} | {n:,} | {r['kind']} (probe {r['probe']}) | {bulk:,.0f} | {r['open_s']:.1f} | {r['p50_ms']:.2f} "
              f"| {r['p99_ms']:.2f} | {r['recall']:.3f} | {ratio:.1f}x | {r['bytes_per_entry']:,.0f} |")
    if not args.dir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
