"""Public Python API, CLI and batch runner; what the UI and users import comes from here.

Names load on first use (PEP 562), so `import longwatch.app` and `longwatch --help` never import torch.
"""

from __future__ import annotations

import importlib

# public name -> module that defines it; one table, so the UI's and users' surface is listed in one place
_EXPORTS = {
    "LongWatch": "longwatch.app.api",
    "VideoRef": "longwatch.app.api",
    "frame_at": "longwatch.app.api",
    "KIND_LABELS": "longwatch.pipeline.evidence_qa",
    "video_id_for": "longwatch.app.video_ids",
    "LiveSession": "longwatch.app.live_session",
    "SessionStats": "longwatch.app.live_session",
    "Config": "longwatch.app.config",
    "LiveConfig": "longwatch.app.config",
    "ModelsConfig": "longwatch.app.config",
    "UIConfig": "longwatch.app.config",
    "VIDEO_SUFFIXES": "longwatch.app.config",
    "load_config": "longwatch.app.config",
    "add_bank_arguments": "longwatch.app.config",
    "config_from_args": "longwatch.app.config",
    "require_optional": "longwatch.optional",
    "LongwatchError": "longwatch.errors",
    "format_span": "longwatch.pipeline.answer",
    "format_time": "longwatch.pipeline.answer",
    "quote_lines": "longwatch.pipeline.evidence_qa",
    "DEMO_SCRIPT": "longwatch.app.cmd_demo",
    "DEMO_QUESTIONS": "longwatch.app.cmd_demo",
    "make_sample": "longwatch.samples.videos",
}
_RENAMED = {"DEMO_SCRIPT": "SCRIPT", "DEMO_QUESTIONS": "QUESTIONS", "require_optional": "require"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
