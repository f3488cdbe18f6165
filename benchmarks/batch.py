"""Batch throughput: videos per hour through the local executor and through Ray Data, in one run.

Generated videos, the same preset and pipeline settings for both executors; prints the ratio. Run:
    .venv/bin/python benchmarks/batch.py --videos 6 --seconds 60 --preset tiny
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def make_archive(root: Path, n: int, seconds: float) -> Path:
    from longwatch.samples.videos import make_sample

    for i in range(n):
        make_sample(root / f"v{i}.mp4", duration=seconds, fps=5, size=(640, 360), seed=i,
                    texts=[(seconds * 0.4, seconds * 0.5, f"SLIDE {i}: budget 42 units")])
    (root / "q.jsonl").write_text("\n".join(json.dumps({"id": f"q{i}", "video": f"v{i}",
                                                        "question": "What does the slide say?"}) for i in range(n)))
    return root


def timed(executor: str, archive: Path, out: Path, preset: str, workers: int, pipeline: dict) -> dict:
    from longwatch.app.batch import BatchSettings, discover_videos, run_batch
    from longwatch.app.benchfiles import load_questions

    settings = BatchSettings(bank=str(out / "bank"), preset=preset, executor=executor, workers=workers,
                             pipeline=pipeline)
    t = time.perf_counter()
    summary = run_batch(settings, discover_videos([archive]), load_questions(archive / "q.jsonl"), out)
    wall = time.perf_counter() - t
    assert summary.videos_failed == 0, f"{executor}: {summary.videos_failed} videos failed"
    return {"executor": executor, "wall_s": wall, "ingest_s": summary.seconds_ingest,
            "answer_s": summary.seconds_answer, "videos": summary.videos_ingested,
            "videos_per_hour": 3600 * summary.videos_ingested / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each generated video")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--ocr", action="store_true", help="run the on-screen text lane too")
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternate local/ray this many times (ray first in odd rounds) and keep each one's best")
    args = ap.parse_args()
    pipeline = {"ocr": args.ocr}
    import ray

    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        archive = make_archive(tmp / "archive", args.videos, args.seconds)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            for r in range(args.rounds):
                # Alternating order keeps a noisy neighbour or a cold cache from favouring one executor.
                for executor in (("local", "ray") if r % 2 == 0 else ("ray", "local")):
                    run = timed(executor, archive, tmp / f"{executor}{r}", args.preset, args.workers, pipeline)
                    if executor not in best or run["wall_s"] < best[executor]["wall_s"]:
                        best[executor] = run
        finally:
            ray.shutdown()
    local, remote = best["local"], best["ray"]
    video_hours = args.videos * args.seconds / 3600
    print(f"{args.videos} videos x {args.seconds:.0f} s, preset {args.preset}, workers {args.workers}, ocr {args.ocr}, "
          f"best of {args.rounds} alternating rounds")
    print("| executor | wall s | ingest s | answer s | videos/hour | video-hours per wall-hour |")
    print("|---|---|---|---|---|---|")
    for r in (local, remote):
        print(f"| {r['executor']} | {r['wall_s']:.1f} | {r['ingest_s']:.1f} | {r['answer_s']:.1f} | "
              f"{r['videos_per_hour']:.0f} | {video_hours * 3600 / r['wall_s']:.1f} |")
    print(f"ray / local throughput ratio: {local['wall_s'] / remote['wall_s']:.2f}")


if __name__ == "__main__":
    main()
