"""`longwatch ask`: answer a question from a bank's memories and print the time ranges that support it.

No video is decoded: the answer comes from what `longwatch ingest` stored.
"""

from __future__ import annotations

import argparse

HELP = "ask a question about ingested videos; prints the answer with its time ranges"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from longwatch.app.config import add_bank_arguments

    parser.add_argument("question", help="the question, in quotes")
    parser.add_argument("--video", action="append", dest="videos", metavar="ID",
                        help="restrict to this video id (repeatable; default: every video in the bank)")
    add_bank_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from longwatch.app.api import LongWatch
    from longwatch.app.cli import emit
    from longwatch.app.config import config_from_args

    with LongWatch.open(config=config_from_args(args)) as lw:
        answer = lw.ask(args.question, args.videos)
    emit(args, answer.to_dict(), answer.describe())
    return 0
