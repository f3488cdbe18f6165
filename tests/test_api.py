"""The public API on real parts: generated videos, the tiny preset's real model classes, a real bank, real streams.

Live sessions read an `ffmpeg` sender serving MPEG-TS over HTTP on loopback, as a camera or encoder would.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from longwatch.app.api import LongWatch, video_id_for
from longwatch.app.config import Config, LiveConfig, load_config
from longwatch.errors import BankError, UnsupportedVideo
from longwatch.pipeline.config import PipelineConfig

PIPELINE = {"clip_seconds": 2.0, "fps": 2.0, "max_side": 160, "answer_tokens": 4, "min_new_tokens": 1, "ocr": False}
STREAM_FPS = 25


@pytest.fixture(scope="module")
def lw(tmp_path_factory) -> LongWatch:
    """One tiny-preset LongWatch (models cached under the default home) on a fresh bank."""
    config = load_config(preset="tiny", pipeline=dict(PIPELINE))
    with LongWatch.open(tmp_path_factory.mktemp("bank"), config=config) as watch:
        yield watch


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    from longwatch.samples.videos import make_sample

    path = tmp_path_factory.mktemp("videos") / "lecture.mp4"
    make_sample(path, 6.0, fps=10.0, size=(320, 180), texts=[(2.0, 4.0, "BUDGET 42")])
    return path


def test_config_reads_toml_and_names_unknown_keys(tmp_path):
    path = tmp_path / "longwatch.toml"
    path.write_text('bank = "lab"\npreset = "tiny"\n[pipeline]\nclip_seconds = 2.0\n'
                    '[live]\nqueue_frames = 8\nallowed_schemes = ["rtsp", "UDP"]\nallow_webcam = true\n'
                    '[ui]\nport = 9000\nauth = "ann:secret"\n')
    config = load_config(path, bank="override")
    assert config.bank == "override" and config.preset == "tiny" and config.pipeline == PipelineConfig(clip_seconds=2.0)
    assert config.live.queue_frames == 8 and config.ui.port == 9000 and config.ui.auth_pair() == ("ann", "secret")
    assert config.live.allowed_schemes == ["rtsp", "udp"] and config.live.allow_webcam
    assert not config.live.allow_local and not LiveConfig().allow_webcam  # the web UI opens no local source
    assert LiveConfig().allowed_schemes == ["rtsp", "rtsps", "http", "https"]
    assert config.ui.host == "127.0.0.1"  # local-only unless asked
    assert config.bank_root == config.home / "banks" / "override"
    assert Config(bank=str(tmp_path / "b")).bank_root == tmp_path / "b"
    path.write_text("[ui]\nprot = 1\n")
    with pytest.raises(ValueError, match="prot"):
        load_config(path)
    with pytest.raises(ValueError, match="queue_frames"):
        LiveConfig(queue_frames=0)
    path.write_text('[live]\nallowed_schemes = ["file"]\n')
    with pytest.raises(ValueError, match="allow_local"):
        load_config(path)


def test_config_tables_are_validated_and_name_the_allowed_keys(tmp_path):
    path = tmp_path / "longwatch.toml"
    path.write_text('[models]\npreset = "tiny"\ndevice = "cpu"\ndtype = "fp32"\nsvlm = "none"\n'
                    '[pipeline]\nclip_seconds = 3.0\ndetail_hw = [4, 4]\n')
    config = load_config(path)
    assert config.preset == "tiny" and config.models.preset_overrides() == {"device": "cpu", "dtype": "fp32", "svlm": None}
    assert config.pipeline == PipelineConfig(clip_seconds=3.0)
    assert load_config(path, preset="offline").models.device == "cpu"  # --preset replaces only the preset
    path.write_text("[models]\ndevcie = 'cpu'\n")
    with pytest.raises(ValueError, match=r"\[models\].*devcie.*allowed.*device"):
        load_config(path)
    path.write_text("[pipeline]\nclip_secs = 2\n")
    with pytest.raises(ValueError, match=r"\[pipeline\].*clip_secs.*allowed.*clip_seconds"):
        load_config(path)
    path.write_text('preset = "tiny"\n[models]\npreset = "vlm"\n')
    with pytest.raises(ValueError, match=r"keep only \[models\] preset"):
        load_config(path)
    path.write_text('[models]\ndtype = "int3"\n')
    with pytest.raises(ValueError, match="models.dtype"):
        load_config(path)


def test_ingest_reports_progress_then_resumes_as_a_no_op(lw, sample):
    events = []
    ref = lw.ingest(sample, progress=events.append)
    assert ref.video_id == video_id_for(sample) and ref.complete and ref.clips == 3
    assert [e.clips_done for e in events] == [1, 2, 3]
    assert [e.t for e in events] == pytest.approx([2.0, 4.0, 6.0], abs=0.11)
    assert events[-1].eta == pytest.approx(0.0, abs=0.5)
    again = []
    assert lw.ingest(sample, progress=again.append).clips == 3 and again == []
    assert [v.video_id for v in lw.videos()] == [ref.video_id]


def test_ask_cites_time_ranges_inside_the_video(lw, sample):
    video_id = lw.ingest(sample).video_id
    answer = lw.ask("When is the budget on screen?")
    assert answer.citations and answer.text
    for c in answer.citations:
        assert c.video == video_id and 0.0 <= c.t0 < c.t1 <= 6.0 + 1e-6
    assert asyncio.run(lw.aask("When is the budget on screen?", [video_id])).citations
    with pytest.raises(BankError, match="nope"):
        lw.ask("anything", ["nope"])
    with pytest.raises(ValueError, match="empty"):
        lw.ask("   ")


def test_uploads_are_validated_copied_under_their_id_and_removed_with_the_video(tmp_path, sample):
    config = load_config(preset="tiny", pipeline=dict(PIPELINE))
    with LongWatch.open(tmp_path / "bank", config=config) as watch:
        fake = tmp_path / "notes.mp4"
        fake.write_text("these are my notes, not a video\n")
        with pytest.raises(UnsupportedVideo, match="notes.mp4"):
            watch.store_upload(fake)
        assert not watch.uploads_dir.exists() or not any(watch.uploads_dir.iterdir())
        video_id, copy = watch.store_upload(sample)
        assert copy.parent == watch.uploads_dir and copy.read_bytes() == sample.read_bytes()
        assert watch.store_upload(sample) == (video_id, copy)  # same bytes, same id: a re-upload resumes
        watch.ingest(copy, video_id)
        assert watch.video(video_id).path == str(copy) and watch.video(video_id).bytes_on_disk == copy.stat().st_size
        watch.delete(video_id)
        assert watch.videos() == [] and not copy.exists() and sample.exists()
        with pytest.raises(BankError):
            watch.delete(video_id)


# ---- live ---------------------------------------------------------------------------------------------------

@pytest.fixture
def stream_url(tmp_path, live_sender):
    """An HTTP MPEG-TS stream sent in real time (-re) by ffmpeg from a generated 30 s test pattern."""
    video = tmp_path / "cam.ts"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=320x240:rate={STREAM_FPS}", "-t", "30", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "12", "-bf", "0", "-pix_fmt", "yuv420p", "-f", "mpegts", str(video)], check=True, timeout=120)
    return live_sender(video)


def _wait(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {seconds:g} s waiting for {what}"
        time.sleep(0.05)


def test_live_session_answers_while_running_counts_lag_and_drops_and_stops_cleanly(lw, stream_url):
    session = lw.watch(stream_url, video_id="cam", live=LiveConfig(queue_frames=2))
    try:
        _wait(lambda: session.stats.clips_committed >= 2, 60, "two committed clips")
        assert session.running
        answer = session.ask("What is happening on the camera?")
        assert answer.citations and session.answered_until >= 4.0 - 1e-6
        for c in answer.citations:  # only stream time that was already in memory when the question came
            assert c.video == "cam" and c.t1 <= session.answered_until + 1e-6

        # A long-running question elsewhere holds the bank: ingest stalls, the queue overflows and drops,
        # and the lag behind the live edge grows with the stall.
        with lw._lock:
            before = session.stats
            time.sleep(4.0)
            during = session.stats
        assert during.ingested_until == before.ingested_until
        assert during.live_edge - before.live_edge == pytest.approx(4.0, abs=1.0)
        assert during.lag_seconds >= before.lag_seconds + 3.0
        assert during.frames_dropped >= before.frames_dropped + 4  # 2 fps x 4 s into a 2-frame queue
        _wait(lambda: session.stats.ingested_until > during.ingested_until, 30, "ingest to resume")
    finally:
        started = time.monotonic()
        final = session.stop()
    assert time.monotonic() - started < 10 and not session.running and final.error is None
    records = lw.bank.clips("cam")
    assert final.clips_committed == len(records) >= 3
    assert final.ingested_until == pytest.approx(records[-1].t1)
    assert sum(r.meta["frames"] for r in records) == final.frames_ingested  # every frame taken is in a clip
    assert final.frames_ingested == session.source.stats.frames_delivered
    assert final.live_edge == pytest.approx((final.frames_received - 1) / STREAM_FPS, abs=0.05)
    # the last clip, cut short by stop(), still ends at its window's end, which may lie past the last frame
    assert final.lag_seconds == pytest.approx(max(0.0, final.live_edge - final.ingested_until))
    assert not lw.video("cam").complete  # a stopped stream is not a finished video
