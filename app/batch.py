"""Batch question answering over a video archive: ingest every video once, answer a question file.

Workers (local processes, or Ray Data actors) decode and run the model stages and hand back one
memory per clip; this driver is the bank's single writer and commits them, so a crash anywhere
loses at most the clips in flight. Reruns skip finished videos and answered questions.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from glob import glob
from pathlib import Path
from typing import Literal

from longwatch.app.config import Config, ModelsConfig
from longwatch.app.mcq import Question, is_correct, predicted_letter
from longwatch.pipeline.config import PipelineConfig
from longwatch.memory.records import check_video_id

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp"}


@dataclass(frozen=True)
class VideoJob:
    video_id: str
    path: str


@dataclass
class BatchSettings:
    """What every worker needs to rebuild the same pipeline; plain data so it pickles to processes and actors.

    `preset` is shorthand for `models=ModelsConfig(preset=...)`; `pipeline` may be a dict of PipelineConfig fields.
    """

    bank: str
    preset: str = "offline"
    pipeline: PipelineConfig | dict = field(default_factory=PipelineConfig)
    executor: Literal["local", "ray"] = "local"
    models: ModelsConfig | None = None
    home: str | None = None  # where models are cached (the config's home); None: $LONGWATCH_HOME
    workers: int = 1
    queue_clips: int = 64  # clips in flight between workers and the writer; bounds memory (backpressure)
    threads: int = 0  # torch threads per worker; 0 = the machine's cores split across workers

    def __post_init__(self) -> None:
        if self.models is None:
            self.models = ModelsConfig(preset=self.preset)
        self.preset = self.models.preset
        if isinstance(self.pipeline, dict):
            self.pipeline = PipelineConfig(**self.pipeline)

    @classmethod
    def from_config(cls, config: Config, bank: str, **settings) -> BatchSettings:
        """The settings of a `longwatch` config file ([models], [pipeline]) for a batch into `bank`."""
        return cls(bank=bank, models=config.models, pipeline=config.pipeline, home=str(config.home), **settings)

    def pipeline_for(self, bank):
        """A Pipeline on `bank` (None: a worker's, which only encodes) with this batch's models and knobs."""
        from longwatch.pipeline.core import Pipeline

        return Pipeline(bank=bank, models=self.models.load(None if self.home is None else Path(self.home)),
                        config=self.pipeline)

    def worker_threads(self) -> int:
        # Set explicitly in both executors: Ray pins actors' thread pools to their CPU share, and equal
        # thread counts keep float reductions, hence greedy answers, identical between executors.
        return self.threads or max(1, (os.cpu_count() or 1) // max(1, self.workers))


@dataclass
class BatchSummary:
    videos_total: int = 0
    videos_ingested: int = 0
    videos_skipped: int = 0
    videos_failed: int = 0
    clips_committed: int = 0
    questions_total: int = 0
    questions_answered: int = 0
    questions_skipped: int = 0
    questions_failed: int = 0
    correct: int = 0
    scored: int = 0
    seconds_ingest: float = 0.0
    seconds_answer: float = 0.0
    executor: str = "local"

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.scored if self.scored else None


def discover_videos(specs: Iterable[str | Path]) -> list[VideoJob]:
    """Folders (recursively, video suffixes only), globs, `.txt` lists (one path a line) or files, in a stable order.

    A video's id is its file stem made safe; two files with one stem get the stem plus a short hash of the path.
    """
    paths: list[Path] = []
    for spec in specs:
        spec = str(spec)
        p = Path(spec)
        if p.is_dir():
            paths += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES)
        elif p.suffix.lower() == ".txt" and p.is_file():
            base = p.parent
            for line in p.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    q = Path(line.strip())
                    paths.append(q if q.is_absolute() else base / q)
        elif any(ch in spec for ch in "*?["):
            paths += sorted(Path(q) for q in glob(spec, recursive=True) if Path(q).is_file())
        else:
            paths.append(p)  # may not exist: it becomes a failure row, not a crash
    unique = list(dict.fromkeys(q.absolute() for q in paths))
    stems: dict[str, int] = {}
    for q in unique:
        stems[_slug(q.stem)] = stems.get(_slug(q.stem), 0) + 1
    jobs = []
    for q in unique:
        vid = _slug(q.stem)
        if stems[vid] > 1:
            vid = f"{vid}-{hashlib.sha1(str(q).encode()).hexdigest()[:6]}"
        jobs.append(VideoJob(video_id=check_video_id(vid), path=str(q)))
    return jobs


def _slug(text: str) -> str:
    """A valid video id from a file stem: no leading dot (".hidden", ".."), short enough for a hash suffix."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:100].rstrip("-.") or "video"


# ---- worker side: the same code runs in a local process or a Ray actor --------------------------------------

class IngestWorker:
    """Loads the models once and turns a video into serialized clip memories (plus one final status)."""

    def __init__(self, settings: BatchSettings):
        import torch

        torch.set_num_threads(settings.worker_threads())
        self.pipeline = settings.pipeline_for(None)

    def run(self, job: VideoJob, start_clip: int, resume=None) -> Iterator[dict]:
        """Yield {"kind": "clip", "payload": bytes} per clip, then {"kind": "status", ...}; never raises."""
        import pickle

        from longwatch.errors import CorruptVideo, LongwatchError
        from longwatch.pipeline.sources import open_source

        t = time.perf_counter()
        clips = 0
        try:
            with open_source(job.path) as source:
                try:
                    for memory in self.pipeline.encode(source, job.video_id, start_clip=start_clip, resume=resume):
                        clips += 1
                        yield {"kind": "clip", "video_id": job.video_id, "payload": pickle.dumps(memory)}
                except CorruptVideo:
                    # As in Pipeline.ingest: damage that ends the file keeps every clip before it and becomes a
                    # recorded gap; a file with nothing decodable (here or in an earlier run) is still an error.
                    if clips == 0 and start_clip == 0:
                        raise
                gaps = [[g.t0, g.t1, g.reason] for g in getattr(source, "gaps", ())]
            yield _status(job, "ok", clips=clips, seconds=time.perf_counter() - t, gaps=gaps)
        except LongwatchError as exc:
            yield _status(job, "error", clips=clips, seconds=time.perf_counter() - t,
                          error=type(exc).__name__, message=str(exc))
        except Exception as exc:  # a worker must report, not die: the batch goes on with the next file
            log.exception("unexpected failure on %s", job.path)
            yield _status(job, "error", clips=clips, seconds=time.perf_counter() - t,
                          error=type(exc).__name__, message=f"unexpected: {exc}")


def _status(job: VideoJob, status: str, **fields) -> dict:
    return {"kind": "status", "video_id": job.video_id, "path": job.path, "status": status, **fields}


def _local_worker_main(settings: BatchSettings, jobs, results) -> None:
    worker = IngestWorker(settings)
    while (item := jobs.get()) is not None:
        job, start_clip, resume = item
        results.put({"kind": "start", "video_id": job.video_id, "pid": os.getpid()})
        for event in worker.run(job, start_clip, resume):
            results.put(event)  # bounded queue: blocks while the writer catches up


def run_local(settings: BatchSettings, work: list[tuple]) -> Iterator[dict]:
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
    def reap() -> Iterator[dict]:
        for proc in [p for p in procs if not p.is_alive()]:
            procs.remove(proc)
            vid = current.pop(proc.pid, None)
            if vid in pending:
                job = pending.pop(vid)
                yield _status(job, "error", clips=0, seconds=0.0, error="WorkerCrashed",
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
            if event["kind"] == "start":
                current[event["pid"]] = event["video_id"]
                continue
            if event["kind"] == "status":
                pending.pop(event["video_id"], None)
            yield event
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def run_ray(settings: BatchSettings, work: list[tuple]) -> Iterator[dict]:
    """The same worker as Ray Data actors: models load once per actor, results stream back with backpressure."""
    from longwatch import optional

    ray = optional.require("ray")
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False)
    # Clips of one video must reach the writer in order: resume continues after the last committed clip.
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    import pickle

    rows = [{"video_id": j.video_id, "path": j.path, "start_clip": s, "resume": pickle.dumps(r)} for j, s, r in work]
    ds = ray.data.from_items(rows).map_batches(
        _RayIngest, fn_constructor_kwargs={"settings": settings}, batch_size=1,
        concurrency=max(1, settings.workers), num_cpus=settings.worker_threads(), batch_format="numpy")
    for batch in ds.iter_batches(batch_size=1, batch_format="numpy"):
        yield json.loads(batch["event"][0]) | ({"payload": batch["payload"][0]} if batch["payload"][0] else {})


class _RayIngest:
    def __init__(self, settings: BatchSettings):
        self.worker = IngestWorker(settings)

    def __call__(self, batch):
        import numpy as np

        import pickle

        for vid, path, start, resume in zip(batch["video_id"], batch["path"], batch["start_clip"], batch["resume"]):
            for event in self.worker.run(VideoJob(str(vid), str(path)), int(start), pickle.loads(resume)):
                payload = event.pop("payload", b"")
                yield {"event": np.array([json.dumps(event)]), "payload": np.array([payload], dtype=object)}


# ---- driver side ---------------------------------------------------------------------------------------------

def run_batch(settings: BatchSettings, videos: list[VideoJob], questions: list[Question], out_dir: str | Path,
              progress: Callable[[str, int, int], None] | None = None) -> BatchSummary:
    """Ingest what is not yet in the bank, answer what is not yet answered, write rows as they finish."""
    import pickle

    from longwatch.memory import MemoryBank
    from longwatch.pipeline.core import Pipeline

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary(videos_total=len(videos), questions_total=len(questions), executor=settings.executor)
    status_path, answers_path = out / "status.jsonl", out / "answers.jsonl"

    t0 = time.perf_counter()
    with MemoryBank(settings.bank) as bank:
        done = {v.video_id for v in bank.videos() if v.complete}
        work = []
        for job in videos:
            if job.video_id in done:
                summary.videos_skipped += 1
                _append(status_path, _status(job, "skipped", clips=0, seconds=0.0) | {"kind": "status"})
            else:
                resume = Pipeline.resume_point(bank, job.video_id)
                work.append((job, 0 if resume is None else resume.last_clip + 1, resume))
        runner = run_ray if settings.executor == "ray" else run_local
        finished = 0
        if work:
            writer = Pipeline.writer(bank)
            for event in runner(settings, work):
                if event["kind"] == "clip":
                    writer.commit(pickle.loads(event["payload"]))
                    summary.clips_committed += 1
                    continue
                if event["status"] == "ok" and bank.last_clip(event["video_id"]) is not None:
                    known = {(g.t0, g.t1) for g in bank.gaps(event["video_id"])}  # a rerun re-reads old damage
                    for t0, t1, reason in event.get("gaps", []):
                        if (t0, t1) not in known:
                            bank.add_gap(event["video_id"], t0, t1, reason)
                    bank.mark_complete(event["video_id"])  # also when damage cut the file short: kept, with gaps
                if event["status"] == "ok":
                    summary.videos_ingested += 1
                else:
                    summary.videos_failed += 1
                _append(status_path, event)
                finished += 1
                if progress:
                    progress("ingest", finished, len(work))
    summary.seconds_ingest = time.perf_counter() - t0

    t1 = time.perf_counter()
    answered = _answered_ids(answers_path)
    failed = {row["video_id"] for row in read_rows(status_path) if row.get("status") == "error"}
    todo = [q for q in questions if q.id not in answered]
    summary.questions_skipped = len(questions) - len(todo)
    if todo:
        for row in _answer_all(settings, todo, failed):
            _append(answers_path, row)
            if row.get("error"):
                summary.questions_failed += 1
            else:
                summary.questions_answered += 1
            if progress:
                progress("ask", summary.questions_answered + summary.questions_failed, len(todo))
    summary.seconds_answer = time.perf_counter() - t1
    for row in read_rows(answers_path):  # score the whole file, including rows from earlier runs
        if row.get("correct") is not None:
            summary.scored += 1
            summary.correct += bool(row["correct"])
    _write_csv(answers_path, out / "answers.csv")
    (out / "summary.json").write_text(json.dumps(asdict(summary) | {"accuracy": summary.accuracy}, indent=2))
    return summary


def _answer_all(settings: BatchSettings, questions: list[Question], failed_videos: set[str]) -> Iterator[dict]:
    from longwatch.memory import MemoryBank

    with MemoryBank(settings.bank, readonly=True) as bank:
        pipeline = settings.pipeline_for(bank)
        known = {v.video_id for v in bank.videos()}
        for q in questions:
            row = {"id": q.id, "video": q.video, "question": q.question}
            if q.video is not None and q.video not in known:
                why = "ingest failed" if q.video in failed_videos else "not in the bank"
                yield row | {"error": "UnknownVideo", "message": f"video {q.video!r}: {why}"}
                continue
            answer = pipeline.ask(q.prompt(), videos=None if q.video is None else [q.video])
            row |= {"answer": answer.text,
                    "citations": [asdict(c) for c in answer.citations],
                    "tokens_used": answer.tokens_used, "timings": answer.timings}
            if q.options:
                row["predicted"] = predicted_letter(answer.text, q.options)
            row["correct"] = is_correct(q, answer.text)
            yield row


def _append(path: Path, row: dict) -> None:
    # One line per finished unit, flushed: a killed run keeps every finished row and resumes after it.
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    # A run killed mid-write leaves at most one partial last line; it is ignored and redone.
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _answered_ids(path: Path) -> set[str]:
    return {row["id"] for row in read_rows(path) if not row.get("error")}


def _write_csv(answers_jsonl: Path, csv_path: Path) -> None:
    fields = ["id", "video", "question", "answer", "predicted", "correct", "citations", "tokens_used", "error", "message"]
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for row in read_rows(answers_jsonl):
            row["citations"] = "; ".join(f"{c['video']}@{c['t0']:.1f}-{c['t1']:.1f}" for c in row.get("citations", []))
            w.writerow(row)
