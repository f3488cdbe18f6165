"""`longwatch ask`: answer questions from a bank's memories and print the time ranges that support each answer.

No video is decoded: answers come from what `longwatch ingest` stored, so this works beside a running ingest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from longwatch.errors import QuestionFileError

QUESTIONS_MAX_BYTES = 4 * 2**20  # a questions file is text; a video passed by mistake is refused, not read
HELP = "ask questions about ingested videos; prints each answer with its time ranges"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from longwatch.app.config import add_bank_arguments

    parser.add_argument("question", nargs="?", help="the question, in quotes (or use --questions)")
    parser.add_argument("--questions", metavar="FILE",
                        help="a text file with one question per line ('-' reads stdin); the models load once "
                             "and each answer is printed as it is ready (one JSON line each with --json)")
    parser.add_argument("--video", action="append", dest="videos", metavar="ID",
                        help="restrict to this video id (repeatable; default: every video in the bank)")
    add_bank_arguments(parser)


def read_questions(source: str) -> list[str]:
    """Non-blank lines of `source` (a path, or '-' for stdin), stripped; QuestionFileError when there are none."""
    name = "stdin" if source == "-" else source
    hint = "Pass a UTF-8 text file with one question per line, or '-' to read them from stdin."
    try:
        if source != "-" and (size := Path(source).stat().st_size) > QUESTIONS_MAX_BYTES:
            raise QuestionFileError(f"questions file {name}: too large for a list of questions (found: {size} bytes, "
                                 f"limit {QUESTIONS_MAX_BYTES}). {hint}")
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuestionFileError(f"questions file {name}: not found (found: nothing at that path). {hint}") from None
    except IsADirectoryError:
        raise QuestionFileError(f"questions file {name}: is a folder, not a file. {hint}") from None
    except UnicodeDecodeError as e:
        raise QuestionFileError(f"questions file {name}: not UTF-8 text (found: byte {e.object[e.start]:#04x} at "
                             f"offset {e.start}). {hint}") from None
    except OSError as e:
        raise QuestionFileError(f"questions file {name}: cannot be read ({e.strerror}). {hint}") from None
    questions = [line.strip() for line in text.splitlines() if line.strip()]
    if not questions:
        found = "an empty file" if not text else "only blank lines"
        raise QuestionFileError(f"questions file {name}: no questions (found: {found}). {hint}")
    return questions


def _questions(args: argparse.Namespace) -> list[str]:
    if args.questions is not None and args.question is not None:
        raise QuestionFileError("give either a question or --questions FILE, not both (found: both)")
    if args.questions is not None:
        return read_questions(args.questions)
    if args.question is None or not args.question.strip():
        raise QuestionFileError(f"no question (found: {'nothing' if args.question is None else 'a blank question'}). "
                             f"Type what you want to know, e.g. longwatch ask \"What is on the slide?\", or pass "
                             f"--questions FILE.")
    return [args.question.strip()]


def _show_quotes_now(quotes) -> None:
    from longwatch.pipeline.evidence_qa import quote_lines

    print(quote_lines(quotes, len({q.video for q in quotes}) > 1) + "\n(a sentence from these quotes follows)\n",
          file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from longwatch.app.api import LongWatch
    from longwatch.app.cli import emit
    from longwatch.app.config import config_from_args

    questions = _questions(args)  # a bad questions file fails before the models load
    # "auto": beside a running ingest (which holds the writer lock) answer from the clips committed so far.
    with LongWatch.open(config=config_from_args(args), readonly="auto") as lw:
        if lw.bank.reader_note:
            print(f"longwatch: {lw.bank.reader_note}", file=sys.stderr)
        if args.questions is None:
            # At a terminal the quotes show at once; the small LM's sentence follows a few seconds later.
            early = _show_quotes_now if not args.json and sys.stderr.isatty() else None
            answer = lw.ask(questions[0], args.videos, on_quotes=early)
            emit(args, answer.to_dict(), answer.describe())
            return 0
        for i, question in enumerate(questions):
            answer = lw.ask(question, args.videos)
            if args.json:
                print(json.dumps({"question": question, **answer.to_dict()}, default=str), flush=True)
            else:
                if i:
                    print()
                print(f"Q{i + 1}: {question}\n{answer.describe()}", flush=True)
    return 0
