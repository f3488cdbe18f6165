"""`longwatch probe FILE...`: validate videos and show duration, fps, size, codec and rotation, without decoding them.

Each file gets one line (or one JSON object); a bad file gets its typed error and the exit code says something failed.
"""

from __future__ import annotations

import argparse
import sys

HELP = "check video files and show duration, fps, size, codec and rotation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="video files to check")
    parser.add_argument("--max-hours", type=float, default=None, help="longest duration accepted (default 12)")
    parser.add_argument("--max-pixels", type=int, default=None, help="largest frame accepted, in pixels (default 8K)")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict, replace

    from longwatch.app.cli import clock, emit
    from longwatch.errors import VideoError
    from longwatch.pipeline.probe import VideoLimits, probe

    limits = VideoLimits()
    if args.max_hours is not None:
        limits = replace(limits, max_duration=args.max_hours * 3600.0)
    if args.max_pixels is not None:
        limits = replace(limits, max_pixels=args.max_pixels)
    rows, lines, code = [], [], 0
    for path in args.files:
        try:
            info = probe(path, limits)
        except VideoError as e:
            rows.append({"file": path, "ok": False, "error": type(e).__name__, "message": str(e),
                         "detected": e.detected, "problem": e.problem, "hint": e.hint})
            lines.append(f"{path}: {type(e).__name__}: {e.problem} (found: {e.detected}). {e.hint}")
            code = code or e.exit_code
            continue
        rows.append({"file": path, "ok": True, **asdict(info)})
        dur = "?" if info.duration is None else clock(info.duration)
        audio = ", audio" if info.has_audio else ""
        # A measured rate comes from packet times: the file declared none, or a time base's tick rate instead.
        rate = f"{info.fps:.3f} fps" + (" (measured)" if info.extra.get("fps_source") == "measured" else "")
        lines.append(f"{path}: {dur} ({info.duration or 0:.2f} s), {rate}, {info.width}x{info.height}, "
                     f"{info.codec} in {_CONTAINERS.get(info.container, info.container)}, rotation {info.rotation}{audio}")
    if args.json:
        emit(args, {"videos": rows}, "")
    else:
        for row, line in zip(rows, lines):
            print(line, file=sys.stdout if row["ok"] else sys.stderr)
    return code


_CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2": "mp4/mov", "matroska,webm": "mkv/webm", "asf": "asf/wmv",
               "mpeg": "mpeg-ps", "mpegvideo": "raw mpeg video"}
