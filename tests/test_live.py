"""Live sources against real local stream endpoints: an `ffmpeg` CLI sender serving generated MPEG-TS on loopback.

Covers ingest with pts times, reconnect with backoff after the sender dies, drop-oldest under a slow consumer with
bounded memory, prompt stop while a read blocks, and clear errors for unreachable URLs and missing webcams.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest

from longwatch.pipeline._live_queue import Closed, DropQueue
from longwatch.errors import StreamError, VideoTooLarge
from longwatch.pipeline.live import Backoff, LiveSource, _Timeline, is_live_spec
from longwatch.pipeline.probe import VideoLimits

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI as a stream sender")

FPS = 25


def _encode(path: Path, seconds: float, size: str) -> Path:
    """An H.264 MPEG-TS test pattern; a keyframe every 12 frames so a (re)joining reader starts within 0.5 s."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size={size}:rate={FPS}", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", "12", "-bf", "0", "-pix_fmt", "yuv420p", "-f", "mpegts", str(path)],
                   check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("live")
    long = _encode(d / "long.ts", 6, "320x240")
    # the first 3 s by stream copy: starts on a keyframe, so every one of its 75 frames decodes
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(long), "-t", "3", "-c", "copy",
                    str(d / "short.ts")], check=True, timeout=60)
    return {"short": d / "short.ts", "long": long, "big": _encode(d / "big.ts", 6, "640x480")}


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def senders() -> Callable[..., subprocess.Popen]:
    """Start ffmpeg senders on loopback; every one is killed and reaped when the test ends."""
    procs: list[subprocess.Popen] = []

    def start(video: Path, url: str, listen: bool = True, realtime: bool = True,
              extra: list[str] | None = None) -> subprocess.Popen:
        fmt = "rtsp" if url.startswith("rtsp") else "mpegts"
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", *(["-re"] if realtime else []), "-i", str(video),
               "-c", "copy", "-f", fmt, *(extra or [])]
        cmd += ["-listen", "1", url] if listen else [url]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        procs.append(proc)
        if listen:  # wait for the listening socket without connecting (the sender serves a single client);
            # a reconnecting reader may be accepted before we look, which closes the listening socket
            deadline = time.monotonic() + 10
            ready = (psutil.CONN_LISTEN, psutil.CONN_ESTABLISHED)
            while not any(c.status in ready for c in psutil.Process(proc.pid).net_connections("tcp")):
                assert proc.poll() is None and time.monotonic() < deadline, "ffmpeg sender did not start listening"
                time.sleep(0.02)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)  # in case a test froze it
            proc.kill()
        proc.wait(timeout=10)


def _watchdog(src: LiveSource, seconds: float) -> threading.Timer:
    """Stop the source if a test runs past its time budget, so a bug fails the test instead of hanging it."""
    timer = threading.Timer(seconds, src.stop)
    timer.daemon = True
    timer.start()
    return timer


def test_ingests_a_recorded_http_stream_with_backpressure_pts_times_sampling_and_resizing(videos, senders):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    senders(videos["short"], url, realtime=False)  # served as fast as the reader takes it
    with LiveSource(url, policy="block", queue_size=2, end_on_eof=True, open_timeout=5, read_timeout=5) as src:
        assert src.info.is_live and src.info.duration is None
        assert (src.info.width, src.info.height, src.info.codec, src.info.fps) == (320, 240, "h264", 25.0)
        watchdog = _watchdog(src, 15)
        clips = list(src.clips(1.0, fps=5, max_side=160))
        watchdog.cancel()
        stats = src.stats
    assert stats.ended_reason == "eof"
    assert [c.index for c in clips] == [0, 1, 2]
    for c in clips:
        assert c.frames.shape == (5, 120, 160, 3) and c.frames.dtype == np.uint8
        # times come from pts: exactly the 0.2 s grid of a 25 fps source sampled at 5 fps
        np.testing.assert_allclose(c.times, c.index + np.arange(5) * 0.2, atol=1e-6)
    # "block" loses nothing even through a 2-frame queue
    assert stats.frames_received == 3 * FPS and stats.frames_delivered == 15 and stats.frames_dropped == 0
    assert stats.queue_peak <= 2


def test_ingests_udp_mpegts(videos, senders):
    port = _free_port(socket.SOCK_DGRAM)
    senders(videos["long"], f"udp://127.0.0.1:{port}?pkt_size=1316", listen=False)
    src = LiveSource(f"udp://127.0.0.1:{port}", open_timeout=5, read_timeout=2)
    watchdog = _watchdog(src, 15)
    times = []
    for frame in src.frames():
        times.append(frame.t)
        if len(times) == 40:
            break
    watchdog.cancel()
    src.close()
    assert src.info.codec == "h264" and src.info.is_live
    assert times[0] == 0.0 and np.all(np.diff(times) > 0)
    np.testing.assert_allclose(np.diff(times), 1 / FPS, atol=1e-6)  # no loss on loopback: consecutive frames
    assert src.stats.ended_reason == "stopped"  # leaving the loop early stops the stream


def test_ingests_rtsp_pushed_by_a_camera(videos, senders):
    """A camera (ffmpeg) pushes RTSP to longwatch listening on loopback; same decode path as pulling from a camera."""
    port = _free_port()
    url = f"rtsp://127.0.0.1:{port}/live"

    def push_when_listening():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
                   for c in psutil.Process().net_connections("tcp")):
                senders(videos["long"], url, listen=False, extra=["-rtsp_transport", "tcp"])
                return
            time.sleep(0.02)

    pusher = threading.Thread(target=push_when_listening, daemon=True)
    pusher.start()
    src = LiveSource(url, options={"rtsp_flags": "listen"}, open_timeout=8, read_timeout=3)
    pusher.join(5)
    watchdog = _watchdog(src, 20)
    times = []
    for frame in src.frames(max_side=160):
        times.append(frame.t)
        assert frame.image.shape == (120, 160, 3)
        if len(times) == 25:
            break
    watchdog.cancel()
    src.close()
    assert src.info.container == "rtsp" and src.info.codec == "h264"
    assert times[0] == 0.0 and np.all(np.diff(times) > 0) and src.stats.ended_reason == "stopped"


def test_sender_killed_midway_reconnects_with_backoff_then_ends_cleanly(videos, senders):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    sender = senders(videos["long"], url)
    backoff = Backoff(base=0.1, factor=2.0, jitter=0.1, max_attempts=3)
    src = LiveSource(url, backoff=backoff, open_timeout=3, read_timeout=3)
    watchdog = _watchdog(src, 20)
    times = []
    for frame in src.frames():  # must end by itself once the reconnects are exhausted
        times.append(frame.t)
        if len(times) == 30:
            sender.kill()
    watchdog.cancel()
    stats = src.stats
    src.close()
    assert stats.ended_reason == "gave_up"
    assert stats.reconnect_attempts == 3 and stats.reconnects == 0
    delays = stats.backoff_delays
    assert len(delays) == 3 and all(b > a for a, b in zip(delays, delays[1:]))
    assert 0.09 <= delays[0] <= 0.11 and 0.36 <= delays[2] <= 0.44
    assert "refused" in stats.last_error.lower()
    assert 30 <= len(times) < 6 * FPS and np.all(np.diff(times) > 0)


def test_gave_up_raises_when_asked(videos, senders):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    sender = senders(videos["long"], url)
    src = LiveSource(url, backoff=Backoff(base=0.05, max_attempts=1), on_give_up="raise", read_timeout=3)
    watchdog = _watchdog(src, 20)
    n = 0
    with pytest.raises(StreamError, match=r"did not come back after 1 reconnect attempts") as err:
        for _ in src.frames():
            n += 1
            if n == 5:
                sender.kill()
    watchdog.cancel()
    src.close()
    assert str(port) in str(err.value) and "Backoff(" in str(err.value)


def test_reconnects_to_a_returning_sender_and_times_stay_monotonic(videos, senders):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    sender = senders(videos["long"], url)
    src = LiveSource(url, backoff=Backoff(base=0.2, max_attempts=10), open_timeout=5, read_timeout=3)
    watchdog = _watchdog(src, 25)
    times, killed_at = [], None
    for frame in src.frames():
        times.append(frame.t)
        if len(times) == 25:
            sender.kill()
            sender.wait(timeout=5)
            killed_at = len(times)
            senders(videos["long"], url)  # the same stream comes back on the same port, pts starting over
        if killed_at and len(times) >= killed_at + 25:
            break
    watchdog.cancel()
    stats = src.stats
    src.close()
    assert stats.reconnects == 1 and stats.ended_reason == "stopped", stats
    assert np.all(np.diff(times) > 0), "times went backwards or collided across the reconnect"
    gaps = np.diff(times)
    # one jump, bridging the outage by wall-clock time; every other step is the 25 fps frame interval
    assert np.sum(gaps > 1.5 / FPS) == 1 and gaps.max() > 0.2, (gaps, stats)
    np.testing.assert_allclose(gaps[gaps <= 1.5 / FPS], 1 / FPS, atol=1e-6)


def test_slow_consumer_drops_oldest_with_bounded_queue_and_memory(videos, senders):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    senders(videos["big"], url)
    proc = psutil.Process()
    with LiveSource(url, queue_size=4, open_timeout=5, read_timeout=3) as src:
        watchdog = _watchdog(src, 25)
        baseline, peak_rss, n, peak_queue = None, 0, 0, 0
        frames = src.frames()
        for frame in frames:
            n += 1
            time.sleep(0.1)  # a consumer at 10 fps behind a 25 fps stream
            peak_queue = max(peak_queue, src.stats.queue_size)
            if n == 5:
                baseline = proc.memory_info().rss
            elif n > 5:
                peak_rss = max(peak_rss, proc.memory_info().rss)
            if n == 40:
                break
        watchdog.cancel()
        stats = src.stats
        newest_gap = stats.lag_seconds
    frame_bytes = 640 * 480 * 3
    assert stats.frames_dropped > 30 and stats.queue_peak <= 4 and peak_queue <= 4
    assert stats.frames_queued == stats.frames_delivered + stats.frames_dropped + stats.queue_size or (
        stats.ended_reason == "stopped")  # a stop discards the queue
    # Keeping every frame would have cost frames_dropped * frame_bytes (> 27 MB); bounded growth is far smaller.
    growth = peak_rss - baseline
    assert growth < 12e6 < stats.frames_dropped * frame_bytes / 2.2, (growth, stats)
    # drop-oldest keeps the consumer near the live edge: at most a queue's worth (+ slack) behind
    assert newest_gap < 1.0, stats


def test_stop_returns_promptly_while_the_reader_is_blocked_in_a_read(videos, senders):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    sender = senders(videos["long"], url)
    src = LiveSource(url, open_timeout=5, read_timeout=2)
    watchdog = _watchdog(src, 20)
    stop_took = []

    def freeze_then_stop():
        os.kill(sender.pid, signal.SIGSTOP)  # connection stays open, data stops: the reader blocks in a read
        time.sleep(0.8)
        t0 = time.monotonic()
        src.stop()
        stop_took.append(time.monotonic() - t0)

    n, stopper = 0, threading.Thread(target=freeze_then_stop, daemon=True)
    for _ in src.frames():
        n += 1
        if n == 10:
            stopper.start()
    ended = time.monotonic()
    stopper.join(5)
    watchdog.cancel()
    assert stop_took and stop_took[0] < 0.5, (stop_took, src.stats)
    assert src.stats.ended_reason == "stopped"
    t0 = time.monotonic()
    src.close()  # waits for the blocked read to hit read_timeout and release the connection
    assert time.monotonic() - t0 < 2 + 1.5 and ended - t0 < 0.5


def test_stream_over_the_pixel_limit_is_refused(videos, senders):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    senders(videos["short"], url, realtime=False)
    with pytest.raises(VideoTooLarge, match=r"320x240 @ 25 fps.*VideoLimits"):
        LiveSource(url, limits=VideoLimits(max_pixels=320 * 240 - 1), open_timeout=5)


def test_unreachable_url_raises_stream_error_naming_it_without_secrets():
    port = _free_port()
    url = f"http://viewer:s3cret@127.0.0.1:{port}/live.ts"
    t0 = time.monotonic()
    with pytest.raises(StreamError) as err:
        LiveSource(url, open_timeout=3)
    msg = str(err.value)
    assert time.monotonic() - t0 < 3
    assert f"127.0.0.1:{port}/live.ts" in msg and "nothing is listening" in msg
    assert "s3cret" not in msg and "viewer:***@" in msg


def test_missing_webcam_and_non_stream_specs_are_clear_errors():
    n = next(i for i in range(50, 100) if not Path(f"/dev/video{i}").exists())
    with pytest.raises(StreamError, match=rf"/dev/video{n}.*webcam:N"):
        LiveSource(f"webcam:{n}")
    with pytest.raises(StreamError, match="not a live stream address"):
        LiveSource("ftp://127.0.0.1/x.ts")
    with pytest.raises(StreamError, match="webcam:0"):
        LiveSource("webcam:front")
    with pytest.raises(StreamError, match=r"srt://127\.0\.0\.1"):  # PyAV wheels lack SRT; the error says how to relay
        LiveSource(f"srt://127.0.0.1:{_free_port(socket.SOCK_DGRAM)}", open_timeout=1)
    assert is_live_spec("rtsp://cam/1") and is_live_spec("webcam:0") and is_live_spec("UDP://127.0.0.1:5000")
    assert not is_live_spec("video.mp4") and not is_live_spec("file:///x.mp4") and not is_live_spec(["x"])


def test_drop_queue_policies():
    oldest = DropQueue(3, "drop_oldest")
    newest = DropQueue(3, "drop_newest")
    for i in range(7):
        oldest.put(i)
        newest.put(i)
    assert [oldest.get(0) for _ in range(3)] == [4, 5, 6] and oldest.dropped == 4
    assert [newest.get(0) for _ in range(3)] == [0, 1, 2] and newest.dropped == 4
    assert oldest.peak == newest.peak == 3

    blocking = DropQueue(2, "block")
    blocking.put(0)
    blocking.put(1)
    done = threading.Event()
    threading.Thread(target=lambda: (blocking.put(2), done.set()), daemon=True).start()
    assert not done.wait(0.2)  # backpressure: the producer waits for room
    assert blocking.get(1) == 0 and done.wait(2)
    assert [blocking.get(1), blocking.get(1)] == [1, 2] and blocking.dropped == 0
    blocking.close()
    with pytest.raises(Closed):
        blocking.get(1)


def test_backoff_grows_to_the_cap_with_bounded_jitter():
    b = Backoff(base=0.5, factor=2.0, max_delay=8.0, jitter=0.2)
    rng = random.Random(0)
    delays = [b.delay(k, rng) for k in range(8)]
    for k, d in enumerate(delays):
        nominal = min(8.0, 0.5 * 2**k)
        assert 0.8 * nominal <= d <= 1.2 * nominal
    assert all(b2 > b1 for b1, b2 in zip(delays[:4], delays[1:5]))
    assert 6.4 <= b.delay(100_000, rng) <= 9.6  # an endless outage neither overflows nor exceeds the cap
    with pytest.raises(ValueError):
        Backoff(factor=0.5)


def test_session_times_survive_pts_wrap_and_reconnect():
    tl = _Timeline()
    wrap = 2**33 / 90_000  # MPEG-TS pts wrap after ~26.5 h
    assert tl.place(wrap - 0.08, 100.0) == 0.0
    assert tl.place(wrap - 0.04, 100.04) == pytest.approx(0.04)
    assert tl.place(0.0, 100.08) == pytest.approx(0.08)  # pts wrapped: continue by wall clock
    assert tl.place(0.04, 100.12) == pytest.approx(0.12)  # then follow pts again
    tl.new_connection()
    assert tl.place(5.0, 103.12) == pytest.approx(3.12)  # reconnect after a 3 s outage
    assert tl.place(None, 103.13) == pytest.approx(3.13)  # a frame without pts


@pytest.mark.slow
def test_udp_silence_is_detected_and_ends_after_bounded_reconnects(videos, senders):
    """UDP has no connection to lose: a dead sender shows up only as silence, caught by the read timeout."""
    port = _free_port(socket.SOCK_DGRAM)
    sender = senders(videos["long"], f"udp://127.0.0.1:{port}?pkt_size=1316", listen=False)
    src = LiveSource(f"udp://127.0.0.1:{port}", open_timeout=1, read_timeout=1,
                     backoff=Backoff(base=0.1, max_attempts=2))
    watchdog = _watchdog(src, 30)
    t0, n = time.monotonic(), 0
    for _ in src.frames():
        n += 1
        if n == 20:
            sender.kill()
    watchdog.cancel()
    src.close()
    stats = src.stats
    assert stats.ended_reason == "gave_up" and stats.reconnect_attempts == 2, stats
    assert stats.last_error == "no data before the timeout"
    assert time.monotonic() - t0 < 15


@pytest.mark.slow
def test_memory_stays_flat_over_a_long_live_stream_with_a_slow_consumer():
    """45 s of a 640x480 stream encoded live by the sender, consumed at 5 fps: RSS must not creep."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", f"testsrc2=size=640x480:rate={FPS}",
           "-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "12", "-f", "mpegts",
           "-listen", "1", url]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not any(c.status == psutil.CONN_LISTEN for c in psutil.Process(proc.pid).net_connections("tcp")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        me = psutil.Process()
        with LiveSource(url, queue_size=8, open_timeout=10, read_timeout=5) as src:
            watchdog = _watchdog(src, 90)
            t_start, early, late = time.monotonic(), None, 0
            for frame in src.frames():
                time.sleep(0.2)
                elapsed = time.monotonic() - t_start
                if early is None and elapsed > 10:
                    early = me.memory_info().rss
                elif early is not None:
                    late = max(late, me.memory_info().rss)
                if elapsed > 45:
                    break
            watchdog.cancel()
            stats = src.stats
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert stats.frames_dropped > 500 and stats.queue_peak <= 8, stats
    assert late - early < 10e6, (late - early, stats)
