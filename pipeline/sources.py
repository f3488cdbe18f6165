"""Video sources behind one protocol: local files (PyAV, or decord in a worker), live streams, frame iterables.

Frames stream through one at a time with pts-derived times, upright and resized; `DECODE_STATS` counts every file decode.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np

from longwatch.pipeline._decode_ops import packet_time, same_timeline
from longwatch.errors import CorruptVideo, VideoError
from longwatch.pipeline.frames import Clip, Frame, Gap, VideoInfo
from longwatch.pipeline.probe import VideoLimits, probe
from longwatch.pipeline.sampling import make_clips, resize_max_side, sample_fps

log = logging.getLogger(__name__)
Backend = Literal["auto", "pyav", "decord"]
# decord returned wrong frames for HEVC here (B-frame order, measured against PyAV); only these are trusted.
_DECORD_CODECS = ("h264", "mpeg4")
_MAX_BAD_PACKETS = 50  # consecutive undecodable packets before a file counts as corrupt rather than glitched
_DECORD_BATCH = 16
# Bytes the demuxer may step over between two packets before it counts as skipping damage: MPEG-PS/TS and ASF
# padding stays under ~4 KB, while a Matroska demuxer resyncing past a damaged cluster skips the whole cluster.
_SKIP_BYTES = 16 << 10


@dataclass
class DecodeStats:
    """Process-wide counters, so a test can prove an answer needed no further decoding."""

    files_opened: int = 0
    frames_decoded: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, files: int = 0, frames: int = 0) -> None:
        with self._lock:
            self.files_opened += files
            self.frames_decoded += frames


DECODE_STATS = DecodeStats()


class VideoSource(Protocol):
    info: VideoInfo

    def frames(self, fps: float | None = None, max_side: int | None = None, start: float = 0.0) -> Iterator[Frame]: ...

    # Sources that can lose stretches of time (damaged files) also list them as `gaps: list[Gap]`, filled as
    # frames are read; the ingest loop records each in the bank.

    def clips(self, clip_seconds: float, fps: float | None = None, max_side: int | None = None,
              start: float = 0.0) -> Iterator[Clip]: ...

    def close(self) -> None: ...


class _Decoded(NamedTuple):
    """A frame before RGB conversion: `sample_fps` only reads `.t`, so unsampled frames are never converted."""

    t: float
    frame: Any  # av.VideoFrame, or an int frame index for decord


class _SourceBase:
    info: VideoInfo

    def clips(self, clip_seconds: float, fps: float | None = None, max_side: int | None = None,
              start: float = 0.0) -> Iterator[Clip]:
        """Clips of `clip_seconds` (see `sampling.make_clips`). If the file turns out damaged mid-way, the clips
        decoded so far (the last partial one included) are yielded before the CorruptVideo is raised."""
        failure: list[VideoError] = []

        def guarded() -> Iterator[Frame]:
            try:
                yield from self.frames(fps, max_side, start)
            except CorruptVideo as e:
                failure.append(e)

        yield from make_clips(guarded(), clip_seconds, until=lambda: getattr(self, "delivered_until", None))
        if failure:
            raise failure[0]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileSource(_SourceBase):
    """A local video file, probed (validated) on construction.

    Args:
        path: the file.
        limits: what the file may declare (see VideoLimits).
        backend: "pyav" decodes in-process, straight through; "decord" reads sampled frames by index in a worker
            process (only after its timestamps are checked against PyAV's; H.264 and MPEG-4 only, else PyAV);
            "auto" is PyAV, the faster of the two in benchmarks/decode.py.
        isolate: probe in a worker process (keep True for files you did not make).
    """

    def __init__(self, path: str | Path, limits: VideoLimits | None = None, backend: Backend = "auto",
                 isolate: bool = True):
        if backend not in ("auto", "pyav", "decord"):
            raise ValueError(f"backend must be 'auto', 'pyav' or 'decord', got {backend!r}")
        self.path = Path(path)
        self.limits = limits or VideoLimits()
        self.info = probe(self.path, self.limits, isolate=isolate)
        self.backend = backend
        self._start = float(self.info.extra.get("start") or 0.0)
        self._k = (-self.info.rotation // 90) % 4  # np.rot90 turns counter-clockwise
        self._workers: list = []
        self.used_backend: str | None = None  # what the last frames() call decodes with, once it has started
        self.gaps: list[Gap] = []  # stretches the last frames() call could not decode, in time order
        self.delivered_until: float | None = None  # where the last decoded frame ends: the last clip ends there

    def frames(self, fps: float | None = None, max_side: int | None = None, start: float = 0.0) -> Iterator[Frame]:
        """Frames with t = pts seconds from the stream start, sampled to `fps` (None = all), upright, resized."""
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.gaps, self.delivered_until = [], None
        if self._use_decord():
            self.used_backend = "decord"
            return self._decord_frames(fps, max_side, start)
        self.used_backend = "pyav"
        return self._pyav_frames(fps, max_side, start)

    def _use_decord(self) -> bool:
        # "auto" means PyAV: measured here (benchmarks/decode.py, 1 fps from an hour of 640x360 H.264), straight
        # PyAV decoding with RGB conversion only for kept frames ran ~14x faster than decord's sparse get_batch.
        if self.backend != "decord":
            return False
        if self.info.codec not in _DECORD_CODECS:
            log.info("%s: decord is not trusted with %s; decoding with PyAV", self.path, self.info.codec)
            return False
        return True

    def _upright(self, image: np.ndarray, max_side: int | None) -> np.ndarray:
        if self._k:
            image = np.ascontiguousarray(np.rot90(image, k=self._k))
        return resize_max_side(image, max_side)

    # ---- PyAV ---------------------------------------------------------------------------------------------

    def _pyav_frames(self, fps: float | None, max_side: int | None, start: float) -> Iterator[Frame]:
        decoded = self._decoded(start)
        try:
            for item in sample_fps(decoded, fps):
                yield Frame(item.t, self._upright(item.frame.to_ndarray(format="rgb24"), max_side))
        finally:
            decoded.close()

    def _decoded(self, start: float) -> Iterator[_Decoded]:
        """Every frame at or after `start`, in presentation order, from one pass over the file."""
        import av

        from longwatch.pipeline._decode_ops import open_container

        container = open_container(str(self.path))
        DECODE_STATS.add(files=1)
        last_t, bad = None, 0
        # Damage shows as decode errors (MP4: the index still points into garbage), frames the decoder marks
        # corrupt (MPEG-TS), or the demuxer stepping over bytes it cannot parse (Matroska resyncs to the next
        # cluster). Together with a jump in frame times it is a gap; a jump alone is a variable frame rate.
        suspect: str | None = None
        suspect_at = -math.inf  # frames are reordered and decoded on threads: evidence ends only past this time
        jump = max(3.0 / self.info.fps, 0.5) if self.info.fps else 1.0
        byte_end = None
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threads: the decoder keeps both cores busy
            # Times are pts minus the stream's start in exact rationals: in floats 1.007 s - 0.007 s is 0.999...,
            # which would put a frame on a clip boundary into the clip before.
            origin = stream.start_time * stream.time_base if stream.start_time is not None and stream.time_base else None
            if start > 0:
                try:
                    container.seek(int((start + self._start) / stream.time_base), stream=stream, backward=True)
                except av.error.FFmpegError as e:  # some files cannot seek: decode from the top, skip early frames
                    log.info("%s: seek to %.1f s failed (%s); decoding from the start", self.path, start, e)
                    container.close()
                    container = open_container(str(self.path))
                    stream = container.streams.video[0]
                    stream.thread_type = "AUTO"
            packets = container.demux(stream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except (av.error.FFmpegError, OSError) as e:  # a read error: the rest of the file is unreadable
                    raise self._broken(last_t, f"reading stopped: {e}") from None
                if packet.pos is not None and packet.pos >= 0 and packet.size:
                    if byte_end is not None and packet.pos - byte_end > _SKIP_BYTES:
                        suspect = suspect or f"the demuxer skipped {packet.pos - byte_end:,} unreadable bytes"
                        suspect_at = max(suspect_at, packet_time(packet))
                    byte_end = packet.pos + packet.size
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as e:
                    bad += 1
                    suspect = suspect or f"packets failed to decode ({e})"
                    suspect_at = max(suspect_at, packet_time(packet))
                    if bad > _MAX_BAD_PACKETS:
                        raise self._broken(last_t, f"{bad} packets in a row failed to decode ({e})") from None
                    continue
                bad = 0 if frames else bad
                for f in frames:
                    if f.pts is None:
                        continue
                    DECODE_STATS.add(frames=1)
                    if origin is not None and f.time_base:
                        t = float(f.pts * f.time_base - origin)
                    else:
                        t = float(f.time) - self._start
                    if t + 1e-6 < start:
                        continue
                    prev = start if last_t is None else last_t  # damage at the very start loses [start, t)
                    if suspect and t - prev > jump:
                        self.gaps.append(Gap(prev, t, f"undecodable: {suspect}"))
                        suspect = None
                    elif suspect and t + self._start >= suspect_at:
                        suspect = None  # the damage was concealed: no time went missing
                    if f.is_corrupt:
                        suspect, suspect_at = suspect or "the decoder marked a frame corrupt", t + self._start
                    last_t = t
                    shown = float(f.duration * f.time_base) if f.duration and f.time_base else 0.0
                    self.delivered_until = t + (shown or (1.0 / self.info.fps if self.info.fps else 0.0))
                    yield _Decoded(t, f)
        finally:
            container.close()
        duration = self.info.duration
        if suspect and duration and duration - (start if last_t is None else last_t) > jump:
            # Damage after the last good frame: nothing decoded to the end, so the tail is the gap.
            t0 = start if last_t is None else last_t
            self.gaps.append(Gap(t0, duration, f"undecodable to the end: {suspect}"))
        self._check_complete(last_t, start)

    def _check_complete(self, last_t: float | None, start: float) -> None:
        """A file that ends well before its declared duration was cut short: say so after delivering its frames."""
        duration = self.info.duration
        if not duration:
            return
        interval = 1.0 / self.info.fps if self.info.fps else 0.0
        slack = (0.0 if self.info.extra.get("cut_short") else max(2.0, 0.05 * duration)) + interval
        if last_t is None and start >= duration - slack:
            return  # resumed at the very end: nothing left is not damage
        if last_t is None or last_t + slack < duration:
            raise self._broken(last_t, f"the file declares {duration:.1f} s", start)

    def _broken(self, last_t: float | None, detail: str, start: float = 0.0) -> CorruptVideo:
        """The error that ends a damaged file; the rest of the file, as far as it declares, is listed as a gap."""
        got = "no frame decoded" if last_t is None else f"frames decoded up to {last_t:.2f} s"
        error = CorruptVideo(self.path, f"{got}; {detail}", "the video is truncated or damaged mid-stream",
                             "the frames before that point were delivered; copy or export the file again "
                             "for the rest")
        t0 = max(start, last_t or 0.0)
        if not self.gaps or self.gaps[-1].t0 != t0:  # damage at the end may already be listed
            self.gaps.append(Gap(t0, max(t0, self.info.duration or t0), f"{error.problem}: {error.detected}"))
        return error

    # ---- decord (worker process) --------------------------------------------------------------------------

    def _packet_times(self) -> list[float]:
        """Presentation times of all video packets, demuxed without decoding (fast)."""
        from longwatch.pipeline._decode_ops import open_container

        with open_container(str(self.path)) as container:
            stream = container.streams.video[0]
            tb = stream.time_base
            times = [float(p.pts * tb) - self._start for p in container.demux(stream) if p.pts is not None]
        return sorted(times)

    def _decord_frames(self, fps: float | None, max_side: int | None, start: float) -> Iterator[Frame]:
        from longwatch.pipeline._decode_worker import Worker, WorkerCrashed, WorkerTimeout

        times = self._packet_times()
        worker = Worker()
        self._workers.append(worker)
        timeout = self.limits.timeout
        try:
            reply, _ = worker.call({"op": "decord_open", "path": str(self.path)}, timeout)
            ok, why = same_timeline(times, reply)
            k = self._decord_turns(reply.get("shape"))
            if k is None:
                ok, why = False, f"cannot tell whether decord applied the {self.info.rotation} degree rotation"
            if not ok:  # the contract is PyAV's frames and times, so an unsure decord hands over to PyAV
                log.info("%s: decord unsafe (%s); decoding with PyAV", self.path, why)
                self.used_backend = "pyav"
                yield from self._pyav_frames(fps, max_side, start)
                return
            DECODE_STATS.add(files=1)
            picked = [d.frame for d in sample_fps((_Decoded(t, i) for i, t in enumerate(times)
                                                   if t + 1e-6 >= start), fps)]
            for b in range(0, len(picked), _DECORD_BATCH):
                idx = picked[b:b + _DECORD_BATCH]
                reply, payload = worker.call({"op": "decord_batch", "indices": idx}, timeout * 2)
                if "error" in reply:
                    raise self._broken(times[idx[0]], f"decord: {reply['message']}")
                batch = np.frombuffer(payload, np.uint8).reshape(reply["shape"])
                DECODE_STATS.add(frames=len(idx))
                for i, image in zip(idx, batch):
                    if k:
                        image = np.ascontiguousarray(np.rot90(image, k=k))
                    yield Frame(times[i], resize_max_side(image, max_side))
            self._check_complete(times[-1] if times else None, start)
        except WorkerTimeout:
            raise CorruptVideo(self.path, f"no answer from decord within {timeout:g} s", "decoding hung",
                               "the file is probably damaged; try backend='pyav' or re-export it") from None
        except WorkerCrashed as e:
            raise CorruptVideo(self.path, str(e), "decord crashed while decoding",
                               "try backend='pyav' or re-export the file") from None
        finally:
            worker.close()
            self._workers.remove(worker)

    def _decord_turns(self, shape: list[int] | None) -> int | None:
        """Quarter turns still needed after decord, which applies 90/270 display rotations itself."""
        if not self._k:
            return 0
        if not shape or self.info.rotation == 180:
            return None  # a half turn keeps the shape, so the shape cannot show whether decord applied it
        upright = [self.info.height, self.info.width]
        return 0 if shape[:2] == upright else self._k

    def close(self) -> None:
        for worker in list(self._workers):
            worker.close()


class IterableSource(_SourceBase):
    """A Python iterable of (t_seconds, image [H, W, 3] uint8 RGB) as a source; read once, lazily."""

    def __init__(self, items: Iterable[tuple[float, np.ndarray]], name: str = "frames"):
        self._items = iter(items)
        self._used = False
        first = next(self._items, None)
        if first is None:
            raise ValueError("the frame iterable is empty; give at least one (t, image) pair")
        self._first = _check_item(first, 0)
        h, w = self._first[1].shape[:2]
        self.info = VideoInfo(source=name, container="iterable", codec="rgb24", width=w, height=h, fps=0.0,
                              duration=None, n_frames=None, rotation=0, has_audio=False, is_live=False)

    def frames(self, fps: float | None = None, max_side: int | None = None, start: float = 0.0) -> Iterator[Frame]:
        if self._used:
            raise RuntimeError(f"{self.info.source}: an iterable source is read once")
        self._used = True
        return self._frames(fps, max_side, start)

    def _frames(self, fps, max_side, start) -> Iterator[Frame]:
        def all_frames() -> Iterator[Frame]:
            yield Frame(*self._first)
            for n, item in enumerate(self._items, 1):
                yield Frame(*_check_item(item, n))

        for frame in sample_fps((f for f in all_frames() if f.t + 1e-9 >= start), fps):
            yield Frame(frame.t, resize_max_side(frame.image, max_side))


def _check_item(item: object, n: int) -> tuple[float, np.ndarray]:
    try:
        t, image = item
    except (TypeError, ValueError):
        raise TypeError(f"frame {n}: expected a (t_seconds, image) pair, got {type(item).__name__}") from None
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"frame {n} at t={t}: expected an [H, W, 3] uint8 RGB image, got {image.dtype} "
                         f"{image.shape}")
    return float(t), image


def open_source(spec: object, limits: VideoLimits | None = None, *, live: dict | None = None,
                **kwargs: Any) -> VideoSource:
    """A VideoSource for a path, a live URL or "webcam:N" (LiveSource), or an iterable of (t, image) pairs.

    The one place that decides file vs live. `live` holds LiveSource settings (queue_size, policy, end_on_eof,
    options) and applies only when `spec` turns out to be live; other keyword arguments go to FileSource
    (backend, isolate), LiveSource or IterableSource.
    """
    if isinstance(spec, str):
        from longwatch.pipeline.live import is_live_spec

        if is_live_spec(spec) or spec.strip().startswith("webcam:"):
            from longwatch.pipeline.live import LiveSource

            return LiveSource(spec, limits=limits, **(live or {}), **kwargs)
    if isinstance(spec, (str, Path)):
        return FileSource(spec, limits, **kwargs)
    if isinstance(spec, np.ndarray) or not isinstance(spec, Iterable):
        raise TypeError(f"open_source takes a path, a stream URL, 'webcam:N' or an iterable of (t, image) pairs, "
                        f"got {type(spec).__name__}")
    return IterableSource(spec, **kwargs)
