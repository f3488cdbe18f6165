"""V-NIAH sample: a long haystack of generated text scenes with short needle cards stating facts at chosen depths.

Deterministic from a seed. Writes the video and a questions JSONL (needle questions plus questions about absent facts).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# (fact template, question, answer template): the answer is the part of the fact a correct reply must contain.
NEEDLES = [
    ("The vault code is {code}", "What is the vault code?", "{code}"),
    ("The secret password is {w1} {w2}", "What is the secret password?", "{w1} {w2}"),
    ("The rendezvous point is the {place}", "Where is the rendezvous point?", "{place}"),
    ("The lucky number is {n3}", "What is the lucky number?", "{n3}"),
    ("The agent's codename is {bird}", "What is the agent's codename?", "{bird}"),
    ("The treasure is under the {thing}", "Where is the treasure hidden?", "{thing}"),
    ("The launch is at {hh}:{mm} tomorrow", "At what time is the launch?", "{hh}:{mm}"),
    ("The ship is named {ship}", "What is the ship named?", "{ship}"),
    ("The server room is on floor {floor}", "Which floor is the server room on?", "{floor}"),
    ("The magic word is {magic}", "What is the magic word?", "{magic}"),
    ("The chef's secret spice is {spice}", "What is the chef's secret spice?", "{spice}"),
    ("The meeting moved to room {room}", "Which room did the meeting move to?", "{room}"),
]
# Needles that only real-footage haystacks add (a code beside a word; a value whose shortened form is wrong).
REAL_NEEDLES = [
    ("Flight QX{n4} now boarding", "What is the flight number displayed?", "QX{n4}"),
    ("Wifi password: {magic} {n2}", "What is the wifi password?", "{magic} {n2}"),
]
WORDS = ["BLUE HERON", "RED FOX", "SILVER MOON", "IRON GATE", "QUIET RIVER", "AMBER SKY", "GREEN LANTERN"]
VALUES = {
    "place": ["old lighthouse", "north bridge", "red mill", "clock tower", "stone pier"],
    "bird": ["Nightjar", "Kestrel", "Bluebird", "Cormorant", "Wren"],
    "thing": ["oak tree", "stone well", "blue bench", "broken statue", "garden shed"],
    "ship": ["Marigold", "Sea Harrier", "Aurora Star", "Lady Finch", "Northwind"],
    "magic": ["marmalade", "pumpernickel", "zephyr", "tangerine", "quicksilver"],
    "spice": ["saffron", "cardamom", "sumac", "fenugreek", "star anise"],
}
# Subjects that appear nowhere in any haystack: the honest answer is that the video does not say.
ABSENT = [  # (question, the word that names its subject: it appears on no frame of any haystack)
    ("What song is playing on the radio?", "song"), ("What is the name of the hotel?", "hotel"),
    ("What is the dog's name?", "dog"), ("Who won the chess tournament?", "chess"),
    ("What is the bride's maiden name?", "bride"), ("How tall is the radio mast?", "mast"),
    ("What is the recipe for the cake?", "cake"), ("Which team scored the winning goal?", "goal"),
    ("What is the pilot's rank?", "pilot"), ("What is the capital of the country Veloria?", "veloria"),
    ("What is the license plate of the taxi?", "taxi"), ("What is the poet's favourite flower?", "poet"),
]
# Distractors read like facts on other subjects, so on-screen text alone does not give the needle away.
TITLES = ["Quarterly Update", "Team Meeting", "Safety Briefing", "Product Roadmap", "Weather Report", "City News",
          "Museum Guide", "Travel Notes", "Kitchen Tips", "Garden Club", "Campus Events", "Market Watch"]
LINES = ["Train {n2} leaves from platform {n1}", "The museum opens at {n1} am", "Room {n3} is closed for cleaning",
         "Sales rose {n2} percent this quarter", "Bring your badge to the lobby", "The parade starts on Main Street",
         "Tickets cost {n2} dollars", "Call extension {n4} for support", "Rain expected after {n1} pm",
         "The library closes at {n1} pm", "Order {n5} has shipped", "Gate B{n1} is now boarding",
         "Temperature today is {n2} degrees", "Lunch is served in hall {L}", "Parking level {n1} is full",
         "New bike lanes open in {n1} weeks", "Water the tomatoes every {n1} days", "Bus {n2} runs every {n1} minutes",
         "Elections are held in {n1} districts", "Stock index closed up {n1} points"]
STYLES = ("slide", "sign", "ticker")
PALETTE = [(28, 36, 52), (52, 30, 40), (24, 48, 40), (60, 56, 30), (34, 34, 70), (70, 40, 24), (40, 40, 40)]


@dataclass(frozen=True)
class Scene:
    """A static picture shown over frames [f0, f1); `needle` is the index of the needle it shows, else -1."""

    f0: int
    f1: int
    style: str
    title: str
    lines: tuple[str, ...]
    color: int
    needle: int = -1


@dataclass(frozen=True)
class Needle:
    id: str
    fact: str
    question: str
    answer: str
    t0: float
    t1: float
    depth: float  # needle start as a fraction of the time a needle can start in: 0 = first frame, 1 = last slot


@dataclass(frozen=True)
class HaystackPlan:
    duration: float
    fps: float
    width: int
    height: int
    seed: int
    scenes: list[Scene]
    needles: list[Needle]
    absent: list[str]  # questions about facts shown nowhere


def _fill(rng: random.Random) -> dict[str, str]:
    return {
        "code": "-".join(str(rng.randint(1, 9)) for _ in range(4)), "n3": str(rng.randint(100, 999)),
        "hh": f"{rng.randint(6, 22):02d}", "mm": f"{rng.choice(range(5, 60, 5)):02d}",
        "floor": str(rng.randint(3, 40)), "room": str(rng.randint(101, 950)),
        **{k: rng.choice(v) for k, v in VALUES.items()},
        "n1": str(rng.randint(2, 9)), "n2": str(rng.randint(10, 99)), "n4": str(rng.randint(1000, 9999)),
        "n5": str(rng.randint(10000, 99999)), "L": rng.choice("ACDEFH"),
        **dict(zip(("w1", "w2"), rng.choice(WORDS).split())),
    }


def plan_haystack(duration: float, n_needles: int = 10, seed: int = 0, depths: list[float] | None = None,
                  fps: float = 2.0, size: tuple[int, int] = (640, 360), needle_seconds: tuple[float, float] = (4.0, 6.0),
                  scene_seconds: tuple[float, float] = (6.0, 20.0), n_absent: int = 10,
                  pool: list[tuple[str, str, str]] = NEEDLES) -> HaystackPlan:
    """Lay out scenes and needles drawn from `pool`; `depths` default to evenly spaced from 0 to 1 (the V-NIAH
    grid)."""
    if duration < 60:
        raise ValueError(f"a haystack shorter than a minute cannot hide needles among scenes, got {duration} s")
    if not 1 <= n_needles <= len(pool):
        raise ValueError(f"n_needles must be 1..{len(pool)} (one per distinct fact template), got {n_needles}")
    if n_absent > len(ABSENT):
        raise ValueError(f"n_absent must be at most {len(ABSENT)}, got {n_absent}")
    if depths is None:
        depths = [i / (n_needles - 1) if n_needles > 1 else 0.5 for i in range(n_needles)]
    if len(depths) != n_needles or not all(0.0 <= d <= 1.0 for d in depths):
        raise ValueError(f"need {n_needles} depths in [0, 1], got {depths}")
    rng = random.Random(seed)
    n_frames = int(round(duration * fps))
    lens = [int(round(rng.uniform(*needle_seconds) * fps)) for _ in depths]
    templates = rng.sample(range(len(pool)), n_needles)

    windows = []  # (f0, f1, needle index), in time order, never overlapping
    for i in sorted(range(n_needles), key=lambda i: depths[i]):
        f0 = int(round(depths[i] * (n_frames - lens[i])))
        if windows and f0 < windows[-1][1] + int(fps):
            f0 = windows[-1][1] + int(fps)  # keep a second of haystack between needles
        if f0 + lens[i] > n_frames:
            raise ValueError(f"{n_needles} needles at depths {depths} do not fit in {duration} s")
        windows.append((f0, f0 + lens[i], i))

    needles: list[Needle | None] = [None] * n_needles
    scenes: list[Scene] = []
    frame = 0
    for f0, f1, i in windows + [(n_frames, n_frames, -1)]:
        while frame < f0:  # haystack scenes up to the next needle, the last one cut at the needle
            length = int(round(rng.uniform(*scene_seconds) * fps))
            end = min(frame + length, f0)
            scenes.append(_distractor(frame, end, rng))
            frame = end
        if i < 0:
            break
        fact_t, question, answer_t = pool[templates[i]]
        values = _fill(rng)
        fact = fact_t.format(**values)
        needles[i] = Needle(id=f"needle-{i:02d}", fact=fact, question=question, answer=answer_t.format(**values),
                            t0=f0 / fps, t1=f1 / fps, depth=round(f0 / max(1, n_frames - lens[i]), 4))
        scenes.append(Scene(f0, f1, rng.choice(STYLES), rng.choice(TITLES), (fact,), rng.randrange(len(PALETTE)), i))
        frame = f1
    absent = [q for q, _ in rng.sample(ABSENT, n_absent)]
    return HaystackPlan(duration=n_frames / fps, fps=fps, width=size[0], height=size[1], seed=seed, scenes=scenes,
                        needles=[n for n in needles if n is not None], absent=absent)


def _distractor(f0: int, f1: int, rng: random.Random) -> Scene:
    lines = tuple(t.format(**_fill(rng)) for t in rng.sample(LINES, rng.randint(1, 3)))
    return Scene(f0, f1, rng.choice(STYLES), rng.choice(TITLES), lines, rng.randrange(len(PALETTE)))


def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/Library/Fonts"):
        if Path(folder, name).exists():
            return ImageFont.truetype(str(Path(folder, name)), size)
    return ImageFont.load_default(size=size)


def render_scene(scene: Scene, width: int = 640, height: int = 360) -> np.ndarray:
    """One scene's picture [H, W, 3] uint8; text sizes scale with the frame height so OCR reads them at any size."""
    from PIL import Image, ImageDraw

    u = height / 360
    bg = PALETTE[scene.color]
    im = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(im)
    accent = tuple(min(255, c + 90) for c in bg)
    # Shapes that differ per scene make scene cuts visible to the gate the way real cuts are.
    r = random.Random(scene.f0)
    for _ in range(3):
        x, y, s = r.randrange(width), r.randrange(height), r.randint(int(20 * u), int(70 * u))
        draw.ellipse((x, y, x + s, y + s), outline=accent, width=max(1, int(3 * u)))

    def fit(text: str, size: int, bold: bool = False):
        font = _font(int(size * u), bold)
        while draw.textlength(text, font=font) > width * 0.9 and size > 10:
            size -= 2
            font = _font(int(size * u), bold)
        return font

    if scene.style == "slide":
        draw.rectangle((0, 0, width, int(56 * u)), fill=accent)
        draw.text((int(20 * u), int(12 * u)), scene.title, font=fit(scene.title, 28, True), fill=(255, 255, 255))
        for k, line in enumerate(scene.lines):
            draw.text((int(28 * u), int((96 + 56 * k) * u)), line, font=fit(line, 24), fill=(240, 240, 240))
    elif scene.style == "sign":
        box = (int(40 * u), int(70 * u), width - int(40 * u), height - int(70 * u))
        draw.rounded_rectangle(box, radius=int(16 * u), fill=(235, 235, 225), outline=accent, width=int(6 * u))
        y = int(100 * u)
        for line in (scene.title,) + scene.lines[:2]:
            font = fit(line, 24, line == scene.title)
            w = draw.textlength(line, font=font)
            draw.text(((width - w) / 2, y), line, font=font, fill=(20, 20, 30))
            y += int(50 * u)
    else:  # ticker: a studio-like picture with a headline bar, as on news channels
        draw.rectangle((0, height - int(78 * u), width, height), fill=(180, 20, 30))
        draw.text((int(12 * u), height - int(70 * u)), scene.title.upper(), font=fit(scene.title, 18, True),
                  fill=(255, 230, 120))
        draw.text((int(12 * u), height - int(42 * u)), scene.lines[0], font=fit(scene.lines[0], 24),
                  fill=(255, 255, 255))
        for k, line in enumerate(scene.lines[1:]):
            draw.text((int(24 * u), int((60 + 50 * k) * u)), line, font=fit(line, 22), fill=(230, 230, 230))
    return np.asarray(im)


def haystack_frames(plan: HaystackPlan) -> Iterator[tuple[float, np.ndarray]]:
    """(t, image) for every frame; each scene is rendered once, so an hour costs a few hundred renders."""
    for scene in plan.scenes:
        image = render_scene(scene, plan.width, plan.height)
        for f in range(scene.f0, scene.f1):
            yield f / plan.fps, image


def questions(plan: HaystackPlan, video: str) -> list[dict]:
    """Needle questions ({id, video, question, answer, t0, t1, depth, kind}) then questions about absent facts."""
    rows = [{"id": n.id, "video": video, "question": n.question, "answer": n.answer, "fact": n.fact,
             "t0": n.t0, "t1": n.t1, "depth": n.depth, "kind": "needle", "duration": plan.duration}
            for n in plan.needles]
    rows += [{"id": f"absent-{k:02d}", "video": video, "question": q, "answer": "not present", "fact": None,
              "t0": None, "t1": None, "depth": None, "kind": "absent", "duration": plan.duration}
             for k, q in enumerate(plan.absent)]
    return rows


def _words(text: str) -> str:
    # Numbers compare by value: "09:05" and "9:05" state the same time.
    return " ".join(w.lstrip("0") or "0" if w.isdigit() else w for w in re.findall(r"[a-z]+|[0-9]+", text.casefold()))


def contains_answer(text: str, answer: str) -> bool:
    """The reply states the fact: the answer's words in order, ignoring case and punctuation; spacing may differ
    (OCR glues words: "room175", "thered mill"), but a number never matches inside a longer one ("30" vs "300")."""
    words, reply = _words(answer), _words(text)
    if f" {words} " in f" {reply} ":
        return True
    a, r = words.replace(" ", ""), reply.replace(" ", "")
    for m in re.finditer(f"(?={re.escape(a)})", r):
        i, j = m.start(), m.start() + len(a)
        if not ((i > 0 and a[0].isdigit() and r[i - 1].isdigit()) or (j < len(r) and a[-1].isdigit() and r[j].isdigit())):
            return True
    return False


_ABSENT = re.compile(r"\b(not|no|never|cannot|can't|couldn't|unable|doesn't|isn't|none|unknown|vision model)\b")
_TIME = re.compile(r"\b\d{1,2}:\d{2}(:\d{2})?\b")


def says_absent(text: str) -> bool:
    """The reply says the video does not tell (and quotes no time stamp that would pretend otherwise)."""
    return bool(_ABSENT.search(text.casefold().replace("\u2019", "'"))) and not _TIME.search(text)


_SPAN = re.compile(r"\[?\b\d{1,2}:\d{2}:\d{2}\b")


def contradicts_quote(text: str, answer: str) -> bool:
    """The reply's own statement (the text before its first quoted time span) gives the fact otherwise than the
    evidence it quotes: it says "tangerine" while quoting "tangerine 42", or a number its quotes do not hold."""
    first = _SPAN.search(text)
    statement, evidence = (text[:first.start()], text[first.start():]) if first else ("", text)
    if not _words(statement) or '"' not in evidence and "\u201c" not in evidence:
        return False
    told, quoted = set(_words(statement).split()), _words(evidence).split()
    partial = bool(told & set(_words(answer).split())) and not contains_answer(statement, answer)
    invented = any(w.isdigit() and w not in quoted for w in told)
    return (partial and contains_answer(evidence, answer)) or invented


def score(row: dict, text: str, citations: list[tuple[float, float]], tolerance: float = 2.0) -> dict:
    """Grade one reply: needles need the fact (stated as the reply's quote states it) and a citation overlapping
    [t0 - tol, t1 + tol]; absent facts need a refusal, and a strict refusal also cites nothing."""
    if row["kind"] == "absent":
        refused = says_absent(text)
        return {"refused": refused, "refused_strict": refused and not citations}
    lo, hi = row["t0"] - tolerance, row["t1"] + tolerance
    hits = [c0 < hi and c1 > lo for c0, c1 in citations]
    right = contains_answer(text, row["answer"]) and not contradicts_quote(text, row["answer"])
    return {"answer_ok": right, "time_ok": any(hits),
            "top_time_ok": bool(hits and hits[0])}


@dataclass(frozen=True)
class NiahSample:
    video: Path
    questions: Path
    plan: HaystackPlan


def make_niah(out_dir: str | Path, duration: float, n_needles: int = 10, seed: int = 0, background: str = "generated",
              **plan_kwargs) -> NiahSample:
    """Write `niah_<minutes>m_s<seed>.mp4` and its `.jsonl` of questions into `out_dir`; reuse them if present.
    `background="real"` burns the scenes' text onto looped real footage (`niah_real_...`), with REAL_NEEDLES too."""
    from longwatch.samples.videos import write_video

    if background not in ("generated", "real"):
        raise ValueError(f"background must be 'generated' or 'real', got {background!r}")
    real = background == "real"
    plan = plan_haystack(duration, n_needles=n_needles, seed=seed, **({"pool": NEEDLES + REAL_NEEDLES} if real else {}),
                         **plan_kwargs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"niah_{'real_' if real else ''}{duration / 60:g}m_s{seed}"
    video, qpath = out / f"{stem}.mp4", out / f"{stem}.jsonl"
    rows = questions(plan, video.name)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    # The JSONL doubles as the cache key: same plan, same file, so an existing video is this plan's video.
    if not (video.exists() and qpath.exists() and qpath.read_text() == text):
        if real:
            from longwatch.samples.niah_real import write_real_haystack

            write_real_haystack(plan, video, PALETTE)
        else:
            write_video(video, haystack_frames(plan), fps=plan.fps)
        qpath.write_text(text)
    return NiahSample(video=video, questions=qpath, plan=plan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--minutes", type=float, nargs="+", default=[60.0])
    parser.add_argument("--needles", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background", choices=("generated", "real"), default="generated")
    args = parser.parse_args(argv)
    for minutes in args.minutes:
        sample = make_niah(args.out_dir, minutes * 60, n_needles=args.needles, seed=args.seed,
                           background=args.background)
        print(sample.video, sample.questions)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
