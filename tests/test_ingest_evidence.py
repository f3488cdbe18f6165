"""Ingest writes the evidence timeline: what is said (real Whisper tiny.en), subtitled and shown on screen becomes
time-ranged evidence in the bank, committed with its clip, found by search, resumed without duplicates, deleted
with its video.

Sample videos are narrated by espeak-ng at known offsets (samples/speech.py): 16 s each, offline preset models.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from longwatch.pipeline.config import PipelineConfig
from longwatch.samples.speech import SUBTITLES, espeak_available, make_speech_sample

pytest.importorskip("faster_whisper", reason="pip install faster-whisper")
TOLERANCE = 1.5  # seconds between when espeak said a sentence and the segment Whisper gives for it
MUX_SHIFT = 0.1  # MKV/MP4 muxers may shift packets by the audio codec's priming delay
CONFIG = PipelineConfig(clip_seconds=4.0, fps=1.0, max_side=160, ocr=False)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    if not espeak_available():
        pytest.skip("needs espeak-ng and ffmpeg (scripts/setup.sh --dev)")
    folder = tmp_path_factory.mktemp("evidence")
    return {v: make_speech_sample(folder / v, v) for v in ("speech", "sidecar", "mkv_ass", "silent")}


@pytest.fixture(scope="module")
def models():
    from longwatch.pipeline.models.registry import load_preset

    return load_preset("offline")


def _watch(tmp_path, models, config=CONFIG):
    from longwatch.app.api import LongWatch

    return LongWatch(tmp_path / "bank", models, config)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9$]+", " ", text.lower().replace(",", "").replace("$", " $ ")).split())


def _said(evidence, spoken) -> list:
    """The speech evidence that holds every kept word of `spoken` (any of its spellings)."""
    return [e for e in evidence if e.kind == "speech"
            and all(any(f" {_norm(s)} " in f" {_norm(e.text)} " for s in kept) for kept in spoken.keep)]


def _assert_in_its_clip(evidence, clips: int, clip_seconds: float) -> None:
    for e in evidence:  # committed with the clip its start falls in; the final clip takes the rest
        assert e.clip_index == min(int(e.t0 // clip_seconds), clips - 1), e


def _assert_subtitles(evidence, language) -> None:
    cues = [e for e in evidence if e.kind == "subtitle"]
    assert [e.text for e in cues] == [text for _, _, text in SUBTITLES]
    for e, (t0, t1, _) in zip(cues, SUBTITLES):
        assert e.t0 == pytest.approx(t0, abs=MUX_SHIFT) and e.t1 == pytest.approx(t1, abs=MUX_SHIFT)
        assert e.meta.get("language") == language


def test_spoken_and_sidecar_facts_become_evidence_at_their_times_and_are_found(samples, models, tmp_path):
    sample = samples["sidecar"]
    lanes = []
    with _watch(tmp_path, models) as lw:
        ref = lw.ingest(sample.path, "talk", progress=lambda p: lanes.append(p.lanes))
        bank = lw.bank
        evidence = bank.evidence("talk")
        for spoken in sample.spoken:
            said = _said(evidence, spoken)
            assert len(said) == 1, (spoken.text, [e.text for e in evidence])
            assert abs(said[0].t0 - spoken.t0) <= TOLERANCE and abs(said[0].t1 - spoken.t1) <= TOLERANCE
            assert said[0].meta == {"language": "en"}
        _assert_subtitles(evidence, "en")
        _assert_in_its_clip(evidence, ref.clips, CONFIG.clip_seconds)
        assert [(e.t0, e.kind) for e in evidence] == sorted((e.t0, e.kind) for e in evidence)
        assert bank.evidence_counts("talk") == {"speech": len(sample.spoken), "subtitle": len(SUBTITLES), "ocr": 0,
                                                "caption": 0}
        # The code is found by its exact token, the spoken number by meaning: both through the bank's search.
        query = "Which flight is it? QX2207"
        hits = bank.search_evidence(models.embedder.embed([query])[0], query, k=3)
        assert hits[0].record.text == "Flight QX2207 leaves at 9." and hits[0].lexical_rank == 1
        query = "How much money is the budget?"
        hits = bank.search_evidence(models.embedder.embed([query])[0], query, k=3, kinds=["speech"])
        assert "budget" in hits[0].record.text.lower()
    assert lanes[-1] == {"speech": "transcribed with tiny.en: 3 segments", "subtitles": "read: 2 cues"}


def test_speech_and_subtitle_settings_are_validated():
    assert PipelineConfig(speech=False, subtitles=False, speech_model="small").speech_model == "small"
    for bad in ({"speech_model": ""}, {"speech": "yes"}, {"subtitles": 1}):
        with pytest.raises(ValueError, match="PipelineConfig"):
            PipelineConfig(**bad)


def test_embedded_ass_subtitles_of_an_mkv_are_evidence(samples, models, tmp_path):
    config = PipelineConfig(clip_seconds=4.0, fps=1.0, max_side=160, ocr=False, speech=False)
    with _watch(tmp_path, models, config) as lw:
        lw.ingest(samples["mkv_ass"].path, "mkv")
        evidence = lw.bank.evidence("mkv")
    assert {e.kind for e in evidence} == {"subtitle"}
    _assert_subtitles(evidence, "eng")


def test_a_silent_video_costs_no_transcription_and_says_so(samples, models, tmp_path):
    lanes = []
    with _watch(tmp_path, models) as lw:
        lw.ingest(samples["silent"].path, "quiet", progress=lambda p: lanes.append(p.lanes))
        assert lw.bank.evidence("quiet") == [] and set(lw.bank.evidence_counts("quiet").values()) == {0}
        assert lw.pipeline.clip_encoder.speech_lane._model is None  # Whisper was never loaded for it
    assert lanes[-1] == {"speech": "no audio stream", "subtitles": "none found"}


class _Crash(Exception):
    pass


def test_resume_after_an_interruption_gives_no_duplicate_evidence(samples, models, tmp_path):
    """Interrupted after the first 2-s clip, in the middle of the first sentence: resumed, every sentence is
    evidence once, as in an uninterrupted run."""
    config = PipelineConfig(clip_seconds=2.0, fps=1.0, max_side=160, ocr=False)
    sample = samples["sidecar"]

    def crash(progress):
        raise _Crash

    with _watch(tmp_path, models, config) as lw:
        with pytest.raises(_Crash):
            lw.ingest(sample.path, "talk", progress=crash)
        first = lw.bank.evidence("talk")
        assert [e.clip_index for e in first] == [0] * len(first) and lw.bank.last_clip("talk") == 0
        ref = lw.ingest(sample.path, "talk")
        evidence = lw.bank.evidence("talk")
    assert ref.complete and [e.text for e in evidence[:len(first)]] == [e.text for e in first]
    for spoken in sample.spoken:
        assert len(_said(evidence, spoken)) == 1, (spoken.text, [e.text for e in evidence])
    assert len([e for e in evidence if e.kind == "speech"]) == len(sample.spoken)
    _assert_subtitles(evidence, "en")
    _assert_in_its_clip(evidence, ref.clips, config.clip_seconds)


def test_cli_ingest_reads_explicit_subtitles_without_speech_and_delete_removes_evidence(samples, tmp_path, capsys):
    from longwatch.app.api import LongWatch
    from longwatch.app.cli import main

    srt = tmp_path / "elsewhere.srt"
    srt.write_text("1\n00:00:05,000 --> 00:00:07,500\nThe vault code is 4-7-1-9.\n", encoding="utf-8")
    config = tmp_path / "longwatch.toml"
    config.write_text('preset = "offline"\n[pipeline]\nclip_seconds = 4.0\nfps = 1.0\nmax_side = 160\nocr = false\n')
    args = ["--config", str(config), "--bank", str(tmp_path / "bank")]
    assert main(["--json", "ingest", samples["speech"].path, "--id", "talk", "--subtitles", str(srt), "--no-speech",
                 "--no-progress", *args]) == 0
    video = json.loads(capsys.readouterr().out)["videos"][0]
    assert video["lanes"] == {"speech": "off", "subtitles": "read: 1 cue"}
    with LongWatch.open(config=_config(args), load_models=False) as lw:
        evidence = lw.bank.evidence("talk")
        assert [(e.kind, e.text, e.t0, e.t1) for e in evidence] == [
            ("subtitle", "The vault code is 4-7-1-9.", 5.0, 7.5)]
        lw.delete("talk")
        assert lw.bank.search_evidence(np.full(384, 384 ** -0.5, np.float32), "vault code 4-7-1-9") == []
    missing = main(["ingest", samples["speech"].path, "--subtitles", str(tmp_path / "absent.srt"), *args])
    assert missing != 0


def _config(args):
    import argparse

    from longwatch.app.config import config_from_args

    return config_from_args(argparse.Namespace(config=args[1], bank=args[3], preset=None))


def test_on_screen_table_rows_are_evidence_with_their_header_and_title(models, tmp_path):
    """A slide read by the real OCR engine: each table row is one piece of evidence under its header and title."""
    from longwatch.pipeline.sources import open_source
    from longwatch.samples.videos import draw_text

    image = np.full((360, 640, 3), 250, np.uint8)
    # (a title unlike the header: OcrLane merges near-identical texts of one frame, "Quarterly costs" ~ "Quarter | Cost")
    image = draw_text(image, "Travel spending", xy=(40, 24), font_size=36, fg=(10, 10, 10), box=None)
    for y, cells in zip((100, 145, 190), (("Quarter", "Cost"), ("Q2", "3.8M"), ("Q3", "4.2M"))):
        for x, text in zip((60, 330), cells):
            image = draw_text(image, text, xy=(x, y), font_size=24, fg=(10, 10, 10), box=None)
    config = PipelineConfig(clip_seconds=2.0, fps=1.0, max_side=640)
    lanes = []
    with _watch(tmp_path, models, config) as lw, open_source([(float(t), image) for t in range(4)]) as src:
        lw.pipeline.ingest(src, "slide", progress=lambda p: lanes.append(p.lanes))
        evidence = lw.bank.evidence("slide", kinds=["ocr"])
    rows = {e.text: e for e in evidence}
    assert set(rows) == {"Travel spending", "Quarter | Cost", "Q2 | 3.8M", "Q3 | 4.2M"}, list(rows)
    q3 = rows["Q3 | 4.2M"]
    assert (q3.t0, q3.clip_index, q3.context, q3.meta) == (0.0, 0, "Travel spending. Quarter | Cost", {"table": True})
    # Up for both clips: one piece of evidence per row, whose range is the whole time the slide was shown.
    assert len(evidence) == 4 and all((e.t0, e.t1) == (0.0, 4.0) for e in evidence), evidence
    assert rows["Travel spending"].meta == {} and rows["Travel spending"].context == ""
    assert lanes[-1]["speech"] == "not a file: no audio read"
    # One unchanged slide: the text gate reads it once, not at every sampled frame, and the report says so.
    assert lanes[-1]["ocr"] == "read 1 of 4 sampled frames"


@pytest.mark.slow  # ~20 s: a worker process loads the offline models and Whisper
def test_batch_finds_the_sidecar_and_transcribes_like_ingest(samples, tmp_path):
    """Batch workers (other processes) write the same evidence: speech, and the .srt found beside the video."""
    from longwatch.app.batch import BatchSettings, discover_videos, run_batch
    from longwatch.memory import MemoryBank

    sample = samples["sidecar"]
    settings = BatchSettings(bank=str(tmp_path / "bank"), preset="offline", executor="local",
                             pipeline={"clip_seconds": 4.0, "fps": 1.0, "max_side": 160, "ocr": False})
    (job,) = discover_videos([sample.path])
    summary = run_batch(settings, [job], [], tmp_path / "out")
    assert (summary.videos_ingested, summary.videos_failed) == (1, 0)
    with MemoryBank(tmp_path / "bank", readonly=True) as bank:
        evidence = bank.evidence(job.video_id)
    _assert_subtitles(evidence, "en")
    for spoken in sample.spoken:
        assert len(_said(evidence, spoken)) == 1, (spoken.text, [e.text for e in evidence])


# One question per sentence of the narrated sample, in its order (see samples/speech.py).
LIVE_QUESTIONS = ["What is the secret project called?", "How much is the budget?", "Which room is the meeting in?"]


@pytest.fixture
def speech_stream(samples, live_sender):
    """The narrated sample sent in real time as MPEG-TS over HTTP on loopback."""
    # Sent four times over: a live clip is committed when the next one starts, so the last sentence needs more
    # stream, and the questions asked once all is said must find the stream still running on a loaded machine.
    return live_sender(samples["speech"].path, loops=3)


@pytest.mark.slow  # ~25 s: the stream is sent in real time
def test_a_live_stream_has_what_was_said_in_the_bank_within_seconds_while_it_runs(samples, models, tmp_path,
                                                                                   speech_stream):
    """Each sentence is evidence of the live video less than 10 s after it was said, while the stream runs."""
    import time

    sample = samples["speech"]
    found: dict[str, float] = {}
    with _watch(tmp_path, models) as lw:
        began = time.monotonic()
        session = lw.watch(speech_stream, "live")
        try:
            while len(found) < len(sample.spoken) and time.monotonic() - began < 2 * sample.duration:
                evidence = lw.bank.evidence("live") if "live" in {v.video_id for v in lw.bank.videos()} else []
                for spoken in sample.spoken:
                    if spoken.text not in found and _said(evidence, spoken):
                        found[spoken.text] = time.monotonic() - began
                time.sleep(0.2)
            # Answerable while the stream runs, not only stored: each fact is asked of the live session.
            replies = {q: (session.running, session.ask(q)) for q in LIVE_QUESTIONS} if len(found) == len(
                sample.spoken) else {}
        finally:
            session.stop(timeout=30)
        evidence = lw.bank.evidence("live")
    assert set(found) == {s.text for s in sample.spoken}, [e.text for e in evidence]
    for (question, (running, answer)), spoken in zip(replies.items(), sample.spoken):
        assert running, "the stream ended before the question was asked; the sender must loop longer"
        quoted = [q for q in answer.evidence if q.kind == "speech"]
        assert quoted and any(abs(q.t0 - spoken.t0) <= TOLERANCE for q in quoted), (question, answer.text)
        assert all(any(_norm(w) in _norm(answer.text) for w in kept) for kept in spoken.keep), (question, answer.text)
    print({s.text: f"said by {s.t1:.1f} s, in the bank at {found[s.text]:.1f} s" for s in sample.spoken})
    for spoken in sample.spoken:
        # The sender starts with the session, so wall time since watch() is about stream time.
        assert found[spoken.text] <= spoken.t1 + 10.0, (spoken.text, found)
        assert abs(_said(evidence, spoken)[0].t0 - spoken.t0) <= TOLERANCE


def test_captions_are_evidence_of_their_clip_once_per_change(tmp_path, one_thread):
    """A captioner's caption is evidence spanning its clip (tiny random-weight VLMs: the text is noise, the
    bookkeeping is real); a caption the next clip repeats is not stored again."""
    from longwatch.memory import MemoryBank
    from longwatch.pipeline.core import Pipeline
    from longwatch.pipeline.models.registry import load_preset
    from longwatch.pipeline.sources import open_source
    from longwatch.samples.videos import scene

    config = PipelineConfig(clip_seconds=2.0, fps=1.0, max_side=64, ocr=False, min_new_tokens=2, caption_tokens=6)
    frames = [(float(t), scene(float(t), (64, 48))) for t in range(6)]
    with MemoryBank(tmp_path / "bank") as bank, open_source(frames) as src:
        Pipeline(bank, load_preset("tiny"), config).ingest(src, "clips")
        clips = bank.clips("clips")
        captions = bank.evidence("clips", kinds=["caption"])
    assert clips and all(c.caption for c in clips)
    expected = [(c.clip_index, c.t0, c.t1, c.caption) for i, c in enumerate(clips)
                if i == 0 or c.caption != clips[i - 1].caption]
    assert [(e.clip_index, e.t0, e.t1, e.text) for e in captions] == expected
