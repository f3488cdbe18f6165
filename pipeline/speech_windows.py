"""Audio windows for Whisper: cut at quiet moments and handed over between windows without losing a word.

Whisper hears 30 s at a time and is least reliable at the ends of its input, so where a window ends matters more
than how long it is (see Windower).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from longwatch.pipeline.audio import SAMPLE_RATE, AudioChunk

_QUIET = 0.1  # seconds per energy step when a window is cut in a quiet stretch, so no word is split
_MARGIN = 1.0  # seconds of audio each window hears beyond the moment it hands over to the next
_PAUSE = 0.5  # seconds of near-silence (20 dB under the loudest 0.1 s) that end a sentence for `pause_after`


@dataclass
class AudioWindow:
    """One Whisper call's audio: `samples` from source time `t0`, and where the next window takes over."""

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

    def push(self, chunk: AudioChunk) -> Iterator[AudioWindow]:
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
            yield AudioWindow(self._t0, audio[:cut], self._t0 + until / SAMPLE_RATE)
            self._t0 += keep / SAMPLE_RATE
            self._parts, self._held, self._fresh = [audio[keep:]], len(audio) - keep, cut - keep

    def flush(self) -> Iterator[AudioWindow]:
        if self._held and self._t0 is not None:
            yield AudioWindow(self._t0, np.concatenate(self._parts))
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

