"""Ask latency and prefill tokens: a one-hour memory vs a shorter one (10 minutes by default), and vs the
uniform-sampling baseline.

Random weights at published sizes (`sized:`); speed does not depend on weight values. Run:
    .venv/bin/python benchmarks/query.py --answerer smolvlm2-256m
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

QUESTIONS = ["What does the person near the red car do?", "When does the blue sign appear?",
             "Summarize the video."]
_WORDS = (["a person", "a red car", "a dog", "a blue sign", "two people", "a bicycle", "a laptop", "a train"],
          ["walks past", "stops near", "points at", "opens", "drives by", "picks up", "looks at", "leaves"],
          ["the door", "the table", "the street", "the window", "the station", "the kitchen", "the park", "a screen"])


def synthetic_captions(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(w[int(rng.integers(len(w)))] for w in _WORDS).capitalize() + "." for _ in range(n)]


def fill_bank(bank, video_id: str, minutes: float, models, cfg, seed: int = 0) -> int:
    """Write a video's memories in Pipeline's storage format, with random tokens of the models' shapes.

    Ingesting an hour with real-size random models takes hours on this CPU, and ask latency depends on
    shapes and counts only, so the benchmark writes what ingest would write, minus the vision passes: each
    clip's caption is also a piece of caption evidence on the timeline, with its vector, as ingest commits it.
    """
    import torch

    from longwatch.memory.records import ClipRecord, Evidence

    n = int(minutes * 60 / cfg.clip_seconds)
    frames = int(cfg.clip_seconds * cfg.fps)
    d = models.answerer.hidden_size
    ds = models.svlm.hidden_size if models.svlm is not None else d
    captions = synthetic_captions(n, seed)
    vecs = models.embedder.embed(captions)
    g = torch.Generator().manual_seed(seed)
    dgrid = (frames, *cfg.detail_hw)
    bank.add_video(video_id, f"synthetic:{minutes}min", {"duration": minutes * 60})
    for i in range(n):
        tokens = {"detail": torch.randn(int(np.prod(dgrid)), d, generator=g).to(torch.float16),
                  "memory": torch.randn(int(np.prod(cfg.memory_grid)), d, generator=g).to(torch.float16)}
        meta = {"frames": frames, "detail_grid": list(dgrid), "memory_grid": list(cfg.memory_grid), "dim": d}
        if models.svlm is not None:
            tokens["svlm"] = torch.randn(int(np.prod(cfg.svlm_grid)), ds, generator=g).to(torch.float16)
            meta["svlm_grid"] = list(cfg.svlm_grid)
        t0, t1 = i * cfg.clip_seconds, (i + 1) * cfg.clip_seconds
        # With no on-screen text the clip's key is its caption, so the caption evidence has the same vector.
        rec = ClipRecord(video_id, i, t0, t1, caption=captions[i], meta=meta,
                         evidence=[Evidence("caption", t0, t1, captions[i])])
        bank.add(rec, vectors={"text": vecs[i], "evidence": vecs[i:i + 1]}, tokens=tokens)
    bank.mark_complete(video_id)
    return n


def make_video(path: Path, seconds: int, fps: int = 5, size: str = "320x180") -> Path:
    """A real H.264 file of moving test patterns for the baseline to decode (cached between runs)."""
    if not path.exists():
        if shutil.which("ffmpeg") is None:
            raise SystemExit("benchmarks/query.py needs the ffmpeg CLI to generate its baseline video")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
                        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(fps * 10),
                        "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def timed_ask(pipeline, video_id: str, question: str) -> dict:
    """One ask, timed whole and to its first quotes (on_quotes, what the UI and a terminal show at once)."""
    quoted: list[float] = []
    t = time.perf_counter()
    ans = pipeline.ask(question, [video_id], on_quotes=lambda quotes: quoted.append(time.perf_counter()))
    return {"seconds": time.perf_counter() - t, "prefill": ans.prefill_tokens, "visual": ans.tokens_used,
            "timings": ans.timings, "clips": ans.clips_considered,
            "first_quote": quoted[0] - t if quoted else None}


def interleaved_asks(pipelines: dict, repeats: int) -> dict[str, list[dict]]:
    """Every question asked of every memory in turn (q1 short, q1 hour, q2 short, ...), `repeats` times: on a
    shared machine whose load drifts by minutes, each memory then meets the same load."""
    runs: dict[str, list[dict]] = {name: [] for name in pipelines}
    for _ in range(repeats):
        for q in QUESTIONS:
            for name, (pipe, video_id) in pipelines.items():
                runs[name].append(timed_ask(pipe, video_id, q))
    return runs


def relevance_speed(svlm, cfg, n_clips: int, repeats: int, seed: int = 0) -> dict:
    """Seconds to score `n_clips` candidates (the candidate cap) with the SVLM: every prompt whole vs the
    question's prefix computed once (`share_prefix`), alternating, on blocks of the shape an ask scores."""
    import torch

    from longwatch.pipeline.answer import ContextItem, build_blocks

    g = torch.Generator().manual_seed(seed)
    blocks = [b for i, caption in enumerate(synthetic_captions(n_clips, seed)) for b in build_blocks(
        [ContextItem("hour", i, i * cfg.clip_seconds, (i + 1) * cfg.clip_seconds, caption, "", 0.0,
                     torch.randn(*cfg.svlm_grid, svlm.hidden_size, generator=g))])]
    times: dict[str, list[float]] = {"whole_prompts": [], "shared_prefix": []}
    svlm.relevance(QUESTIONS[0], blocks)  # warm-up
    for _ in range(repeats):
        for q in QUESTIONS:
            for name, share in (("whole_prompts", False), ("shared_prefix", True)):
                t = time.perf_counter()
                svlm.relevance(q, blocks, share_prefix=share)
                times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()} | {"runs": times, "candidates": n_clips}


def ask_stats(runs: list[dict]) -> dict:
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "relevance": statistics.median(r["timings"].get("relevance", 0.0) for r in runs),
            "prefill": statistics.median(r["prefill"] for r in runs),
            "visual": statistics.median(r["visual"] for r in runs), "runs": runs,
            "first_quote": statistics.median(quoted) if (quoted := [r["first_quote"] for r in runs
                                                                    if r["first_quote"] is not None]) else None,
            "quoted_asks": len(quoted)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answerer", default="smolvlm2-256m", help="sized model name (see pipeline/models/build.py)")
    parser.add_argument("--svlm", default="same", help="sized SVLM name, 'same' to reuse the answerer, or 'none'")
    parser.add_argument("--budget", type=int, default=8192)
    parser.add_argument("--answer-tokens", type=int, default=16)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "longwatch-bench-query"))
    parser.add_argument("--short-minutes", type=float, default=10.0,
                        help="length of the memory the hour is compared with (10: above the candidate cap)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the questions over both memories")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the uniform baseline (it decodes an hour of video): memory lengths only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from longwatch.memory import MemoryBank
    from longwatch.pipeline.baseline import native_tokens_per_frame, uniform_answer
    from longwatch.pipeline.config import PipelineConfig
    from longwatch.pipeline.core import Pipeline
    from longwatch.pipeline.models.registry import load_preset

    torch.manual_seed(0)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    svlm = {"same": args.answerer, "none": None}.get(args.svlm, args.svlm)
    t = time.perf_counter()
    models = load_preset(f"sized:{args.answerer}", svlm=svlm)
    load_s = time.perf_counter() - t
    cfg = PipelineConfig(budget=args.budget, answer_tokens=args.answer_tokens, ocr=False)
    result: dict = {"answerer": args.answerer, "svlm": svlm, "budget": args.budget, "load_seconds": load_s}
    with contextlib.ExitStack() as banks:
        pipelines = {}
        for name, minutes in (("short", args.short_minutes), ("hour", 60)):
            root = work / f"bank-{name}-{args.answerer}"
            shutil.rmtree(root, ignore_errors=True)
            bank = banks.enter_context(MemoryBank(root, durable=False))  # fsync per clip is ingest's cost, not ask's
            t = time.perf_counter()
            result[f"{name}_clips"] = fill_bank(bank, name, minutes, models, cfg)
            result[f"{name}_fill_seconds"] = time.perf_counter() - t
            pipelines[name] = (Pipeline(bank, models, cfg), name)
            pipelines[name][0].ask(QUESTIONS[0], [name])  # warm-up: first-call allocations are not a user's wait
        for name, runs in interleaved_asks(pipelines, args.repeats).items():
            result[name] = ask_stats(runs)
    if models.svlm is not None:
        result["relevance_speed"] = relevance_speed(models.svlm, cfg, cfg.max_candidates, args.repeats)
    m, h = result["short"], result["hour"]
    result["ratios"] = {"hour_over_short_seconds": h["seconds"] / m["seconds"],
                        "hour_over_short_prefill": h["prefill"] / m["prefill"],
                        "hour_over_short_relevance": h["relevance"] / max(m["relevance"], 1e-9)}
    if not args.no_baseline:
        video = make_video(work / "hour-320x180-5fps.mp4", 3600)
        native = native_tokens_per_frame(models.answerer, 180, 320)
        t = time.perf_counter()
        base = uniform_answer(str(video), QUESTIONS[0], models.answerer, budget=args.budget,
                              answer_tokens=args.answer_tokens, video_id="hour")
        result["baseline"] = {"seconds": time.perf_counter() - t, "prefill": base.prefill_tokens,
                              "visual": base.tokens_used, "frames": base.tokens_used / native, "timings": base.timings}
        # Reading the whole hour at native tokens per frame and the ingest rate is not runnable here; count it.
        result["native_full_hour_visual"] = int(native * 3600 * cfg.fps)
        result["native_tokens_per_frame"] = native
        b = result["baseline"]
        result["ratios"].update({
            "baseline_over_hour_seconds": b["seconds"] / h["seconds"],
            "baseline_over_hour_prefill": b["prefill"] / h["prefill"],
            "native_full_hour_over_hour_visual": result["native_full_hour_visual"] / max(h["visual"], 1)})
    if args.json:
        print(json.dumps(result, indent=2, default=float))
        return 0
    r = result["ratios"]
    print(f"answerer sized:{args.answerer}, svlm {svlm}, budget {args.budget}, median of {len(QUESTIONS)} questions x "
          f"{args.repeats}, asked of both memories in turn")
    print("| memory / method | ask s | relevance s | prefill tokens | visual tokens |")
    print("|---|---|---|---|---|")
    print(f"| longwatch, {args.short_minutes:g}-minute memory ({result['short_clips']} clips) | {m['seconds']:.2f} | "
          f"{m['relevance']:.2f} | {m['prefill']:.0f} | {m['visual']:.0f} |")
    print(f"| longwatch, 1-hour memory ({result['hour_clips']} clips) | {h['seconds']:.2f} | {h['relevance']:.2f} | "
          f"{h['prefill']:.0f} | {h['visual']:.0f} |")
    if "baseline" in result:
        b, native = result["baseline"], result["native_tokens_per_frame"]
        print(f"| uniform baseline, native {native:.0f} tokens/frame, same budget (decodes the hour) | "
              f"{b['seconds']:.2f} | – | {b['prefill']} | {b['visual']} |")
        print(f"| uniform, native tokens/frame at {cfg.fps:g} fps over the hour (counted, not run) | – | – | – | "
              f"{result['native_full_hour_visual']} |")
    if "relevance_speed" in result:
        rs = result["relevance_speed"]
        print(f"relevance of {rs['candidates']} candidates (median): every prompt whole {rs['whole_prompts']:.2f} s, "
              f"question prefix computed once {rs['shared_prefix']:.2f} s "
              f"({rs['whole_prompts'] / rs['shared_prefix']:.2f}x)")
    for label, stats in ((f"{args.short_minutes:g} minutes", m), ("the hour", h)):
        if stats["first_quote"] is not None:
            print(f"first quotes over {label}: {stats['first_quote']:.2f} s (median of the {stats['quoted_asks']} asks "
                  f"of {len(stats['runs'])} that had evidence to quote), whole answer {stats['seconds']:.2f} s")
    print(f"flatness hour/short: time {r['hour_over_short_seconds']:.2f}x, prefill "
          f"{r['hour_over_short_prefill']:.2f}x, relevance {r['hour_over_short_relevance']:.2f}x")
    if "baseline" in result:
        print(f"baseline/longwatch on the hour: time {r['baseline_over_hour_seconds']:.1f}x, prefill "
              f"{r['baseline_over_hour_prefill']:.2f}x; full-hour native/longwatch visual tokens "
              f"{r['native_full_hour_over_hour_visual']:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
