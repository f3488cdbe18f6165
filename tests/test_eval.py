"""`longwatch eval`: videos matched by id, letter-only scoring tallied per task and duration, no-choice and
time-reference rates, open-ended rows kept apart; end to end through the CLI on the generated sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from longwatch.app.batch import discover_videos
from longwatch.app.cmd_eval import format_reports, match_videos, result_row, tally
from longwatch.app.mcq import Question

CLI_TIMEOUT = 240  # seconds; a hung run fails the test instead of stalling CI
TINY = """preset = "tiny"
[pipeline]
ocr = false
min_new_tokens = 2
answer_tokens = 8
caption_tokens = 8
clip_seconds = 4.0
"""


def test_videos_match_by_id_with_or_without_extension_and_missing_are_listed(tmp_path):
    for name in ["movie101_66.mp4", "fFjv93ACGo8.mkv", "sub/4LVJ3nO0f_c.webm"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    questions = [Question(id="mlvu", question="q", video="movie101_66", extra={"video_file": "movie101_66.mp4"}),
                 Question(id="mme", question="q", video="nope", extra={"aliases": ("fFjv93ACGo8",)}),
                 Question(id="lv", question="q", video="4LVJ3nO0f_c"),
                 Question(id="ext", question="q", video="4LVJ3nO0f_c.mp4"),  # another extension than the file
                 Question(id="gone1", question="q", video="ghost.mp4"),
                 Question(id="gone2", question="q", video="ghost.mp4"),
                 Question(id="all", question="q")]
    matched, missing = match_videos(questions, discover_videos([tmp_path]))
    assert {q.id: q.video for q in matched} == {"mlvu": "movie101_66", "mme": "fFjv93ACGo8", "lv": "4LVJ3nO0f_c",
                                                "ext": "4LVJ3nO0f_c", "all": None}
    assert missing == {"ghost.mp4": 2}


def mc(qid, answer="B", tasks=("count",), duration="short", refs=((10.0, 20.0),)):
    return Question(id=qid, question="How many?", video="v", options=("1", "2", "3"), answer=answer,
                    task_types=tasks, duration=duration, time_references=refs, benchmark="lvbench")


def answered(text, cites=((12.0, 14.0),)):
    return {"answer": text, "citations": [{"video": "v", "t0": a, "t1": b} for a, b in cites]}


def test_scoring_counts_letters_only_per_task_and_duration(tmp_path):
    rows = [result_row(mc("right"), answered("(B)")),                                  # correct, cites the range
            result_row(mc("wrong", tasks=("count", "ocr")), answered("C", cites=((30.0, 32.0),))),
            result_row(mc("nochoice", duration="long"), answered("I did not see a number")),  # 'd', no choice
            result_row(mc("quote", duration="long", refs=()), answered("there are 2 of them")),
            result_row(mc("test", answer=None), answered("A")),                        # no reference answer
            result_row(Question(id="open", question="Summarize.", video="v", answer="x"), answered("Cats.")),
            result_row(mc("failed"), {"error": "UnknownVideo", "message": "video 'v': ingest failed"})]
    assert rows[2]["predicted"] is None and rows[2]["correct"] is False
    assert rows[0]["time_hit"] is True and rows[1]["time_hit"] is False and rows[3]["time_hit"] is None
    report = tally("lvbench", ["f.jsonl"], rows, missing=3)
    assert (report.scored.n, report.scored.correct, report.scored.no_choice) == (4, 2, 1)
    assert (report.unscored, report.open_ended, report.failed, report.missing) == (1, 1, 1, 3)
    assert {k: (t.n, t.correct) for k, t in report.by_task.items()} == {"count": (4, 2), "ocr": (1, 0)}
    assert {k: (t.n, t.correct) for k, t in report.by_duration.items()} == {"short": (2, 1), "long": (2, 1)}
    assert (report.references, report.reference_hits) == (3, 2)
    summary = report.to_dict()
    assert summary["accuracy"] == 0.5 and summary["no_choice_rate"] == 0.25
    assert summary["time_reference_hit_rate"] == pytest.approx(2 / 3)
    text = format_reports([report], {"ghost.mp4": 3}, [], "offline")
    assert "| overall | 4 | 50.0 | 25.0 |" in text and "| task: ocr | 1 | 0.0 | 0.0 |" in text
    assert text.index("duration: short") < text.index("duration: long")  # buckets in length order
    assert "time-reference hit rate: 66.7% of 3" in text and "1 open-ended answered (not scored)" in text
    assert "| lvbench | 4 | 50.0 | 50.0 | 50.0 |" in text and "missing videos (1): ghost.mp4 (3 q)" in text


def run_cli(args, timeout=CLI_TIMEOUT):
    env = os.environ | {"PYTHONSAFEPATH": "1"}  # keep the repo root's kernels/ off sys.path
    return subprocess.run([sys.executable, "-m", "longwatch", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    missing = run_cli(["eval", str(tmp_path / "absent.json"), "--videos", str(tmp_path)], timeout=60)
    assert missing.returncode == 2 and "no such question file" in missing.stderr
    assert "Traceback" not in missing.stderr and missing.stderr.count("\n") == 1
    (tmp_path / "q.jsonl").write_text('{"question": "x?"}\n')
    nodir = run_cli(["eval", str(tmp_path / "q.jsonl"), "--videos", str(tmp_path / "none")], timeout=60)
    assert nodir.returncode == 1 and "not a folder" in nodir.stderr and "Traceback" not in nodir.stderr
    # Reruns resume from the work folder: answers made there by another preset must not be scored as these.
    (tmp_path / "r.work").mkdir()
    (tmp_path / "r.work" / "eval-settings.json").write_text(json.dumps({"preset": "tiny", "pipeline": {}}))
    other = run_cli(["eval", str(tmp_path / "q.jsonl"), "--videos", str(tmp_path), "--preset", "offline",
                     "--out", str(tmp_path / "r.jsonl")], timeout=60)
    assert other.returncode == 1 and "holds answers made with {'preset': 'tiny'" in other.stderr
    assert "Traceback" not in other.stderr


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """The tiniest sample (one 4 s video, one clip) as LVBench ships it, plus a missing video and two bad rows."""
    from longwatch.samples.mcq import make_benchmark_set

    root = tmp_path_factory.mktemp("tiny")
    paths = make_benchmark_set(root, n_videos=1, duration=4.0, seed=3)
    (root / "tiny.toml").write_text(TINY)
    lvbench = paths["lvbench"]
    row = json.loads(lvbench.read_text())
    ghost = row | {"key": "ghost", "qa": [q | {"uid": 1} for q in row["qa"]]}
    lvbench.write_text(lvbench.read_text() + json.dumps(ghost) + "\n" + "not json\n"
                       + json.dumps(row | {"key": "x", "qa": [row["qa"][0] | {"uid": 2, "answer": "Q"}]}) + "\n")
    return root, lvbench


def test_cli_eval_end_to_end_on_the_tiny_sample(tiny_set, tmp_path, capsys):
    """Through `cli.main` as the console script calls it (in-process, like tests/test_cli.py, so the models
    load once here and once in the ingest worker)."""
    from longwatch.app import cli

    root, lvbench = tiny_set
    out = tmp_path / "results.jsonl"
    args = ["eval", str(lvbench), "--videos", str(root), "--config", str(root / "tiny.toml"), "--out", str(out)]
    assert cli.main(["--json", *args]) == 0
    payload = json.loads(capsys.readouterr().out)
    (report,) = payload["reports"]
    assert report["benchmark"] == "lvbench" and report["missing"] == 1 and payload["missing_videos"] == {"ghost": 1}
    assert [(b["row"], b["problem"][:9]) for b in payload["bad_rows"]] == [("line 3", "not JSON "),
                                                                          ("line 4 qa[0]", "answer 'Q")]
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["status"] == "answered" and row["video"] == "mcq0" and row["answer"] in "ABCD"
    assert row["predicted"] in (None, *"ABCD") and row["correct"] == (row["predicted"] == row["answer"])
    assert report["scored"] == {"n": 1, "correct": int(row["correct"]), "no_choice": int(row["predicted"] is None)}
    assert report["time_reference_hit_rate"] == float(row["time_hit"])
    assert all(c["video"] == "mcq0" for c in row["citations"])
    # A rerun resumes from the work folder (nothing ingested or asked again) and prints the tables.
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "| overall | 1 |" in text and "missing videos (1): ghost (1 q)" in text
    assert "video_info.meta.jsonl line 3: not JSON" in text
    assert [json.loads(line) for line in out.read_text().splitlines()] == [row]


@pytest.mark.slow
def test_offline_preset_reads_the_answer_off_the_screen_in_every_format(tmp_path):
    """Every format of the 3-video sample, offline preset (OCR, no vision): each fact is on screen, so a
    working pipeline scores them all and cites the LVBench time range."""
    from longwatch.samples.mcq import make_benchmark_set

    paths = make_benchmark_set(tmp_path / "set", n_videos=3, duration=20.0, seed=5)
    files = [str(paths[k]) for k in ("lvbench", "videomme", "mlvu", "longvideobench")]
    done = run_cli(["--json", "eval", *files, "--videos", str(tmp_path / "set"), "--preset", "offline",
                    "--out", str(tmp_path / "r.jsonl")], timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    reports = {r["benchmark"]: r for r in json.loads(done.stdout)["reports"]}
    assert set(reports) == {"lvbench", "videomme", "mlvu", "longvideobench"}
    for name, report in reports.items():
        assert report["scored"]["n"] == 3 and report["accuracy"] == 1.0, (name, report)
    assert reports["lvbench"]["time_reference_hit_rate"] == 1.0 and reports["mlvu"]["open_ended"] == 1
