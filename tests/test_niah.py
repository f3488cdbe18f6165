"""V-NIAH generator and grading: deterministic plans, needles where asked, readable cards, honest scoring.

The needle cards are read with the real OCR engine at the size the pipeline samples frames (448 px).
"""

from __future__ import annotations

import json

import pytest

from longwatch.samples import niah
from longwatch.samples.niah import contains_answer, plan_haystack, render_scene, says_absent, score


def test_plan_is_deterministic_from_the_seed():
    a, b, c = plan_haystack(600, seed=3), plan_haystack(600, seed=3), plan_haystack(600, seed=4)
    assert a == b
    assert [n.fact for n in a.needles] != [n.fact for n in c.needles]


def test_needles_sit_at_their_depths_and_the_scenes_tile_the_video():
    plan = plan_haystack(3600, n_needles=10, seed=0)
    assert plan.duration == 3600
    frames = [(s.f0, s.f1) for s in plan.scenes]
    assert frames[0][0] == 0 and frames[-1][1] == 3600 * plan.fps
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(frames, frames[1:]))  # no gap, no overlap
    assert len({n.question for n in plan.needles}) == 10  # ten different subjects, one answer each
    for k, needle in enumerate(plan.needles):
        assert 4.0 <= needle.t1 - needle.t0 <= 6.0
        assert abs(needle.depth - k / 9) < 0.01
        assert abs(needle.t0 - needle.depth * (3600 - (needle.t1 - needle.t0))) <= 0.5
        shown = [s for s in plan.scenes if s.needle == k]
        assert len(shown) == 1 and shown[0].f0 / plan.fps == needle.t0 and shown[0].lines == (needle.fact,)
        assert contains_answer(needle.fact, needle.answer)


def test_absent_subjects_appear_on_no_frame():
    for seed in range(5):
        plan = plan_haystack(1800, seed=seed)
        text = " ".join(" ".join((s.title,) + s.lines) for s in plan.scenes).casefold()
        asked = set(plan.absent)
        assert len(asked) == 10
        for question, word in niah.ABSENT:
            assert word not in text, (seed, question)


def test_questions_jsonl_rows_have_what_the_eval_reads():
    plan = plan_haystack(300, n_needles=5, seed=1, n_absent=3)
    rows = niah.questions(plan, "hay.mp4")
    json.dumps(rows)
    assert [r["kind"] for r in rows] == ["needle"] * 5 + ["absent"] * 3
    for r in rows:
        assert {"id", "video", "question", "answer", "t0", "t1", "depth"} <= set(r)


def test_bad_plans_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="n_needles"):
        plan_haystack(600, n_needles=20)
    with pytest.raises(ValueError, match="depths"):
        plan_haystack(600, n_needles=2, depths=[0.1, 1.5])
    with pytest.raises(ValueError, match="do not fit"):
        plan_haystack(60, n_needles=10, depths=[1.0] * 10)


def test_needle_cards_are_readable_by_the_ocr_lane_at_ingest_size():
    from longwatch.pipeline.ocr import OcrEngine
    from longwatch.pipeline.sampling import resize_max_side

    engine = OcrEngine(threads=2)
    plan = plan_haystack(600, n_needles=10, seed=7)
    styles = {}
    for scene in plan.scenes:  # one needle card of each layout
        if scene.needle >= 0:
            styles.setdefault(scene.style, scene)
    assert len(styles) == 3
    for scene in styles.values():
        lines = engine.read(resize_max_side(render_scene(scene, plan.width, plan.height), 448))
        needle = plan.needles[scene.needle]
        assert contains_answer(" ".join(line.text for line in lines), needle.answer), (needle.fact, lines)


def test_grading_needs_the_fact_and_an_overlapping_citation():
    row = {"kind": "needle", "answer": "6-4-3-8", "t0": 100.0, "t1": 105.0}
    good = score(row, "The vault code is 6438.", [(96.0, 104.0)])
    assert good == {"answer_ok": True, "time_ok": True, "top_time_ok": True}
    near = score(row, "It is 6-4-3-8", [(300.0, 304.0), (106.0, 110.0)])  # within 2 s, but not the top citation
    assert near == {"answer_ok": True, "time_ok": True, "top_time_ok": False}
    assert score(row, "It is 6-4-3-9", [(108.0, 112.0)]) == {"answer_ok": False, "time_ok": False,
                                                                "top_time_ok": False}
    assert not contains_answer("floor 300", "30") and contains_answer("Floor 30.", "30")
    # Spacing lost by OCR and copied by the answerer still states the fact; a longer number never does.
    assert contains_answer("The meeting moved to room175", "175") and not contains_answer("room 1175", "175")
    assert contains_answer("The rendezvous point is thered mill", "red mill")
    assert contains_answer("The launch is at 9:05 tomorrow", "09:05") and not contains_answer("at 19:05", "09:05")


def test_refusals_are_recognised_and_invented_times_are_not():
    row = {"kind": "absent"}
    assert score(row, "The video does not mention a hotel.", []) == {"refused": True, "refused_strict": True}
    assert score(row, "The video doesn’t say.", [(1.0, 5.0)]) == {"refused": True, "refused_strict": False}
    assert not says_absent("The hotel is the Grand Budapest.")
    assert not says_absent("It is not named, but see 00:41:08.")


def test_written_haystack_decodes_to_the_planned_needles(tmp_path):
    from longwatch.pipeline.ocr import OcrEngine, OcrLane
    from longwatch.pipeline.sources import open_source

    sample = niah.make_niah(tmp_path, 120, n_needles=3, seed=5)
    rows = [json.loads(line) for line in sample.questions.read_text().splitlines()]
    assert [r["kind"] for r in rows].count("needle") == 3 and rows[0]["video"] == sample.video.name
    lane = OcrLane(OcrEngine(threads=2))
    with open_source(sample.video) as source:
        assert abs(source.info.duration - 120) <= 1.0
        for clip in source.clips(4.0, fps=1.0, max_side=448):
            lane.process(clip)
    spans = lane.spans()
    for needle in sample.plan.needles:
        found = [s for s in spans if contains_answer(s.text, needle.answer)]
        assert found, (needle, spans)
        # The decoded file shows each needle exactly when the plan says (to one sampled frame).
        assert abs(found[0].t0 - needle.t0) <= 1.0 and abs(found[0].t1 - needle.t1) <= 1.0, (needle, found)
    # Static scenes: only scene cuts are read, far fewer than the 120 sampled frames.
    assert lane.stats.ocr_calls <= len(sample.plan.scenes) + 2
    again = niah.make_niah(tmp_path, 120, n_needles=3, seed=5)
    assert again.video.stat().st_mtime_ns == sample.video.stat().st_mtime_ns  # same plan: the file is reused
