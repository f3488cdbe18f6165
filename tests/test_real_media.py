"""Files users actually have, made with the ffmpeg CLI: WebM (MediaRecorder-style too), FLV, WMV, MPEG-PS, TS, OGV.

Also paths that are not files, damaged files that must report what they lost, and a file served over HTTP as a stream.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from longwatch import errors
from longwatch.pipeline.probe import probe
from longwatch.pipeline.sources import FileSource, open_source

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI (apt-get install ffmpeg)")

FPS, SECONDS = 25, 3
CFR = f"testsrc2=size=160x120:rate={FPS}"
# Variable frame rate with exact times: a 1000 fps pattern of which only frames n % 37 == 0 or n % 53 == 0 remain,
# so frames sit 1 to 37 ms apart on a millisecond grid, the way MediaRecorder and OBS stamp them.
VFR = "testsrc2=size=160x120:rate=1000,select='not(mod(n\\,37))+not(mod(n\\,53))'"
VFR_TIMES = np.array([n / 1000 for n in range(SECONDS * 1000) if n % 37 == 0 or n % 53 == 0])
VP8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"]
VP9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]

# name -> (video source, ffmpeg output arguments, audio codec or None); the suffix picks the container.
FORMATS = {
    "vp8_opus.webm": (CFR, [*VP8, "-c:a", "libopus"]),
    "vp9_opus.webm": (CFR, [*VP9, "-c:a", "libopus"]),
    "mediarecorder.webm": (VFR, [*VP8, "-c:a", "libopus", "-fps_mode", "passthrough", "-live", "1", "-f", "webm"]),
    "flv1_mp3.flv": (CFR, ["-c:v", "flv1", "-c:a", "libmp3lame"]),
    "h264_vfr.flv": (VFR, [*X264, "-c:a", "aac", "-fps_mode", "passthrough"]),
    "wmv2.wmv": (CFR, ["-c:v", "wmv2", "-c:a", "wmav2"]),
    "wmv2_vfr.wmv": (VFR, ["-c:v", "wmv2", "-c:a", "wmav2", "-fps_mode", "passthrough"]),
    "mpeg2_mp2.mpg": (CFR, ["-c:v", "mpeg2video", "-c:a", "mp2"]),
    "mpeg1_mp2.mpg": (CFR, ["-c:v", "mpeg1video", "-c:a", "mp2"]),
    "mpeg1_raw.mpg": (CFR, ["-c:v", "mpeg1video", "-an", "-f", "mpeg1video"]),
    "h264_aac.ts": (CFR, [*X264, "-c:a", "aac"]),
    "h264_vfr.ts": (VFR, [*X264, "-c:a", "aac", "-fps_mode", "passthrough"]),
    "theora_vorbis.ogv": (CFR, ["-c:v", "libtheora", "-c:a", "libvorbis"]),
}


def ffmpeg(*args: str, timeout: float = 60) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=timeout,
                   stdin=subprocess.DEVNULL)


def make(path: Path, video: str, out: list[str], seconds: float = SECONDS) -> Path:
    audio = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"] if "-an" not in out else []
    if "-live" in out:  # MediaRecorder writes as it records: piped, so no duration, no cues, no seek index
        with path.open("wb") as f:
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", video, *audio,
                            "-t", str(seconds), *out, "-"], check=True, timeout=60, stdout=f, stdin=subprocess.DEVNULL)
    else:
        ffmpeg("-f", "lavfi", "-i", video, *audio, "-t", str(seconds), *out, str(path))
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {name: make(root / name, video, out) for name, (video, out) in FORMATS.items()}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_format_probes_and_decodes_with_honest_frame_times(media, name):
    vfr = FORMATS[name][0] == VFR
    info = probe(media[name])
    expected = VFR_TIMES if vfr else np.arange(SECONDS * FPS) / FPS
    interval = np.diff(expected).max()
    # The rate is the stream's, never its time base's tick rate (1000 for WebM/FLV/WMV).
    assert (20 <= info.fps <= 60) if vfr else info.fps == pytest.approx(FPS, rel=0.01), info.describe()
    assert (info.width, info.height) == (160, 120)
    assert info.duration is None or abs(info.duration - SECONDS) < 0.2, info.describe()
    with FileSource(media[name]) as src:
        times = np.array([f.t for f in src.frames()])
        assert src.gaps == []
    assert len(times) == len(expected), (name, len(times))
    assert np.abs(times - expected).max() <= interval, (name, times[:5], expected[:5])


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_format_clips_through_the_samplers(media, name):
    with FileSource(media[name]) as src:
        every = [f.t for f in src.frames()]
    # Reference sampler: the first frame at or after each 1/4 s tick of a grid anchored at the first frame.
    expected, tick = [], every[0]
    for t in every:
        if t >= tick - 1e-6:
            expected.append(t)
            tick = every[0] + (np.floor((t - every[0]) * 4 + 1e-6) + 1) / 4
    with open_source(str(media[name])) as src:
        clips = list(src.clips(1.0, fps=4.0, max_side=80))
    assert np.concatenate([c.times for c in clips]).tolist() == expected
    for c in clips:
        assert c.frames.shape[1:] == (60, 80, 3) and c.index == int(c.t0)
        assert all(c.t0 <= t < c.t1 for t in c.times), (c.t0, c.t1, c.times)
    assert [c.index for c in clips][:SECONDS] == list(range(SECONDS))
    assert clips[-1].t1 <= every[-1] + 1 / FPS + 1e-6, "no clip reaches past the source's last frame"


def test_mediarecorder_webm_has_no_duration_and_still_ingests(media):
    """The piped WebM has no duration element and no cues; probe says so instead of inventing one."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                          str(media["mediarecorder.webm"])], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "N/A"
    info = probe(media["mediarecorder.webm"])
    assert info.duration is None and info.extra["fps_source"] == "measured"


def test_a_genuinely_fast_stream_still_meets_the_fps_limit(tmp_path):
    path = make(tmp_path / "fast.mkv", "testsrc2=size=64x48:rate=1000", [*X264, "-an"], seconds=0.3)
    with pytest.raises(errors.VideoTooLarge) as e:
        probe(path)
    assert "1000.0 fps" in e.value.detected and "480" in e.value.problem


# ---- paths that are not video files ---------------------------------------------------------------------------


def _specials(tmp_path: Path) -> dict[str, tuple[Path, type]]:
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    os.mkfifo(tmp_path / "x.mp4")
    (tmp_path / "zero.mp4").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.mp4"))
    sock.close()
    # what -> (path, error, what the message says was found)
    return {"directory": (tmp_path / "folder.mp4", errors.VideoNotFound, "a directory"),
            "missing": (tmp_path / "missing.mp4", errors.VideoNotFound, "no such file"),
            "dangling symlink": (tmp_path / "dangling.mp4", errors.VideoNotFound, "gone.mp4"),
            "fifo": (tmp_path / "x.mp4", errors.UnsupportedVideo, "named pipe"),
            "device": (tmp_path / "zero.mp4", errors.UnsupportedVideo, "character device"),
            "socket": (tmp_path / "sock.mp4", errors.UnsupportedVideo, "socket")}


def test_paths_that_are_not_files_are_refused_at_once_by_every_entry_point(tmp_path):
    for what, (path, error, found) in _specials(tmp_path).items():
        for entry in (probe, open_source, lambda p: open_source(str(p)), FileSource):
            t = time.monotonic()
            with pytest.raises(error) as e:
                entry(path)
            assert time.monotonic() - t < 1.0, f"{what}: refusing took too long (a FIFO open would block)"
            assert str(e.value).startswith(str(path)) and e.value.hint and found in e.value.detected, what


def test_cli_probe_refuses_a_fifo_without_hanging_or_a_traceback(tmp_path):
    specials = _specials(tmp_path)
    paths = [str(p) for p, _, _ in specials.values()]
    proc = subprocess.run([sys.executable, "-m", "longwatch.app.cli", "--json", "probe", *paths],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    rows = {r["file"]: r for r in json.loads(proc.stdout)["videos"]}
    for path, error, _ in specials.values():
        assert rows[str(path)]["ok"] is False and rows[str(path)]["error"] == error.__name__, rows[str(path)]


# ---- damage -------------------------------------------------------------------------------------------------


def damaged(tmp_path: Path, suffix: str, where: tuple[float, float] = (0.4, 0.6)) -> Path:
    """A 6 s H.264 file whose bytes between the two fractions of its size are overwritten with random bytes."""
    good = make(tmp_path / f"good{suffix}", f"testsrc2=size=160x120:rate={FPS}", [*X264, "-g", str(FPS), "-an"], 6)
    data = bytearray(good.read_bytes())
    a, b = (int(len(data) * f) for f in where)
    data[a:b] = np.random.default_rng(0).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    path = tmp_path / f"damaged{suffix}"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts"])
def test_a_damaged_middle_is_reported_as_a_gap(tmp_path, suffix):
    with FileSource(damaged(tmp_path, suffix)) as src:
        times = np.array([f.t for f in src.frames()])
        gaps = list(src.gaps)
    assert len(gaps) == 1, gaps
    (gap,) = gaps
    missing = np.diff(times).argmax()  # the stretch with no frames is exactly the reported gap
    assert (gap.t0, gap.t1) == (times[missing], times[missing + 1])
    assert 1.5 < gap.t0 < gap.t1 < 5.0 and gap.t1 - gap.t0 > 0.5 and "undecodable" in gap.reason
    assert times[0] == 0.0 and times[-1] == pytest.approx(6.0 - 1 / FPS), "frames on both sides are delivered"


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts"])
def test_damage_near_the_end_is_a_gap_too(tmp_path, suffix):
    with FileSource(damaged(tmp_path, suffix, where=(0.8, 0.95))) as src:
        times = np.array([f.t for f in src.frames()])
        (gap,) = src.gaps
    assert 4.0 < gap.t0 < gap.t1 <= 6.0 and gap.t1 - gap.t0 > 0.5 and "undecodable" in gap.reason
    assert gap.t0 in times and (gap.t1 in times or gap.t1 == 6.0)  # from the last good frame to the next or the end
    assert not np.any((times > gap.t0) & (times < gap.t1)), "nothing was delivered inside the gap"


def test_a_variable_frame_rate_pause_is_not_a_gap(tmp_path):
    from longwatch.samples.videos import make_sample, vfr_times

    m = make_sample(tmp_path / "vfr.mkv", 6.0, fps=10.0, size=(160, 96), times=vfr_times(6.0))
    with FileSource(m.path) as src:
        times = [f.t for f in src.frames()]
        assert np.diff(times).max() > 1.0 and src.gaps == []


CLIP = 2.0


@pytest.fixture(scope="module")
def lw(tmp_path_factory):
    from longwatch.app.api import LongWatch
    from longwatch.app.config import load_config

    config = load_config(preset="tiny", pipeline={"clip_seconds": CLIP, "fps": 1.0, "max_side": 80,
                                                  "answer_tokens": 4, "min_new_tokens": 1, "ocr": False})
    with LongWatch.open(tmp_path_factory.mktemp("bank"), config=config) as watch:
        yield watch


def test_ingest_records_the_gap_and_completes_with_clips_on_both_sides(lw, tmp_path):
    ref = lw.ingest(damaged(tmp_path, ".mkv"), "damaged-mid")
    (gap,) = lw.bank.gaps("damaged-mid")
    clips = lw.bank.clips("damaged-mid")
    assert ref.complete and "undecodable" in gap.reason
    assert [c.clip_index for c in clips if c.t1 <= gap.t0] == list(range(int(gap.t0 // CLIP)))
    assert clips[-1].clip_index == 2, "the clips after the damage are ingested too"
    assert not any(gap.t0 + 1e-6 < c.t0 and c.t1 < gap.t1 - 1e-6 for c in clips), "no clip inside the gap"


def test_damage_near_the_end_keeps_every_clip_before_it(lw, tmp_path):
    good = make(tmp_path / "good.mkv", CFR, [*X264, "-g", str(FPS), "-an"], 6)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    last = 0.0
    with FileSource(cut) as src, pytest.raises(errors.CorruptVideo):
        for f in src.frames():
            last = f.t
    ref = lw.ingest(cut, "cut-end")
    clips = lw.bank.clips("cut-end")
    (gap,) = lw.bank.gaps("cut-end")
    assert ref.complete and clips, "the partial file is kept, marked complete, with its lost tail as a gap"
    assert [c.clip_index for c in clips] == list(range(int(last // CLIP) + 1)), "the last, partial clip is kept"
    assert clips[-1].t1 <= last + 1 / FPS + 1e-6
    assert gap.t0 == pytest.approx(last) and gap.t1 == pytest.approx(6.0, abs=0.05) and "truncated" in gap.reason


def test_a_resolution_change_mid_clip_keeps_its_frames(tmp_path):
    a = make(tmp_path / "a.ts", "testsrc2=size=160x120:rate=10", [*X264, "-an"], 1.5)
    b = make(tmp_path / "b.ts", "testsrc2=size=320x240:rate=10", [*X264, "-an", "-output_ts_offset", "1.5"], 1.5)
    joined = tmp_path / "joined.ts"  # a camera that switched modes: TS segments simply concatenate
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    with FileSource(joined) as src:
        clips = list(src.clips(2.0))
    assert sum(len(c.frames) for c in clips) == 30, "every frame of both resolutions is kept"
    assert clips[0].frames.shape == (20, 120, 160, 3)  # the first clip holds both sizes, at its first size
    assert clips[1].frames.shape == (10, 240, 320, 3)


# ---- a file served over HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def http_files(tmp_path):
    """A plain HTTP file server on loopback (what `python -m http.server` runs), serving `tmp_path`.

    Like that server it answers every request with the whole file: byte ranges are ignored on purpose, so the
    behaviour does not change when a future Python adds them.
    """

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def send_head(self):
            del self.headers["Range"]
            return super().send_head()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


FASTSTART = [*X264, "-an", "-movflags", "+faststart"]  # web-served MP4s carry their index first


def test_a_file_over_http_ends_where_the_file_ends(http_files):
    from longwatch.pipeline.live import LiveSource

    root, base = http_files
    make(root / "five_seconds.mp4", CFR, FASTSTART, 5)
    with LiveSource(f"{base}/five_seconds.mp4", policy="block") as src:
        assert src.finite and src.info.duration == pytest.approx(5.0, abs=0.05)
        t = time.monotonic()
        clips = list(src.clips(2.0, fps=5.0))
        assert time.monotonic() - t < 20
        stats = src.stats
    assert stats.ended_reason == "eof" and stats.reconnect_attempts == 0
    # 25 frames on the 5 fps grid, plus the file's last frame (4.96 s), kept so the last clip ends with the file
    assert [c.index for c in clips] == [0, 1, 2] and sum(len(c.frames) for c in clips) == 26
    assert clips[-1].times[-1] == pytest.approx(5.0 - 1 / FPS) and clips[-1].t1 == pytest.approx(5.0)


def test_an_unreadable_http_file_ends_with_a_reason_instead_of_retrying(http_files):
    """Without byte ranges an MP4 whose index is at its end cannot be read back after the index."""
    from longwatch.errors import StreamError
    from longwatch.pipeline.live import LiveSource

    root, base = http_files
    make(root / "index_last.mp4", CFR, [*X264, "-an"], 2)
    with LiveSource(f"{base}/index_last.mp4", on_give_up="raise") as src:
        t = time.monotonic()
        with pytest.raises(StreamError) as e:
            list(src.frames())
        assert time.monotonic() - t < 10 and src.stats.reconnect_attempts == 0
    assert "faststart" in e.value.hint


def test_watch_of_a_five_second_http_file_ends_by_itself(http_files, tmp_path):
    root, base = http_files
    make(root / "five_seconds.mp4", CFR, FASTSTART, 5)
    config = tmp_path / "longwatch.toml"
    config.write_text('preset = "tiny"\n[pipeline]\nclip_seconds = 2.0\nfps = 2.0\nmax_side = 80\n'
                      'answer_tokens = 4\nmin_new_tokens = 1\nocr = false\n')
    bank = tmp_path / "bank"
    proc = subprocess.run([sys.executable, "-m", "longwatch.app.cli", "--json", "watch", f"{base}/five_seconds.mp4",
                           "--id", "five", "--every", "2", "--ask", "What is shown?", "--config", str(config),
                           "--bank", str(bank)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout)
    assert out["stats"]["reconnects"] == 0 and out["stats"]["ended_reason"] == "eof"
    assert 0 < out["stats"]["ingested_until"] <= 5.0 + 1e-6
    for answer in out["answers"]:
        assert all(c["t1"] <= 5.0 + 1e-6 for c in answer["citations"])
    from longwatch.memory import MemoryBank

    with MemoryBank(bank, create=False, readonly=True) as reader:
        clips = reader.clips("five")
        video = reader.video("five")
    assert clips and max(c.t1 for c in clips) <= 5.0 + 1e-6 and sum(c.t1 - c.t0 for c in clips) <= 5.0 + 1e-6
    assert video.complete, "a file read over HTTP to its end is complete, not a partial live recording"
