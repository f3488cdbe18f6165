"""Live sessions: a stream ingested in a background thread while questions are answered from what is committed.

`LongWatch.watch()` creates them and they use only LongWatch's public methods; `_Interleaved` (used by LongWatch)
lets any ingest loop release the bank lock while it waits for frames.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from longwatch.app.config import LiveConfig

if TYPE_CHECKING:
    from longwatch.app.api import LongWatch


class _Interleaved:
    """A VideoSource whose frame/clip iterators release the bank lock while they wait for the decoder.

    The pipeline runs under `lock`; between clips (while frames are being decoded or received) other
    users of the same LongWatch can ask questions, which is how a live session answers while it ingests.
    """

    def __init__(self, source, lock: threading.Lock, on_item: Callable[[object], None] | None = None,
                 halt: threading.Event | None = None):
        self._source = source
        self._lock = lock
        self._on_item = on_item
        self.halt = halt or threading.Event()  # set: the iteration ends at the next item, a clean stop for any source

    def __getattr__(self, name: str):
        return getattr(self._source, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._source.close()

    def frames(self, *args, **kwargs):
        return self._released(self._source.frames(*args, **kwargs))

    def clips(self, *args, **kwargs):
        return self._released(self._source.clips(*args, **kwargs))

    def _released(self, items):
        while not self.halt.is_set():
            self._lock.release()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                self._lock.acquire()
            if self._on_item is not None:
                self._on_item(item)
            yield item


class _LiveFeed(_Interleaved):
    """Builds clips from the source's frames itself, so `on_item` sees every frame ingest takes (its time)."""

    def clips(self, clip_seconds, fps=None, max_side=None, start=0.0):
        from longwatch.pipeline.sampling import make_clips

        return make_clips(self.frames(fps, max_side, start), clip_seconds)


@dataclass(frozen=True)
class SessionStats:
    """A live session at one instant. Times are stream seconds from the session's first frame.

    lag_seconds: the live edge (newest frame received) minus `ingested_until` (end of the last committed clip),
    i.e. how much of what has already happened cannot be asked about yet.
    """

    video_id: str
    running: bool
    frames_received: int
    frames_dropped: int  # discarded by the bounded queue because ingest was slower than the stream
    frames_ingested: int
    clips_committed: int
    ingested_until: float
    live_edge: float
    lag_seconds: float
    reconnects: int
    ended_reason: str | None  # the live source's: "stopped", "eof", "gave_up", "error"; None while running
    error: str | None


class LiveSession:
    """Ingests a live source in a background thread while `ask()` answers from what is committed so far.

    The source's reader thread fills a bounded queue (drop-oldest by default); the ingest thread drains it
    clip by clip, releasing the bank lock between frames so questions never wait for more than one clip.
    """

    def __init__(self, watch: LongWatch, spec, video_id: str, live: LiveConfig,
                 options: dict[str, str] | None = None):
        from longwatch.pipeline.sources import open_source

        self.watch = watch
        self.video_id = video_id
        # open_source decides file vs live; a file or frame iterable played as a stream has nothing to drop.
        policy = "drop_oldest" if live.drop == "oldest" else "drop_newest"
        self.source = open_source(spec, live=dict(queue_size=live.queue_frames, policy=policy,
                                                  end_on_eof=live.end_on_eof, options=options))
        self._halt = threading.Event()
        self._frames_taken = 0
        self._last_t: float | None = None
        self._clips = 0
        self._until = 0.0
        self.answered_until: float | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"longwatch-watch {video_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _took(self, frame) -> None:
        self._frames_taken += 1
        self._last_t = frame.t

    def _on_clip(self, progress) -> None:
        self._clips = progress.clips_done
        self._until = progress.t

    def _mark_answered_until(self) -> None:
        self.answered_until = self._until

    def _run(self) -> None:
        try:
            self.watch.ingest_stream(self.source, self.video_id, progress=self._on_clip, on_frame=self._took,
                                     halt=self._halt)
        except BaseException as e:  # kept for stop()/stats: a dead stream must not kill the process silently
            self._error = e
        finally:
            self.source.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def stats(self) -> SessionStats:
        src = getattr(self.source, "stats", None)  # only live sources count drops and reconnects
        taken, last_t = self._frames_taken, self._last_t
        edge = (last_t or 0.0) + (src.lag_seconds if src else 0.0)
        until = self._until
        return SessionStats(
            video_id=self.video_id, running=self.running,
            frames_received=src.frames_received if src else taken,
            frames_dropped=src.frames_dropped if src else 0, frames_ingested=taken,
            clips_committed=self._clips, ingested_until=until, live_edge=edge,
            lag_seconds=max(0.0, edge - until) if last_t is not None else 0.0,
            reconnects=src.reconnects if src else 0, ended_reason=src.ended_reason if src else None,
            error=None if self._error is None else f"{type(self._error).__name__}: {self._error}")

    def ask(self, question: str, on_quotes: Callable[[list], None] | None = None):
        """Answer from the clips of this stream committed so far; citations never reach past `answered_until`,
        the end of the last clip committed when the question was taken (read under the same lock).
        `on_quotes` gets the supporting quotes before a sentence is written, as in LongWatch.ask."""
        if not question or not question.strip():
            raise ValueError("question is empty; type what you want to know about the stream")
        return self.watch.ask(question, videos=[self.video_id], at_start=self._mark_answered_until,
                              on_quotes=on_quotes)

    async def aask(self, question: str):
        return await asyncio.to_thread(self.ask, question)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the stream ends by itself (or `timeout`); True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = 30.0, raise_error: bool = True) -> SessionStats:
        """Stop receiving, commit the clip in progress, and join the ingest thread; raises what killed it, if anything."""
        self._halt.set()
        stop = getattr(self.source, "stop", None)
        if stop is not None:
            stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"live session {self.video_id} did not finish its current clip within {timeout:g} s")
        if self._error is not None and raise_error:
            raise self._error
        return self.stats

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
