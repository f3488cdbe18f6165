"""Per-frame encode time and prefill time vs visual-token count, random weights at published sizes, this CPU.

Run: .venv/bin/python benchmarks/models.py [--models ...] [--dtypes fp32,bf16]; prints a markdown table.
"""

from __future__ import annotations

import argparse
import platform
import time

DEFAULT_TOKENS = {"smolvlm2-256m": [64, 256, 1024, 2048], "llava-onevision-0.5b": [196, 784, 1568]}
# Qwen2-VL is left out by default: its mRoPE wants real grids, and 2B does not prefill in minutes on 2 cores.


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)  # the least-disturbed run on a shared machine


def bench_model(name: str, dtype: str, tokens: list[int], frames: int, repeats: int) -> list[dict]:
    import numpy as np
    import torch

    from longwatch.pipeline.models import PromptBlock
    from longwatch.pipeline.models.registry import sized_vlm

    adapter = sized_vlm(name, dtype=dtype, device="cpu")
    clip = np.random.default_rng(0).integers(0, 255, (frames, 360, 640, 3), dtype=np.uint8)
    encoded = adapter.encode_frames(clip)  # warm-up, and the native grid per frame
    per_frame = _best(lambda: adapter.encode_frames(clip), repeats) / frames
    native = encoded.shape[1] * encoded.shape[2]
    rows = [{"model": name, "dtype": dtype, "what": f"encode 640x360 frame ({native} tokens)",
             "tokens": native, "seconds": per_frame}]
    D = adapter.hidden_size
    gen = torch.Generator().manual_seed(0)
    for n in tokens:
        # n visual tokens as one [1, 1, n] grid: 1-D RoPE families only see the count.
        grid = torch.randn(1, 1, n, D, generator=gen).to(adapter.dtype) * 0.02
        blocks = [PromptBlock("[00:00:00-00:01:00]", grid, "a caption of the clip")]
        prompt = adapter.build_prompt(blocks, "What happens in the video?")
        seconds = _best(lambda: adapter.forward(prompt), repeats)
        rows.append({"model": name, "dtype": dtype, "what": f"prefill {prompt.input_ids.shape[1]} tokens",
                     "tokens": n, "seconds": seconds})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smolvlm2-256m,llava-onevision-0.5b")
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma list; the first is the baseline for ratios")
    parser.add_argument("--frames", type=int, default=1, help="frames per encode call")
    parser.add_argument("--tokens", default="", help="comma list of visual-token counts (default: per model)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    args = parser.parse_args(argv)

    import torch

    from longwatch.pipeline.models.registry import cpu_has_bf16

    if args.threads:
        torch.set_num_threads(args.threads)
    dtypes = args.dtypes.split(",")
    print(f"# models benchmark: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, CPU {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {cpu_has_bf16()}\n")
    print("| model | dtype | measurement | visual tokens | seconds | s per 1k visual tokens | speed vs first dtype |")
    print("|---|---|---|---|---|---|---|")
    baseline: dict[tuple[str, str], float] = {}
    for name in args.models.split(","):
        for dtype in dtypes:
            tokens = [int(n) for n in args.tokens.split(",")] if args.tokens else DEFAULT_TOKENS.get(name, [256, 1024])
            for row in bench_model(name, dtype, tokens, args.frames, args.repeats):
                key = (row["model"], row["what"])
                baseline.setdefault(key, row["seconds"])
                ratio = baseline[key] / row["seconds"]
                print(f"| {row['model']} | {row['dtype']} | {row['what']} | {row['tokens']} | {row['seconds']:.2f} | "
                      f"{1000 * row['seconds'] / row['tokens']:.2f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
