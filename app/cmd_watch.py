"""`longwatch watch`: ingest a live stream in the background and answer questions while it runs.

Prints the session's counters every few seconds; Ctrl-C (or --seconds) stops cleanly, committing the clip in progress.
"""

from __future__ import annotations

import argparse
import sys
import time

HELP = "watch a live stream (rtsp/http/udp/rtmp URL or webcam:N), asking questions as it runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from longwatch.app.config import add_bank_arguments

    parser.add_argument("source", help="stream URL or webcam:N")
    parser.add_argument("--id", dest="video_id", help="video id for the stream (default: live-<date>-<time>)")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--ask", action="append", default=[], metavar="QUESTION",
                        help="question to answer from the stream so far at every report (repeatable)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between reports (default 10)")
    add_bank_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from longwatch.app.api import LongWatch
    from longwatch.app.cli import emit
    from longwatch.app.config import config_from_args
    from longwatch.errors import BankError

    if args.every <= 0:
        raise SystemExit("longwatch watch: --every must be > 0 seconds")
    answers: list[dict] = []
    with LongWatch.open(config=config_from_args(args)) as lw:
        session = lw.watch(args.source, args.video_id)
        started = time.monotonic()
        try:
            while not session.wait(timeout=_next_wait(started, args)):
                _report(session, args, answers, BankError)
                if args.seconds is not None and time.monotonic() - started >= args.seconds:
                    break
        except KeyboardInterrupt:
            print("longwatch: stopping (committing the clip in progress)", file=sys.stderr)
        stats = session.stop()
        _report(session, args, answers, BankError)
    ended = {"eof": "the source ended", "gave_up": "the stream dropped and did not come back",
             "stopped": "stopped"}.get(stats.ended_reason or "", stats.ended_reason or "stopped")
    text = (f"{stats.video_id}: {stats.clips_committed} clips, ingested up to {stats.ingested_until:.1f} s, "
            f"{stats.frames_received} frames received, {stats.frames_dropped} dropped; {ended}")
    if stats.error:
        text += f" ({stats.error})"
    emit(args, {"stats": vars(stats), "answers": answers}, text)
    return 0


def _next_wait(started: float, args: argparse.Namespace) -> float:
    if args.seconds is None:
        return args.every
    return max(0.0, min(args.every, args.seconds - (time.monotonic() - started)))


def _report(session, args, answers: list[dict], bank_error: type) -> None:
    s = session.stats
    print(f"[{s.video_id}] {s.clips_committed} clips · up to {s.ingested_until:.1f} s · lag {s.lag_seconds:.1f} s · "
          f"frames {s.frames_received} received, {s.frames_dropped} dropped", file=sys.stderr)
    for question in args.ask:
        try:
            answer = session.ask(question)
        except bank_error:
            continue  # no clip committed yet: nothing to answer from
        answers.append({"answered_until": session.answered_until, "question": question, **answer.to_dict()})
        if not args.json:
            print(f"Q: {question}\n{answer.describe()}\n")
