"""Uniform-sampling baseline: the same answerer reads frames sampled evenly over the video, no memory bank.

Either at its native tokens per frame or pooled to a fixed tokens/frame, in both cases filling the same budget.
"""

from __future__ import annotations

import math
import time

import numpy as np

from longwatch.pipeline.allocate import grid_for
from longwatch.pipeline.answer import Answer, ContextItem, build_blocks


def native_tokens_per_frame(answerer, height: int, width: int, frames: int = 2) -> float:
    """Visual tokens the answerer spends per frame at this size (encodes `frames` blank frames, no decode)."""
    tokens = answerer.encode_frames(np.zeros((frames, height, width, 3), dtype=np.uint8))
    return math.prod(tokens.shape[:3]) / frames


def uniform_answer(source, question: str, answerer, *, budget: int = 8192, tokens_per_frame: float | None = None,
                   max_side: int = 448, chunk_frames: int = 8, answer_tokens: int = 128,
                   min_new_tokens: int = 0, video_id: str = "video") -> Answer:
    """Answer `question` from frames sampled uniformly over `source` (a VideoSource or an open_source spec).

    `tokens_per_frame=None` keeps the answerer's native tokens per frame (fewer frames); a number pools each
    frame's tokens to that many (more frames). Frames are decoded now, at question time: that is the cost
    the memory bank avoids.
    """
    import torch

    from longwatch.pipeline.encoder import pool_grid
    from longwatch.pipeline.sampling import resize_max_side

    if answerer.is_text_only:
        raise ValueError("the uniform baseline needs a vision answerer; this one reads text only")
    own = not hasattr(source, "frames")
    if own:
        from longwatch.pipeline.sources import open_source

        source = open_source(source)
    timings = dict.fromkeys(("decode", "vision", "answer"), 0.0)
    try:
        info = source.info
        if not info.duration:
            raise ValueError(f"{info.source}: the uniform baseline needs a known duration (not a live stream)")
        h, w = resize_max_side(np.zeros((info.height, info.width, 3), np.uint8), max_side).shape[:2]
        native = native_tokens_per_frame(answerer, h, w)
        tpf = native if tokens_per_frame is None else min(float(tokens_per_frame), native)
        n_frames = max(1, int(budget // tpf))
        frames = source.frames(fps=n_frames / info.duration, max_side=max_side)
        items: list[ContextItem] = []
        used = 0
        done = False
        while not done:
            t = time.perf_counter()
            chunk = []
            for frame in frames:
                chunk.append(frame)
                if len(chunk) == chunk_frames:
                    break
            else:
                done = True
            timings["decode"] += time.perf_counter() - t
            if not chunk:
                break
            t = time.perf_counter()
            tokens = answerer.encode_frames(np.stack([f.image for f in chunk])).float()
            if tokens_per_frame is not None:
                steps, gh, gw = tokens.shape[:3]
                target = max(1, int(tpf * len(chunk)))
                tokens = pool_grid(tokens, grid_for(target, (steps, gh, gw)))
            n = math.prod(tokens.shape[:3])
            timings["vision"] += time.perf_counter() - t
            if used + n > budget:
                break
            used += n
            t1 = chunk[-1].t + (info.duration / n_frames)
            items.append(ContextItem(video_id, len(items), chunk[0].t, min(t1, info.duration), "", "", 0.0, tokens))
    finally:
        if own:
            source.close()
    t = time.perf_counter()
    blocks = build_blocks(items)
    prefill = int(answerer.build_prompt(blocks, question).input_ids.shape[1])
    with torch.inference_mode():
        text = answerer.generate(blocks, question, max_new_tokens=answer_tokens, min_new_tokens=min_new_tokens)
    timings["answer"] = time.perf_counter() - t
    return Answer(text=text, citations=[], tokens_used=used, timings=timings, clips_considered=len(items),
                  budget=budget, prefill_tokens=prefill, videos=[video_id])
