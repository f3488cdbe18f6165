"""Speech lane throughput and accuracy on espeak-ng narration.

Throughput: seconds of speech-dense video transcribed per wall second (goal >= 5x real time, 2 cores).
  python benchmarks/speech.py [VIDEO] [--seconds 180] [--model tiny.en] [--threads 2] [--beam 5]
  Without VIDEO it narrates a lecture with espeak-ng. Model loading is timed apart from transcription.
Accuracy (--facts): spoken facts (samples/speech.py `fact_sentences`) said by several voices at several speeds;
  a fact is kept when its answer, normalised as the answer path normalises words (textqa), is in the transcript
  within 3 s of when it was said. Reported per voice, per speed and per voice/speed; `in_context` also needs half
  of the sentence's other content words heard (what a question finds the fact by: "best project" for "camera").
  python benchmarks/speech.py --facts [--voices en-us,en+m3] [--speeds 140,190] [--cache DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

VOICES = ("en-us", "en", "en-gb-x-rp", "en+m3", "en+f3", "en-gb-scotland")
SPEEDS = (140, 165, 190)
SHARE = 3  # each voice/speed hears every third fact (rotating), so every fact is heard in len(grid) / 3 of them
TOLERANCE = 3.0  # seconds: a fact's answer must be transcribed this close to when it was said (issue 13's ±3 s)


def _holds(text: str, answer: str) -> bool:
    """The answer (or, for a number, a spelling of it the lecture's grader accepts) as normalised words, in order
    and contiguous, among the text's; "2,000" is 2000; a word answer also counts when its letters run inside the
    text's with spaces removed ("flower pot"), as the answer path's coverage counts it."""
    from longwatch.pipeline.textqa import is_code, normalised_words, squash
    from longwatch.samples.lecture import number_words

    have = normalised_words(re.sub(r"(?<=\d),(?=\d{3}\b)", "", text))
    for spelling in [answer, *(number_words(int(answer)) if answer.isdigit() else ())]:
        need = normalised_words(spelling)
        if any(have[i:i + len(need)] == need for i in range(len(have) - len(need) + 1)):
            return True
    return not is_code(answer) and len(squash(answer)) >= 4 and squash(answer) in squash(" ".join(have))


def _pick(facts: list[tuple[str, str]], k: int, rng: random.Random) -> list[tuple[str, str]]:
    """`facts` from k on, every SHARE-th, shuffled, leaving out a fact whose answer another chosen sentence also
    says (its neighbour would then count for it)."""
    chosen: list[tuple[str, str]] = []
    for text, answer in facts[k % SHARE::SHARE]:
        if not any(_holds(t, answer) or _holds(text, a) for t, a in chosen):
            chosen.append((text, answer))
    rng.shuffle(chosen)
    return chosen


def narrations(cache: Path, voices: Sequence[str], speeds: Sequence[int]) -> list[dict]:
    """One narration per voice/speed (built once into `cache`, reused after): its path and placed facts."""
    from longwatch.samples.speech import fact_narration, fact_sentences

    facts, out = fact_sentences(), []
    for k, (voice, speed) in enumerate((v, s) for v in voices for s in speeds):
        folder = cache / f"{voice.replace('+', '_')}_{speed}"
        manifest = folder / "facts.json"
        if not manifest.exists():
            rng = random.Random(f"{voice}-{speed}")
            chosen = _pick(facts, k, rng)
            path, placed = fact_narration(folder, chosen, voice, speed, [rng.uniform(0.6, 2.0) for _ in chosen])
            manifest.write_text(json.dumps({"path": path, "placed": placed}))
        out.append({"voice": voice, "speed": speed, **json.loads(manifest.read_text())})
    return out


def measure_facts(lane, runs: list[dict]) -> dict:
    """Transcribe each narration with `lane`; per run: facts, kept, audio and wall seconds, and the misses."""
    from longwatch.pipeline.audio import open_audio
    from longwatch.pipeline.textqa import content_words, coverage

    rows = []
    for run in runs:
        start = time.perf_counter()
        segments = list(lane.transcribe_file(run["path"]))
        wall = time.perf_counter() - start
        misses, in_context = [], 0
        for t0, t1, text, answer in run["placed"]:
            heard = " ".join(s.text for s in segments if s.t0 < t1 + TOLERANCE and s.t1 > t0 - TOLERANCE)
            if not _holds(heard, answer):
                misses.append({"said": text, "answer": answer, "heard": heard})
            else:
                in_context += coverage(content_words(text) - content_words(answer), heard) >= 0.5
        rows.append({"voice": run["voice"], "speed": run["speed"], "n": len(run["placed"]),
                     "kept": len(run["placed"]) - len(misses), "in_context": in_context,
                     "audio_s": open_audio(run["path"]).duration,
                     "wall_s": round(wall, 2), "misses": misses})
    return {"rows": rows, **{f"by_{key}": _totals(rows, key) for key in ("voice", "speed")},
            "total": _totals(rows, None)["all"]}


def _totals(rows: list[dict], key: str | None) -> dict:
    out: dict = {}
    for row in rows:
        cell = out.setdefault(str(row[key]) if key else "all",
                              {"n": 0, "kept": 0, "in_context": 0, "audio_s": 0.0, "wall_s": 0.0})
        for field in ("n", "kept", "in_context", "audio_s", "wall_s"):
            cell[field] += row[field]
    for cell in out.values():
        cell["acc"] = round(cell["kept"] / max(cell["n"], 1), 3)
        cell["x_realtime"] = round(cell["audio_s"] / max(cell["wall_s"], 1e-9), 1)
        cell["audio_s"], cell["wall_s"] = round(cell["audio_s"], 1), round(cell["wall_s"], 1)
    return out


def print_facts(result: dict) -> None:
    for row in result["rows"]:
        print(f"{row['voice']:>16} {row['speed']:>4} wpm  {row['kept']:>3}/{row['n']:<3}  "
              f"{row['kept'] / max(row['n'], 1):6.1%}")
    for key in ("by_voice", "by_speed"):
        for name, cell in result[key].items():
            print(f"{key[3:]:>6} {name:>16}  {cell['kept']:>3}/{cell['n']:<3}  {cell['acc']:6.1%}")
    total = result["total"]
    print(f"total {total['kept']}/{total['n']} = {total['acc']:.1%} ({total['in_context']} with half the sentence's "
          f"other content words), {total['x_realtime']}x real time")
    for row in result["rows"]:
        for miss in row["misses"]:
            print(f"  miss [{row['voice']} {row['speed']}] {miss['answer']!r}: said {miss['said']!r}, "
                  f"heard {miss['heard']!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?")
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the generated narration")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam", type=int, default=5, help="beam size (the lane's default is 5; 1 is greedy)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--facts", action="store_true", help="measure kept spoken facts instead of throughput")
    parser.add_argument("--voices", default=",".join(VOICES), help="espeak-ng voices, comma-separated")
    parser.add_argument("--speeds", default=",".join(map(str, SPEEDS)), help="words per minute, comma-separated")
    parser.add_argument("--cache", help="folder keeping the facts' narrations between runs")
    parser.add_argument("--json", help="write the facts result here")
    args = parser.parse_args()

    from longwatch.pipeline.audio import open_audio
    from longwatch.pipeline.speech import SpeechConfig, SpeechLane
    from longwatch.samples.speech import make_dense_speech

    config = SpeechConfig(model=args.model, cpu_threads=args.threads, beam_size=args.beam, device=args.device)
    lane = SpeechLane(config)
    with tempfile.TemporaryDirectory() as tmp:
        if args.facts:
            runs = narrations(Path(args.cache or tmp), args.voices.split(","),
                              [int(s) for s in args.speeds.split(",")])
            result = measure_facts(lane, runs)
            print_facts(result)
            if args.json:
                Path(args.json).write_text(json.dumps({"config": vars(args), **result}, indent=1))
            return
        video = args.video or make_dense_speech(tmp, args.seconds)
        start = time.perf_counter()
        lane.model  # noqa: B018 - load now, so transcription is timed on its own
        load_s = time.perf_counter() - start
        duration = open_audio(video).duration or 0.0
        start = time.perf_counter()
        segments = list(lane.transcribe_file(video))
        wall = time.perf_counter() - start
    words = sum(len(s.words) for s in segments)
    print(json.dumps({"model": args.model, "threads": args.threads, "beam": args.beam, "video_s": round(duration, 1),
                      "wall_s": round(wall, 2), "x_realtime": round(duration / wall, 1), "load_s": round(load_s, 2),
                      "segments": len(segments), "words": words,
                      "words_per_min": round(words / max(duration, 1e-9) * 60)}, indent=2))


if __name__ == "__main__":
    main()
