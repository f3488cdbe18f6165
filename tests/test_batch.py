"""`longwatch batch` end to end: generated videos plus bad files, tiny real-architecture models, a real bank.

Local processes first, a rerun that must skip everything, then the same batch through a local Ray cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longwatch.app.batch import BatchSettings, discover_videos, run_batch
from longwatch.app.benchfiles import load_questions

PIPELINE = {"ocr": False, "min_new_tokens": 2, "answer_tokens": 8, "caption_tokens": 8, "clip_seconds": 4.0}
N_GOOD = 5


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from longwatch.samples.videos import make_sample

    root = tmp_path_factory.mktemp("archive")
    for i in range(N_GOOD):
        make_sample(root / f"talk{i}.mp4", duration=8.0, fps=4, size=(192, 108), seed=i,
                    texts=[(2.0, 6.0, f"ROOM {100 + i}")])
    (root / "noise.mp4").write_bytes(bytes(range(256)) * 64)                # random-looking bytes
    good = (root / "talk0.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(good[: len(good) // 3])                  # truncated mid-stream
    rows = [{"id": f"room{i}", "video": f"talk{i}", "question": "Which room number is shown?"} for i in range(N_GOOD)]
    rows += [{"id": "mc0", "video": "talk1", "question": "What is on screen?", "options": ["a room", "a car"],
              "answer": "A"},
             {"id": "all", "question": "Which rooms appear across the archive?"},
             {"id": "bad", "video": "noise", "question": "Anything?"}]
    (root / "questions.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def run(archive, out, executor):
    settings = BatchSettings(bank=str(out / "bank"), preset="tiny", pipeline=PIPELINE, executor=executor)
    return run_batch(settings, discover_videos([archive]), load_questions(archive / "questions.jsonl"), out)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def local_run(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return out, run(archive, out, "local")


def test_local_batch_answers_good_videos_and_reports_bad_ones(local_run):
    out, summary = local_run
    assert (summary.videos_ingested, summary.videos_failed, summary.videos_skipped) == (N_GOOD, 2, 0)
    assert summary.clips_committed == N_GOOD * 2  # 8 s at 4 s per clip
    status = {r["name"]: r for r in read_jsonl(out / "status.jsonl")}  # name: the file stem questions use
    ids = {name: r["video_id"] for name, r in status.items()}  # the bank's ids, as `longwatch ingest` names files
    assert status["noise"]["status"] == "error" and status["noise"]["error"] == "UnsupportedVideo"
    assert status["cut"]["status"] == "error" and status["cut"]["error"] == "CorruptVideo"
    assert "cut.mp4" in status["cut"]["message"]
    answers = {r["id"]: r for r in read_jsonl(out / "answers.jsonl")}
    assert set(answers) == {f"room{i}" for i in range(N_GOOD)} | {"mc0", "all", "bad"}
    for i in range(N_GOOD):
        row = answers[f"room{i}"]
        assert row["answer"] and row["citations"]
        assert all(c["video"] == ids[f"talk{i}"] and 0 <= c["t0"] < c["t1"] <= 8.0 + 1e-6 for c in row["citations"])
    assert {c["video"] for c in answers["all"]["citations"]} <= {ids[f"talk{i}"] for i in range(N_GOOD)}
    assert answers["bad"]["error"] == "UnknownVideo" and "ingest failed" in answers["bad"]["message"]
    assert answers["mc0"]["correct"] in (True, False)  # scored, whatever a random tiny model picks
    assert summary.questions_answered == N_GOOD + 2 and summary.questions_failed == 1 and summary.scored == 1
    assert (out / "answers.csv").read_text().count("\n") == len(answers) + 1
    assert json.loads((out / "summary.json").read_text())["videos_ingested"] == N_GOOD


def test_rerun_skips_finished_work(archive, local_run):
    out, _ = local_run
    before = read_jsonl(out / "answers.jsonl")
    again = run(archive, out, "local")
    assert again.videos_skipped == N_GOOD and again.videos_ingested == 0 and again.clips_committed == 0
    assert again.videos_failed == 2  # bad files are tried again and fail again, nothing crashes
    assert again.questions_skipped == N_GOOD + 2 and again.questions_answered == 0
    assert read_jsonl(out / "answers.jsonl")[: len(before)] == before


def test_ray_executor_gives_the_same_answers(archive, local_run, tmp_path):
    ray = pytest.importorskip("ray", reason="pip install 'longwatch[distributed]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        summary = run(archive, tmp_path, "ray")
    finally:
        ray.shutdown()
    assert (summary.videos_ingested, summary.videos_failed) == (N_GOOD, 2)
    local = {r["id"]: (r.get("answer"), r.get("citations"), r.get("error")) for r in read_jsonl(local_run[0] / "answers.jsonl")}
    remote = {r["id"]: (r.get("answer"), r.get("citations"), r.get("error")) for r in read_jsonl(tmp_path / "answers.jsonl")}
    assert remote == local


def test_multiple_choice_sample_is_answered_and_scored_from_the_video(tmp_path):
    """The shipped LVBench / Video-MME / MLVU-shaped sample, offline preset: the on-screen fact picks the option."""
    from longwatch.samples.mcq import make_mcq

    qfile = make_mcq(tmp_path / "set", n_videos=3, duration=20.0, seed=5)
    questions = load_questions(qfile)
    settings = BatchSettings(bank=str(tmp_path / "bank"), preset="offline")
    summary = run_batch(settings, discover_videos([tmp_path / "set"]), questions, tmp_path / "out")
    assert summary.videos_ingested == 3 and summary.scored == 3 and summary.accuracy == 1.0
    refs = {q.id: q.time_reference for q in questions}
    for row in read_jsonl(tmp_path / "out" / "answers.jsonl"):
        assert row["correct"] is True, row
        if refs[row["id"]]:
            t0, t1 = refs[row["id"]]
            assert any(c["t0"] <= t1 and t0 <= c["t1"] for c in row["citations"]), row


def test_batch_keeps_the_clips_before_damage_and_records_the_lost_tail(tmp_path):
    from longwatch.memory import MemoryBank
    from longwatch.samples.videos import make_sample

    good = make_sample(tmp_path / "talk.mkv", duration=8.0, fps=4, size=(192, 108), seed=3).path
    good = Path(good)
    archive = tmp_path / "archive"
    archive.mkdir()
    data = good.read_bytes()
    (archive / "cut.mkv").write_bytes(data[: len(data) * 2 // 3])  # a recording that stopped mid-stream
    settings = BatchSettings(bank=str(tmp_path / "bank"), preset="tiny", pipeline=PIPELINE, executor="local")
    summary = run_batch(settings, discover_videos([archive]), [], tmp_path / "out")
    assert (summary.videos_ingested, summary.videos_failed) == (1, 0)
    with MemoryBank(tmp_path / "bank", readonly=True) as bank:
        (video,) = bank.videos()
        assert video.complete and video.clips >= 1, "the decodable part is kept and the video is done"
        (gap,) = video.gaps
        assert "truncated" in gap.reason and gap.t1 == pytest.approx(8.0, abs=0.3)
        assert max(c.t1 for c in bank.clips(video.video_id)) <= gap.t0 + 0.3


def test_a_file_ingested_by_the_cli_is_skipped_by_batch(tmp_path):
    """One naming rule for every front door: `longwatch ingest` then `longwatch batch` into one bank is one video.
    Batch also honours --config: its [pipeline] table reaches the workers (here: no OCR, 4 s clips)."""
    from longwatch.app.cli import main
    from longwatch.memory import MemoryBank
    from longwatch.samples.videos import make_sample

    video = make_sample(tmp_path / "talk.mp4", duration=8.0, fps=4, size=(192, 108), seed=9).path
    config = tmp_path / "longwatch.toml"
    config.write_text('[models]\npreset = "tiny"\ndevice = "cpu"\n[pipeline]\nocr = false\nclip_seconds = 4.0\n'
                      'caption_tokens = 4\n')
    bank = tmp_path / "bank"
    assert main(["--json", "ingest", str(video), "--bank", str(bank), "--config", str(config)]) == 0
    out = tmp_path / "out"
    assert main(["--json", "batch", str(video), "-o", str(out), "--bank", str(bank), "--config", str(config)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["videos_skipped"], summary["videos_ingested"], summary["clips_committed"]) == (1, 0, 0)
    with MemoryBank(bank, readonly=True) as opened:
        (only,) = opened.videos()
        assert only.complete and only.clips == 2
