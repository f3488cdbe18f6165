"""Sampling by timestamps, resizing and clipping: the rules every source shares.

Frames here are synthetic on purpose: these functions only read `Frame.t` and image shapes.
"""

from __future__ import annotations

import numpy as np
import pytest

from longwatch.pipeline.frames import Frame
from longwatch.pipeline.sampling import make_clips, resize_max_side, sample_fps


def frames_at(times, shape=(4, 6, 3)):
    return [Frame(t=float(t), image=np.full(shape, i % 256, np.uint8)) for i, t in enumerate(times)]


def test_sample_fps_constant_rate_keeps_one_frame_per_tick():
    src = frames_at(np.arange(0, 10, 1 / 30))  # 10 s at 30 fps
    out = list(sample_fps(src, 1.0))
    assert [round(f.t, 6) for f in out] == [float(s) for s in range(10)]


def test_sample_fps_variable_rate_uses_timestamps_not_counts():
    # 2 s at 60 fps, then 3 s at 5 fps, then a 4 s gap, then 1 s at 25 fps.
    times = list(np.arange(0, 2, 1 / 60)) + list(np.arange(2, 5, 1 / 5)) + list(np.arange(9, 10, 1 / 25))
    out = list(sample_fps(frames_at(times), 2.0))
    got = [round(f.t, 4) for f in out]
    # Every output is the first frame at/after a 0.5 s tick; gaps produce no invented frames.
    assert got[:10] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.6, 3.0, 3.6, 4.0, 4.6]
    assert got[10:] == [9.0, 9.52]
    assert all(b > a for a, b in zip(got, got[1:]))


def test_sample_fps_drops_backwards_timestamps():
    out = list(sample_fps(frames_at([0.0, 1.0, 0.5, 2.0]), None))
    assert [f.t for f in out] == [0.0, 1.0, 0.5, 2.0]  # fps=None passes everything through untouched
    out = list(sample_fps(frames_at([0.0, 1.0, 0.5, 2.0]), 10.0))
    assert [f.t for f in out] == [0.0, 1.0, 2.0]


def test_sample_fps_rejects_nonpositive_rate():
    with pytest.raises(ValueError, match="fps must be positive"):
        list(sample_fps(frames_at([0.0]), 0))


@pytest.mark.parametrize("hw,max_side,expect", [((360, 640), 320, (180, 320)), ((1080, 1920), 500, (282, 500)),
                                                ((100, 50), 200, (100, 50)), ((721, 1281), 640, (360, 640))])
def test_resize_max_side_keeps_aspect_and_never_upscales(hw, max_side, expect):
    img = np.random.randint(0, 255, (*hw, 3), np.uint8)
    out = resize_max_side(img, max_side)
    assert out.shape == (*expect, 3) and out.dtype == np.uint8


def test_make_clips_windows_and_partial_tail():
    src = frames_at(np.arange(0, 10.5, 1.0))  # frames at 0..10 s
    clips = list(make_clips(src, 4.0))
    assert [c.index for c in clips] == [0, 1, 2]
    assert [(c.t0, c.t1) for c in clips[:2]] == [(0.0, 4.0), (4.0, 8.0)]
    assert clips[2].t0 == 8.0 and clips[2].t1 == pytest.approx(11.0)  # ends one frame interval after 10 s
    assert [len(c.frames) for c in clips] == [4, 4, 3]
    assert clips[1].times.tolist() == [4.0, 5.0, 6.0, 7.0]


def test_make_clips_numbers_by_source_time_so_resume_matches():
    full = list(make_clips(frames_at(np.arange(0, 20, 0.5)), 5.0))
    resumed = list(make_clips(frames_at(np.arange(10, 20, 0.5)), 5.0))
    assert [c.index for c in resumed] == [c.index for c in full[2:]]
    for a, b in zip(resumed, full[2:]):
        assert (a.t0, a.t1) == (b.t0, b.t1) and np.array_equal(a.times, b.times)


def test_make_clips_skips_empty_windows_in_gaps():
    clips = list(make_clips(frames_at([0.0, 1.0, 30.0, 31.0]), 10.0))
    assert [c.index for c in clips] == [0, 3]


def test_make_clips_keeps_clip_rectangular_when_resolution_changes():
    # A frame after a mid-clip resolution change is rescaled to the clip's size, never dropped (no silent loss).
    src = frames_at([0.0, 1.0]) + [Frame(t=2.0, image=np.full((8, 8, 3), 200, np.uint8))]
    (clip,) = make_clips(src, 10.0)
    assert clip.frames.shape == (3, 4, 6, 3) and len(clip.times) == 3
    assert clip.times[-1] == 2.0 and int(clip.frames[-1].mean()) == 200
