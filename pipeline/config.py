"""PipelineConfig: every knob of ingest and ask, validated; cheap to import (no torch, no models)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineConfig:
    """Every knob of ingest and ask. Token counts are visual tokens in the answerer's embedding space."""

    clip_seconds: float = 4.0
    fps: float = 1.0
    max_side: int = 448
    budget: int = 8192            # Tempo's default total visual budget
    min_tpf: float = 0.5          # anchor tokens per frame of a kept clip
    max_tpf: float = 16.0         # tokens per frame of the most relevant clips; also the stored detail grid
    detail_hw: tuple[int, int] = (4, 4)   # stored per-time-step grid: 16 tokens/frame, the largest allocation
    memory_grid: tuple[int, int, int] = (2, 2, 2)  # propagated memory per clip: 8 tokens
    svlm_grid: tuple[int, int, int] = (1, 2, 2)    # small-VLM tokens kept for question-time relevance
    top_n: int = 16
    neighbours: int = 1
    anchors: int = 4
    anchors_whole: int = 12       # storyline anchors for whole-video questions
    max_candidates: int = 48
    max_citations: int = 5
    caption_tokens: int = 32
    answer_tokens: int = 128
    min_new_tokens: int = 0       # random-weight models may stop at once; tests ask for a few tokens
    ocr: bool = True
    speech: bool = True           # transcribe the audio (Whisper through faster-whisper) into speech evidence
    speech_model: str = "tiny.en"  # the bundled tiny.en, a faster-whisper id ("small") or a local CTranslate2 folder
    subtitles: bool = True        # embedded subtitle streams, sidecar files beside the video, files passed in
    cross_encoder: bool = True    # a quote the answer rules accept must not read as unrelated to a cross-encoder
    store_dtype: str = "float16"

    def __post_init__(self) -> None:
        checks = [
            (self.clip_seconds > 0, f"clip_seconds must be > 0, got {self.clip_seconds}"),
            (self.fps > 0, f"fps must be > 0, got {self.fps}"),
            (self.max_side >= 16, f"max_side must be >= 16 pixels, got {self.max_side}"),
            (self.budget >= 0, f"budget must be >= 0 tokens, got {self.budget}"),
            (0 < self.min_tpf <= self.max_tpf, f"need 0 < min_tpf <= max_tpf, got {self.min_tpf}, {self.max_tpf}"),
            (self.detail_hw[0] * self.detail_hw[1] >= self.max_tpf,
             f"detail_hw {self.detail_hw} holds fewer than max_tpf={self.max_tpf} tokens per frame"),
            (min(self.detail_hw) >= 1 and min(self.memory_grid) >= 1 and min(self.svlm_grid) >= 1,
             "token grids must be positive"),
            (self.top_n >= 1 and self.neighbours >= 0 and self.anchors >= 0 and self.anchors_whole >= 0,
             "need top_n >= 1 and neighbours, anchors >= 0"),
            (self.max_candidates >= 1 and self.max_citations >= 1, "need max_candidates, max_citations >= 1"),
            (isinstance(self.speech_model, str) and self.speech_model.strip() != "",
             f"speech_model must name a Whisper model (e.g. 'tiny.en'), got {self.speech_model!r}"),
            (all(isinstance(v, bool) for v in (self.ocr, self.speech, self.subtitles, self.cross_encoder)),
             "ocr, speech, subtitles and cross_encoder must be true or false"),
            (self.store_dtype in ("float16", "bfloat16", "float32"), f"store_dtype {self.store_dtype!r} unknown"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"PipelineConfig: {message}")
