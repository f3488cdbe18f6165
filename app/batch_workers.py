"""Batch workers: local processes or Ray Data actors that encode videos and stream typed events to one writer.

The same `IngestWorker.run` serves both executors; only the transport differs (a bounded queue, or Ray rows).
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from longwatch.app.batch import BatchSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoJob:
    """One file to ingest: its bank id (video_id_for), its path, and the short name questions may use for it."""

    video_id: str
    path: str
    name: str = ""


@dataclass(frozen=True)
class WorkerStarted:
    """A local worker process took `video_id`; if the process dies, that video is the one to report."""

    video_id: str
    pid: int


@dataclass(frozen=True)
class ClipEncoded:
    """One clip's memory, pickled in the worker: the writer commits it as is."""

    video_id: str
    payload: bytes


@dataclass(frozen=True)
class VideoDone:
    """A video's outcome; `gaps` are (t0, t1, reason) ranges that could not be decoded."""

    video_id: str
    path: str
    status: str  # "ok", "error" or "skipped"
    clips: int = 0
    seconds: float = 0.0
    gaps: tuple[tuple[float, float, str], ...] = ()
    error: str | None = None  # the exception's class name, e.g. "CorruptVideo"
    message: str | None = None
    name: str = ""

    @classmethod
    def of(cls, job: VideoJob, status: str, **fields) -> VideoDone:
        return cls(job.video_id, job.path, status, name=job.name, **fields)

    def row(self) -> dict:
        """The status.jsonl row: JSON-ready, without fields that do not apply."""
        row = {"kind": "status", **asdict(self)}
        return {k: v for k, v in row.items() if v is not None}


Event = WorkerStarted | ClipEncoded | VideoDone


class IngestWorker:
    """Loads the models once and turns a video into clip memories, then one VideoDone."""

    def __init__(self, settings: BatchSettings):
        import torch

        torch.set_num_threads(settings.worker_threads())
        self.pipeline = settings.pipeline_for(None)

    def run(self, job: VideoJob, start_clip: int, resume=None) -> Iterator[ClipEncoded | VideoDone]:
        """A ClipEncoded per clip, then a VideoDone; never raises."""
        from longwatch.errors import CorruptVideo, LongwatchError
        from longwatch.pipeline.sources import open_source

        t = time.perf_counter()
        clips = 0
        try:
            with open_source(job.path) as source:
                try:
                    for memory in self.pipeline.encode(source, job.video_id, start_clip=start_clip, resume=resume):
                        clips += 1
                        yield ClipEncoded(job.video_id, pickle.dumps(memory))
                except CorruptVideo:
                    # As in Pipeline.ingest: damage that ends the file keeps every clip before it and becomes a
                    # recorded gap; a file with nothing decodable (here or in an earlier run) is still an error.
                    if clips == 0 and start_clip == 0:
                        raise
                gaps = tuple((g.t0, g.t1, g.reason) for g in getattr(source, "gaps", ()))
            yield VideoDone.of(job, "ok", clips=clips, seconds=time.perf_counter() - t, gaps=gaps)
        except LongwatchError as exc:
            yield VideoDone.of(job, "error", clips=clips, seconds=time.perf_counter() - t,
                               error=type(exc).__name__, message=str(exc))
        except Exception as exc:  # a worker must report, not die: the batch goes on with the next file
            log.exception("unexpected failure on %s", job.path)
            yield VideoDone.of(job, "error", clips=clips, seconds=time.perf_counter() - t,
                               error=type(exc).__name__, message=f"unexpected: {exc}")


def _local_worker_main(settings: BatchSettings, jobs, results) -> None:
    worker = IngestWorker(settings)
    while (item := jobs.get()) is not None:
        job, start_clip, resume = item
        results.put(WorkerStarted(job.video_id, os.getpid()))
        for event in worker.run(job, start_clip, resume):
            results.put(event)  # bounded queue: blocks while the writer catches up


def run_local(settings: BatchSettings, work: list[tuple]) -> Iterator[ClipEncoded | VideoDone]:
    """Worker processes (spawned: safe after torch is loaded) feed one writer through a bounded queue.

    A worker that dies natively (a decoder crash) gets a failure row for the video it had announced and
    is replaced, so the rest of the batch goes on. Never imports Ray.
    """
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")
    jobs = ctx.Queue()
    results = ctx.Queue(maxsize=settings.queue_clips)
    for item in work:
        jobs.put(item)

    def spawn():
        jobs.put(None)  # one stop sentinel per worker, queued behind the jobs
        proc = ctx.Process(target=_local_worker_main, args=(settings, jobs, results), daemon=True)
        proc.start()
        return proc

    procs = [spawn() for _ in range(max(1, min(settings.workers, len(work))))]
    pending = {job.video_id: job for job, *_ in work}
    current: dict[int, str] = {}  # worker pid -> video it announced

    def reap() -> Iterator[VideoDone]:
        for proc in [p for p in procs if not p.is_alive()]:
            procs.remove(proc)
            vid = current.pop(proc.pid, None)
            if vid in pending:
                yield VideoDone.of(pending.pop(vid), "error", error="WorkerCrashed",
                                   message=f"the worker died on this file (exit code {proc.exitcode}); "
                                           "it was skipped: check the file with `longwatch probe`")
            if pending:
                procs.append(spawn())

    last_reap = time.monotonic()
    try:
        while pending:
            try:
                event = results.get(timeout=0.5)
            except queue_mod.Empty:
                event = None
            if event is None or time.monotonic() - last_reap > 2.0:
                last_reap = time.monotonic()
                yield from reap()
            if event is None:
                continue
            if isinstance(event, WorkerStarted):
                current[event.pid] = event.video_id
                continue
            if isinstance(event, VideoDone):
                pending.pop(event.video_id, None)
            yield event
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def run_ray(settings: BatchSettings, work: list[tuple]) -> Iterator[ClipEncoded | VideoDone]:
    """The same worker as Ray Data actors: models load once per actor, results stream back with backpressure."""
    from longwatch import optional

    ray = optional.require("ray")
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False)
    # Clips of one video must reach the writer in order: resume continues after the last committed clip.
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    rows = [{"job": pickle.dumps(j), "start_clip": s, "resume": pickle.dumps(r)} for j, s, r in work]
    ds = ray.data.from_items(rows).map_batches(
        _RayIngest, fn_constructor_kwargs={"settings": settings}, batch_size=1,
        concurrency=max(1, settings.workers), num_cpus=settings.worker_threads(), batch_format="numpy")
    for batch in ds.iter_batches(batch_size=1, batch_format="numpy"):
        yield pickle.loads(batch["event"][0])


class _RayIngest:
    """Ray Data rows carry bytes, so events cross as pickles and become dataclasses again at the driver."""

    def __init__(self, settings: BatchSettings):
        self.worker = IngestWorker(settings)

    def __call__(self, batch):
        import numpy as np

        for job, start, resume in zip(batch["job"], batch["start_clip"], batch["resume"]):
            for event in self.worker.run(pickle.loads(job), int(start), pickle.loads(resume)):
                yield {"event": np.array([pickle.dumps(event)], dtype=object)}
