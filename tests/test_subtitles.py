"""Subtitle cues from embedded streams (MKV ASS, MP4 mov_text) and sidecar files, with times, text and language.

The sample cues carry ASS italics markup, which every reader must strip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from longwatch.errors import UnsupportedVideo
from longwatch.pipeline.subtitles import embedded_cues, read_sidecar, sidecar_files, subtitle_cues
from longwatch.samples.speech import SUBTITLES, espeak_available, make_speech_sample

pytest.importorskip("pysubs2", reason="pip install pysubs2")
# MKV/MP4 muxers may shift every packet by the audio codec's priming delay (AAC: ~46 ms).
MUX_SHIFT = 0.1


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    if not espeak_available():
        pytest.skip("needs espeak-ng and ffmpeg (scripts/setup.sh --dev)")
    folder = tmp_path_factory.mktemp("subs")
    return {v: make_speech_sample(folder, v) for v in ("sidecar", "mkv_ass", "mp4_mov_text", "silent")}


def _assert_cues_match(cues, language):
    assert [c.text for c in cues] == [text for _, _, text in SUBTITLES]
    for cue, (t0, t1, _) in zip(cues, SUBTITLES):
        assert cue.t0 == pytest.approx(t0, abs=MUX_SHIFT) and cue.t1 == pytest.approx(t1, abs=MUX_SHIFT)
        assert cue.language == language


@pytest.mark.parametrize("variant", ["mkv_ass", "mp4_mov_text"])
def test_embedded_subtitle_streams_are_read_with_times_and_plain_text(samples, variant):
    cues = embedded_cues(samples[variant].path)
    _assert_cues_match(cues, "eng")
    assert all(c.source.startswith("embedded:") for c in cues)
    assert subtitle_cues(samples[variant].path) == cues  # no sidecar beside it: the stream is everything


def test_sidecar_srt_beside_the_video_is_found_and_parsed(samples):
    sample = samples["sidecar"]
    assert sidecar_files(sample.path) == [Path(sample.sidecar)]
    cues = subtitle_cues(sample.path)
    _assert_cues_match(cues, "en")
    assert all(c.source == sample.sidecar for c in cues)


def test_a_video_without_subtitles_has_no_cues(samples):
    assert subtitle_cues(samples["silent"].path) == []


def test_sidecar_names_that_belong_to_the_video(tmp_path):
    video = tmp_path / "talk [v2].mp4"
    video.write_bytes(b"")
    for name in ("talk [v2].srt", "talk [v2].en.vtt", "talk [v2].de.ass", "talk [v2].notes.txt",
                 "talk [v2].extra.en.srt", "talk.srt", "other.srt"):
        (tmp_path / name).write_text("")
    assert sorted(p.name for p in sidecar_files(video)) == ["talk [v2].de.ass", "talk [v2].en.vtt", "talk [v2].srt"]


def test_webvtt_and_srt_markup_is_stripped_and_times_kept(tmp_path):
    vtt = tmp_path / "lecture.fr.vtt"
    vtt.write_text("WEBVTT\n\n00:00:01.500 --> 00:00:03.000\n<v Anna><b>Bonjour</b> à tous</v>\n\n"
                   "00:01:02.000 --> 00:01:04.250\nLigne un\nligne deux\n", encoding="utf-8")
    cues = read_sidecar(vtt)
    assert [(c.t0, c.t1, c.text, c.language) for c in cues] == [
        (1.5, 3.0, "Bonjour à tous", "fr"), (62.0, 64.25, "Ligne un ligne deux", "fr")]
    srt = tmp_path / "x.srt"
    srt.write_text("1\n00:00:05,000 --> 00:00:06,000\n<i>Code</i> <font color=\"red\">A7-19</font>\n",
                   encoding="utf-8")
    assert [(c.text, c.language) for c in read_sidecar(srt)] == [("Code A7-19", None)]
    final = tmp_path / "x.final.srt"
    final.write_text(srt.read_text(encoding="utf-8"), encoding="utf-8")
    assert read_sidecar(final)[0].language is None and read_sidecar(final, language="de")[0].language == "de"


def test_a_file_that_is_not_subtitles_is_a_typed_error(tmp_path):
    bad = tmp_path / "x.srt"
    bad.write_bytes(b"\x00\x01binary junk" * 50)
    with pytest.raises(UnsupportedVideo, match="subtitle"):
        read_sidecar(bad)
    with pytest.raises(UnsupportedVideo, match="cannot be read"):
        read_sidecar(tmp_path / "missing.srt")


def test_transcript_cli_shows_subtitles_as_srt_vtt_and_json(samples, tmp_path, capsys):
    import json

    import pysubs2

    from longwatch.app.cli import main

    for variant in ("mkv_ass", "sidecar"):
        out = tmp_path / f"{variant}.vtt"
        assert main(["transcript", samples[variant].path, "--source", "subtitles", "--format", "vtt",
                     "-o", str(out)]) == 0
        subs = pysubs2.load(str(out))
        assert [e.plaintext for e in subs] == [text for _, _, text in SUBTITLES]
    explicit = tmp_path / "given.srt"
    explicit.write_text("1\n00:00:01,000 --> 00:00:02,000\nOnly here\n", encoding="utf-8")
    assert main(["transcript", samples["silent"].path, "--subtitles", str(explicit), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["segments"]
    assert [(r["t0"], r["t1"], r["text"], r["kind"]) for r in rows] == [(1.0, 2.0, "Only here", "subtitle")]
    assert main(["transcript", samples["silent"].path, "--subtitles", str(tmp_path / "nope.srt")]) == \
        UnsupportedVideo.exit_code
    assert "Traceback" not in capsys.readouterr().err
