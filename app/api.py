"""The public Python API: `LongWatch` opens a bank with a model preset, ingests videos, watches live streams, answers.

Every model and index operation is delegated to `pipeline.core.Pipeline`; this layer only adds threads, locks and files.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from longwatch.app.config import VIDEO_SUFFIXES, Config, LiveConfig, load_config
from longwatch.app.live_session import LiveSession, SessionStats, _Interleaved, _LiveFeed
from longwatch.app.video_ids import video_id_for
from longwatch.memory.records import EVIDENCE_KINDS, BankInputError, Gap, check_video_id
from longwatch.errors import BankError, VideoError

# How each kind of evidence is named to people: transcripts, the UI's chips and filters.

UPLOADS = "uploads"  # the UI's uploads live inside the bank's own folder, deleted with their video
# An upload is stored as uploads/<video id><suffix>, the suffix one of these: its copy is then found by exact
# names built from a validated id, never by a pattern that a crafted id could widen to other files.
UPLOAD_SUFFIXES = (*VIDEO_SUFFIXES, ".video")


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
    gaps: tuple[Gap, ...] = ()  # time ranges that could not be decoded: answers never cover them
    state: str = ""  # "complete", "complete with gaps", "partial" or "partial with gaps"

    def to_dict(self) -> dict:
        """Plain JSON-ready values (gaps as a list of {t0, t1, reason})."""
        return asdict(self) | {"gaps": [asdict(g) for g in self.gaps]}

    def gaps_text(self) -> str:
        """The gaps for people, e.g. `not decoded: [00:01:02–00:01:10] damaged packets`; empty without gaps."""
        from longwatch.pipeline.answer import format_span

        if not self.gaps:
            return ""
        return "not decoded: " + ", ".join(f"{format_span(g.t0, g.t1)} {g.reason}" for g in self.gaps)


def check_kinds(kinds) -> tuple[str, ...] | None:
    """Evidence kinds as given by a caller (a list, or one comma-separated string as typed on a command line);
    None or empty means every kind. An unknown kind is refused with the list of known ones."""
    if not kinds:
        return None
    if isinstance(kinds, str):
        kinds = kinds.split(",")
    chosen = tuple(dict.fromkeys(k.strip() for k in kinds if k.strip()))
    unknown = [k for k in chosen if k not in EVIDENCE_KINDS]
    if unknown:
        raise BankInputError(f"unknown evidence kind {', '.join(map(repr, unknown))}; choose from "
                             f"{', '.join(EVIDENCE_KINDS)} (e.g. --kinds speech,subtitle)")
    return chosen or None


class LongWatch:
    """One memory bank plus one loaded model preset; thread-safe, shared by every user of a process."""

    def __init__(self, root: str | Path, models, pipeline_config=None, live: LiveConfig | None = None,
                 readonly: bool | str = False):
        from longwatch.memory import MemoryBank
        from longwatch.pipeline.config import PipelineConfig
        from longwatch.pipeline.core import Pipeline

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
        from dataclasses import replace

        config = config or load_config()
        models_config = config.models if preset is None else replace(config.models, preset=preset)
        models = models_config.load(config.home) if load_models else None
        return cls(root or config.bank_root, models, config.pipeline, config.live, readonly)

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
        suffix = path.suffix.lower() if path.suffix.lower() in UPLOAD_SUFFIXES else UPLOAD_SUFFIXES[-1]
        dest = self.uploads_dir / f"{video_id}{suffix}"
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
               progress: Callable[[object], None] | None = None, *,
               subtitles: list[str | Path] | None = None) -> VideoRef:
        """Decode `path` once and commit a memory per clip, with its evidence (on-screen rows, speech, subtitles);
        re-ingesting a finished video is a no-op, an interrupted one resumes from its last committed clip.
        `progress` gets pipeline.core.IngestProgress (clips_done, t, duration, elapsed, eta, and `lanes`: what the
        speech and subtitle lanes did, e.g. "no audio stream") after every committed clip. `subtitles`: subtitle
        files (SRT, VTT, ASS) to read instead of the sidecars found beside `path`."""
        from longwatch.pipeline.probe import check_path
        from longwatch.pipeline.sources import open_source

        # Regular files only, before a byte is read: the id hash below would block forever on a FIFO.
        path = check_path(path)[0]
        video_id = video_id_for(path) if video_id is None else check_video_id(video_id)
        with open_source(path) as source, self._lock:
            self._pipeline().ingest(_Interleaved(source, self._lock), video_id, progress=progress,
                                    subtitles=subtitles)
        return self.video(video_id)

    def ingest_stream(self, source, video_id: str, *, progress: Callable[[object], None] | None = None,
                      on_frame: Callable[[object], None] | None = None, halt: threading.Event | None = None) -> None:
        """Ingest an opened source (a live stream, a file played as one, frames) clip by clip, releasing the bank
        lock while frames arrive so questions are answered meanwhile. `on_frame` sees every frame taken;
        setting `halt` ends the stream after the clip in progress, which is still committed."""
        check_video_id(video_id)
        feed = _LiveFeed(source, self._lock, on_item=on_frame, halt=halt)
        with self._lock:
            self._pipeline().ingest(feed, video_id, progress=progress)

    def ask(self, question: str, videos: list[str] | None = None, *, at_start: Callable[[], None] | None = None,
            on_quotes: Callable[[list], None] | None = None):
        """Answer from the bank's memories of `videos` (default: all); returns pipeline.core.Answer.

        `at_start` runs under the bank lock just before answering, while the bank holds exactly what the answer
        reads: a live session records there how far its stream was committed. `on_quotes(quotes)` runs as soon as
        the supporting quotes (QuotedEvidence: kind, video, t0, t1, text) are known, before a language model
        writes its sentence, so they can be shown at once."""
        if not question or not question.strip():
            raise ValueError("question is empty; type what you want to know about the video")
        for video_id in videos or ():
            check_video_id(video_id)
        with self._lock:
            if at_start is not None:
                at_start()
            return self._pipeline().ask(question.strip(), videos=videos or None, on_quotes=on_quotes)

    async def aingest(self, path: str | Path, video_id: str | None = None, progress=None) -> VideoRef:
        return await asyncio.to_thread(self.ingest, path, video_id, progress)

    async def aask(self, question: str, videos: list[str] | None = None):
        return await asyncio.to_thread(self.ask, question, videos)

    def watch(self, source, video_id: str | None = None, live: LiveConfig | None = None, *,
              untrusted: bool = False) -> LiveSession:
        """Start ingesting a live source (URL, "webcam:N", a file played as a stream, or an iterable of (t, image))
        in the background.

        The Python API trusts its caller, the program's owner: any source is opened, local files and tcp:
        included. A source typed by someone else (the web UI's Live tab) must pass `untrusted=True`: then the
        live config's allowed_schemes / allow_webcam / allow_local decide before anything is opened or read,
        and FFmpeg is held to the stream's own network protocols (LiveConfig.check_source).
        """
        live = live or self.live_config
        options = live.check_source(source) if untrusted else None
        video_id = f"live-{time.strftime('%Y%m%d-%H%M%S')}" if video_id is None else check_video_id(video_id)
        self._pipeline()
        try:
            session = LiveSession(self, source, video_id, live, options)
        except VideoError as e:
            if untrusted and options is None:  # a local source the owner allowed: its bytes are not this user's
                raise type(e)(e.source, "details withheld from remote users", e.problem, e.hint) from None
            raise
        self._sessions.append(session)
        session.start()
        return session

    # -- library ---------------------------------------------------------------------------------------------
    def videos(self) -> list[VideoRef]:
        with self._lock:
            records = self.bank.videos()
        uploads = self._upload_names()
        return [self._ref(r, uploads) for r in records]

    def video(self, video_id: str) -> VideoRef:
        check_video_id(video_id)
        for ref in self.videos():
            if ref.video_id == video_id:
                return ref
        raise BankError(f"no video {video_id!r} in bank {self.root}; list ids with `longwatch videos`")

    def delete(self, video_id: str) -> None:
        """Forget a video's memories and remove the bank's uploaded copy (never a file the user ingested in place)."""
        self.video(video_id)  # validates the id: nothing below may be reached by a path or a pattern
        with self._lock:
            self.bank.delete(video_id)
        if (copy := self._upload_of(video_id, self._upload_names())) is not None:
            copy.unlink(missing_ok=True)

    def thumbnail(self, video_id: str, t: float, max_side: int = 240):
        """One decoded frame near `t` seconds for display, or None when the source file is gone or live."""
        return frame_at(self.video(video_id).path, t, max_side)

    # -- evidence timeline -----------------------------------------------------------------------------------
    def evidence(self, video_id: str, kinds: list[str] | tuple[str, ...] | None = None, query: str | None = None,
                 time_range: tuple[float, float] | None = None) -> list:
        """A video's stored evidence (memory.records.EvidenceRecord: speech, subtitle, ocr, caption) in time order.

        `query` filters like a transcript's search box: a line stays when its text or context contains every word
        of the query (case-insensitive), so the timeline keeps its order; ranked retrieval is `ask`'s job."""
        self.video(video_id)  # validates the id; an unknown one is a BankError naming the command that lists ids
        kinds = check_kinds(kinds)
        with self._lock:
            records = self.bank.evidence(video_id, kinds=kinds, time_range=time_range)
        words = (query or "").casefold().split()
        if not words:
            return records
        return [r for r in records if all(w in f"{r.text} {r.context}".casefold() for w in words)]

    def evidence_counts(self, video_id: str) -> dict[str, int]:
        """How many pieces of evidence of each kind the bank holds for `video_id` (every kind, zeros included)."""
        self.video(video_id)
        with self._lock:
            return self.bank.evidence_counts(video_id)

    def answers_from(self) -> tuple[str, ...]:
        """What answers can draw on with the loaded preset and pipeline settings: evidence kinds the ingest writes
        ("speech", "subtitle", "ocr", "caption") plus "visual" when the answerer reads the video's frames.
        A UI promises exactly these; a bank opened without models answers nothing."""
        if self.pipeline is None:
            return ()
        config, models = self.pipeline.config, self.models
        lanes = {"speech": getattr(config, "speech", True), "subtitle": getattr(config, "subtitles", True),
                 "ocr": config.ocr, "caption": models.svlm is not None}
        sees = not models.answerer.is_text_only
        return tuple(kind for kind, on in lanes.items() if on) + (("visual",) if sees else ())

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

    def _upload_names(self) -> set[str]:
        """The uploads folder's file names, listed once per call rather than once per video."""
        try:
            return {e.name for e in os.scandir(self.uploads_dir) if e.is_file(follow_symlinks=False)}
        except FileNotFoundError:
            return set()

    def _upload_of(self, video_id: str, names: set[str]) -> Path | None:
        """The bank's copy of `video_id`: one of a fixed set of exact names inside the uploads folder."""
        check_video_id(video_id)
        name = next((video_id + s for s in UPLOAD_SUFFIXES if video_id + s in names), None)
        return None if name is None else self.uploads_dir / name

    def _ref(self, record, uploads: set[str]) -> VideoRef:
        """The player prefers the bank's own copy; a file ingested in place is shown while it still exists."""
        copy = self._upload_of(record.video_id, uploads)
        path = copy or (Path(record.source) if record.source and Path(record.source).is_file() else None)
        gaps = tuple(record.gaps)
        state = ("complete" if record.complete else "partial") + (" with gaps" if gaps else "")
        return VideoRef(video_id=record.video_id, source=record.source, duration=record.duration,
                        clips=record.clips, complete=record.complete, path=None if path is None else str(path),
                        bytes_on_disk=copy.stat().st_size if copy else 0, gaps=gaps, state=state)


__all__ = ["LongWatch", "VideoRef", "LiveSession", "SessionStats", "video_id_for"]


def frame_at(path: str | None, t: float, max_side: int = 240):
    """One decoded frame near `t` seconds of the file at `path` (a VideoRef's), or None without a file (a live
    source). It reads only the file, never the bank, so it runs while an answer holds the bank."""
    from longwatch.pipeline.sources import open_source

    if not path:
        return None
    with open_source(path) as source:
        frame = next(iter(source.frames(max_side=max_side, start=max(0.0, t))), None)
    return None if frame is None else frame.image
