"""Speech lane throughput: seconds of speech-dense video transcribed per wall second (goal >= 5x real time, 2 cores).

Usage: python benchmarks/speech.py [VIDEO] [--seconds 180] [--model tiny.en] [--threads 2] [--beam 5];
without VIDEO it narrates a lecture with espeak-ng. Model loading is timed apart from transcription.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?")
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the generated narration")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam", type=int, default=5, help="beam size (the lane's default is 5; 1 is greedy)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args()

    from longwatch.pipeline.audio import open_audio
    from longwatch.pipeline.speech import SpeechConfig, SpeechLane
    from longwatch.samples.speech import make_dense_speech

    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or make_dense_speech(tmp, args.seconds)
        config = SpeechConfig(model=args.model, cpu_threads=args.threads, beam_size=args.beam, device=args.device)
        lane = SpeechLane(config)
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
