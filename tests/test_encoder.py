"""The streaming encoder: fixed memory size, propagation across clips, streaming equals batch, resumability.

Tokens are seeded random tensors of answerer width; odd shapes (partial last clip, non-divisible grids) included.
"""

from __future__ import annotations

import pytest
import torch

from longwatch.pipeline.encoder import StreamingEncoder, pool_grid


def video_tokens(n_clips: int, dim: int, last_t: int = 2) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    clips = [torch.randn(4, 5, 3, dim, generator=g) for _ in range(n_clips - 1)]
    return clips + [torch.randn(last_t, 5, 3, dim, generator=g)]  # a short last clip, as at a video's end


@pytest.mark.parametrize("dim,heads", [(64, None), (128, None), (48, 3)])
def test_streaming_equals_batch(dim, heads):
    enc = StreamingEncoder(dim, memory_grid=(2, 2, 2), heads=heads)
    clips = video_tokens(6, dim)
    state = enc.initial_state()
    streamed = []
    for c in clips:
        m, state = enc.step(c, state)
        streamed.append(m)
    batched, bstate = enc.encode(clips)
    assert bstate.clips == state.clips == 6
    for s, b in zip(streamed, batched):
        assert s.shape == (8, dim)
        # Both are rounded to float16; they may differ by one float16 ulp where rounding straddles.
        torch.testing.assert_close(s, b, atol=2e-3, rtol=2e-3)


def test_memory_is_fixed_size_and_propagates():
    dim = 64
    enc = StreamingEncoder(dim, memory_grid=(1, 2, 2))
    clips = video_tokens(4, dim)
    _, state = enc.encode(clips[:3])
    with_history, _ = enc.step(clips[3], state)
    without_history, _ = enc.step(clips[3], enc.initial_state())
    assert with_history.shape == without_history.shape == (4, dim)
    # The previous memory shapes the new one: that is what makes the last memory a summary of the past.
    assert (with_history - without_history).abs().max() > 1e-3


def test_resume_from_stored_memory_continues_identically():
    dim = 64
    enc = StreamingEncoder(dim)
    clips = video_tokens(5, dim)
    full, _ = enc.encode(clips)
    stored = full[2].to(torch.float16)  # what the bank kept for clip 2
    state = enc.resume_state(stored, clips=3)
    resumed = []
    for c in clips[3:]:
        m, state = enc.step(c, state)
        resumed.append(m)
    for a, b in zip(full[3:], resumed):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)


def test_memory_is_a_mix_of_its_inputs():
    # Training-free: every memory vector is a convex combination of answerer-space vectors, so it stays
    # inside their per-channel range and the answerer can read it without a learned projector.
    dim = 64
    enc = StreamingEncoder(dim)
    clips = video_tokens(3, dim)
    mems, _ = enc.encode(clips)
    lo = torch.stack([c.reshape(-1, dim).min(0).values for c in clips]).min(0).values
    hi = torch.stack([c.reshape(-1, dim).max(0).values for c in clips]).max(0).values
    for m in mems:
        assert (m >= lo - 1e-2).all() and (m <= hi + 1e-2).all()


def test_bad_tokens_are_rejected_with_shape():
    enc = StreamingEncoder(64)
    with pytest.raises(ValueError, match=r"\[t, h, w, 64\]"):
        enc.step(torch.zeros(4, 64), enc.initial_state())


def test_pool_grid_shapes_and_identity():
    x = torch.randn(4, 4, 4, 16)
    assert pool_grid(x, (4, 4, 4)) is x
    assert pool_grid(x, (4, 2, 2)).shape == (4, 2, 2, 16)
    assert pool_grid(x, (2, 1, 1)).shape == (2, 1, 1, 16)
    torch.testing.assert_close(pool_grid(x, (1, 1, 1))[0, 0, 0], x.reshape(-1, 16).mean(0), atol=1e-5, rtol=1e-5)


def test_triton_kernels_give_the_same_memories_as_torch():
    dim = 64
    clips = video_tokens(3, dim)
    torch_mems, _ = StreamingEncoder(dim, impl="torch").encode(clips)
    triton_mems, _ = StreamingEncoder(dim, impl="triton").encode(clips)  # TRITON_INTERPRET=1 on CPU (conftest)
    for a, b in zip(torch_mems, triton_mems):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)
