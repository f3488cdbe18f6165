"""V-NIAH evaluation: ingest generated haystacks with the offline preset, ask every needle and absent question.

Prints answer/time accuracy by depth and length, the ingest speed ratio (video seconds per wall second), and draws a heatmap PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_length(minutes: float, args, models, ocr_engine) -> dict:
    """One haystack: generate (cached), ingest into a fresh bank, ask every question, grade."""
    from longwatch.memory import MemoryBank
    from longwatch.pipeline.core import Pipeline
    from longwatch.samples.niah import contradicts_quote, make_niah, score

    work = Path(args.work)
    t = time.perf_counter()
    sample = make_niah(work / "videos", minutes * 60, n_needles=args.needles, seed=args.seed,
                       background=args.background)
    generate_s = time.perf_counter() - t
    rows = [json.loads(line) for line in sample.questions.read_text().splitlines()]
    bank_dir = work / "banks" / sample.video.stem
    saved = bank_dir / "niah_ingest.json"
    reuse = args.reuse_bank and saved.exists()
    if not reuse:
        shutil.rmtree(bank_dir, ignore_errors=True)  # a fresh bank: the ingest time must include every clip
    bank = MemoryBank(bank_dir)
    try:
        pipe = Pipeline(bank, models, _config(args.config), ocr_engine=ocr_engine)
        if reuse:  # ask again (e.g. with other ask settings) without paying for the ingest twice
            ingest = json.loads(saved.read_text())
        else:
            cpu, calls_before, ocr_s_before = time.process_time(), ocr_engine.calls, ocr_engine.seconds
            report = pipe.ingest(str(sample.video), sample.video.stem)
            # CPU seconds (all threads) as well as wall: on a shared machine the wall ratio measures the neighbours.
            frames = sum(int(r.meta.get("frames", 0)) for r in bank.clips(sample.video.stem))
            ingest = {"ingest_s": report.seconds, "ingest_cpu_s": time.process_time() - cpu,
                      "clips": report.clips_total, "timings": report.timings, "frames_sampled": frames,
                      "ocr_calls": ocr_engine.calls - calls_before, "ocr_s": ocr_engine.seconds - ocr_s_before}
            saved.write_text(json.dumps(ingest))
        print(f"{minutes:g} min: {ingest['clips']} clips ingested in {ingest['ingest_s']:.0f} s "
              f"(CPU {ingest['ingest_cpu_s']:.0f} s); OCR read {ingest.get('ocr_calls', '?')} of "
              f"{ingest.get('frames_sampled', '?')} sampled frames; stages {_rounded(ingest['timings'])}", file=sys.stderr, flush=True)
        graded = []
        for row in rows:
            t = time.perf_counter()
            ans = pipe.ask(row["question"], videos=[sample.video.stem])
            cites = [(c.t0, c.t1) for c in ans.citations]
            graded.append({**row, "reply": ans.text, "citations": cites, "ask_s": time.perf_counter() - t,
                           "needs_vision": ans.needs_vision, **score(row, ans.text, cites, args.tolerance),
                           "contradicts": row["kind"] == "needle" and contradicts_quote(ans.text, row["answer"])})
            g = graded[-1]
            print(f"  [{'ok' if g.get('answer_ok', g.get('refused')) else 'XX'}] {row['question']} -> "
                  f"{ans.text[:100]!r} {cites[:2]} ({g['ask_s']:.1f} s)", file=sys.stderr, flush=True)
    finally:
        bank.close()
    duration = sample.plan.duration
    result = {"minutes": minutes, "duration_s": duration, "generate_s": generate_s, **ingest,
              "speed_ratio": duration / ingest["ingest_s"], "cpu_ratio": duration / ingest["ingest_cpu_s"],
              "config": args.config, "background": args.background, "rows": graded}
    return summarise(result)


def summarise(result: dict) -> dict:
    """Accuracies of one length from its graded rows."""
    needles = [g for g in result["rows"] if g["kind"] == "needle"]
    absent = [g for g in result["rows"] if g["kind"] == "absent"]
    result["answer_acc"] = sum(g["answer_ok"] for g in needles) / max(1, len(needles))
    result["time_acc"] = sum(g["time_ok"] for g in needles) / max(1, len(needles))
    result["top_time_acc"] = sum(g["top_time_ok"] for g in needles) / max(1, len(needles))
    result["absent_acc"] = sum(g["refused"] for g in absent) / max(1, len(absent))
    result["absent_strict_acc"] = sum(g["refused_strict"] for g in absent) / max(1, len(absent))
    result["contradictions"] = sum(bool(g.get("contradicts")) for g in needles)
    return result


class CountingEngine:
    """The OCR engine with a call counter: the pipeline builds its lane inside ingest, the engine is ours."""

    def __init__(self, engine) -> None:
        self.engine, self.calls, self.seconds = engine, 0, 0.0

    def read(self, image):
        t = time.perf_counter()
        try:
            return self.engine.read(image)
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - t


def _config(pairs: list[str]):
    """PipelineConfig with `key=value` overrides (ints, floats, or strings)."""
    from longwatch.pipeline.config import PipelineConfig

    kwargs = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        for cast in (int, float, str):
            try:
                kwargs[key] = cast(value)
                break
            except ValueError:
                continue
    return PipelineConfig(**kwargs)


def _rounded(timings: dict) -> dict:
    return {k: round(v, 1) for k, v in timings.items()}


def real_text_check(path: Path, question: str, work: Path, models, ocr_engine) -> dict:
    """Ingest a real video nobody here made and ask about its on-screen text (gradio's a.mp4: THANKS FOR WATCHING)."""
    from longwatch.memory import MemoryBank
    from longwatch.pipeline.config import PipelineConfig
    from longwatch.pipeline.core import Pipeline

    bank_dir = work / "banks" / f"real_{path.stem}"
    shutil.rmtree(bank_dir, ignore_errors=True)
    bank = MemoryBank(bank_dir)
    try:
        pipe = Pipeline(bank, models, PipelineConfig(), ocr_engine=ocr_engine)
        report = pipe.ingest(str(path), path.stem)
        ocr = [(r.t0, r.t1, r.ocr_text) for r in bank.clips(path.stem)]
        ans = pipe.ask(question, videos=[path.stem])
    finally:
        bank.close()
    return {"video": str(path), "question": question, "reply": ans.text, "ingest_s": report.seconds,
            "citations": [(c.t0, c.t1) for c in ans.citations], "clip_ocr": ocr}


def heatmap(results: list[dict], path: Path) -> None:
    """Two panels (answer, time) of depth rows x length columns, red 0 -> green 1, like the V-NIAH papers' plots."""
    from PIL import Image, ImageDraw

    from longwatch.samples.niah import _font

    # Depths snap to whole percents: frame rounding moves a needle by a hair between lengths.
    depths = sorted({round(g["depth"] * 100) for r in results for g in r["rows"] if g["kind"] == "needle"})
    cols = [r["minutes"] for r in results]
    cw, ch, left, top, gap = 64, 24, 64, 44, 24
    pw = left + max(cw * len(cols), 200)  # wide enough for the panel title even with one length
    im = Image.new("RGB", (2 * pw + gap + 8, top + ch * len(depths) + 40), "white")
    draw = ImageDraw.Draw(im)
    font, small = _font(13, True), _font(11)
    for p, (key, name) in enumerate((("answer_ok", "answer contains the fact"), ("time_ok", "a citation within ±2 s"))):
        x0 = p * (pw + gap)
        draw.text((x0 + left, 6), name, font=font, fill="black")
        for j, minutes in enumerate(cols):
            draw.text((x0 + left + j * cw + 6, top - 18), f"{minutes:g} min", font=small, fill="black")
        for i, depth in enumerate(depths):
            draw.text((x0 + 6, top + i * ch + 5), f"{depth}%", font=small, fill="black")
            for j, r in enumerate(results):
                cell = [g[key] for g in r["rows"] if g["kind"] == "needle" and round(g["depth"] * 100) == depth]
                box = (x0 + left + j * cw, top + i * ch, x0 + left + (j + 1) * cw - 2, top + (i + 1) * ch - 2)
                if not cell:
                    draw.rectangle(box, fill=(235, 235, 235))
                    continue
                v = sum(cell) / len(cell)
                draw.rectangle(box, fill=(int(220 * (1 - v) + 30 * v), int(60 * (1 - v) + 170 * v), 70))
                draw.text((box[0] + 20, box[1] + 5), f"{v:.0%}" if len(cell) > 1 else ("✓" if v else "✗"),
                          font=small, fill="white")
        draw.text((x0 + 6, top + ch * len(depths) + 10), "rows: needle depth; columns: length", font=small,
                  fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, optimize=True)


def table(results: list[dict]) -> str:
    lines = ["| length | clips | ingest wall s | speed (video s / wall s) | video s / CPU s | answer acc | time acc (any cite) "
             "| time acc (top cite) | absent refused | absent refused, no cites | answers contradicting their quote |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['minutes']:g} min | {r['clips']} | {r['ingest_s']:.0f} | {r['speed_ratio']:.1f}x "
                     f"| {r['cpu_ratio']:.1f}x | {r['answer_acc']:.0%} | {r['time_acc']:.0%} | {r['top_time_acc']:.0%} "
                     f"| {r['absent_acc']:.0%} | {r['absent_strict_acc']:.0%} | {r.get('contradictions', 0)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="*", default=[60.0], help="haystack lengths (5 to 120)")
    parser.add_argument("--needles", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=2.0, help="seconds a citation may miss the needle by")
    parser.add_argument("--work", default="/tmp/longwatch-niah", help="videos and banks go here (not into git)")
    parser.add_argument("--background", choices=("generated", "real"), default="generated",
                        help="haystack of generated text scenes, or of the packaged real clips looped with the text "
                             "burned in (adds a flight-number and a wifi-password needle)")
    parser.add_argument("--heatmap", default=None,
                        help="default docs/niah_heatmap.png (real background: docs/niah_real_heatmap.png)")
    parser.add_argument("--json", default=None, help="write every graded reply here")
    parser.add_argument("--preset", default="offline")
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="PipelineConfig overrides, e.g. top_n=4 max_candidates=8")
    parser.add_argument("--reuse-bank", action="store_true",
                        help="ask again over a bank this script already ingested (its ingest numbers are reused)")
    parser.add_argument("--regrade", nargs="+", default=None, metavar="JSON",
                        help="grade the replies saved by earlier --json runs again (no models loaded)")
    parser.add_argument("--real", nargs="?", const="gradio", default=None,
                        help="also ask about the text of a real video (default: gradio's a.mp4)")
    parser.add_argument("--real-question", default="What text appears on the screen?")
    args = parser.parse_args(argv)
    args.heatmap = args.heatmap or f"docs/niah{'_real' if args.background == 'real' else ''}_heatmap.png"

    if args.regrade:
        from longwatch.samples.niah import contradicts_quote, score

        results = [r for path in args.regrade for r in json.loads(Path(path).read_text())]
        for r in results:
            r["rows"] = [{**g, **score(g, g["reply"], [tuple(c) for c in g["citations"]], args.tolerance),
                          "contradicts": g["kind"] == "needle" and contradicts_quote(g["reply"], g["answer"])}
                         for g in r["rows"]]
            summarise(r)
        return _finish(results, args)

    from longwatch.pipeline.models import load_preset
    from longwatch.pipeline.ocr import OcrEngine

    t = time.perf_counter()
    models = load_preset(args.preset)
    print(f"loaded preset {args.preset!r} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    ocr_engine = CountingEngine(OcrEngine())
    results = []
    for minutes in args.minutes:
        r = run_length(minutes, args, models, ocr_engine)
        results.append(r)
        print(f"{minutes:g} min: ingest {r['ingest_s']:.0f} s ({r['speed_ratio']:.1f}x real time), answers "
              f"{r['answer_acc']:.0%}, times {r['time_acc']:.0%}, absent refused {r['absent_acc']:.0%}", file=sys.stderr)
    if args.real:
        real = Path(args.real)
        if args.real == "gradio":
            import gradio

            real = Path(gradio.__file__).parent / "media_assets" / "videos" / "a.mp4"
        check = real_text_check(real, args.real_question, Path(args.work), models, ocr_engine)
        print(f"real video {real.name}: {check['question']!r} -> {check['reply']!r} cites {check['citations']} "
              f"(clip OCR: {check['clip_ocr']})")
    return _finish(results, args)


def _finish(results: list[dict], args) -> int:
    if not results:
        return 0
    results = sorted(results, key=lambda r: r["minutes"])
    heatmap(results, Path(args.heatmap))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    print(table(results))
    print(f"\nheatmap: {args.heatmap}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
