"""Live sources: RTSP / HTTP(S) / UDP / RTMP / SRT URLs and webcams decoded by PyAV, reconnecting with backoff.

A reader thread decodes into a bounded queue with an explicit overflow policy, so memory stays bounded for any length.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from longwatch.pipeline._live_queue import Closed, DropQueue, Policy
from longwatch.pipeline._live_time import Backoff, _Timeline
from longwatch.pipeline._live_spec import LIVE_SCHEMES, default_options, describe_error, is_live_spec, open_hint, resolve
from longwatch.errors import StreamError, VideoTooLarge
from longwatch.pipeline.frames import Clip, Frame, VideoInfo
from longwatch.pipeline.sampling import make_clips, resize_max_side, sample_fps

if TYPE_CHECKING:
    from longwatch.pipeline.probe import VideoLimits

__all__ = ["LIVE_SCHEMES", "Backoff", "LiveSource", "LiveStats", "is_live_spec"]


@dataclass(frozen=True)
class LiveStats:
    """A consistent snapshot of a live source's counters.

    frames_received counts every decoded frame; frames_queued/dropped/delivered count the frames kept by the
    fps sampler (dropped = discarded by the overflow policy). lag_seconds is how far the consumer is behind the
    live edge in stream time: t of the newest decoded frame minus t of the last frame the consumer took
    (0 before anything arrives). ended_reason is None while running, then "stopped" (stop/close or the
    consumer left), "gave_up" (reconnects exhausted), "eof" (end_on_eof, or a finite file
    over HTTP that was read to its end) or "error" (an unexpected failure).
    """

    frames_received: int
    frames_queued: int
    frames_dropped: int
    frames_delivered: int
    decode_errors: int
    queue_size: int
    queue_peak: int
    queue_maxsize: int
    reconnect_attempts: int
    reconnects: int
    backoff_delays: tuple[float, ...]  # the most recent waits before reconnect attempts, oldest first
    connected: bool
    lag_seconds: float
    last_error: str | None
    ended_reason: str | None


class _Decoded(NamedTuple):
    """A decoded frame on the session timeline; `sample_fps` reads only `.t`, so the costly RGB
    conversion happens only for frames the sampler keeps."""

    t: float
    frame: Any  # av.VideoFrame


class LiveSource:
    """A live stream as a VideoSource: `.info`, `.frames()`, `.clips()`, `.stats`, `.stop()`, `.close()`.

    Opening happens in the constructor and raises StreamError when the stream cannot be reached, so a typo'd
    URL fails at once. Once reading, drops are survived: reconnect attempts follow `backoff`; when it gives up
    the frame iterator ends cleanly (`stats.ended_reason == "gave_up"`) or, with on_give_up="raise", raises
    StreamError after the queued frames. A source is read once: `frames()`/`clips()` may be called one time.

    Args:
        spec: a URL (rtsp, rtsps, rtmp(s), http(s), udp, rtp, srt, tcp) or "webcam:N" (/dev/videoN via v4l2).
        queue_size: frames held between the reader thread and the consumer (after fps sampling and resizing).
        policy: what to do when the consumer is slower than real time: "drop_oldest" (live default),
            "drop_newest", or "block" (backpressure, for recorded streams; nothing is dropped).
        open_timeout, read_timeout: seconds before a silent connect / read gives up (no call hangs forever).
        options: FFmpeg options, merged over the defaults for the scheme (e.g. {"rtsp_transport": "udp"}).
        end_on_eof: treat the server closing the stream as the end (recorded streams) instead of a drop. A file
            served over HTTP (it has a duration) always ends at its end; `.finite` says which it is.
        limits: `max_pixels` and `max_fps` apply to every connection (VideoTooLarge); the rest are file limits.
    """

    def __init__(self, spec: str, *, queue_size: int = 32, policy: Policy = "drop_oldest",
                 open_timeout: float = 10.0, read_timeout: float = 5.0, backoff: Backoff | None = None,
                 options: dict[str, str] | None = None, end_on_eof: bool = False,
                 on_give_up: Literal["end", "raise"] = "end", limits: VideoLimits | None = None):
        if on_give_up not in ("end", "raise"):
            raise ValueError(f"on_give_up must be 'end' or 'raise', got {on_give_up!r}")
        if open_timeout <= 0 or read_timeout <= 0:
            raise ValueError(f"timeouts must be positive, got open={open_timeout}, read={read_timeout}")
        self.spec = spec
        self._url, self._format, self.name, scheme = resolve(spec)
        self._options = {**default_options(scheme, read_timeout, open_timeout, options or {}), **(options or {})}
        self._open_timeout, self._read_timeout = open_timeout, read_timeout
        self._backoff = backoff or Backoff()
        self._end_on_eof, self._on_give_up = end_on_eof, on_give_up
        self._limits = limits
        self._queue: DropQueue[Frame] = DropQueue(queue_size, policy)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._thread: threading.Thread | None = None
        self._received = self._queued = self._delivered = self._decode_errors = 0
        self._attempts = self._reconnects = 0
        self._delays: deque[float] = deque(maxlen=32)
        self._newest_t: float | None = None
        self._consumed_t: float | None = None
        self._last_error: str | None = None
        self._ended_reason: str | None = None
        self._end_error: BaseException | None = None
        self._audio = None  # _live_audio.LiveAudio once someone listens
        self._container = self._open()
        self._connected = True
        # A file served over HTTP has a duration; a live HTTP stream (MPEG-TS from a server or camera) has none.
        # The file ends where it ends: re-opening it would replay it from the start as if the stream went on.
        duration = self._container.duration
        self.finite = scheme in ("http", "https") and bool(duration and duration > 0)
        self._timeline = _Timeline(fixed=self.finite)
        self.info = self._describe(self._container, scheme, queue_size, policy)

    # -- VideoSource protocol -------------------------------------------------------------------------------

    def frames(self, fps: float | None = None, max_side: int | None = None, start: float = 0.0) -> Iterator[Frame]:
        """Frames with session times (0 at the first frame, strictly increasing across reconnects).

        Sampling and resizing run in the reader thread, before the queue, so the queue bound is in
        consumer-sized frames. Leaving the loop early stops the stream.
        """
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                raise RuntimeError(f"{self.name}: this live source was already read or closed; open a new LiveSource")
            self._thread = threading.Thread(target=self._run, args=(fps, max_side, start),
                                            name=f"longwatch-live {self.name}", daemon=True)
            self._thread.start()
        return self._consume()

    def listen(self, sink) -> bool:
        """Hand the stream's audio to `sink` as 16 kHz mono AudioChunks on the session clock (called from the reader
        thread: it must not block). Call before frames(); False, and nothing decoded, when there is no audio."""
        from longwatch.pipeline._live_audio import LiveAudio

        if self.info.has_audio:
            self._audio = LiveAudio(sink)
        return self.info.has_audio

    def clips(self, clip_seconds: float, fps: float | None = None, max_side: int | None = None,
              start: float = 0.0) -> Iterator[Clip]:
        """Clips of `clip_seconds` of session time (see `sampling.make_clips`); a stream gap yields no clip."""
        return make_clips(self.frames(fps, max_side, start), clip_seconds)

    @property
    def stats(self) -> LiveStats:
        with self._lock:
            newest = self._newest_t
            lag = 0.0 if newest is None else max(0.0, newest - (self._consumed_t or 0.0))
            return LiveStats(
                frames_received=self._received, frames_queued=self._queued, frames_dropped=self._queue.dropped,
                frames_delivered=self._delivered, decode_errors=self._decode_errors, queue_size=len(self._queue),
                queue_peak=self._queue.peak, queue_maxsize=self._queue.maxsize,
                reconnect_attempts=self._attempts, reconnects=self._reconnects, backoff_delays=tuple(self._delays),
                connected=self._connected, lag_seconds=lag, last_error=self._last_error,
                ended_reason=self._ended_reason)

    def stop(self) -> None:
        """Stop now: queued frames are discarded and the frame iterator ends. Returns promptly even while
        the reader is blocked in a network read; that read then ends within read_timeout."""
        self._stop.set()
        self._set_end("stopped")
        self._queue.close(discard=True)
        with self._lock:
            thread = self._thread
        if thread is None:
            self._close_container()
        elif thread is not threading.current_thread():
            thread.join(timeout=0.1)

    def close(self) -> None:
        """Stop and wait (at most read_timeout + 1 s) for the reader thread to release the connection."""
        self.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._read_timeout + 1.0)

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consumer side ------------------------------------------------------------------------------------

    def _consume(self) -> Iterator[Frame]:
        try:
            while True:
                try:
                    frame = self._queue.get()
                except Closed:
                    break
                with self._lock:
                    self._delivered += 1
                    self._consumed_t = frame.t
                yield frame
        finally:
            self.stop()  # a consumer that leaves early ends the session; no-op after a natural end
        with self._lock:
            reason, error = self._ended_reason, self._end_error
        if error is not None and (reason == "error" or self._on_give_up == "raise"):
            raise error

    # -- reader thread ------------------------------------------------------------------------------------

    def _run(self, fps: float | None, max_side: int | None, start: float) -> None:
        decoded = self._decoded()
        newest: list[_Decoded] = []

        def remembered() -> Iterator[_Decoded]:
            for item in decoded:
                newest[:] = [item]
                yield item

        sampled = sample_fps(remembered(), fps)
        kept = None
        try:
            for item in sampled:
                if item.t + 1e-9 < start:
                    continue
                kept = item
                if not self._put(item, max_side) and self._stop.is_set():
                    break
            with self._lock:
                read_to_end = self._ended_reason == "eof"
            if self.finite and read_to_end and newest and newest[0] is not kept and newest[0].t + 1e-9 >= start:
                # A file's last frame is kept even off the sampling grid: with its duration it tells the last
                # clip where the file ends, instead of a sampling interval past the last kept frame.
                self._put(newest[0], max_side)
        except BaseException as e:  # a bug or an unexpected library failure: surface it to the consumer
            self._set_end("error", e)
            with self._lock:
                self._last_error = f"{type(e).__name__}: {e}"
        finally:
            sampled.close()
            decoded.close()
            if self._audio is not None:
                self._audio.flush()
            self._queue.close()
            self._close_container()

    def _put(self, item: _Decoded, max_side: int | None) -> bool:
        f = item.frame
        end = item.t + float(f.duration * f.time_base) if f.duration and f.time_base else None
        if self._queue.put(Frame(item.t, resize_max_side(f.to_ndarray(format="rgb24"), max_side), end)):
            with self._lock:
                self._queued += 1
            return True
        return False

    def _decoded(self) -> Iterator[_Decoded]:
        """Decoded frames of the whole session, across reconnects; returns when stopped or given up."""
        import av

        while self._container is not None and not self._stop.is_set():
            eof, error = True, "the server ended the stream"
            with self._lock:
                before = self._received
            try:
                yield from self._decode_connection(self._container)
            except (av.error.FFmpegError, OSError) as e:
                eof, error = False, describe_error(e)
            self._close_container()
            if self._stop.is_set():
                return
            with self._lock:
                self._last_error = error
            if eof and (self._end_on_eof or self.finite):
                self._set_end("eof")
                return
            if self.finite and self._received == before:
                # A file that gave nothing new on this read gives nothing on the next either (typically an MP4
                # whose index sits at the end, from a server without byte ranges): say so instead of retrying.
                self._set_end("gave_up", StreamError(
                    self.name, detected=error, problem=f"the file served over HTTP cannot be read past "
                                                       f"{self._newest_t or 0.0:.1f} s",
                    hint="serve it from a server with byte-range support, or move the MP4 index to the front: "
                         "`ffmpeg -i IN.mp4 -c copy -movflags +faststart OUT.mp4`"))
                return
            container = self._reconnect()
            with self._lock:
                self._container = container

    def _decode_connection(self, container: Any) -> Iterator[_Decoded]:
        import av

        stream = container.streams.video[0]
        heard = container.streams.audio[:1] if self._audio is not None else []
        for packet in container.demux(stream, *heard):
            if self._stop.is_set():
                return
            if packet.stream is not stream:
                self._audio.packet(packet, self._timeline.offset)
                continue
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:  # live joins mid-GOP and lossy links corrupt packets: skip them
                with self._lock:
                    self._decode_errors += 1
                continue
            for f in frames:
                t = self._timeline.place(f.time, time.monotonic())
                if t is None:
                    continue  # a finite file re-read after a drop: this frame was delivered before
                with self._lock:
                    self._received += 1
                    self._newest_t = t
                yield _Decoded(t, f)

    def _reconnect(self) -> Any | None:
        """A new open container, or None once stopped or out of attempts / outage time."""
        began = time.monotonic()
        attempt = 0
        while True:
            delay = self._backoff.delay(attempt, self._rng)
            outage = time.monotonic() - began
            limit = self._backoff.max_outage
            if (self._backoff.max_attempts is not None and attempt >= self._backoff.max_attempts) or (
                    limit is not None and outage + delay > limit):
                with self._lock:
                    last = self._last_error or "no data"
                self._set_end("gave_up", StreamError(
                    self.name, detected=last,
                    problem=f"stream dropped and did not come back after {attempt} reconnect attempts in {outage:.1f} s",
                    hint="check that the sender or camera is running; allow a longer outage with "
                         "Backoff(max_attempts=..., max_outage=...)"))
                return None
            with self._lock:
                self._delays.append(delay)
            if self._stop.wait(delay):
                return None
            attempt += 1
            with self._lock:
                self._attempts += 1
            try:
                container = self._open()
            except StreamError as e:
                with self._lock:
                    self._last_error = e.detected
                continue
            if self._stop.is_set():
                container.close()
                return None
            self._timeline.new_connection()
            with self._lock:
                self._reconnects += 1
                self._connected = True
            return container

    # -- helpers ------------------------------------------------------------------------------------------

    def _open(self) -> Any:
        import av

        try:
            container = av.open(self._url, format=self._format, options=dict(self._options),
                                timeout=(self._open_timeout, self._read_timeout))
        except (av.error.FFmpegError, OSError) as e:
            raise StreamError(self.name, detected=describe_error(e), problem="could not open the live stream",
                              hint=open_hint(e, self._open_timeout)) from e
        if not container.streams.video:
            found = ", ".join(s.type for s in container.streams) or "no streams"
            container.close()
            raise StreamError(self.name, detected=found, problem="the stream carries no video",
                              hint="point longwatch at a stream with a video track")
        if self._limits is not None:
            self._check_limits(container)
        return container

    def _check_limits(self, container: Any) -> None:
        ctx = container.streams.video[0].codec_context
        rate = container.streams.video[0].average_rate
        fps = float(rate) if rate else 0.0
        if ctx.width * ctx.height > self._limits.max_pixels or fps > self._limits.max_fps:
            container.close()
            raise VideoTooLarge(self.name, detected=f"{ctx.width}x{ctx.height} @ {fps:g} fps",
                                problem=f"over the limit of {self._limits.max_pixels} pixels per frame or "
                                        f"{self._limits.max_fps:g} fps",
                                hint="ask the sender for a smaller stream or raise VideoLimits.max_pixels/max_fps")

    def _describe(self, container: Any, scheme: str, queue_size: int, policy: str) -> VideoInfo:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        rate = stream.average_rate  # guessed_rate would be the time base's tick rate (90000/1000) for many streams
        duration = container.duration / 1e6 if self.finite else None
        return VideoInfo(source=self.name, container=container.format.name, codec=ctx.name, width=ctx.width,
                         height=ctx.height, fps=float(rate) if rate else 0.0, duration=duration, n_frames=None,
                         rotation=0, has_audio=bool(container.streams.audio), is_live=True,
                         extra={"scheme": scheme, "policy": policy, "queue_size": queue_size, "finite": self.finite})

    def _close_container(self) -> None:
        with self._lock:
            container, self._container = self._container, None
            self._connected = False
        if container is not None:
            container.close()

    def _set_end(self, reason: str, error: BaseException | None = None) -> None:
        with self._lock:
            if self._ended_reason is None:
                self._ended_reason, self._end_error = reason, error
