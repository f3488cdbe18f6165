"""Sample videos whose facts are only spoken (espeak-ng narration at known times), plus subtitle variants.

`make_speech_sample` returns the spoken sentences with their times; the variants add a sidecar .srt, an MKV with
ASS subtitles, an MP4 with mov_text, or no audio at all. Deterministic: same text, same offsets, same voice.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Sequence
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


def say(text: str, scratch: Path, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    """`text` spoken by espeak-ng as int16 samples at RATE, trimmed to where the voice is heard (espeak pads a
    little silence at both ends, so a placed clip starts and ends when the words do). `scratch` is a WAV path."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(scratch), text], check=True, timeout=60,
                   capture_output=True)
    with wave.open(str(scratch)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1, "espeak-ng changed its output format"
        voice_samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    scratch.unlink()
    loud = np.flatnonzero(np.abs(voice_samples) > 300)
    return voice_samples[loud[0]:loud[-1] + 1] if len(loud) else voice_samples[:0]


def write_wav(path: Path, track: np.ndarray) -> Path:
    """Mono int16 samples at RATE into a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(track.tobytes())
    return path


def _narration(folder: Path) -> tuple[Path, list[Spoken]]:
    """One WAV with each sentence placed at its start time; the sentence's end comes from its audio length."""
    track = np.zeros(int(DURATION * RATE), dtype=np.int16)
    spoken = []
    for i, (t0, text, keep) in enumerate(SENTENCES):
        voice = say(text, folder / f"sentence{i}.wav")
        start = int(t0 * RATE)
        track[start:start + len(voice)] = voice[: len(track) - start]
        spoken.append(Spoken(t0, t0 + len(voice) / RATE, text, keep))
    return write_wav(folder / "narration.wav", track), spoken


def write_subtitles(cues: Sequence[tuple[float, float, str]], path: Path) -> Path:
    """(t0, t1, text) cues into an SRT/ASS/VTT file (format from the suffix), in italics: markup readers must strip."""
    import pysubs2

    subs = pysubs2.SSAFile()
    for t0, t1, text in cues:
        subs.append(pysubs2.SSAEvent(start=pysubs2.make_time(s=t0), end=pysubs2.make_time(s=t1),
                                     text="{\\i1}" + text + "{\\i0}"))
    subs.save(str(path))
    return path


def ffmpeg(*args: str, timeout: float = 120) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args], check=True, timeout=timeout)


H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
VARIANTS = ("speech", "sidecar", "mkv_ass", "mp4_mov_text", "silent")


def encode_variant(folder: Path, stem: str, variant: str, picture: Sequence[str], wav: Path | None,
                   cues: Sequence[tuple[float, float, str]], duration: float, video_args: Sequence[str] = (),
                   timeout: float = 120) -> tuple[Path, Path | None]:
    """Mux `picture` (ffmpeg input arguments) with the narration `wav` and subtitle `cues` as one of VARIANTS:
    "speech" (MP4, no subtitles), "sidecar" (MP4 + stem.en.srt), "mkv_ass" / "mp4_mov_text" (an embedded track),
    "silent" (no audio stream). Returns (video, sidecar or None)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown speech sample variant {variant!r}; choose {', '.join(VARIANTS)}")
    video = [*H264, *video_args, "-t", f"{duration:.3f}"]
    if variant == "silent" or wav is None:
        path = folder / f"{stem}.mp4"
        ffmpeg(*picture, *video, "-an", str(path), timeout=timeout)
        return path, None
    audio = ["-i", str(wav)]
    aac = ["-c:a", "aac", "-aac_coder", "fast", "-b:a", "64k"]  # the default coder costs 5x the CPU
    if variant in ("speech", "sidecar"):
        path = folder / f"{stem}.mp4"
        ffmpeg(*picture, *audio, *video, *aac, str(path), timeout=timeout)
        return path, (write_subtitles(cues, folder / f"{stem}.en.srt") if variant == "sidecar" else None)
    subs = write_subtitles(cues, folder / f"{stem}.track.ass")
    codec, ext = ("ass", "mkv") if variant == "mkv_ass" else ("mov_text", "mp4")
    path = folder / f"{stem}.{ext}"
    ffmpeg(*picture, *audio, "-i", str(subs), "-map", "0:v", "-map", "1:a", "-map", "2:s", *video, *aac,
           "-c:s", codec, "-metadata:s:s:0", "language=eng", str(path), timeout=timeout)
    subs.unlink()
    return path, None


def make_speech_sample(folder: str | Path, variant: str = "speech") -> SpeechSample:
    """Write one variant into `folder`: "speech" (MP4, narration), "sidecar" (MP4 + name.en.srt),
    "mkv_ass" (MKV with an ASS track), "mp4_mov_text" (MP4 with a mov_text track), "silent" (no audio stream)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    picture = ["-f", "lavfi", "-i", f"color=c=gray:s=160x120:r=10:d={DURATION}"]
    if variant not in VARIANTS:
        raise ValueError(f"unknown speech sample variant {variant!r}; choose {', '.join(VARIANTS)}")
    wav, spoken = (None, []) if variant == "silent" else _narration(folder)
    path, sidecar = encode_variant(folder, variant, variant, picture, wav, SUBTITLES, DURATION)
    subtitles = list(SUBTITLES) if variant in ("sidecar", "mkv_ass", "mp4_mov_text") else []
    return SpeechSample(str(path), DURATION, spoken, subtitles, str(sidecar) if sidecar else None)


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
    ffmpeg("-f", "lavfi", "-i", f"color=c=gray:s=160x120:r=5:d={seconds}", "-i", str(wav),
            *H264, "-c:a", "aac", "-b:a", "64k", "-t", str(seconds), str(path), timeout=600)
    wav.unlink()
    text.unlink()
    return str(path)



# Sentences whose key word or number a transcript must keep, for measuring the speech lane on its own
# (benchmarks/speech.py --facts): (sentence, answer). Topics other than the lecture's, names, places, things and
# numbers in words; the lecture's own spoken facts are added by `fact_sentences` from samples/lecture_pools.py.
OTHER_FACTS: tuple[tuple[str, str], ...] = (
    ("The train to the coast leaves from platform nine.", "9"), ("Our bakery sells forty loaves every morning.", "40"),
    ("The museum closes at six in the evening.", "6"), ("The captain of the hockey team is Elena Brooks.", "Brooks"),
    ("The recipe needs three eggs and a cup of flour.", "3 eggs"), ("The hotel is on Maple Street.", "Maple"),
    ("The patient takes two tablets after dinner.", "2 tablets"), ("The winning horse was called Thunder.", "Thunder"),
    ("Our satellite orbits at five hundred kilometres.", "500"), ("The library card costs twelve pounds.", "12"),
    ("The violin teacher lives in Cardiff.", "Cardiff"), ("The garden has eighteen apple trees.", "18"),
    ("The password for the guest network is lantern.", "lantern"), ("The ferry carries ninety cars.", "90"),
    ("The marathon starts near the old harbor.", "harbor"), ("Grandmother planted tulips along the fence.",
                                                                "tulips"),
    ("The new bridge is three hundred metres long.", "300"), ("The chemistry exam lasts two hours.", "2 hours"),
    ("Our dentist is Doctor Amelia Shaw.", "Shaw"), ("The warehouse stores seventy pallets of rice.", "70"),
    ("The choir will sing in the cathedral.", "cathedral"), ("The spaceship was named Aurora.", "Aurora"),
    ("The concert tickets cost thirty five euros.", "35"), ("The farmer keeps sixty sheep on the hill.", "60"),
    ("The detective found the key under a flowerpot.", "flowerpot"), ("The soup needs fifteen minutes on low heat.",
                                                                       "15"),
    ("Our company was founded in Toronto.", "Toronto"), ("The pilot's call sign is Nova.", "Nova"),
    ("The swimming pool is twenty five metres long.", "25"), ("The treasure map points to a cave.", "cave"),
    ("Our neighbour owns a red tractor.", "tractor"), ("The sofa costs four hundred and fifty dollars.", "450"),
    ("The hospital has eighty beds.", "80"), ("The king's horse was called Shadow.", "Shadow"),
    ("The wedding is in Florence.", "Florence"), ("The submarine can dive to two thousand metres.", "2000"),
)


def fact_sentences() -> list[tuple[str, str]]:
    """(sentence, answer) pairs: every spoken-fact template of the lecture with each value its pools offer (a spread
    of the numeric ranges; digits, as the lecture gives them to espeak), then OTHER_FACTS (numbers in words)."""
    from longwatch.samples import lecture_pools as P

    values = {**{k: list(v) for k, v in P.VALUES.items()}, "quizday": list(P.WEEKDAYS),
              "volts": [6, 9, 12, 24, 48, 110], "hour": list(range(2, 9)), "budget": [150, 250, 400, 650, 900],
              "kg": [3, 7, 11, 14, 19]}
    out = []
    for template, _question, answer in P.SPOKEN:
        slot = answer.strip("{}")
        for i, value in enumerate(values[slot]):
            fill = {slot: str(value), "first": P.VALUES["first"][i % len(P.VALUES["first"])]}
            out.append((template.format(**fill), str(value)))
    return out + list(OTHER_FACTS)


def fact_narration(folder: str | Path, facts: Sequence[tuple[str, str]], voice: str, speed: int,
                   gaps: Sequence[float]) -> tuple[str, list[tuple[float, float, str, str]]]:
    """An M4A (AAC, as the sample videos carry it) of `facts` said one after another by `voice` at `speed` wpm,
    `gaps[i]` seconds of silence before sentence i; returns its path and (t0, t1, sentence, answer) per fact."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clips, placed, t = [], [], 0.0
    for i, ((text, answer), gap) in enumerate(zip(facts, gaps)):
        clip = say(text, folder / f"fact{i}.wav", voice, speed)
        start = int(round((t + gap) * RATE))
        clips.append((start, clip))
        placed.append((start / RATE, (start + len(clip)) / RATE, text, answer))
        t = (start + len(clip)) / RATE
    track = np.zeros(int((t + 1.0) * RATE), dtype=np.int16)
    for start, clip in clips:
        track[start:start + len(clip)] = clip
    wav = write_wav(folder / "facts.wav", track)
    path = folder / "facts.m4a"
    ffmpeg("-i", str(wav), "-c:a", "aac", "-aac_coder", "fast", "-b:a", "64k", str(path))
    wav.unlink()
    return str(path), placed
