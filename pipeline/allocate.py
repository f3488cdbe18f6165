"""Adaptive Token Allocation (ATA, after Tempo): split a visual token budget across clips by relevance.

Pure functions on plain numbers; `grid_for` turns a clip's allocation into a (t, h, w) pooling grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def allocate(scores: Sequence[float], budget: int, frames_per_clip: int | Sequence[int],
             min_tpf: float = 0.5, max_tpf: float = 16.0) -> list[int]:
    """Tokens per clip: linear in relevance between `min_tpf` and `max_tpf` tokens per frame, under `budget`.

    Args:
        scores: relevance of each clip in [0, 1] (Tempo's sigmoid(Yes - No) prior).
        budget: total visual tokens the answerer may read.
        frames_per_clip: frames of each clip (one int for all, or one per clip).
    Returns:
        one int per clip. A kept clip gets at least its anchor ceil(min_tpf * frames) (>= 1) and at most
        floor(max_tpf * frames); a clip whose anchor no longer fits gets 0 (dropped). Clips are kept in
        order of relevance (ties: earlier clip first), so a dropped clip never outranks a kept one.
        When the wanted total exceeds the budget, the part above the anchors is scaled down proportionally.
        The sum never exceeds `budget`; the result is deterministic and, for clips of equal length,
        monotone in relevance (rounding is a floor, which preserves order).
    """
    k = len(scores)
    frames = [int(frames_per_clip)] * k if isinstance(frames_per_clip, int) else [int(f) for f in frames_per_clip]
    if len(frames) != k:
        raise ValueError(f"got {k} scores but {len(frames)} frame counts; pass one frame count per clip")
    if any(f < 1 for f in frames):
        raise ValueError(f"every clip needs at least one frame, got frame counts {frames}")
    if budget < 0:
        raise ValueError(f"budget must be >= 0 tokens, got {budget}")
    if not 0 < min_tpf <= max_tpf:
        raise ValueError(f"need 0 < min_tpf <= max_tpf, got min_tpf={min_tpf}, max_tpf={max_tpf}")
    for s in scores:
        if not (math.isfinite(s) and 0.0 <= s <= 1.0):
            raise ValueError(f"relevance scores must be in [0, 1], got {s}; squash logits with a sigmoid first")

    anchor = [max(1, math.ceil(min_tpf * f - 1e-9)) for f in frames]
    cap = [max(a, math.floor(max_tpf * f + 1e-9)) for a, f in zip(anchor, frames)]

    # Keep clips by relevance while their anchors fit; stop at the first that does not, so that the
    # kept set is always a prefix of the relevance order.
    order = sorted(range(k), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    used = 0
    for i in order:
        if used + anchor[i] > budget:
            break
        kept.append(i)
        used += anchor[i]

    out = [0] * k
    if not kept:
        return out
    extra_want = {i: scores[i] * (cap[i] - anchor[i]) for i in kept}
    total_extra = sum(extra_want.values())
    room = budget - used
    scale = 1.0 if total_extra <= room else room / total_extra
    for i in kept:
        out[i] = anchor[i] + math.floor(extra_want[i] * scale + 1e-9)
    # Floating error in `scale` could overshoot by a token; trim from the least relevant above-anchor clip.
    for i in reversed(kept):
        while sum(out) > budget and out[i] > anchor[i]:
            out[i] -= 1
    return out


def grid_for(n_tokens: int, grid: tuple[int, int, int]) -> tuple[int, int, int]:
    """The (t, h, w) grid with at most `n_tokens` cells to pool a stored (T, H, W) token grid down to.

    At one token per time step or more, all time steps are kept and space shrinks (closest aspect
    ratio to the stored grid); below that, space is 1x1 and time is pooled. Qwen2-VL's mRoPE needs
    a grid, so the result is always a grid, never a bare token count.
    """
    T, H, W = grid
    if min(grid) < 1:
        raise ValueError(f"stored token grid must be positive in every dimension, got {grid}")
    if n_tokens < 1:
        raise ValueError(f"a kept clip needs at least one token, got {n_tokens}")
    if n_tokens >= T * H * W:
        return T, H, W
    if n_tokens < T:
        return n_tokens, 1, 1
    per_step = n_tokens // T
    aspect = math.log(H / W)
    best = (1, 1)
    best_key = (-1, 0.0, 0)
    for h in range(1, H + 1):
        w = min(W, per_step // h)
        if w < 1:
            break
        key = (h * w, -abs(math.log(h / w) - aspect), h)
        if key > best_key:
            best, best_key = (h, w), key
    return T, best[0], best[1]
