"""`longwatch samples make KIND OUT_DIR`: generate sample videos with known on-screen text, or the bad-input corpus.

KIND is `standard` (short clips: codecs, rotation, VFR, one frame), `long` (an hour at 640x360), `bad` (corrupt
inputs), `mcq` (a small multiple-choice set in LVBench / Video-MME / MLVU shapes for `longwatch batch`),
`benchmarks` (the same videos with one question file in each benchmark's own distributed format, for `longwatch eval`)
or `lecture` (slides, narration and subtitles with facts in only one of them, and questions by category).
"""

from __future__ import annotations

import argparse

HELP = ("generate sample videos (standard, long), the bad-input corpus (bad), a multiple-choice set (mcq), "
        "benchmark-format question files (benchmarks) or a narrated lecture with questions (lecture)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    make = sub.add_parser("make", help="write samples into a folder")
    make.add_argument("kind", choices=["standard", "long", "bad", "mcq", "benchmarks", "lecture"],
                      help="which set to generate")
    make.add_argument("out_dir", help="folder to write into (created if missing)")
    make.add_argument("--hours", type=float, default=1.0, help="length of the long sample (default 1)")
    make.add_argument("--fps", type=float, default=10.0, help="frame rate of the long sample (default 10)")
    make.add_argument("--size", default="640x360", help="WxH of the long sample (default 640x360)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--minutes", type=float, default=30.0, help="length of the lecture (default 30)")
    make.add_argument("--variant", default="srt", choices=["srt", "mkv-ass", "movtext"],
                      help="lecture subtitles: sidecar .srt, MKV with ASS, or MP4 with mov_text (default srt)")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict
    from pathlib import Path

    from longwatch.app.cli import emit

    out = Path(args.out_dir)
    if args.kind == "bad":
        from longwatch.samples.bad_inputs import make_bad_inputs

        items = make_bad_inputs(out, seed=args.seed)
        emit(args, {"bad_inputs": [asdict(i) for i in items]},
             "\n".join(f"{i.path}: {i.what} -> {i.expect}" for i in items))
        return 0
    if args.kind == "mcq":
        from longwatch.samples.mcq import make_mcq

        path = make_mcq(out, seed=args.seed)
        emit(args, {"questions": str(path), "videos": sorted(str(p) for p in out.glob("mcq*.mp4"))},
             f"{path} (run: longwatch batch {out} -q {path} -o OUT)")
        return 0
    if args.kind == "lecture":
        from longwatch.samples.lecture import make_lecture

        lecture = make_lecture(out, minutes=args.minutes, seed=args.seed, variant=args.variant)
        emit(args, {"video": lecture.video, "sidecar": lecture.sidecar, "duration": lecture.duration,
                    "questions": lecture.manifest},
             f"{lecture.video}: {lecture.duration:.0f} s lecture, {len(lecture.questions)} questions in "
             f"{lecture.manifest} (run: python benchmarks/lecture.py --minutes {args.minutes:g} --seed {args.seed})")
        return 0
    if args.kind == "benchmarks":
        from longwatch.samples.mcq import make_benchmark_set

        files = make_benchmark_set(out, seed=args.seed)
        emit(args, {"questions": {k: str(v) for k, v in files.items()}},
             "\n".join(f"{kind}: {path} (run: longwatch eval {path} --videos {out})" for kind, path in files.items()))
        return 0
    from longwatch.samples.videos import make_long, make_standard

    if args.kind == "long":
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise SystemExit(f"longwatch samples: --size must look like 640x360, got {args.size!r}") from None
        name = f"long_{args.hours:g}h_{w}x{h}.mp4"
        manifests = {"long": make_long(out / name, hours=args.hours, fps=args.fps, size=(w, h), seed=args.seed)}
    else:
        manifests = make_standard(out)
    emit(args, {k: asdict(m) for k, m in manifests.items()},
         "\n".join(f"{m.path}: {m.codec} {m.width}x{m.height}, {m.duration:.1f} s, {len(m.texts)} captions "
                   f"(manifest {m.path}.json)" for m in manifests.values()))
    return 0
