"""`longwatch demo`: the main job end to end on a generated sample with known on-screen text.

Writes a sample video, ingests it with the default preset into a demo bank, asks one question, prints the answer
with its time ranges and where the text really was, so anyone can check the citation by eye.
"""

from __future__ import annotations

import argparse
import sys

HELP = "generate a sample video with known on-screen text, ingest it, ask a question, print the cited answer"

# (t0, t1, text): what the sample shows and when. The question targets the second card.
SCRIPT = [(4.0, 10.0, "WELCOME TO THE LONGWATCH DEMO"),
          (22.0, 28.0, "THE VAULT CODE IS 4 7 1 9"),
          (44.0, 50.0, "LUNCH IS SERVED AT NOON")]
QUESTION = "What is the vault code?"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from longwatch.app.config import add_bank_arguments

    parser.add_argument("--question", default=QUESTION, help=f"question to ask (default: {QUESTION!r})")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the sample video (default 60)")
    parser.add_argument("--out", help="where to write the sample (default: $LONGWATCH_HOME/samples/demo.mp4)")
    add_bank_arguments(parser)
    parser.set_defaults(bank="demo")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from longwatch.app.api import LongWatch
    from longwatch.app.cli import emit
    from longwatch.app.config import config_from_args
    from longwatch.pipeline.answer import format_span
    from longwatch.samples.videos import make_sample

    if args.seconds < SCRIPT[-1][1]:
        raise SystemExit(f"longwatch demo: --seconds must be at least {SCRIPT[-1][1]:g} to show every text card")
    config = config_from_args(args)
    out = Path(args.out) if args.out else config.home / "samples" / "demo.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    log(f"1/3 writing a {args.seconds:g} s sample with on-screen text to {out}")
    make_sample(out, args.seconds, fps=10.0, size=(640, 360), texts=SCRIPT)
    log(f"2/3 loading the '{config.preset}' models and ingesting into bank {config.bank_root}")
    with LongWatch.open(config=config) as lw:
        with tqdm(total=args.seconds, unit="s", file=sys.stderr, disable=args.json, leave=False) as bar:
            ref = lw.ingest(out, progress=lambda p: bar.update(round(p.t - bar.n, 3)))
        log(f"3/3 asking: {args.question}")
        answer = lw.ask(args.question, [ref.video_id])
    truth = "; ".join(f"{format_span(a, b)} {text!r}" for a, b, text in SCRIPT)
    text = f"Q: {args.question}\nA: {answer.describe()}\n\nOn screen in the sample: {truth}"
    emit(args, {"video": ref.to_dict(), "question": args.question, "answer": answer.to_dict(),
                "on_screen": [{"t0": a, "t1": b, "text": t} for a, b, t in SCRIPT]}, text)
    return 0
