"""`longwatch eval FILE --videos DIR`: score a benchmark's question file (LVBench, Video-MME, MLVU, LongVideoBench
or our JSONL) on its videos through the batch machinery, and print accuracy tables a paper would show.

Writes one result row per question to --out (JSONL); the bank and batch files live in --work, so reruns resume.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

HELP = "score a benchmark's multiple-choice file (LVBench, Video-MME, MLVU, LongVideoBench, our JSONL) on its videos"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from longwatch.app.config import add_model_arguments

    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="question files as the benchmark ships them (JSON, JSONL, parquet), or our JSONL")
    parser.add_argument("--videos", required=True,
                        help="folder holding the videos (searched recursively); matched by id, with or without extension")
    parser.add_argument("--config", help="TOML settings file: [models] and [pipeline] tables (see app/config.py)")
    add_model_arguments(parser)
    parser.add_argument("--out", default="eval-results.jsonl", help="result rows, one per question (default: %(default)s)")
    parser.add_argument("--work", help="folder for the bank and batch files, reused by reruns (default: OUT's name + .work)")
    parser.add_argument("--workers", type=int, default=1, help="ingest worker processes (each loads the models once)")


@dataclass
class Tally:
    n: int = 0
    correct: int = 0
    no_choice: int = 0

    def add(self, row: dict) -> None:
        self.n += 1
        self.correct += bool(row["correct"])
        self.no_choice += row["predicted"] is None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None


@dataclass
class Report:
    benchmark: str
    files: list[str]
    scored: Tally = field(default_factory=Tally)
    by_task: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_duration: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    references: int = 0  # scored questions that carry time references
    reference_hits: int = 0
    unscored: int = 0  # multiple choice without a reference answer (e.g. LongVideoBench's test file)
    open_ended: int = 0
    failed: int = 0
    missing: int = 0

    def to_dict(self) -> dict:
        def tallies(d):
            return {k: asdict(v) | {"accuracy": v.accuracy} for k, v in d.items()}
        plain = {k: v for k, v in vars(self).items() if k not in ("scored", "by_task", "by_duration")}
        out = plain | {"scored": asdict(self.scored), "accuracy": self.scored.accuracy,
                       "by_task": tallies(self.by_task), "by_duration": tallies(self.by_duration)}
        out["no_choice_rate"] = self.scored.no_choice / self.scored.n if self.scored.n else None
        out["time_reference_hit_rate"] = self.reference_hits / self.references if self.references else None
        return out


def match_videos(questions, jobs):
    """Questions whose video is in `jobs` (relabelled with the job's name), and {missing video: question count}.

    A question's video matches a file by its exact name, else by its name without a video suffix against the
    file's stem ("movie101_66.mp4", "movie101_66" and a `movie101_66.mkv` file all meet). Archive-wide
    questions (no video) always match.
    """
    from longwatch.app.mcq import video_stem

    by_file = {Path(j.path).name: j for j in jobs}
    by_stem: dict[str, object] = {}
    for j in jobs:
        by_stem.setdefault(video_stem(Path(j.path).name), j)
    matched, missing = [], defaultdict(int)
    for q in questions:
        if q.video is None:
            matched.append(q)
            continue
        names = (q.video, q.extra.get("video_file"), *q.extra.get("aliases", ()))
        job = next((j for n in names if n and (j := by_file.get(n) or by_stem.get(video_stem(n)))), None)
        if job is None:
            missing[q.extra.get("video_file") or q.video] += 1
        else:
            matched.append(replace(q, video=job.name))
    return matched, dict(missing)


def result_row(q, answer: dict | None) -> dict:
    """What the user keeps per question: the reference, the response, the extracted letter and the verdicts."""
    from longwatch.app.mcq import cites_reference, predicted_letter

    row = {"id": q.id, "benchmark": q.benchmark, "video": q.video, "task_types": list(q.task_types),
           "duration": q.duration, "question": q.question, "options": list(q.options), "answer": q.answer,
           "kind": "multiple_choice" if q.options else "open_ended",
           "time_references": [list(r) for r in q.time_references], "source": q.source}
    if answer is None or answer.get("error"):
        return row | {"status": "failed", "error": (answer or {}).get("message", "not answered")}
    row |= {"status": "answered", "response": answer["answer"], "citations": answer.get("citations", [])}
    if q.options:
        row["predicted"] = predicted_letter(answer["answer"], q.options)
        row["correct"] = None if q.answer is None else row["predicted"] == q.answer
        row["time_hit"] = cites_reference(row["citations"], q) if q.time_references else None
    return row


def tally(benchmark: str, files: list[str], rows: list[dict], missing: int) -> Report:
    report = Report(benchmark=benchmark, files=files, missing=missing)
    for row in rows:
        if row["status"] != "answered":
            report.failed += 1
        elif row["kind"] == "open_ended":
            report.open_ended += 1
        elif row["correct"] is None:
            report.unscored += 1
        else:
            report.scored.add(row)
            for task in row["task_types"] or ["(none)"]:
                report.by_task[task].add(row)
            report.by_duration[row["duration"] or "(none)"].add(row)
            if row["time_references"]:
                report.references += 1
                report.reference_hits += bool(row["time_hit"])
    return report


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def format_reports(reports: list[Report], missing: dict[str, int], bad_rows: list, preset: str) -> str:
    from longwatch.app.mcq import DURATION_ORDER

    def order(label: str) -> tuple:
        return (DURATION_ORDER.index(label) if label in DURATION_ORDER else len(DURATION_ORDER), label)

    lines = []
    for r in reports:
        lines += [f"{r.benchmark} ({', '.join(r.files)}), preset {preset}: accuracy {_pct(r.scored.accuracy)}% "
                  f"of {r.scored.n} scored", "",
                  "| split | n | accuracy % | no choice % |", "|---|---|---|---|"]
        groups = [("overall", {"all": r.scored})] + [("task", r.by_task), ("duration", r.by_duration)]
        for kind, tallies in groups:
            for label in sorted(tallies, key=order if kind == "duration" else str):
                t = tallies[label]
                name = "overall" if kind == "overall" else f"{kind}: {label}"
                lines.append(f"| {name} | {t.n} | {_pct(t.accuracy)} | {_pct(t.no_choice / t.n if t.n else None)} |")
        if r.references:
            lines.append(f"\ntime-reference hit rate: {_pct(r.reference_hits / r.references)}% of {r.references} "
                         "(a citation overlapping any reference range)")
        notes = [f"{r.open_ended} open-ended answered (not scored)" if r.open_ended else "",
                 f"{r.unscored} without a reference answer (not scored)" if r.unscored else "",
                 f"{r.failed} failed (video did not ingest)" if r.failed else "",
                 f"{r.missing} not asked (video missing)" if r.missing else ""]
        if any(notes):
            lines.append("; ".join(n for n in notes if n))
        lines.append("")
    buckets = sorted({d for r in reports for d in r.by_duration}, key=order)
    lines += ["Summary (accuracy %, scored multiple choice):", "",
              "| benchmark | n | overall | " + " | ".join(buckets) + " |", "|---" * (3 + len(buckets)) + "|"]
    for r in reports:
        cells = [_pct(r.by_duration[b].accuracy) if b in r.by_duration else "–" for b in buckets]
        lines.append(f"| {r.benchmark} | {r.scored.n} | {_pct(r.scored.accuracy)} | " + " | ".join(cells) + " |")
    if missing:
        lines.append(f"\nmissing videos ({len(missing)}): " + ", ".join(f"{v} ({n} q)" for v, n in sorted(missing.items())))
    if bad_rows:
        lines.append(f"\nbad rows skipped ({len(bad_rows)}):")
        lines += [f"  {b}" for b in bad_rows]
    return "\n".join(lines)


def _claim(work: Path, models: dict) -> None:
    """Reruns resume from `work`; answers of another preset or pipeline there would be scored as this one's."""
    from longwatch.errors import LongwatchError

    stamp = work / "eval-settings.json"
    if stamp.exists():
        before = json.loads(stamp.read_text(encoding="utf-8"))
        if before != models:
            raise LongwatchError(f"{work} holds answers made with {before}, not {models}; pass another --work "
                                 "(or --out) or delete that folder")
        return
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(models), encoding="utf-8")


def _progress():
    """Progress bars on stderr: an eval over hours of video is otherwise silent for a long time."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage) or bars.setdefault(stage, tqdm(total=total, desc=stage, leave=False,
                                                             unit="video" if stage == "ingest" else "q"))
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
    return update


def run(args: argparse.Namespace) -> int:
    from longwatch.app.batch import BatchSettings, discover_videos, read_rows, run_batch
    from longwatch.app.benchfiles import BadRow, load_question_file
    from longwatch.app.cli import emit
    from longwatch.app.config import config_from_args, pipeline_overrides
    from longwatch.errors import LongwatchError

    try:
        config = config_from_args(args, bank=False)
    except (OSError, ValueError, TypeError) as exc:  # tomllib's decode error is a ValueError
        raise LongwatchError(f"config {args.config}: {exc}") from None
    videos_dir = Path(args.videos)
    if not videos_dir.is_dir():
        raise LongwatchError(f"--videos {videos_dir}: not a folder; pass the folder holding the benchmark's videos")
    loaded = [load_question_file(f) for f in args.files]
    bad_rows = [b for lf in loaded for b in lf.bad_rows]
    questions, seen = [], set()
    for lf in loaded:
        for q in lf.questions:
            if q.id in seen:  # MLVU ids carry their file's name; a clash means one file was given twice
                bad_rows.append(BadRow(lf.path, q.source[len(Path(lf.path).name) + 1:],
                                       f"question id {q.id!r} is used by an earlier file too"))
                continue
            seen.add(q.id)
            questions.append(q)

    jobs = discover_videos([videos_dir])
    matched, missing = match_videos(questions, jobs)
    needed = {q.video for q in matched}
    wanted_jobs = [j for j in jobs if j.name in needed] if None not in needed else jobs
    names = {j.video_id: j.name for j in jobs}  # reports speak the benchmark's video ids, not the bank's
    out = Path(args.out)
    work = Path(args.work) if args.work else out.with_name(out.stem + ".work")
    settings = BatchSettings.from_config(config, bank=str(work / "bank"), workers=args.workers)
    _claim(work, {"preset": config.preset, "pipeline": pipeline_overrides(config.pipeline)})
    # Batch scores free text by substring; here open-ended rows are reported, never scored.
    to_ask = [q if q.options else replace(q, answer=None) for q in matched]
    if to_ask:
        run_batch(settings, wanted_jobs, to_ask, work, progress=None if args.json else _progress())
    answers: dict[str, dict] = {}
    for row in read_rows(work / "answers.jsonl"):  # a later good answer replaces an earlier failure
        if not row.get("error") or row["id"] not in answers:
            cited = [c | {"video": names.get(c["video"], c["video"])} for c in row.get("citations", [])]
            answers[row["id"]] = row | {"citations": cited}
    results = [result_row(q, answers.get(q.id)) for q in matched]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, default=str) + "\n" for r in results), encoding="utf-8")

    missing_by_bench: dict[str, int] = defaultdict(int)
    matched_ids = {q.id for q in matched}
    for q in questions:
        if q.id not in matched_ids:
            missing_by_bench[q.benchmark] += 1
    reports = []
    for bench in dict.fromkeys(lf.format for lf in loaded):
        files = [Path(lf.path).name for lf in loaded if lf.format == bench]
        reports.append(tally(bench, files, [r for r in results if r["benchmark"] == bench],
                             missing_by_bench[bench]))
    payload = {"preset": config.preset, "out": str(out), "work": str(work),
               "reports": [r.to_dict() for r in reports], "missing_videos": missing,
               "bad_rows": [asdict(b) for b in bad_rows]}
    emit(args, payload, format_reports(reports, missing, bad_rows, config.preset) + f"\n\nresults in {out}")
    return 0
