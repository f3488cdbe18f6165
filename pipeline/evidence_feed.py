"""The evidence of one clip: its on-screen rows and caption, plus the speech segments and subtitle cues whose start
falls in it, handed out clip by clip as ingest advances.

Speech is transcribed lazily, only as far as the clip being encoded (one Whisper window of look-ahead), so memory
stays bounded and a resumed ingest transcribes only from its resume point. Subtitles are read once per source.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from longwatch.errors import CorruptVideo, VideoError
from longwatch.memory.records import Evidence
from longwatch.pipeline.ocr_layout import is_table_text

_PREROLL = 2.0  # seconds of audio heard before a resume point, so a sentence cut by it is not re-said in part
# Live audio: Whisper windows of at most 10 s that also end at the first pause after 3 s, so a sentence is
# transcribed about when it ends (shorter windows garble tiny.en), and is committed with the next clip. Such a
# window ends half a second into a pause, so it hands over at its end and the next hears 1 s of it again.
LIVE_WINDOW, LIVE_PAUSE_AFTER, LIVE_OVERLAP = 10.0, 3.0, 1.0


class EvidenceFeed:
    """Speech segments and subtitle cues of one source, taken in time order by `take(until)`.

    Evidence starting before `start` (a resume point) was committed by an earlier run, and so was speech starting
    before `speech_after` (the last committed segment's end). `lanes` says, per lane, what ran or why it did not
    ("speech": "no audio stream"), for the ingest report.
    """

    def __init__(self, speech: Iterator | None = None, cues: list | None = None, start: float = 0.0,
                 speech_after: float | None = None, lanes: dict[str, str] | None = None,
                 timings: dict[str, float] | None = None, live=None, arrived: deque | None = None):
        self._speech = speech
        self._live = live  # speech.LiveSpeech transcribing a live stream's audio on its own thread
        self._arrived = arrived if arrived is not None else deque()  # its segments, appended by that thread
        self._heard: list = []  # segments transcribed but not yet handed out (one window of look-ahead at most)
        self._cues = [c for c in cues or () if c.t0 >= start]
        self._start = start
        self._speech_after = start if speech_after is None else speech_after
        self._lanes = lanes if lanes is not None else {}
        self._timings = timings if timings is not None else {}
        self.segments = 0  # speech segments handed out
        self.cues = 0  # subtitle cues handed out

    @property
    def lanes(self) -> dict[str, str]:
        """Per lane, what ran (with what it has produced so far) or why it did not."""
        out = dict(self._lanes)
        if out.get("speech", "").startswith("transcribed"):
            out["speech"] += f": {self.segments} segment{'' if self.segments == 1 else 's'}"
            if self._live is not None and self._live.dropped:
                out["speech"] += f", {self._live.dropped} audio chunks dropped (transcription fell behind)"
        if out.get("subtitles", "").startswith("read"):
            out["subtitles"] += f": {self.cues} cue{'' if self.cues == 1 else 's'}"
        return out

    def take(self, until: float | None) -> list[Evidence]:
        """Evidence starting before `until` seconds (everything left when None: the final clip), in time order."""
        self._listen(until)
        segments = [s for s in self._heard if until is None or s.t0 < until]
        self._heard = [s for s in self._heard if until is not None and s.t0 >= until]
        cues = [c for c in self._cues if until is None or c.t0 < until]
        self._cues = self._cues[len(cues):]
        self.segments += len(segments)
        self.cues += len(cues)
        out = [Evidence("speech", s.t0, s.t1, s.text, meta={"language": s.language}) for s in segments]
        out += [Evidence("subtitle", c.t0, c.t1, c.text,
                         meta={k: v for k, v in (("language", c.language), ("source", c.source)) if v})
                for c in cues]
        return sorted(out, key=lambda e: (e.t0, e.kind))

    def __enter__(self) -> EvidenceFeed:
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.stop()

    def _listen(self, until: float | None) -> None:
        """Transcribe until a segment starts at or after `until` (all of it for None); timed as "speech".

        A live stream is never waited for: what its thread has transcribed so far is taken."""
        while self._arrived:
            segment = self._arrived.popleft()
            if segment.t0 >= self._start and (segment.t0 + segment.t1) / 2 >= self._speech_after:
                self._heard.append(segment)
        if self._speech is None:
            return
        start = time.perf_counter()
        try:
            while until is None or not self._heard or self._heard[-1].t0 < until:
                try:
                    segment = next(self._speech, None)
                except CorruptVideo as e:  # damaged audio ends the speech lane, never the video's ingest
                    self._lanes["speech"] += f" (stopped: {e})"
                    segment = None
                if segment is None:
                    self._speech = None
                    break
                if segment.t0 >= self._start and (segment.t0 + segment.t1) / 2 >= self._speech_after:
                    self._heard.append(segment)
        finally:
            self._timings["speech"] = self._timings.get("speech", 0.0) + time.perf_counter() - start


def open_feed(source, config, speech_lane, start: float = 0.0, speech_after: float | None = None,
              subtitle_files: list | None = None, timings: dict[str, float] | None = None) -> EvidenceFeed:
    """The speech and subtitle feed of an opened, not yet read `source` (a VideoSource), from `start` seconds on.

    A local file's audio is transcribed as clips advance; a live source that can `listen` hands its audio to
    LiveSpeech as it arrives. A source without an audio stream costs nothing: no decoding, no model load.
    """
    from longwatch.pipeline.speech import LiveSpeech, SpeechLane

    info = source.info
    lanes: dict[str, str] = {}
    path = Path(info.source) if not info.is_live and info.source and Path(info.source).is_file() else None
    speech = live = None
    arrived: deque = deque()
    if not config.speech:
        lanes["speech"] = "off"
    elif info.is_live and info.has_audio and hasattr(source, "listen"):
        live = LiveSpeech(SpeechLane(replace(speech_lane.config, window=LIVE_WINDOW, overlap=LIVE_OVERLAP,
                                           pause_after=LIVE_PAUSE_AFTER)), on_segment=arrived.append)
        source.listen(live.feed)
        lanes["speech"] = f"transcribed live with {config.speech_model}"
    elif path is None:
        lanes["speech"] = "not a file: no audio read" if not info.is_live or info.has_audio else "no audio stream"
    elif not info.has_audio:
        lanes["speech"] = "no audio stream"
    else:
        lanes["speech"] = f"transcribed with {config.speech_model}" + (f" from {start:.1f} s" if start else "")
        try:
            speech = speech_lane.transcribe_file(path, start=max(0.0, start - _PREROLL) if start else 0.0)
        except VideoError as e:  # audio past the limits or unreadable: the pictures are still ingested
            lanes["speech"] = f"audio not read ({e})"
    cues: list = []
    if not config.subtitles:
        lanes["subtitles"] = "off"
    else:
        from longwatch.pipeline.subtitles import read_sidecar, subtitle_cues

        if path is not None:
            def damaged(error) -> None:  # a damaged subtitle stream loses its cues, not the video
                lanes["subtitles"] = f"embedded stream unreadable ({error})"

            cues = subtitle_cues(path, subtitle_files, on_damage=damaged)
        else:
            cues = sorted((cue for f in subtitle_files or () for cue in read_sidecar(f)), key=lambda c: (c.t0, c.t1))
        lanes.setdefault("subtitles", "read" if cues else "none found")
    return EvidenceFeed(speech, cues, start, speech_after, lanes, timings, live, arrived)


def screen_evidence(spans, clip_t0: float, clip_t1: float) -> list[Evidence]:
    """One Evidence per on-screen row visible in this clip; its context is the row's title/header, and table rows
    say so in meta. A row still visible from an earlier clip `continues` it: the bank extends that row's end, so
    a slide up for a minute is one piece of evidence with its whole time range."""
    out = []
    for span in spans:
        t0 = max(span.t0, clip_t0)
        meta = {"table": True} if is_table_text(span.text) else {}
        out.append(Evidence("ocr", t0, min(max(span.t1, t0), clip_t1), span.text, getattr(span, "context", ""), meta,
                            continues=bool(span.continued)))
    return out
