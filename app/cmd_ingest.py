"""`longwatch ingest`: decode video files once and commit a memory per clip into a bank, with a progress bar.

Re-running on the same file resumes after its last committed clip; a finished video is not redone.
"""

from __future__ import annotations

import argparse
import sys

HELP = "ingest video files into a memory bank (resumes interrupted runs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from longwatch.app.config import add_bank_arguments

    parser.add_argument("paths", nargs="+", help="video files")
    parser.add_argument("--id", dest="video_id", help="video id to store under (one file only; default: name+hash)")
    parser.add_argument("--subtitles", action="append", metavar="FILE",
                        help="subtitle file (SRT, VTT, ASS) for the video, instead of the sidecars found beside it; "
                             "repeat for several; one video only")
    parser.add_argument("--no-speech", action="store_true", help="do not transcribe the audio")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_bank_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tqdm import tqdm

    from longwatch.app.api import LongWatch
    from longwatch.app.cli import emit
    from longwatch.app.config import config_from_args
    from longwatch.memory.records import check_video_id
    from longwatch.pipeline.probe import probe
    from longwatch.pipeline.subtitles import read_sidecar

    if args.video_id is not None and len(args.paths) > 1:
        raise SystemExit("longwatch ingest: --id names one video; pass a single path with it")
    if args.subtitles and len(args.paths) > 1:
        raise SystemExit("longwatch ingest: --subtitles belong to one video; pass a single path with them")
    # Every argument is checked before the models load, so a typo, a folder, a FIFO or an audio file named .mp4
    # fails in a moment (probe checks the path before reading: a FIFO is never opened, and FFmpeg only ever
    # sees a file in its own process, under a timeout).
    if args.video_id is not None:
        check_video_id(args.video_id)
    for path in args.paths:
        probe(path)
    for subtitle_file in args.subtitles or ():
        read_sidecar(subtitle_file)  # a missing or unreadable file fails here, before the models load
    config = config_from_args(args)
    if args.no_speech:
        config.pipeline = replace(config.pipeline, speech=False)
    refs, lanes = [], []
    with LongWatch.open(config=config) as lw:
        for path in args.paths:
            bar = None
            lanes.append({})

            def progress(p, path=path) -> None:
                nonlocal bar
                lanes[-1] = p.lanes
                if args.no_progress:
                    return
                if bar is None:  # the duration is known once the source is open
                    bar = tqdm(total=round(p.duration or 0, 1) or None, unit="s", desc=str(path)[-40:],
                               file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s [{elapsed}<{remaining}]")
                bar.n = round(p.t, 1)
                bar.set_postfix(clips=p.clips_done, refresh=True)

            ref = lw.ingest(path, args.video_id, progress=progress, subtitles=args.subtitles)
            if bar is not None:
                bar.close()
            refs.append(ref)
        runtime = lw.models.describe() if lw.models is not None else ""
    lines = [f"models: {runtime}"] if runtime else []
    lines += [f"{r.video_id}: {r.clips} clips, {'%.1f s' % r.duration if r.duration is not None else 'live'}, "
             f"{r.state}" + (f" ({r.gaps_text()})" if r.gaps else "")
             + "".join(f"\n  {lane}: {what}" for lane, what in done.items()) for r, done in zip(refs, lanes)]
    emit(args, {"models": runtime, "videos": [r.to_dict() | {"lanes": done} for r, done in zip(refs, lanes)]},
         "\n".join(lines))
    return 0

