"""The generated lecture (samples/lecture.py): deterministic per seed, each fact in exactly one channel, said times
that match the narration WAV, subtitle tracks that parse, and scoring that tells right, wrong and refused apart.

A 1.5-minute lecture builds in a few seconds (espeak-ng, one PNG per slide, ffmpeg concat).
"""

from __future__ import annotations

import re
import subprocess
import wave

import numpy as np
import pytest

from longwatch.samples import lecture_pools
from longwatch.samples.lecture import CATEGORIES, make_lecture, number_words, plan_lecture, score, summarise
from longwatch.samples.niah import contains_answer
from longwatch.samples.speech import RATE, espeak_available

pytestmark = pytest.mark.skipif(not espeak_available(), reason="needs espeak-ng and ffmpeg (apt-get install espeak-ng)")
MINUTES = 1.5
SMALL = {"size": (640, 360), "fps": 2}  # enough to check the tracks; the benchmark builds 960x540 at 5 fps


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    return make_lecture(tmp_path_factory.mktemp("lecture"), minutes=MINUTES, seed=5, variant="srt", **SMALL)


def _channels(plan) -> dict[str, str]:
    return {"spoken": "\n".join(s.text for s in plan.sentences), "subtitle": "\n".join(s.cue for s in plan.sentences),
            "slide": "\n".join(s.text() for s in plan.slides)}


def test_the_plan_is_a_function_of_the_seed():
    assert plan_lecture(MINUTES, seed=3) == plan_lecture(MINUTES, seed=3)
    a, b = plan_lecture(MINUTES, seed=3), plan_lecture(MINUTES, seed=4)
    assert [f["answers"] for f in a.facts] != [f["answers"] for f in b.facts]
    assert [s.text for s in a.sentences] != [s.text for s in b.sentences]


@pytest.mark.parametrize("seed", range(6))
def test_each_fact_sits_in_its_channel_only_and_absent_subjects_nowhere(seed):
    plan = plan_lecture(30, seed=seed)
    text = _channels(plan)
    every = "\n".join(text.values()).casefold()
    for fact in plan.facts:
        category = {"paraphrase": "slide"}.get(fact["category"], fact["category"])
        if category in text:
            truth = fact["answers"][0]
            assert contains_answer(text[category], truth), (seed, fact)
            others = [c for c in text if c != category]
            assert not any(contains_answer(text[c], truth) for c in others if len(truth) >= 3), (seed, fact)
    for question, word in lecture_pools.ABSENT:
        assert not re.search(rf"\b{re.escape(word)}\b", every), (seed, question)
    lines = text["slide"].splitlines()
    # Asked without the words of its bullet or table row (a header word may stay: "third quarter" for "Q3")
    for fact in (f for f in plan.facts if f["category"] == "paraphrase"):
        shown = [line for line in lines if contains_answer(line, fact["answers"][0])]
        slide_words = {w for w in re.findall(r"[a-z]+", " ".join(shown).casefold()) if len(w) > 1}
        asked = set(re.findall(r"[a-z]+", fact["question"].casefold()))
        assert not asked & slide_words, (fact["question"], shown)
    assert {f["category"] for f in plan.facts} == set(CATEGORIES)


def test_said_times_match_the_narration_and_the_video(lecture):
    import av

    with wave.open(lecture.wav) as w:
        track = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    for t0, t1, text in lecture.said:
        i0, i1 = round(t0 * RATE), round(t1 * RATE)
        assert abs(int(track[i0])) > 300 and np.abs(track[i1 - 40:i1]).max() > 300, text  # the voice starts and ends
        assert not track[i0 - int(0.3 * RATE):i0].any(), text  # silence before it: nothing else is said then
    with av.open(lecture.video) as container:
        assert {s.type for s in container.streams} >= {"video", "audio"}
        assert abs(container.duration / 1e6 - lecture.duration) < 0.5
    assert 60 <= lecture.duration <= 3 * 60
    for row in lecture.questions:
        if row["category"] in ("spoken", "subtitle", "slide", "paraphrase"):
            assert row["windows"] and all(0 <= a < b <= lecture.duration for a, b in row["windows"]), row


def _cues(path) -> list[tuple[float, float, str]]:
    import pysubs2

    return [(e.start / 1000, e.end / 1000, e.plaintext) for e in pysubs2.load(str(path))]


def test_every_subtitle_variant_carries_the_cues(lecture, tmp_path):
    expected = [(round(a, 1), round(b, 1), text) for a, b, text in lecture.subtitles]
    assert [(round(a, 1), round(b, 1), t) for a, b, t in _cues(lecture.sidecar)] == expected
    for variant in ("mkv-ass", "movtext"):
        other = make_lecture(tmp_path, minutes=MINUTES, seed=5, variant=variant, **SMALL)
        assert other.said == lecture.said and other.subtitles == lecture.subtitles
        out = tmp_path / f"{variant}.srt"
        subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", other.video, "-map", "0:s:0", str(out)],
                       check=True, timeout=60)
        assert [t for _, _, t in _cues(out)] == [t for _, _, t in expected]


def test_a_second_build_reuses_the_first(lecture):
    again = make_lecture(lecture.manifest.rsplit("/", 1)[0], minutes=MINUTES, seed=5, variant="srt", **SMALL)
    assert again == lecture


def test_an_ideal_answerer_scores_full_marks_and_a_silent_one_none(lecture):
    """Every question has a truth an answer can state: quoting it at its time scores in every category."""
    evidence = [text for _, _, text in lecture.said] + [text for _, _, text in lecture.subtitles]
    ideal, silent = [], []
    for row in lecture.questions:
        windows = row["windows"] or [[0.0, 1.0]]
        if row["kind"] == "absent":
            reply, cites = "The video does not say.", []
        elif row["kind"] == "summary":
            reply, cites = " ".join(f'"{text}"' for text in evidence[:3]), [tuple(windows[0])]
        elif row["kind"] == "first_shown":
            t = int(windows[0][0])
            reply, cites = f"It was first shown at {t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}.", []
        else:
            reply, cites = f"The answer is {row['answers'][0]}.", [tuple(windows[0])]
        ideal.append({**row, **score(row, reply, cites, evidence, lecture.duration)})
        silent.append({**row, **score(row, "I cannot tell.", [], evidence, lecture.duration)})
    assert {c: r["acc"] for c, r in summarise(ideal).items()} == {c: 1.0 for c in CATEGORIES}
    assert {c: r["acc"] for c, r in summarise(silent).items() if c != "absent"} == {
        c: 0.0 for c in CATEGORIES if c != "absent"}


def test_numbers_may_be_written_as_words():
    assert number_words(350) == ["three hundred fifty", "three hundred and fifty"]
    assert number_words(4) == ["four"] and number_words(1207)[0] == "one thousand two hundred seven"
    assert number_words(90) == ["ninety"]


def test_scoring_tells_right_wrong_and_refused_apart():
    spoken = {"category": "spoken", "kind": "fact", "answers": ["350", *number_words(350)], "windows": [[100.0, 103.0]]}
    assert score(spoken, 'Said [00:01:41–00:01:43]: "Each group receives three hundred and fifty dollars."',
                 [(101.0, 103.0)])["ok"]
    assert not score(spoken, "Each group receives 350 dollars.", [(200.0, 204.0)])["ok"]  # right words, wrong time
    assert not score(spoken, "Each group receives 305 dollars.", [(101.0, 103.0)])["ok"]
    assert not score(spoken, "The video does not say.", [])["ok"]
    quoted = 'Said [00:01:41–00:01:43]: "Each group receives 350 dollars."'
    assert not score(spoken, f"Each group receives 300 dollars.\n{quoted}", [(101.0, 103.0)])["ok"]  # contradicts it
    absent = {"category": "absent", "kind": "absent", "answers": [], "windows": []}
    assert score(absent, "The video does not mention a teaching assistant.", [])["ok"]
    assert not score(absent, "The video does not say, but see [00:01:00].", [(60.0, 62.0)])["ok"]
    assert not score(absent, "The assistant is Dr. Moreau.", [(60.0, 62.0)])["ok"]
    count = {"category": "ordering", "kind": "count", "answers": ["2", "two"], "windows": []}
    assert score(count, "It was shown twice: two times, at [00:02:10] and [00:05:00].", [])["ok"]
    assert not score(count, "Shown at [00:02:10] and [00:02:40].", [])["ok"]  # "02" in a time stamp is no count
    first = {"category": "ordering", "kind": "which_first", "answers": ["Linear Filters"], "other": ["Heat Transfer"],
             "windows": []}
    assert score(first, "Linear Filters came before Heat Transfer.", [])["ok"]
    assert not score(first, "Heat Transfer came before Linear Filters.", [])["ok"]
    assert score(first, "Linear Filters.", [])["ok"]
    assert not score(first, "Linear Filters and Heat Transfer are the main topics.", [])["ok"]  # no order given
    shown = {"category": "ordering", "kind": "first_shown", "answers": [], "windows": [[80.0, 110.0]]}
    assert score(shown, "First shown at 00:01:21.", [])["ok"] and score(shown, "Here.", [(78.5, 90.0)])["ok"]
    assert not score(shown, "First shown at 00:02:20.", [(140.0, 150.0)])["ok"]
    summary = {"category": "summary", "kind": "summary", "answers": [], "windows": []}
    evidence = ["Now let us turn to Linear Filters.", "Meeting room 259"]
    good = ('The talk covers: Said [00:00:10–00:00:12]: "Now let us turn to Linear Filters." '
            'On screen: "Meeting room 259"')
    assert score(summary, good, [(10.0, 12.0)], evidence, duration=100.0)["ok"]
    assert not score(summary, good.replace("Linear", "Nonlinear"), [(10.0, 12.0)], evidence, duration=100.0)["ok"]
    assert not score(summary, good, [(10.0, 12.0), (150.0, 160.0)], evidence, duration=100.0)["ok"]
    assert not score(summary, "It was about filters.", [(10.0, 12.0)], evidence, duration=100.0)["ok"]
    table = summarise([{"category": "spoken", "ok": True}, {"category": "spoken", "ok": False}])
    assert table == {"spoken": {"n": 2, "ok": 1, "acc": 0.5}}


# V-NIAH on real footage (samples/niah_real.py) and the quote-contradiction check live here too: tests/test_niah.py
# belongs to the generated haystack and is not changed by this lane.
def test_a_reply_that_changes_its_quoted_fact_is_wrong():
    from longwatch.samples.niah import contradicts_quote
    from longwatch.samples.niah import score as niah_score

    quote = 'On screen [00:01:00\u201300:01:05]: "Wifi password: tangerine 42"'
    row = {"kind": "needle", "answer": "tangerine 42", "t0": 60.0, "t1": 65.0}
    assert contradicts_quote(f"The wifi password is tangerine.\n{quote}", "tangerine 42")
    assert not niah_score(row, f"The wifi password is tangerine.\n{quote}", [(60.0, 65.0)])["answer_ok"]
    assert niah_score(row, f"The wifi password is tangerine 42.\n{quote}", [(60.0, 65.0)])["answer_ok"]
    assert niah_score(row, quote, [(60.0, 65.0)])["answer_ok"]  # the quote alone states it
    flight = 'On screen [00:02:00\u201300:02:04]: "Flight QX2207 now boarding"'
    assert contradicts_quote(f"The flight number is QX2208.\n{flight}", "QX2207")
    assert not contradicts_quote(f"The flight number displayed is QX2207.\n{flight}", "QX2207")


def test_real_footage_haystack_shows_its_needles_on_moving_pictures(tmp_path):
    import av

    from longwatch.pipeline.ocr import OcrEngine
    from longwatch.pipeline.sampling import resize_max_side
    from longwatch.samples.niah import make_niah

    sample = make_niah(tmp_path, 60, n_needles=3, seed=2, background="real", scene_seconds=(4.0, 8.0))
    assert sample.video.name.startswith("niah_real_")
    needles = {n.t0 + 0.5 * (n.t1 - n.t0): n for n in sample.plan.needles}
    frames, engine = {}, OcrEngine(threads=2)
    with av.open(str(sample.video)) as container:
        assert abs(container.duration / 1e6 - 60) < 0.6
        for frame in container.decode(video=0):
            t = float(frame.pts * frame.time_base)
            frames[round(t, 1)] = frame.to_ndarray(format="rgb24")
    times = sorted(frames)
    moving = [np.abs(frames[a].astype(int) - frames[b].astype(int)).mean() for a, b in zip(times, times[1:])]
    assert np.median(moving) > 1.0  # real footage moves between frames, unlike a text card
    for t, needle in needles.items():
        image = frames[min(times, key=lambda s: abs(s - t))]
        lines = engine.read(resize_max_side(image, 448))
        assert contains_answer(" ".join(line.text for line in lines), needle.answer), (needle.fact, lines)
