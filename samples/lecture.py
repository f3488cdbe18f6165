"""A generated lecture for the evidence timeline: slides (bullets, a numbers table) in several fonts and colours,
espeak-ng narration in several voices and speeds, and a subtitle track, each carrying facts the others do not.

`make_lecture(folder, minutes, seed, variant)` writes the video, its subtitles and a JSON of the timeline and the
questions (by category, with ground truth); `score` grades one reply. Every topic, name, number, voice, font and
colour comes from the seed, so another seed is another lecture.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from longwatch.samples import lecture_pools as P
from longwatch.samples.lecture_slides import Slide, render_slide
from longwatch.samples.niah import _words, contains_answer, contradicts_quote, says_absent
from longwatch.samples.speech import RATE, encode_variant, say, write_wav

TOLERANCE = 3.0  # seconds a citation may miss the time a fact was said or shown by
CATEGORIES = ("spoken", "subtitle", "slide", "paraphrase", "ordering", "absent", "summary")
VARIANTS = {"srt": "sidecar", "mkv-ass": "mkv_ass", "movtext": "mp4_mov_text"}  # lecture name -> speech variant


@dataclass(frozen=True)
class Sentence:
    """One narrated sentence; `slide` is on screen while it is said, `cue` a subtitle shown from its start."""

    text: str
    voice: str
    speed: int
    slide: int
    cue: str = ""


@dataclass
class Plan:
    slides: list[Slide]
    sentences: list[Sentence]
    facts: list[dict]  # question rows whose "ref" says where the truth sits: ("sentence"|"cue"|"slide", [indices])


@dataclass
class LectureSample:
    video: str
    sidecar: str | None
    variant: str
    duration: float
    wav: str
    manifest: str
    said: list[list] = field(default_factory=list)  # [t0, t1, text] per narrated sentence
    subtitles: list[list] = field(default_factory=list)  # [t0, t1, text] per cue
    shown: list[list] = field(default_factory=list)  # [t0, t1, slide text] per showing
    questions: list[dict] = field(default_factory=list)


def number_words(n: int) -> list[str]:
    """How a transcript may write 0 <= n < 10000 in words ("three hundred fifty", "three hundred and fifty")."""
    ones = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen").split()
    tens = "- - twenty thirty forty fifty sixty seventy eighty ninety".split()

    def small(k: int) -> str:
        return ones[k] if k < 20 else tens[k // 10] + (f" {ones[k % 10]}" if k % 10 else "")

    def spell(k: int, joiner: str) -> str:
        parts = []
        if k >= 1000:
            parts.append(small(k // 1000) + " thousand")
            k %= 1000
        if k >= 100:
            parts.append(ones[k // 100] + " hundred")
            k %= 100
        if k or not parts:
            parts.append((joiner if parts else "") + small(k))
        return " ".join(parts)

    return list(dict.fromkeys([spell(n, ""), spell(n, "and ")]))


def _answers(value: str) -> list[str]:
    """The truth and, for a whole number, its spellings: numbers may be said as words and written as digits."""
    return [value, *number_words(int(value))] if value.isdigit() and int(value) < 10000 else [value]


def _values(rng: random.Random) -> dict[str, str]:
    """One value per fact slot; no two numbers are equal, so a number answers one question only."""
    used: set[str] = set()

    def fresh(options) -> str:
        value = str(rng.choice([o for o in options if str(o) not in used]))
        used.add(value)
        return value

    v = {k: rng.choice(pool) for k, pool in P.VALUES.items()}
    quizday, officeday = rng.sample(P.WEEKDAYS, 2)
    v.update(quizday=quizday, officeday=officeday, team=fresh(range(3, 7)), hour=fresh(range(2, 9)),
             hw=fresh(range(3, 10)), kg=fresh(range(3, 20)), day=fresh(range(2, 29)),
             volts=fresh([6, 9, 12, 24, 48, 110]), budget=fresh(range(150, 950, 50)), room=fresh(range(101, 480)),
             mins=fresh([45, 60, 90, 120]), pin=fresh(range(1000, 9999)), pcode=f"PK-{fresh(range(1000, 9999))}",
             srv=f"QX{fresh(range(1000, 9999))}", ccode=f"{rng.choice(['ENG', 'SYS', 'MEC', 'ELE'])}-"
             f"{fresh(range(100, 499))}", hall=f"{rng.choice('BCDFGH')}{rng.randint(2, 9)}",
             rows=f"{rng.randint(1, 9)}.{rng.randint(1, 9)}")
    return v


def _table(rng: random.Random, taken: set[str]) -> tuple[tuple[str, ...], ...]:
    """Quarters x three columns; no cell repeats a value said or subtitled elsewhere (`taken`)."""
    cols = rng.sample(list(P.TABLE_QUESTIONS), 3)
    costs = rng.sample([f"{a}.{b}M" for a in range(1, 10) for b in range(1, 10)], 4)
    units = rng.sample([u for u in range(120, 990) if str(u) not in taken], 4)
    cells = {"Cost": costs, "Units": [str(u) for u in units],
             "City": rng.sample(P.TABLE_CITIES, 4)}
    return (("Quarter", *cols), *((f"Q{i + 1}", *(cells[c][i] for c in cols)) for i in range(4)))


def _style(rng: random.Random) -> dict:
    return {"font": rng.randrange(len(P.FONTS)), "theme": rng.randrange(len(P.THEMES)),
            "scale": round(rng.uniform(0.85, 1.15), 2)}


def plan_lecture(minutes: float, seed: int = 0) -> Plan:
    """Slides, sentences and facts of a lecture about `minutes` long; pure function of (minutes, seed)."""
    if not 1.0 <= minutes <= 120.0:
        raise ValueError(f"a lecture is 1 to 120 minutes long, got {minutes}")
    rng = random.Random(seed)
    v = _values(rng)
    n_sections = max(3, min(len(P.TOPICS), round(minutes * 60 / 70)))
    per_section = max(6, round((minutes * 60 - 25) / n_sections / 5.2))
    topics = rng.sample(P.TOPICS, n_sections)
    spoken = rng.sample(P.SPOKEN, min(len(P.SPOKEN), max(2, round(minutes / 3))))
    cued = rng.sample(P.SUBTITLE, min(len(P.SUBTITLE), max(2, round(minutes / 5))))
    shown = rng.sample(P.SLIDE, min(len(P.SLIDE), max(2, round(minutes / 3.5))))
    order = rng.sample(range(n_sections), n_sections)  # facts go round-robin over sections in this order
    table = _table(rng, {n for value in v.values() for n in re.findall(r"\d+", value)})
    table_title = rng.choice(P.TABLE_TITLES)
    table_at = sorted(rng.sample(range(n_sections), 2 if n_sections < 6 else 3))
    motif, motif_at = rng.choice(P.MOTIFS), sorted(rng.sample(range(n_sections), min(n_sections, rng.randint(2, 4))))
    lecturer = f"Dr. {rng.choice(P.VALUES['first'])} {rng.choice([n for n in P.VALUES['last'] if n != v['last']])}"

    slides = [Slide(rng.choice(P.COURSES), (lecturer,), **_style(rng))]
    sentences = [Sentence(f"Welcome to today's lecture. My name is {lecturer}.", P.VOICES[0], 160, 0)]
    facts: list[dict] = []
    table_style = _style(rng)
    for s, (title, *keys) in enumerate(topics):
        kw = {f"k{i + 1}": k for i, k in enumerate(keys)} | {f"K{i + 1}": k.capitalize() for i, k in enumerate(keys)}
        voice, speed = rng.choice(P.VOICES) + rng.choice(P.VOICE_VARIANTS), rng.randint(*P.SPEEDS)
        mine = [j for j in range(max(len(spoken), len(cued), len(shown))) if order[j % n_sections] == s]
        bullets = [b.format(**kw) for b in rng.sample(P.BULLETS, rng.randint(2, 3))]
        slide_facts = [shown[j] for j in mine if j < len(shown)]
        for bullet, *_ in slide_facts:
            bullets.insert(rng.randint(0, len(bullets)), bullet.format(**v))
        slides.append(Slide(title, tuple(bullets), **_style(rng)))
        main = len(slides) - 1
        for bullet, direct, paraphrase, answer in slide_facts:
            ref = ("slide", [main])
            facts += [{"category": "slide", "question": direct, "answers": [answer.format(**v)], "ref": ref},
                      {"category": "paraphrase", "question": paraphrase, "answers": [answer.format(**v)], "ref": ref}]
        lines = [f"Now let us turn to {title}."]
        lines += [f.format(**kw) for f in rng.sample(P.FILLERS, min(len(P.FILLERS), per_section - 1))]
        said = [(rng.randint(1, len(lines)), spoken[j]) for j in mine if j < len(spoken)]
        if s in motif_at:
            said.append((rng.randint(1, len(lines)), (P.MOTIF_LINE.format(motif=motif), None, None)))
        for at, (text, question, answer) in sorted(said, key=lambda x: -x[0]):
            lines.insert(at, text.format(**v))
        cues = {}
        for j in mine:
            if j < len(cued):
                cues[rng.choice([i for i in range(len(lines)) if i not in cues])] = cued[j]
        first = len(sentences)
        switch = len(lines) // 2 if s in table_at else len(lines)
        if s in table_at:
            recap = s != table_at[0]
            lines.insert(switch, f"Let us look at the {table_title} table again." if recap
                         else "Here are the numbers for this part.")
            cues = {(i + 1 if i >= switch else i): c for i, c in cues.items()}
            slides.append(Slide(table_title, (), table, **table_style))
        for i, text in enumerate(lines):
            cue = cues[i][0].format(**v) if i in cues else ""
            sentences.append(Sentence(text, voice, speed, main if i < switch else len(slides) - 1, cue))
        for i, (t, question, answer) in cues.items():
            facts.append({"category": "subtitle", "question": question, "answers": [answer.format(**v)],
                          "ref": ("cue", [first + i])})
        for k, line in enumerate(lines):
            for text, question, answer in spoken:
                if line == text.format(**v):
                    facts.append({"category": "spoken", "question": question,
                                  "answers": _answers(answer.format(**v)), "ref": ("sentence", [first + k])})
    slides.append(Slide("Thank you", ("Questions?",), **_style(rng)))
    sentences += [Sentence(t, P.VOICES[0], 160, len(slides) - 1)
                  for t in ("That is all for today.", "Thank you for listening.")]
    sentences[-1] = Sentence(sentences[-1].text, sentences[-1].voice, 160, len(slides) - 1,
                             rng.choice(P.SUBTITLE_FILLERS))

    tables = [i for i, sl in enumerate(slides) if sl.table]
    quarters = rng.sample(range(4), 3)
    for col, q in zip(table[0][1:], quarters):
        direct, paraphrase = P.TABLE_QUESTIONS[col]
        cell = table[q + 1][table[0].index(col)]
        names = {"q": f"Q{q + 1}", "ordinal": P.ORDINALS[q]}
        facts += [{"category": category, "question": question.format(**names), "answers": [cell],
                   "ref": ("slide", tables)} for category, question in (("slide", direct), ("paraphrase", paraphrase))]
    pairs = [(a, b) for a in range(n_sections) for b in range(a + 1, n_sections)]
    for a, b in rng.sample(pairs, min(3, len(pairs))):
        x, y = rng.sample([topics[a][0], topics[b][0]], 2)
        facts.append({"category": "ordering", "kind": "which_first", "question": f"Which came first in the lecture, "
                      f"{x} or {y}?", "answers": [topics[a][0]], "other": [topics[b][0]], "ref": ("slide", [])})
    facts += [{"category": "ordering", "kind": "first_shown", "question": f"When was the {table_title} table "
               "first shown?", "answers": [], "ref": ("slide", tables[:1])},
              {"category": "ordering", "kind": "count", "question": f"How many times was the {table_title} table "
               "shown?", "answers": _answers(str(len(tables))), "ref": ("slide", [])},
              {"category": "ordering", "kind": "count", "question": f"How many times did the speaker mention the "
               f"{motif}?", "answers": _answers(str(len(motif_at))), "ref": ("sentence", [])}]
    facts += [{"category": "absent", "kind": "absent", "question": q, "answers": [], "ref": ("slide", [])}
              for q, _ in rng.sample(P.ABSENT, min(len(P.ABSENT), max(4, round(minutes / 3))))]
    facts.append({"category": "summary", "kind": "summary", "question": "Summarize the talk.", "answers": [],
                  "ref": ("slide", [])})
    return Plan(slides, sentences, facts)


def _timeline(plan: Plan, voices: list[np.ndarray], target: float, rng: random.Random):
    """Sentence spans, slide showings, cue spans and the duration: silence between sentences is spread so the
    lecture lasts about `target` seconds (never less than 0.6 s between two sentences)."""
    lengths = [len(a) / RATE for a in voices]
    weights = [rng.uniform(0.6, 1.4) * (3.0 if i and s.slide != plan.sentences[i - 1].slide else 1.0)
               for i, s in enumerate(plan.sentences)]
    spare = max(0.0, target - 2.5 - sum(lengths))
    gaps = [max(0.6, spare * wt / sum(weights)) for wt in weights]
    spans, showings, cues, t = [], [], [], 0.0
    for i, (s, gap, length) in enumerate(zip(plan.sentences, gaps, lengths)):
        start = round((t + gap) * RATE) / RATE
        if not showings or showings[-1][0] != s.slide:
            cut = 0.0 if not showings else round(start - 0.4 * gap, 1)
            if showings:
                showings[-1][2] = cut
            showings.append([s.slide, cut, None])
        spans.append((start, start + length))
        if s.cue:
            cues.append([start + 0.2, start + 0.2 + min(5.0, max(2.5, 0.35 * len(s.cue.split()))), s.cue])
        t = start + length
    duration = round(max(t + 1.5, cues[-1][1] + 0.5 if cues else 0.0), 1)
    showings[-1][2] = duration
    for a, b in zip(cues, cues[1:]):
        a[1] = min(a[1], b[0] - 0.1)
    return spans, showings, cues, duration


def _questions(plan: Plan, spans, showings, cues) -> list[dict]:
    cue_of = {i: k for k, i in enumerate(i for i, s in enumerate(plan.sentences) if s.cue)}
    rows = []
    for n, fact in enumerate(plan.facts):
        kind, refs = fact["ref"]
        if kind == "sentence":
            windows = [list(spans[i]) for i in refs]
        elif kind == "cue":
            windows = [cues[cue_of[i]][:2] for i in refs]
        else:
            windows = [[a, b] for slide, a, b in showings if slide in refs]
        row = {k: val for k, val in fact.items() if k != "ref"}
        row.setdefault("kind", "fact")
        rows.append({"id": f"{fact['category']}-{n:02d}", **row, "windows": windows})
    return rows


def make_lecture(folder: str | Path, minutes: float = 30.0, seed: int = 0, variant: str = "srt",
                 size: tuple[int, int] = (960, 540), fps: int = 5) -> LectureSample:
    """Write `lecture_<minutes>m_s<seed>_<variant>` (video, narration WAV, JSON of timeline and questions) into
    `folder` and return it; an existing build of the same parameters is reused. `variant`: srt (MP4 + sidecar
    name.en.srt), mkv-ass (MKV with an ASS track), movtext (MP4 with a mov_text track)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown lecture variant {variant!r}; choose {', '.join(VARIANTS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"lecture_{minutes:g}m_s{seed}_{variant}"
    manifest = folder / f"{stem}.json"
    plan = plan_lecture(minutes, seed)
    # The plan's digest is part of the key: a changed generator never reuses an old build.
    params = {"minutes": minutes, "seed": seed, "variant": variant, "size": list(size), "fps": fps,
              "plan": hashlib.sha256(repr(plan).encode()).hexdigest()[:16]}
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.pop("params") == params and Path(saved["video"]).exists():
            return LectureSample(**saved)
    with ThreadPoolExecutor(2) as pool:  # espeak-ng is one process per sentence; two cores here
        voices = list(pool.map(lambda i: say(plan.sentences[i].text, folder / f"{stem}.say{i}.wav",
                                             plan.sentences[i].voice, plan.sentences[i].speed),
                               range(len(plan.sentences))))
    spans, showings, cues, duration = _timeline(plan, voices, minutes * 60, random.Random(f"{seed}-gaps"))
    track = np.zeros(int(duration * RATE) + 1, dtype=np.int16)
    for (t0, _), voice in zip(spans, voices):
        track[round(t0 * RATE):round(t0 * RATE) + len(voice)] = voice
    wav = write_wav(folder / f"{stem}.wav", track)

    images = folder / f"{stem}_slides"
    images.mkdir(exist_ok=True)
    for i, slide in enumerate(plan.slides):
        render_slide(slide, size).save(images / f"{i:03d}.png")
    listing = images / "concat.txt"
    entries = [f"file '{images / f'{i:03d}.png'}'\nduration {b - a:.3f}\n" for i, a, b in showings]
    listing.write_text("".join(entries) + f"file '{images / f'{showings[-1][0]:03d}.png'}'\n")
    picture = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    path, sidecar = encode_variant(folder, stem, VARIANTS[variant], picture, wav, [tuple(c) for c in cues], duration,
                                   video_args=("-vf", f"fps={fps}"), timeout=900)
    sample = LectureSample(
        video=str(path), sidecar=str(sidecar) if sidecar else None, variant=variant, duration=duration, wav=str(wav),
        manifest=str(manifest), said=[[a, b, s.text] for (a, b), s in zip(spans, plan.sentences)], subtitles=cues,
        shown=[[a, b, plan.slides[i].text()] for i, a, b in showings],
        questions=_questions(plan, spans, showings, cues))
    manifest.write_text(json.dumps({"params": params, **asdict(sample)}, indent=1))
    return sample


_QUOTE = re.compile(r"\"([^\"]+)\"|\u201c([^\u201d]+)\u201d")
_ORDER = re.compile(r"\b(before|first|earlier|preceded|followed by|then)\b")
_STAMP = re.compile(r"\[?\b\d{1,2}:\d{2}(?::\d{2})?(?:\s*[\u2013-]\s*\d{1,2}:\d{2}(?::\d{2})?)?\]?")


def quotes(text: str) -> list[str]:
    """The passages a reply quotes ("..." or “...”)."""
    return [a or b for a, b in _QUOTE.findall(text)]


def stated_times(text: str) -> list[float]:
    """Every h:mm:ss / m:ss time a reply states, in seconds."""
    out = []
    for m in re.finditer(r"\b(?:(\d{1,2}):)?(\d{1,2}):(\d{2})\b", text):
        h, mm, ss = (int(g) if g else 0 for g in m.groups())
        out.append(h * 3600 + mm * 60 + ss)
    return out


def traceable(text: str, evidence: list[str]) -> bool:
    """Every quoted passage (split at ellipses) is word for word in some piece of the bank's evidence."""
    stored = [f" {_words(e)} " for e in evidence]
    pieces = [p for q in quotes(text) for p in re.split(r"\u2026|\.\.\.", q) if _words(p)]
    return bool(pieces) and all(any(f" {_words(p)} " in e for e in stored) for p in pieces)


def _first_at(text: str, answer: str) -> int:
    words = f" {_words(text)} "
    i = words.find(f" {_words(answer)} ")
    return i if i >= 0 else len(words)


def score(row: dict, text: str, citations: list[tuple[float, float]], evidence: list[str] = (),
          duration: float | None = None) -> dict:
    """Grade one reply to a question row of `make_lecture`: {"ok": bool, ...the parts}. Facts need the answer, stated
    as its own quote states it, and a citation within TOLERANCE of a time it was said or shown; absent facts a refusal citing nothing; a summary
    quotes only stored evidence and cites only times inside the video."""
    kind = row.get("kind", "fact")
    near = any(c0 < b + TOLERANCE and c1 > a - TOLERANCE for c0, c1 in citations for a, b in row["windows"])
    if kind == "absent":
        refused = says_absent(text)
        return {"ok": refused and not citations, "refused": refused}
    if kind == "summary":
        inside = bool(citations) and all(0 <= c0 <= c1 <= (duration or float("inf")) + 1 for c0, c1 in citations)
        quoted = traceable(text, list(evidence))
        return {"ok": inside and quoted, "traceable": quoted, "cites_inside": inside}
    if kind == "first_shown":
        t = row["windows"][0][0]
        said = any(abs(s - t) <= TOLERANCE for s in stated_times(text))
        first = bool(citations) and abs(citations[0][0] - t) <= TOLERANCE
        return {"ok": said or first, "time_ok": said or first}
    bare = _STAMP.sub(" ", text)  # "[00:04:10]" does not say "4"
    found = any(contains_answer(bare, a) for a in row["answers"])
    if kind == "count":
        return {"ok": found}
    if kind == "which_first":  # naming both topics answers only with an order word and the first one first
        both = any(contains_answer(bare, o) for o in row["other"])
        ordered = min(_first_at(text, a) for a in row["answers"]) < min(_first_at(text, o) for o in row["other"])
        right = found and (not both or (ordered and bool(_ORDER.search(text.casefold()))))
        return {"ok": right, "answer_ok": right}
    found = found and not contradicts_quote(text, row["answers"][0])  # "tangerine" beside a quoted "tangerine 42"
    return {"ok": found and near, "answer_ok": found, "time_ok": near}


def summarise(graded: list[dict]) -> dict[str, dict]:
    """Per category: questions, right answers and accuracy."""
    out = {}
    for category in CATEGORIES:
        rows = [g for g in graded if g["category"] == category]
        if rows:
            right = sum(bool(g["ok"]) for g in rows)
            out[category] = {"n": len(rows), "ok": right, "acc": right / len(rows)}
    return out
