"""Decode a file's first audio stream with PyAV into 16 kHz mono float32 chunks timed by the stream's pts.

Streaming: at most one chunk (plus one decoded frame) is held at a time, so an hour of audio never sits in RAM.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longwatch.errors import CorruptVideo, VideoTooLarge

SAMPLE_RATE = 16_000  # what Whisper and Silero VAD expect
_GAP = 0.25  # seconds of pts jump that start a new chunk instead of being glued onto the previous samples


@dataclass(frozen=True)
class AudioChunk:
    """`samples` (float32, mono, SAMPLE_RATE) start at `t0` seconds of the source's timeline."""

    t0: float
    samples: np.ndarray

    @property
    def t1(self) -> float:
        return self.t0 + len(self.samples) / SAMPLE_RATE


@dataclass(frozen=True)
class AudioTrack:
    """A file's first audio stream, or the fact that it has none (`has_audio=False`: `chunks()` yields nothing)."""

    path: str
    has_audio: bool
    codec: str | None = None
    duration: float | None = None

    def chunks(self, seconds: float = 30.0, start: float = 0.0) -> Iterator[AudioChunk]:
        """Chunks of about `seconds` (shorter at the end and at gaps in the pts), in time order, from `start`
        seconds on (a resumed ingest seeks there instead of decoding what it already has)."""
        if not self.has_audio:
            return
        for chunk in _decode(Path(self.path), seconds, start):
            if chunk.t1 <= start:
                continue  # the seek lands on a packet at or before `start`
            if chunk.t0 < start:
                cut = int(round((start - chunk.t0) * SAMPLE_RATE))
                chunk = AudioChunk(chunk.t0 + cut / SAMPLE_RATE, chunk.samples[cut:])
            yield chunk


def open_audio(path: str | Path, limits=None) -> AudioTrack:
    """Check `path` like a video upload (`probe.check_path`), then describe its first audio stream without decoding.

    Raises the same typed VideoError subclasses as `probe` for missing, empty, non-video or damaged files.
    """
    import av

    from longwatch.pipeline.probe import VideoLimits, check_path

    limits = limits or VideoLimits()
    path = check_path(path, limits)[0]
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                return AudioTrack(str(path), has_audio=False)
            stream = container.streams.audio[0]
            duration = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                        else container.duration / 1e6 if container.duration else None)
            codec = stream.codec_context.name
    except av.FFmpegError as e:
        raise CorruptVideo(path, f"a file FFmpeg cannot open ({e})", "the container is damaged",
                           "copy or download the file again, or re-export it") from None
    if duration and duration > limits.max_duration:
        raise VideoTooLarge(path, f"{duration / 3600:.1f} h of {codec} audio",
                            f"over the limit of {limits.max_duration / 3600:.1f} h",
                            "split the file into parts, or raise VideoLimits.max_duration")
    return AudioTrack(str(path), True, codec, duration)


def whisper_resampler():
    """A PyAV resampler to what Whisper hears: float32 mono at SAMPLE_RATE (one per stream: it keeps state)."""
    import av

    return av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)


def resampled(resampler, frame) -> np.ndarray:
    """The samples of one decoded audio frame (None: the resampler's buffered tail) as float32 mono."""
    outs = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    return np.concatenate(outs) if outs else np.zeros(0, np.float32)


def _decode(path: Path, seconds: float, start: float = 0.0) -> Iterator[AudioChunk]:
    import av

    want = max(1, int(seconds * SAMPLE_RATE))
    resampler = whisper_resampler()
    parts: list[np.ndarray] = []
    held = 0
    t0: float | None = None  # time of the first held sample
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            if start > 0 and stream.time_base:
                container.seek(int(start / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                frame_t = frame.time
                expected = None if t0 is None else t0 + held / SAMPLE_RATE
                if frame_t is not None and expected is not None and abs(frame_t - expected) > _GAP and held:
                    # A hole or jump in the recording: keep each side on its own true clock.
                    yield AudioChunk(t0, np.concatenate(parts))
                    parts, held, t0 = [], 0, None
                samples = resampled(resampler, frame)
                if not len(samples):
                    continue
                if t0 is None:
                    t0 = frame_t if frame_t is not None else 0.0
                parts.append(samples)
                held += len(samples)
                while held >= want:
                    joined = np.concatenate(parts)
                    yield AudioChunk(t0, joined[:want].copy())
                    t0 += want / SAMPLE_RATE
                    rest = joined[want:]
                    parts, held = ([rest] if len(rest) else []), len(rest)
            parts.append(resampled(resampler, None))  # the resampler's buffered tail
            held += parts[-1].size
    except av.FFmpegError as e:
        raise CorruptVideo(path, f"undecodable audio ({e})", "the audio stream is damaged",
                           "re-export the file; `longwatch probe` shows what the container holds") from None
    if held and t0 is not None:
        yield AudioChunk(t0, np.concatenate(parts))
