"""Properties of adaptive memory selection: hits first, neighbours adjacent, anchors spread over the timeline.

Hypothesis draws timelines with gaps and arbitrary hits; the whole-video detector is checked on phrasings.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from longwatch.pipeline.select import anchor_positions, is_whole_video_question, select_clips


@st.composite
def scene(draw):
    n_videos = draw(st.integers(1, 3))
    timelines = {}
    for v in range(n_videos):
        clips = sorted(draw(st.sets(st.integers(0, 2000), min_size=1, max_size=60)))
        timelines[f"v{v}"] = clips
    hits = []
    for _ in range(draw(st.integers(0, 12))):
        v = draw(st.sampled_from(sorted(timelines)))
        hits.append((v, draw(st.sampled_from(timelines[v])), draw(st.floats(-1, 1))))
    hits.sort(key=lambda h: -h[2])
    return hits, timelines


@settings(max_examples=200, deadline=None)
@given(scene(), st.integers(0, 3), st.integers(0, 10), st.integers(1, 80))
def test_selection_properties(sc, neighbours, anchors, cap):
    hits, timelines = sc
    out = select_clips(hits, timelines, neighbours=neighbours, anchors=anchors, max_candidates=cap)
    keys = [(c.video, c.clip_index) for c in out]
    assert len(out) <= cap
    assert keys == sorted(set(keys)), "sorted by time, no duplicates"
    for c in out:
        assert c.clip_index in timelines[c.video], "only stored clips"
    # The best hits are never pushed out by neighbours or anchors.
    distinct_hits = list(dict.fromkeys((v, c) for v, c, _ in hits))
    for key in distinct_hits[:cap]:
        assert key in keys
    # Every neighbour sits within `neighbours` stored clips of some hit.
    for c in out:
        if c.reasons == {"neighbour"}:
            pos = timelines[c.video].index(c.clip_index)
            assert any(v == c.video and abs(timelines[v].index(h) - pos) <= neighbours for v, h, _ in hits)
    # With room to spare, each video gets its anchors.
    if cap >= len(distinct_hits) + anchors * len(timelines):
        for v, clips in timelines.items():
            got = [c for c in out if c.video == v and "anchor" in c.reasons]
            assert len(got) == min(anchors, len(clips))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 64))
def test_anchors_spread_evenly(n_clips, n_anchors):
    pos = anchor_positions(n_clips, n_anchors)
    assert len(pos) == min(n_clips, n_anchors)
    assert pos == sorted(set(pos)) and 0 <= pos[0] and pos[-1] < n_clips
    # Each anchor lies in its own equal segment of the timeline, so they cover the whole video.
    a = len(pos)
    for i, p in enumerate(pos):
        assert i * n_clips / a <= p < (i + 1) * n_clips / a


def test_one_hour_whole_video_question_spans_the_timeline():
    timeline = list(range(900))  # one hour of 4-second clips
    hits = [("v", c, 0.9 - 0.01 * i) for i, c in enumerate(range(100, 110))]  # hits bunched in one place
    out = select_clips(hits, {"v": timeline}, neighbours=1, anchors=12)
    anchors = [c.clip_index for c in out if "anchor" in c.reasons]
    assert len(anchors) == 12
    assert anchors[0] < 90 and anchors[-1] > 810


def test_gaps_are_skipped_by_neighbours():
    out = select_clips([("v", 10, 0.5)], {"v": [3, 10, 40]}, neighbours=1, anchors=0)
    assert [c.clip_index for c in out] == [3, 10, 40]
    assert out[1].reasons == {"hit"} and out[1].retrieval_score == 0.5


def test_hits_outside_scope_are_ignored():
    out = select_clips([("other", 1, 0.9)], {"v": [0, 1, 2]}, neighbours=1, anchors=1)
    assert [(c.video, c.clip_index) for c in out] == [("v", 1)]


def test_whole_video_questions_are_detected():
    for q in ["Summarize the video.", "What happens overall?", "Give me an overview", "what is this video about?",
              "Describe the storyline from start to end", "Recap the main events", "What topics does the talk cover?",
              "Which topics were discussed?"]:
        assert is_whole_video_question(q), q
    for q in ["What colour is the car at the start?", "When does the dog jump?", "What is written on the sign?"]:
        assert not is_whole_video_question(q), q


def test_fuse_hits_ranks_clips_found_by_both_searches_first():
    from longwatch.pipeline.select import fuse_hits

    clip_hits = [("v", 1, 0.9), ("v", 2, 0.8), ("v", 3, 0.7)]
    evidence_hits = [("v", 3, 0.6), ("v", 5, 0.55), ("v", 3, 0.5)]  # two pieces of evidence in clip 3
    fused = fuse_hits(clip_hits, evidence_hits)
    assert [c for _, c, _ in fused] == [3, 1, 2, 5]
    assert dict(((v, c), s) for v, c, s in fused)[("v", 3)] == 0.7  # each clip keeps its best score
    out = select_clips(fused, {"v": list(range(8))}, neighbours=0, anchors=0, max_candidates=2)
    assert [c.clip_index for c in out] == [1, 3]  # the evidence clip survives the cap
