"""Properties of Adaptive Token Allocation: budget, monotonicity, anchors, determinism, grids.

Hypothesis draws scores, budgets and clip lengths; each property is one a user of the answerer relies on.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longwatch.pipeline.allocate import allocate, grid_for

scores_st = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=40)
budget_st = st.integers(0, 9000)


@settings(max_examples=300, deadline=None)
@given(scores=scores_st, budget=budget_st, frames=st.integers(1, 32))
def test_budget_never_exceeded_and_bounds_hold(scores, budget, frames):
    out = allocate(scores, budget, frames)
    assert sum(out) <= budget
    anchor = max(1, math.ceil(0.5 * frames))
    for n in out:
        assert n == 0 or anchor <= n <= 16 * frames


@settings(max_examples=300, deadline=None)
@given(scores=scores_st, budget=budget_st, frames=st.integers(1, 32))
def test_monotone_in_relevance_across_clips(scores, budget, frames):
    out = allocate(scores, budget, frames)
    for i, si in enumerate(scores):
        for j, sj in enumerate(scores):
            if si > sj:
                assert out[i] >= out[j], (scores, out)


@settings(max_examples=300, deadline=None)
@given(scores=scores_st, budget=budget_st, frames=st.lists(st.integers(1, 32), min_size=40, max_size=40),
       which=st.integers(0, 39), bump=st.floats(0.0, 1.0))
def test_raising_a_clips_relevance_never_lowers_its_tokens(scores, budget, frames, which, bump):
    frames = frames[:len(scores)]
    i = which % len(scores)
    before = allocate(scores, budget, frames)
    raised = list(scores)
    raised[i] = min(1.0, scores[i] + bump)
    after = allocate(raised, budget, frames)
    assert after[i] >= before[i]


@settings(max_examples=300, deadline=None)
@given(scores=scores_st, frames=st.lists(st.integers(1, 32), min_size=40, max_size=40), slack=st.integers(0, 50))
def test_every_clip_keeps_its_anchor_when_anchors_fit(scores, frames, slack):
    frames = frames[:len(scores)]
    anchors = [max(1, math.ceil(0.5 * f)) for f in frames]
    out = allocate(scores, sum(anchors) + slack, frames)
    assert all(n >= a for n, a in zip(out, anchors))
    assert sum(out) <= sum(anchors) + slack


@settings(max_examples=200, deadline=None)
@given(scores=scores_st, budget=budget_st, frames=st.integers(1, 32))
def test_dropped_clips_never_outrank_kept_ones(scores, budget, frames):
    out = allocate(scores, budget, frames)
    kept = [s for s, n in zip(scores, out) if n > 0]
    dropped = [s for s, n in zip(scores, out) if n == 0]
    if kept and dropped:
        assert min(kept) >= max(dropped)


@settings(max_examples=100, deadline=None)
@given(scores=scores_st, budget=budget_st, frames=st.integers(1, 32))
def test_deterministic(scores, budget, frames):
    assert allocate(scores, budget, frames) == allocate(list(scores), budget, frames)


def test_linear_when_under_budget_and_scaled_when_over():
    # 8 frames: anchor 4 tokens, cap 128; relevance 1, 0.5, 0 want 128, 66, 4.
    assert allocate([1.0, 0.5, 0.0], 10_000, 8) == [128, 66, 4]
    out = allocate([1.0, 0.5, 0.0], 100, 8)
    assert sum(out) <= 100 and out[2] == 4
    # The part above the anchors keeps its 2:1 ratio after downscaling.
    assert abs((out[0] - 4) / (out[1] - 4) - 2.0) < 0.1


def test_default_budget_averages_few_tokens_per_frame_over_many_clips():
    # One hour at 1 fps in 4-s clips, all candidates mildly relevant: the budget holds.
    out = allocate([0.3] * 900, 8192, 4)
    assert sum(out) <= 8192 and min(out) >= 2


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        allocate([1.5], 100, 4)
    with pytest.raises(ValueError, match="frame counts"):
        allocate([0.5, 0.5], 100, [4])
    with pytest.raises(ValueError, match="budget"):
        allocate([0.5], -1, 4)
    with pytest.raises(ValueError, match="min_tpf"):
        allocate([0.5], 100, 4, min_tpf=2, max_tpf=1)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 2000), t=st.integers(1, 16), h=st.integers(1, 6), w=st.integers(1, 6))
def test_grid_fits_allocation_and_stored_grid(n, t, h, w):
    gt, gh, gw = grid_for(n, (t, h, w))
    assert 1 <= gt <= t and 1 <= gh <= h and 1 <= gw <= w
    assert gt * gh * gw <= n
    if n >= t:  # time is kept whole once a token per step is affordable
        assert gt == t
    if n >= t * h * w:
        assert (gt, gh, gw) == (t, h, w)


def test_grid_examples():
    assert grid_for(2, (4, 4, 4)) == (2, 1, 1)
    assert grid_for(16, (4, 4, 4)) == (4, 2, 2)
    assert grid_for(32, (4, 4, 4)) in {(4, 2, 4), (4, 4, 2)}
    assert grid_for(64, (4, 4, 4)) == (4, 4, 4)
