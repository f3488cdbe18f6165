"""Training-free propagated-memory streaming encoder (after VideoStreaming): a fixed-size memory per clip.

Each clip's memory reads, by cross-attention, the clip's tokens and the previous memory: it carries the story.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def pool_grid(x: torch.Tensor, grid: tuple[int, int, int], impl: str = "auto") -> torch.Tensor:
    """Adaptive average pooling of tokens x[t, h, w, D] to grid (t', h', w') -> [t', h', w', D].

    Space first (the larger reduction), then time; each stage is skipped when it is already the
    right size, so pooling to the stored grid returns the tokens unchanged.
    """
    from longwatch.kernels import pool_spatial, pool_temporal

    t, h, w = grid
    if x.ndim != 4:
        raise ValueError(f"tokens must be [t, h, w, D], got shape {tuple(x.shape)}")
    if (x.shape[1], x.shape[2]) != (h, w):
        x = pool_spatial(x, (h, w), impl=impl)
    if x.shape[0] != t:
        x = pool_temporal(x, t, impl=impl)
    return x


@dataclass
class EncoderState:
    """Caller-owned state between clips: the previous clip's memory [M, D] (None before the first clip)."""

    memory: torch.Tensor | None = None
    clips: int = 0


class StreamingEncoder:
    """Condense each clip's visual tokens [t, h, w, D] into M = prod(memory_grid) memory tokens [M, D].

    Queries are the clip's tokens pooled to `memory_grid` together with the previous memory; keys and
    values are the clip's tokens and the previous memory. The new memory averages what the pooled
    queries and the previous memory read, so every output is a convex mix of answerer-space vectors
    (no trained weights; the answerer reads them as it reads its own visual tokens).

    `state_dtype` is the dtype the bank stores memories in: the carried memory is rounded to it, so a
    run resumed from the bank continues bit-for-bit like an uninterrupted one.
    """

    def __init__(self, dim: int, memory_grid: tuple[int, int, int] = (2, 2, 2), heads: int | None = None,
                 state_dtype: str = "float16", impl: str = "auto"):
        if dim < 1 or min(memory_grid) < 1:
            raise ValueError(f"need dim >= 1 and a positive memory grid, got dim={dim}, grid={memory_grid}")
        # Heads of 64 dims like the answerers' own attention; odd widths (tiny models) use one head.
        self.heads = heads if heads is not None else (dim // 64 if dim % 64 == 0 else 1)
        if dim % self.heads:
            raise ValueError(f"dim {dim} is not divisible by heads {self.heads}")
        self.dim = dim
        self.memory_grid = tuple(memory_grid)
        self.memory_size = memory_grid[0] * memory_grid[1] * memory_grid[2]
        self.state_dtype = state_dtype
        self.impl = impl

    def initial_state(self) -> EncoderState:
        return EncoderState()

    def resume_state(self, memory: torch.Tensor, clips: int) -> EncoderState:
        """State after `clips` clips whose last memory (as the bank stored it) is `memory` [M, D]."""
        return EncoderState(memory=self._round(memory), clips=clips)

    def _round(self, m: torch.Tensor) -> torch.Tensor:
        import torch

        return m.to(getattr(torch, self.state_dtype)).float()

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[-1] != self.dim:
            raise ValueError(f"clip tokens must be [t, h, w, {self.dim}], got shape {tuple(x.shape)}")

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L, D] -> [B, H, L, d]."""
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.dim // self.heads).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = x.shape
        return x.transpose(1, 2).reshape(b, n, self.dim)

    def step(self, clip_tokens: torch.Tensor, state: EncoderState) -> tuple[torch.Tensor, EncoderState]:
        """One clip: tokens [t, h, w, D] -> (memory [M, D] rounded to state_dtype as float32, new state)."""
        import torch

        from longwatch.kernels import cross_attention

        self._check(clip_tokens)
        x = clip_tokens.float()
        pooled = pool_grid(x, self.memory_grid, self.impl).reshape(1, self.memory_size, self.dim)
        kv = x.reshape(1, -1, self.dim)
        q = pooled
        if state.memory is not None:
            kv = torch.cat([kv, state.memory[None]], dim=1)
            q = torch.cat([pooled, state.memory[None]], dim=1)
        kvh = self._heads(kv)
        out = self._merge(cross_attention(self._heads(q), kvh, kvh, impl=self.impl))[0]
        m = self.memory_size
        memory = out[:m] if state.memory is None else 0.5 * (out[:m] + out[m:])
        memory = self._round(memory)
        return memory, EncoderState(memory=memory, clips=state.clips + 1)

    def encode(self, clips: list[torch.Tensor], state: EncoderState | None = None
               ) -> tuple[list[torch.Tensor], EncoderState]:
        """Many clips at once; equals calling `step` clip by clip.

        The expensive part (pooled queries against each clip's own tokens) runs as one batched,
        length-masked attention; only the small attention against the previous memory is sequential.
        Softmax over [clip; memory] is recombined from the two parts by their log-sum-exps.
        """
        import torch

        from longwatch.kernels import cross_attention

        state = state or self.initial_state()
        if not clips:
            return [], state
        for c in clips:
            self._check(c)
        m = self.memory_size
        flat = [c.float().reshape(-1, self.dim) for c in clips]
        lens = torch.tensor([len(f) for f in flat])
        kv = torch.zeros(len(flat), int(lens.max()), self.dim)
        for i, f in enumerate(flat):
            kv[i, :len(f)] = f
        pooled = torch.stack([pool_grid(c.float(), self.memory_grid, self.impl).reshape(m, self.dim) for c in clips])
        kvh = self._heads(kv)
        own, own_lse = cross_attention(self._heads(pooled), kvh, kvh, kv_lens=lens, impl=self.impl,
                                       return_lse=True)  # [K, H, M, d], [K, H, M]
        memories = []
        for i in range(len(clips)):
            if state.memory is None:
                memory = self._merge(own[i:i + 1])[0]
            else:
                prev = self._heads(state.memory[None])
                from_prev, prev_lse = cross_attention(self._heads(pooled[i:i + 1]), prev, prev, impl=self.impl,
                                                      return_lse=True)
                total = torch.logaddexp(own_lse[i:i + 1], prev_lse)
                a = torch.exp(own_lse[i:i + 1] - total)[..., None]
                read = self._merge(a * own[i:i + 1] + (1 - a) * from_prev)[0]
                both = self._heads(torch.cat([flat[i][None], state.memory[None]], dim=1))
                carried = self._merge(cross_attention(prev, both, both, impl=self.impl))[0]
                memory = 0.5 * (read + carried)
            memory = self._round(memory)
            memories.append(memory)
            state = EncoderState(memory=memory, clips=state.clips + 1)
        return memories, state
