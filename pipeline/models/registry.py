"""Model presets (`offline`, `tiny`, `vlm`, `sized:<name>`) and the one loader every VLM goes through.

Loading rules: safetensors only, no remote code unless asked, device/dtype "auto", clear errors offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longwatch.errors import ModelError
from longwatch.pipeline.models.base import VLMAdapter
from longwatch.pipeline.models.roles import Answerer, Captioner, Embedder, VisionAnswerer

SVLM_ID = "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"
ANSWERER_ID = "HuggingFaceTB/SmolVLM2-2.2B-Instruct"
SUPPORTED_ANSWERERS = (
    "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
    "Qwen/Qwen2-VL-2B-Instruct",
    "Qwen/Qwen2.5-VL-3B-Instruct",
    "Qwen/Qwen2.5-VL-7B-Instruct",
    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
    "llava-hf/llava-onevision-qwen2-7b-ov-hf",
)
# Files a safe snapshot needs; *.bin / *.pt / *.pkl (pickle) are never fetched, *.py only with remote code.
SAFE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]

PRESETS: dict[str, str] = {
    "offline": "real weights from pip packages: SmolLM2-135M text answerer, all-MiniLM-L6-v2 embedder, "
               "ms-marco MiniLM cross-encoder judging quotes (RapidOCR and Whisper tiny.en are the pipeline's "
               "OCR and speech lanes); no vision model",
    "tiny": "random tiny real architectures (SmolVLM SVLM + Qwen2-VL/Qwen2.5-VL/LLaVA-OneVision answerer), built "
            "offline and cached; for tests",
    "vlm": f"SVLM {SVLM_ID} + answerer {ANSWERER_ID} (or any supported VLM id/path); needs cached or pulled weights",
    "sized:<name>": "random weights at published sizes, for benchmarks",
}


@dataclass
class ModelSet:
    """The models a pipeline runs with: answerer (VLM or text-only), optional SVLM, text embedder.

    What the pipeline does with them (visual or text-only answers, SVLM re-scoring or not) is decided once,
    from these roles, when a Pipeline is built.
    """

    answerer: VisionAnswerer | Answerer
    svlm: Captioner | None
    embedder: Embedder
    name: str

    def describe(self) -> str:
        """How the models run, as chosen once when they loaded: "offline on cpu, float32 (this CPU has no native
        bf16), 2 torch threads". `longwatch ingest` prints it so a slow run can be read against its settings."""
        import torch

        model = getattr(self.answerer, "model", None)
        param = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
        if param is None:
            return f"{self.name}, {torch.get_num_threads()} torch threads"
        why = "" if param.device.type != "cpu" else \
            " (native bf16 on this CPU)" if cpu_has_bf16() else " (this CPU has no native bf16)"
        return (f"{self.name} on {param.device.type}, {str(param.dtype).removeprefix('torch.')}{why}, "
                f"{torch.get_num_threads()} torch threads")


def longwatch_home() -> Path:
    """$LONGWATCH_HOME, default ~/.cache/longwatch: tiny models and the re-saved SmolLM2 live under models/."""
    return Path(os.environ.get("LONGWATCH_HOME") or Path.home() / ".cache" / "longwatch").expanduser()


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str | Any = "auto", device: str = "cpu"):
    """bf16 where the hardware computes it natively (GPU, AVX-512-BF16/AMX CPUs), else float32.

    Without native bf16 a CPU emulates it and runs slower than fp32, so "auto" checks rather than assumes.
    """
    import torch

    if not isinstance(dtype, str):
        return dtype
    if dtype != "auto":
        try:
            return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
                    "fp32": torch.float32, "float32": torch.float32}[dtype]
        except KeyError:
            raise ValueError(f"dtype {dtype!r} is not one of auto, bf16, fp16, fp32") from None
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def cpu_has_bf16() -> bool:
    import torch

    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((check and check()) or (amx and amx()))


def _is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def resolve_weights(model: str | Path) -> Path:
    """A local directory with safetensors weights for a path or hub id; ModelError says how to get it."""
    path = Path(model).expanduser()
    if path.is_dir():
        local = path
    elif str(model).startswith((".", "/", "~")):
        raise ModelError(f"model directory {model} does not exist. Pass an existing directory or a hub id.")
    else:
        from huggingface_hub import snapshot_download

        try:
            local = Path(snapshot_download(str(model), allow_patterns=SAFE_PATTERNS, local_files_only=True))
        except Exception as exc:  # the hub raises several types for "not in the local cache"
            raise ModelError(
                f"weights for {model} are not in the local Hugging Face cache ({_hf_cache()}). "
                f"On a machine with network run `longwatch models pull {model}` (or `hf download "
                f"{model}`), or pass a local directory; offline, use the `offline` preset. ({type(exc).__name__})"
            ) from None
    if not any(local.glob("*.safetensors")):
        found = sorted(p.name for p in local.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt"))
        raise ModelError(f"{model}: no *.safetensors weights in {local} (found: {found or 'no weights'}). longwatch "
                         f"loads safetensors only, never pickle; convert the checkpoint or choose another model.")
    return local


def _hf_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def load_vlm(model: str | Path, dtype: str | Any = "auto", device: str = "auto",
             trust_remote_code: bool = False) -> VLMAdapter:
    """Load a VLM of a supported family from a hub id or directory and wrap it in its adapter."""
    path = resolve_weights(model)  # before importing transformers: a missing model fails in milliseconds
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    from longwatch.pipeline.models.families import ADAPTERS

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, local_files_only=True)
    adapter = ADAPTERS.get(config.model_type)
    if adapter is None:
        raise ModelError(f"{model}: model type {config.model_type!r} is not a supported VLM family "
                         f"(supported: {sorted(ADAPTERS)}). Choose a SmolVLM, Qwen2-VL/2.5-VL or LLaVA-OneVision model.")
    device = resolve_device(device)
    vlm = AutoModelForImageTextToText.from_pretrained(path, dtype=resolve_dtype(dtype, device), use_safetensors=True,
                                                      trust_remote_code=trust_remote_code, local_files_only=True)
    processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code, local_files_only=True)
    return adapter(vlm.to(device), processor, name=str(model))


def sized_vlm(name: str, dtype: str | Any = "auto", device: str = "auto") -> VLMAdapter:
    """Adapter over random weights at the published size `name` (benchmarks only)."""
    from longwatch.pipeline.models.build import build_sized
    from longwatch.pipeline.models.families import ADAPTERS

    device = resolve_device(device)
    model, processor = build_sized(name, dtype=resolve_dtype(dtype, device))
    return ADAPTERS[model.config.model_type](model.to(device), processor, name=f"sized:{name}")


def _embedder(spec: str | Path | None):
    from longwatch.pipeline.models.text import TextEmbedder

    return TextEmbedder(spec) if spec else TextEmbedder()


def load_preset(name: str = "offline", **overrides) -> ModelSet:
    """Build the ModelSet of preset `name` ("offline" | "tiny" | "vlm" | "sized:<name>").

    Overrides: answerer (hub id/path, or a family for `tiny`), svlm (id/path, or None to drop it), embedder (dir),
    dtype, device, trust_remote_code, home (cache root). Unknown keys are a programmer error.
    """
    allowed = {"answerer", "svlm", "embedder", "dtype", "device", "trust_remote_code", "home"}
    if unknown := set(overrides) - allowed:
        raise TypeError(f"load_preset() got unknown overrides {sorted(unknown)}; allowed: {sorted(allowed)}")
    home = Path(overrides.get("home") or longwatch_home())
    dtype, device = overrides.get("dtype", "auto"), overrides.get("device", "auto")
    embedder = overrides.get("embedder")
    if name == "offline":
        from longwatch.pipeline.models.text import load_smollm2

        # Everything here is on disk: the loaders pass local_files_only, so no library tries the hub (and the
        # process's HF_HUB_OFFLINE is left as the user set it; `models pull` in the same process still works).
        dev = resolve_device(device)
        return ModelSet(load_smollm2(home, resolve_dtype(dtype, dev), dev), None, _embedder(embedder), name)
    if name == "tiny":
        from longwatch.pipeline.models.build import build_tiny

        root = home / "models" / "tiny"
        dtype = "fp32" if dtype == "auto" else dtype  # tiny models exist to check exactness, not speed
        family = overrides.get("answerer", "qwen2_vl")
        answerer = load_vlm(build_tiny(family, root), dtype, device)
        svlm_spec = overrides.get("svlm", "smolvlm")
        svlm = load_vlm(build_tiny(svlm_spec, root), dtype, device) if svlm_spec else None
        return ModelSet(answerer, svlm, _embedder(embedder), name)
    if name == "vlm":
        trc = bool(overrides.get("trust_remote_code", False))
        answerer_id = overrides.get("answerer", ANSWERER_ID)
        svlm_id = overrides.get("svlm", SVLM_ID)
        answerer = load_vlm(answerer_id, dtype, device, trc)
        svlm = None if not svlm_id else answerer if svlm_id == answerer_id else load_vlm(svlm_id, dtype, device, trc)
        return ModelSet(answerer, svlm, _embedder(embedder), name)
    if name.startswith("sized:"):
        size = name.split(":", 1)[1]
        answerer = sized_vlm(size, dtype, device)
        svlm_name = overrides.get("svlm", "smolvlm2-256m")
        svlm = None if not svlm_name else answerer if svlm_name == size else sized_vlm(svlm_name, dtype, device)
        return ModelSet(answerer, svlm, _embedder(embedder), name)
    raise ModelError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)} "
                     f"(sized names: see `longwatch models list`)")


def pull(model: str, revision: str | None = None, trust_remote_code: bool = False) -> Path:
    """Download a hub model's safe files (safetensors, configs, tokenizer) into the HF cache; return its dir."""
    from huggingface_hub import snapshot_download

    if _is_offline():
        raise ModelError(f"cannot pull {model}: HF_HUB_OFFLINE is set. Unset it on a machine with network, or copy "
                         f"a downloaded model directory here and pass its path.")
    patterns = SAFE_PATTERNS + (["*.py"] if trust_remote_code else [])
    try:
        return Path(snapshot_download(model, revision=revision, allow_patterns=patterns))
    except Exception as exc:
        raise ModelError(f"could not download {model} from the Hugging Face hub: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}. Check the id and your network, or set "
                         f"HF_ENDPOINT for a mirror.") from None
