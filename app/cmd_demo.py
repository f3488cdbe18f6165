"""`longwatch demo`: the main job end to end on a generated sample with known on-screen text and a spoken fact.

Writes a sample video (text cards; narration by espeak-ng when it is installed), ingests it with the default
preset into a demo bank, asks about one shown and one spoken fact, and prints each answer with its time ranges
next to where the fact really was, so anyone can check the citations by eye.
"""

from __future__ import annotations

import argparse
import sys

HELP = ("generate a sample video with known on-screen text and speech, ingest it, ask about both, print the "
        "cited answers")

# (t0, t1, text): what the sample shows and when. The first question targets the second card.
SCRIPT = [(4.0, 10.0, "WELCOME TO THE LONGWATCH DEMO"),
          (22.0, 28.0, "THE VAULT CODE IS 4 7 1 9"),
          (44.0, 50.0, "LUNCH IS SERVED AT NOON")]
# (start, sentence): said, never shown. Numbers are spoken digit by digit, as people read out room numbers.
SPOKEN = [(33.0, "One more thing: the team meeting has moved to room one seven five.")]
QUESTIONS = ["What is the vault code?", "Which room is the team meeting in?"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from longwatch.app.config import add_bank_arguments

    parser.add_argument("--question", action="append",
                        help=f"question to ask; repeat for several (default: {QUESTIONS})")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the sample video (default 60)")
    parser.add_argument("--out", help="where to write the sample (default: $LONGWATCH_HOME/samples/demo.mp4)")
    add_bank_arguments(parser)
    parser.set_defaults(bank="demo")


def write_demo_sample(out, seconds: float, log) -> list[tuple[float, float, str]]:
    """The sample video at `out`; returns what is said in it as (t0, t1, sentence), [] without espeak-ng."""
    import numpy as np

    from longwatch.samples.speech import RATE, encode_variant, espeak_available, say, write_wav
    from longwatch.samples.videos import make_sample

    if not espeak_available():
        log("   espeak-ng or ffmpeg is not installed, so the sample has no narration (scripts/setup.sh installs "
            "both); only the on-screen question can be answered")
        make_sample(out, seconds, fps=10.0, size=(640, 360), texts=SCRIPT)
        return []
    picture = out.with_name(out.stem + ".picture.mp4")
    make_sample(picture, seconds, fps=10.0, size=(640, 360), texts=SCRIPT)
    track, said = np.zeros(int(seconds * RATE), dtype=np.int16), []
    for t0, sentence in SPOKEN:
        voice = say(sentence, out.with_name(out.stem + ".say.wav"))
        start = int(t0 * RATE)
        track[start:start + len(voice)] = voice[: len(track) - start]
        said.append((t0, t0 + len(voice) / RATE, sentence))
    wav = write_wav(out.with_name(out.stem + ".narration.wav"), track)
    video, _ = encode_variant(out.parent, out.stem + ".muxed", "speech", ["-i", str(picture)], wav, [], seconds,
                              video_args=("-map", "0:v", "-map", "1:a"))
    video.replace(out)
    for scratch in (picture, wav, picture.with_name(picture.name + ".json")):
        scratch.unlink(missing_ok=True)
    return said


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from longwatch.app.api import LongWatch
    from longwatch.app.cli import emit
    from longwatch.app.config import config_from_args
    from longwatch.pipeline.answer import format_span

    if args.seconds < max(SCRIPT[-1][1], SPOKEN[-1][0] + 6.0):
        raise SystemExit(f"longwatch demo: --seconds must be at least {max(SCRIPT[-1][1], SPOKEN[-1][0] + 6.0):g} "
                         "to show every text card and say every sentence")
    config = config_from_args(args)
    out = Path(args.out) if args.out else config.home / "samples" / "demo.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    log(f"1/3 writing a {args.seconds:g} s sample with on-screen text and speech to {out}")
    said = write_demo_sample(out, args.seconds, log)
    questions = args.question or (QUESTIONS if said else QUESTIONS[:1])
    log(f"2/3 loading the '{config.preset}' models and ingesting into bank {config.bank_root}")
    with LongWatch.open(config=config) as lw:
        with tqdm(total=args.seconds, unit="s", file=sys.stderr, disable=args.json, leave=False) as bar:
            ref = lw.ingest(out, progress=lambda p: bar.update(round(p.t - bar.n, 3)))
        answers = []
        for question in questions:
            log(f"3/3 asking: {question}")
            answers.append((question, lw.ask(question, [ref.video_id])))
    truth = "\n".join([f"  on screen {format_span(a, b)} {text!r}" for a, b, text in SCRIPT]
                      + [f"  said      {format_span(a, b)} {text!r}" for a, b, text in said])
    text = "\n\n".join(f"Q: {q}\nA: {a.describe()}" for q, a in answers) + f"\n\nIn the sample:\n{truth}"
    emit(args, {"video": ref.to_dict(), "answers": [{"question": q, "answer": a.to_dict()} for q, a in answers],
                "on_screen": [{"t0": a, "t1": b, "text": t} for a, b, t in SCRIPT],
                "spoken": [{"t0": a, "t1": b, "text": t} for a, b, t in said]}, text)
    return 0
