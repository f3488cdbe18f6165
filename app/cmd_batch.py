"""`longwatch batch`: ingest a folder/glob/list of videos and answer a JSONL of questions.

Writes status.jsonl (a row per video), answers.jsonl/.csv and summary.json into --out; reruns resume.
"""

from __future__ import annotations

import argparse
import os

from longwatch.app.config import add_model_arguments

HELP = "answer a question file over many videos (local processes, or Ray with --executor ray)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", help="video files, folders, globs ('clips/*.mp4') or .txt lists of paths")
    parser.add_argument("-q", "--questions", help="JSONL of questions (id, question, video?, options?, answer?)")
    parser.add_argument("-o", "--out", required=True, help="output folder for status, answers and summary")
    parser.add_argument("--bank", help="memory bank folder (default: OUT/bank)")
    parser.add_argument("--config", help="TOML settings file: its [models] and [pipeline] tables apply to every worker")
    add_model_arguments(parser)
    parser.add_argument("--executor", choices=["local", "ray"], default=None,
                        help="local processes (default), or Ray Data (default when RAY_ADDRESS is set)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes / Ray actors (each loads the models once)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from longwatch.app.batch import BatchSettings, discover_videos, run_batch
    from longwatch.app.cli import emit
    from longwatch.app.config import config_from_args
    from longwatch.app.benchfiles import load_questions

    executor = args.executor or ("ray" if os.environ.get("RAY_ADDRESS") else "local")
    config = config_from_args(args, bank=False)  # --bank here is the batch's folder, not a bank under the home
    settings = BatchSettings.from_config(config, bank=args.bank or os.path.join(args.out, "bank"),
                                         executor=executor, workers=args.workers)
    videos = discover_videos(args.videos)
    questions = load_questions(args.questions) if args.questions else []
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if args.json:
            return
        bar = bars.get(stage) or bars.setdefault(stage, tqdm(total=total, desc=stage, unit="video" if stage == "ingest" else "q"))
        bar.n = done
        bar.refresh()

    summary = run_batch(settings, videos, questions, args.out, progress=progress)
    for bar in bars.values():
        bar.close()
    from dataclasses import asdict

    payload = asdict(summary) | {"accuracy": summary.accuracy, "out": args.out}
    acc = "" if summary.accuracy is None else f", accuracy {summary.accuracy:.1%} of {summary.scored}"
    emit(args, payload,
         f"videos: {summary.videos_ingested} ingested, {summary.videos_skipped} skipped, {summary.videos_failed} failed; "
         f"questions: {summary.questions_answered} answered, {summary.questions_skipped} skipped, "
         f"{summary.questions_failed} failed{acc}; results in {args.out}")
    return 0
