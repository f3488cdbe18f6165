"""Batch question answering over a video archive: ingest every video once, answer a question file.

Workers (batch_workers: local processes or Ray Data actors) decode and run the model stages and hand back one
memory per clip; this driver is the bank's single writer and commits them, so a crash anywhere loses at most
the clips in flight. Reruns skip finished videos (named as `longwatch ingest` names them) and answered questions.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from glob import glob
from pathlib import Path
from typing import Literal

from longwatch.app.batch_workers import ClipEncoded, VideoDone, VideoJob, run_local, run_ray
from longwatch.app.config import VIDEO_SUFFIXES, Config, ModelsConfig
from longwatch.app.mcq import Question, is_correct, predicted_letter
from longwatch.app.video_ids import slug, video_id_for
from longwatch.pipeline.config import PipelineConfig

log = logging.getLogger(__name__)

__all__ = ["BatchSettings", "BatchSummary", "VideoJob", "discover_videos", "read_rows", "run_batch"]


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

    A video's id is `video_id_for` (as `longwatch ingest` names it), so a file ingested either way is one video;
    files with the same bytes are one job. Its name, which questions may use, is its file stem made safe; two files
    with one stem get the stem plus a short hash of the path.
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
        stems[_name(q.stem)] = stems.get(_name(q.stem), 0) + 1
    jobs: dict[str, VideoJob] = {}
    for q in unique:
        name = _name(q.stem)
        path_hash = hashlib.sha1(str(q).encode()).hexdigest()[:6]
        if stems[name] > 1:
            name = f"{name}-{path_hash}"
        # Only a regular file is read for its id (a FIFO would block); anything else becomes a failure row.
        vid = video_id_for(q) if _is_file(q) else f"{slug(q.stem)}-{path_hash}"
        jobs.setdefault(vid, VideoJob(video_id=vid, path=str(q), name=name))
    return list(jobs.values())


def _name(stem: str) -> str:
    """A file's name for questions: its stem with case and '_' kept, as benchmark files spell their video ids."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")[:100].rstrip("-.") or "video"


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode) and os.access(path, os.R_OK)
    except OSError:
        return False


# ---- driver side ---------------------------------------------------------------------------------------------

def run_batch(settings: BatchSettings, videos: list[VideoJob], questions: list[Question], out_dir: str | Path,
              progress: Callable[[str, int, int], None] | None = None) -> BatchSummary:
    """Ingest what is not yet in the bank, answer what is not yet answered, write rows as they finish."""
    import pickle

    from longwatch.memory import Gap, MemoryBank
    from longwatch.pipeline.core import Pipeline
    from longwatch.pipeline.ingest import record_gaps

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
                _append(status_path, VideoDone.of(job, "skipped").row())
            else:
                resume = Pipeline.resume_point(bank, job.video_id)
                work.append((job, 0 if resume is None else resume.last_clip + 1, resume))
        runner = run_ray if settings.executor == "ray" else run_local
        finished = 0
        if work:
            writer = Pipeline.writer(bank)
            for event in runner(settings, work):
                if isinstance(event, ClipEncoded):
                    writer.commit(pickle.loads(event.payload))
                    summary.clips_committed += 1
                    continue
                if event.status == "ok" and bank.last_clip(event.video_id) is not None:
                    record_gaps(bank, event.video_id, (Gap(*g) for g in event.gaps))
                    bank.mark_complete(event.video_id)  # also when damage cut the file short: kept, with gaps
                if event.status == "ok":
                    summary.videos_ingested += 1
                else:
                    summary.videos_failed += 1
                _append(status_path, event.row())
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
        names = {job.name: job.video_id for job in videos}
        for row in _answer_all(settings, todo, failed, names):
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


def _answer_all(settings: BatchSettings, questions: list[Question], failed_videos: set[str],
                names: dict[str, str]) -> Iterator[dict]:
    """Answer rows; a question's video may be a bank id or the name of one of this batch's files."""
    from longwatch.memory import MemoryBank

    with MemoryBank(settings.bank, readonly=True) as bank:
        pipeline = settings.pipeline_for(bank)
        known = {v.video_id for v in bank.videos()}
        for q in questions:
            row = {"id": q.id, "video": q.video, "question": q.question}
            video_id = None if q.video is None else names.get(q.video, q.video)
            if video_id is not None and video_id not in known:
                why = "ingest failed" if video_id in failed_videos else "not in the bank"
                yield row | {"error": "UnknownVideo", "message": f"video {q.video!r}: {why}"}
                continue
            if video_id is not None and video_id != q.video:
                row["video_id"] = video_id
            answer = pipeline.ask(q.prompt(), videos=None if video_id is None else [video_id])
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
