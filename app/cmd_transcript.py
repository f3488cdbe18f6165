"""`longwatch transcript VIDEO`: what is said (Whisper) or what the subtitles show, as SRT, WebVTT, JSON or text.

Speech runs offline on the bundled Whisper tiny.en unless --model names another; a video without audio prints nothing.
`longwatch transcript --video ID [--bank DIR]` prints the evidence timeline a bank stored at ingest (speech,
subtitles, on-screen rows, captions) without transcribing anything again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = ("print what is said in a video (speech to text) or its subtitles, or a bank's stored timeline "
        "(--video ID), as SRT, VTT, JSON or text")
_PROGRESS_FROM = 60.0  # seconds of audio; shorter files finish before a bar is worth drawing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", nargs="?", help="video file (omit it to read a bank with --video ID)")
    parser.add_argument("--format", choices=("srt", "vtt", "json", "text"), default="text", help="output format")
    parser.add_argument("--source", choices=("speech", "subtitles"), default="speech",
                        help="transcribe the audio (default) or show the subtitles (embedded, sidecar or --subtitles)")
    parser.add_argument("--subtitles", action="append", metavar="FILE",
                        help="subtitle file(s) to use instead of sidecar files (implies --source subtitles)")
    parser.add_argument("--model", default="tiny.en",
                        help="Whisper model: tiny.en (bundled), a faster-whisper id (small, large-v3-turbo) or a folder")
    parser.add_argument("--download", action="store_true", help="allow downloading a model that is not cached")
    parser.add_argument("--language", default=None, help="spoken language code (default: detect, or en for .en models)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for Whisper (0: its default)")
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    stored = parser.add_argument_group("a bank's stored timeline (nothing is transcribed again)")
    stored.add_argument("--video", dest="video_id", metavar="ID", help="video id in the bank (see `longwatch videos`)")
    stored.add_argument("--bank", help="bank name under $LONGWATCH_HOME/banks (default: 'default'), or a folder path")
    stored.add_argument("--config", help="TOML settings file (see app/config.py)")
    stored.add_argument("--kinds", help="evidence kinds to print, comma-separated: speech,subtitle,ocr,caption "
                                        "(default: all)")


def run(args: argparse.Namespace) -> int:
    if args.video_id is not None or args.bank or args.kinds:
        if args.video is not None or args.video_id is None:
            raise SystemExit("longwatch transcript: give a video file, or --video ID (with --bank, --kinds) to "
                             "read a bank's stored timeline, not both")
        _write(args, render(_stored_rows(args), "json" if args.json else args.format, labels=True))
        return 0
    if args.video is None:
        raise SystemExit("longwatch transcript: name a video file, or --video ID to read a bank")
    from longwatch.pipeline.probe import check_path

    check_path(args.video)  # a typo, folder or FIFO fails before any model loads
    if args.subtitles or args.source == "subtitles":
        from longwatch.pipeline.subtitles import subtitle_cues

        rows = [{"t0": c.t0, "t1": c.t1, "text": c.text, "kind": "subtitle", "language": c.language,
                 "source": c.source} for c in subtitle_cues(args.video, args.subtitles)]
        has_audio = None
    else:
        rows, has_audio = _speech_rows(args)
    _write(args, render(rows, "json" if args.json else args.format))
    if has_audio is False:
        print(f"longwatch: {args.video} has no audio stream; nothing was said", file=sys.stderr)
    return 0


def _write(args: argparse.Namespace, text: str) -> None:
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _stored_rows(args: argparse.Namespace) -> list[dict]:
    """The bank's evidence of one video, read beside a running ingest or `serve` (no writer lock taken)."""
    from longwatch.app.api import LongWatch, check_kinds
    from longwatch.app.config import load_config
    from longwatch.errors import BankError
    from longwatch.memory import check_video_id

    check_video_id(args.video_id)
    kinds = check_kinds(args.kinds)  # a typo in --kinds fails before the bank is opened
    config = load_config(args.config, bank=args.bank)
    if not config.bank_root.exists():
        raise BankError(f"no bank at {config.bank_root}; ingest a video first (`longwatch ingest VIDEO`) or pass "
                        f"--bank NAME|DIR")
    with LongWatch.open(config=config, load_models=False, readonly=True) as lw:
        records = lw.evidence(args.video_id, kinds)
    return [{"t0": round(r.t0, 3), "t1": round(r.t1, 3), "kind": r.kind, "text": r.text, "context": r.context,
             "meta": r.meta} for r in records]


def _speech_rows(args: argparse.Namespace) -> tuple[list[dict], bool]:
    from longwatch.pipeline.audio import open_audio
    from longwatch.pipeline.speech import SpeechConfig, SpeechLane

    track = open_audio(args.video)
    if not track.has_audio:
        return [], False
    try:
        config = SpeechConfig(model=args.model, device=args.device, cpu_threads=args.threads,
                              language=args.language, allow_download=args.download)
    except ValueError as e:
        raise SystemExit(f"longwatch transcript: {e}") from None
    bar = None
    if not args.no_progress and (track.duration or 0) >= _PROGRESS_FROM:
        from tqdm import tqdm

        bar = tqdm(total=round(track.duration, 1), unit="s", desc=Path(args.video).name[-40:], file=sys.stderr,
                   bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s [{elapsed}<{remaining}]")

    def progress(done: float, duration: float | None) -> None:
        if bar is not None:
            bar.n = round(min(done, bar.total), 1)
            bar.refresh()

    rows = [{"t0": round(s.t0, 3), "t1": round(s.t1, 3), "text": s.text, "kind": "speech", "language": s.language,
             "avg_logprob": round(s.avg_logprob, 4),
             "words": [{"t0": round(w.t0, 3), "t1": round(w.t1, 3), "text": w.text, "p": round(w.probability, 3)}
                       for w in s.words]}
            for s in SpeechLane(config).transcribe_file(args.video, progress)]
    if bar is not None:
        bar.close()
    return rows, True


def render(rows: list[dict], fmt: str, labels: bool = False) -> str:
    """Rows of {t0, t1, text, ...} as SRT or WebVTT (written by pysubs2), JSON, or `[h:mm:ss–h:mm:ss] text` lines;
    `labels` names each text line's kind (`Said:`, `On screen:` ...) for timelines that mix kinds."""
    if fmt == "json":
        return json.dumps({"segments": rows}, indent=2, ensure_ascii=False) + "\n"
    if fmt == "text":
        from longwatch.app import KIND_LABELS
        from longwatch.app.cli import clock

        def label(row: dict) -> str:
            return f"{KIND_LABELS.get(row['kind'], row['kind'])}: " if labels else ""

        return "".join(f"[{clock(r['t0'])}–{clock(r['t1'])}] {label(r)}{r['text']}\n" for r in rows)
    from longwatch import optional

    pysubs2 = optional.require("pysubs2")
    subs = pysubs2.SSAFile()
    for r in rows:
        subs.append(pysubs2.SSAEvent(start=round(r["t0"] * 1000), end=round(r["t1"] * 1000),
                                     text=r["text"].replace("\n", "\\N")))
    return subs.to_string(fmt)
