"""The Pipeline end to end on real decoders, a real bank and tiny real-architecture models; plus answer formatting.

Generated videos (PyAV) are ingested once; questions are answered from the bank with zero further decoding.
"""

from __future__ import annotations

import pytest

from longwatch.pipeline.answer import Citation, ContextItem, build_blocks, cite, format_span, format_time


# ---- answer formatting (pure) --------------------------------------------------------------------------------
def test_time_formatting():
    assert format_time(0) == "00:00:00"
    assert format_time(3668.2) == "01:01:08"
    assert format_time(3668.2, ceil=True) == "01:01:09"
    assert format_time(36000) == "10:00:00"
    assert format_span(2468.0, 2472.0) == "[00:41:08\u201300:41:12]"
    with pytest.raises(ValueError, match="finite"):
        format_time(float("nan"))


def _item(video, i, rel, caption="c", ocr=""):
    return ContextItem(video, i, 4.0 * i, 4.0 * i + 4, caption, ocr, rel)


def test_blocks_are_time_ordered_and_label_videos_only_when_several():
    items = [_item("b", 3, 0.1), _item("a", 5, 0.9, "a dog", "EXIT"), _item("a", 1, 0.5)]
    one = build_blocks([i for i in items if i.video == "a"])
    assert [b.text for b in one] == ["[00:00:04\u201300:00:08] ", "[00:00:20\u201300:00:24] "]
    assert one[1].text_after == "a dog / On-screen text: EXIT\n"
    several = build_blocks(items)
    assert [b.text.split(" ")[1] for b in several] == ["a", "a", "b"]
    assert several[0].text.startswith("Video a [00:00:04")


def test_citations_rank_by_relevance_and_merge_adjacent_clips():
    items = [_item("v", 10, 0.9), _item("v", 11, 0.8), _item("v", 40, 0.7), _item("v", 2, 0.1)]
    out = cite(items, max_citations=3)
    assert out[0] == Citation("v", 40.0, 48.0, 0.9)  # clips 10 and 11 merged into one range
    assert out[1] == Citation("v", 160.0, 164.0, 0.7)
    assert len(out) == 3 and out[2].t0 == 8.0


def test_whole_video_citations_spread_over_the_timeline():
    # Relevance bunched at the start; a summary must still point at every part of the video.
    items = [_item("v", i, 0.9 if i < 20 else 0.2) for i in range(0, 900, 10)]
    out = cite(items, max_citations=8, spread=8)
    assert len(out) == 8
    parts = sorted({int(c.t0 // (3564 / 8)) for c in out})  # the timeline ends at 3564 s
    assert parts == list(range(8))


# ---- the Pipeline on real videos, a real bank and tiny real-architecture models ---------------------------------
def make_video(path, seconds: float, fps: int = 5, size: tuple[int, int] = (320, 180)) -> str:
    """An H.264 file of moving scenes (the project's sample generator; no binaries in git)."""
    from longwatch.samples.videos import make_sample

    return make_sample(path, duration=seconds, fps=fps, size=size).path


@pytest.fixture(scope="module")
def tiny():
    from longwatch.pipeline.models.registry import load_preset

    return load_preset("tiny")


def tiny_config(**kw):
    from longwatch.pipeline.config import PipelineConfig

    return PipelineConfig(**{"ocr": False, "min_new_tokens": 2, "answer_tokens": 8, "caption_tokens": 8, **kw})


def decoded_frames() -> int:
    from longwatch.pipeline.sources import DECODE_STATS

    return DECODE_STATS.frames_decoded


QUESTIONS = ["What does the moving square do?", "What colour is the background at the end?", "Summarize the video."]


def ingest(root, video, tiny, progress=None):
    from longwatch.memory import MemoryBank
    from longwatch.pipeline.core import Pipeline

    with MemoryBank(root) as bank:
        return Pipeline(bank, tiny, tiny_config()).ingest(video, "v", progress=progress)


def check_answers(root, tiny, seconds: float) -> list:
    """Three questions from one bank: no decoding, citations inside the video, budget kept, timings given."""
    from longwatch.memory import MemoryBank
    from longwatch.pipeline.core import Pipeline

    with MemoryBank(root) as bank:
        pipe = Pipeline(bank, tiny, tiny_config())
        before = decoded_frames()
        answers = [pipe.ask(q) for q in QUESTIONS]
        assert decoded_frames() == before, "answers must come from the bank, not from decoding the video again"
    for ans in answers:
        assert ans.text
        assert ans.citations and all(0.0 <= c.t0 < c.t1 <= seconds + 1e-6 and c.video == "v" for c in ans.citations)
        assert 0 < ans.tokens_used <= ans.budget == 8192
        assert len(ans.clips) == ans.clips_considered and sum(c.tokens for c in ans.clips) == ans.tokens_used
        assert all(0.0 <= c.relevance <= 1.0 for c in ans.clips)
        assert {"embed", "retrieve", "relevance", "allocate", "answer"} <= set(ans.timings)
        assert ans.prefill_tokens and ans.prefill_tokens > ans.tokens_used
    return answers


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, tiny):
    """A 24-second video (6 clips) ingested once without interruption; (video path, bank root, progress seen)."""
    tmp = tmp_path_factory.mktemp("ingested")
    video = make_video(tmp / "v.mp4", 24)
    seen = []
    report = ingest(tmp / "bank", video, tiny, progress=seen.append)
    return video, tmp / "bank", seen, report


def test_ingest_reports_progress_and_completes(ingested):
    _, _, seen, report = ingested
    assert report.complete and report.resumed_from is None
    assert report.clips_added == report.clips_total == len(seen) == 6
    assert [p.clips_done for p in seen] == [1, 2, 3, 4, 5, 6]
    assert seen[-1].eta == 0.0 and seen[-1].t == pytest.approx(24, abs=0.5)
    assert {"decode", "vision", "encode", "caption", "embed", "commit"} <= set(report.timings)


def test_questions_are_answered_from_the_bank_without_decoding(ingested, tiny):
    check_answers(ingested[1], tiny, 24)


@pytest.mark.slow
def test_ten_minute_video_three_questions_zero_decoding(tmp_path, tiny):
    ingest(tmp_path / "bank", make_video(tmp_path / "v.mp4", 600), tiny)
    for ans in check_answers(tmp_path / "bank", tiny, 600):
        print(ans.describe())


def test_models_fill_their_roles_and_the_ask_strategy_is_chosen_once(tmp_path, tiny):
    from longwatch.memory import MemoryBank
    from longwatch.pipeline.ask import SvlmVisualAsk, VisualAsk
    from longwatch.pipeline.core import Pipeline
    from longwatch.pipeline.models.registry import ModelSet
    from longwatch.pipeline.models.roles import Captioner, Embedder, VisionAnswerer

    assert isinstance(tiny.answerer, VisionAnswerer) and isinstance(tiny.svlm, Captioner)
    assert isinstance(tiny.embedder, Embedder)
    with MemoryBank(tmp_path / "bank") as bank:
        assert type(Pipeline(bank, tiny, tiny_config()).asker.strategy) is SvlmVisualAsk
        no_svlm = ModelSet(tiny.answerer, None, tiny.embedder, "tiny")
        assert type(Pipeline(bank, no_svlm, tiny_config()).asker.strategy) is VisualAsk


def test_a_vlm_without_svlm_answers_from_the_same_bank(ingested, tiny):
    """No SVLM: the answerer re-scores clips from their propagated memory tokens; the answer contract holds."""
    from longwatch.pipeline.models.registry import ModelSet

    check_answers(ingested[1], ModelSet(tiny.answerer, None, tiny.embedder, "tiny"), 24)


def test_one_answer_reads_one_bank_snapshot(ingested, tiny):
    """Every bank read of an answer happens inside one bank.snapshot(), so a concurrent writer is seen whole or not."""
    from contextlib import contextmanager

    from longwatch.memory import MemoryBank
    from longwatch.pipeline.core import Pipeline

    reads, inside = [], [False]
    with MemoryBank(ingested[1]) as bank:
        pinned = bank.snapshot

        @contextmanager
        def snapshot():
            with pinned():
                inside[0] = True
                try:
                    yield bank
                finally:
                    inside[0] = False

        def spy(name, read):
            def call(*args, **kwargs):
                reads.append((name, inside[0]))
                return read(*args, **kwargs)
            return call

        bank.snapshot = snapshot
        for name in ("videos", "clips", "search", "tokens"):
            setattr(bank, name, spy(name, getattr(bank, name)))
        Pipeline(bank, tiny, tiny_config()).ask(QUESTIONS[0])
    assert {name for name, _ in reads} == {"videos", "clips", "search", "tokens"}
    assert all(ok for _, ok in reads), reads


def test_streaming_ingest_equals_batch_encoding(ingested, tiny):
    import torch

    from longwatch.memory import MemoryBank
    from longwatch.pipeline.encoder import StreamingEncoder
    from longwatch.pipeline.sources import open_source

    video, root, _, _ = ingested
    cfg = tiny_config()
    with MemoryBank(root) as bank:
        stored = bank.tokens([r.record_id for r in bank.clips("v")], "memory")
    with open_source(video) as src:
        vis = [tiny.answerer.encode_frames(c.frames).float()
               for c in src.clips(cfg.clip_seconds, cfg.fps, cfg.max_side)]
    batch, _ = StreamingEncoder(tiny.answerer.hidden_size, cfg.memory_grid).encode(vis)
    assert len(batch) == len(stored) == 6
    for s, b in zip(stored, batch):
        torch.testing.assert_close(s.float(), b, atol=2e-3, rtol=2e-3)


def test_interrupted_ingest_resumes_after_the_last_committed_clip(tmp_path, ingested, tiny):
    import numpy as np

    from longwatch.memory import MemoryBank

    video, straight_root, _, _ = ingested

    class Crash(Exception):
        pass

    def crash_after_2(p):
        if p.clips_done == 2:
            raise Crash

    with pytest.raises(Crash):
        ingest(tmp_path / "bank", video, tiny, progress=crash_after_2)
    report = ingest(tmp_path / "bank", video, tiny)
    assert report.resumed_from == 1 and report.clips_added == 4 and report.clips_total == 6 and report.complete
    with MemoryBank(tmp_path / "bank") as a, MemoryBank(straight_root) as b:
        resumed, straight = snapshot(a, "v"), snapshot(b, "v")
    assert resumed.keys() == straight.keys()
    for key in straight:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=str(key))


def snapshot(bank, video_id: str) -> dict:
    """Everything the bank holds for a video, as comparable arrays (captions as object arrays)."""
    import numpy as np

    records = bank.clips(video_id)
    ids = [r.record_id for r in records]
    out = {"spans": np.array([(r.clip_index, r.t0, r.t1) for r in records]),
           "text": np.array([(r.caption, r.ocr_text) for r in records], dtype=object)}
    for kind in records[0].tokens:
        out[kind] = np.stack([t.float().numpy() for t in bank.tokens(ids, kind)])
    return out


def test_unknown_video_and_empty_question_are_refused(tmp_path, ingested, tiny):
    from longwatch.memory import MemoryBank
    from longwatch.pipeline.core import Pipeline
    from longwatch.errors import BankError

    with MemoryBank(tmp_path / "empty") as bank:
        with pytest.raises(BankError, match="no ingested clips"):
            Pipeline(bank, tiny, tiny_config()).ask("what happens?")
    with MemoryBank(ingested[1]) as bank:
        pipe = Pipeline(bank, tiny, tiny_config())
        with pytest.raises(BankError, match="'nope'"):
            pipe.ask("what happens?", ["nope"])
        with pytest.raises(ValueError, match="non-empty"):
            pipe.ask("  ")


def test_config_validation_names_the_field():
    from longwatch.pipeline.config import PipelineConfig

    with pytest.raises(ValueError, match="min_tpf"):
        PipelineConfig(min_tpf=4, max_tpf=2)
    with pytest.raises(ValueError, match="detail_hw"):
        PipelineConfig(detail_hw=(2, 2))
    with pytest.raises(ValueError, match="clip_seconds"):
        PipelineConfig(clip_seconds=0)


_INGEST_SCRIPT = """
import json, sys, psutil
from longwatch.memory import MemoryBank
from longwatch.pipeline.config import PipelineConfig
from longwatch.pipeline.core import Pipeline
from longwatch.pipeline.models.registry import load_preset
video, bank_root, log = sys.argv[1:4]
proc = psutil.Process()
cfg = PipelineConfig(ocr=False, min_new_tokens=2, answer_tokens=8, caption_tokens=8)
with MemoryBank(bank_root) as bank, open(log, "a") as f:
    def progress(p):
        f.write(json.dumps({"clips": p.clips_done, "t": p.t, "rss": proc.memory_info().rss}) + "\\n")
        f.flush()
    report = Pipeline(bank, load_preset("tiny"), cfg).ingest(video, "hour", progress=progress)
    f.write(json.dumps({"done": report.clips_total, "resumed_from": report.resumed_from,
                        "bytes": bank.stats()}) + "\\n")
"""


@pytest.mark.slow
def test_one_hour_flat_memory_sigkill_resume_and_storyline(tmp_path, tiny):
    long_ingest_check(tmp_path, tiny, 3600)


def long_ingest_check(tmp_path, tiny, seconds: int) -> dict:
    """Two ingests side by side, one SIGKILLed a third of the way and restarted: RSS flat from the first sixth
    to the end (<10% growth), final banks equal, and a whole-video question cites >= 5 of 6 equal regions."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    import numpy as np

    from longwatch.memory import MemoryBank
    from longwatch.pipeline.core import Pipeline

    video = make_video(tmp_path / "long.mp4", seconds, fps=2, size=(256, 144))
    n_clips, kill_at = seconds // 4, seconds // 12

    def start(bank, log):
        return subprocess.Popen([sys.executable, "-c", _INGEST_SCRIPT, video, str(tmp_path / bank),
                                 str(tmp_path / log)])

    # The uninterrupted run and the one to be killed go side by side (the machine has two cores).
    straight, killed = start("straight", "straight.jsonl"), start("killed", "killed.jsonl")
    while killed.poll() is None:
        lines = (tmp_path / "killed.jsonl").read_text().splitlines() if (tmp_path / "killed.jsonl").exists() else []
        if len(lines) >= kill_at:
            os.kill(killed.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    killed.wait()
    resumed = start("killed", "killed.jsonl")
    assert straight.wait(timeout=7200) == 0 and resumed.wait(timeout=7200) == 0
    log = [json.loads(x) for x in (tmp_path / "straight.jsonl").read_text().splitlines()]
    rss = {round(e["t"]): e["rss"] for e in log if "rss" in e}
    early = rss[min(rss, key=lambda t: abs(t - seconds / 6))]
    late = rss[max(rss)]
    print(f"RSS at {seconds / 360:.0f} min: {early / 2**20:.0f} MiB, at {seconds / 60:.0f} min: {late / 2**20:.0f} MiB; "
          f"bank: {log[-1]['bytes']}")
    assert late < 1.10 * early, "ingest memory must stay flat"
    assert log[-1]["done"] == n_clips

    done = [json.loads(x) for x in (tmp_path / "killed.jsonl").read_text().splitlines()][-1]
    assert done["done"] == n_clips and done["resumed_from"] is not None and done["resumed_from"] >= kill_at - 2

    with MemoryBank(tmp_path / "straight") as a, MemoryBank(tmp_path / "killed") as b:
        sa, sb = snapshot(a, "hour"), snapshot(b, "hour")
        assert sa.keys() == sb.keys()
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=str(key))
        ans = Pipeline(a, tiny, tiny_config()).ask("Summarize the video.")
    regions = {int(c.t0 // (seconds / 6)) for c in ans.citations}  # which sixth of the video each cite is in
    print(ans.describe())
    assert len(ans.citations) >= 5 and len(regions) >= 5
    return {"rss_early": early, "rss_late": late, "bank": log[-1]["bytes"], "resumed_from": done["resumed_from"]}


def test_offline_preset_answers_from_on_screen_text_and_declines_visual_questions(tmp_path):
    """Text-only answerer (SmolLM2) + real OCR: the needle's clip is cited; a colour question is declined."""
    from longwatch.memory import MemoryBank
    from longwatch.pipeline.core import NEEDS_VISION, Pipeline
    from longwatch.pipeline.models.registry import load_preset
    from longwatch.pipeline.sources import open_source
    from longwatch.samples.niah import haystack_frames, plan_haystack

    plan = plan_haystack(60, n_needles=1, fps=1.0, seed=3)
    needle = plan.needles[0]
    models = load_preset("offline")
    with MemoryBank(tmp_path / "bank") as bank:
        pipe = Pipeline(bank, models, tiny_config(ocr=True))
        assert pipe.encoder is None and pipe.captioner is None
        with open_source(haystack_frames(plan)) as src:
            pipe.ingest(src, "v")
        assert any(r.ocr_text for r in bank.clips("v"))
        ans = pipe.ask(needle.question)
        assert ans.tokens_used == 0 and not ans.needs_vision
        assert any(c.t0 < needle.t1 and needle.t0 < c.t1 for c in ans.citations), (ans.citations, needle)
        visual = pipe.ask("What colour is the presenter's jacket?")
    assert visual.needs_vision and visual.text == NEEDS_VISION and not visual.citations
