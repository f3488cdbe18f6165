"""A live stream's audio, decoded in the reader thread beside its video and handed on as 16 kHz mono chunks on the
session clock (the clock the frames use), so speech heard live lines up with the clips it is committed with."""

from __future__ import annotations

from collections.abc import Callable

from longwatch.pipeline.audio import SAMPLE_RATE, AudioChunk, resampled, whisper_resampler

CHUNK_SECONDS = 1.0  # how much audio is gathered before it is handed on (the sink must never block the reader)


class LiveAudio:
    """Decodes audio packets of one session into chunks for `sink` (e.g. LiveSpeech.feed, which never blocks).

    Audio before the session's first video frame is dropped: the session clock starts at that frame.
    """

    def __init__(self, sink: Callable[[AudioChunk], object]):
        self.sink = sink
        self.decode_errors = 0
        self._stream = None
        self._resampler = None
        self._parts: list = []
        self._t0: float | None = None
        self._held = 0

    def packet(self, packet, offset: float | None) -> None:
        """Decode one audio packet; `offset` maps this connection's pts to session time (None: not known yet)."""
        import av
        import numpy as np

        if packet.stream is not self._stream:  # a new connection: a fresh resampler, nothing glued across it
            self.flush()
            self._stream, self._resampler = packet.stream, whisper_resampler()
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            self.decode_errors += 1
            return
        for frame in frames:
            if offset is None or frame.time is None:
                continue
            samples = resampled(self._resampler, frame)
            t = frame.time + offset
            if self._t0 is not None and abs(t - (self._t0 + self._held / SAMPLE_RATE)) > 0.25:
                self.flush()  # a jump in the audio's clock: each side keeps its own time
            if self._t0 is None:
                self._t0 = t
            self._parts.append(samples)
            self._held += len(samples)
            if self._held >= CHUNK_SECONDS * SAMPLE_RATE:
                self.sink(AudioChunk(self._t0, np.concatenate(self._parts)))
                self._t0 += self._held / SAMPLE_RATE
                self._parts, self._held = [], 0

    def flush(self) -> None:
        """Hand on what is gathered (end of a connection or of the session)."""
        import numpy as np

        if self._held and self._t0 is not None:
            self.sink(AudioChunk(self._t0, np.concatenate(self._parts)))
        self._parts, self._held, self._t0 = [], 0, None
