"""Sample videos whose facts are only spoken (espeak-ng narration at known times), plus subtitle variants.

`make_speech_sample` returns the spoken sentences with their times; the variants add a sidecar .srt, an MKV with
ASS subtitles, an MP4 with mov_text, or no audio at all. Deterministic: same text, same offsets, same voice.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 22050  # espeak-ng's native output rate
# (start seconds, sentence, words a transcript must keep). Numbers are said as words by espeak and may come back
# as digits, so each kept word lists its spellings.
SENTENCES: tuple[tuple[float, str, tuple[tuple[str, ...], ...]], ...] = (
    (1.0, "The secret project is called Orion.", (("orion",),)),
    (6.0, "The budget is seven hundred dollars.", (("700", "seven hundred"), ("dollars", "$"))),
    (11.0, "The meeting is in room forty two.", (("42", "forty two", "forty-two"), ("room",))),
)
SUBTITLES: tuple[tuple[float, float, str], ...] = (
    (2.0, 4.5, "The password is tangerine."),
    (8.0, 10.0, "Flight QX2207 leaves at 9."),
)
DURATION = 16.0


@dataclass(frozen=True)
class Spoken:
    """`text` is said from about t0 to t1 seconds; `keep` lists the words (with spellings) a transcript must hold."""

    t0: float
    t1: float
    text: str
    keep: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class SpeechSample:
    path: str
    duration: float
    spoken: list[Spoken]
    subtitles: list[tuple[float, float, str]]  # (t0, t1, text) carried by this variant's subtitle track or sidecar
    sidecar: str | None = None


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("ffmpeg") is not None


def _say(text: str, out: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(out), text], check=True, timeout=60,
                   capture_output=True)
    with wave.open(str(out)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1, "espeak-ng changed its output format"
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def _narration(folder: Path) -> tuple[Path, list[Spoken]]:
    """One WAV with each sentence placed at its start time; the sentence's end comes from its audio length."""
    track = np.zeros(int(DURATION * RATE), dtype=np.int16)
    spoken = []
    for i, (t0, text, keep) in enumerate(SENTENCES):
        scratch = folder / f"sentence{i}.wav"
        voice = _say(text, scratch)
        scratch.unlink()
        # espeak pads a little silence at both ends; trim it so t0/t1 are when the voice is heard.
        loud = np.flatnonzero(np.abs(voice) > 300)
        voice = voice[loud[0]:loud[-1] + 1]
        start = int(t0 * RATE)
        track[start:start + len(voice)] = voice[: len(track) - start]
        spoken.append(Spoken(t0, t0 + len(voice) / RATE, text, keep))
    path = folder / "narration.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(track.tobytes())
    return path, spoken


def _write_subtitles(path: Path) -> Path:
    import pysubs2

    subs = pysubs2.SSAFile()
    for t0, t1, text in SUBTITLES:
        subs.append(pysubs2.SSAEvent(start=pysubs2.make_time(s=t0), end=pysubs2.make_time(s=t1),
                                     text="{\\i1}" + text + "{\\i0}"))  # markup the reader must strip
    subs.save(str(path))
    return path


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args], check=True, timeout=120)


def make_speech_sample(folder: str | Path, variant: str = "speech") -> SpeechSample:
    """Write one variant into `folder`: "speech" (MP4, narration), "sidecar" (MP4 + name.en.srt),
    "mkv_ass" (MKV with an ASS track), "mp4_mov_text" (MP4 with a mov_text track), "silent" (no audio stream)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    picture = ["-f", "lavfi", "-i", f"color=c=gray:s=160x120:r=10:d={DURATION}"]
    h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if variant == "silent":
        path = folder / "silent.mp4"
        _ffmpeg(*picture, *h264, "-an", str(path))
        return SpeechSample(str(path), DURATION, [], [])
    wav, spoken = _narration(folder)
    audio = ["-i", str(wav)]
    aac = ["-c:a", "aac", "-b:a", "64k", "-t", str(DURATION)]
    if variant in ("speech", "sidecar"):
        path = folder / f"{variant}.mp4"
        _ffmpeg(*picture, *audio, *h264, *aac, str(path))
        if variant == "speech":
            return SpeechSample(str(path), DURATION, spoken, [])
        sidecar = _write_subtitles(folder / f"{variant}.en.srt")
        return SpeechSample(str(path), DURATION, spoken, list(SUBTITLES), str(sidecar))
    if variant in ("mkv_ass", "mp4_mov_text"):
        subs = _write_subtitles(folder / "track.ass")
        codec, ext = ("ass", "mkv") if variant == "mkv_ass" else ("mov_text", "mp4")
        path = folder / f"{variant}.{ext}"
        _ffmpeg(*picture, *audio, "-i", str(subs), "-map", "0:v", "-map", "1:a", "-map", "2:s", *h264, *aac,
                "-c:s", codec, "-metadata:s:s:0", "language=eng", str(path))
        subs.unlink()
        return SpeechSample(str(path), DURATION, spoken, list(SUBTITLES))
    raise ValueError(f"unknown speech sample variant {variant!r}; choose speech, sidecar, mkv_ass, mp4_mov_text, silent")


_LECTURE = ("Welcome back to the course on signal processing. Today we look at filters, sampling and noise. "
            "The sampling rate of the sensor is forty eight thousand samples per second. A low pass filter keeps "
            "the slow changes and removes the fast ones. In room twelve the team measured three hundred and five "
            "readings before lunch. Professor Nakamura asked why the error grew after the second stage. The answer "
            "is that quantization adds noise at every step, so we keep more bits until the end. ")


def make_dense_speech(folder: str | Path, seconds: float = 180.0) -> str:
    """An MP4 of about `seconds` of continuous narration (speech-dense, for throughput benchmarks); returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "lecture.txt"
    # espeak at 160 wpm says the lecture paragraph in about 35 s; repeat it to cover the requested length.
    text.write_text(_LECTURE * max(1, int(seconds / 30) + 1), encoding="utf-8")
    wav, path = folder / "lecture.wav", folder / "lecture.mp4"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(wav), "-f", str(text)], check=True,
                   timeout=600, capture_output=True)
    _ffmpeg("-f", "lavfi", "-i", f"color=c=gray:s=160x120:r=5:d={seconds}", "-i", str(wav),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
            "-t", str(seconds), str(path))
    wav.unlink()
    text.unlink()
    return str(path)

