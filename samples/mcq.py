"""A small self-made multiple-choice set in the LVBench / Video-MME / MLVU shapes, for `longwatch batch`.

Those benchmarks' videos cannot be redistributed; this writes short videos with on-screen facts and a
JSONL whose rows use each benchmark's field conventions, so the loaders and scoring run end to end.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

# (question, the fact's template, four candidate values); the video shows one value, chosen by the seed.
FACTS = [
    ("Which room is the meeting in?", "THE MEETING IS IN ROOM {}", ["417", "392", "128", "560"]),
    ("What is the budget?", "THE BUDGET IS {} UNITS", ["42", "17", "88", "63"]),
    ("Which gate does the flight leave from?", "FLIGHT LEAVES FROM GATE {}", ["B7", "C2", "A9", "D4"]),
    ("What is the password?", "THE PASSWORD IS {}", ["HERON", "MAPLE", "COBALT", "TULIP"]),
    ("Which floor is the lab on?", "THE LAB IS ON FLOOR {}", ["12", "3", "27", "8"]),
    ("What time does the train depart?", "THE TRAIN DEPARTS AT {}", ["09:40", "14:15", "18:05", "06:30"]),
]
STYLES = ("video-mme", "mlvu", "lvbench")


def make_mcq(out_dir: str | Path, n_videos: int = 3, duration: float = 30.0, seed: int = 0) -> Path:
    """Write `n_videos` videos (one fact card each, shown from 40% to 60% of the video) and `questions.jsonl`.

    Returns the question file. Row shapes: Video-MME ("A. text" options, answer letter), MLVU
    ("candidates", answer as text), LVBench (options, answer letter, "time_reference" as mm:ss-mm:ss).
    """
    from longwatch.samples.videos import make_sample

    if not 1 <= n_videos <= len(FACTS):
        raise ValueError(f"n_videos must be 1..{len(FACTS)}, got {n_videos}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i, (question, template, values) in enumerate(rng.sample(FACTS, n_videos)):
        truth = rng.choice(values)
        options = rng.sample(values, len(values))
        t0, t1 = round(duration * 0.4, 1), round(duration * 0.6, 1)
        video = f"mcq{i}"
        make_sample(out / f"{video}.mp4", duration=duration, fps=5, size=(640, 360), seed=seed + i,
                    texts=[(t0, t1, template.format(truth))])
        style = STYLES[i % len(STYLES)]
        row = {"id": f"{style}-{i}", "video": video, "question": question}
        letter = "ABCD"[options.index(truth)]
        if style == "video-mme":
            row |= {"options": [f"{'ABCD'[k]}. {o}" for k, o in enumerate(options)], "answer": letter}
        elif style == "mlvu":
            row |= {"candidates": options, "answer": truth}
        else:
            row |= {"options": options, "answer": letter,
                    "time_reference": f"{int(t0 // 60):02d}:{t0 % 60:04.1f}-{int(t1 // 60):02d}:{t1 % 60:04.1f}"}
        rows.append(row)
    path = out / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
