"""CPU time of the kernels' torch paths against naive formulations and plain torch ops, as ratios;
Triton against torch as well when a CUDA device exists. Run:
    .venv/bin/python benchmarks/kernels.py [--repeats 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from longwatch.kernels import cross_attention, pool_spatial, pool_temporal


def compare(fns: dict[str, Callable[[], object]], repeats: int,
            sync: Callable[[], None] | None = None) -> dict[str, float]:
    """Median milliseconds per function, calls interleaved so every function sees the same machine load.

    Process CPU time on the CPU (robust to other jobs on this shared machine); wall time around a device
    sync when `sync` is given. Functions slower than a second get 3 repeats (the naive baselines).
    """
    clock = time.perf_counter if sync else time.process_time
    (sync or (lambda: None))()

    def once(fn) -> float:
        t0 = clock()
        fn()
        (sync or (lambda: None))()
        return clock() - t0

    warm = {name: once(fn) for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        # Rotate the order: the first call of a round runs on colder caches.
        for name in names[r % len(names):] + names[:r % len(names)]:
            if warm[name] < 1.0 or r < 3:
                times[name].append(once(fns[name]))
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def pool_loops(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Naive baseline: one python-level mean per output cell of x[B, H, W, D]."""
    H, W = x.shape[1], x.shape[2]
    rows = []
    for i in range(h):
        hs, he = i * H // h, -(-(i + 1) * H // h)
        cells = [x[:, hs:he, j * W // w:-(-(j + 1) * W // w)].mean((1, 2)) for j in range(w)]
        rows.append(torch.stack(cells, 1))
    return torch.stack(rows, 1)


def pool_nchw(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Plain torch as usually written: copy to NCHW, pool, copy back to token layout."""
    return F.adaptive_avg_pool2d(x.permute(0, 3, 1, 2).contiguous(), (h, w)).permute(0, 2, 3, 1).contiguous()


def attention_naive(q, k, v, kv_lens):
    """Naive baseline: matmul + softmax with kv heads repeated for grouped queries and a length mask
    (its softmax holds what the log-sum-exp needs)."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if kv_lens is not None:
        s = s.masked_fill(torch.arange(k.shape[2]) >= kv_lens[:, None, None, None], float("-inf"))
    return torch.softmax(s, -1) @ v


def attention_sdpa(q, k, v, kv_lens):
    """Plain SDPA as a caller would write it: a [B, 1, M, N] bool mask for lengths, enable_gqa for heads."""
    mask = None
    if kv_lens is not None:
        mask = (torch.arange(k.shape[2]) < kv_lens[:, None])[:, None, None, :].expand(-1, 1, q.shape[2], -1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=q.shape[1] != k.shape[1])


def _row(op: str, dtype: torch.dtype, plain: str, ms: dict[str, float]) -> dict:
    return dict(op=op, dtype=str(dtype).removeprefix("torch."), plain=plain, torch_ms=ms["ours"],
                naive_ms=ms["naive"], plain_ms=ms["plain"])


def bench_pooling(repeats: int, dtype: torch.dtype) -> list[dict]:
    rows = []
    # 8 frames x 1024 patches x 768 -> 64 tokens per frame; and SigLIP's 27x27 grid (non-divisible).
    for (H, W, D) in ((32, 32, 768), (27, 27, 1152)):
        x = torch.randn(8, H, W, D).to(dtype)
        ms = compare({"ours": lambda: pool_spatial(x, (8, 8), impl="torch"), "naive": lambda: pool_loops(x, 8, 8),
                      "plain": lambda: pool_nchw(x, 8, 8)}, repeats)
        rows.append(_row(f"pool_spatial 8x({H}x{W})x{D} -> 8x8", dtype, "adaptive_avg_pool2d on an NCHW copy", ms))
    xt = torch.randn(1, 8, 8, 8, 768).to(dtype)  # a pooled clip, 8 frames -> 3 (non-divisible)
    win = [(i * 8 // 3, -(-(i + 1) * 8 // 3)) for i in range(3)]
    ms = compare({"ours": lambda: pool_temporal(xt, 3, impl="torch"),
                  "naive": lambda: torch.stack([xt[:, s:e].mean(1) for s, e in win], 1),
                  "plain": lambda: F.adaptive_avg_pool1d(xt.flatten(2).transpose(1, 2).contiguous(), 3)}, repeats)
    rows.append(_row("pool_temporal 8x(8x8)x768 -> 3", dtype, "adaptive_avg_pool1d on a [B, HWD, T] copy", ms))
    return rows


ATTENTION = [  # (label, B, Hq, Hkv, M, N, d, kv_lens, return_lse)
    ("64 q x 8192 keys, 12 heads, d 64", 1, 12, 12, 64, 8192, 64, None, False),
    ("64 q x 8192 keys, 8q/2kv heads, d 128", 1, 8, 2, 64, 8192, 128, None, False),
    ("4 clips x 64 q, lens 8192/6000/3000/512, 12 heads, d 64", 4, 12, 12, 64, 8192, 64, [8192, 6000, 3000, 512],
     False),
    ("same 4 clips, also returning the log-sum-exp", 4, 12, 12, 64, 8192, 64, [8192, 6000, 3000, 512], True),
]


def bench_attention(repeats: int, dtype: torch.dtype) -> list[dict]:
    rows = []
    for label, B, HQ, HKV, M, N, D, lens, lse in ATTENTION:
        q, k, v = (torch.randn(B, h, n, D).to(dtype) for h, n in ((HQ, M), (HKV, N), (HKV, N)))
        kv_lens = torch.tensor(lens) if lens is not None else None
        ms = compare({"ours": lambda: cross_attention(q, k, v, kv_lens=kv_lens, impl="torch", return_lse=lse),
                      "naive": lambda: attention_naive(q, k, v, kv_lens),
                      "plain": lambda: attention_sdpa(q, k, v, kv_lens)}, repeats)
        rows.append(_row(f"cross_attention {label}", dtype, "SDPA (+ length mask, enable_gqa; no lse)", ms))
    return rows


def bench_triton(repeats: int) -> list[dict]:
    """Triton against the torch path on the GPU, same shapes, fp16, wall time around syncs."""
    sync = torch.cuda.synchronize
    rows = []
    x = torch.randn(8, 32, 32, 768, device="cuda", dtype=torch.float16)
    ms = compare({"torch": lambda: pool_spatial(x, (8, 8), impl="torch"),
                  "triton": lambda: pool_spatial(x, (8, 8), impl="triton")}, repeats, sync)
    rows.append(dict(op="pool_spatial 8x(32x32)x768 -> 8x8", torch_ms=ms["torch"], triton_ms=ms["triton"]))
    for label, B, HQ, HKV, M, N, D, lens, lse in ATTENTION:
        q, k, v = (torch.randn(B, h, n, D, device="cuda", dtype=torch.float16)
                   for h, n in ((HQ, M), (HKV, N), (HKV, N)))
        kv_lens = torch.tensor(lens, device="cuda") if lens is not None else None
        ms = compare({impl: (lambda impl=impl: cross_attention(q, k, v, kv_lens=kv_lens, impl=impl, return_lse=lse))
                      for impl in ("torch", "triton")}, repeats, sync)
        rows.append(dict(op=f"cross_attention {label}", torch_ms=ms["torch"], triton_ms=ms["triton"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 keeps CPU-time ratios stable on a shared machine)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        rows += bench_pooling(args.repeats, dtype) + bench_attention(args.repeats, dtype)
    gpu_rows = bench_triton(args.repeats) if torch.cuda.is_available() else []
    if args.json:
        print(json.dumps({"cpu": rows, "cuda": gpu_rows, "threads": torch.get_num_threads()}, indent=1))
        return
    print(f"CPU time, {torch.get_num_threads()} thread(s), median of {args.repeats}; "
          "ratio > 1 = our torch path faster\n")
    print("| op | dtype | torch path ms | naive ms | naive / ours | plain torch ms | plain / ours | plain = |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['op']} | {r['dtype']} | {r['torch_ms']:.2f} | {r['naive_ms']:.2f} | "
              f"{r['naive_ms'] / r['torch_ms']:.2f}x | {r['plain_ms']:.2f} | {r['plain_ms'] / r['torch_ms']:.2f}x | "
              f"{r['plain']} |")
    if gpu_rows:
        print(f"\nCUDA ({torch.cuda.get_device_name()}), fp16; ratio > 1 = Triton faster\n")
        print("| op | torch ms | triton ms | torch / triton |")
        print("|---|---|---|---|")
        for r in gpu_rows:
            ratio = r["torch_ms"] / r["triton_ms"]
            print(f"| {r['op']} | {r['torch_ms']:.3f} | {r['triton_ms']:.3f} | {ratio:.2f}x |")
    else:
        print("\nNo CUDA device: Triton timings skipped (the interpreter measures Python, not kernels).")


if __name__ == "__main__":
    main()
