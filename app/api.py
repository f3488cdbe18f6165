"""The public Python API: `LongWatch` opens a bank with a model preset, ingests videos, watches live streams, answers.

Every model and index operation is delegated to `pipeline.core.Pipeline`; this layer only adds threads, locks and files.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from longwatch.app.config import Config, LiveConfig, load_config
from longwatch.pipeline.errors import BankError

UPLOADS = "uploads"  # the UI's uploads live inside the bank's own folder, deleted with their video


@dataclass(frozen=True)
class VideoRef:
    """A video in the bank as a user sees it."""

    video_id: str
    source: str
    duration: float | None
    clips: int
    complete: bool
    path: str | None  # a local file the player can show, when it still exists
    bytes_on_disk: int  # size of the bank's uploaded copy; memories and index are reported by LongWatch.stats()


def video_id_for(path: str | Path) -> str:
    """A readable, stable id: the file name's slug plus a fingerprint of size and head/tail bytes.

    The same file uploaded twice maps to the same id, so the second ingest resumes instead of duplicating;
    hashing only 64 KiB from each end keeps this instant for hour-long files.
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(65536))
        f.seek(max(0, size - 65536))
        h.update(f.read(65536))
    slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")[:40] or "video"
    return f"{slug}-{h.hexdigest()[:6]}"


class _Interleaved:
    """A VideoSource whose frame/clip iterators release the bank lock while they wait for the decoder.

    The pipeline runs under `lock`; between clips (while frames are being decoded or received) other
    users of the same LongWatch can ask questions, which is how a live session answers while it ingests.
    """

    def __init__(self, source, lock: threading.Lock, on_item: Callable[[object], None] | None = None):
        self._source = source
        self._lock = lock
        self._on_item = on_item
        self.halt = threading.Event()  # set to end the iteration at the next item: a clean stop for any source

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


class LongWatch:
    """One memory bank plus one loaded model preset; thread-safe, shared by every user of a process."""

    def __init__(self, root: str | Path, models, pipeline_config=None, live: LiveConfig | None = None,
                 readonly: bool | str = False):
        from longwatch.memory import MemoryBank
        from longwatch.pipeline.core import Pipeline, PipelineConfig

        self.root = Path(root)
        self.models = models
        self.live_config = live or LiveConfig()
        self.bank = MemoryBank(self.root, readonly=readonly)  # a reader works beside a running `serve`
        # Without models (listing, deleting) there is no pipeline: those commands start instantly.
        self.pipeline = None if models is None else Pipeline(self.bank, models, pipeline_config or PipelineConfig())
        # One lock serialises bank and model use; ingest loops release it while decoding (see _Interleaved).
        self._lock = threading.Lock()
        self._sessions: list[LiveSession] = []

    @classmethod
    def open(cls, root: str | Path | None = None, *, preset: str | None = None, config: Config | None = None,
             load_models: bool = True, readonly: bool | str = False) -> LongWatch:
        """Open (creating if needed) the bank at `root` (default: the config's `$LONGWATCH_HOME/banks/<bank>`)
        and load the model preset once; `load_models=False` opens the bank alone (list, delete), `readonly=True`
        reads it while another process writes, `readonly="auto"` writes unless another process already does."""
        from longwatch.pipeline.core import PipelineConfig
        from longwatch.pipeline.models import load_preset

        config = config or load_config()
        models = load_preset(preset or config.preset, home=config.home) if load_models else None
        return cls(root or config.bank_root, models, PipelineConfig(**config.pipeline), config.live, readonly)

    # -- files -----------------------------------------------------------------------------------------------
    @property
    def uploads_dir(self) -> Path:
        return self.root / UPLOADS

    def store_upload(self, path: str | Path) -> tuple[str, Path]:
        """Validate an uploaded file with probe(), then place it in the bank's uploads folder under its video id.

        A hard link where the filesystem allows (instant for GB files), else a copy; the caller's file is untouched.
        """
        from longwatch.pipeline.probe import probe

        path = Path(path)
        probe(path)
        video_id = video_id_for(path)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        dest = self.uploads_dir / f"{video_id}{path.suffix.lower()}"
        if not dest.exists():
            tmp = dest.with_name(dest.name + ".part")
            tmp.unlink(missing_ok=True)
            try:
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
            tmp.replace(dest)  # atomic: a crash never leaves a half-copied file under the final name
        return video_id, dest

    # -- ingest / ask ----------------------------------------------------------------------------------------
    def ingest(self, path: str | Path, video_id: str | None = None,
               progress: Callable[[object], None] | None = None) -> VideoRef:
        """Decode `path` once and commit a memory per clip; re-ingesting a finished video is a no-op,
        an interrupted one resumes from its last committed clip. `progress` gets pipeline.core.IngestProgress
        (clips_done, t, duration, elapsed, eta) after every committed clip."""
        from longwatch.pipeline.sources import open_source

        path = Path(path)
        video_id = video_id or video_id_for(path)
        with open_source(path) as source, self._lock:
            self._pipeline().ingest(_Interleaved(source, self._lock), video_id, progress=progress)
        return self.video(video_id)

    def ask(self, question: str, videos: list[str] | None = None):
        """Answer from the bank's memories of `videos` (default: all); returns pipeline.core.Answer."""
        if not question or not question.strip():
            raise ValueError("question is empty; type what you want to know about the video")
        with self._lock:
            return self._pipeline().ask(question.strip(), videos=videos or None)

    async def aingest(self, path: str | Path, video_id: str | None = None, progress=None) -> VideoRef:
        return await asyncio.to_thread(self.ingest, path, video_id, progress)

    async def aask(self, question: str, videos: list[str] | None = None):
        return await asyncio.to_thread(self.ask, question, videos)

    def watch(self, source, video_id: str | None = None, live: LiveConfig | None = None) -> LiveSession:
        """Start ingesting a live source (URL, "webcam:N" or an iterable of (t, image)) in the background."""
        self._pipeline()
        session = LiveSession(self, source, video_id or f"live-{time.strftime('%Y%m%d-%H%M%S')}",
                              live or self.live_config)
        self._sessions.append(session)
        session.start()
        return session

    # -- library ---------------------------------------------------------------------------------------------
    def videos(self) -> list[VideoRef]:
        with self._lock:
            records = self.bank.videos()
        return [self._ref(r) for r in records]

    def video(self, video_id: str) -> VideoRef:
        for ref in self.videos():
            if ref.video_id == video_id:
                return ref
        raise BankError(f"no video {video_id!r} in bank {self.root}; list ids with `longwatch videos`")

    def delete(self, video_id: str) -> None:
        """Forget a video's memories and remove the bank's uploaded copy (never a file the user ingested in place)."""
        self.video(video_id)
        with self._lock:
            self.bank.delete(video_id)
        if (copy := self._upload_of(video_id)) is not None:
            copy.unlink(missing_ok=True)

    def thumbnail(self, video_id: str, t: float, max_side: int = 240):
        """One decoded frame near `t` seconds for display, or None when the source file is gone or live."""
        from longwatch.pipeline.sources import open_source

        ref = self.video(video_id)
        if not ref.path:
            return None
        with open_source(ref.path) as source:
            frame = next(iter(source.frames(max_side=max_side, start=max(0.0, t))), None)
        return None if frame is None else frame.image

    def stats(self) -> dict:
        with self._lock:
            return self.bank.stats()

    def close(self) -> None:
        for session in self._sessions:
            session.stop(raise_error=False)  # its error, if any, was already visible in session.stats
        self._sessions.clear()
        with self._lock:
            self.bank.close()

    def __enter__(self) -> LongWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _pipeline(self):
        if self.pipeline is None:
            raise ValueError("this LongWatch was opened with load_models=False; it can list and delete only")
        return self.pipeline

    def _upload_of(self, video_id: str) -> Path | None:
        if not self.uploads_dir.is_dir():
            return None
        return next((p for p in self.uploads_dir.glob(f"{video_id}.*") if not p.name.endswith(".part")), None)

    def _ref(self, record) -> VideoRef:
        """The player prefers the bank's own copy; a file ingested in place is shown while it still exists."""
        copy = self._upload_of(record.video_id)
        path = copy or (Path(record.source) if record.source and Path(record.source).is_file() else None)
        return VideoRef(video_id=record.video_id, source=record.source, duration=record.duration,
                        clips=record.clips, complete=record.complete, path=None if path is None else str(path),
                        bytes_on_disk=copy.stat().st_size if copy else 0)

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


class _LiveFeed(_Interleaved):
    """Builds clips from the live source's frames itself, so it knows the time of the last frame ingest took."""

    def __init__(self, source, lock: threading.Lock):
        super().__init__(source, lock, on_item=self._took)
        self.frames_taken = 0
        self.last_t: float | None = None

    def _took(self, frame) -> None:
        self.frames_taken += 1
        self.last_t = frame.t

    def clips(self, clip_seconds, fps=None, max_side=None, start=0.0):
        from longwatch.pipeline.sampling import make_clips

        return make_clips(self.frames(fps, max_side, start), clip_seconds)


class LiveSession:
    """Ingests a live source in a background thread while `ask()` answers from what is committed so far.

    The source's reader thread fills a bounded queue (drop-oldest by default); the ingest thread drains it
    clip by clip, releasing the bank lock between frames so questions never wait for more than one clip.
    """

    def __init__(self, watch: LongWatch, spec, video_id: str, live: LiveConfig):
        from longwatch.pipeline.live import LiveSource, is_live_spec

        self.watch = watch
        self.video_id = video_id
        if is_live_spec(spec):
            policy = "drop_oldest" if live.drop == "oldest" else "drop_newest"
            self.source = LiveSource(spec, queue_size=live.queue_frames, policy=policy, end_on_eof=live.end_on_eof)
        else:
            from longwatch.pipeline.sources import open_source

            self.source = open_source(spec)  # a file or frame iterable played as a stream: nothing to drop
        self._feed = _LiveFeed(self.source, watch._lock)
        self._clips = 0
        self._until = 0.0
        self.answered_until: float | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"longwatch-watch {video_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _on_clip(self, progress) -> None:
        self._clips = progress.clips_done
        self._until = progress.t

    def _run(self) -> None:
        try:
            with self.watch._lock:
                self.watch._pipeline().ingest(self._feed, self.video_id, progress=self._on_clip)
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
        taken, last_t = self._feed.frames_taken, self._feed.last_t
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

    def ask(self, question: str):
        """Answer from the clips of this stream committed so far; citations never reach past `answered_until`,
        the end of the last clip committed when the question was taken (read under the same lock)."""
        if not question or not question.strip():
            raise ValueError("question is empty; type what you want to know about the stream")
        with self.watch._lock:
            self.answered_until = self._until
            return self.watch._pipeline().ask(question.strip(), videos=[self.video_id])

    async def aask(self, question: str):
        return await asyncio.to_thread(self.ask, question)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the stream ends by itself (or `timeout`); True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = 30.0, raise_error: bool = True) -> SessionStats:
        """Stop receiving, commit the clip in progress, and join the ingest thread; raises what killed it, if anything."""
        self._feed.halt.set()
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
