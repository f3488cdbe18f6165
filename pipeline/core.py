"""The Pipeline: ingest a video once into the memory bank, then answer any number of questions from it.

It only wires: `clip_encoder.ClipEncoder` (per-clip stages) and `ask.Asker` (with the strategy these models call for).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from longwatch.pipeline import ingest as _ingest
from longwatch.pipeline.answer import NEEDS_VISION, Answer
from longwatch.pipeline.ask import Asker
from longwatch.pipeline.config import PipelineConfig
from longwatch.pipeline.clip_encoder import ClipEncoder, ClipMemory, ResumePoint
from longwatch.pipeline.ingest import BankWriter, IngestProgress, IngestReport
from longwatch.pipeline.models.registry import ModelSet

__all__ = ["Pipeline", "PipelineConfig", "BankWriter", "ClipMemory", "ResumePoint", "IngestProgress", "IngestReport",
           "Answer", "NEEDS_VISION"]


class Pipeline:
    """Models, bank and config wired once into an encoder and an asker. Holds no per-video state between calls.

    `bank` may be None for workers that only `encode` (batch, Ray actors); one writer commits elsewhere.
    """

    def __init__(self, bank, models: ModelSet, config: PipelineConfig | None = None, ocr_engine=None):
        self.bank = bank
        self.models = models
        self.config = config or PipelineConfig()
        self.clip_encoder = ClipEncoder(models, self.config, ocr_engine)
        self.asker = Asker(bank, models, self.config)

    @property
    def encoder(self):
        """The streaming (propagated-memory) encoder; None for text-only answerers."""
        return self.clip_encoder.encoder

    @property
    def captioner(self):
        """The model that captions clips at ingest (SVLM, else a visual answerer); None for the offline preset."""
        return self.clip_encoder.captioner

    @property
    def ocr_engine(self):
        return self.clip_encoder.ocr_engine

    @staticmethod
    def writer(bank) -> BankWriter:
        """The committing half of ingest, for drivers that encode elsewhere (batch workers, Ray actors)."""
        return BankWriter(bank)

    @staticmethod
    def resume_point(bank, video_id: str) -> ResumePoint | None:
        """Where an interrupted ingest of `video_id` continues: after its last committed clip, with its state."""
        return _ingest.resume_point(bank, video_id)

    def ingest(self, source, video_id: str, progress: Callable[[IngestProgress], None] | None = None,
               subtitles: list | None = None) -> IngestReport:
        """Encode `source` (a VideoSource, or a spec for `open_source`) into the bank as `video_id`; resumes.
        `subtitles`: subtitle files to read instead of the sidecars beside the file."""
        return _ingest.ingest(self.bank, self.clip_encoder, source, video_id, progress, subtitles)

    def encode(self, source, video_id: str, start_clip: int = 0, resume: ResumePoint | None = None,
               timings: dict[str, float] | None = None, subtitles: list | None = None,
               lanes: dict[str, str] | None = None) -> Iterator[ClipMemory]:
        """Clip memories of `source` from clip `start_clip` on, ready for `BankWriter.commit`; touches no bank
        except to find `resume` when it is not given. `subtitles` and `lanes` as in `ingest`."""
        if start_clip > 0 and resume is None:
            if self.bank is None:
                raise ValueError(f"encode({video_id!r}, start_clip={start_clip}) needs resume=Pipeline.resume_point("
                                 "bank, video_id) to continue the propagated memory; pass it from the bank's owner")
            resume = self.resume_point(self.bank, video_id)
        yield from self.clip_encoder.memories(source, video_id, start_clip, resume, timings, subtitles, lanes)

    def ask(self, question: str, videos: list[str] | None = None, on_quotes=None) -> Answer:
        """Answer from the bank only (no decoding): retrieve, re-score, allocate, pool, generate, cite.
        `on_quotes` gets the supporting quotes before a sentence is generated (see ask.Asker.ask)."""
        return self.asker.ask(question, videos, on_quotes)
