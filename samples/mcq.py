"""A small self-made multiple-choice set: generated videos with on-screen facts, and question files about them
in our JSONL and in the four benchmark formats exactly as their authors ship them (see app/benchfiles.py).

Those benchmarks' videos cannot be redistributed; these let the loaders, `longwatch batch` and `longwatch eval`
run end to end on real files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

# (question, the fact's template, four candidate values, a task label); the video shows one value.
FACTS = [
    ("Which room is the meeting in?", "THE MEETING IS IN ROOM {}", ["417", "392", "128", "560"], "location"),
    ("What is the budget?", "THE BUDGET IS {} UNITS", ["42", "17", "88", "63"], "number"),
    ("Which gate does the flight leave from?", "FLIGHT LEAVES FROM GATE {}", ["B7", "C2", "A9", "D4"], "location"),
    ("What is the password?", "THE PASSWORD IS {}", ["HERON", "MAPLE", "COBALT", "TULIP"], "text"),
    ("Which floor is the lab on?", "THE LAB IS ON FLOOR {}", ["12", "3", "27", "8"], "location"),
    ("What time does the train depart?", "THE TRAIN DEPARTS AT {}", ["09:40", "14:15", "18:05", "06:30"], "number"),
]
STYLES = ("video-mme", "mlvu", "lvbench")
# What `make_benchmark_set` writes, by format (the file names the benchmarks use, where they have one).
FILES = {"longwatch": "questions.jsonl", "lvbench": "video_info.meta.jsonl", "videomme": "videomme.json",
         "mlvu": "mlvu_needle.json", "longvideobench": "lvb_val.json"}


def _mmss(t: float) -> str:
    return f"{int(t // 60):02d}:{int(t % 60):02d}"


def make_benchmark_set(out_dir: str | Path, n_videos: int = 3, duration: float = 30.0,
                       seed: int = 0) -> dict[str, Path]:
    """Write `n_videos` videos `mcq<i>.mp4` (one fact card each, on screen from 40% to 60% of the video) and one
    question per video in each format of FILES, plus `videomme.parquet` when pyarrow is installed.

    Returns {format: path}. Every file asks the same facts, so their scores are comparable.
    """
    from longwatch.samples.videos import make_sample

    if not 1 <= n_videos <= len(FACTS):
        raise ValueError(f"n_videos must be 1..{len(FACTS)}, got {n_videos}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    facts = []
    for i, (question, template, values, task) in enumerate(rng.sample(FACTS, n_videos)):
        truth = rng.choice(values)
        options = rng.sample(values, len(values))
        t0, t1 = round(duration * 0.4, 1), round(duration * 0.6, 1)
        video = f"mcq{i}"
        make_sample(out / f"{video}.mp4", duration=duration, fps=5, size=(640, 360), seed=seed + i,
                    texts=[(t0, t1, template.format(truth))])
        facts.append(dict(i=i, video=video, question=question, options=options, truth=truth,
                          letter="ABCD"[options.index(truth)], task=task, t0=t0, t1=t1))

    paths = {fmt: out / name for fmt, name in FILES.items()}
    paths["longwatch"].write_text("".join(json.dumps(_ours(f)) + "\n" for f in facts))
    # LVBench: one line per video, options embedded in the question, mm:ss ranges.
    paths["lvbench"].write_text("".join(json.dumps({
        "key": f["video"], "type": "self-made", "video_info": {"duration_minutes": round(duration / 60, 2)},
        "qa": [{"uid": 9000 + f["i"], "question": f["question"] + "".join(
            f"\n({'ABCD'[k]}) {o}" for k, o in enumerate(f["options"])), "answer": f["letter"],
            "question_type": ["key information retrieval", f["task"]],
            "time_reference": f"{_mmss(f['t0'])}-{_mmss(f['t1'] + 0.999)}"}]}) + "\n" for f in facts))
    # Video-MME: the nested per-video JSON of the official template; flat rows (+ videoID) in the parquet.
    mme = [{"video_id": f"{f['i'] + 1:03d}", "videoID": f["video"], "duration": "short", "domain": "Self-made",
            "sub_category": "Generated", "url": "", "question_id": f"{f['i'] + 1:03d}-1", "task_type": f["task"],
            "question": f["question"], "options": [f"{'ABCD'[k]}. {o}." for k, o in enumerate(f["options"])],
            "answer": f["letter"]} for f in facts]
    nested_keys = ("question_id", "task_type", "question", "options", "answer")
    paths["videomme"].write_text(json.dumps([
        {k: v for k, v in r.items() if k not in nested_keys + ("videoID", "url")}
        | {"video_id": r["videoID"], "questions": [{k: r[k] for k in nested_keys}]} for r in mme], indent=2))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        paths["videomme_parquet"] = out / "videomme.parquet"
        pq.write_table(pa.Table.from_pylist(mme), paths["videomme_parquet"])
    except ImportError:
        pass  # the JSON form is enough to run everything
    # MLVU: one array per task, the answer as the candidate's text, the video with its extension; plus one
    # open-ended row, as MLVU's summary task has, which eval reports but does not score.
    mlvu = [{"video": f"{f['video']}.mp4", "duration": duration, "question": f["question"],
             "candidates": f["options"], "answer": f["truth"], "question_type": "needle"} for f in facts]
    mlvu.append({"video": f"{facts[0]['video']}.mp4", "duration": duration, "question": "Please summarize this video.",
                 "answer": "A card states a fact over moving scenes.", "question_type": "summary"})
    paths["mlvu"].write_text(json.dumps(mlvu, indent=4))
    # LongVideoBench: candidates with a 0-based correct_choice, a duration group, a question category.
    paths["longvideobench"].write_text(json.dumps([
        {"id": f"lvb-{f['video']}", "video_id": f["video"], "video_path": f"{f['video']}.mp4", "duration": duration,
         "duration_group": 60 if duration <= 60 else 600, "question": f["question"], "candidates": f["options"],
         "correct_choice": f["options"].index(f["truth"]), "question_category": "S2O", "topic_category": "NP-News"}
        for f in facts], indent=2))
    return paths


def _ours(f: dict) -> dict:
    """Our JSONL, each row borrowing one benchmark's field conventions (all accepted by our own format)."""
    style = STYLES[f["i"] % len(STYLES)]
    row = {"id": f"{style}-{f['i']}", "video": f["video"], "question": f["question"], "task_type": f["task"]}
    if style == "video-mme":
        return row | {"options": [f"{'ABCD'[k]}. {o}" for k, o in enumerate(f["options"])], "answer": f["letter"]}
    if style == "mlvu":
        return row | {"candidates": f["options"], "answer": f["truth"]}
    return row | {"options": f["options"], "answer": f["letter"],
                  "time_reference": f"{_mmss(f['t0'])}-{_mmss(f['t1'] + 0.999)}"}


def make_mcq(out_dir: str | Path, n_videos: int = 3, duration: float = 30.0, seed: int = 0) -> Path:
    """The set of `make_benchmark_set`; returns our JSONL (`questions.jsonl`) for `longwatch batch`."""
    return make_benchmark_set(out_dir, n_videos=n_videos, duration=duration, seed=seed)["longwatch"]
